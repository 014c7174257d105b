"""The BI assets in a real run: readers hold read-only connections on the published snapshot
while the snapshot asset is materialized again and again; nobody errors or waits, and every
read sees one complete snapshot."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dagster as dg
import duckdb
from test_pipeline import write_project

from pipelines.build import build_definitions
from pipelines.cli import backfill

CONSISTENT = """
    SELECT (SELECT count(DISTINCT snapshot_id) FROM {db}.marts.snapshot_info),
           (SELECT any_value(snapshot_id) FROM {db}.marts.snapshot_info),
           (SELECT row_count FROM {db}.marts.snapshot_info
             WHERE object_name = 'marts.key_result_progress_daily'),
           (SELECT count(*) FROM {db}.marts.key_result_progress_daily)
"""


def read_once(con: duckdb.DuckDBPyConnection, db: str) -> str:
    ids, snapshot_id, recorded, actual = con.execute(CONSISTENT.format(db=db)).fetchall()[0]
    assert ids == 1 and recorded == actual, (ids, recorded, actual)
    return snapshot_id


def test_readers_keep_working_across_repeated_snapshot_materializations(tmp_path: Path):
    settings = write_project(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    assert backfill(settings, "2024-Q3", "2025-Q2", instance).success
    snapshot = settings.bi_snapshot
    assert snapshot.exists() and snapshot.with_name("scorecard.html").exists()

    defs = build_definitions(settings)
    job = defs.resolve_implicit_global_asset_job_def()
    key = dg.AssetKey(["bi", "okr_snapshot"])
    errors: list[BaseException] = []
    seen: list[set[str]] = [set() for _ in range(4)]
    stop = threading.Event()

    def held(index: int) -> None:
        """One connection held open across publications: always the snapshot it opened."""
        try:
            with duckdb.connect(str(snapshot), read_only=True) as con:
                while not stop.is_set():
                    seen[index].add(read_once(con, snapshot.stem))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    def fresh(index: int) -> None:
        """A new connection per read (ATTACH always opens the file the path names now)."""
        try:
            while not stop.is_set():
                with duckdb.connect() as con:
                    con.execute(f"ATTACH '{snapshot}' AS bi (READ_ONLY)")
                    seen[index].add(read_once(con, "bi"))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    readers = [threading.Thread(target=held, args=(i,)) for i in (0, 1)]
    readers += [threading.Thread(target=fresh, args=(i,)) for i in (2, 3)]
    for reader in readers:
        reader.start()
    try:
        durations = []
        for _ in range(4):
            started = time.monotonic()
            result = job.execute_in_process(
                instance=instance, asset_selection=[key], raise_on_error=False
            )
            durations.append(time.monotonic() - started)
            assert result.success
            time.sleep(0.2)
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=30)
    assert errors == []
    # Held connections stayed on one snapshot each; fresh ones followed the publications.
    assert all(len(ids) == 1 for ids in seen[:2])
    assert all(len(ids) >= 3 for ids in seen[2:])
    assert max(durations) < 30, durations
    # BI gets marts only: nothing from raw or staging, hence no CRM personal data either.
    with duckdb.connect(str(snapshot), read_only=True) as con:
        schemas = {
            s for (s,) in con.execute("SELECT DISTINCT schema_name FROM duckdb_tables()").fetchall()
        }
    assert schemas == {"marts"}


def test_the_snapshot_answers_the_readme_queries(tmp_path: Path):
    settings = write_project(tmp_path)
    assert backfill(settings, "2024-Q3", "2025-Q2", dg.DagsterInstance.ephemeral()).success
    queries = (Path(__file__).parent.parent / "docs" / "bi_queries.sql").read_text()
    with duckdb.connect(str(settings.bi_snapshot), read_only=True) as con:
        for statement in filter(str.strip, queries.split(";")):
            rows = con.execute(statement).fetchall()
            assert rows, statement
