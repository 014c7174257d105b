"""From staging data and a config to the OKR marts of a set of quarters: measure each KR's metric
over its window, then hand the numbers to the pure math in `transforms.okr`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import polars as pl

from transforms.calendar import Quarter
from transforms.config import OkrConfig, ResolvedKeyResult
from transforms.measure import SERIES_SCHEMA, MetricReader
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
    before = kr.start - timedelta(days=1)
    length = kr.end - kr.start + timedelta(days=1)
    return reader.value_over(kr.metric, kr.start - length, before)


def measure_key_results(
    reader: MetricReader, config: OkrConfig, horizon: date
) -> tuple[pl.DataFrame, dict[str, float | None]]:
    """Daily measured values of every KR from its start to min(its end, horizon), and the
    auto baselines."""
    series, baselines = [], {}
    for kr_id, kr in config.key_results.items():
        if kr.kr.baseline == "auto":
            baselines[kr_id] = auto_baseline(reader, kr)
        last = min(kr.end, horizon)
        if last >= kr.start:
            frame = reader.series(kr.metric, kr.start, last, period_start=kr.start)
            series.append(frame.with_columns(kr_id=pl.lit(kr_id)))
    empty = pl.DataFrame(schema={**SERIES_SCHEMA, "kr_id": pl.String})
    return pl.concat([empty, *series], how="vertical_relaxed"), baselines


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
    series, baselines = measure_key_results(reader, config, horizon)
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
    kr_rows = kr_rows.rename({"latest_date": "data_through"})
    return OkrResults(progress_daily, kr_rows, objective_rows, team_attainment(objective_rows))
