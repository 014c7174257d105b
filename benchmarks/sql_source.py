"""The `sql-source` scenario: metrics over an events table in PostgreSQL, read through the
SQL-engine source (the engine computes the per-day partials; only they cross the wire) vs
landing the raw rows (COPY of every row out of the engine, loaded into a DuckDB staging table).
Both sides then compute the OKR marts, which must agree bit for bit.

It needs PostgreSQL server binaries (initdb, pg_ctl; tests/pg_server.py starts a throwaway
server), so it is not among the default scenarios: `--scenarios sql-source`. The server's URL
reaches the children through OKR_SQL_SOURCE_URL, never through their logged arguments."""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path

import yaml

TIMEZONE = "Europe/Berlin"
QUARTERS = ("2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3")
REPORTED = ("2026-Q1", "2026-Q2")
TODAY = "2026-07-15"
ROWS = {"smoke": 200_000, "1m": 2_000_000, "10m": 10_000_000, "100m": 50_000_000}
USERS = 2_000
SPAN_SECONDS = 184 * 86_400
TABLE = "bench_events"
# Deterministic rows (the benchmark and tests/test_sql_source.py): i -> a hash h picks the
# event, user, plan and amount; one row per distinct second, so no two rows are exact duplicates
# (staging would keep one); every row has a user_id or an anonymous_id (the analytics loader
# rejects events with neither).
INSERT = """
INSERT INTO {table}
SELECT (ARRAY['page_view','page_view','page_view','login','signup','purchase'])[1 + h % 6],
       timestamptz '2025-12-30 00:00:00+00' + interval '1 second' * (i * {span} / {n}),
       CASE WHEN i % 53 = 0 THEN NULL ELSE 'u' || (h / 6 % {users}) END,
       CASE WHEN i % 7 = 0 OR i % 53 = 0 THEN 'a' || (h % 1000) END,
       jsonb_build_object('plan', (ARRAY['free','pro','team'])[1 + h / 7 % 3]),
       CASE WHEN h % 6 = 5 THEN (h / 11 % 100000) / 100.0 END
FROM (SELECT i, (i * 2654435761) % 4294967291 AS h FROM generate_series(1::bigint, {n}) AS i) s
"""


def event_metrics(source: str) -> list[dict]:
    """Five metrics on `source` (counts, a filter on a JSON key, distinct users, a trailing
    distinct count) and a ratio: what the benchmark and tests/test_sql_source.py measure."""

    def metric(metric_id: str, aggregation: str, **fields) -> dict:
        return {"id": metric_id, "name": metric_id, "source": source,
                "aggregation": aggregation, **fields}  # fmt: skip

    return [
        metric("signups", "count", filter={"event": "signup"}),
        metric("events", "count"),
        metric("pro_events", "count", filter={"properties.plan": ["pro", "team"]}),
        metric("login_users", "count_distinct", column="user_id", filter={"event": "login"}),
        metric("weekly_users", "count_distinct", column="user_id", window="7d"),
        {
            "id": "conversion",
            "name": "conversion",
            "aggregation": "ratio",
            "numerator": "signups",
            "denominator": "events",
        },  # fmt: skip
    ]


def stage_copied_events(con, csv_path: Path, *, header: bool) -> None:
    """The engine's rows, copied out as CSV, straight into staging.analytics_events: what
    landing the raw rows costs (the baseline), and the rows the pushdown must equal."""
    from connectors.analytics.tables import STAGING_ANALYTICS_EVENTS

    STAGING_ANALYTICS_EVENTS.create(con)
    con.execute(
        f"""
        INSERT INTO {STAGING_ANALYTICS_EVENTS.fqn}
        SELECT event, "timestamp", CAST(timezone(?, "timestamp") AS DATE), user_id, anonymous_id,
            properties, date_trunc('quarter', timezone(?, "timestamp"))::DATE, 'copy', 0, 'b'
        FROM read_csv(?, header = ?, columns = {{'event': 'VARCHAR',
            'timestamp': 'TIMESTAMPTZ', 'user_id': 'VARCHAR', 'anonymous_id': 'VARCHAR',
            'properties': 'JSON', 'amount': 'DECIMAL(12,2)'}})""",
        [TIMEZONE, TIMEZONE, str(csv_path), header],
    )


def write_config(folder: Path, source: str) -> None:
    """The event metrics, and one objective per reported quarter with a KR on each."""
    folder.mkdir(parents=True, exist_ok=True)
    metrics = event_metrics(source)
    objectives = [
        {
            "id": f"grow-{q.lower()}",
            "title": "grow",
            "team": "product",
            "owner": "ana",
            "period": q,
            "key_results": [
                {
                    "id": f"kr-{m['id']}-{q.lower()}".replace("_", "-"),
                    "title": m["id"],
                    "metric": m["id"],
                    "type": "increase",
                    "target": 1e7,
                }
                for m in metrics
            ],
        }  # fmt: skip
        for q in REPORTED
    ]
    (folder / "metrics.yaml").write_text(
        yaml.safe_dump({"settings": {"timezone": TIMEZONE}, "metrics": metrics}, sort_keys=False)
    )
    (folder / "okrs.yaml").write_text(yaml.safe_dump({"objectives": objectives}, sort_keys=False))


