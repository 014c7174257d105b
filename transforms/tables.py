"""The OKR marts' table definitions (each a `warehouse.tables.Table`): key results, objectives and
teams per quarter, the daily burn-up, and the dimensions of the config."""

from __future__ import annotations

from connectors.checkins.tables import CONFIDENCE_LEVEL_TEXT
from transforms.okr import STATUSES as KR_STATUSES
from warehouse.tables import Column, Table


def quarter_columns() -> tuple[Column, ...]:
    return (
        Column("quarter", "VARCHAR", "Fiscal quarter label, e.g. 2025-Q1.", False),
        Column(
            "quarter_start", "DATE", "First day of the fiscal quarter (the partition key).", False
        ),
    )


_PROGRESS = (
    Column(
        "raw_progress",
        "DOUBLE",
        "Unclamped progress r: (a-b)/(t-b), a/t for cumulative metrics, "
        "share of days met for maintain types, 0/1 for milestones.",
    ),
    Column(
        "progress", "DOUBLE", "Progress p = r clamped to [0, 1]; null when it cannot be measured."
    ),
    Column(
        "expected_progress",
        "DOUBLE",
        "Expected progress e: elapsed share of the KR window in days "
        "(1 for maintain types; 0 before the end for milestones).",
    ),
    Column(
        "status",
        "VARCHAR",
        "not_started, no_data, achieved, missed, stale, on_track, at_risk or "
        "off_track (first match wins).",
        False,
    ),
    Column("grade", "VARCHAR", "Google scale on progress: red < 0.4 <= yellow < 0.7 <= green."),
)

def flag_description(status: str = "the status") -> str:
    """What confidence_flag says, against `status` (the column it compares with)."""
    return (
        "high_confidence_off_track or low_confidence_on_track when the owner's confidence level "
        f"disagrees with {status}; null when they agree or there is no confidence."
    )


CHECKIN_COLUMNS = (
    Column(
        "checkin_date", "DATE", "Day of the latest check-in on or before as_of_date in the quarter."
    ),
    Column("confidence", "DOUBLE", "Its confidence, 0-10 (null: none given)."),
    Column("confidence_level", "VARCHAR", f"{CONFIDENCE_LEVEL_TEXT}."),
    Column("checkin_comment", "VARCHAR", "Its comment."),
    Column("checkin_author", "VARCHAR", "Who checked in."),
    Column("confidence_flag", "VARCHAR", flag_description("display_status")),
)
"""The columns `with_latest_checkins` adds to marts.key_result_attainment."""


