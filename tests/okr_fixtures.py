"""Helpers for the OKR math tests: a config folder written from dicts, a real DuckDB warehouse
with the staging tables metrics read, and hand-made frames for the pure functions of
`transforms.okr`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import yaml

from transforms.config import OkrConfig, Settings, load_config
from transforms.measure import MetricReader
from transforms.okr import KR_PARAMETERS_SCHEMA, key_result_daily


def day(month: int, dom: int, year: int = 2025) -> date:
    return date(year, month, dom)


def jan(dom: int) -> date:
    return date(2025, 1, dom)


JAN_1, JAN_10 = date(2025, 1, 1), date(2025, 1, 10)


def days(first: date, count: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(count)]


# -- config ---------------------------------------------------------------------------------------


def csv_metric(metric_id: str, aggregation: str = "sum", **fields: Any) -> dict[str, Any]:
    """A metric over `staging.csv_observations`, selecting its own rows by `metric_id`."""
    entry: dict[str, Any] = {
        "id": metric_id,
        "name": metric_id,
        "source": "csv_observations",
        "aggregation": aggregation,
        "filter": {"metric_id": metric_id},
    }
    if aggregation not in ("count", "ratio"):
        entry["column"] = "value"
    entry.update(fields)
    return entry


def event_metric(metric_id: str, aggregation: str = "count", **fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": metric_id,
        "name": metric_id,
        "source": "analytics_events",
        "aggregation": aggregation,
    }
    entry.update(fields)
    return entry


def ratio_metric(metric_id: str, numerator: str, denominator: str, **fields: Any) -> dict:
    entry = {
        "id": metric_id,
        "name": metric_id,
        "aggregation": "ratio",
        "numerator": numerator,
        "denominator": denominator,
    }
    entry.update(fields)
    return entry


def objective(
    objective_id: str,
    key_results: list[dict[str, Any]] | None = None,
    *,
    period: Any = "2025-Q1",
    team: str = "product",
    **fields: Any,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": objective_id,
        "title": objective_id,
        "team": team,
        "owner": "ana",
        "period": _yaml_period(period),
        "key_results": key_results or [],
    }
    entry.update(fields)
    return entry


def key_result(kr_id: str, metric: str, kr_type: str = "increase", **fields: Any) -> dict:
    entry = {"id": kr_id, "title": kr_id, "metric": metric, "type": kr_type}
    if "period" in fields:
        fields["period"] = _yaml_period(fields["period"])
    entry.update(fields)
    return entry


def _yaml_period(period: Any) -> Any:
    if isinstance(period, tuple):
        return {"start": period[0].isoformat(), "end": period[1].isoformat()}
    return period


def write_config(
    folder: Path,
    metrics: list[dict[str, Any]],
    objectives: list[dict[str, Any]] | None = None,
    settings: dict[str, Any] | None = None,
) -> OkrConfig:
    """Write `metrics.yaml` and `okrs.yaml` into `folder` and load them."""
    folder.mkdir(parents=True, exist_ok=True)
    metrics_doc: dict[str, Any] = {"metrics": metrics}
    if settings:
        metrics_doc["settings"] = settings
    (folder / "metrics.yaml").write_text(yaml.safe_dump(metrics_doc, sort_keys=False))
    (folder / "okrs.yaml").write_text(
        yaml.safe_dump({"objectives": objectives or []}, sort_keys=False)
    )
    return load_config(folder)


# -- warehouse ------------------------------------------------------------------------------------

STAGING_DDL = """
CREATE SCHEMA IF NOT EXISTS staging;
CREATE TABLE staging.csv_observations (
    date DATE, metric_id VARCHAR, value DOUBLE, dimensions JSON);
CREATE TABLE staging.analytics_events (
    event VARCHAR, "timestamp" TIMESTAMPTZ, user_id VARCHAR, anonymous_id VARCHAR,
    properties JSON);
