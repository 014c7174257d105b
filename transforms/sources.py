"""The staging tables metrics can read (docs/sources.md): table, default time column and the
columns a metric may aggregate or filter on, with their kind."""

from __future__ import annotations

import re
from dataclasses import dataclass

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


_CRM_COMMON = {
    "id": TEXT,
    "createdate": TIME,
    "hs_lastmodifieddate": TIME,
    "archived": BOOL,
}

SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in (
        SourceSpec(
            "csv_observations",
            "staging.csv_observations",
            "date",
            {"date": TIME, "metric_id": TEXT, "value": NUMERIC, "dimensions": TEXT},
            open_prefixes=("dimensions.",),
            bare_keys_of="dimensions",
        ),
        SourceSpec(
            "analytics_events",
            "staging.analytics_events",
            "timestamp",
            {
                "event": TEXT,
                "timestamp": TIME,
                "date": TIME,
                "user_id": TEXT,
                "anonymous_id": TEXT,
                "properties": TEXT,
            },
            open_prefixes=("properties.",),
            local_day_column="date",
        ),
        SourceSpec(
            "analytics_report",
            "staging.analytics_report",
            "date",
            {"date": TIME},
            open_columns=True,
        ),
        SourceSpec(
            "crm_deals",
            "staging.crm_deals",
            "closedate",
            {
                **_CRM_COMMON,
                "dealname": TEXT,
                "amount": NUMERIC,
                "dealstage": TEXT,
                "pipeline": TEXT,
                "closedate": TIME,
                "hs_is_closed_won": BOOL,
                "associated_company_id": TEXT,
            },
        ),
        SourceSpec(
            "crm_companies",
            "staging.crm_companies",
            "createdate",
            {
                **_CRM_COMMON,
                "name": TEXT,
                "domain": TEXT,
                "industry": TEXT,
                "lifecyclestage": TEXT,
                "annualrevenue": NUMERIC,
                "country": TEXT,
            },
        ),
        SourceSpec(
            "crm_contacts",
            "staging.crm_contacts",
            "createdate",
            {**_CRM_COMMON, "lifecyclestage": TEXT, "country": TEXT},
        ),
    )
}
