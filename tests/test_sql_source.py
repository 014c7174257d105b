"""The SQL-engine source (`sql_events`): a real PostgreSQL server (tests/pg_server.py), the
per-day partials computed there with SQLAlchemy Core, landed in a real DuckDB file, and the
marts equal to those of the same rows landed as an analytics export."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
import sqlalchemy as sa
from okr_fixtures import key_result, objective, warehouse, write_config
from sqlalchemy.pool import NullPool

from benchmarks.sql_source import INSERT, event_metrics, stage_copied_events
from connectors.analytics.extract import load_analytics_exports
from connectors.analytics.staging import stage_analytics_events
from connectors.sql_engine.pushdown import land_quarter, plan
from connectors.sql_engine.tables import RAW_SQL_EVENTS_PARTIALS, RAW_SQL_EVENTS_SIGHTINGS
from pipelines.cli import backfill
from pipelines.settings import Settings
from transforms.calendar import quarter_from_label
from transforms.config import ConfigError
from transforms.marts import okr_mart_frames
from transforms.measure import MetricReader

sys.path.insert(0, str(Path(__file__).parent))
from pg_server import postgres_server  # noqa: E402

TIMEZONE = "Europe/Berlin"
LANDED = [quarter_from_label(q) for q in ("2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3")]
REPORTED = [quarter_from_label(q) for q in ("2026-Q1", "2026-Q2")]
TODAY = date(2026, 7, 15)
SPAN_SECONDS = 184 * 86_400  # 2025-12-30 .. 2026-07-01 UTC: both edges cross a quarter locally

CREATE = """
CREATE TABLE IF NOT EXISTS {table} (
    event text NOT NULL, "timestamp" timestamptz NOT NULL, user_id text, anonymous_id text,
    properties jsonb NOT NULL DEFAULT '{{}}', amount numeric(12, 2))