"""

Observation = tuple  # (date, metric_id, value[, dimensions dict])
Event = tuple  # (event, ISO timestamp with offset, user_id[, anonymous_id[, properties dict]])


def warehouse(
    path: Path,
    observations: Iterable[Observation] = (),
    events: Iterable[Event] = (),
) -> duckdb.DuckDBPyConnection:
    """A DuckDB file at `path` with both staging tables (possibly empty) and the given rows."""
    con = duckdb.connect(str(path))
    con.execute(STAGING_DDL)
    add_observations(con, observations)
    add_events(con, events)
    return con


def add_observations(con: duckdb.DuckDBPyConnection, rows: Iterable[Observation]) -> None:
    for row in rows:
        when, metric_id, value, *rest = row
        dims = json.dumps(rest[0]) if rest and rest[0] is not None else None
        con.execute(
            "INSERT INTO staging.csv_observations VALUES (?, ?, ?, ?)",
            [when, metric_id, value, dims],
        )


def add_events(con: duckdb.DuckDBPyConnection, rows: Iterable[Event]) -> None:
    for row in rows:
        name, timestamp, user_id, *rest = row
        anonymous_id = rest[0] if rest else None
        properties = json.dumps(rest[1]) if len(rest) > 1 and rest[1] is not None else None
        con.execute(
            "INSERT INTO staging.analytics_events VALUES (?, CAST(? AS TIMESTAMPTZ), ?, ?, ?)",
            [name, timestamp, user_id, anonymous_id, properties],
        )


def measured(
    reader: MetricReader,
    metric_id: str,
    first: date,
    last: date,
    period_start: date | None = None,
) -> list[float | None]:
    """a(d) for every d in [first, last], as a plain list."""
    frame = reader.series(reader.config.metrics[metric_id], first, last, period_start)
    assert frame["date"].to_list() == days(first, (last - first).days + 1)
    return frame["value"].to_list()


# -- frames for the pure math ---------------------------------------------------------------------


def kr_params(
    kr_id: str = "kr",
    kr_type: str = "increase",
    *,
    start: date = JAN_1,
    end: date = JAN_10,
    baseline: float | None = None,
    target: float | None = None,
    range_: tuple[float, float] | None = None,
    weight: float = 1.0,
    level: float = 1.0,
    cumulative: bool = False,
    higher_is_better: bool = True,
    freshness_days: int | None = None,
    objective_id: str = "obj",
) -> dict[str, Any]:
    return {
        "kr_id": kr_id,
        "kr_title": kr_id,
        "objective_id": objective_id,
        "metric_id": "m",
        "team": "product",
        "owner": "ana",
        "kr_type": kr_type,
        "period_start": start,
        "period_end": end,
        "baseline": baseline,
        "target": target,
        "range_low": range_[0] if range_ else None,
        "range_high": range_[1] if range_ else None,
        "weight": weight,
        "success_level": level,
        "cumulative": cumulative,
        "higher_is_better": higher_is_better,
        "freshness_days": freshness_days,
    }


def params_frame(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=KR_PARAMETERS_SCHEMA)


def series_frame(
    kr_id: str,
    start: date,
    values: list[float | None],
    latest: list[date | None] | None = None,
) -> pl.DataFrame:
    """Measured values from `start`, one a day; `latest_date` defaults to the latest day so far
    with a value."""
    dates = days(start, len(values))
    if latest is None:
        latest, seen = [], None
        for when, value in zip(dates, values, strict=True):
            seen = when if value is not None else seen
            latest.append(seen)
    return pl.DataFrame(
        {"kr_id": [kr_id] * len(values), "date": dates, "value": values, "latest_date": latest},
        schema={"kr_id": pl.String, "date": pl.Date, "value": pl.Float64, "latest_date": pl.Date},
    )


def daily_rows(
    params: dict[str, Any],
    values: list[float | None],
    latest: list[date | None] | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """`key_result_daily` for one KR whose values start on its start date."""
    frame = key_result_daily(
        params_frame(params),
        series_frame(params["kr_id"], params["period_start"], values, latest),
        settings or Settings(),
    )
    return frame.sort("date").to_dicts()


# -- raw layer ------------------------------------------------------------------------------------


def rejects(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """raw.rejected_rows as (location, field, reason, raw_record), in file and line order."""
    return con.execute(
        "SELECT location, field, reason, raw_record FROM raw.rejected_rows "
        "ORDER BY source_ref, split_part(location, ':', 2)::INT, field"
    ).fetchall()


def raw_snapshot(con: duckdb.DuckDBPyConnection, *tables: str) -> dict[str, list[tuple]]:
    """Every row of the given raw tables, to compare a warehouse before and after a load."""
    return {
        table: con.execute(f"SELECT * FROM raw.{table} ORDER BY ALL").fetchall()
        for table in tables
    }


def quarantined(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """The quarantined files of raw.rejected_rows (location = the file itself) as (source,
    source_ref, field, reason, raw_record, batch_id), by file."""
    return con.execute(
        "SELECT source, source_ref, field, reason, raw_record, batch_id FROM raw.rejected_rows "
        "WHERE location = source_ref ORDER BY source, source_ref"
    ).fetchall()
