"""The views BI users reach for first, over the marts (so the published snapshot has them too):
the latest status of every KR, the running quarter's scorecard, and reported versus restated
grades (`transforms.reported`)."""

from __future__ import annotations

import duckdb

from transforms.overview import MARTS_OKR_SCORECARD
from transforms.reported import MARTS_GRADE_RESTATEMENTS, MARTS_REPORTED_GRADES
from transforms.tables import (
    MARTS_DIM_METRICS,
    MARTS_KEY_RESULT_ATTAINMENT,
    MARTS_OBJECTIVE_ATTAINMENT,
    MARTS_QUARTER_AS_OF,
)
from warehouse.tables import Column, View
from warehouse.writes import ensure_tables, transaction

_KR = {c.name: c for c in MARTS_KEY_RESULT_ATTAINMENT.columns}

MARTS_KR_LATEST_STATUS = View(
    "marts",
    "kr_latest_status",
    "Every key result once: its row of the latest quarter it is reported in, with its metric's "
    "name, unit and display format.",
    (
        *(
            _KR[name]
            for name in ("kr_id", "kr_title", "objective_id", "team", "owner", "metric_id")
        ),
        Column("metric_name", "VARCHAR", "Display name of the metric."),
        Column("unit", "VARCHAR", "Unit of the metric's values."),
        Column("display_format", "VARCHAR", "Excel-style number format for the unit."),
        *(
            _KR[name]
            for name in (
                "quarter",
                "quarter_start",
                "as_of_date",
                "current_value",
                "target",
                "progress",
                "expected_progress",
                "status",
                "display_status",
                "grade",
                "grade_is_final",
                "data_through",
            )
        ),
    ),
    f"""
    SELECT k.kr_id, k.kr_title, k.objective_id, k.team, k.owner, k.metric_id,
           m.name AS metric_name, m.unit, m.display_format,
           k.quarter, k.quarter_start, k.as_of_date, k.current_value, k.target, k.progress,
           k.expected_progress, k.status, k.display_status, k.grade, k.grade_is_final,
           k.data_through
    FROM {MARTS_KEY_RESULT_ATTAINMENT.fqn} k
    LEFT JOIN {MARTS_DIM_METRICS.fqn} m USING (metric_id)
    QUALIFY row_number() OVER (PARTITION BY k.kr_id ORDER BY k.quarter_start DESC) = 1
    """,
    example="SELECT team, display_status, count(*) AS krs FROM marts.kr_latest_status "
    "GROUP BY ALL ORDER BY ALL",
)

MARTS_RUNNING_QUARTER_SCORECARD = View(
    "marts",
    "running_quarter_scorecard",
    "marts.okr_scorecard for the running quarter: the latest quarter that had not closed when it "
    "was computed (marts.quarter_as_of), else the latest quarter.",
    MARTS_OKR_SCORECARD.columns,
    f"""
    SELECT s.* FROM {MARTS_OKR_SCORECARD.fqn} s
    WHERE s.quarter_start = (
        SELECT coalesce(max(quarter_start) FILTER (WHERE NOT is_closed), max(quarter_start))
        FROM {MARTS_QUARTER_AS_OF.fqn})
    """,
    example="SELECT objective_title, item_name, status, progress FROM "
    "marts.running_quarter_scorecard ORDER BY objective_id, sort_order",
)

MART_VIEWS = (MARTS_KR_LATEST_STATUS, MARTS_RUNNING_QUARTER_SCORECARD, MARTS_GRADE_RESTATEMENTS)
VIEW_INPUTS = (
    MARTS_KEY_RESULT_ATTAINMENT,
    MARTS_DIM_METRICS,
    MARTS_OKR_SCORECARD,
    MARTS_QUARTER_AS_OF,
    MARTS_OBJECTIVE_ATTAINMENT,
    MARTS_REPORTED_GRADES,
)
"""The tables the views read (created empty when missing, so every view binds)."""


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create or replace every mart view in one transaction: a reader never sees a view
    without its comments, and one commit instead of one per statement halves the time."""
    ensure_tables(con, *VIEW_INPUTS)
    with transaction(con):
        for view in MART_VIEWS:
            view.create(con)