def fill(url: str, rows: int) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    connection = engine.raw_connection()  # the driver's own: `%` in the SQL is no placeholder
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
            cursor.execute(
                f'CREATE TABLE {TABLE} (event text NOT NULL, "timestamp" timestamptz NOT NULL, '
                "user_id text, anonymous_id text, properties jsonb NOT NULL, "
                "amount numeric(12, 2))"
            )
            cursor.execute(INSERT.format(table=TABLE, span=SPAN_SECONDS, n=rows, users=USERS))
            # An events table is indexed on its time: each quarter's queries read that quarter.
            cursor.execute(f'CREATE INDEX ON {TABLE} ("timestamp")')
            cursor.execute(f"ANALYZE {TABLE}")
        connection.commit()
    finally:
        connection.close()
        engine.dispose()


def _marts(con, config_dir: Path) -> dict:
    from transforms.calendar import quarter_from_label
    from transforms.config import load_config
    from transforms.marts import okr_mart_frames

    config = load_config(config_dir)
    frames = okr_mart_frames(
        con, config, [quarter_from_label(q) for q in REPORTED], date.fromisoformat(TODAY)
    )
    return {name: frame for name, frame in frames.items() if name != "okr_scorecard"}


def _digest(frames: dict) -> str:
    import hashlib

    text = "".join(f"{name}:{frame.write_csv()}" for name, frame in sorted(frames.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def child_sql_pushdown(args: dict) -> dict:
    """The SQL-engine source: per quarter, the engine's partials land in DuckDB; then the marts."""
    import duckdb
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from connectors.sql_engine.pushdown import land_quarter
    from transforms.calendar import quarter_from_label
    from transforms.config import load_config

    config_dir = Path(args["config_dir"])
    config = load_config(config_dir)
    engine = sa.create_engine(os.environ["OKR_SQL_SOURCE_URL"], poolclass=NullPool)
    started = time.perf_counter()
    con = duckdb.connect(args["warehouse"], config={"threads": 2})
    reports = [
        land_quarter(con, engine, TABLE, config, q.start, q.end)
        for q in (quarter_from_label(label) for label in QUARTERS)
    ]
    landed = time.perf_counter()
    frames = _marts(con, config_dir)
    seconds = time.perf_counter() - started
    # What crossed the wire, as CSV text of the rows the engine sent (the payload, not the
    # protocol's framing): the landed partials and sightings without their lineage columns.
    payload = 0
    for table in ("raw.sql_events_partials", "raw.sql_events_sightings"):
        frame = con.sql(f"SELECT * EXCLUDE (quarter_start, _source, _source_ref, "
                        f"_query_fingerprint, _batch_id, _loaded_at) FROM {table}").pl()  # fmt: skip
        payload += len(frame.write_csv(include_header=False).encode())
    con.close()
    return {
        "seconds": seconds,
        "phases": {"engine + land": landed - started, "marts": seconds - (landed - started)},
        "rows_transferred": sum(r.rows_fetched for r in reports),
        "partial_rows": sum(r.partial_rows for r in reports),
        "sighting_rows": sum(r.sighting_rows for r in reports),
        "source_rows": sum(r.source_rows for r in reports),
        "bytes_transferred": payload,
        "digest": _digest(frames),
    }


def child_sql_rows(args: dict) -> dict:
    """Landing the raw rows: COPY every row out of the engine (CSV), load them into a DuckDB
    staging table of the analytics events' shape; then the same marts."""
    import duckdb
    import psycopg2
    import sqlalchemy as sa

    from connectors.analytics.tables import STAGING_ANALYTICS_EVENTS

    url = sa.engine.make_url(os.environ["OKR_SQL_SOURCE_URL"])
    csv_path = Path(args["csv"])
    started = time.perf_counter()
    connection = psycopg2.connect(host=url.host, port=url.port, user=url.username,
                                  password=url.password, dbname=url.database)  # fmt: skip
    try:
        with connection, connection.cursor() as cursor, csv_path.open("w") as out:
            cursor.execute("SET TIME ZONE 'UTC'")
            cursor.copy_expert(
                f'COPY (SELECT event, "timestamp", user_id, anonymous_id, properties::text, '
                f"amount FROM {TABLE}) TO STDOUT WITH (FORMAT csv)",
                out,
            )
    finally:
        connection.close()
    copied = time.perf_counter()
    con = duckdb.connect(args["warehouse"], config={"threads": 2})
    stage_copied_events(con, csv_path, header=False)
    loaded = time.perf_counter()
    [(rows,)] = con.execute(f"SELECT count(*) FROM {STAGING_ANALYTICS_EVENTS.fqn}").fetchall()
    frames = _marts(con, Path(args["config_dir"]))
    seconds = time.perf_counter() - started
    con.close()
    size = csv_path.stat().st_size
    csv_path.unlink()
    return {
        "seconds": seconds,
        "phases": {
            "copy out": copied - started,
            "load": loaded - copied,
            "marts": seconds - (loaded - started),
        },  # fmt: skip
        "rows_transferred": rows,
        "bytes_transferred": size,
        "digest": _digest(frames),
    }