"""


def okrs(extra_metric: str | None = None) -> list[dict]:
    krs = [
        key_result("kr-signups", "signups", target=60_000),
        key_result("kr-events", "events", target=5_000_000),
        key_result("kr-pro", "pro_events", target=3_000_000),
        key_result("kr-login-users", "login_users", target=250),
        key_result("kr-weekly", "weekly_users", target=250),
        key_result("kr-conversion", "conversion", target=0.2),
    ]
    objectives = [
        objective(
            f"grow-{q.label.lower()}",
            [{**kr, "id": f"{kr['id']}-{q.label.lower()}"} for kr in krs],
            period=q.label,
        )  # fmt: skip
        for q in REPORTED
    ]
    if extra_metric:  # its own objective and team, so the shared ones compare
        objectives += [
            objective(
                f"revenue-{q.label.lower()}",
                [key_result(f"kr-revenue-{q.label.lower()}", extra_metric, target=1e9)],
                period=q.label,
                team="finance",
            )  # fmt: skip
            for q in REPORTED
        ]
    return objectives


def configs(tmp_path: Path, with_revenue: bool = False):
    settings = {"timezone": TIMEZONE}
    sql_metrics = event_metrics("sql_events")
    if with_revenue:
        sql_metrics.append({"id": "revenue", "name": "revenue", "source": "sql_events",
                            "aggregation": "sum", "column": "amount"})  # fmt: skip
    sql = write_config(tmp_path / "sql_config", sql_metrics,
                       okrs("revenue" if with_revenue else None), settings)  # fmt: skip
    analytics = write_config(
        tmp_path / "analytics_config", event_metrics("analytics_events"), okrs(), settings
    )
    return sql, analytics


@pytest.fixture(scope="module")
def pg():
    with postgres_server("events") as server:
        yield server


def fill(pg, table: str, rows: int, users: int) -> None:
    connection = pg.connect()
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(CREATE.format(table=table))
            cursor.execute(INSERT.format(table=table, span=SPAN_SECONDS, n=rows, users=users))
            cursor.execute(f"ANALYZE {table}")
    finally:
        connection.close()


def copy_out(pg, sql: str, path: Path) -> None:
    connection = pg.connect()
    try:
        with connection, connection.cursor() as cursor, path.open("w") as out:
            cursor.execute("SET TIME ZONE 'UTC'")
            cursor.copy_expert(sql, out)
    finally:
        connection.close()


def land_sql(pg, table: str, config, path: Path):
    engine = sa.create_engine(pg.url, poolclass=NullPool)
    con = duckdb.connect(str(path))
    reports = [land_quarter(con, engine, table, config, q.start, q.end) for q in LANDED]
    return con, reports


def comparable(frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return {name: frame for name, frame in frames.items() if name != "okr_scorecard"}


EXTRA = {
    "kr_id": "kr-revenue",
    "objective_id": "revenue",
    "team": "finance",
    "metric_id": "revenue",
}


def assert_same_marts(sql_con, sql_config, other_con, other_config) -> dict:
    ours = okr_mart_frames(sql_con, sql_config, REPORTED, TODAY)
    theirs = okr_mart_frames(other_con, other_config, REPORTED, TODAY)
    for name, frame in comparable(theirs).items():
        mine = ours[name]
        for column, value in EXTRA.items():  # what only the SQL config has
            if column in mine.columns:
                mine = mine.filter(~pl.col(column).str.starts_with(value))
        if not mine.equals(frame):  # bit-identical, null for null
            differ = pl.concat([mine.join(frame, on=mine.columns, how="anti", nulls_equal=True)
                                .with_columns(side=pl.lit("sql")),
                                frame.join(mine, on=mine.columns, how="anti", nulls_equal=True)
                                .with_columns(side=pl.lit("rows"))])  # fmt: skip
            pytest.fail(f"{name} differs ({mine.height} vs {frame.height} rows):\n{differ}")
    return ours


def test_sql_source_marts_equal_the_analytics_export_path(pg, tmp_path):
    """~200k rows: the engine's partials give the marts the analytics loader + staging give."""
    fill(pg, "events_small", 200_000, users=500)
    sql_config, analytics_config = configs(tmp_path)
    sql_con, reports = land_sql(pg, "events_small", sql_config, tmp_path / "sql.duckdb")

    folder = tmp_path / "data" / "analytics"
    folder.mkdir(parents=True)
    copy_out(
        pg,
        "COPY (SELECT json_build_object('event', event, 'timestamp', \"timestamp\", 'user_id', "
        "user_id, 'anonymous_id', anonymous_id, 'properties', properties) "
        "FROM events_small) TO STDOUT",
        folder / "events.jsonl",
    )
    analytics_con = duckdb.connect(str(tmp_path / "analytics.duckdb"))
    load_analytics_exports(analytics_con, folder)
    for q in LANDED:
        stage_analytics_events(analytics_con, q.start, q.end, TIMEZONE)

    ours = assert_same_marts(sql_con, sql_config, analytics_con, analytics_config)
    attainment = ours["key_result_attainment"]
    assert attainment.height == 12 and attainment["current_value"].null_count() == 0
    assert sum(r.source_rows for r in reports) == 200_000
    assert sum(r.rows_fetched for r in reports) < 200_000

    # Lineage: engine and table without the password, a fingerprint per query.
    refs = sql_con.execute(
        f"SELECT DISTINCT _source_ref, _query_fingerprint FROM {RAW_SQL_EVENTS_PARTIALS.fqn}"
    ).fetchall()
    assert refs and all(pg.password not in ref and "***" in ref for ref, _ in refs)
    assert all(len(digest) == 64 for _, digest in refs)

    # Re-running a quarter replaces its partitions: the same rows, once.
    def counts():
        return [
            sql_con.execute(f"SELECT count(*) FROM {t.fqn}").fetchone()[0]
            for t in (RAW_SQL_EVENTS_PARTIALS, RAW_SQL_EVENTS_SIGHTINGS)
        ]

    before = counts()
    engine = sa.create_engine(pg.url, poolclass=NullPool)
    land_quarter(sql_con, engine, "events_small", sql_config, LANDED[1].start, LANDED[1].end)
    assert counts() == before


