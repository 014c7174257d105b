"""The OKR math of docs/computation.md as Polars expressions: progress, expected progress, status
and grade per KR and day; objective scores, the parent roll-up and team scores per quarter.

Nothing here reads the warehouse: measured values arrive as a frame, so every rule can be tested
on numbers worked out by hand.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from transforms.calendar import Quarter
from transforms.config import OkrConfig, Settings
from transforms.kr_types import (
    KrTerms,
    RelativeTarget,
    by_type,
    clamp01,
    first_reason,
    rounded,
)

STATUSES = (
    "not_started",
    "no_data",
    "achieved",
    "missed",
    "stale",
    "on_track",
    "at_risk",
    "off_track",
)

DEFAULT_STALE_DAYS = 31
"""Days without data after which a KR on a metric without freshness or trailing window reads
as stale: a month with no data at all."""

KR_PARAMETERS_SCHEMA = {
    "kr_id": pl.String,
    "kr_title": pl.String,
    "objective_id": pl.String,
    "metric_id": pl.String,
    "team": pl.String,
    "owner": pl.String,
    "kr_type": pl.String,
    "period_start": pl.Date,
    "period_end": pl.Date,
    "baseline": pl.Float64,
    "target": pl.Float64,
    "range_low": pl.Float64,
    "range_high": pl.Float64,
    "weight": pl.Float64,
    "success_level": pl.Float64,
    "cumulative": pl.Boolean,
    "higher_is_better": pl.Boolean,
    "freshness_days": pl.Int64,
    "stale_after_days": pl.Int64,
}


def stale_after_days(metric) -> int:
    """Days without data after which a KR on `metric` is shown stale: its freshness, else its
    trailing window's length (the window then holds no data at all), else DEFAULT_STALE_DAYS."""
    return metric.freshness_days or metric.trailing_days or DEFAULT_STALE_DAYS


def kr_parameters(config: OkrConfig, baselines: dict[str, float | None]) -> pl.DataFrame:
    """One row per KR with its resolved baseline and target (relative targets applied)."""
    rows = []
    for kr_id, resolved in config.key_results.items():
        kr, metric = resolved.kr, resolved.metric
        baseline = baselines.get(kr_id) if kr.baseline == "auto" else float(kr.baseline)
        target = resolved.target
        if isinstance(target, RelativeTarget):
            target = target.apply(baseline)
        rows.append(
            {
                "kr_id": kr_id,
                "kr_title": kr.title,
                "objective_id": resolved.objective.id,
                "metric_id": metric.id,
                "team": resolved.objective.team,
                "owner": kr.owner or resolved.objective.owner,
                "kr_type": kr.type,
                "period_start": resolved.start,
                "period_end": resolved.end,
                "baseline": baseline,
                "target": target,
                "range_low": kr.range[0] if kr.range else None,
                "range_high": kr.range[1] if kr.range else None,
                "weight": kr.weight,
                "success_level": resolved.objective.success_level,
                "cumulative": metric.is_cumulative,
                "higher_is_better": metric.direction == "higher_is_better",
                "freshness_days": metric.freshness_days,
                "stale_after_days": stale_after_days(metric),
            }
        )
    return pl.DataFrame(rows, schema=KR_PARAMETERS_SCHEMA)


def key_result_daily(
    params: pl.DataFrame, series: pl.DataFrame, settings: Settings
) -> pl.DataFrame:
    """Progress, expected progress, status and grade of each KR on each day of `series`
    (`kr_id`, `date`, `value`, `latest_date`; days from the KR's start, in order). What differs
    between KR types comes from their definitions in transforms.kr_types."""
    terms = KrTerms()
    # Why a KR with data still has no progress (also surfaced by marts.okr_lint).
    unmeasurable = first_reason(terms)
    raw = (
        pl.when(unmeasurable.is_not_null())
        .then(None)
        .otherwise(by_type(lambda kr_type: kr_type.progress(terms)))
    )
    frame = (
        series.join(params, on="kr_id", how="inner")
        .sort("kr_id", "date")
        .with_columns(
            raw_progress=raw,
            expected_progress=by_type(lambda kr_type: kr_type.expected(terms)),
            note=unmeasurable,
        )
        .with_columns(progress=clamp01(pl.col("raw_progress")))
    )
    value = pl.col("value")
    best = pl.when(pl.col("higher_is_better")).then(value.cum_max()).otherwise(value.cum_min())
    return frame.with_columns(
        status=_kr_status(settings, terms),
        grade=grade(pl.col("progress")),
        best_value=best.over("kr_id").forward_fill().over("kr_id"),
        note=pl.coalesce(
            "note",
            pl.when(pl.col("value").is_null() & (terms.days_with_value == 0)).then(
                pl.lit("no data in the KR window yet")
            ),
        ),
    )


