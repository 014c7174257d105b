"""Graded at close: once a quarter has closed, the grades computed for it are the record. The
first run that computes a closed quarter writes each KR's and objective's value, progress,
status and grade into `marts.reported_grades`, and no later run changes them; the marts keep
showing the current (restated) numbers, and `marts.grade_restatements` lists every reported row
that the current numbers no longer match."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from transforms.tables import MARTS_KEY_RESULT_ATTAINMENT, MARTS_OBJECTIVE_ATTAINMENT
from warehouse.tables import Column, Table, View

_MEASURED = (
    Column(
        "value",
        "DOUBLE",
        "A KR's measured value (current_value); null for objectives, which have a score only.",
    ),
    Column(
        "progress",
        "DOUBLE",
        "A KR's progress p, or an objective's score (its rollup_score when it has no KRs).",
    ),
    Column("status", "VARCHAR", "Status (the computation rules).", False),
    Column("display_status", "VARCHAR", "Status as shown on the page."),
    Column("grade", "VARCHAR", "Grade: red, yellow or green."),
)

MARTS_REPORTED_GRADES = Table(
    "marts",
    "reported_grades",
    "The record of closed quarters: each key result's and objective's numbers as first computed "
    "after its quarter closed, with when. Written once per (object, quarter); later runs and "
    "late data never change a row (grade_restatements shows what changed since).",
    (
        Column("object_type", "VARCHAR", "key_result or objective.", False),
        Column("object_id", "VARCHAR", "KR id or objective id.", False),
        Column("quarter", "VARCHAR", "Fiscal quarter label, e.g. 2025-Q1.", False),
        Column("quarter_start", "DATE", "First day of the fiscal quarter.", False),
        Column("objective_id", "VARCHAR", "The objective (itself, for an objective).", False),
        Column("title", "VARCHAR", "KR or objective title when reported.", False),
        Column("as_of_date", "DATE", "Date the reported numbers are measured at.", False),
        *_MEASURED,
        Column("reported_at", "TIMESTAMPTZ", "When the run that recorded the row ran.", False),
    ),
    primary_key=("object_type", "object_id", "quarter_start"),
)


def reported_grades(
    kr_rows: pl.DataFrame, objective_rows: pl.DataFrame, reported_at: datetime
) -> pl.DataFrame:
    """The rows of closed quarters (grade_is_final) in `marts.reported_grades` shape; the
    write keeps only those whose key is new."""
    krs = kr_rows.filter(pl.col("grade_is_final")).select(
        object_type=pl.lit("key_result"),
        object_id="kr_id",
        quarter="quarter",
        quarter_start="quarter_start",
        objective_id="objective_id",
        title="kr_title",
        as_of_date="as_of_date",
        value="current_value",
        progress="progress",
        status="status",
        display_status="display_status",
        grade="grade",
    )
    objectives = objective_rows.filter(pl.col("grade_is_final")).select(
        object_type=pl.lit("objective"),
        object_id="objective_id",
        quarter="quarter",
        quarter_start="quarter_start",
        objective_id="objective_id",
        title="title",
        as_of_date="as_of_date",
        value=pl.lit(None, pl.Float64),
        progress=pl.when(pl.col("kr_count") > 0).then("score").otherwise("rollup_score"),
        status="status",
        display_status="display_status",
        grade="grade",
    )
    return pl.concat([krs, objectives]).with_columns(
        reported_at=pl.lit(reported_at, pl.Datetime("us", "UTC"))
    ).select(MARTS_REPORTED_GRADES.column_names)


_CURRENT = f"""
    SELECT 'key_result' AS object_type, kr_id AS object_id, quarter_start,
           current_value AS value, progress, status, grade
    FROM {MARTS_KEY_RESULT_ATTAINMENT.fqn}
    UNION ALL
    SELECT 'objective', objective_id, quarter_start, NULL::DOUBLE,
           CASE WHEN kr_count > 0 THEN score ELSE rollup_score END, status, grade
    FROM {MARTS_OBJECTIVE_ATTAINMENT.fqn}
"""

MARTS_GRADE_RESTATEMENTS = View(
    "marts",
    "grade_restatements",
    "Every reported grade of a closed quarter whose current (restated) numbers differ from what "
    "was reported: late data or a source edit after the close. One row per (object, quarter).",
    (
        Column("object_type", "VARCHAR", "key_result or objective."),
        Column("object_id", "VARCHAR", "KR id or objective id."),
        Column("quarter", "VARCHAR", "Fiscal quarter label."),
        Column("quarter_start", "DATE", "First day of the fiscal quarter."),
        Column("objective_id", "VARCHAR", "The objective (itself, for an objective)."),
        Column("title", "VARCHAR", "KR or objective title when reported."),
        Column("reported_at", "TIMESTAMPTZ", "When the reported numbers were recorded."),
        Column("reported_value", "DOUBLE", "A KR's value as reported."),
        Column("restated_value", "DOUBLE", "A KR's value as computed now."),
        Column("value_difference", "DOUBLE", "restated_value - reported_value."),
        Column("reported_progress", "DOUBLE", "Progress (objective: score) as reported."),
        Column("restated_progress", "DOUBLE", "Progress (objective: score) as computed now."),
        Column("progress_difference", "DOUBLE", "restated_progress - reported_progress."),
        Column("reported_status", "VARCHAR", "Status as reported."),
        Column("restated_status", "VARCHAR", "Status as computed now."),
        Column("reported_grade", "VARCHAR", "Grade as reported."),
        Column("restated_grade", "VARCHAR", "Grade as computed now."),
    ),
    f"""
    WITH current AS ({_CURRENT})
    SELECT r.object_type, r.object_id, r.quarter, r.quarter_start, r.objective_id, r.title,
           r.reported_at,
           r.value AS reported_value, c.value AS restated_value,
           c.value - r.value AS value_difference,
           r.progress AS reported_progress, c.progress AS restated_progress,
           c.progress - r.progress AS progress_difference,
           r.status AS reported_status, c.status AS restated_status,
           r.grade AS reported_grade, c.grade AS restated_grade
    FROM {MARTS_REPORTED_GRADES.fqn} r
    JOIN current c USING (object_type, object_id, quarter_start)
    WHERE r.value IS DISTINCT FROM c.value OR r.progress IS DISTINCT FROM c.progress
       OR r.status IS DISTINCT FROM c.status OR r.grade IS DISTINCT FROM c.grade
    """,
    example="SELECT quarter, title, reported_grade, restated_grade, reported_progress, "
    "restated_progress FROM marts.grade_restatements ORDER BY quarter_start, object_id",
)
