"""How a metric reads a source (docs/sources.md): its staging table, default time column and the
columns a metric may aggregate or filter on, with their kind."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

NUMERIC, TEXT, TIME, BOOL = "numeric", "text", "time", "bool"
BARE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class SourceSpec:
    name: str
    table: str
    time_column: str
    columns: dict[str, str]
    open_prefixes: tuple[str, ...] = ()
    """Prefixes of nested keys (`dimensions.region`) that are allowed without being listed."""
    bare_keys_of: str | None = None
    """A JSON column whose keys may also be named bare (`region` for `dimensions.region`): long
    CSV files name their dimension columns, so metrics use the names as written there. Any
    identifier that is not a column of the table is such a key."""
    open_columns: bool = False
    """The table's columns depend on the input (report CSVs); any snake_case name is allowed."""
    local_day_column: str | None = None
    """A column staging filled with the default time column's day in settings.timezone, so
    metrics read it instead of converting every timestamp again."""
    row_filter: str | None = None
    """SQL condition a row must meet to count at all (CRM: archived records count nowhere)."""
    pushdown: str | None = None
    """For a source aggregated in an external SQL engine (`connectors.sql_engine`): `table` holds
    the engine's per-day partials, not rows, and this is the table of its distinct (day, filter
    value, id) sightings. Metrics on it filter on at most one column."""

    def column_kind(self, column: str) -> str | None:
        if column in self.columns:
            return self.columns[column]
        if self.json_key(column):
            return TEXT
        if self.open_columns:
            return NUMERIC
        return None

    def json_key(self, column: str) -> tuple[str, str] | None:
        """(JSON column, key) when `column` names a key inside a JSON column rather than a column
        of the table; a name that is both means the table's column."""
        if column in self.columns:
            return None
        for prefix in self.open_prefixes:
            if column.startswith(prefix) and column != prefix:
                return prefix.removesuffix("."), column.removeprefix(prefix)
        if self.bare_keys_of and BARE_KEY.match(column):
            return self.bare_keys_of, column
        return None


def filter_text(value: Any) -> str:
    """The text a metric's filter value compares as (booleans as 'true'/'false', whole floats
    without '.0'), in every source and in the SQL-engine pushdown alike."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
