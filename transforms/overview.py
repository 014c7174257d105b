"""`marts.okr_scorecard`: each objective with its key results and its related success metrics
side by side, one row per item, so a BI table shows OKRs and KPI health together."""

from __future__ import annotations

import polars as pl

from transforms.config import OkrConfig
from transforms.tables import flag_description
from warehouse.tables import Column, Table

MARTS_OKR_SCORECARD = Table(
    "marts",
    "okr_scorecard",
    "Objectives with their key results and their related success metrics' health in the same "
    "quarter, side by side: one row per (objective, quarter, item).",
    (
        Column("objective_id", "VARCHAR", "Objective id.", False),
        Column("quarter", "VARCHAR", "Fiscal quarter label.", False),
        Column("quarter_start", "DATE", "First day of the quarter (the partition key).", False),
        Column("item_type", "VARCHAR", "key_result or success_metric.", False),
        Column("item_id", "VARCHAR", "KR id or metric id.", False),
        Column("sort_order", "BIGINT", "Order of the item within its objective.", False),
        Column("objective_title", "VARCHAR", "Objective title.", False),
        Column("team", "VARCHAR", "Team of the objective.", False),
        Column("owner", "VARCHAR", "Owner of the objective."),
        Column("objective_status", "VARCHAR", "Objective status in the quarter.", False),
        Column("objective_score", "DOUBLE", "Objective score (rollup_score when it has no KRs)."),
        Column("objective_expected_progress", "DOUBLE", "Objective expected progress."),
        Column("as_of_date", "DATE", "Date the objective is measured at.", False),
        Column("item_name", "VARCHAR", "KR title or metric name.", False),
        Column("metric_id", "VARCHAR", "Metric behind the item.", False),
        Column("value", "DOUBLE", "KR current value, or the metric's value over the quarter."),
        Column("target", "DOUBLE", "KR target, or the metric's KPI target for the quarter."),
        Column("progress", "DOUBLE", "KR progress p (null for success metrics)."),
        Column("expected_progress", "DOUBLE", "KR expected progress (null for success metrics)."),
        Column(
            "status",
            "VARCHAR",
            "KR status, or the metric's health: green, yellow, red, no_target, no_data.",
            False,
        ),
        Column("is_provisional", "BOOLEAN", "A success metric's quarter is still running."),
        Column("confidence", "DOUBLE", "A KR's latest confidence checked in this quarter, 0-10."),
        Column("checkin_comment", "VARCHAR", "A KR's latest check-in comment this quarter."),
        Column("confidence_flag", "VARCHAR", flag_description()),
    ),
    primary_key=("objective_id", "quarter_start", "item_type", "item_id"),
    partition_column="quarter_start",
)


def okr_scorecard(
    config: OkrConfig,
    objective_rows: pl.DataFrame,
    kr_rows: pl.DataFrame,
    summary_rows: pl.DataFrame,
) -> pl.DataFrame:
    """Join the quarter's objective rows with their KR rows and with the quarter-grain summary
    rows of their related metrics."""
    objectives = objective_rows.select(
        "objective_id",
        "quarter",
        "quarter_start",
        objective_title="title",
        team="team",
        owner="owner",
        objective_status="status",
        objective_score=pl.coalesce("score", "rollup_score"),
        objective_expected_progress=pl.coalesce("expected_progress", "rollup_expected_progress"),
        as_of_date="as_of_date",
    )
    krs = kr_rows.select(
        "objective_id",
        "quarter_start",
        item_type=pl.lit("key_result"),
        item_id="kr_id",
        item_name="kr_title",
        metric_id="metric_id",
        value="current_value",
        target="target",
        progress="progress",
        expected_progress="expected_progress",
        status="status",
        is_provisional=pl.lit(None, pl.Boolean),
        confidence="confidence",
        checkin_comment="checkin_comment",
        confidence_flag="confidence_flag",
    ).with_columns(sort_order=pl.int_range(pl.len()).over("objective_id", "quarter_start"))
    related = pl.DataFrame(
        [
            {"objective_id": o.id, "metric_id": m, "sort_order": 1000 + i}
            for o in config.objectives.values()
            for i, m in enumerate(o.related_metrics)
        ],
        schema={"objective_id": pl.String, "metric_id": pl.String, "sort_order": pl.Int64},
    )
    metrics = (
        related.join(objectives.select("objective_id", "quarter_start"), on="objective_id")
        .join(
            summary_rows.filter(pl.col("grain") == "quarter").select(
                "metric_id",
                pl.col("period_start").alias("quarter_start"),
                item_name="metric_name",
                value="value",
                target="target_value",
                status="health",
                is_provisional="is_provisional",
            ),
            on=["metric_id", "quarter_start"],
            how="left",
        )
        .with_columns(
            item_type=pl.lit("success_metric"),
            item_id=pl.col("metric_id"),
            item_name=pl.coalesce("item_name", "metric_id"),
            status=pl.coalesce("status", pl.lit("no_data")),
            progress=pl.lit(None, pl.Float64),
            expected_progress=pl.lit(None, pl.Float64),
        )
    )
    items = pl.concat([krs, metrics], how="diagonal_relaxed")
    return (
        objectives.join(items, on=["objective_id", "quarter_start"], how="inner")
        .select(MARTS_OKR_SCORECARD.column_names)
        .cast(MARTS_OKR_SCORECARD.polars_schema())
        .sort("quarter_start", "objective_id", "sort_order")
    )
