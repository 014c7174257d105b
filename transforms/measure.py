"""Measured values a(d) of metrics (docs/computation.md), read from the staging tables.

`MetricReader` is what the marts, lint and checks ask: `transforms.scan` reads each source
metric's daily partials (one scan per source table and filter column, kept for the reader's
life), and `transforms.windows` turns them into windowed values. Everything is measured many at
once, so a config of thousands of metrics costs a handful of queries and a few frame-wide
expressions, not some of each per metric.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import duckdb
import polars as pl

from transforms.config import Metric, OkrConfig, RatioMetric, SourceMetric
from transforms.scan import Scanner
from transforms.windows import (
    SERIES_SCHEMA,
    WINDOW_VALUES_SCHEMA,
    SeriesRequest,
    calendar_of,
    distinct_first_day,
    distinct_series,
    first_day_read,
    part_requests,
    part_windows,
    partial_series,
    ratio_latest,
    ratio_parts,
    ratio_series,
    ratio_values,
    valued_as_of_end,
    values_at_end,
    window_values,
    with_latest,
)


@dataclass
class MetricReader:
    """Measures the metrics of one config against one warehouse connection.

    Daily partials are read once per metric and reused by every KR and period that needs them.
    """

    con: duckdb.DuckDBPyConnection
    config: OkrConfig
    since: date | None = None
    """Days before it are not read, but for each metric's latest day with data before it (for
    `last` values and staleness). A hint: a metric asked about earlier days is read in full."""
    _scan: Scanner = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._scan = Scanner(self.con, self.config, self.since)

    # -- one metric (the contract's definitions; tests read these) -----------------------------

    def series(
        self, metric: Metric, first: date, last: date, period_start: date | None = None
    ) -> pl.DataFrame:
        """a(d) for every d in [first, last]: `date`, `value`, `latest_date` (latest day <= d with
        data, for staleness). Period windows accumulate from `period_start` (default `first`)."""
        request = SeriesRequest("", metric, first, last, period_start or first)
        return self.series_many([request]).select(list(SERIES_SCHEMA))

    def value_over(self, metric: Metric, start: date, end: date) -> float | None:
        """The metric aggregated over [start, end] (baselines, success-metric periods);
        trailing and `last` metrics take their value as of `end`."""
        return self.values_over(metric, pl.DataFrame({"start": [start], "end": [end]}))["value"][0]

    def values_over(self, metric: Metric, windows: pl.DataFrame) -> pl.DataFrame:
        """`value_over` for many windows (`start`, `end`) of one metric: one row per distinct
        window with `start`, `end`, `value`."""
        windows = (
            windows.select(
                pl.lit(metric.id, pl.String).alias("metric_id"),
                pl.col("start").cast(pl.Date),
                pl.col("end").cast(pl.Date),
            )
            .unique()
            .sort("start", "end")
        )
        return self.values_many(windows, {metric.id: metric}).select("start", "end", "value")

    def latest_dates(self, metric: Metric, first: date, last: date) -> pl.DataFrame:
        """For every d in [first, last]: `date`, `latest_date` (latest day <= d with data); a
        ratio is only as fresh as the older of its two parts, as in `series`."""
        return self.latest_many([(metric.id, metric)], first, last).select("date", "latest_date")

    def earliest_date(self, metric: Metric) -> date | None:
        """First day on which the metric's source has any row: every value before it is null
        (the metric has no data, and its source none to make a zero of)."""
        if isinstance(metric, RatioMetric):
            parts = [self.earliest_date(part) for part in self._sources(metric)]
            return min((d for d in parts if d is not None), default=None)
        return self._scan.first_day(metric)

    # -- many at once -------------------------------------------------------------------------

    def series_many(self, requests: Iterable[SeriesRequest]) -> pl.DataFrame:
        """`series` of every request: `id`, `date`, `value`, `latest_date`, in request order."""
        requests = [r for r in requests if r.last >= r.first]
        self._require((r.metric, first_day_read(r)) for r in requests)
        ratios = [r for r in requests if isinstance(r.metric, RatioMetric)]
        distinct = [r for r in requests if r.metric.aggregation == "count_distinct"]
        plain = [
            r
            for r in requests
            if isinstance(r.metric, SourceMetric) and r.metric.aggregation != "count_distinct"
        ]
        frames = [pl.DataFrame(schema={"id": pl.String, "date": pl.Date, "value": pl.Float64})]
        self.prefetch(r.metric for r in plain + distinct)
        codes = self._codes(plain + distinct)
        partials = self._scan.partials_of(codes)
        if plain:
            frames.append(partial_series(plain, codes[: len(plain)], partials))
        frames += [self._distinct_series(r) for r in distinct]
        measured = with_latest(
            pl.concat(frames, how="vertical_relaxed"), plain + distinct, codes, partials
        )
        if ratios:
            parts = self.series_many(part_requests(ratios, self.config.metrics))
            measured = pl.concat([measured, ratio_series(parts)], how="vertical_relaxed")
        order = pl.DataFrame(
            {"id": [r.id for r in requests]}, schema={"id": pl.String}
        ).with_row_index("_order")
        return measured.join(order, on="id").sort("_order", "date").select("id", *SERIES_SCHEMA)

    def values_many(
        self, windows: pl.DataFrame, metrics: dict[str, Metric] | None = None
    ) -> pl.DataFrame:
        """`value_over` of every row of `windows` (`metric_id`, `start`, `end`, any other
        columns): the same rows in the same order with `value` added.

        Period metrics aggregate each window's own days from the daily partials (summed per
        window, not differenced from running totals, so large sums keep every digit); distinct
        counts are counted per window from raw ids; ratios divide the windows' sums. Trailing
        and `last` metrics take their value as of `end`.
        """
        metrics = self.config.metrics if metrics is None else metrics
        rows = windows.with_row_index("_i").with_columns(pl.col("start", "end").cast(pl.Date))
        used = {m: metrics[m] for m in rows["metric_id"].unique().to_list()}
        kinds = pl.DataFrame(
            {
                "metric_id": list(used),
                "_kind": [
                    "ratio"
                    if isinstance(m, RatioMetric)
                    else "as_of_end"
                    if valued_as_of_end(m)
                    else "windowed"
                    for m in used.values()
                ],
                "pkey": [
                    self._scan.code(m) if isinstance(m, SourceMetric) else None
                    for m in used.values()
                ],
                "aggregation": [m.aggregation for m in used.values()],
            },
            schema={
                "metric_id": pl.String,
                "_kind": pl.String,
                "pkey": pl.UInt32,
                "aggregation": pl.String,
            },
        )
        rows = rows.join(kinds, on="metric_id", how="left", maintain_order="left")
        windowed_from = (
            rows.filter(pl.col("_kind") == "windowed")
            .group_by("metric_id")
            .agg(pl.col("start").min())
        )
        self._require((used[m], start) for m, start in windowed_from.iter_rows())
        self.prefetch(m for m in used.values())
        frames = [pl.DataFrame(schema=WINDOW_VALUES_SCHEMA)]
        windowed = rows.filter(pl.col("_kind") == "windowed")
        if windowed.height:
            partials = self._scan.partials_of(windowed["pkey"])
            distinct_n = self._window_distincts(windowed, used)
            frames.append(window_values(windowed, partials, distinct_n))
        as_of_end = rows.filter(pl.col("_kind") == "as_of_end")
        if as_of_end.height:
            spans = as_of_end.group_by("metric_id").agg(
                first=pl.col("end").min(), last=pl.col("end").max()
            )
            series = self.series_many(
                SeriesRequest(metric_id, used[metric_id], first, last, first)
                for metric_id, first, last in spans.iter_rows()
            )
            frames.append(values_at_end(as_of_end, series))
        ratios = rows.filter(pl.col("_kind") == "ratio")
        if ratios.height:
            parts, sides = part_windows(ratios, used, self.config.metrics)
            numerator, denominator = (self.values_many(side, parts)["value"] for side in sides)
            frames.append(ratio_values(ratios, numerator, denominator))
        values = pl.concat(frames, how="vertical_relaxed")
        return (
            rows.join(values, on="_i", how="left", maintain_order="left")
            .sort("_i")
            .select(*windows.columns, "value")
        )

    def latest_many(
        self, metrics: Iterable[tuple[str, Metric]], first: date, last: date
    ) -> pl.DataFrame:
        """For each (id, metric) and every d in [first, last]: `id`, `date`, `latest_date`."""
        requests = [SeriesRequest(i, m, first, last, first) for i, m in metrics]
        ratios = [r for r in requests if isinstance(r.metric, RatioMetric)]
        plain = [r for r in requests if isinstance(r.metric, SourceMetric)]
        self.prefetch(r.metric for r in plain)
        frames = [pl.DataFrame(schema={"id": pl.String, "date": pl.Date, "latest_date": pl.Date})]
        if plain:
            codes = self._codes(plain)
            frames.append(
                with_latest(calendar_of(plain), plain, codes, self._scan.partials_of(codes))
            )
        if ratios:
            parts = part_requests(ratios, self.config.metrics)
            frames.append(
                ratio_latest(self.latest_many([(r.id, r.metric) for r in parts], first, last))
            )
        return pl.concat(frames, how="vertical_relaxed")

    def latest_data_dates(
        self, metrics: Iterable[tuple[str, Metric]], as_of: date
    ) -> dict[str, date | None]:
        """For each (id, metric): the latest day on or before `as_of` with data, as
        `latest_dates` gives it, from one max() per key instead of the daily partials (lint and
        checks need only this, and it costs the same whatever the history)."""
        parts = {i: self._sources(m) for i, m in metrics}
        flat = [part for ps in parts.values() for part in ps]
        latest = iter(self._scan.latest_days(flat, as_of))
        result = {}
        for i, ps in parts.items():
            found = [d for d in (next(latest) for _ in ps) if d is not None]
            result[i] = min(found, default=None)  # a ratio is as fresh as its older part
        return result

    def prefetch(self, metrics: Iterable[Metric]) -> None:
        """Read the daily partials of many metrics (a ratio's: its parts'), in as few scans as
        `Scanner.prefetch` can; a scan also reads every other metric of the config it can serve,
        so later marts of the same run find theirs read."""
        self._scan.prefetch(part for metric in metrics for part in self._sources(metric))

    def _require(self, needs: Iterable[tuple[Metric, date]]) -> None:
        """Each metric's data is needed from its day on (see `Scanner.require`)."""
        self._scan.require((part, day) for metric, day in needs for part in self._sources(metric))

    def _sources(self, metric: Metric) -> list[SourceMetric]:
        """The source metrics `metric` is measured from: itself, or a ratio's parts."""
        if isinstance(metric, RatioMetric):
            return ratio_parts(metric, self.config.metrics)
        return [metric]

    def _codes(self, requests: list[SeriesRequest]) -> pl.Series:
        return pl.Series([self._scan.code(r.metric) for r in requests], dtype=pl.UInt32)

    def _distinct_series(self, request: SeriesRequest) -> pl.DataFrame:
        metric = request.metric
        deltas = self._scan.distinct_deltas(
            metric, metric.trailing_days, distinct_first_day(request), request.last
        )
        return distinct_series(request, self._scan.daily(metric), deltas)

    def _window_distincts(self, windows: pl.DataFrame, metrics: dict[str, Metric]) -> pl.DataFrame:
        """`_i`, `distinct_n` of the windows of distinct counts, counted from raw ids."""
        counts = [pl.DataFrame(schema={"_i": pl.UInt32, "distinct_n": pl.Float64})]
        distinct = windows.filter(pl.col("aggregation") == "count_distinct")
        for (metric_id,), group in distinct.partition_by("metric_id", as_dict=True).items():
            counts.append(self._scan.window_distincts(metrics[metric_id], group))
        return pl.concat(counts)
