"""How a metric of an SQL-engine source filters: its one filter column and the texts it wants
(`connectors.spec.filter_text`). Shared by the pushdown (which groups by them) and the scanner
(which reads the landed partials by them); kept apart from the pushdown so reading the partials
does not load SQLAlchemy."""

from __future__ import annotations

from typing import Any

from connectors.spec import filter_text


def metric_filter(metric: Any) -> tuple[str, list[str]]:
    """(filter column, wanted texts) of a metric of the source: ('', []) when it does not filter."""
    if not metric.filter:
        return "", []
    [(column, wanted)] = metric.filter.items()
    values = wanted if isinstance(wanted, list) else [wanted]
    return column, sorted({filter_text(v) for v in values})