def test_plan_is_one_partials_query_per_filter_column(tmp_path):
    sql_config, _ = configs(tmp_path, with_revenue=True)
    the_plan = plan(sql_config)
    assert [(q.filter_column, q.wanted, q.value_columns) for q in the_plan.partials] == [
        ("", (), ("amount",)),
        ("event", ("login", "signup"), ()),
        ("properties.plan", ("pro", "team"), ()),
    ]
    assert [(q.filter_column, q.id_column) for q in the_plan.sightings] == [
        ("", "user_id"),
        ("event", "user_id"),
    ]


def test_a_metric_of_the_sql_source_filters_on_one_column(tmp_path):
    metric = {"id": "m", "name": "m", "source": "sql_events", "aggregation": "count",
              "filter": {"event": "signup", "properties.plan": "pro"}}  # fmt: skip
    with pytest.raises(ConfigError, match="filters on at most one column"):
        write_config(tmp_path, [metric])


BIG = 10_000_000


def test_ten_million_rows_pushdown_equals_scanning_the_rows(pg, tmp_path):
    """10M events in PostgreSQL: the marts from the engine's partials equal those from the same
    rows staged in DuckDB (copied out as CSV into staging.analytics_events; the analytics loader
    itself is the 200k test's), and the engine sends over 100 times fewer rows than it holds."""
    fill(pg, "events_big", BIG, users=200)
    sql_config, analytics_config = configs(tmp_path, with_revenue=True)
    sql_con, reports = land_sql(pg, "events_big", sql_config, tmp_path / "sql.duckdb")
    source_rows = sum(r.source_rows for r in reports)
    fetched = sum(r.rows_fetched for r in reports)
    print(f"\nsql_events pushdown: {fetched:,} rows fetched for {source_rows:,} source rows")
    assert source_rows == BIG
    assert fetched * 100 < source_rows

    csv = tmp_path / "events.csv"
    copy_out(
        pg,
        'COPY (SELECT event, "timestamp", user_id, anonymous_id, properties::text, amount '
        "FROM events_big) TO STDOUT WITH (FORMAT csv, HEADER)",
        csv,
    )
    rows_con = duckdb.connect(str(tmp_path / "rows.duckdb"))
    stage_copied_events(rows_con, csv, header=True)
    ours = assert_same_marts(sql_con, sql_config, rows_con, analytics_config)

    # Revenue (a sum of a NUMERIC column; analytics events have no numeric column) against
    # plain SQL over the copied rows.
    [(expected,)] = rows_con.execute(
        """SELECT sum(amount)::DOUBLE FROM read_csv(?, header = true, columns = {
            'event': 'VARCHAR', 'timestamp': 'TIMESTAMPTZ', 'user_id': 'VARCHAR',
            'anonymous_id': 'VARCHAR', 'properties': 'VARCHAR', 'amount': 'DECIMAL(12,2)'})
        WHERE CAST(timezone(?, "timestamp") AS DATE) BETWEEN ? AND ?""",
        [str(csv), TIMEZONE, REPORTED[0].start, REPORTED[0].end],
    ).fetchall()
    revenue = ours["key_result_attainment"].filter(pl.col("kr_id") == "kr-revenue-2026-q1")
    assert revenue["current_value"][0] == pytest.approx(expected, rel=1e-12)


