"""Analytics exports: the staging transforms (docs/sources.md); the tables are in
`connectors.analytics.tables`.

Events: `raw.analytics_events` -> `staging.analytics_events`, one quarter partition at a time.
A quarter holds the events whose timestamp, converted to `settings.timezone`, falls on one of
its days (docs/computation.md, "Dates"); `date` is that local day. Exact duplicates -- the same
(event, timestamp, user_id, anonymous_id, properties), as when a period is exported twice --
are kept once (the first loaded copy).

Reports: their columns differ from report to report, so the raw rows are long
(date, column_name, value). Staging keeps that fixed shape in `staging.analytics_report_long`
(partitioned by quarter like every staging table; the most recently loaded file wins per
(date, column_name)), and `staging.analytics_report` is a VIEW that pivots it to one row per
date with one DOUBLE column per column name. DuckDB cannot keep a data-driven PIVOT in a view,
so the view names its columns and is re-created from the data by
`refresh_analytics_report_view` after each write of the long table: a column appears once some
report has it and disappears when no staged row has it any more.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

from connectors.analytics.tables import (
    ANALYTICS_REPORT_VIEW,
    RAW_ANALYTICS_EVENTS,
    RAW_ANALYTICS_REPORT,
    RESERVED_REPORT_COLUMNS,
    STAGING_ANALYTICS_EVENTS,
    STAGING_ANALYTICS_REPORT_LONG,
)
from warehouse.sql import quote_ident, quote_literal
from warehouse.staging import one_row_per_key
from warehouse.writes import ensure_tables, replace_partition_from_query

# Any UTC offset is at most 14 hours, so events of local days [start, end] lie in this range.
_MARGIN = timedelta(days=2)


def stage_analytics_events(
    con: duckdb.DuckDBPyConnection, quarter_start: date, quarter_end: date, timezone: str
) -> int:
    """Replace the `staging.analytics_events` partition `quarter_start` with the events whose
    local date in `timezone` is in the quarter, in one transaction with its `meta.partitions`
    row; returns the rows written. Properties compare as JSON text (no cast needed)."""
    ensure_tables(con, RAW_ANALYTICS_EVENTS)
    rows = f"""
        SELECT event, "timestamp", local_date AS date, user_id, anonymous_id, properties,
               ?::DATE AS quarter_start, _source_ref, _source_row, _batch_id, _loaded_at
        FROM (
            SELECT *, CAST(timezone(?, "timestamp") AS DATE) AS local_date
            FROM {RAW_ANALYTICS_EVENTS.fqn}
            WHERE "timestamp" >= ?::TIMESTAMPTZ AND "timestamp" < ?::TIMESTAMPTZ
        )
        WHERE local_date BETWEEN ? AND ?
    """
    return replace_partition_from_query(
        con,
        STAGING_ANALYTICS_EVENTS,
        one_row_per_key(
            rows,
            'event, "timestamp", user_id, anonymous_id, properties',
            "_loaded_at, _batch_id, _source_ref, _source_row",
        ),
        [
            quarter_start,
            timezone,
            (quarter_start - _MARGIN).isoformat() + " 00:00:00+00",
            (quarter_end + _MARGIN).isoformat() + " 00:00:00+00",
            quarter_start,
            quarter_end,
        ],
        [quarter_start],
    )


def stage_analytics_report(
    con: duckdb.DuckDBPyConnection, quarter_start: date, quarter_end: date
) -> int:
    """Replace the `staging.analytics_report_long` partition `quarter_start` with, per (date,
    column_name) of the quarter, the value of the most recently loaded file (ties: batch id,
    then the later line), in one transaction with its `meta.partitions` row; returns the rows
    written. Call `refresh_analytics_report_view(con)` afterwards."""
    ensure_tables(con, RAW_ANALYTICS_REPORT)
    rows = f"""
        SELECT date, column_name, value, report, ?::DATE AS quarter_start,
               _source_ref, _source_row, _batch_id, _loaded_at
        FROM {RAW_ANALYTICS_REPORT.fqn}
        WHERE date BETWEEN ? AND ?
    """
    return replace_partition_from_query(
        con,
        STAGING_ANALYTICS_REPORT_LONG,
        one_row_per_key(
            rows, "date, column_name", "_loaded_at DESC, _batch_id DESC, _source_row DESC"
        ),
        [quarter_start, quarter_start, quarter_end],
        [quarter_start],
    )


def refresh_analytics_report_view(con: duckdb.DuckDBPyConnection) -> list[str]:
    """(Re)create the `staging.analytics_report` view: `date`, `quarter_start`, then one DOUBLE
    column per distinct `column_name` of `staging.analytics_report_long`, sorted. Returns the
    value columns."""
    STAGING_ANALYTICS_REPORT_LONG.create(con)
    names = [
        name
        for (name,) in con.execute(
            f"SELECT DISTINCT column_name FROM {STAGING_ANALYTICS_REPORT_LONG.fqn} ORDER BY 1"
        ).fetchall()
        if name not in RESERVED_REPORT_COLUMNS
    ]
    pivots = "".join(
        f",\n    CAST(max(value) FILTER (WHERE column_name = {quote_literal(name)}) AS DOUBLE) "
        f"AS {quote_ident(name)}"
        for name in names
    )
    con.execute(
        f"CREATE OR REPLACE VIEW {ANALYTICS_REPORT_VIEW} AS\n"
        f"SELECT date, quarter_start{pivots}\n"
        f"FROM {STAGING_ANALYTICS_REPORT_LONG.fqn}\nGROUP BY date, quarter_start"
    )
    con.execute(
        f"COMMENT ON VIEW {ANALYTICS_REPORT_VIEW} IS "
        + quote_literal(
            "Analytics report values, one row per date and one DOUBLE column per report column "
            "(snake_case of its display name); a pivot of staging.analytics_report_long."
        )
    )
    return names
