"""Pushdown of an SQL-engine source (docs/sources.md, "SQL-engine sources"): the per-day partials
the metrics reading `sql_events` need are computed by the engine, and only they land in DuckDB.

From the config, `plan` makes one partials query per filter column (rows, and count, sum, min,
max of each numeric column metrics read, per local day and filter value) and one sightings
query per filter column and distinct-counted column (the distinct (day, filter value, id)).
Every query is SQLAlchemy Core, compiled by the engine's dialect: config text reaches it only
as bound parameters or as identifiers SQLAlchemy quotes. `land_quarter` runs them for one fiscal
quarter and replaces that quarter's partitions of both DuckDB tables in one transaction, with
lineage (engine and table without the password, the SHA-256 of each compiled query, batch)."""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import duckdb
import polars as pl
import sqlalchemy as sa

from connectors.sql_engine.filters import metric_filter
from connectors.sql_engine.tables import (
    RAW_SQL_EVENTS_PARTIALS,
    RAW_SQL_EVENTS_SIGHTINGS,
    SQL_EVENTS,
)
from warehouse.writes import replace_partitions

NUMERIC_AGGREGATIONS = ("sum", "avg", "min", "max", "last")
# Any UTC offset is at most 14 hours, so the rows of local days [start, end] lie in this range.
_MARGIN = timedelta(days=2)
_FETCH_BATCH = 50_000


@dataclass(frozen=True)
class PartialsQuery:
    filter_column: str
    """'' when the metrics do not filter: one group per day."""
    wanted: tuple[str, ...]
    value_columns: tuple[str, ...]


@dataclass(frozen=True)
class SightingsQuery:
    filter_column: str
    wanted: tuple[str, ...]
    id_column: str


@dataclass(frozen=True)
class Plan:
    partials: tuple[PartialsQuery, ...]
    sightings: tuple[SightingsQuery, ...]


def plan(config: Any, source: str = SQL_EVENTS.name) -> Plan:
    """The queries the metrics of `config` reading `source` need (ratio parts included)."""
    wanted: dict[str, set[str]] = defaultdict(set)
    values: dict[str, set[str]] = defaultdict(set)
    distinct: dict[tuple[str, str], set[str]] = defaultdict(set)
    for metric in config.metrics.values():
        if getattr(metric, "source", None) != source:
            continue
        column, texts = metric_filter(metric)
        wanted[column].update(texts)
        if metric.aggregation in NUMERIC_AGGREGATIONS:
            values[column].add(metric.column)
        if metric.aggregation == "count_distinct":
            distinct[(column, metric.column)].update(texts)
    return Plan(
        tuple(
            PartialsQuery(column, tuple(sorted(texts)), tuple(sorted(values[column])))
            for column, texts in sorted(wanted.items())
        ),
        tuple(
            SightingsQuery(column, tuple(sorted(texts)), id_column)
            for (column, id_column), texts in sorted(distinct.items())
        ),
    )


# -- SQLAlchemy Core ----------------------------------------------------------------------------


def engine_table(name: str, plan_: Plan) -> sa.TableClause:
    """The engine's table (`schema.table` or `table`) with the columns the plan reads; no
    reflection, so nothing is asked of the engine before the queries themselves."""
    schema, _, table = name.rpartition(".")
    columns = {"timestamp": sa.DateTime(timezone=True)}
    for query in plan_.partials:
        for column in (query.filter_column, *query.value_columns):
            _add_column(columns, column, sa.Float() if column in query.value_columns else None)
    for query in plan_.sightings:
        _add_column(columns, query.filter_column)
        _add_column(columns, query.id_column)
    return sa.table(table, *(sa.column(n, t) for n, t in columns.items()), schema=schema or None)


def _add_column(columns: dict[str, Any], column: str, kind: Any = None) -> None:
    if not column:
        return
    if nested := SQL_EVENTS.json_key(column):
        columns.setdefault(nested[0], sa.JSON())
    else:
        columns.setdefault(column, kind or sa.String())


def _column(table: sa.TableClause, column: str) -> sa.ColumnElement:
    """A column, or a key of a JSON column read as text (`properties.plan`)."""
    if nested := SQL_EVENTS.json_key(column):
        return table.c[nested[0]][nested[1]].as_string()
    return table.c[column]


