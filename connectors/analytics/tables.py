"""The analytics exports' tables (each a `warehouse.tables.Table`), the view metrics read the
reports through, and how metrics read the staging tables (docs/sources.md)."""

from __future__ import annotations

from connectors.spec import TEXT, TIME, SourceSpec
from connectors.tables import lineage_columns
from warehouse.tables import Column, Table

RAW_ANALYTICS_EVENTS = Table(
    "raw",
    "analytics_events",
    "Events from newline-delimited JSON exports (.jsonl/.ndjson/.json, plain or .gz), as landed: "
    "one row per valid line.",
    (
        Column("event", "VARCHAR", "Event name.", False),
        Column(
            "timestamp", "TIMESTAMPTZ", "When the event happened (ISO-8601 with offset).", False
        ),
        Column("user_id", "VARCHAR", "User id (numbers become text); null when absent or empty."),
        Column("anonymous_id", "VARCHAR", "Anonymous id; null when absent or empty."),
        Column(
            "properties",
            "JSON",
            "Event properties as a JSON object (minified; '{}' when absent or null).",
            False,
        ),
        *lineage_columns(),
    ),
)

RAW_ANALYTICS_REPORT = Table(
    "raw",
    "analytics_report",
    "Report CSV cells in long form: one row per date and report column with a numeric value "
    "(empty cells and totals rows are not loaded).",
    (
        Column("date", "DATE", "Report date (YYYYMMDD in the file).", False),
        Column("report", "VARCHAR", "Report name: the file name without .csv / .csv.gz.", False),
        Column(
            "column_name",
            "VARCHAR",
            "snake_case of the column's display name ('Active users' -> 'active_users').",
            False,
        ),
        Column("value", "DOUBLE", "The cell's number (thousands separators removed).", False),
        *lineage_columns(),
    ),
)

_STAGING_LINEAGE = (
    Column("_source_ref", "VARCHAR", "File the row came from.", False),
    Column("_source_row", "BIGINT", "Line of the row in that file."),
    Column("_batch_id", "VARCHAR", "Batch that loaded the row.", False),
)

_QUARTER_START = Column(
    "quarter_start",
    "DATE",
    "First day of the fiscal quarter holding `date` (partition key).",
    False,
)

STAGING_ANALYTICS_EVENTS = Table(
    "staging",
    "analytics_events",
    "Typed analytics events, exact duplicates removed; `date` is the event's day in the "
    "configured timezone. Partitioned by quarter of that day.",
    (
        Column("event", "VARCHAR", "Event name.", False),
        Column("timestamp", "TIMESTAMPTZ", "When the event happened.", False),
        Column("date", "DATE", "Local date of `timestamp` in settings.timezone.", False),
        Column("user_id", "VARCHAR", "User id, when known."),
        Column("anonymous_id", "VARCHAR", "Anonymous id, when known."),
        Column(
            "properties",
            "JSON",
            "Event properties (JSON object); metrics read keys as properties.<key>.",
            False,
        ),
        _QUARTER_START,
        *_STAGING_LINEAGE,
    ),
    partition_column="quarter_start",
)

STAGING_ANALYTICS_REPORT_LONG = Table(
    "staging",
    "analytics_report_long",
    "Report values, one row per (date, column_name): the most recently loaded file wins. "
    "Partitioned by quarter; staging.analytics_report is the same data pivoted to columns.",
    (
        Column("date", "DATE", "Report date.", False),
        Column("column_name", "VARCHAR", "snake_case report column.", False),
        Column("value", "DOUBLE", "The value.", False),
        Column("report", "VARCHAR", "Report (file stem) the winning value came from.", False),
        _QUARTER_START,
        *_STAGING_LINEAGE,
    ),
    primary_key=("date", "column_name"),
    partition_column="quarter_start",
)

ANALYTICS_REPORT_VIEW = "staging.analytics_report"
RESERVED_REPORT_COLUMNS = frozenset({"date", "quarter_start"})

TABLES = (
    RAW_ANALYTICS_EVENTS,
    RAW_ANALYTICS_REPORT,
    STAGING_ANALYTICS_EVENTS,
    STAGING_ANALYTICS_REPORT_LONG,
)

METRIC_SOURCES = (
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
)