MARTS_KEY_RESULT_ATTAINMENT = Table(
    "marts",
    "key_result_attainment",
    "One row per key result and fiscal quarter its window touches, measured as of "
    "min(quarter end, KR end, today).",
    (
        Column("kr_id", "VARCHAR", "Key result id from okrs.yaml.", False),
        *quarter_columns(),
        Column("kr_title", "VARCHAR", "Key result title.", False),
        Column("objective_id", "VARCHAR", "Objective the KR belongs to.", False),
        Column("metric_id", "VARCHAR", "Metric the KR measures.", False),
        Column("team", "VARCHAR", "Team of the objective.", False),
        Column("owner", "VARCHAR", "KR owner, else the objective's owner."),
        Column(
            "kr_type",
            "VARCHAR",
            "increase, decrease, maintain_above, maintain_below, within_range or milestone.",
            False,
        ),
        Column("period_start", "DATE", "First day of the KR window S.", False),
        Column("period_end", "DATE", "Last day of the KR window E.", False),
        Column(
            "as_of_date", "DATE", "Date the row is measured at: min(quarter end, E, today).", False
        ),
        Column(
            "baseline",
            "DOUBLE",
            "Baseline b (configured, or measured as of S - 1 for baseline: auto).",
        ),
        Column(
            "target",
            "DOUBLE",
            "Target t (relative targets applied to the baseline); null for within_range.",
        ),
        Column("range_low", "DOUBLE", "Lower bound of a within_range KR."),
        Column("range_high", "DOUBLE", "Upper bound of a within_range KR."),
        Column(
            "current_value", "DOUBLE", "Measured value a(as_of_date); null when there is no data."
        ),
        *_PROGRESS,
        Column("weight", "DOUBLE", "Weight of the KR in its objective's score.", False),
        Column(
            "success_level", "DOUBLE", "Success level L: 1.0 committed, 0.7 aspirational.", False
        ),
        Column("data_through", "DATE", "Date of the metric's latest data on or before as_of_date."),
        Column("note", "VARCHAR", "Why progress is null or the KR has not started, when it is."),
        Column(
            "stale_after_days",
            "BIGINT",
            "Days without data after which the KR is shown stale: the metric's freshness, else "
            "its trailing window's length, else 31.",
            False,
        ),
        Column(
            "display_status",
            "VARCHAR",
            "The status as shown on the page and in the CLI: status, except that a KR that would "
            "read on_track, at_risk or off_track is stale once as_of_date - data_through exceeds "
            "stale_after_days (even without a configured freshness), else too_few_to_judge when "
            "its ratio's denominator_value is below the metric's min_denominator.",
        ),
        Column(
            "grade_is_final",
            "BOOLEAN",
            "True once the quarter has closed (its last day is on or before today); before, the "
            "grade is provisional.",
            False,
        ),
        Column(
            "best_value",
            "DOUBLE",
            "Best measured value on any day from period_start to as_of_date, in the metric's "
            "direction: how close a milestone came to its target.",
        ),
        Column(
            "display_value",
            "DOUBLE",
            "The value shown: current_value, except for a trailing-window metric whose latest "
            "data is older than as_of_date, shown as of data_through (the window does not "
            "slide past the data).",
        ),
        Column("display_value_date", "DATE", "The day display_value is measured at."),
        Column(
            "denominator_value",
            "DOUBLE",
            "For a KR on a ratio metric: the denominator over the same window as display_value "
            "(how many deals, visits, ... the ratio is of); null otherwise.",
        ),
        *CHECKIN_COLUMNS,
    ),
    primary_key=("kr_id", "quarter_start"),
    partition_column="quarter_start",
)

MARTS_KEY_RESULT_PROGRESS_DAILY = Table(
    "marts",
    "key_result_progress_daily",
    "Burn-up history: one row per key result and day of its window up to today.",
    (
        Column("kr_id", "VARCHAR", "Key result id.", False),
        Column("as_of_date", "DATE", "The day measured.", False),
        *quarter_columns(),
        Column("objective_id", "VARCHAR", "Objective the KR belongs to.", False),
        Column("metric_id", "VARCHAR", "Metric the KR measures.", False),
        Column("kr_type", "VARCHAR", "KR type.", False),
        Column("baseline", "DOUBLE", "Baseline b."),
        Column("target", "DOUBLE", "Target t."),
        Column("current_value", "DOUBLE", "Measured value a(as_of_date)."),
        *_PROGRESS,
        Column("data_through", "DATE", "Date of the metric's latest data on or before as_of_date."),
    ),
    primary_key=("kr_id", "as_of_date"),
    partition_column="quarter_start",
)

