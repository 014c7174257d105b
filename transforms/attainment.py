"""From staging data and a config to the OKR marts of a set of quarters: measure each KR's metric
over its window, then hand the numbers to the pure math in `transforms.okr`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import polars as pl

from transforms.calendar import Quarter
from transforms.config import OkrConfig, RatioMetric, ResolvedKeyResult
from transforms.history import krs_touching
from transforms.kr_types import rounded
from transforms.measure import MetricReader, SeriesRequest
from transforms.okr import (
    key_result_attainment,
    key_result_daily,
    kr_parameters,
    objective_attainment,
    objective_parameters,
    quarters_frame,
    team_attainment,
)


@dataclass(frozen=True)
class OkrResults:
    key_result_progress_daily: pl.DataFrame
    key_result_attainment: pl.DataFrame
    objective_attainment: pl.DataFrame
    team_attainment: pl.DataFrame


def auto_baseline(reader: MetricReader, kr: ResolvedKeyResult) -> float | None:
    """The metric as of S - 1: over the same-length window just before S for period windows."""
    return auto_baselines(reader, [kr])[kr.kr.id]


def auto_baselines(reader: MetricReader, krs: list[ResolvedKeyResult]) -> dict[str, float | None]:
    """`auto_baseline` of many KRs, measured together."""
    windows = pl.DataFrame(
        {
            "kr_id": [kr.kr.id for kr in krs],
            "metric_id": [kr.metric.id for kr in krs],
            "start": [kr.start - (kr.end - kr.start + timedelta(days=1)) for kr in krs],
            "end": [kr.start - timedelta(days=1) for kr in krs],
        },
        schema={"kr_id": pl.String, "metric_id": pl.String, "start": pl.Date, "end": pl.Date},
    )
    return dict(reader.values_many(windows).select("kr_id", "value").iter_rows())


def measure_key_results(
    reader: MetricReader, config: OkrConfig, quarters: list[Quarter], horizon: date
) -> tuple[pl.DataFrame, dict[str, float | None]]:
    """Daily measured values of every KR touching `quarters`, from its start to min(its end,
    horizon), and their auto baselines. KRs outside the quarters have no rows to report."""
    touching = krs_touching(config, quarters)
    baselines = auto_baselines(reader, [kr for kr in touching if kr.kr.baseline == "auto"])
    series = reader.series_many(
        SeriesRequest(kr.kr.id, kr.metric, kr.start, min(kr.end, horizon), kr.start)
        for kr in touching
    )
    return series.rename({"id": "kr_id"}), baselines


def compute_okr_results(
    con: duckdb.DuckDBPyConnection,
    config: OkrConfig,
    quarters: list[Quarter],
    today: date,
    reader: MetricReader | None = None,
) -> OkrResults:
    """Every OKR mart row of `quarters`, as of min(quarter end, period end, today). Pass the
    `reader` other marts of the same run use, so each metric's daily partials are read once."""
    horizon = min(today, max(q.end for q in quarters))
    reader = reader or MetricReader(con, config)
    series, baselines = measure_key_results(reader, config, quarters, horizon)
    params = kr_parameters(config, baselines)
    daily = key_result_daily(params, series, config.settings)
    kr_rows = key_result_attainment(params, daily, quarters, today)
    objective_rows = objective_attainment(
        objective_parameters(config), kr_rows, quarters, today, config.settings
    )
    progress_daily = (
        daily.sort("date")
        .join_asof(
            quarters_frame(quarters).sort("quarter_start"),
            left_on="date",
            right_on="quarter_start",
        )
        .filter(pl.col("date") <= pl.col("quarter_end"))
        .rename({"date": "as_of_date", "value": "current_value", "latest_date": "data_through"})
        .sort("quarter_start", "kr_id", "as_of_date")
    )
    kr_rows = ratio_denominators(reader, config, shown_values(reader, config, kr_rows)).rename(
        {"latest_date": "data_through"}
    )
    return OkrResults(progress_daily, kr_rows, objective_rows, team_attainment(objective_rows))


def shown_values(reader: MetricReader, config: OkrConfig, kr_rows: pl.DataFrame) -> pl.DataFrame:
    """`display_value` and `display_value_date`: the value people are shown, and the day it is
    measured at. A trailing window must not silently slide past the last day with data (a
    30-day count would fall day after day and read as a decline), so where the as-of date is
    past the metric's latest data, a trailing metric is shown as of that day; otherwise, and
    for every other metric, it is current_value as of as_of_date."""
    trailing = [m.id for m in config.metrics.values() if m.trailing_days]
    slid = pl.col("metric_id").is_in(trailing) & (pl.col("latest_date") < pl.col("as_of_date"))
    rows = kr_rows.with_row_index("_row")
    windows = rows.filter(slid).select(
        "_row", "metric_id", start=pl.col("latest_date"), end=pl.col("latest_date")
    )
    earlier = reader.values_many(windows).select("_row", earlier_value="value")
    return (
        rows.join(earlier, on="_row", how="left", maintain_order="left")
        .with_columns(
            display_value=pl.when(slid).then("earlier_value").otherwise("current_value"),
            display_value_date=pl.when(slid).then("latest_date").otherwise("as_of_date"),
        )
        .drop("_row", "earlier_value")
    )


def ratio_denominators(
    reader: MetricReader, config: OkrConfig, kr_rows: pl.DataFrame
) -> pl.DataFrame:
    """`denominator_value`: for a KR on a ratio, its denominator over the same window as the
    value shown (display_value_date), so a reader can tell 2 of 2 deals from 200 of 200; below
    the ratio's `min_denominator` a KR that would read on track, at risk or off track is shown
    `too_few_to_judge`."""
    ratios = {m.id: m for m in config.metrics.values() if isinstance(m, RatioMetric)}
    parts = {
        ratio_id: config.metrics[ratio.denominator].model_copy(
            update={"id": f"{ratio_id}.denominator", "window": ratio.window}
        )
        for ratio_id, ratio in ratios.items()
    }
    rows = kr_rows.with_row_index("_row")
    windows = rows.filter(pl.col("metric_id").is_in(list(ratios))).select(
        "_row",
        metric_id=pl.col("metric_id") + ".denominator",
        start=pl.col("period_start"),
        end=pl.col("display_value_date"),
    )
    denominators = reader.values_many(windows, {p.id: p for p in parts.values()})
    minimums = pl.DataFrame(
        {
            "metric_id": list(ratios),
            "min_denominator": [r.min_denominator for r in ratios.values()],
        },
        schema={"metric_id": pl.String, "min_denominator": pl.Float64},
    )
    judged = pl.col("display_status").is_in(["on_track", "at_risk", "off_track"])
    too_few = rounded(pl.col("denominator_value").fill_null(0.0)) < pl.col("min_denominator")
    return (
        rows.join(
            denominators.select("_row", denominator_value="value"),
            on="_row",
            how="left",
            maintain_order="left",
        )
        .join(minimums, on="metric_id", how="left", maintain_order="left")
        .with_columns(
            display_status=pl.when(judged & too_few)
            .then(pl.lit("too_few_to_judge"))
            .otherwise("display_status")
        )
        .drop("_row", "min_denominator")
    )