def _kr_status(settings: Settings, terms: KrTerms) -> pl.Expr:
    p, d = rounded(pl.col("progress")), pl.col("date")
    stale = pl.col("freshness_days").is_not_null() & (
        pl.col("latest_date").is_null()
        | ((d - pl.col("latest_date")).dt.total_days() > pl.col("freshness_days"))
    )
    return (
        pl.when(d < pl.col("period_start"))
        .then(pl.lit("not_started"))
        .when(p.is_null())
        .then(pl.lit("no_data"))
        .when(by_type(lambda kr_type: kr_type.achieved(terms)))
        .then(pl.lit("achieved"))
        .when(d >= pl.col("period_end"))
        .then(pl.lit("missed"))
        .when(stale)
        .then(pl.lit("stale"))
        .otherwise(_gap_status(pl.col("success_level") * pl.col("expected_progress") - p, settings))
    )


def _gap_status(gap: pl.Expr, settings: Settings) -> pl.Expr:
    gap = rounded(gap)
    return (
        pl.when(gap <= settings.on_track_gap)
        .then(pl.lit("on_track"))
        .when(gap <= settings.at_risk_gap)
        .then(pl.lit("at_risk"))
        .otherwise(pl.lit("off_track"))
    )


def grade(progress: pl.Expr) -> pl.Expr:
    """Google's scale: red below 0.4, yellow below 0.7, green from 0.7."""
    p = rounded(progress)
    return (
        pl.when(p < 0.4)
        .then(pl.lit("red"))
        .when(p < 0.7)
        .then(pl.lit("yellow"))
        .when(p.is_not_null())
        .then(pl.lit("green"))
    )


def quarters_frame(quarters: list[Quarter]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "quarter": [q.label for q in quarters],
            "quarter_start": [q.start for q in quarters],
            "quarter_end": [q.end for q in quarters],
        },
        schema={"quarter": pl.String, "quarter_start": pl.Date, "quarter_end": pl.Date},
    )


def quarter_as_of(quarters: list[Quarter], today: date) -> pl.DataFrame:
    """`marts.quarter_as_of`: what each computed quarter is measured as of."""
    return quarters_frame(quarters).with_columns(
        as_of_date=pl.min_horizontal("quarter_end", pl.lit(today, pl.Date)),
        run_today=pl.lit(today, pl.Date),
        is_closed=pl.col("quarter_end") <= pl.lit(today, pl.Date),
    )


def _touching(frame: pl.DataFrame, quarters: list[Quarter], today: date) -> pl.DataFrame:
    """Cross `frame` (with period_start/period_end) with the quarters its period touches, as of
    min(quarter end, period end, today). Grades are final once the quarter has closed (its last
    day is on or before today), provisional before."""
    return (
        frame.join(quarters_frame(quarters), how="cross")
        .filter(
            (pl.col("period_start") <= pl.col("quarter_end"))
            & (pl.col("period_end") >= pl.col("quarter_start"))
        )
        .with_columns(
            as_of_date=pl.min_horizontal("quarter_end", "period_end", pl.lit(today, pl.Date)),
            grade_is_final=pl.col("quarter_end") <= pl.lit(today, pl.Date),
        )
    )


def _kr_display_status() -> pl.Expr:
    """The status as shown: data older than stale_after_days makes a KR that would read on
    track, at risk or off track `stale`, whether or not its metric sets a freshness. Final
    statuses are kept."""
    days_without_data = (pl.col("as_of_date") - pl.col("latest_date")).dt.total_days()
    judged = pl.col("status").is_in(["on_track", "at_risk", "off_track"])
    return (
        pl.when(judged & (days_without_data > pl.col("stale_after_days")))
        .then(pl.lit("stale"))
        .otherwise(pl.col("status"))
    )


def key_result_attainment(
    params: pl.DataFrame, daily: pl.DataFrame, quarters: list[Quarter], today: date
) -> pl.DataFrame:
    """One row per (KR, quarter it touches), read off the daily history at the as-of date. The
    history starts at the KR's start, so a KR not started on its as-of date has no day to read:
    its row says not_started with expected progress 0 (docs/computation.md) and no progress."""
    not_started = pl.col("as_of_date") < pl.col("period_start")
    measured = daily.select(
        "kr_id",
        pl.col("date").alias("as_of_date"),
        pl.col("value").alias("current_value"),
        "latest_date",
        "raw_progress",
        "progress",
        "expected_progress",
        "status",
        "grade",
        "note",
        "best_value",
    )
    return (
        _touching(params, quarters, today)
        .join(measured, on=["kr_id", "as_of_date"], how="left")
        .with_columns(
            expected_progress=pl.when(not_started).then(0.0).otherwise("expected_progress"),
            status=pl.when(not_started).then(pl.lit("not_started")).otherwise("status"),
            note=pl.when(not_started)
            .then(pl.lit("the KR window has not started"))
            .otherwise("note"),
        )
        .with_columns(display_status=_kr_display_status())
        .sort("quarter_start", "objective_id", "kr_id")
    )


