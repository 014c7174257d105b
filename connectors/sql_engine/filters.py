"""How a metric of an SQL-engine source filters: its one filter column and the texts it wants,
compared as text. Shared by the pushdown (which groups by them) and the scanner (which reads
the landed partials by them); kept apart from the pushdown so reading the partials does not
load SQLAlchemy."""

from __future__ import annotations

from typing import Any


def filter_text(value: Any) -> str:
    """A filter value as the text it compares as (the same rule as `transforms.scan`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def metric_filter(metric: Any) -> tuple[str, list[str]]:
    """(filter column, wanted texts) of a metric of the source: ('', []) when it does not filter."""
    if not metric.filter:
        return "", []
    [(column, wanted)] = metric.filter.items()
    values = wanted if isinstance(wanted, list) else [wanted]
    return column, sorted({filter_text(v) for v in values})
