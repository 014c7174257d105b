"""The OKR marts of a set of quarters, computed together: one reader serves them all, so
each metric's staging rows are scanned once per run."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from transforms.attainment import compute_okr_results
from transforms.calendar import Quarter
from transforms.checkins import (
    MARTS_KEY_RESULT_CHECKINS,
    key_result_checkins,
    read_checkins,
    with_latest_checkins,
)
from transforms.config import OkrConfig
from transforms.history import earliest_needed, kpi_first_day
from transforms.kpi import (
    MARTS_METRIC_DAILY,
    MARTS_SUCCESS_METRIC_SUMMARY,
    metric_daily,
    success_metric_summary,
)
from transforms.lint import MARTS_OKR_LINT
from transforms.measure import MetricReader
from transforms.okr import quarter_as_of
from transforms.overview import MARTS_OKR_SCORECARD, okr_scorecard
from transforms.reported import MARTS_REPORTED_GRADES
from transforms.tables import (
    MARTS_DIM_KEY_RESULTS,
    MARTS_DIM_METRICS,
    MARTS_DIM_OBJECTIVES,
    MARTS_KEY_RESULT_ATTAINMENT,
    MARTS_KEY_RESULT_PROGRESS_DAILY,
    MARTS_OBJECTIVE_ATTAINMENT,
    MARTS_QUARTER_AS_OF,
    MARTS_TEAM_ATTAINMENT,
)
from warehouse.tables import Table

OKR_MARTS: dict[str, Table] = {
    "key_result_progress_daily": MARTS_KEY_RESULT_PROGRESS_DAILY,
    "key_result_attainment": MARTS_KEY_RESULT_ATTAINMENT,
    "objective_attainment": MARTS_OBJECTIVE_ATTAINMENT,
    "team_attainment": MARTS_TEAM_ATTAINMENT,
    "metric_daily": MARTS_METRIC_DAILY,
    "success_metric_summary": MARTS_SUCCESS_METRIC_SUMMARY,
    "okr_scorecard": MARTS_OKR_SCORECARD,
    "quarter_as_of": MARTS_QUARTER_AS_OF,
    "key_result_checkins": MARTS_KEY_RESULT_CHECKINS,
}
MART_INPUTS: dict[str, tuple[str, ...]] = {
    "objective_attainment": ("key_result_attainment",),
    "team_attainment": ("objective_attainment",),
    "okr_scorecard": ("objective_attainment", "success_metric_summary"),
    "reported_grades": ("key_result_attainment", "objective_attainment"),
}
"""The marts each mart is computed from; a mart not named here reads the staging tables."""

RECORD_MARTS: dict[str, Table] = {"reported_grades": MARTS_REPORTED_GRADES}
"""Marts written once per key and never replaced (transforms.reported), from OKR_MARTS' frames."""

MART_TABLES = (
    *OKR_MARTS.values(),
    *RECORD_MARTS.values(),
    MARTS_DIM_METRICS,
    MARTS_DIM_OBJECTIVES,
    MARTS_DIM_KEY_RESULTS,
    MARTS_OKR_LINT,
)
"""Every marts table: the OKR marts, the dims and the lint."""


def mart_reader(
    con: duckdb.DuckDBPyConnection, config: OkrConfig, quarters: list[Quarter]
) -> MetricReader:
    """The reader of the marts of `quarters`: staging rows older than anything they read are
    left unread (see MetricReader.since)."""
    firsts = [earliest_needed(config, quarters), kpi_first_day(config, quarters)]
    return MetricReader(con, config, since=min((d for d in firsts if d), default=None))


def okr_mart_frames(
    con: duckdb.DuckDBPyConnection,
    config: OkrConfig,
    quarters: list[Quarter],
    today: date,
    reader: MetricReader | None = None,
) -> dict[str, pl.DataFrame]:
    """Every row of the marts in OKR_MARTS for `quarters` as of `today`, by mart name, with
    the mart's columns in order, measured by `reader` (default `mart_reader`: a caller passing
    its own can ask it more afterwards, from what it has read)."""
    reader = reader or mart_reader(con, config, quarters)
    results = compute_okr_results(con, config, quarters, today, reader)
    summary = success_metric_summary(reader, config, quarters, today)
    checkins = read_checkins(con, quarters, today)
    kr_rows = with_latest_checkins(results.key_result_attainment, checkins)
    frames = {
        **vars(results),
        "key_result_attainment": kr_rows,
        "key_result_checkins": key_result_checkins(
            config, checkins, results.key_result_progress_daily
        ),
        "metric_daily": metric_daily(reader, config, quarters, today),
        "success_metric_summary": summary,
        "quarter_as_of": quarter_as_of(quarters, today),
        "okr_scorecard": okr_scorecard(config, results.objective_attainment, kr_rows, summary),
    }
    return {name: frames[name].select(table.column_names) for name, table in OKR_MARTS.items()}
