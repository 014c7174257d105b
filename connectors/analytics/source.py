"""The descriptor of the analytics exports: what the pipeline builds its assets, checks and sensor
from (see connectors.source)."""

import csv
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from connectors.analytics.extract import file_kind, load_analytics_exports, snake_case
from connectors.analytics.staging import (
    refresh_analytics_report_view,
    stage_analytics_events,
    stage_analytics_report,
)
from connectors.analytics.tables import (
    RAW_ANALYTICS_EVENTS,
    RAW_ANALYTICS_REPORT,
    STAGING_ANALYTICS_EVENTS,
    STAGING_ANALYTICS_REPORT_LONG,
)
from connectors.files import PHYSICAL_LINES, column_date_range, first_line
from connectors.source import FileSource, RawTable, StagedTable
from warehouse.staging import RawInput


def file_dates(path: Path, kind: str, timezone: str) -> tuple[date, date] | None:
    """Events: the range of their timestamps as local days in `timezone`; reports: the range of
    their `date` column (header after the `#` preamble, delimiter `,` `;` or tab)."""
    if kind == "events":
        ts = "TRY_CAST(trim(json_extract_string(text, '$.timestamp')) AS TIMESTAMPTZ)"
        with duckdb.connect(config={"threads": 1}) as con:
            [(low, high)] = con.execute(
                f"SELECT epoch(min(ts)), epoch(max(ts)) FROM (SELECT {ts} AS ts "
                f"FROM ({PHYSICAL_LINES}) WHERE json_valid(text))",
                {"path": str(path)},
            ).fetchall()
        if low is None:
            return None
        zone = ZoneInfo(timezone)
        return datetime.fromtimestamp(low, zone).date(), datetime.fromtimestamp(high, zone).date()
    header = first_line(path, skip_comments=True)
    if header is None:
        return None
    delim = max((",", ";", "\t"), key=header.count)
    names = [snake_case(name) for name in next(csv.reader([header], delimiter=delim))]
    return column_date_range(path, delim, names.index("date")) if "date" in names else None


SOURCE = FileSource(
    name="analytics",
    folder="analytics",
    folder_description="analytics exports folder",
    load=load_analytics_exports,
    file_kind=file_kind,
    file_dates=file_dates,
    asset_name="raw_analytics_exports",
    raw=(
        RawTable(
            table=RAW_ANALYTICS_EVENTS,
            kinds=frozenset({"json"}),
            description="Events from newline-delimited JSON exports (plain or .gz) in "
            "`$OKR_DATA_DIR/analytics`, streamed by DuckDB.",
            metric_source="analytics_events",
            time_column="timestamp",
            file_kind="events",
        ),
        RawTable(
            table=RAW_ANALYTICS_REPORT,
            kinds=frozenset({"csv"}),
            description="Report CSVs as analytics tools export them (comment preamble, "
            "display-name header, YYYYMMDD dates), in a long shape: one row per date and column.",
            metric_source="analytics_report",
            time_column="date",
            file_kind="report",
        ),
    ),
    staged=(
        StagedTable(
            table=STAGING_ANALYTICS_EVENTS,
            raw=RAW_ANALYTICS_EVENTS,
            stage=stage_analytics_events,
            raw_days=lambda timezone: RawInput(
                RAW_ANALYTICS_EVENTS, 'CAST(timezone(?, "timestamp") AS DATE)', (timezone,)
            ),
            future_column="timestamp",
        ),
        StagedTable(
            table=STAGING_ANALYTICS_REPORT_LONG,
            raw=RAW_ANALYTICS_REPORT,
            stage=lambda con, start, end, timezone: stage_analytics_report(con, start, end),
            raw_days=lambda timezone: RawInput(RAW_ANALYTICS_REPORT, "date"),
            future_column="date",
            # Metrics read the pivoted view staging.analytics_report, whose columns follow the data.
            after_write=refresh_analytics_report_view,
        ),
    ),
)