OBJECTIVE_PARAMETERS_SCHEMA = {
    "objective_id": pl.String,
    "title": pl.String,
    "team": pl.String,
    "owner": pl.String,
    "type": pl.String,
    "parent_id": pl.String,
    "weight": pl.Float64,
    "success_level": pl.Float64,
    "period_start": pl.Date,
    "period_end": pl.Date,
    "depth": pl.Int64,
    "parent_team": pl.String,
}


def objective_parameters(config: OkrConfig) -> pl.DataFrame:
    rows = [
        {
            "objective_id": o.id,
            "title": o.title,
            "team": o.team,
            "owner": o.owner,
            "type": o.type,
            "parent_id": o.parent,
            "weight": o.weight,
            "success_level": o.success_level,
            "period_start": config.objective_windows[o.id][0],
            "period_end": config.objective_windows[o.id][1],
            "depth": config.depth(o.id),
            "parent_team": config.objectives[o.parent].team if o.parent else None,
        }
        for o in config.objectives.values()
    ]
    return pl.DataFrame(rows, schema=OBJECTIVE_PARAMETERS_SCHEMA)


def _sum(values: pl.Expr) -> pl.Expr:
    """The sum of a group's `values` added in sorted order: the same bits whatever order the
    group's rows come in (floating-point addition is not associative)."""
    return values.sort().sum()


def _weighted_mean(value: str, weight: str = "weight") -> pl.Expr:
    """sum(w*x)/sum(w) over rows where x is not null; null when none are left."""
    has = pl.col(value).is_not_null()
    total = _sum(pl.col(weight).filter(has))
    return pl.when(total > 0).then(_sum((pl.col(value) * pl.col(weight)).filter(has)) / total)


def objective_attainment(
    objectives: pl.DataFrame,
    kr_attainment: pl.DataFrame,
    quarters: list[Quarter],
    today: date,
    settings: Settings,
) -> pl.DataFrame:
    """Score, expected progress, status and roll-up of each objective in each quarter it touches."""
    rows = _touching(objectives, quarters, today)
    keys = ["objective_id", "quarter_start"]
    scored = pl.col("progress").is_not_null()
    shown = "display_status" if "display_status" in kr_attainment.columns else "status"
    own = kr_attainment.group_by(keys).agg(
        own_weighted_sum=_sum((pl.col("progress") * pl.col("weight")).filter(scored)),
        own_weight=_sum(pl.col("weight").filter(scored)),
        own_expected_sum=_sum((pl.col("expected_progress") * pl.col("weight")).filter(scored)),
        kr_count=pl.len(),
        scored_kr_count=scored.sum(),
        scored_stale_count=(scored & (pl.col(shown) == "stale")).sum(),
        **{f"kr_{s}": (pl.col("status") == s).sum() for s in STATUSES},
    )
    own_weight = pl.col("own_weight")
    rows = (
        rows.join(own, on=keys, how="left")
        .with_columns(
            pl.col("own_weighted_sum", "own_weight", "own_expected_sum").fill_null(0.0),
            pl.col("kr_count", *[f"kr_{s}" for s in STATUSES]).fill_null(0).cast(pl.Int64),
        )
        .with_columns(
            score=pl.when(own_weight > 0).then(pl.col("own_weighted_sum") / own_weight),
            expected_progress=pl.when(own_weight > 0).then(pl.col("own_expected_sum") / own_weight),
        )
    )
    rows = _roll_up(rows)
    level = pl.col("success_level")
    has_krs = pl.col("kr_count") > 0
    value = pl.when(has_krs).then(pl.col("score")).otherwise(pl.col("rollup_score"))
    expected = (
        pl.when(has_krs)
        .then(pl.col("expected_progress"))
        .otherwise(pl.col("rollup_expected_progress"))
    )
    status = (
        pl.when(pl.col("as_of_date") < pl.col("period_start"))
        .then(pl.lit("not_started"))
        .when(value.is_null())
        .then(pl.lit("no_data"))
        .when(pl.col("as_of_date") >= pl.col("period_end"))
        .then(
            pl.when(rounded(value) >= rounded(level))
            .then(pl.lit("achieved"))
            .otherwise(pl.lit("missed"))
        )
        .otherwise(_gap_status(level * expected - value, settings))
    )
    all_stale = (pl.col("scored_kr_count") > 0) & (
        pl.col("scored_stale_count") == pl.col("scored_kr_count")
    )
    return (
        rows.with_columns(status=status, grade=grade(value))
        .with_columns(
            # An objective measured only by stale data is not on track either.
            display_status=pl.when(
                all_stale & pl.col("status").is_in(["on_track", "at_risk", "off_track"])
            )
            .then(pl.lit("stale"))
            .otherwise(pl.col("status"))
        )
        .drop("scored_kr_count", "scored_stale_count")
        .sort("quarter_start", "depth", "objective_id")
    )


