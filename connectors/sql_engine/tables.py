"""The tables an SQL-engine source lands in DuckDB: the per-day partials and the distinct ids
per day the engine computed (never its rows), and how metrics read them (docs/sources.md)."""

from __future__ import annotations

from connectors.spec import TEXT, TIME, SourceSpec
from warehouse.tables import Column, Table

_QUARTER_START = Column(
    "quarter_start", "DATE", "First day of the fiscal quarter holding `date` (partition key).", False
)
_KEY = (
    Column("date", "DATE", "Local day of the row's time column in settings.timezone.", False),
    Column(
        "filter_column",
        "VARCHAR",
        "The column the engine grouped by ('' when no metric filters: one group per day).",
        False,
    ),
    Column(
        "filter_value",
        "VARCHAR",
        "The filter column's value as text; null for the rows no metric's filter names "
        "(they count only as the source's rows of the day).",
    ),
)
_LINEAGE = (
    Column("_source", "VARCHAR", "Source family (sql).", False),
    Column(
        "_source_ref",
        "VARCHAR",
        "Engine dialect, host and table (`postgresql://host:port/db#schema.table`); never the "
        "password.",
        False,
    ),
    Column("_query_fingerprint", "VARCHAR", "SHA-256 of the compiled SQL the engine ran.", False),
    Column("_batch_id", "VARCHAR", "Load batch (one per quarter and run).", False),
    Column("_loaded_at", "TIMESTAMPTZ", "When the partials were landed.", False),
)

URL_ENV = "OKR_SQL_SOURCE_URL"
"""The engine's SQLAlchemy URL; read at run time, never stored."""

RAW_SQL_EVENTS_PARTIALS = Table(
    "raw",
    "sql_events_partials",
    "Per-day partials of the SQL-engine events table, computed by the engine: per day, filter "
    "column and value, and value column, the rows, the non-null values and their sum, min and "
    "max. Partitioned by quarter.",
    (
        *_KEY,
        Column(
            "value_column",
            "VARCHAR",
            "The numeric column `vals`..`value_max` aggregate ('' for row counts only).",
            False,
        ),
        Column("rows", "BIGINT", "Rows of the group.", False),
        Column("vals", "BIGINT", "Non-null values of `value_column` in the group."),
        Column(
            "value_sum",
            "DOUBLE",
            "Sum of the values (computed exactly as NUMERIC by the engine, then one rounding).",
        ),
        Column("value_min", "DOUBLE", "Smallest value."),
        Column("value_max", "DOUBLE", "Largest value."),
        _QUARTER_START,
        *_LINEAGE,
    ),
    partition_column="quarter_start",
)

RAW_SQL_EVENTS_SIGHTINGS = Table(
    "raw",
    "sql_events_sightings",
    "Distinct (day, filter value, id) of the SQL-engine events table for distinct counts, "
    "computed by the engine (distinct counts do not add up over days). Partitioned by quarter.",
    (
        *_KEY,
        Column("id_column", "VARCHAR", "The column counted distinct.", False),
        Column("id", "VARCHAR", "One distinct id of that day and filter value, as text.", False),
        _QUARTER_START,
        *_LINEAGE,
    ),
    partition_column="quarter_start",
)

TABLES = (RAW_SQL_EVENTS_PARTIALS, RAW_SQL_EVENTS_SIGHTINGS)

SQL_EVENTS = SourceSpec(
    "sql_events",
    RAW_SQL_EVENTS_PARTIALS.fqn,
    "timestamp",
    {"event": TEXT, "timestamp": TIME, "user_id": TEXT, "anonymous_id": TEXT},
    open_prefixes=("properties.",),
    open_columns=True,
    pushdown=RAW_SQL_EVENTS_SIGHTINGS.fqn,
)
"""An events table in an external engine (`OKR_SQL_SOURCE_URL`, `OKR_SQL_SOURCE_TABLE`): `event`,
`timestamp` (with time zone), `user_id`, `anonymous_id`, `properties` (JSON; keys read as
`properties.<key>`), and any other snake_case column a metric names, read as a number."""

METRIC_SOURCES = (SQL_EVENTS,)