MARTS_OBJECTIVE_ATTAINMENT = Table(
    "marts",
    "objective_attainment",
    "One row per objective and fiscal quarter its period touches: score, expected progress, status "
    "and the bottom-up roll-up of its child objectives.",
    (
        Column("objective_id", "VARCHAR", "Objective id from okrs.yaml.", False),
        *quarter_columns(),
        Column("title", "VARCHAR", "Objective title.", False),
        Column("team", "VARCHAR", "Owning team.", False),
        Column("owner", "VARCHAR", "Owner, when set."),
        Column("type", "VARCHAR", "committed (success level 1.0) or aspirational (0.7).", False),
        Column("parent_id", "VARCHAR", "Parent objective, when set."),
        Column("weight", "DOUBLE", "Weight in the parent's roll-up.", False),
        Column("period_start", "DATE", "First day of the objective's period.", False),
        Column("period_end", "DATE", "Last day of the objective's period.", False),
        Column("as_of_date", "DATE", "min(quarter end, period end, today).", False),
        Column(
            "score",
            "DOUBLE",
            "O = sum(w*p)/sum(w) over its KRs with non-null progress; null if none.",
        ),
        Column("expected_progress", "DOUBLE", "Weighted mean of the same KRs' expected progress."),
        Column(
            "status",
            "VARCHAR",
            "not_started, no_data, achieved, missed, on_track, at_risk or off_track; "
            "objectives without KRs take it from rollup_score.",
            False,
        ),
        Column("grade", "VARCHAR", "Google scale on the score (rollup_score without KRs)."),
        Column(
            "rollup_score",
            "DOUBLE",
            "(sum w*p over own KRs + sum w_c*rollup_score_c over child "
            "objectives) / (their weights), bottom-up.",
        ),
        Column(
            "rollup_expected_progress", "DOUBLE", "The same weighted mean over expected progress."
        ),
        Column(
            "kr_count", "BIGINT", "Key results of the objective reported in this quarter.", False
        ),
        *(
            Column(f"kr_{status}", "BIGINT", f"Key results with status {status}.", False)
            for status in KR_STATUSES
        ),
        Column(
            "display_status",
            "VARCHAR",
            "The status as shown: stale when it would read on_track, at_risk or off_track but "
            "every KR with progress is shown stale (key_result_attainment.display_status).",
            False,
        ),
        Column(
            "grade_is_final",
            "BOOLEAN",
            "True once the quarter has closed; before, the grade is provisional.",
            False,
        ),
    ),
    primary_key=("objective_id", "quarter_start"),
    partition_column="quarter_start",
)

MARTS_TEAM_ATTAINMENT = Table(
    "marts",
    "team_attainment",
    "One row per team and quarter: the mean rollup_score of the team's objectives whose parent "
    "is in another team (or that have none).",
    (
        Column("team", "VARCHAR", "Team.", False),
        *quarter_columns(),
        Column("as_of_date", "DATE", "Latest as-of date among the objectives counted.", False),
        Column("score_weighted", "DOUBLE", "Mean rollup_score weighted by objective weight."),
        Column("score_unweighted", "DOUBLE", "Plain mean rollup_score."),
        Column("expected_progress", "DOUBLE", "Weighted mean rollup_expected_progress."),
        Column("objective_count", "BIGINT", "Objectives counted.", False),
        Column(
            "scored_objective_count", "BIGINT", "Of those, objectives with a rollup_score.", False
        ),
    ),
    primary_key=("team", "quarter_start"),
    partition_column="quarter_start",
)

MARTS_QUARTER_AS_OF = Table(
    "marts",
    "quarter_as_of",
    "One row per fiscal quarter the marts hold: the date its rows are measured as of. A run "
    "replaces only the quarters it computes, so after a partial backfill quarters can be as of "
    "different dates; this says which.",
    (
        *quarter_columns(),
        Column("quarter_end", "DATE", "Last day of the fiscal quarter.", False),
        Column(
            "as_of_date",
            "DATE",
            "min(quarter end, today) of the run that computed the quarter: no row of the quarter "
            "reads data after it.",
            False,
        ),
        Column("run_today", "DATE", "Today (OKR_AS_OF) of the run that computed it.", False),
        Column(
            "is_closed",
            "BOOLEAN",
            "True when the quarter had ended on or before that day: its grades are final.",
            False,
        ),
    ),
    primary_key=("quarter_start",),
    partition_column="quarter_start",
)

MARTS_DIM_METRICS = Table(
    "marts",
    "dim_metrics",
    "Every metric of metrics.yaml, as configured.",
    (
        Column("metric_id", "VARCHAR", "Metric id.", False),
        Column("name", "VARCHAR", "Display name.", False),
        Column("description", "VARCHAR", "What the metric means."),
        Column("source", "VARCHAR", "Staging source it reads (null for ratios)."),
        Column(
            "aggregation",
            "VARCHAR",
            "sum, avg, min, max, last, count, count_distinct or ratio.",
            False,
        ),
        Column("column_name", "VARCHAR", "Column aggregated."),
        Column("filter", "JSON", "Row filter: column -> value or list."),
        Column("time_column", "VARCHAR", "Column that dates a row."),
        Column("metric_window", "VARCHAR", "'period' or a trailing 'Nd' window.", False),
        Column("numerator", "VARCHAR", "Numerator metric of a ratio."),
        Column("denominator", "VARCHAR", "Denominator metric of a ratio."),
        Column(
            "min_denominator",
            "DOUBLE",
            "A ratio's minimum denominator: below it its KRs are shown too_few_to_judge.",
        ),
        Column("unit", "VARCHAR", "Unit of the value."),
        Column(
            "display_format",
            "VARCHAR",
            "Excel-style number format for the unit (Evidence, spreadsheets): 0.0% for a ratio "
            '(stored as a fraction), 0.0"%" for %, "EUR "#,##0 for a currency, else #,##0.',
            False,
        ),
        Column(
            "d3_format",
            "VARCHAR",
            "d3-format string for the unit (Superset): .1% for a ratio, .1f for % (add a % "
            "suffix), else ,.0f.",
            False,
        ),
        Column("direction", "VARCHAR", "higher_is_better or lower_is_better.", False),
        Column("kind", "VARCHAR", "leading or lagging.", False),
        Column("owner", "VARCHAR", "Owner."),
        Column("target_value", "DOUBLE", "KPI target for health, when set."),
        Column("target_tolerance", "DOUBLE", "Tolerance of the KPI target (fraction)."),
        Column("target_grain", "VARCHAR", "Grain the KPI target is set for."),
        Column("freshness_days", "BIGINT", "Data older than this many days is stale."),
    ),
    primary_key=("metric_id",),
)

MARTS_DIM_OBJECTIVES = Table(
    "marts",
    "dim_objectives",
    "Every objective of okrs.yaml, as configured.",
    (
        Column("objective_id", "VARCHAR", "Objective id.", False),
        Column("title", "VARCHAR", "Title.", False),
        Column("description", "VARCHAR", "Description."),
        Column("team", "VARCHAR", "Team.", False),
        Column("owner", "VARCHAR", "Owner."),
        Column("type", "VARCHAR", "committed or aspirational.", False),
        Column("success_level", "DOUBLE", "1.0 committed, 0.7 aspirational.", False),
        Column("period_start", "DATE", "First day of the period.", False),
        Column("period_end", "DATE", "Last day of the period.", False),
        Column("parent_id", "VARCHAR", "Parent objective."),
        Column("weight", "DOUBLE", "Weight in the parent's roll-up.", False),
        Column("depth", "BIGINT", "0 for top-level objectives, 1 for their children, ...", False),
        Column(
            "related_metrics", "VARCHAR[]", "Success metrics shown beside the objective.", False
        ),
    ),
    primary_key=("objective_id",),
)

MARTS_DIM_KEY_RESULTS = Table(
    "marts",
    "dim_key_results",
    "Every key result of okrs.yaml, as configured.",
    (
        Column("kr_id", "VARCHAR", "Key result id.", False),
        Column("objective_id", "VARCHAR", "Objective it belongs to.", False),
        Column("title", "VARCHAR", "Title.", False),
        Column("metric_id", "VARCHAR", "Metric it measures.", False),
        Column("kr_type", "VARCHAR", "KR type.", False),
        Column("baseline_config", "VARCHAR", "Baseline as configured: a number or 'auto'.", False),
        Column("target_config", "VARCHAR", "Target as configured: a number or a relative change."),
        Column("range_low", "DOUBLE", "Lower bound of a within_range KR."),
        Column("range_high", "DOUBLE", "Upper bound of a within_range KR."),
        Column("period_start", "DATE", "First day of the KR window.", False),
        Column("period_end", "DATE", "Last day of the KR window.", False),
        Column("weight", "DOUBLE", "Weight in the objective's score.", False),
        Column("owner", "VARCHAR", "KR owner, else the objective's."),
    ),
    primary_key=("kr_id",),
)
