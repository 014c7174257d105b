"""What source metrics read from the staging tables (docs/computation.md), planned as few scans.

DuckDB reduces a source metric's rows to daily partials, one row per day (`PARTIALS_SCHEMA`), and
a distinct count's rows to the distinct (day, id) pairs it counts, since distinct counts do not
add up over days. The metrics sharing a source and a filter column are read in one scan, so a
config of thousands of metrics costs a handful of queries, not one per metric. Config text
reaches the SQL only quoted (`warehouse.sql`) or as a bind parameter.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from itertools import product
from typing import Any

import duckdb
import polars as pl

from connectors.registry import METRIC_SOURCES
from connectors.spec import SourceSpec, filter_text
from connectors.sql_engine.filters import metric_filter
from transforms.config import OkrConfig, SourceMetric
from warehouse.sql import quote_ident, quote_literal
from warehouse.writes import relation_names

PARTIALS_SCHEMA = {
    "pkey": pl.UInt32,
    "date": pl.Date,
    "matched_rows": pl.Float64,
    "value_sum": pl.Float64,
    "value_min": pl.Float64,
    "value_max": pl.Float64,
    "source_rows": pl.Float64,
}
"""Daily partials: per metric (`pkey`, see `Scanner.code`) and day, the rows the metric matches
(values for aggregations of a value column), their sum, min and max, and all the source's rows
(for the zero-versus-null rule)."""
NUMERIC_AGGREGATIONS = ("sum", "avg", "min", "max", "last")
MAX_KEYS_PER_METRIC = 256
"""A metric filtered on several columns joins a scan with one key per combination of its
values; past this many combinations it is scanned on its own."""
"""Aggregations of a value column; the others count rows (`count`) or ids (`count_distinct`)."""


@dataclass
class Scanner:
    """Reads the source metrics of one config from one warehouse connection, and keeps what it
    read: each metric is read once, however many KRs and periods need it."""

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
    _pairs: dict[str, str] = field(default_factory=dict)
    _first_days: dict[tuple, date | None] = field(default_factory=dict)
    _tables: frozenset[str] | None = None
    _column_types: dict[str, dict[str, str]] = field(default_factory=dict)

    def code(self, metric: SourceMetric) -> int:
        """The metric's `pkey` in daily partials: the same for metrics reading the same rows."""
        return self._codes.setdefault(partial_key(metric), len(self._codes))

    def require(self, needs: Iterable[tuple[SourceMetric, date]]) -> None:
        """Each metric's data is needed from its day on: a metric needing days before `since`
        forgets what was read of it and is read again in full."""
        if self.since is None:
            return
        for metric, day in needs:
            if day >= self.since:
                continue
            key = partial_key(metric)
            if key in self._unbounded:
                continue
            self._unbounded.add(key)
            self._partials.pop(key, None)
            self._sightings.pop(key, None)
            self._pairs.pop(key, None)
            for cached in [k for k in self._distincts if k[0] == key]:
                del self._distincts[cached]

    def prefetch(self, metrics: Iterable[SourceMetric]) -> None:
        """Read the daily partials of many metrics: one scan per source table and filter column
        for metrics filtered on one column by text (`metric_id: x`, `event: signup`), one per
        metric otherwise. A scan also reads every other metric of the config it can serve, so
        later marts of the same run find theirs read."""
        batches: dict[tuple, list[tuple[str, SourceMetric, list[str]]]] = defaultdict(list)
        pending: set[str] = set()

        def add(metric: SourceMetric, only_to_scans: bool = False) -> None:
            key = partial_key(metric)
            if key in self._partials or key in pending:
                return
            batch = self._batch_of(metric)
            scan = None if batch is None else (*batch[0], self._since(key))
            if only_to_scans and scan not in batches:
                return
            pending.add(key)
            if batch is None:
                self._partials[key] = self._single_partials(metric)
            else:
                batches[scan].append((key, metric, batch[1]))

        for metric in metrics:
            add(metric)
        if batches:  # a ratio's parts are metrics of the config too
            for metric in self.config.metrics.values():
                if isinstance(metric, SourceMetric):
                    add(metric, only_to_scans=True)
        for (*group, since), members in batches.items():
            self._read_batch(tuple(group), members, since)

    def daily(self, metric: SourceMetric) -> pl.DataFrame:
        """The metric's daily partials, by date."""
        key = partial_key(metric)
        if key not in self._partials:
            self.prefetch([metric])
        return self._partials[key].filter(pl.col("pkey") == self.code(metric))

    def partials_of(self, codes: pl.Series) -> pl.DataFrame:
        """The daily partials of the metrics of `codes` (read already) as one frame, metric
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

    def first_day(self, metric: SourceMetric) -> date | None:
        """First day on which the metric's source has any row."""
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

    def latest_days(self, metrics: list[SourceMetric], as_of: date) -> list[date | None]:
        """For each metric, the latest day on or before `as_of` with data (a row it matches; a
        value, for aggregations of one): from its daily partials when this scanner has read them
        (they carry each key's latest day before `since`), else from one max() per scan group
        and key, which costs the same whatever the history."""
        groups: dict[tuple, set[str]] = defaultdict(set)
        unbatched: dict[str, SourceMetric] = {}
        for metric in metrics:
            batch = self._batch_of(metric)
            if batch is None or partial_key(metric) in self._partials:
                unbatched[partial_key(metric)] = metric
            else:
                groups[batch[0]].update(batch[1])
        latest: dict[tuple, tuple[date | None, date | None]] = {}
        for group, wanted in groups.items():
            day, f = group[1], _fragments(group)
            rows = self.con.sql(
                f"""
                SELECT {f.key} AS key, max({day}) AS row_day,
                    max({day}) FILTER (WHERE {f.has_value}) AS value_day
                FROM {f.table}
                WHERE {f.key} IN (SELECT unnest(?::VARCHAR[]))
                    AND {day} <= ?{_and(f.scope)}
                GROUP BY ALL""",
                params=[sorted(wanted), as_of],
            ).fetchall()
            for key, row_day, value_day in rows:
                latest[(*group, key)] = (row_day, value_day)
        if unbatched:
            self.prefetch(unbatched.values())
            codes = {self.code(metric): key for key, metric in unbatched.items()}
            days = dict(
                self.partials_of(pl.Series(list(codes), dtype=pl.UInt32))
                .filter((pl.col("matched_rows") > 0) & (pl.col("date") <= as_of))
                .group_by("pkey")
                .agg(pl.col("date").max())
                .iter_rows()
            )
            for code, key in codes.items():
                latest[(key,)] = (days.get(code), days.get(code))

        def latest_of(metric: SourceMetric) -> date | None:
            if (partial_key(metric),) in latest:
                return latest[(partial_key(metric),)][0]
            batch = self._batch_of(metric)
            assert batch is not None
            days = [latest.get((*batch[0], text), (None, None)) for text in batch[1]]
            pick = 0 if metric.aggregation not in NUMERIC_AGGREGATIONS else 1
            return max((d[pick] for d in days if d[pick] is not None), default=None)

        return [latest_of(metric) for metric in metrics]

    # -- distinct counts over raw ids ---------------------------------------------------------

    def distinct_deltas(
        self, metric: SourceMetric, trailing: int | None, lo: date, last: date
    ) -> pl.DataFrame:
        """Per day (`date`, `delta`), the change in distinct ids counted from `lo`: first
        sightings (period windows) or coverage spans of `trailing` days opening and closing.

        Coverage spans are computed once over every sighting the scanner holds and cut to each
        request: the spans opened before `lo` count on `lo`. From `lo + trailing - 1` on (the
        days a trailing count reports) the ids counted on a day are those seen in its own
        window, which starts on or after `lo`, so the earlier sightings change nothing."""
        if trailing is not None:
            spans = self._coverage_deltas(metric, trailing)
            return pl.concat(
                [
                    spans.filter(pl.col("date") <= lo).select(
                        pl.lit(lo, pl.Date).alias("date"), pl.col("delta").sum()
                    ),
                    spans.filter(pl.col("date").is_between(lo, last, closed="right")),
                ]
            )
        key = (partial_key(metric), trailing, lo, last)
        if key not in self._distincts:
            # A user counts from the first day they appear in the window.
            self._distincts[key] = self._query(
                f"""
                SELECT first_day AS date, count(*)::DOUBLE AS delta FROM (
                    SELECT value, min(date) AS first_day FROM {self._sightings_table(metric)}
                    WHERE date BETWEEN ? AND ? GROUP BY value
                ) GROUP BY first_day""",
                [lo, last],
            )
        return self._distincts[key]

    def _coverage_deltas(self, metric: SourceMetric, trailing: int) -> pl.DataFrame:
        """Each sighting covers [day, day + N - 1]; overlapping spans of an id are merged, and
        each day gets +1 per span opening and -1 the day after one ends."""
        key = (partial_key(metric), trailing, None, None)
        if key not in self._distincts:
            self._distincts[key] = self._query(
                f"""
                WITH flagged AS (
                    SELECT value, date, CASE WHEN lag(date) OVER (PARTITION BY value ORDER BY date)
                        >= date - {trailing} THEN 0 ELSE 1 END AS starts_span
                    FROM {self._sightings_table(metric)}
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
                ) GROUP BY date ORDER BY date""",
                [],
            ).cast({"date": pl.Date, "delta": pl.Float64})
        return self._distincts[key]

    def window_distincts(self, metric: SourceMetric, windows: pl.DataFrame) -> pl.DataFrame:
        """Distinct ids per window (`_i`, `start`, `end`): `_i`, `distinct_n`, counted from the
        raw ids (never summed over days). An id counts in [lo, hi] once: on its first sighting
        in the window, the one whose previous sighting is before lo (or that has none). So a
        window's count is the number of sightings dated in [lo, hi] whose previous sighting is
        before lo, read from the sightings counted per (day, previous day): a table of at most
        days x days rows, built once per run, that every window of the metric reads."""
        sql = f"""
            SELECT w._i, sum(p.n)::DOUBLE AS distinct_n
            FROM _okr_windows AS w JOIN {self._sighting_pairs(metric)} AS p
                ON p.date BETWEEN w.lo AND w.hi AND (p.previous IS NULL OR p.previous < w.lo)
            GROUP BY w._i"""
        self.con.register("_okr_windows", windows.select("_i", lo="start", hi="end").to_arrow())
        try:
            return self._query(sql, []).with_columns(pl.col("_i").cast(pl.UInt32))
        finally:
            self.con.unregister("_okr_windows")

    def _sighting_pairs(self, metric: SourceMetric) -> str:
        """A temporary table of the metric's sightings counted per (date, previous date the same
        id was seen, null for its first)."""
        key = partial_key(metric)
        if key not in self._pairs:
            name = f"_okr_pairs_{uuid.uuid4().hex[:12]}"
            self.con.execute(
                f"""CREATE TEMP TABLE {name} AS
                SELECT date, previous, count(*) AS n FROM (
                    SELECT date, lag(date) OVER (PARTITION BY value ORDER BY date) AS previous
                    FROM {self._sightings_table(metric)}
                ) GROUP BY ALL"""
            )
            self._pairs[key] = name
        return self._pairs[key]

    def _sightings_table(self, metric: SourceMetric) -> str:
        """A temporary table of the distinct (date, id) pairs a distinct count reads, built once
        per scanner: every window, first-seen and coverage query of the metric reads it, not the
        raw rows."""
        key = partial_key(metric)
        if key not in self._sightings:
            name = f"_okr_sightings_{uuid.uuid4().hex[:12]}"
            source = METRIC_SOURCES[metric.source]
            if source.pushdown:  # the distinct (day, filter value, id) the engine computed
                column, texts = metric_filter(metric)
                rows = (
                    f"SELECT date, id AS value, TRUE AS matches FROM {source.pushdown} "
                    "WHERE filter_column = ? AND id_column = ? "
                    "AND filter_value IN (SELECT unnest(?::VARCHAR[]))"
                )
                params: list[Any] = [column, metric.column, texts or [""]]
                if not self._has_table(source.pushdown):
                    rows, params = "SELECT NULL::DATE AS date, NULL AS value, FALSE AS matches", []
            else:
                rows, params = self._rows_sql(metric, with_value=True)
            self.con.execute(
                f"CREATE TEMP TABLE {name} AS SELECT DISTINCT date, value FROM ({rows}) "
                f"WHERE matches AND value IS NOT NULL{_bound('date', self._since(key))}",
                params,
            )
            self._sightings[key] = name
        return self._sightings[key]

    # -- scans --------------------------------------------------------------------------------

    def _since(self, key: str) -> date | None:
        return None if key in self._unbounded else self.since

    def _batch_of(self, metric: SourceMetric) -> tuple[tuple, list[str]] | None:
        """(scan group, wanted keys) for a metric filtered by text values; every metric of a
        pushdown source (its partials are per filter column, '' for none). Metrics filtered on
        the same columns share a group: one scan groups the rows by those columns' texts (one
        key per combination of values), and each metric sums the keys its filter lists."""
        source = METRIC_SOURCES[metric.source]
        if source.pushdown:
            if not self._has_table(source.table):
                return None
            column, texts = metric_filter(metric)
            numeric = metric.aggregation in NUMERIC_AGGREGATIONS
            group = (metric.source, "date", metric.column if numeric else "", column)
            return group, texts or [""]
        if not metric.filter or not self._has_table(source.table):
            return None
        columns = sorted(metric.filter)
        texts = []
        for column in columns:
            wanted = metric.filter[column]
            values = wanted if isinstance(wanted, list) else [wanted]
            if not values or any(
                isinstance(v, int | float) and not isinstance(v, bool) for v in values
            ):
                return None  # numbers compare as numbers (see _filter_condition)
            texts.append(sorted({filter_text(v) for v in values}))
        if math.prod(map(len, texts)) > MAX_KEYS_PER_METRIC:
            return None
        numeric = metric.aggregation in NUMERIC_AGGREGATIONS
        value = self._value_expr(source, metric.column) if numeric else "NULL"
        exprs = [_column_expr(source, column) for column in columns]
        group = (metric.source, self._day_expr(metric), value, _key_expr(exprs))
        return group, sorted(_key_text(combination) for combination in product(*texts))

    def _read_batch(
        self, group: tuple, members: list[tuple[str, SourceMetric, list[str]]], since: date | None
    ) -> None:
        """One scan for the metrics of a group: rows per (day, key) are summed into each metric's
        partials inside DuckDB, on every day the source has rows."""
        day, f = group[1], _fragments(group)
        wanted = sorted({text for _, _, texts in members for text in texts})
        wanted_by = pl.DataFrame(
            [
                {
                    "pkey": self.code(metric),
                    "key": text,
                    "counts_rows": metric.aggregation not in NUMERIC_AGGREGATIONS,
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
                    SELECT {day} AS date, {f.key} AS key,
                        {f.rows} AS rows, {f.vals} AS vals, {f.sum} AS value_sum,
                        {f.min} AS value_min, {f.max} AS value_max
                    FROM {f.table}
                    WHERE {f.key} IN (SELECT unnest(?::VARCHAR[]))
                        {_and(f.scope)}{_bound(day, since)}
                    GROUP BY ALL
                ), per_metric AS (
                    SELECT w.pkey, m.date,
                        sum(CASE WHEN w.counts_rows THEN m.rows ELSE m.vals END)::DOUBLE AS matched_rows,
                        sum(m.value_sum ORDER BY m.key) AS value_sum, min(m.value_min) AS value_min, max(m.value_max) AS value_max
                    FROM matched AS m JOIN _okr_wanted AS w USING (key)
                    GROUP BY ALL
                ), days AS (
                    SELECT {day} AS date, ({f.rows})::DOUBLE AS source_rows FROM {f.table}
                    WHERE TRUE{_and(f.scope)}{_bound(day, since)}
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
        day, f = group[1], _fragments(group)
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
        key_text = f.key
        before = (
            f"FROM {f.table} WHERE {key_text} IN (SELECT unnest(?::VARCHAR[])) "
            f"AND {day} < DATE '{since.isoformat()}'{_and(f.scope)}"
        )
        return pl.concat(
            [
                empty,
                self._query(
                    f"""
            WITH last_days AS (
                SELECT {key_text} AS key, max({day}) AS row_day,
                    max({day}) FILTER (WHERE {f.has_value}) AS value_day
                {before} GROUP BY ALL
            )
            SELECT {day} AS date, {key_text} AS key,
                ({f.rows})::DOUBLE AS rows, ({f.vals})::DOUBLE AS vals,
                {f.sum} AS value_sum, {f.min} AS value_min, {f.max} AS value_max
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
        numeric = metric.aggregation in NUMERIC_AGGREGATIONS
        rows, params = self._rows_sql(metric, with_value=numeric)
        counted = "count(value)" if numeric else "count(*)"
        sql = f"""
            SELECT ?::UINTEGER AS pkey, date,
                {counted} FILTER (WHERE matches)::DOUBLE AS matched_rows,
                {_exact_sum("value", "matches") if numeric else "NULL::DOUBLE"} AS value_sum,
                {"min(value) FILTER (WHERE matches)" if numeric else "NULL"}::DOUBLE AS value_min,
                {"max(value) FILTER (WHERE matches)" if numeric else "NULL"}::DOUBLE AS value_max,
                count(*)::DOUBLE AS source_rows
            FROM ({rows}) GROUP BY date ORDER BY date"""
        return self._query(sql, [self.code(metric), *params]).cast(PARTIALS_SCHEMA)  # type: ignore[arg-type]

    def _rows_sql(self, metric: SourceMetric, with_value: bool) -> tuple[str, list[Any]]:
        """Source rows as (date, value, matches): `matches` is the metric's filter, kept as a flag
        so the same scan also counts the source's rows for the zero-versus-null rule."""
        source = METRIC_SOURCES[metric.source]
        if not self._has_table(source.table):  # a source never loaded has no data: null, not 0
            return "SELECT NULL::DATE AS date, NULL AS value, FALSE AS matches WHERE FALSE", []
        value = self._value_expr(source, metric.column) if with_value and metric.column else "NULL"
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
        if source.pushdown:  # the engine computed the local days
            return "date"
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

    def _value_expr(self, source: SourceSpec, column: str) -> str:
        """The measured column; on a source whose columns follow its files (report CSVs), a
        column no file has had yet is no data (null), not an error."""
        if source.open_columns and self._column_type(source.table, column) is None:
            return "CAST(NULL AS DOUBLE)"
        return _column_expr(source, column)

    def _has_table(self, table: str) -> bool:
        if self._tables is None:
            self._tables = relation_names(self.con)
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


@dataclass(frozen=True)
class _Fragments:
    """How a scan group's SQL reads its relation: rows of a staging table, or the per-day
    partials an engine computed (pushdown sources), which add up to the same aggregates."""

    table: str
    key: str
    rows: str
    vals: str
    sum: str
    min: str
    max: str
    has_value: str
    scope: str | None


def _fragments(group: tuple) -> _Fragments:
    source_name, _, value, key_expr = group
    source = METRIC_SOURCES[source_name]
    if source.pushdown:
        # One partials row per (day, filter value) of the group's filter and value column.
        return _Fragments(
            table=source.table,
            key="filter_value",
            rows="sum(rows)",
            vals="coalesce(sum(vals), 0)",
            sum="sum(value_sum ORDER BY value_sum)::DOUBLE",
            min="min(value_min)::DOUBLE",
            max="max(value_max)::DOUBLE",
            has_value="vals > 0",
            scope=f"filter_column = {quote_literal(key_expr)} "
            f"AND value_column = {quote_literal(value)}",
        )
    return _Fragments(
        table=source.table,
        key=f"CAST({key_expr} AS VARCHAR)",
        rows="count(*)",
        vals=f"count({value})",
        sum=_exact_sum(value),
        min=f"min({value})::DOUBLE",
        max=f"max({value})::DOUBLE",
        has_value=f"{value} IS NOT NULL",
        scope=source.row_filter,
    )


def _key_expr(exprs: list[str]) -> str:
    """The scan key of a row: the text of its one filter column, or for several columns each
    text prefixed by its length in bytes (an injective encoding: no value, whatever characters
    it holds, can pass for another combination; a null in any column makes the key null)."""
    if len(exprs) == 1:
        return exprs[0]
    parts = [f"CAST({expr} AS VARCHAR)" for expr in exprs]
    return " || ".join(f"strlen({part})::VARCHAR || ':' || {part}" for part in parts)


def _key_text(texts: tuple[str, ...]) -> str:
    """`_key_expr`'s key of a combination of filter texts."""
    if len(texts) == 1:
        return texts[0]
    return "".join(f"{len(text.encode('utf-8'))}:{text}" for text in texts)


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


def partial_key(metric: SourceMetric) -> str:
    """Metrics equal in these fields have the same daily partials (a ratio's parts included)."""
    return metric.model_dump_json(
        include={"source", "column", "filter", "time_column", "aggregation"}
    )


def _and(condition: str | None) -> str:
    """` AND <condition>`, or nothing when there is none (a source's `row_filter`)."""
    return f" AND {condition}" if condition else ""


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
        filter_text(v) for v in values if not isinstance(v, int | float) or isinstance(v, bool)
    ]
    parts = []
    if texts:
        parts.append(f"CAST({expr} AS VARCHAR) IN ({', '.join('?' * len(texts))})")
    if numbers:
        parts.append(f"TRY_CAST({expr} AS DOUBLE) IN ({', '.join('?' * len(numbers))})")
    return "(" + (" OR ".join(parts) or "FALSE") + ")", [*texts, *numbers]