def test_the_sql_source_asset_through_the_graph(pg, tmp_path, monkeypatch):
    """`okr backfill` with OKR_SQL_SOURCE_URL set: the asset lands the partials (and the history
    quarter the baselines read), the marts read them, and the URL and password show nowhere."""
    fill(pg, "events_graph", 30_000, users=100)
    sql_config, _ = configs(tmp_path)
    monkeypatch.setenv("OKR_SQL_SOURCE_URL", pg.url)
    settings = Settings(
        config_dir=sql_config.folder,
        data_dir=tmp_path / "data",
        warehouse=tmp_path / "warehouse.duckdb",
        bi_snapshot=tmp_path / "bi.duckdb",
        as_of="2026-06-30",
        sql_source_table="events_graph",
    )
    result = backfill(settings, None, None, dg.DagsterInstance.ephemeral())
    assert result.success
    [metadata, *_] = [  # one per partition, the same metadata
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["raw", "sql_events_partials"])
    ]
    assert metadata["source_rows"].value > 0
    assert 0 < metadata["rows_fetched"].value < metadata["source_rows"].value
    assert metadata["history_quarters_built"].text == "2025-Q3, 2025-Q4"  # baselines read them
    text = json.dumps(result.dagster_run.run_config, default=str) + "".join(
        str(e.materialization.metadata) for e in result.get_asset_materialization_events()
    )
    text += "".join(str(e.message) for e in result.all_events)
    assert pg.password not in text and pg.url not in text

    [(signups,)] = pg.query(
        "SELECT count(*)::float8 FROM events_graph WHERE event = 'signup' AND "
        "(timezone(%s, \"timestamp\"))::date BETWEEN '2026-01-01' AND '2026-03-31'",
        (TIMEZONE,),
    )
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        [(value,)] = con.execute(
            "SELECT current_value FROM marts.key_result_attainment WHERE kr_id = ?",
            ["kr-signups-2026-q1"],
        ).fetchall()
    assert value == signups


def test_numeric_aggregations_equal_scanning_the_rows(pg, tmp_path):
    """sum, avg, min, max and last of a NUMERIC column, per period and trailing window: the
    engine's partials against the same values scanned as rows (CSV observations: local day,
    event as metric_id, amount as value). Sums are exact in the engine and sorted in DuckDB, so
    they agree to the last few bits (and so do avg and last, a mean of the latest day); min
    and max, and the days with data, exactly."""
    fill(pg, "events_numeric", 20_000, users=50)
    rows = pg.query(
        'SELECT (timezone(%s, "timestamp"))::date, event, amount::float8 FROM events_numeric '
        "WHERE amount IS NOT NULL",
        (TIMEZONE,),
    )
    settings = {"timezone": TIMEZONE}

    def metrics(source: str, column: str, filter_column: str) -> list[dict]:
        return [
            {"id": f"{agg}_{window}", "name": agg, "source": source, "aggregation": agg,
             "column": column, "filter": {filter_column: "purchase"}, "window": window}
            for agg in ("sum", "avg", "min", "max", "last")
            for window in ("period", "7d")
        ]  # fmt: skip

    sql_config = write_config(
        tmp_path / "sql", metrics("sql_events", "amount", "event"), None, settings
    )
    csv_config = write_config(
        tmp_path / "csv", metrics("csv_observations", "value", "metric_id"), None, settings
    )
    sql_con, _ = land_sql(pg, "events_numeric", sql_config, tmp_path / "sql.duckdb")
    csv_con = warehouse(tmp_path / "csv.duckdb")
    csv_con.executemany(
        "INSERT INTO staging.csv_observations VALUES (?, ?, ?, NULL)", [list(r) for r in rows]
    )
    ours, theirs = MetricReader(sql_con, sql_config), MetricReader(csv_con, csv_config)
    first, last = REPORTED[0].start, REPORTED[1].end
    for metric_id in sql_config.metrics:
        mine = ours.series(sql_config.metrics[metric_id], first, last)
        other = theirs.series(csv_config.metrics[metric_id], first, last)
        assert mine["latest_date"].equals(other["latest_date"]), metric_id
        assert mine["value"].null_count() == other["value"].null_count() == 0
        if metric_id.startswith(("sum", "avg", "last")):  # last: the latest day's mean
            assert mine["value"].to_list() == pytest.approx(other["value"].to_list(), rel=1e-12)
        else:
            assert mine["value"].equals(other["value"]), metric_id