def _day(table: sa.TableClause, dialect: str, timezone: str) -> sa.ColumnElement:
    """The row's local day in `timezone`."""
    stamp = table.c["timestamp"]
    if dialect in ("postgresql", "duckdb"):
        return sa.cast(sa.func.timezone(sa.literal(timezone, sa.String), stamp), sa.Date)
    if timezone == "UTC":
        return sa.cast(stamp, sa.Date)
    raise NotImplementedError(
        f"local days in '{timezone}' are not implemented for the {dialect} dialect "
        "(PostgreSQL and DuckDB are; other engines need settings.timezone UTC)"
    )


def _key(table: sa.TableClause, column: str, wanted: tuple[str, ...]) -> sa.ColumnElement:
    """The filter value as text when a metric names it, else null (such rows still count as
    the source's rows of the day)."""
    if not column:
        return sa.literal("", sa.String)
    text = sa.cast(_column(table, column), sa.String)
    return sa.case((text.in_(list(wanted)), text), else_=sa.null())


def _window(table: sa.TableClause, start: date, end: date):
    low = datetime.combine(start - _MARGIN, time(), UTC)
    high = datetime.combine(end + _MARGIN, time(), UTC)
    stamp = table.c["timestamp"]
    return sa.and_(stamp >= low, stamp < high)


def partials_select(
    table: sa.TableClause, query: PartialsQuery, dialect: str, timezone: str, start: date, end: date
) -> sa.Select:
    inner = (
        sa.select(
            _day(table, dialect, timezone).label("day"),
            _key(table, query.filter_column, query.wanted).label("key"),
            *(
                _column(table, column).label(f"v{i}")
                for i, column in enumerate(query.value_columns)
            ),
        )
        .where(_window(table, start, end))
        .subquery("r")
    )
    aggregates = []
    for i in range(len(query.value_columns)):
        value = inner.c[f"v{i}"]
        aggregates += [
            sa.func.count(value).label(f"n{i}"),
            sa.func.sum(value).label(f"s{i}"),
            sa.func.min(value).label(f"lo{i}"),
            sa.func.max(value).label(f"hi{i}"),
        ]
    return (
        sa.select(inner.c.day, inner.c.key, sa.func.count().label("rows"), *aggregates)
        .where(inner.c.day.between(start, end))
        .group_by(inner.c.day, inner.c.key)
    )


def sightings_select(
    table: sa.TableClause,
    query: SightingsQuery,
    dialect: str,
    timezone: str,
    start: date,
    end: date,
) -> sa.Select:
    ident = _column(table, query.id_column)
    conditions = [_window(table, start, end), ident.is_not(None)]
    if query.filter_column:
        text = sa.cast(_column(table, query.filter_column), sa.String)
        conditions.append(text.in_(list(query.wanted)))
        key = text
    else:
        key = sa.literal("", sa.String)
    inner = (
        sa.select(
            _day(table, dialect, timezone).label("day"),
            key.label("key"),
            sa.cast(ident, sa.String).label("id"),
        )
        .where(*conditions)
        .subquery("r")
    )
    return (
        sa.select(inner.c.day, inner.c.key, inner.c.id)
        .where(inner.c.day.between(start, end))
        .distinct()
    )


def fingerprint(statement: sa.Select, engine: sa.Engine) -> str:
    """SHA-256 of the SQL the engine runs (bound values are placeholders in it)."""
    return hashlib.sha256(str(statement.compile(dialect=engine.dialect)).encode()).hexdigest()