def _roll_up(rows: pl.DataFrame) -> pl.DataFrame:
    """rollup_score = (sum w*p over own KRs + sum w_c*rollup_c over children) / (their weights),
    bottom-up one depth at a time; children count in the quarters their period touches."""
    done: list[pl.DataFrame] = [
        # Keeps the schema when no objective touches the quarters (an early, empty quarter).
        rows.clear().with_columns(
            child_weighted_sum=pl.lit(None, pl.Float64),
            child_weight=pl.lit(None, pl.Float64),
            child_expected_sum=pl.lit(None, pl.Float64),
            rollup_score=pl.lit(None, pl.Float64),
            rollup_expected_progress=pl.lit(None, pl.Float64),
        )
    ]
    child_sums = None
    for depth in sorted(rows["depth"].unique().to_list(), reverse=True):
        level = rows.filter(pl.col("depth") == depth)
        if child_sums is not None:
            level = level.join(child_sums, on=["objective_id", "quarter_start"], how="left")
        else:
            level = level.with_columns(
                child_weighted_sum=pl.lit(None, pl.Float64),
                child_weight=pl.lit(None, pl.Float64),
                child_expected_sum=pl.lit(None, pl.Float64),
            )
        level = level.with_columns(
            pl.col("child_weighted_sum", "child_weight", "child_expected_sum").fill_null(0.0)
        )
        weight = pl.col("own_weight") + pl.col("child_weight")
        level = level.with_columns(
            rollup_score=pl.when(weight > 0).then(
                (pl.col("own_weighted_sum") + pl.col("child_weighted_sum")) / weight
            ),
            rollup_expected_progress=pl.when(weight > 0).then(
                (pl.col("own_expected_sum") + pl.col("child_expected_sum")) / weight
            ),
        )
        done.append(level)
        scored = pl.col("rollup_score").is_not_null()
        child_sums = (
            level.filter(pl.col("parent_id").is_not_null())
            .group_by(pl.col("parent_id").alias("objective_id"), "quarter_start")
            .agg(
                child_weighted_sum=_sum((pl.col("weight") * pl.col("rollup_score")).filter(scored)),
                child_weight=_sum(pl.col("weight").filter(scored)),
                child_expected_sum=_sum(
                    (pl.col("weight") * pl.col("rollup_expected_progress")).filter(scored)
                ),
            )
        )
    return pl.concat(done, how="diagonal_relaxed").drop(
        "own_weighted_sum",
        "own_weight",
        "own_expected_sum",
        "child_weighted_sum",
        "child_weight",
        "child_expected_sum",
    )


def team_attainment(objective_rows: pl.DataFrame) -> pl.DataFrame:
    """A team's scores average the rollup_score of its objectives whose parent is in another
    team (or that have none), by objective weight and unweighted.

    A parent in the same team only stands in for its child in the quarters where the parent is
    reported itself; where the parent's period does not touch the quarter, the child counts
    directly, so its work is not dropped from the team's score."""
    reported = objective_rows.select(
        pl.col("objective_id").alias("parent_id"), "quarter_start", parent_reported=pl.lit(True)
    )
    top = (
        objective_rows.join(reported, on=["parent_id", "quarter_start"], how="left")
        .filter(
            pl.col("parent_team").is_null()
            | (pl.col("parent_team") != pl.col("team"))
            | pl.col("parent_reported").is_null()
        )
        .drop("parent_reported")
    )
    return (
        top.group_by("team", "quarter", "quarter_start")
        .agg(
            score_weighted=_weighted_mean("rollup_score"),
            score_unweighted=pl.col("rollup_score").sort().mean(),
            expected_progress=_weighted_mean("rollup_expected_progress"),
            objective_count=pl.len().cast(pl.Int64),
            scored_objective_count=pl.col("rollup_score").is_not_null().sum().cast(pl.Int64),
            as_of_date=pl.col("as_of_date").max(),
        )
        .sort("quarter_start", "team")
    )
