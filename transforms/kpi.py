"""Success metrics / KPIs (docs/computation.md): `marts.metric_daily`, every metric's
measured value on every day, and `marts.success_metric_summary`, every metric per week, month and
fiscal quarter with comparisons, its KPI target and health.

Period values come from `MetricReader.values_over`, which measures all periods of a metric in one
pass; the comparisons, targets and health are Polars expressions over those values.

Rules beyond the contract's wording (also in the README):
- Only periods that have started (start <= today) are reported; a running period is measured as
  of today and flagged `is_complete = false`.
- previous_value, yoy_value and rolling_avg_3 use the other periods' values as reported in their
  own rows (complete periods measured in full), so a running period is compared with whole
  periods. The year-earlier week is the week 52 weeks (364 days) earlier, same weekday.
- rolling_avg_3 averages the non-null values among the period and the two before it (SQL AVG
  semantics); null when all three are null.
- consecutive_red counts back through every earlier period of the metric's data, whichever
  quarters a run covers, so a partition's rows never depend on the other partitions of the run.
- Targets: sum and count metrics (window: period) add up over days, so their target is spread
  evenly over the days of each target-grain period and summed over the days of the reported
  period (quarter target 900 over 90 days -> 70 for a 7-day week; a monthly target summed over a
  quarter's months). A distinct count does not add up over days: its target applies at its own
  grain only (other grains: `no_target`). Level metrics (avg, min, max, last, ratio, trailing
  windows) take the target as is at every grain.
- Running periods of cumulative metrics (window: period with sum, count, count_distinct) are
  `is_provisional`; sum and count compare with target_value * elapsed_share (`health_target`).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import polars as pl

from transforms.calendar import Quarter, quarter_of
from transforms.config import MANUAL_PREFIX, OkrConfig, Settings
from transforms.history import kpi_lookback_start
from transforms.kr_types import rounded
from transforms.measure import MetricReader
from warehouse.tables import Column, Table

GRAINS = ("week", "month", "quarter")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ADDITIVE = ("sum", "count")
"""Aggregations whose period values add up over days, so targets pro-rate by days."""

MARTS_METRIC_DAILY = Table(
    "marts",
    "metric_daily",
    "One row per metric and day of the reported quarters up to today: the measured value as of "
    "that day and how fresh its data is.",
    (
        Column("metric_id", "VARCHAR", "Metric id from metrics.yaml.", False),
        Column("date", "DATE", "The day measured.", False),
        Column("quarter", "VARCHAR", "Fiscal quarter holding `date`, e.g. 2025-Q1.", False),
        Column(
            "quarter_start",
            "DATE",
            "First day of the fiscal quarter holding `date` (the partition key).",
            False,
        ),
        Column("metric_name", "VARCHAR", "Display name of the metric.", False),
        Column("unit", "VARCHAR", "Unit of the value."),
        Column(
            "value",
            "DOUBLE",
            "Measured value as of the day: a(d) for trailing windows and `last` metrics; for "
            "period metrics the day's own aggregate (that day's sum, rows, distinct ids, ratio of "
            "that day's sums). Null when there is no data.",
        ),
        Column("data_through", "DATE", "Latest day on or before `date` with data for the metric."),
        Column(
            "is_stale",
            "BOOLEAN",
            "True when the metric has a freshness and date - data_through exceeds it (or there is "
            "no data yet); false for metrics without a freshness.",
            False,
        ),
    ),
    primary_key=("metric_id", "date"),
    partition_column="quarter_start",
)

MARTS_SUCCESS_METRIC_SUMMARY = Table(
    "marts",
    "success_metric_summary",
    "One row per metric, grain (week, month, quarter) and period that has started: the period's "
    "value, comparisons with the previous period and the year before, the KPI target and health.",
    (
        Column("metric_id", "VARCHAR", "Metric id from metrics.yaml.", False),
        Column("grain", "VARCHAR", "week, month or quarter (fiscal).", False),
        Column(
            "period_start",
            "DATE",
            "First day of the period (weeks start on settings.week_start).",
            False,
        ),
        Column("period_end", "DATE", "Last day of the period.", False),
        Column(
            "period_label",
            "VARCHAR",
            "Week: ISO date of its first day; month: YYYY-MM; quarter: fiscal label like 2025-Q1.",
            False,
        ),
        Column(
            "quarter",
            "VARCHAR",
            "Fiscal quarter holding period_end (a week straddling two quarters belongs to the later), e.g. 2025-Q1.",
            False,
        ),
        Column(
            "quarter_start",
            "DATE",
            "First day of the fiscal quarter holding period_end (the partition key).",
            False,
        ),
        Column("metric_name", "VARCHAR", "Display name of the metric.", False),
        Column(
            "as_of_date",
            "DATE",
            "Day the value is measured at: min(period_end, today).",
            False,
        ),
        Column("is_complete", "BOOLEAN", "True when the period ended on or before today.", False),
        Column(
            "elapsed_share",
            "DOUBLE",
            "Share of the period's days up to as_of_date: 1 for complete periods.",
            False,
        ),
        Column(
            "value",
            "DOUBLE",
            "Period metrics: the aggregation over the period's own days up to as_of_date "
            "(distinct counts and ratios recomputed for the period); trailing and `last` "
            "metrics: their value as of as_of_date. Null when there is no data.",
        ),
        Column("data_through", "DATE", "Latest day on or before as_of_date with data."),
        Column(
            "is_stale",
            "BOOLEAN",
            "True when the metric has a freshness and as_of_date - data_through exceeds it.",
            False,
        ),
        Column(
            "previous_value",
            "DOUBLE",
            "Value of the previous period of the same grain (measured even before the "
            "reported quarters).",
        ),
        Column("change_abs", "DOUBLE", "value - previous_value."),
        Column(
            "change_pct",
            "DOUBLE",
            "(value - previous_value) / |previous_value| as a fraction (0.12 = +12%); null when "
            "the previous value is 0 or null.",
        ),
        Column(
            "yoy_value",
            "DOUBLE",
            "Value of the same period one year earlier (weeks: 52 weeks earlier).",
        ),
        Column(
            "yoy_change_pct",
            "DOUBLE",
            "(value - yoy_value) / |yoy_value| as a fraction; null when yoy_value is 0 or null.",
        ),
        Column(
            "rolling_avg_3",
            "DOUBLE",
            "Mean of the non-null values of this period and the two before it (same grain).",
        ),
        Column(
            "target_value",
            "DOUBLE",
            "KPI target for the whole period: the metric's target (per quarter unless "
            "target.grain says otherwise), pro-rated by days for sum and count metrics at other "
            "grains; null without a target (or for a distinct count at another grain).",
        ),
        Column(
            "health_target",
            "DOUBLE",
            "The number health compares the value with: target_value, or target_value * "
            "elapsed_share for a provisional sum or count period.",
        ),
        Column("target_tolerance", "DOUBLE", "Tolerance of the target (fraction of |target|)."),
        Column(
            "health",
            "VARCHAR",
            "green (target met), yellow (within tolerance * |target|), red, no_target or no_data; "
            "mirrored for lower_is_better; values rounded to 9 decimals before comparing.",
            False,
        ),
        Column(
            "is_provisional",
            "BOOLEAN",
            "True for a running period of a metric that accumulates over the period (sum, count, "
            "count_distinct with window: period): its value and health will still move.",
            False,
        ),
        Column(
            "consecutive_red",
            "BIGINT",
            "Consecutive red periods of this grain up to and including this one (0 unless red); "
            "any other health, no_data included, resets it.",
            False,
        ),
        Column("kind", "VARCHAR", "leading or lagging.", False),
        Column("direction", "VARCHAR", "higher_is_better or lower_is_better.", False),
        Column("unit", "VARCHAR", "Unit of the value."),
        Column("linked_kr_count", "BIGINT", "Key results whose metric is this one.", False),
    ),
    primary_key=("metric_id", "grain", "period_start"),
    partition_column="quarter_start",
)


def _unique_quarters(quarters: list[Quarter]) -> list[Quarter]:
    return sorted({q.start: q for q in quarters}.values())


# -- marts.metric_daily -------------------------------------------------------------------------


def metric_daily(
    reader: MetricReader, config: OkrConfig, quarters: list[Quarter], today: date
) -> pl.DataFrame:
    """One row per (metric, day) for every day of `quarters` up to `today`."""
    schema = MARTS_METRIC_DAILY.polars_schema()
    day_frames = [
        pl.DataFrame(
            {"date": pl.date_range(q.start, min(q.end, today), "1d", eager=True)}
        ).with_columns(quarter=pl.lit(q.label), quarter_start=pl.lit(q.start, pl.Date))
        for q in _unique_quarters(quarters)
        if q.start <= today
    ]
    if not day_frames or not config.metrics:
        return pl.DataFrame(schema=schema)
    days = pl.concat(day_frames)
    first, last = days["date"].min(), days["date"].max()
    rows = _metric_attributes(config).join(days, how="cross")
    values = reader.values_many(rows.select("metric_id", start="date", end="date"))
    latest = reader.latest_many(config.metrics.items(), first, last)
    return (
        rows.with_columns(value=values["value"])
        .join(
            latest.select(pl.col("id").alias("metric_id"), "date", data_through="latest_date"),
            on=["metric_id", "date"],
            how="left",
        )
        .with_columns(is_stale=_stale(pl.col("date")))
        .select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
        .sort("quarter_start", "metric_id", "date")
    )


def _metric_attributes(config: OkrConfig) -> pl.DataFrame:
    """One row per metric with the attributes the KPI marts copy or compute with."""
    linked = Counter(kr.metric.id for kr in config.key_results.values())
    metrics = list(config.metrics.values())
    return pl.DataFrame(
        {
            "metric_id": [m.id for m in metrics],
            "metric_name": [m.name for m in metrics],
            "unit": [m.unit for m in metrics],
            "kind": [m.kind for m in metrics],
            "direction": [m.direction for m in metrics],
            "freshness_days": [m.freshness_days for m in metrics],
            "is_cumulative": [m.is_cumulative for m in metrics],
            "is_additive": [m.window == "period" and m.aggregation in ADDITIVE for m in metrics],
            "linked_kr_count": [linked[m.id] for m in metrics],
            "target_tolerance": [m.target.tolerance if m.target else None for m in metrics],
            "target": [m.target.value if m.target else None for m in metrics],
            "target_grain": [m.target.grain if m.target else None for m in metrics],
        },
        schema={
            "metric_id": pl.String,
            "metric_name": pl.String,
            "unit": pl.String,
            "kind": pl.String,
            "direction": pl.String,
            "freshness_days": pl.Int64,
            "is_cumulative": pl.Boolean,
            "is_additive": pl.Boolean,
            "linked_kr_count": pl.Int64,
            "target_tolerance": pl.Float64,
            "target": pl.Float64,
            "target_grain": pl.String,
        },
    )


def _stale(as_of: pl.Expr) -> pl.Expr:
    """Data older than the metric's freshness (column `freshness_days`), counted back from
    `as_of` (docs/computation.md)."""
    through, freshness = pl.col("data_through"), pl.col("freshness_days")
    return (
        pl.when(freshness.is_null())
        .then(False)
        .otherwise(through.is_null() | ((as_of - through).dt.total_days() > freshness))
    )


# -- periods ------------------------------------------------------------------------------------


def period_containing(grain: str, day: date, settings: Settings) -> tuple[date, date]:
    """(start, end) of the week, month or fiscal quarter holding `day`."""
    if grain == "week":
        start = day - timedelta(days=(day.weekday() - WEEKDAYS.index(settings.week_start)) % 7)
        return start, start + timedelta(days=6)
    if grain == "month":
        start = day.replace(day=1)
        return start, (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    quarter = quarter_of(day, settings.fiscal_year_start_month)
    return quarter.start, quarter.end


def periods_between(grain: str, first: date, last: date, settings: Settings) -> list[tuple]:
    """Every period of `grain` from the one holding `first` to the one holding `last`."""
    periods, day = [], first
    while True:
        start, end = period_containing(grain, day, settings)
        if start > last:
            return periods
        periods.append((start, end))
        day = end + timedelta(days=1)


def period_label(grain: str, start: date, settings: Settings) -> str:
    if grain == "week":
        return start.isoformat()
    if grain == "month":
        return f"{start.year:04d}-{start.month:02d}"
    return quarter_of(start, settings.fiscal_year_start_month).label


def _year_earlier(grain: str, start: date) -> date:
    """Start of the same period one year earlier: 52 weeks back for weeks (same weekday), the
    same month or fiscal quarter of the previous year otherwise."""
    if grain == "week":
        return start - timedelta(days=364)
    return start.replace(year=start.year - 1)  # month and quarter starts fall on day 1


def _reported_periods(quarters: list[Quarter], today: date, settings: Settings) -> pl.DataFrame:
    """The periods of every grain that END in `quarters` and start on or before today. A week
    that straddles two quarters belongs to the later one, so a quarter's rows never read data
    after its own end: running quarters one by one gives the same rows as one backfill."""
    by_start = {q.start: q for q in quarters}
    rows = []
    for grain in GRAINS:
        for quarter in _unique_quarters(quarters):
            for start, end in periods_between(grain, quarter.start, quarter.end, settings):
                holder = quarter_of(end, settings.fiscal_year_start_month)
                if start <= today and holder.start in by_start:
                    rows.append(
                        {
                            "grain": grain,
                            "period_start": start,
                            "period_label": period_label(grain, start, settings),
                            "quarter": holder.label,
                            "quarter_start": holder.start,
                        }
                    )
    schema = {
        "grain": pl.String,
        "period_start": pl.Date,
        "period_label": pl.String,
        "quarter": pl.String,
        "quarter_start": pl.Date,
    }
    return pl.DataFrame(rows, schema=schema).unique(["grain", "period_start"])


# -- targets ------------------------------------------------------------------------------------


# -- marts.success_metric_summary ---------------------------------------------------------------


def success_metric_summary(
    reader: MetricReader, config: OkrConfig, quarters: list[Quarter], today: date
) -> pl.DataFrame:
    """One row per (metric, grain, period) for the periods starting in `quarters` by `today`."""
    settings = config.settings
    schema = MARTS_SUCCESS_METRIC_SUMMARY.polars_schema()
    reported = _reported_periods(quarters, today, settings)
    # Manual metrics are KR values (check-ins), not KPIs: never measured here.
    kpis = {m: metric for m, metric in config.metrics.items() if not m.startswith(MANUAL_PREFIX)}
    if reported.height == 0 or not kpis:
        return pl.DataFrame(schema=schema)
    first_reported = reported["period_start"].min()
    # Before a metric's first data every value is null, so its history starts there at most.
    history_start = {
        metric_id: min(first_reported, reader.earliest_date(metric) or first_reported)
        for metric_id, metric in kpis.items()
    }
    lookback = kpi_lookback_start(first_reported)
    measured_from = {m: max(start, lookback) for m, start in history_start.items()}
    history = _measured_periods(reader, config, reported, today, measured_from)
    rows = _with_health(history)
    if streaks := _streaks_reaching_back(rows, reported, measured_from, history_start):
        history = pl.concat(
            [
                history.filter(~pl.col("metric_id").is_in(streaks)),
                _measured_periods(
                    reader, config, reported, today, {m: history_start[m] for m in streaks}
                ),
            ],
            how="vertical_relaxed",
        )
        rows = _with_health(history)
    return (
        rows.join(reported, on=["grain", "period_start"], how="inner")
        .select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
        .sort("quarter_start", "metric_id", "grain", "period_start")
    )


def _with_health(history: pl.DataFrame) -> pl.DataFrame:
    rows = _comparisons(history.sort("metric_id", "grain", "period_start"))
    return rows.with_columns(health=_health()).with_columns(consecutive_red=_consecutive_red())


def _streaks_reaching_back(
    rows: pl.DataFrame,
    reported: pl.DataFrame,
    measured_from: dict[str, date],
    history_start: dict[str, date],
) -> list[str]:
    """Metrics with a grain whose every measured period before the reported ones is red while
    earlier data exists: their red streak may be longer than what was measured."""
    first_of_grain = reported.group_by("grain").agg(first=pl.col("period_start").min())
    cut_short = [m for m, start in measured_from.items() if start > history_start[m]]
    before = (
        rows.filter(pl.col("metric_id").is_in(cut_short))
        .join(first_of_grain, on="grain")
        .filter(pl.col("period_start") < pl.col("first"))
    )
    all_red = before.group_by("metric_id", "grain").agg(red=(pl.col("health") == "red").all())
    return sorted(set(all_red.filter(pl.col("red"))["metric_id"].to_list()))


def _measured_periods(
    reader: MetricReader,
    config: OkrConfig,
    reported: pl.DataFrame,
    today: date,
    history_start: dict[str, date],
) -> pl.DataFrame:
    """Every period of every grain from the one holding the metric's `history_start` to the
    last reported period, measured, for the metrics in `history_start`. The periods before the
    reported ones feed previous_value, yoy_value, rolling_avg_3 and consecutive_red."""
    settings = config.settings
    periods = _periods(reported, min(history_start.values()), settings)
    metrics = _metric_attributes(config).join(
        pl.DataFrame(
            {"metric_id": list(history_start), "history_start": list(history_start.values())},
            schema={"metric_id": pl.String, "history_start": pl.Date},
        ),
        on="metric_id",
    )
    frame = (
        metrics.join(periods, how="cross")
        # the periods from the one holding the metric's history start
        .filter(pl.col("period_end") >= pl.col("history_start"))
        .join(
            _target_shares(config, periods),
            on=["target_grain", "grain", "period_start"],
            how="left",
        )
        .with_columns(target_value=_target_value())
        .with_columns(as_of_date=pl.min_horizontal("period_end", pl.lit(today, pl.Date)))
    )
    values = reader.values_many(frame.select("metric_id", start="period_start", end="as_of_date"))
    latest = reader.latest_many(
        [(m, config.metrics[m]) for m in history_start],
        frame["as_of_date"].min(),
        frame["as_of_date"].max(),
    ).select(
        pl.col("id").alias("metric_id"),
        pl.col("date").alias("as_of_date"),
        pl.col("latest_date").alias("data_through"),
    )
    period_days = (pl.col("period_end") - pl.col("period_start")).dt.total_days() + 1
    elapsed_days = (pl.col("as_of_date") - pl.col("period_start")).dt.total_days() + 1
    is_complete = pl.col("period_end") <= pl.lit(today, pl.Date)
    return (
        frame.with_columns(value=values["value"])
        .join(latest, on=["metric_id", "as_of_date"], how="left")
        .with_columns(
            is_complete=is_complete,
            elapsed_share=elapsed_days / period_days,
            is_provisional=~is_complete & pl.col("is_cumulative"),
            is_stale=_stale(pl.col("as_of_date")),
        )
        .with_columns(
            health_target=pl.when(pl.col("is_provisional") & pl.col("is_additive"))
            .then(pl.col("target_value") * pl.col("elapsed_share"))
            .otherwise(pl.col("target_value"))
        )
    )


def _periods(reported: pl.DataFrame, history_start: date, settings: Settings) -> pl.DataFrame:
    """Every period of each grain from the one holding `history_start` to the last reported."""
    rows = []
    for grain in GRAINS:
        last_start = reported.filter(pl.col("grain") == grain)["period_start"].max()
        if last_start is None:
            continue
        for start, end in periods_between(grain, history_start, last_start, settings):
            rows.append((grain, start, end, _year_earlier(grain, start)))
    return pl.DataFrame(
        rows,
        schema={
            "grain": pl.String,
            "period_start": pl.Date,
            "period_end": pl.Date,
            "yoy_start": pl.Date,
        },
        orient="row",
    )


def _target_value() -> pl.Expr:
    """The metric's KPI target for the whole period, over the columns of `_metric_attributes`
    joined with `_target_shares`. Sum and count metrics (window: period) add up over days, so
    their target is spread evenly over the days of each target-grain period and summed over the
    days of the period: equal to the target at its own grain. A distinct count neither adds up
    nor splits over days: its target applies at its own grain only. Level metrics take the
    target as is."""
    grain_matches = pl.col("grain") == pl.col("target_grain")
    return (
        pl.when(pl.col("target").is_null())
        .then(None)
        .when(pl.col("is_additive"))
        .then(pl.col("target") * pl.col("target_share"))
        .when(pl.col("is_cumulative") & ~grain_matches)
        .then(None)  # a distinct count neither adds up nor splits over days
        .otherwise(pl.col("target"))
    )


def _target_shares(config: OkrConfig, periods: pl.DataFrame) -> pl.DataFrame:
    """For each target grain in use and each period: the share of a target of 1 per
    target-grain period that falls in the period (days pro-rated)."""
    grains = {m.target.grain for m in config.metrics.values() if m.target is not None}
    rows = []
    for target_grain in sorted(grains):
        for grain, start, end, _ in periods.iter_rows():
            share = 0.0
            for lo, hi in periods_between(target_grain, start, end, config.settings):
                overlap = (min(hi, end) - max(lo, start)).days + 1
                share += overlap / ((hi - lo).days + 1)
            rows.append((target_grain, grain, start, share))
    return pl.DataFrame(
        rows,
        schema={
            "target_grain": pl.String,
            "grain": pl.String,
            "period_start": pl.Date,
            "target_share": pl.Float64,
        },
        orient="row",
    )


def _comparisons(history: pl.DataFrame) -> pl.DataFrame:
    """previous_value, change, year-over-year and rolling average, over each metric's periods of
    one grain (`history` is sorted by metric, grain, period_start and has no gaps)."""
    series = ["metric_id", "grain"]
    value = pl.col("value")
    earlier = history.select(
        *series, pl.col("period_start").alias("yoy_start"), pl.col("value").alias("yoy_value")
    )
    return (
        history.join(earlier, on=[*series, "yoy_start"], how="left")
        .sort(*series, "period_start")
        .with_columns(
            previous_value=value.shift(1).over(series),
            rolling_avg_3=pl.mean_horizontal(
                value, value.shift(1).over(series), value.shift(2).over(series)
            ),
        )
        .with_columns(
            change_abs=value - pl.col("previous_value"),
            change_pct=_relative_change(value, pl.col("previous_value")),
            yoy_change_pct=_relative_change(value, pl.col("yoy_value")),
        )
    )


def _relative_change(value: pl.Expr, reference: pl.Expr) -> pl.Expr:
    """(value - reference) / |reference|; null when the reference is 0 or null."""
    return pl.when(rounded(reference) != 0).then((value - reference) / reference.abs())


def _health() -> pl.Expr:
    """green / yellow / red against health_target with the tolerance band (docs/computation.md)."""
    a, t = rounded(pl.col("value")), pl.col("health_target")
    band = pl.col("target_tolerance").fill_null(0.0) * t.abs()
    higher = pl.col("direction") == "higher_is_better"
    met = pl.when(higher).then(a >= rounded(t)).otherwise(a <= rounded(t))
    near = pl.when(higher).then(a >= rounded(t - band)).otherwise(a <= rounded(t + band))
    return (
        pl.when(t.is_null())
        .then(pl.lit("no_target"))
        .when(pl.col("value").is_null())
        .then(pl.lit("no_data"))
        .when(met)
        .then(pl.lit("green"))
        .when(near)
        .then(pl.lit("yellow"))
        .otherwise(pl.lit("red"))
    )


def _consecutive_red() -> pl.Expr:
    """Length of the run of red periods ending at this one (rows sorted by period_start)."""
    red = pl.col("health") == "red"
    run = (~red).cum_sum().over("metric_id", "grain")
    return red.cast(pl.Int64).cum_sum().over("metric_id", "grain", run).cast(pl.Int64)