def redacted(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


# -- one quarter ------------------------------------------------------------------------------


@dataclass
class QuarterReport:
    quarter_start: date
    source_rows: int = 0
    """The engine's rows of the quarter's local days (what landing them would copy)."""
    rows_fetched: int = 0
    """Result rows the engine sent: partials plus sightings."""
    partial_rows: int = 0
    sighting_rows: int = 0
    fingerprints: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return f"{self.rows_fetched:,} rows fetched for {self.source_rows:,} source rows"


def _fetch(connection: sa.Connection, statement: sa.Select) -> list[tuple]:
    result = connection.execution_options(stream_results=True).execute(statement)
    rows: list[tuple] = []
    while batch := result.fetchmany(_FETCH_BATCH):
        rows.extend(batch)
    return rows


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def land_quarter(
    con: duckdb.DuckDBPyConnection,
    engine: sa.Engine,
    table_name: str,
    config: Any,
    quarter_start: date,
    quarter_end: date,
) -> QuarterReport:
    """Compute the quarter's partials and sightings in the engine and replace the quarter's
    partitions of both DuckDB tables with them, in one transaction."""
    timezone = config.settings.timezone
    the_plan = plan(config)
    table = engine_table(table_name, the_plan)
    dialect = engine.dialect.name
    ref = f"{redacted(engine)}#{table_name}"
    batch = uuid.uuid4().hex
    loaded_at = datetime.now(UTC)
    report = QuarterReport(quarter_start)
    partials: list[pl.DataFrame] = []
    sightings: list[pl.DataFrame] = []
    with engine.connect() as connection:
        for query in the_plan.partials:
            statement = partials_select(table, query, dialect, timezone, quarter_start, quarter_end)
            digest = fingerprint(statement, engine)
            report.fingerprints.append(digest)
            rows = _fetch(connection, statement)
            report.partial_rows += len(rows)
            report.source_rows = max(report.source_rows, sum(row[2] for row in rows))
            partials += _partial_frames(rows, query, digest)
        for query in the_plan.sightings:
            statement = sightings_select(
                table, query, dialect, timezone, quarter_start, quarter_end
            )
            digest = fingerprint(statement, engine)
            report.fingerprints.append(digest)
            rows = _fetch(connection, statement)
            report.sighting_rows += len(rows)
            sightings.append(
                _columns(rows, ["date", "filter_value", "id"]).with_columns(
                    filter_column=pl.lit(query.filter_column),
                    id_column=pl.lit(query.id_column),
                    _query_fingerprint=pl.lit(digest),
                )
            )
        if not the_plan.partials:
            statement = (
                sa.select(sa.func.count())
                .select_from(table)
                .where(_day(table, dialect, timezone).between(quarter_start, quarter_end))
            )
            report.source_rows = connection.execute(statement).scalar_one()
    report.rows_fetched = report.partial_rows + report.sighting_rows
    lineage = {
        "quarter_start": quarter_start,
        "_source": "sql",
        "_source_ref": ref,
        "_batch_id": batch,
        "_loaded_at": loaded_at,
    }
    frames = {
        RAW_SQL_EVENTS_PARTIALS: _frame(RAW_SQL_EVENTS_PARTIALS, partials, lineage),
        RAW_SQL_EVENTS_SIGHTINGS: _frame(RAW_SQL_EVENTS_SIGHTINGS, sightings, lineage),
    }
    replace_partitions(con, frames, [quarter_start])
    return report


def _columns(rows: list[tuple], names: list[str], numbers: frozenset = frozenset()) -> pl.DataFrame:
    """Result rows as a frame, column by column; `numbers` (sums, min, max: Decimal for NUMERIC
    columns) become floats, one rounding each."""
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    return pl.DataFrame(
        {
            name: pl.Series(
                name,
                [_number(v) for v in column] if name in numbers else column,
                strict=False,
            )
            for name, column in zip(names, columns, strict=True)
        }
    )


def _partial_frames(rows: list[tuple], query: PartialsQuery, digest: str) -> list[pl.DataFrame]:
    """One partials row per result row for row counts (`value_column` ''), and one per numeric
    column with its count, sum, min and max."""
    names, numbers = ["date", "filter_value", "rows"], set()
    for i in range(len(query.value_columns)):
        names += [f"n{i}", f"s{i}", f"lo{i}", f"hi{i}"]
        numbers |= {f"s{i}", f"lo{i}", f"hi{i}"}
    result = _columns(rows, names, frozenset(numbers))
    common = {"filter_column": pl.lit(query.filter_column), "_query_fingerprint": pl.lit(digest)}
    frames = [result.select("date", "filter_value", "rows", value_column=pl.lit(""), **common)]
    for i, column in enumerate(query.value_columns):
        frames.append(
            result.select(
                "date",
                "filter_value",
                "rows",
                value_column=pl.lit(column),
                vals=pl.col(f"n{i}"),
                value_sum=pl.col(f"s{i}").cast(pl.Float64),
                value_min=pl.col(f"lo{i}").cast(pl.Float64),
                value_max=pl.col(f"hi{i}").cast(pl.Float64),
                **common,
            )
        )
    return frames


def _frame(table: Any, parts: list[pl.DataFrame], lineage: dict) -> pl.DataFrame:
    """The parts as one frame of exactly `table`'s columns and types, lineage added."""
    schema = table.polars_schema()
    frame = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()
    if frame.is_empty():
        return pl.DataFrame(schema=schema)
    frame = frame.with_columns(*(pl.lit(value).alias(name) for name, value in lineage.items()))
    return frame.select(
        [
            (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )
