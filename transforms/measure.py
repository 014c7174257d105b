"""Measured values a(d) of metrics (docs/computation.md), read from the staging tables.

DuckDB reduces source rows to one row per metric and day (and, for distinct counts, to
first-seen days or coverage spans of raw ids, since distinct counts do not add up over days);
Polars turns those daily partials into windowed values. Everything is measured many at once: the
metrics sharing a source and a filter column are read in one scan, and the series and windows of
every KR or metric asked for are computed in a few frame-wide expressions, so a config of
thousands of metrics costs a handful of queries, not one per metric.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import duckdb
import polars as pl

from connectors.registry import METRIC_SOURCES
from connectors.spec import SourceSpec
from transforms.config import Metric, OkrConfig, RatioMetric, SourceMetric
from warehouse.sql import quote_ident, quote_literal

SERIES_SCHEMA = {"date": pl.Date, "value": pl.Float64, "latest_date": pl.Date}
PARTIALS_SCHEMA = {
    "pkey": pl.UInt32,
    "date": pl.Date,
    "matched_rows": pl.Float64,
    "value_sum": pl.Float64,
    "value_min": pl.Float64,
    "value_max": pl.Float64,
    "source_rows": pl.Float64,
}
WINDOW_DAYS_PER_SLICE = 1_000_000
"""Days of windows summed at once (a few tens of MB of rows)."""
_NUMERIC = ("sum", "avg", "min", "max", "last")
"""Aggregations of a value column; the others count rows (`count`) or ids (`count_distinct`)."""


@dataclass(frozen=True)
class SeriesRequest:
    """a(d) of `metric` for every d in [first, last]; period windows accumulate from
    `period_start` (KR windows start there; success periods measure [period_start, last])."""

    id: str
    metric: Metric
    first: date
    last: date
    period_start: date


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
    _partials: dict[str, pl.DataFrame] = field(default_factory=dict)
    """By partial key: daily partials of a scan, rows of the key's metric where `pkey` is its code."""
    _codes: dict[str, int] = field(default_factory=dict)
    """A small integer per partial key: frames join on it, not on the key's JSON text."""
    _sightings: dict[str, str] = field(default_factory=dict)
    _unbounded: set[str] = field(default_factory=set)
    """Partial keys read (or to be read) ignoring `since`."""
    _distincts: dict[tuple, pl.DataFrame] = field(default_factory=dict)
    _first_days: dict[tuple, date | None] = field(default_factory=dict)
    _tables: set[str] | None = None
    _column_types: dict[str, dict[str, str]] = field(default_factory=dict)

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
            parts = [self.earliest_date(part) for part in self._parts(metric)]
            return min((d for d in parts if d is not None), default=None)
        source = METRIC_SOURCES[metric.source]
        if not self._has_table(source.table):
            return None
        key = (metric.source, self._day_expr(metric))
        if key not in self._first_days:
            where = f" WHERE {source.row_filter}" if source.row_filter else ""
            [(first,)] = self.con.execute(
                f"SELECT min({key[1]}) FROM {source.table}{where}"
            ).fetchall()
            self._first_days[key] = first
        return self._first_days[key]

    # -- many at once -------------------------------------------------------------------------

    def series_many(self, requests: Iterable[SeriesRequest]) -> pl.DataFrame:
        """`series` of every request: `id`, `date`, `value`, `latest_date`, in request order."""
        requests = [r for r in requests if r.last >= r.first]
        self._require((r.metric, _first_day_read(r)) for r in requests)
        ratios = [r for r in requests if isinstance(r.metric, RatioMetric)]
        distinct = [r for r in requests if r.metric.aggregation == "count_distinct"]
        plain = [
            r
            for r in requests
            if isinstance(r.metric, SourceMetric) and r.metric.aggregation != "count_distinct"
        ]
        frames = [pl.DataFrame(schema={"id": pl.String, "date": pl.Date, "value": pl.Float64})]
        self.prefetch(r.metric for r in plain + distinct)
        if plain:
            frames.append(self._partial_series(plain))
        frames += [self._distinct_series(r) for r in distinct]
        measured = self._with_latest(pl.concat(frames, how="vertical_relaxed"), plain + distinct)
        if ratios:
            measured = pl.concat([measured, self._ratio_series(ratios)], how="vertical_relaxed")
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
                    if _valued_as_of_end(m)
                    else "windowed"
                    for m in used.values()
                ],
                "pkey": [self._code(m) for m in used.values()],
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
        frames = [pl.DataFrame(schema=_WINDOW_VALUES_SCHEMA)]
        windowed = rows.filter(pl.col("_kind") == "windowed")
        if windowed.height:
            frames.append(self._window_values(windowed, used))
        as_of_end = rows.filter(pl.col("_kind") == "as_of_end")
        if as_of_end.height:
            frames.append(self._values_as_of_end(as_of_end, used))
        ratios = rows.filter(pl.col("_kind") == "ratio")
        if ratios.height:
            frames.append(self._ratio_values(ratios, used))
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
            frames.append(self._with_latest(_calendar_of(plain), plain))
        if ratios:
            parts = self._part_requests(ratios)
            latest = self.latest_many([(r.id, r.metric) for r in parts], first, last).with_columns(
                pl.col("id").str.split_exact(_PART, 1).struct.field("field_0").alias("id")
            )
            frames.append(
                latest.group_by("id", "date").agg(pl.col("latest_date").min()).sort("id", "date")
            )
        return pl.concat(frames, how="vertical_relaxed")

    def latest_data_dates(
        self, metrics: Iterable[tuple[str, Metric]], as_of: date
    ) -> dict[str, date | None]:
        """For each (id, metric): the latest day on or before `as_of` with data, as
        `latest_dates` gives it, from one max() per key instead of the daily partials (lint and
        checks need only this, and it costs the same whatever the history)."""
        metrics = list(metrics)
        parts = {i: self._source_metrics(m) for i, m in metrics}
        groups: dict[tuple, set[str]] = defaultdict(set)
        unbatched: dict[str, SourceMetric] = {}
        for part in (p for ps in parts.values() for p in ps):
            batch = self._batch_of(part)
            if batch is None:
                unbatched[_partial_key(part)] = part
            else:
                groups[batch[0]].update(batch[1])
        latest: dict[tuple, date | None] = {}
        for (source_name, day, value, key_expr), wanted in groups.items():
            source = METRIC_SOURCES[source_name]
            rows = self.con.sql(
                f"""
                SELECT CAST({key_expr} AS VARCHAR) AS key, max({day}) AS row_day,
                    max({day}) FILTER (WHERE {value} IS NOT NULL) AS value_day
                FROM {source.table}
                WHERE CAST({key_expr} AS VARCHAR) IN (SELECT unnest(?::VARCHAR[]))
                    AND {day} <= ?{_and(source.row_filter)}
                GROUP BY ALL""",
                params=[sorted(wanted), as_of],
            ).fetchall()
            for key, row_day, value_day in rows:
                latest[(source_name, day, value, key_expr, key)] = (row_day, value_day)
        for key, part in unbatched.items():
            [day] = self.latest_dates(part, as_of, as_of)["latest_date"].to_list()
            latest[(key,)] = (day, day)

        def part_latest(part: SourceMetric) -> date | None:
            batch = self._batch_of(part)
            if batch is None:
                return latest[(_partial_key(part),)][0]
            days = [latest.get((*batch[0], text), (None, None)) for text in batch[1]]
            pick = 0 if part.aggregation not in _NUMERIC else 1
            return max((d[pick] for d in days if d[pick] is not None), default=None)

        result = {}
        for i, _ in metrics:
            found = [d for d in map(part_latest, parts[i]) if d is not None]
            result[i] = min(found, default=None)  # a ratio is as fresh as its older part
        return result

    def _require(self, needs: Iterable[tuple[Metric, date]]) -> None:
        """Each metric's data is needed from its day on: a metric needing days before `since`
        forgets what was read of it and is read again in full."""
        if self.since is None:
            return
        for metric, day in needs:
            if day >= self.since:
                continue
            for part in self._source_metrics(metric):
                key = _partial_key(part)
                if key in self._unbounded:
                    continue
                self._unbounded.add(key)
                self._partials.pop(key, None)
                self._sightings.pop(key, None)
                for cached in [k for k in self._distincts if k[0] == key]:
                    del self._distincts[cached]

    def _since(self, key: str) -> date | None:
        return None if key in self._unbounded else self.since

    def prefetch(self, metrics: Iterable[Metric]) -> None:
        """Read the daily partials of many metrics: one scan per source table and filter column
        for metrics filtered on one column by text (`metric_id: x`, `event: signup`), one per
        metric otherwise. A scan also reads every other metric of the config it can serve, so
        later marts of the same run find theirs read."""
        batches: dict[tuple, list[tuple[str, Metric, list[str]]]] = defaultdict(list)
        pending: set[str] = set()

        def add(metric: Metric, only_to_scans: bool = False) -> None:
            for part in self._source_metrics(metric):
                key = _partial_key(part)
                if key in self._partials or key in pending:
                    continue
                batch = self._batch_of(part)
                scan = None if batch is None else (*batch[0], self._since(key))
                if only_to_scans and scan not in batches:
                    continue
                pending.add(key)
                if batch is None:
                    self._partials[key] = self._single_partials(part)
                else:
                    batches[scan].append((key, part, batch[1]))

        for metric in metrics:
            add(metric)
        if batches:
            for metric in self.config.metrics.values():
                add(metric, only_to_scans=True)
        for (*group, since), members in batches.items():
            self._read_batch(tuple(group), members, since)

    # -- period, trailing and `last` windows over daily partials -------------------------------

    def _partial_series(self, requests: list[SeriesRequest]) -> pl.DataFrame:
        frame = pl.DataFrame(
            [
                {
                    "id": r.id,
                    "pkey": self._code(r.metric),
                    "aggregation": r.metric.aggregation,
                    "trailing": r.metric.trailing_days,
                    "first": r.first,
                    "last": r.last,
                    "period_start": r.period_start,
                    "read_from": self._history_start(r),
                }
                for r in requests
            ],
            schema={
                "id": pl.String,
                "pkey": pl.UInt32,
                "aggregation": pl.String,
                "trailing": pl.Int64,
                "first": pl.Date,
                "last": pl.Date,
                "period_start": pl.Date,
                "read_from": pl.Date,
            },
        )
        days = (
            frame.with_columns(date=pl.date_ranges("read_from", "last"))
            .explode("date")
            .join(self._long(frame["pkey"]), on=["pkey", "date"], how="left", maintain_order="left")
            .with_columns(pl.col("matched_rows", "value_sum", "source_rows").fill_null(0))
        )
        outputs = []
        for (aggregation, trailing), group in days.partition_by(
            "aggregation", "trailing", as_dict=True, maintain_order=True
        ).items():
            outputs.append(_windowed(group, aggregation, trailing))
        values = pl.concat(outputs) if outputs else days.select("id", "date", value=pl.lit(0.0))
        return (
            _calendar_of(requests)
            .join(values, on=["id", "date"], how="left", maintain_order="left")
            .select("id", "date", pl.col("value").cast(pl.Float64))
        )

    def _history_start(self, request: SeriesRequest) -> date:
        """The first day whose data a(first) can depend on."""
        metric = request.metric
        start = request.first - timedelta(days=(metric.trailing_days or 1) - 1)
        if metric.trailing_days is None:
            start = min(start, request.period_start)
        if metric.aggregation == "last":
            start = min(start, self._daily_partials(metric)["date"].min() or start)
        return start

    def _with_latest(self, values: pl.DataFrame, requests: list[SeriesRequest]) -> pl.DataFrame:
        """Adds `latest_date`: the latest day <= date on which the request's metric has data."""
        keys = pl.DataFrame(
            {"id": [r.id for r in requests], "pkey": [self._code(r.metric) for r in requests]},
            schema={"id": pl.String, "pkey": pl.UInt32},
        ).unique("id")
        data_days = (
            self._long(keys["pkey"])
            .filter(pl.col("matched_rows") > 0)
            .select("pkey", "date", latest_date=pl.col("date"))
            .sort("date")
        )
        return (
            values.with_row_index("_row")
            .join(keys, on="id", how="left")
            .sort("date")
            .join_asof(data_days, on="date", by="pkey", strategy="backward", check_sortedness=False)
            .sort("_row")
            .drop("_row", "pkey")
        )

    # -- windows (success-metric periods, days, baselines) ------------------------------------

    def _window_values(self, windows: pl.DataFrame, metrics: dict[str, Metric]) -> pl.DataFrame:
        """Period metrics over each window's own days, from the daily partials."""
        if (windows["start"] == windows["end"]).all():  # single days (metric_daily): no sums
            totals = windows.select("_i", "pkey", date="start").join(
                self._long(windows["pkey"]), on=["pkey", "date"], how="inner"
            )
        else:
            # A window is one row per day while it is summed: in slices of about
            # WINDOW_DAYS_PER_SLICE days, so memory stays flat however many metrics there are.
            days = (pl.col("end") - pl.col("start")).dt.total_days() + 1
            slices = windows.with_columns(
                _slice=(days.cum_sum() // WINDOW_DAYS_PER_SLICE).cast(pl.UInt32)
            ).partition_by("_slice", maintain_order=True)
            totals = pl.concat(
                [
                    part.select("_i", "pkey", date=pl.date_ranges("start", "end"))
                    .explode("date")
                    .join(self._long(part["pkey"]), on=["pkey", "date"], how="inner")
                    .group_by("_i")
                    .agg(  # summed in date order, whatever order the join left: the same bits
                        pl.col("matched_rows", "value_sum", "source_rows").sort_by("date").sum(),
                        pl.col("value_min").min(),
                        pl.col("value_max").max(),
                    )
                    for part in slices
                ]
            )
        totals = totals.select(
            "_i", "matched_rows", "value_sum", "value_min", "value_max", "source_rows"
        )
        frame = windows.join(totals, on="_i", how="left").with_columns(
            pl.col("matched_rows", "source_rows").fill_null(0)
        )
        distinct = frame.filter(pl.col("aggregation") == "count_distinct")
        distinct_n = [pl.DataFrame(schema={"_i": pl.UInt32, "distinct_n": pl.Float64})]
        for (metric_id,), group in distinct.partition_by("metric_id", as_dict=True).items():
            distinct_n.append(self._window_distincts(metrics[metric_id], group))
        frame = frame.join(pl.concat(distinct_n), on="_i", how="left")
        n, source_n, aggregation = (
            pl.col("matched_rows"),
            pl.col("source_rows"),
            pl.col("aggregation"),
        )
        value = (
            pl.when(n == 0)
            # zero when the source has rows in the window but none match, null when it has none
            .then(
                pl.when(
                    aggregation.is_in(["sum", "count", "count_distinct"]) & (source_n > 0)
                ).then(0.0)
            )
            .when(aggregation == "count_distinct")
            .then(pl.col("distinct_n").fill_null(0.0))
            .when(aggregation == "min")
            .then(pl.col("value_min"))
            .when(aggregation == "max")
            .then(pl.col("value_max"))
            .when(aggregation == "avg")
            .then(pl.col("value_sum") / n)
            .when(aggregation == "count")
            .then(n)
            .otherwise(pl.col("value_sum"))
        )
        return frame.select("_i", value=value.cast(pl.Float64))

    def _values_as_of_end(self, windows: pl.DataFrame, metrics: dict[str, Metric]) -> pl.DataFrame:
        """Trailing and `last` metrics: a(end), one series per metric over its windows' ends."""
        spans = windows.group_by("metric_id").agg(
            first=pl.col("end").min(), last=pl.col("end").max()
        )
        series = self.series_many(
            SeriesRequest(metric_id, metrics[metric_id], first, last, first)
            for metric_id, first, last in spans.iter_rows()
        )
        return windows.join(
            series.select(pl.col("id").alias("metric_id"), pl.col("date").alias("end"), "value"),
            on=["metric_id", "end"],
            how="left",
        ).select("_i", "value")

    def _window_distincts(self, metric: SourceMetric, windows: pl.DataFrame) -> pl.DataFrame:
        """Distinct ids per window, counted from the raw rows (never summed over days): each
        window is spread over its days, so a row joins the windows holding its day by equality."""
        sql = f"""
            WITH w AS (
                SELECT _i, unnest(generate_series(lo, hi, INTERVAL 1 DAY))::DATE AS date
                FROM _okr_windows
            )
            SELECT w._i, count(DISTINCT r.value)::DOUBLE AS distinct_n
            FROM {self._sightings_table(metric)} AS r JOIN w ON r.date = w.date
            GROUP BY w._i"""
        self.con.register("_okr_windows", windows.select("_i", lo="start", hi="end").to_arrow())
        try:
            return self._query(sql, []).with_columns(pl.col("_i").cast(pl.UInt32))
        finally:
            self.con.unregister("_okr_windows")

    # -- distinct counts over raw ids ---------------------------------------------------------

    def _distinct_series(self, request: SeriesRequest) -> pl.DataFrame:
        metric, first, last = request.metric, request.first, request.last
        trailing = metric.trailing_days
        lo = first - timedelta(days=trailing - 1) if trailing else request.period_start
        window = _window_sums(trailing)
        return (
            _calendar(lo, last)
            .join(self._daily_partials(metric), on="date", how="left")
            .join(self._distinct_deltas(metric, lo, last), on="date", how="left")
            .with_columns(pl.col("matched_rows", "source_rows", "delta").fill_null(0))
            .select(
                pl.lit(request.id, pl.String).alias("id"),
                "date",
                value=pl.when(window("matched_rows") > 0)
                .then(pl.col("delta").cum_sum())
                .when(window("source_rows") > 0)
                .then(0.0),
            )
            .filter(pl.col("date") >= first)
        )

    def _distinct_deltas(self, metric: SourceMetric, lo: date, last: date) -> pl.DataFrame:
        """Per day, the change in distinct ids counted from `lo`: first sightings (period
        windows) or coverage spans opening and closing (trailing windows)."""
        trailing = metric.trailing_days
        key = (_partial_key(metric), trailing, lo, last)
        if key in self._distincts:
            return self._distincts[key]
        sightings = self._sightings_table(metric)
        if trailing is None:
            # A user counts from the first day they appear in the window.
            sql = f"""
                SELECT first_day AS date, count(*)::DOUBLE AS delta FROM (
                    SELECT value, min(date) AS first_day FROM {sightings}
                    WHERE date BETWEEN ? AND ? GROUP BY value
                ) GROUP BY first_day"""
        else:
            # Each sighting covers [day, day + N - 1]; merge overlapping spans per id, then count
            # the spans open on each day: +1 where a span starts, -1 the day after it ends.
            sql = f"""
                WITH sightings AS (
                    SELECT value, date FROM {sightings} WHERE date BETWEEN ? AND ?
                ), flagged AS (
                    SELECT value, date, CASE WHEN lag(date) OVER (PARTITION BY value ORDER BY date)
                        >= date - {trailing} THEN 0 ELSE 1 END AS starts_span
                    FROM sightings
                ), numbered AS (
                    SELECT value, date, sum(starts_span) OVER (
                        PARTITION BY value ORDER BY date ROWS UNBOUNDED PRECEDING) AS span
                    FROM flagged
                ), spans AS (
                    SELECT min(date) AS opens, max(date) + {trailing} AS closes
                    FROM numbered GROUP BY value, span
                )
                SELECT date, sum(delta)::DOUBLE AS delta FROM (
                    SELECT opens AS date, 1 AS delta FROM spans
                    UNION ALL SELECT closes AS date, -1 AS delta FROM spans
                ) GROUP BY date"""
        self._distincts[key] = self._query(sql, [lo, last])
        return self._distincts[key]

    def _sightings_table(self, metric: SourceMetric) -> str:
        """A temporary table of the distinct (date, id) pairs a distinct count reads, built once
        per reader: every window, first-seen and coverage query of the metric reads it, not the
        raw rows."""
        key = _partial_key(metric)
        if key not in self._sightings:
            name = f"_okr_sightings_{uuid.uuid4().hex[:12]}"
            rows, params = self._rows_sql(metric, with_value=True)
            self.con.execute(
                f"CREATE TEMP TABLE {name} AS SELECT DISTINCT date, value FROM ({rows}) "
                f"WHERE matches AND value IS NOT NULL{_bound('date', self._since(key))}",
                params,
            )
            self._sightings[key] = name
        return self._sightings[key]

    # -- ratios -------------------------------------------------------------------------------

    def _parts(self, ratio: RatioMetric) -> list[SourceMetric]:
        """A ratio's numerator and denominator, each measured over the ratio's own window (the
        config checked that both are source metrics)."""
        return [
            self.config.metrics[metric_id].model_copy(update={"window": ratio.window})
            for metric_id in ratio.parts
        ]

    def _source_metrics(self, metric: Metric) -> list[SourceMetric]:
        """The source metrics whose daily partials `metric` is measured from."""
        return self._parts(metric) if isinstance(metric, RatioMetric) else [metric]

    def _part_requests(self, ratios: list[SeriesRequest]) -> list[SeriesRequest]:
        return [
            SeriesRequest(f"{r.id}{_PART}{side}", part, r.first, r.last, r.period_start)
            for r in ratios
            for side, part in zip(("num", "den"), self._parts(r.metric), strict=True)
        ]

    def _ratio_series(self, ratios: list[SeriesRequest]) -> pl.DataFrame:
        parts = (
            self.series_many(self._part_requests(ratios))
            .with_columns(
                pl.col("id").str.split_exact(_PART, 1).struct.rename_fields(["ratio", "side"])
            )
            .unnest("id")
        )
        numerator = parts.filter(pl.col("side") == "num").drop("side")
        denominator = parts.filter(pl.col("side") == "den").drop("side")
        return numerator.join(
            denominator, on=["ratio", "date"], suffix="_den", maintain_order="left"
        ).select(
            pl.col("ratio").alias("id"),
            "date",
            value=pl.when(pl.col("value_den") != 0).then(pl.col("value") / pl.col("value_den")),
            # The ratio is only as fresh as the older of its two parts.
            latest_date=pl.min_horizontal("latest_date", "latest_date_den"),
        )

    def _ratio_values(self, windows: pl.DataFrame, metrics: dict[str, Metric]) -> pl.DataFrame:
        parts: dict[str, Metric] = {}
        for metric_id in windows["metric_id"].unique().to_list():
            for side, part in zip(("num", "den"), self._parts(metrics[metric_id]), strict=True):
                parts[f"{metric_id}{_PART}{side}"] = part
        sides = [
            self.values_many(
                windows.select("start", "end", metric_id=pl.col("metric_id") + f"{_PART}{side}"),
                parts,
            )["value"]
            for side in ("num", "den")
        ]
        return windows.select("_i", value=pl.when(sides[1] != 0).then(sides[0] / sides[1]))

    # -- reading the warehouse ----------------------------------------------------------------

    def _daily_partials(self, metric: SourceMetric) -> pl.DataFrame:
        """Per day: the rows the metric matches (`matched_rows`), their `value_sum`, `value_min` and
        `value_max`, and all the source's rows (`source_rows`, for the zero-versus-null rule)."""
        key = _partial_key(metric)
        if key not in self._partials:
            self.prefetch([metric])
        return self._partials[key].filter(pl.col("pkey") == self._code(metric))

    def _long(self, codes: pl.Series) -> pl.DataFrame:
        """The daily partials of the given metrics (by partial key code) as one frame, metric
        after metric in the order of `codes`, each by date."""
        keys = list(self._codes)
        order = codes.unique(maintain_order=True)
        scans: dict[int, tuple[pl.DataFrame, list[int]]] = {}
        for code in order.to_list():  # a metric read again in full is in its newest scan only
            frame = self._partials[keys[code]]
            scans.setdefault(id(frame), (frame, []))[1].append(code)
        wanted = pl.DataFrame({"pkey": order, "order": pl.int_range(len(order), eager=True)})
        return (
            pl.concat(
                [pl.DataFrame(schema=PARTIALS_SCHEMA)]
                + [
                    frame.filter(
                        pl.col("pkey").is_in(pl.Series(in_frame, dtype=pl.UInt32).implode())
                    )
                    for frame, in_frame in scans.values()
                ]
            )
            .join(wanted, on="pkey")
            .sort("order", "date", maintain_order=True)
            .drop("order")
        )

    def _code(self, metric: Metric) -> int:
        return self._codes.setdefault(_partial_key(metric), len(self._codes))

    def _batch_of(self, metric: SourceMetric) -> tuple[tuple, list[str]] | None:
        """(scan group, wanted texts) for a metric filtered on one column by text values."""
        if len(metric.filter) != 1 or not self._has_table(METRIC_SOURCES[metric.source].table):
            return None
        [(column, wanted)] = metric.filter.items()
        values = wanted if isinstance(wanted, list) else [wanted]
        if any(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return None  # numbers compare as numbers (see _filter_condition)
        source = METRIC_SOURCES[metric.source]
        value = _column_expr(source, metric.column) if metric.aggregation in _NUMERIC else "NULL"
        group = (metric.source, self._day_expr(metric), value, _column_expr(source, column))
        return group, sorted({_filter_text(v) for v in values})

    def _read_batch(
        self, group: tuple, members: list[tuple[str, Metric, list[str]]], since: date | None
    ) -> None:
        """One scan for the metrics of a group: rows per (day, key) are summed into each metric's
        partials inside DuckDB, on every day the source has rows."""
        source_name, day, value, key_expr = group
        source = METRIC_SOURCES[source_name]
        wanted = sorted({text for _, _, texts in members for text in texts})
        wanted_by = pl.DataFrame(
            [
                {
                    "pkey": self._code(metric),
                    "key": text,
                    "counts_rows": metric.aggregation not in _NUMERIC,
                }
                for _, metric, texts in members
                for text in texts
            ],
            schema={"pkey": pl.UInt32, "key": pl.String, "counts_rows": pl.Boolean},
        )
        self.con.register("_okr_wanted", wanted_by.to_arrow())
        try:
            partials = self._query(
                f"""
                WITH matched AS (
                    SELECT {day} AS date, CAST({key_expr} AS VARCHAR) AS key,
                        count(*) AS rows, count({value}) AS vals, {_exact_sum(value)} AS value_sum,
                        min({value})::DOUBLE AS value_min, max({value})::DOUBLE AS value_max
                    FROM {source.table}
                    WHERE CAST({key_expr} AS VARCHAR) IN (SELECT unnest(?::VARCHAR[]))
                        {_and(source.row_filter)}{_bound(day, since)}
                    GROUP BY ALL
                ), per_metric AS (
                    SELECT w.pkey, m.date,
                        sum(CASE WHEN w.counts_rows THEN m.rows ELSE m.vals END)::DOUBLE AS matched_rows,
                        sum(m.value_sum ORDER BY m.key) AS value_sum, min(m.value_min) AS value_min, max(m.value_max) AS value_max
                    FROM matched AS m JOIN _okr_wanted AS w USING (key)
                    GROUP BY ALL
                ), days AS (
                    SELECT {day} AS date, count(*)::DOUBLE AS source_rows FROM {source.table}
                    WHERE TRUE{_and(source.row_filter)}{_bound(day, since)}
                    GROUP BY ALL
                )
                SELECT k.pkey, d.date, coalesce(p.matched_rows, 0)::DOUBLE AS matched_rows, p.value_sum, p.value_min, p.value_max, d.source_rows
                FROM (SELECT DISTINCT pkey FROM _okr_wanted) AS k CROSS JOIN days AS d
                LEFT JOIN per_metric AS p ON p.pkey = k.pkey AND p.date = d.date""",
                [wanted],
            )
        finally:
            self.con.unregister("_okr_wanted")
        carried = _per_metric(self._carried_days(group, wanted, since), wanted_by).with_columns(
            source_rows=pl.lit(1.0)
        )
        partials = pl.concat(
            [partials.cast(PARTIALS_SCHEMA), carried.select(list(PARTIALS_SCHEMA))]  # type: ignore[arg-type]
        ).sort("pkey", "date")
        # One frame for the whole scan, shared by its metrics (filtered by `pkey` when read):
        # ten thousand small frames would cost more memory than their rows.
        for key, _, _ in members:
            self._partials[key] = partials

    def _carried_days(self, group: tuple, wanted: list[str], since: date | None) -> pl.DataFrame:
        """With `since`: per key, the aggregates of its latest day before `since` with rows and
        of its latest day with a value, so `last` values and staleness look back past it."""
        source_name, day, value, key_expr = group
        source = METRIC_SOURCES[source_name]
        empty = pl.DataFrame(
            schema={
                "date": pl.Date,
                "key": pl.String,
                "rows": pl.Float64,
                "vals": pl.Float64,
                "value_sum": pl.Float64,
                "value_min": pl.Float64,
                "value_max": pl.Float64,
            }
        )
        if since is None:
            return empty
        key_text = f"CAST({key_expr} AS VARCHAR)"
        before = (
            f"FROM {source.table} WHERE {key_text} IN (SELECT unnest(?::VARCHAR[])) "
            f"AND {day} < DATE '{since.isoformat()}'{_and(source.row_filter)}"
        )
        return pl.concat(
            [
                empty,
                self._query(
                    f"""
            WITH last_days AS (
                SELECT {key_text} AS key, max({day}) AS row_day,
                    max({day}) FILTER (WHERE {value} IS NOT NULL) AS value_day
                {before} GROUP BY ALL
            )
            SELECT {day} AS date, {key_text} AS key,
                count(*)::DOUBLE AS rows, count({value})::DOUBLE AS vals,
                {_exact_sum(value)} AS value_sum, min({value})::DOUBLE AS value_min, max({value})::DOUBLE AS value_max
            {before}
                AND ({key_text}, {day}) IN (
                    SELECT (key, row_day) FROM last_days
                    UNION SELECT (key, value_day) FROM last_days WHERE value_day IS NOT NULL)
            GROUP BY ALL""",
                    [wanted, wanted],
                ),
            ],
            how="vertical_relaxed",
        )

    def _single_partials(self, metric: SourceMetric) -> pl.DataFrame:
        rows, params = self._rows_sql(metric, with_value=metric.aggregation in _NUMERIC)
        counted = "count(value)" if metric.aggregation in _NUMERIC else "count(*)"
        numeric = metric.aggregation in _NUMERIC
        sql = f"""
            SELECT ?::UINTEGER AS pkey, date,
                {counted} FILTER (WHERE matches)::DOUBLE AS matched_rows,
                {_exact_sum("value", "matches") if numeric else "NULL::DOUBLE"} AS value_sum,
                {"min(value) FILTER (WHERE matches)" if numeric else "NULL"}::DOUBLE AS value_min,
                {"max(value) FILTER (WHERE matches)" if numeric else "NULL"}::DOUBLE AS value_max,
                count(*)::DOUBLE AS source_rows
            FROM ({rows}) GROUP BY date ORDER BY date"""
        return self._query(sql, [self._code(metric), *params]).cast(PARTIALS_SCHEMA)  # type: ignore[arg-type]

    def _rows_sql(self, metric: SourceMetric, with_value: bool) -> tuple[str, list[Any]]:
        """Source rows as (date, value, matches): `matches` is the metric's filter, kept as a flag
        so the same scan also counts the source's rows for the zero-versus-null rule."""
        source = METRIC_SOURCES[metric.source]
        if not self._has_table(source.table):  # a source never loaded has no data: null, not 0
            return "SELECT NULL::DATE AS date, NULL AS value, FALSE AS matches WHERE FALSE", []
        value = _column_expr(source, metric.column) if with_value and metric.column else "NULL"
        conditions, params = ["TRUE"], []
        for column, wanted in metric.filter.items():
            condition, values = _filter_condition(
                _column_expr(source, column), wanted if isinstance(wanted, list) else [wanted]
            )
            conditions.append(condition)
            params += values
        where = f" WHERE {source.row_filter}" if source.row_filter else ""
        sql = (
            f"SELECT {self._day_expr(metric)} AS date, {value} AS value, "
            f"({' AND '.join(conditions)}) AS matches FROM {source.table}{where}"
        )
        return sql, params

    def _day_expr(self, metric: SourceMetric) -> str:
        """The row's day: timestamps with a time zone are read in the config's time zone."""
        source = METRIC_SOURCES[metric.source]
        table, time_column = source.table, metric.time_column_or_default
        local_day = source.local_day_column
        if time_column == source.time_column and local_day and self._column_type(table, local_day):
            return quote_ident(local_day)
        if self._column_type(table, time_column) == "TIMESTAMP WITH TIME ZONE":
            tz = quote_literal(self.config.settings.timezone)
            return f"CAST(timezone({tz}, {quote_ident(time_column)}) AS DATE)"
        return f"CAST({quote_ident(time_column)} AS DATE)"

    def _query(self, sql: str, params: list[Any]) -> pl.DataFrame:
        return self.con.sql(sql, params=params).pl()

    def _has_table(self, table: str) -> bool:
        if self._tables is None:
            self._tables = {
                f"{schema}.{name}"
                for schema, name in self.con.execute(
                    "SELECT schema_name, table_name FROM duckdb_tables() "
                    "UNION ALL SELECT schema_name, view_name FROM duckdb_views()"
                ).fetchall()
            }
        return table in self._tables

    def _column_type(self, table: str, column: str) -> str | None:
        if table not in self._column_types:
            schema, name = table.split(".")
            self._column_types[table] = dict(
                self.con.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = ? AND table_name = ?",
                    [schema, name],
                ).fetchall()
            )
        return self._column_types[table].get(column)


_PART = "\x1f"
"""Separates a ratio request's id from its part's side in the parts' request ids."""
_WINDOW_VALUES_SCHEMA = {"_i": pl.UInt32, "value": pl.Float64}


def _bound(day: str, since: date | None) -> str:
    return f" AND {day} >= DATE '{since.isoformat()}'" if since else ""


def _exact_sum(value: str, where: str = "") -> str:
    """DuckDB's sum of `value` (of the rows `where` holds) as DOUBLE, the same bits whatever the
    order of the rows and the threads reading them: a plain sum adds rows in the order they
    arrive, and floating-point addition is not associative. Sorted by value, rows are added in
    one order (equal values are interchangeable), at the cost of sorting each group's rows."""
    if value == "NULL":  # metrics counting rows read no value
        return "NULL::DOUBLE"
    where = f" FILTER (WHERE {where})" if where else ""
    return f"sum({value} ORDER BY {value}){where}::DOUBLE"


def _per_metric(matched: pl.DataFrame, wanted_by: pl.DataFrame) -> pl.DataFrame:
    """Per-key daily aggregates summed into each metric's (the keys its filter lists): rows for
    counts, values for the others."""
    return (
        matched.join(wanted_by, on="key")
        .group_by("pkey", "date")
        .agg(
            matched_rows=pl.when(pl.col("counts_rows"))
            .then(pl.col("rows"))
            .otherwise(pl.col("vals"))
            .sum(),
            value_sum=pl.col("value_sum")
            .sort_by("key")
            .sum(),  # keys in one order, whatever the join's
            value_min=pl.col("value_min").min(),
            value_max=pl.col("value_max").max(),
        )
    )


def _first_day_read(request: SeriesRequest) -> date:
    """The first day whose rows a(d) for d in the request reads (`last` values look back through
    the carried day, see `MetricReader.since`)."""
    metric = request.metric
    if metric.aggregation == "last":
        return request.first
    if metric.trailing_days:
        return request.first - timedelta(days=metric.trailing_days - 1)
    return min(request.first, request.period_start)


def _partial_key(metric: Metric) -> str:
    """Metrics equal in these fields have the same daily partials (a ratio's parts included)."""
    return metric.model_dump_json(
        include={"source", "column", "filter", "time_column", "aggregation"}
    )


def _valued_as_of_end(metric: Metric) -> bool:
    return isinstance(metric, SourceMetric) and (
        metric.window != "period" or metric.aggregation == "last"
    )


def _and(condition: str | None) -> str:
    """` AND <condition>`, or nothing when there is none (a source's `row_filter`)."""
    return f" AND {condition}" if condition else ""


def _windowed(days: pl.DataFrame, aggregation: str, trailing: int | None) -> pl.DataFrame:
    """a(d) of requests of one aggregation and window from their days' partials (`id`, `date`,
    `matched_rows`, `value_sum`, `value_min`, `value_max`, `source_rows`, `first`,
    `period_start`), days in order per id."""
    if aggregation == "last":
        daily_mean = pl.when(pl.col("matched_rows") > 0).then(
            pl.col("value_sum") / pl.col("matched_rows")
        )
        values = days.select("id", "date", "first", value=daily_mean.forward_fill().over("id"))
        return values.filter(pl.col("date") >= pl.col("first")).drop("first")
    if trailing is None:
        days = days.filter(pl.col("date") >= pl.col("period_start"))
    else:  # counts add up exactly in any order; sums of decimals only in a fixed one
        days = days.with_columns(_s=_trailing_sums(days, "value_sum", trailing))

    def window(column: str) -> pl.Expr:
        return _window_sums(trailing)(column).over("id")

    n, source_n = window("matched_rows"), window("source_rows")
    s = window("value_sum") if trailing is None else pl.col("_s")
    if aggregation in ("min", "max"):
        extreme = pl.col("value_min" if aggregation == "min" else "value_max")
        if trailing is None:
            extreme = extreme.cum_min() if aggregation == "min" else extreme.cum_max()
            extreme = extreme.forward_fill()
        else:
            roll = extreme.rolling_min if aggregation == "min" else extreme.rolling_max
            extreme = roll(trailing, min_samples=1)
        value = pl.when(n > 0).then(extreme.over("id"))
    elif aggregation == "avg":
        value = pl.when(n > 0).then(s / n)
    else:  # sum, count: zero when the source has rows but none match, null when it has none
        total = n if aggregation == "count" else s
        value = pl.when(n > 0).then(total).when(source_n > 0).then(0.0)
    values = days.select("id", "date", "first", value=value.cast(pl.Float64))
    return values.filter(pl.col("date") >= pl.col("first")).drop("first")


def _window_sums(trailing: int | None):
    """Sum of a daily column over the window ending on each day: cumulative for period windows
    (the frame already starts at the period start), fixed-width for trailing windows."""

    def window(column: str) -> pl.Expr:
        if trailing is None:
            return pl.col(column).cum_sum()
        return pl.col(column).rolling_sum(trailing, min_samples=1)

    return window


def _trailing_sums(days: pl.DataFrame, column: str, trailing: int) -> pl.Series:
    """For each row of `days` (days in order per `id`), the sum of `column` over its day and the
    `trailing - 1` days before it in its series (days before the series' first count 0).

    Each sum is added up in one order fixed relative to its own day, so it depends on its
    window's values only. (`rolling_sum` adds the entering day and subtracts the leaving one,
    carrying rounding from every earlier day of the frame: a series read from another first day
    got other bits.) Sums of 1, 2, 4, ... days ending at each day are built by doubling; a
    window adds those of the binary digits of its length: about log2(trailing) passes."""
    frame = days.select(
        blocks=pl.col(column).cast(pl.Float64),  # sums of `width` days ending at each day
        total=pl.lit(0.0, pl.Float64),
        position=pl.int_range(pl.len()).over(pl.col("id").rle_id()),
    )

    def back(name: str, count: int) -> pl.Expr:
        """`name` of the day `count` days before (0 before the series' first day)."""
        return pl.when(pl.col("position") >= count).then(pl.col(name).shift(count)).otherwise(0.0)

    width, offset = 1, 0
    while width <= trailing:
        if trailing & width:
            frame = frame.with_columns(total=pl.col("total") + back("blocks", offset))
            offset += width
        if width * 2 <= trailing:
            frame = frame.with_columns(blocks=pl.col("blocks") + back("blocks", width))
        width *= 2
    return frame["total"]


def _calendar(first: date, last: date) -> pl.DataFrame:
    return (
        pl.DataFrame({"date": pl.date_range(first, last, "1d", eager=True)})
        if last >= first
        else pl.DataFrame(schema={"date": pl.Date})
    )


def _calendar_of(requests: list[SeriesRequest]) -> pl.DataFrame:
    """`id`, `date` for every day in [first, last] of each request."""
    return (
        pl.DataFrame(
            {
                "id": [r.id for r in requests],
                "first": [r.first for r in requests],
                "last": [r.last for r in requests],
            },
            schema={"id": pl.String, "first": pl.Date, "last": pl.Date},
        )
        .select("id", date=pl.date_ranges("first", "last"))
        .explode("date")
    )


def _column_expr(source: SourceSpec, column: str) -> str:
    """A column of the source, or a key of one of its JSON columns read as text (`dimensions.region`
    or, for CSV dimensions, `region`). Config text reaches the SQL only quoted: the key as a JSON
    pointer (RFC 6901: '~' and '/' escaped, so any key is exact) in a string literal."""
    if nested := source.json_key(column):
        json_column, key = nested
        pointer = "/" + key.replace("~", "~0").replace("/", "~1")
        return f"json_extract_string({quote_ident(json_column)}, {quote_literal(pointer)})"
    return quote_ident(column)


def _filter_condition(expr: str, values: list[Any]) -> tuple[str, list[Any]]:
    """Text values compare as text (booleans as 'true'/'false'); numbers compare as numbers, so
    `value: 20` selects a DOUBLE 20.0 (whose text is '20.0') and a JSON 20 alike."""
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    texts = [
        _filter_text(v) for v in values if not isinstance(v, int | float) or isinstance(v, bool)
    ]
    parts = []
    if texts:
        parts.append(f"CAST({expr} AS VARCHAR) IN ({', '.join('?' * len(texts))})")
    if numbers:
        parts.append(f"TRY_CAST({expr} AS DOUBLE) IN ({', '.join('?' * len(numbers))})")
    return "(" + (" OR ".join(parts) or "FALSE") + ")", [*texts, *numbers]


def _filter_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
