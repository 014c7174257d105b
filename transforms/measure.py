"""Measured values a(d) of metrics (CONTRACT section 3), read from the staging tables.

DuckDB reduces source rows to one row per day (and, for distinct counts, to first-seen days or
coverage spans of raw ids, since distinct counts do not add up over days); Polars turns those
daily partials into windowed values with prefix sums, so one pass serves every day of a window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import duckdb
import polars as pl

from transforms.config import Metric, OkrConfig
from transforms.sources import SOURCES

SERIES_SCHEMA = {"date": pl.Date, "value": pl.Float64, "latest_date": pl.Date}


@dataclass
class MetricReader:
    """Measures the metrics of one config against one warehouse connection.

    Daily partials are read once per metric and reused by every KR and period that needs them.
    """

    con: duckdb.DuckDBPyConnection
    config: OkrConfig
    _partials: dict[str, pl.DataFrame] = field(default_factory=dict)
    _tables: set[str] | None = None

    # -- public API ---------------------------------------------------------------------------

    def series(
        self, metric: Metric, first: date, last: date, period_start: date | None = None
    ) -> pl.DataFrame:
        """a(d) for every d in [first, last]: `date`, `value`, `latest_date` (latest day <= d with
        data, for staleness). Period windows accumulate from `period_start` (default `first`)."""
        period_start = period_start or first
        if metric.aggregation == "ratio":
            return self._ratio_series(metric, first, last, period_start)
        days = _calendar(first, last)
        if metric.aggregation == "count_distinct":
            values = self._distinct_series(metric, first, last, period_start)
        else:
            values = self._partial_series(metric, first, last, period_start)
        return (
            days.join(values, on="date", how="left")
            .join(self._latest_dates(metric, first, last), on="date", how="left")
            .select(list(SERIES_SCHEMA))
        )

    def value_over(self, metric: Metric, start: date, end: date) -> float | None:
        """The metric aggregated over [start, end] (baselines, success-metric periods);
        trailing and `last` metrics take their value as of `end`."""
        if metric.aggregation == "ratio":
            numerator = self.value_over(self._as_part(metric, metric.numerator), start, end)
            denominator = self.value_over(self._as_part(metric, metric.denominator), start, end)
            return _divide(numerator, denominator)
        if metric.window != "period" or metric.aggregation == "last":
            return self.series(metric, end, end)["value"][0]
        return self.series(metric, end, end, period_start=start)["value"][0]

    def values_over(self, metric: Metric, windows: pl.DataFrame) -> pl.DataFrame:
        """`value_over` for many windows at once (success-metric periods, single days).

        `windows` has `start` and `end` (dates); the result has one row per distinct window:
        `start`, `end`, `value`. Period metrics aggregate each window's own days from the daily
        partials (summed per window, not differenced from running totals, so large sums keep
        every digit); distinct counts are counted per window from raw ids; ratios divide the
        windows' sums. Trailing and `last` metrics take their value as of `end`.
        """
        windows = windows.select(pl.col("start").cast(pl.Date), pl.col("end").cast(pl.Date))
        windows = windows.unique().sort("start", "end")
        if metric.aggregation == "ratio":
            numerator = self.values_over(self._as_part(metric, metric.numerator), windows)
            denominator = self.values_over(self._as_part(metric, metric.denominator), windows)
            return (
                windows.join(numerator, on=["start", "end"], how="left")
                .join(denominator, on=["start", "end"], how="left", suffix="_den")
                .select(
                    "start",
                    "end",
                    value=pl.when(pl.col("value_den") != 0).then(
                        pl.col("value") / pl.col("value_den")
                    ),
                )
            )
        if windows.height == 0:
            return windows.with_columns(value=pl.lit(None, pl.Float64))
        if metric.window != "period" or metric.aggregation == "last":
            values = self.series(metric, windows["end"].min(), windows["end"].max())
            return windows.join(
                values.select(pl.col("date").alias("end"), "value"), on="end", how="left"
            )
        return self._window_values(metric, windows)

    def latest_dates(self, metric: Metric, first: date, last: date) -> pl.DataFrame:
        """For every d in [first, last]: `date`, `latest_date` (latest day <= d with data); a
        ratio is only as fresh as the older of its two parts, as in `series`."""
        if metric.aggregation != "ratio":
            return self._latest_dates(metric, first, last)
        numerator = self.latest_dates(self._as_part(metric, metric.numerator), first, last)
        denominator = self.latest_dates(self._as_part(metric, metric.denominator), first, last)
        return numerator.join(denominator, on="date", suffix="_den").select(
            "date", latest_date=pl.min_horizontal("latest_date", "latest_date_den")
        )

    def earliest_date(self, metric: Metric) -> date | None:
        """First day on which the metric's source has any row: every value before it is null
        (the metric has no data, and its source none to make a zero of)."""
        if metric.aggregation == "ratio":
            parts = [
                self.earliest_date(self._as_part(metric, metric.numerator)),
                self.earliest_date(self._as_part(metric, metric.denominator)),
            ]
            return min((d for d in parts if d is not None), default=None)
        partials = self._daily_partials(metric)
        return partials.filter(pl.col("source_n") > 0)["date"].min()

    def _window_values(self, metric: Metric, windows: pl.DataFrame) -> pl.DataFrame:
        """Period metrics over each window's own days, from the daily partials."""
        partials = self._daily_partials(metric)
        totals = (
            windows.join_where(
                partials, pl.col("date") >= pl.col("start"), pl.col("date") <= pl.col("end")
            )
            .group_by("start", "end")
            .agg(pl.col("n", "s", "source_n").sum(), pl.col("mn").min(), pl.col("mx").max())
        )
        frame = windows.join(totals, on=["start", "end"], how="left").with_columns(
            pl.col("n", "source_n").fill_null(0)
        )
        n, source_n = pl.col("n"), pl.col("source_n")
        aggregation = metric.aggregation
        if aggregation == "count_distinct":
            frame = frame.join(
                self._window_distincts(metric, windows), on=["start", "end"], how="left"
            )
            value = pl.when(n > 0).then(pl.col("distinct_n").fill_null(0.0))
        elif aggregation in ("min", "max"):
            value = pl.when(n > 0).then(pl.col("mn" if aggregation == "min" else "mx"))
        elif aggregation == "avg":
            value = pl.when(n > 0).then(pl.col("s") / n)
        else:  # sum, count
            value = pl.when(n > 0).then(n if aggregation == "count" else pl.col("s"))
        if aggregation in ("sum", "count", "count_distinct"):
            # zero when the source has rows in the window but none match, null when it has none
            value = value.when(source_n > 0).then(0.0)
        return frame.select("start", "end", value=value.cast(pl.Float64))

    def _window_distincts(self, metric: Metric, windows: pl.DataFrame) -> pl.DataFrame:
        """Distinct ids per window, counted from the raw rows (never summed over days)."""
        rows, params = self._rows_sql(metric, with_value=True)
        sql = f"""
            SELECT w.lo AS start, w.hi AS "end", count(DISTINCT r.value)::DOUBLE AS distinct_n
            FROM ({rows}) AS r
            JOIN (SELECT unnest(?::DATE[]) AS lo, unnest(?::DATE[]) AS hi) AS w
                ON r.date BETWEEN w.lo AND w.hi
            WHERE r.matches AND r.value IS NOT NULL
            GROUP BY w.lo, w.hi"""
        return self._query(
            sql, [*params, windows["start"].to_list(), windows["end"].to_list()]
        ).with_columns(pl.col("start", "end").cast(pl.Date))

    # -- windows over daily partials ----------------------------------------------------------

    def _partial_series(
        self, metric: Metric, first: date, last: date, period_start: date
    ) -> pl.DataFrame:
        partials = self._daily_partials(metric)
        days = self._history_calendar(partials, first, last, metric, period_start)
        frame = days.join(partials, on="date", how="left").with_columns(
            pl.col("n", "s", "source_n").fill_null(0)
        )
        if metric.aggregation == "last":
            daily_mean = pl.when(pl.col("n") > 0).then(pl.col("s") / pl.col("n"))
            return frame.select("date", value=daily_mean.forward_fill()).filter(
                pl.col("date") >= first
            )
        trailing = metric.trailing_days
        if trailing is None:
            frame = frame.filter(pl.col("date") >= period_start)
        window = _window_sums(trailing)
        n, s, source_n = window("n"), window("s"), window("source_n")
        if metric.aggregation in ("min", "max"):
            extreme = pl.col("mn" if metric.aggregation == "min" else "mx")
            if trailing is None:
                extreme = extreme.cum_min() if metric.aggregation == "min" else extreme.cum_max()
                extreme = extreme.forward_fill()
            else:
                roll = extreme.rolling_min if metric.aggregation == "min" else extreme.rolling_max
                extreme = roll(trailing, min_samples=1)
            value = pl.when(n > 0).then(extreme)
        elif metric.aggregation == "avg":
            value = pl.when(n > 0).then(s / n)
        else:  # sum, count: zero when the source has rows but none match, null when it has none
            total = n if metric.aggregation == "count" else s
            value = pl.when(n > 0).then(total).when(source_n > 0).then(0.0)
        return frame.select("date", value=value.cast(pl.Float64)).filter(pl.col("date") >= first)

    def _history_calendar(
        self, partials: pl.DataFrame, first: date, last: date, metric: Metric, period_start: date
    ) -> pl.DataFrame:
        start = first - timedelta(days=(metric.trailing_days or 1) - 1)
        if metric.trailing_days is None:
            start = min(start, period_start)
        if metric.aggregation == "last" and partials.height:
            start = min(start, partials["date"].min())
        return _calendar(start, last)

    # -- distinct counts over raw ids ---------------------------------------------------------

    def _distinct_series(
        self, metric: Metric, first: date, last: date, period_start: date
    ) -> pl.DataFrame:
        partials = self._daily_partials(metric)
        trailing = metric.trailing_days
        lo = first - timedelta(days=trailing - 1) if trailing else period_start
        rows, params = self._rows_sql(metric, with_value=True)
        if trailing is None:
            # A user counts from the first day they appear in the window.
            sql = f"""
                SELECT first_day AS date, count(*)::DOUBLE AS delta FROM (
                    SELECT value, min(date) AS first_day FROM ({rows})
                    WHERE matches AND date BETWEEN ? AND ? AND value IS NOT NULL GROUP BY value
                ) GROUP BY first_day"""
        else:
            # Each sighting covers [day, day + N - 1]; merge overlapping spans per id, then count
            # the spans open on each day: +1 where a span starts, -1 the day after it ends.
            sql = f"""
                WITH sightings AS (
                    SELECT DISTINCT value, date FROM ({rows})
                    WHERE matches AND date BETWEEN ? AND ? AND value IS NOT NULL
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
        deltas = self._query(sql, [*params, lo, last])
        window = _window_sums(trailing)
        return (
            _calendar(lo, last)
            .join(partials, on="date", how="left")
            .join(deltas, on="date", how="left")
            .with_columns(pl.col("n", "source_n", "delta").fill_null(0))
            .select(
                "date",
                value=pl.when(window("n") > 0)
                .then(pl.col("delta").cum_sum())
                .when(window("source_n") > 0)
                .then(0.0),
            )
            .filter(pl.col("date") >= first)
        )

    # -- ratios -------------------------------------------------------------------------------

    def _ratio_series(
        self, metric: Metric, first: date, last: date, period_start: date
    ) -> pl.DataFrame:
        numerator = self.series(self._as_part(metric, metric.numerator), first, last, period_start)
        denominator = self.series(
            self._as_part(metric, metric.denominator), first, last, period_start
        )
        joined = numerator.join(denominator, on="date", suffix="_den")
        return joined.select(
            "date",
            value=pl.when(pl.col("value_den") != 0).then(pl.col("value") / pl.col("value_den")),
            # The ratio is only as fresh as the older of its two parts.
            latest_date=pl.min_horizontal("latest_date", "latest_date_den"),
        )

    def _as_part(self, ratio: Metric, metric_id: str) -> Metric:
        """A ratio's numerator or denominator measured over the ratio's own window."""
        return self.config.metrics[metric_id].model_copy(update={"window": ratio.window})

    # -- reading the warehouse ----------------------------------------------------------------

    def _latest_dates(self, metric: Metric, first: date, last: date) -> pl.DataFrame:
        partials = self._daily_partials(metric)
        data_days = partials.filter(pl.col("n") > 0).select("date", latest_date=pl.col("date"))
        start = min(first, data_days["date"].min() or first)
        return (
            _calendar(start, last)
            .join(data_days, on="date", how="left")
            .with_columns(pl.col("latest_date").forward_fill())
            .filter(pl.col("date") >= first)
        )

    def _daily_partials(self, metric: Metric) -> pl.DataFrame:
        """Per day: matching rows `n`, their sum `s`, `mn`, `mx`, and all source rows `source_n`."""
        key = metric.model_dump_json(
            include={"source", "column", "filter", "time_column", "aggregation"}
        )
        if key not in self._partials:
            rows, params = self._rows_sql(metric, with_value=metric.aggregation != "count")
            counted = (
                "count(*)" if metric.aggregation in ("count", "count_distinct") else "count(value)"
            )
            numeric = metric.aggregation not in ("count", "count_distinct")
            sql = f"""
                SELECT date,
                    {counted} FILTER (WHERE matches)::DOUBLE AS n,
                    {"sum(value) FILTER (WHERE matches)" if numeric else "NULL"}::DOUBLE AS s,
                    {"min(value) FILTER (WHERE matches)" if numeric else "NULL"}::DOUBLE AS mn,
                    {"max(value) FILTER (WHERE matches)" if numeric else "NULL"}::DOUBLE AS mx,
                    count(*)::DOUBLE AS source_n
                FROM ({rows}) GROUP BY date"""
            self._partials[key] = self._query(sql, params)
        return self._partials[key]

    def _rows_sql(self, metric: Metric, with_value: bool) -> tuple[str, list[Any]]:
        """Source rows as (date, value, matches): `matches` is the metric's filter, kept as a flag
        so the same scan also counts the source's rows for the zero-versus-null rule."""
        source = SOURCES[metric.source]
        if not self._has_table(source.table):  # a source never loaded has no data: null, not 0
            return "SELECT NULL::DATE AS date, NULL AS value, FALSE AS matches WHERE FALSE", []
        time_column = metric.time_column_or_default
        if self._column_type(source.table, time_column) == "TIMESTAMP WITH TIME ZONE":
            tz = self.config.settings.timezone.replace("'", "")
            day = f"CAST(timezone('{tz}', {_ident(time_column)}) AS DATE)"
        else:
            day = f"CAST({_ident(time_column)} AS DATE)"
        value = _column_expr(metric.column) if with_value and metric.column else "NULL"
        conditions, params = ["TRUE"], []
        for column, wanted in metric.filter.items():
            condition, values = _filter_condition(
                _column_expr(column), wanted if isinstance(wanted, list) else [wanted]
            )
            conditions.append(condition)
            params += values
        archived = " WHERE NOT coalesce(archived, FALSE)" if "archived" in source.columns else ""
        sql = (
            f"SELECT {day} AS date, {value} AS value, ({' AND '.join(conditions)}) AS matches "
            f"FROM {source.table}{archived}"
        )
        return sql, params

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

    def _column_type(self, table: str, column: str) -> str:
        schema, name = table.split(".")
        rows = self.con.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? AND column_name = ?",
            [schema, name, column],
        ).fetchall()
        return rows[0][0] if rows else "DATE"


def _window_sums(trailing: int | None):
    """Sum of a daily column over the window ending on each day: cumulative for period windows
    (the frame already starts at the period start), fixed-width for trailing windows."""

    def window(column: str) -> pl.Expr:
        if trailing is None:
            return pl.col(column).cum_sum()
        return pl.col(column).rolling_sum(trailing, min_samples=1)

    return window


def _calendar(first: date, last: date) -> pl.DataFrame:
    return (
        pl.DataFrame({"date": pl.date_range(first, last, "1d", eager=True)})
        if last >= first
        else pl.DataFrame(schema={"date": pl.Date})
    )


def _divide(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column_expr(column: str) -> str:
    """`dimensions.region` reads a key of a JSON column; anything else is a plain column."""
    head, _, key = column.partition(".")
    if key:
        return f"json_extract_string({_ident(head)}, '$.\"{key.replace(chr(34), '')}\"')"
    return _ident(column)


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
