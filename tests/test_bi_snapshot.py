"""The published BI snapshot (docs/data_dictionary.md): only marts, every comment kept, readable by
an older DuckDB (the 1.5.6 CLI standing in for a lagging BI driver) and through SQLAlchemy with
duckdb-engine (Superset's path), and safe to publish while readers hold it open."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

import bi.snapshot as publish
from bi.snapshot import SNAPSHOT_INFO, publish_snapshot
from transforms.tables import (
    MARTS_DIM_KEY_RESULTS,
    MARTS_DIM_OBJECTIVES,
    MARTS_KEY_RESULT_ATTAINMENT,
)
from warehouse.tables import Table
from warehouse.writes import insert_frame, transaction

MART_TABLES = (MARTS_KEY_RESULT_ATTAINMENT, MARTS_DIM_KEY_RESULTS, MARTS_DIM_OBJECTIVES)
CLI = Path(sys.executable).parent / "duckdb"

# Every table of publication n carries n (in `weight`) and rows_for(n) rows, so one query tells
# which publication a reader saw and whether all of its tables came from that same one.
CONSISTENCY_SQL = """
SELECT
  (SELECT min(weight) FROM marts.key_result_attainment),
  (SELECT max(weight) FROM marts.key_result_attainment),
  (SELECT min(weight) FROM marts.dim_key_results),
  (SELECT max(weight) FROM marts.dim_key_results),
  (SELECT min(weight) FROM marts.kr_status),
  (SELECT max(weight) FROM marts.kr_status),
  (SELECT count(*) FROM marts.key_result_attainment),
  (SELECT count(*) FROM marts.dim_key_results),
  (SELECT count(*) FROM marts.kr_status),
  (SELECT row_count FROM marts.snapshot_info WHERE object_name = 'marts.key_result_attainment')
""".strip().replace("\n", " ")


def rows_for(n: int) -> int:
    return 2 + n % 4


def publication(row) -> int:
    """The one publication a consistency row comes from; raises if it mixes several."""
    assert None not in row, f"missing data: {row}"
    weights, counts = {float(v) for v in row[:6]}, {int(v) for v in row[6:]}
    assert len(weights) == 1, f"tables from different publications: {row}"
    n = int(weights.pop())
    assert counts == {rows_for(n)}, f"publication {n} incomplete: {row}"
    return n


def _frame(table: Table, rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(
        [{c: row.get(c) for c in table.column_names} for row in rows],
        schema_overrides={"related_metrics": pl.List(pl.String)},
        strict=False,
    )


def write_publication(con: duckdb.DuckDBPyConnection, n: int) -> None:
    """Replace the marts with publication n's data, in one transaction."""
    window = {"period_start": date(2025, 1, 1), "period_end": date(2025, 3, 31)}
    krs = [f"kr-{i}" for i in range(rows_for(n))]
    attainment = [
        {
            "kr_id": kr,
            "quarter": "2025-Q1",
            "quarter_start": date(2025, 1, 1),
            "kr_title": f"KR {kr}",
            "objective_id": "obj-1",
            "metric_id": "visits",
            "team": "growth",
            "owner": "ana",
            "kr_type": "increase",
            **window,
            "as_of_date": date(2025, 2, 14),
            "baseline": 0.0,
            "target": 100.0,
            "current_value": 10.0 * i,
            "progress": 0.1 * i,
            "status": "on_track",
            "weight": float(n),
            "success_level": 1.0,
            "stale_after_days": 31,
            "grade_is_final": False,
        }
        for i, kr in enumerate(krs)
    ]
    dim_krs = [
        {
            "kr_id": kr,
            "objective_id": "obj-1",
            "title": f"KR {kr}",
            "metric_id": "visits",
            "kr_type": "increase",
            "baseline_config": "0",
            "target_config": "100",
            **window,
            "weight": float(n),
            "owner": "ana",
        }
        for kr in krs
    ]
    objectives = [
        {
            "objective_id": "obj-1",
            "title": "Grow",
            "team": "growth",
            "type": "committed",
            "success_level": 1.0,
            **window,
            "weight": 1.0,
            "depth": 0,
            "related_metrics": ["visits", "signups"],
        }
    ]
    with transaction(con):
        for table, rows in zip(MART_TABLES, (attainment, dim_krs, objectives), strict=True):
            con.execute(f"DELETE FROM {table.fqn}")
            insert_frame(con, table, _frame(table, rows))


def make_warehouse(path: Path, n: int = 1) -> duckdb.DuckDBPyConnection:
    """A small real warehouse: three marts built from their specs, a commented marts view, a
    view over staging (must not be published) and raw/staging/meta rows (must not be copied)."""
    con = duckdb.connect(str(path))
    for table in MART_TABLES:
        table.create(con)
    con.execute(
        "CREATE SCHEMA raw; CREATE SCHEMA staging; CREATE SCHEMA meta;"
        "CREATE TABLE raw.x AS SELECT 'jane@example.com' AS email;"
        "CREATE TABLE staging.y AS SELECT 'jane@example.com' AS email, 1 AS deal;"
        "CREATE TABLE meta.z AS SELECT 1 AS a;"
        "CREATE VIEW marts.kr_status AS SELECT a.kr_id, a.status, a.weight, d.title "
        "FROM marts.key_result_attainment a JOIN marts.dim_key_results d USING (kr_id);"
        "COMMENT ON VIEW marts.kr_status IS 'KR status with the KR title.';"
        "COMMENT ON COLUMN marts.kr_status.title IS 'KR title from the dimension.';"
        "CREATE VIEW marts.crm_leak AS SELECT email FROM staging.y;"
    )
    write_publication(con, n)
    return con


@pytest.fixture
def warehouse(tmp_path: Path):
    con = make_warehouse(tmp_path / "warehouse.duckdb")
    yield con
    con.close()


def read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """A reader that opens the file the path names NOW (see the instance-cache caveat)."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{path}' AS bi (READ_ONLY)")
    con.execute("USE bi")
    return con


def catalog(con: duckdb.DuckDBPyConnection, database: str, sql: str) -> set[tuple]:
    return set(con.execute(sql.format(db=database)).fetchall())


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name or p.suffix == ".wal")


def test_snapshot_holds_exactly_the_marts_with_their_comments(warehouse, tmp_path):
    target = tmp_path / "bi" / "okr_bi.duckdb"
    report = publish_snapshot(warehouse, target, as_of=date(2025, 2, 14))

    assert report.path == target and target.exists() and report.bytes == target.stat().st_size
    assert set(report.tables) == {t.fqn for t in MART_TABLES}
    assert report.views == ("marts.kr_status",)
    assert set(report.skipped_views) == {"marts.crm_leak"}
    assert report.rows == {
        t.fqn: (rows_for(1) if t.name != "dim_objectives" else 1) for t in MART_TABLES
    }
    assert report.seconds > 0
    assert leftovers(target.parent) == []

    snap = read_only(target)
    schemas = catalog(
        snap, "bi", "SELECT schema_name FROM duckdb_schemas() WHERE database_name = '{db}'"
    )
    assert {s for (s,) in schemas} == {"main", "marts"}
    objects = "SELECT table_name, 'table' FROM duckdb_tables() WHERE database_name = '{db}' UNION ALL SELECT view_name, 'view' FROM duckdb_views() WHERE database_name = '{db}' AND NOT internal"
    assert catalog(snap, "bi", objects) == {
        *((t.name, "table") for t in MART_TABLES),
        ("snapshot_info", "table"),
        ("kr_status", "view"),
    }
    for table in MART_TABLES:
        same = f"SELECT * FROM {{db}}.{table.fqn} ORDER BY ALL"
        assert (
            snap.execute(same.format(db="bi")).fetchall()
            == warehouse.execute(same.format(db="warehouse")).fetchall()
        )
        assert snap.execute(f"SELECT count(*) FROM bi.{table.fqn}").fetchone()[0] > 0
    assert snap.execute("SELECT related_metrics FROM marts.dim_objectives").fetchall() == [
        (["visits", "signups"],)
    ]
    assert snap.execute("SELECT count(*) FROM marts.kr_status").fetchone()[0] == rows_for(1)

    # Types, nullability and every comment, for the tables and the view alike.
    columns = "SELECT table_name, column_name, data_type, is_nullable, comment FROM duckdb_columns() WHERE database_name = '{db}' AND schema_name = 'marts' AND table_name <> 'crm_leak'"
    in_snapshot = catalog(snap, "bi", columns)
    assert {r for r in in_snapshot if r[0] != "snapshot_info"} == catalog(
        warehouse, "warehouse", columns
    )
    assert not [r for r in in_snapshot if r[4] is None and r[0] != "kr_status"]
    comments = "SELECT table_name, comment FROM duckdb_tables() WHERE database_name = '{db}' AND schema_name = 'marts' UNION ALL SELECT view_name, comment FROM duckdb_views() WHERE database_name = '{db}' AND schema_name = 'marts' AND view_name <> 'crm_leak'"
    in_snapshot = dict(catalog(snap, "bi", comments))
    assert in_snapshot.pop("snapshot_info") == SNAPSHOT_INFO.description
    assert in_snapshot == dict(catalog(warehouse, "warehouse", comments))
    assert in_snapshot["kr_status"] == "KR status with the KR title."

    info = snap.execute(
        "SELECT DISTINCT snapshot_id, as_of, source_warehouse, storage_version "
        "FROM marts.snapshot_info"
    ).fetchall()
    assert info == [
        (report.snapshot_id, date(2025, 2, 14), str(tmp_path / "warehouse.duckdb"), "v1.4.0")
    ]
    counts = dict(snap.execute("SELECT object_name, row_count FROM marts.snapshot_info").fetchall())
    assert counts == {**report.rows, "marts.kr_status": None}
    # Written in the old storage format, so DuckDB 1.4+ clients can open it.
    tags = snap.execute("SELECT tags FROM duckdb_databases() WHERE database_name = 'bi'").fetchone()
    assert tags[0]["storage_version"] == "v1.4.0+"
    snap.close()

    with pytest.raises(ValueError, match="raw"):
        publish_snapshot(warehouse, target, schemas=("marts", "raw"))


def test_publishes_from_a_read_only_warehouse_connection(tmp_path):
    make_warehouse(tmp_path / "warehouse.duckdb").close()
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        report = publish_snapshot(con, tmp_path / "bi" / "okr_bi.duckdb")
        assert con.execute("SELECT current_database()").fetchone() == ("warehouse",)
    assert report.rows["marts.key_result_attainment"] == rows_for(1)
    assert publication(read_only(report.path).execute(CONSISTENCY_SQL).fetchone()) == 1


def cli(path: Path, sql: str) -> list[list[str]]:
    result = subprocess.run(
        [str(CLI), "-readonly", "-csv", "-noheader", str(path), "-c", sql],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and not result.stderr, result.stderr
    return [line.split(",") for line in result.stdout.splitlines()]


def test_older_duckdb_cli_reads_the_snapshot(warehouse, tmp_path):
    assert CLI.exists(), f"DuckDB CLI expected next to {sys.executable}"
    target = tmp_path / "okr_bi.duckdb"
    publish_snapshot(warehouse, target)

    assert cli(target, "SELECT library_version FROM pragma_version()")[0][0].startswith("v1.5")
    assert publication(cli(target, CONSISTENCY_SQL)[0]) == 1
    assert cli(
        target,
        "SELECT k.kr_id, d.title, k.status FROM marts.key_result_attainment k "
        "JOIN marts.dim_key_results d USING (kr_id) ORDER BY 1",
    ) == [
        ["kr-0", "KR kr-0", "on_track"],
        ["kr-1", "KR kr-1", "on_track"],
        ["kr-2", "KR kr-2", "on_track"],
    ]
    assert cli(
        target,
        "SELECT comment FROM duckdb_columns() WHERE table_name = 'key_result_attainment' "
        "AND column_name = 'progress'",
    ) == [['"Progress p = r clamped to [0', ' 1]; null when it cannot be measured."']]
    # The same warehouse written in DuckDB 2's default format is what the old client refuses.
    fresh = tmp_path / "default_format.duckdb"
    duckdb.connect(str(fresh)).close()
    refused = subprocess.run(
        [str(CLI), "-readonly", str(fresh), "-c", "SELECT 1"], capture_output=True, text=True
    )
    assert refused.returncode != 0 and "version number" in refused.stderr


def test_sqlalchemy_duckdb_engine_reads_the_snapshot(warehouse, tmp_path):
    target = tmp_path / "okr_bi.duckdb"
    publish_snapshot(warehouse, target)
    engine = sa.create_engine(
        f"duckdb:///{target}", connect_args={"read_only": True}, poolclass=NullPool
    )
    try:
        with engine.connect() as conn:
            joined = conn.execute(
                sa.text(
                    "SELECT k.kr_id, d.title, k.progress, o.related_metrics "
                    "FROM marts.key_result_attainment k "
                    "JOIN marts.dim_key_results d USING (kr_id) "
                    "JOIN marts.dim_objectives o ON o.objective_id = k.objective_id "
                    "WHERE k.kr_id = :kr"
                ),
                {"kr": "kr-1"},
            ).one()
            assert tuple(joined) == ("kr-1", "KR kr-1", 0.1, ["visits", "signups"])
            comment = conn.execute(
                sa.text(
                    "SELECT column_comment FROM information_schema.columns "
                    "WHERE table_schema = 'marts' AND table_name = 'key_result_attainment' "
                    "AND column_name = 'kr_id'"
                )
            ).scalar_one()
            assert comment == "Key result id from okrs.yaml."
            tables = conn.execute(
                sa.text(
                    "SELECT table_name, table_comment FROM information_schema.tables "
                    "WHERE table_schema = 'marts' ORDER BY 1"
                )
            ).all()
            assert dict(tables)["key_result_attainment"] == MARTS_KEY_RESULT_ATTAINMENT.description
            assert "crm_leak" not in dict(tables)
            with pytest.raises(sa.exc.DBAPIError, match="read-only"):
                conn.execute(sa.text("DELETE FROM marts.dim_objectives"))
        # Without a held connection, the next checkout opens the newly published file.
        write_publication(warehouse, 2)
        publish_snapshot(warehouse, target)
        with engine.connect() as conn:
            assert publication(conn.execute(sa.text(CONSISTENCY_SQL)).one()) == 2
    finally:
        engine.dispose()


def test_inprocess_instance_cache_keeps_old_snapshot_while_a_connection_is_open(
    warehouse, tmp_path
):
    """Pins the DuckDB behaviour the module docstring warns about: in one process,
    `duckdb.connect(path)` joins an instance already open on that path (the old file), while a
    fresh in-memory database that ATTACHes the path sees the new one."""
    target = tmp_path / "okr_bi.duckdb"
    publish_snapshot(warehouse, target)
    held = duckdb.connect(str(target), read_only=True)
    write_publication(warehouse, 2)
    publish_snapshot(warehouse, target)
    assert publication(held.execute(CONSISTENCY_SQL).fetchone()) == 1
    joined = duckdb.connect(str(target), read_only=True)
    assert publication(joined.execute(CONSISTENCY_SQL).fetchone()) == 1
    assert publication(read_only(target).execute(CONSISTENCY_SQL).fetchone()) == 2
    joined.close()
    held.close()
    again = duckdb.connect(str(target), read_only=True)
    assert publication(again.execute(CONSISTENCY_SQL).fetchone()) == 2
    again.close()


SUBPROCESS_READER = textwrap.dedent(
    """
    import json, os, sys, time
    import duckdb
    path, stop, sql = sys.argv[1], sys.argv[2], sys.argv[3]
    def attach():
        con = duckdb.connect()
        con.execute(f"ATTACH '{path}' AS bi (READ_ONLY)")
        con.execute("USE bi")
        return con
    held, held_reads, i, k = None, 0, 0, 0
    while not os.path.exists(stop):
        i += 1
        try:
            if held is None:
                held, held_reads, k = attach(), 0, k + 1
            row = held.execute(sql).fetchone()
            print(json.dumps({"kind": "held", "conn": k, "row": list(row)}), flush=True)
            held_reads += 1
            if held_reads >= 25:
                held.close()
                held = None
            con = attach() if i % 2 else duckdb.connect(path, read_only=True)
            row = con.execute(sql).fetchone()
            con.close()
            print(json.dumps({"kind": "fresh", "row": list(row)}), flush=True)
        except Exception as error:
            print(json.dumps({"kind": "error", "error": repr(error)}), flush=True)
        time.sleep(0.02)
    """
)


def test_readers_and_publisher_never_block_or_see_a_partial_snapshot(tmp_path):
    warehouse = make_warehouse(tmp_path / "warehouse.duckdb", n=0)
    target = tmp_path / "bi" / "okr_bi.duckdb"
    publish_snapshot(warehouse, target)
    published = [0]  # highest publication whose rename has completed
    stop = threading.Event()
    errors: list[str] = []
    seen: dict[str, list[int]] = {}

    def record(name: str, body) -> None:
        seen[name] = []
        while not stop.is_set():
            try:
                body(seen[name])
            except Exception as error:  # every failure is a test failure, reported below
                errors.append(f"{name}: {error!r}")
            time.sleep(0.02)

    def holder(out: list[int]) -> None:
        """Holds one connection across several publishes: it must keep seeing the same one."""
        con, first = read_only(target), None
        try:
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline and not stop.is_set():
                n = publication(con.execute(CONSISTENCY_SQL).fetchone())
                first = n if first is None else first
                assert n == first, f"held connection moved from {first} to {n}"
                out.append(n)
                time.sleep(0.02)
        finally:
            con.close()

    def fresh(out: list[int]) -> None:
        """A new connection sees a complete publication at least as new as the last renamed."""
        floor = published[0]
        with read_only(target) as con:
            n = publication(con.execute(CONSISTENCY_SQL).fetchone())
        assert n >= floor, f"new connection saw {n} after {floor} was published"
        out.append(n)

    def by_path(out: list[int]) -> None:
        """duckdb.connect(path) as BI drivers do: consistent (maybe an older publication)."""
        with duckdb.connect(str(target), read_only=True) as con:
            out.append(publication(con.execute(CONSISTENCY_SQL).fetchone()))

    def old_cli(out: list[int]) -> None:
        floor = published[0]
        n = publication(cli(target, CONSISTENCY_SQL)[0])
        assert n >= floor, f"CLI saw {n} after {floor} was published"
        out.append(n)
        time.sleep(0.03)  # a process per read: leave the CPU to the publisher

    stop_file = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", SUBPROCESS_READER, str(target), str(stop_file), CONSISTENCY_SQL],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = [json.loads(reader.stdout.readline())]  # it reads before publishing starts
    pump = threading.Thread(
        target=lambda: lines.extend(json.loads(line) for line in reader.stdout), daemon=True
    )
    pump.start()
    threads = [
        threading.Thread(target=record, args=(name, body), daemon=True)
        for name, body in [
            ("holder-1", holder),
            ("holder-2", holder),
            ("fresh-1", fresh),
            ("fresh-2", fresh),
            ("by-path", by_path),
            ("cli-1.5.6", old_cli),
        ]
    ]
    for thread in threads:
        thread.start()

    def all_saw(n: int) -> bool:
        fresh_readers = [seen.get(name, []) for name in ("fresh-1", "fresh-2", "cli-1.5.6")]
        fresh_readers.append([publication(x["row"]) for x in lines if x["kind"] == "fresh"])
        return all(reads and reads[-1] >= n for reads in fresh_readers)

    pinned = read_only(target)  # opened on publication 0, kept across every rename
    durations = []
    try:
        for n in range(1, 16):
            write_publication(warehouse, n)
            report = publish_snapshot(warehouse, target)
            published[0] = n
            durations.append(report.seconds)
            time.sleep(0.05)
        pinned_sees = publication(pinned.execute(CONSISTENCY_SQL).fetchone())
        deadline = time.monotonic() + 10
        while not all_saw(15) and time.monotonic() < deadline and not errors:
            time.sleep(0.02)
    finally:
        stop.set()
        stop_file.touch()
        for thread in threads:
            thread.join(timeout=10)
        reader.wait(timeout=10)
        pump.join(timeout=10)
        err = reader.stderr.read()
        pinned.close()
        warehouse.close()

    sub_errors = [line["error"] for line in lines if line["kind"] == "error"]
    assert errors == [] and sub_errors == [], (errors, sub_errors)
    assert reader.returncode == 0, err
    # Every read by the subprocess saw exactly one complete publication ...
    sub_seen = [publication(line["row"]) for line in lines]
    # ... and a held connection never moved from the publication it opened.
    by_conn: dict[int, set[int]] = {}
    for line in lines:
        if line["kind"] == "held":
            by_conn.setdefault(line["conn"], set()).add(publication(line["row"]))
    assert all(len(ns) == 1 for ns in by_conn.values()), by_conn
    # The readers really ran across the publishes, and saw them arrive.
    assert all(len(reads) >= 3 for reads in seen.values()), {k: len(v) for k, v in seen.items()}
    assert len(set(seen["fresh-1"]) | set(seen["fresh-2"])) >= 5
    assert len(set(sub_seen)) >= 5
    # Every kind of new connection, in this process, the subprocess and the old CLI, got to the
    # last publication once its rename was done (and never an older one than the last renamed).
    assert all_saw(15)
    # The publisher never waited on a reader; the pinned reader still reads its old file.
    assert len(durations) == 15 and max(durations) < 5, durations
    assert pinned_sees == 0
    assert publication(read_only(target).execute(CONSISTENCY_SQL).fetchone()) == 15
    assert leftovers(target.parent) == []


def test_failed_publish_leaves_previous_snapshot_and_no_temp_files(
    warehouse, tmp_path, monkeypatch
):
    target = tmp_path / "bi" / "okr_bi.duckdb"
    publish_snapshot(warehouse, target)
    before = target.read_bytes()

    # A table that cannot be written in the old storage format fails the copy half-way
    # (the tables sorted before it are already copied into the temporary file).
    warehouse.execute("CREATE TABLE marts.zz_variant AS SELECT 1::VARIANT AS v")
    write_publication(warehouse, 2)
    with pytest.raises(duckdb.Error, match="VARIANT"):
        publish_snapshot(warehouse, target)
    assert target.read_bytes() == before
    assert leftovers(target.parent) == []
    warehouse.execute("DROP TABLE marts.zz_variant")

    # The rename itself fails: the fully written temporary file is removed, the target kept.
    def refuse(src, dst):
        raise PermissionError(13, "read-only directory", str(dst))

    monkeypatch.setattr(publish.os, "replace", refuse)
    with pytest.raises(PermissionError):
        publish_snapshot(warehouse, target)
    assert target.read_bytes() == before
    assert leftovers(target.parent) == []
    assert publication(read_only(target).execute(CONSISTENCY_SQL).fetchone()) == 1
    # The warehouse connection is left usable: no attached snapshot, no open transaction.
    assert warehouse.execute(
        "SELECT count(*) FROM duckdb_databases() WHERE NOT internal"
    ).fetchone() == (1,)
    monkeypatch.undo()
    publish_snapshot(warehouse, target)
    assert publication(read_only(target).execute(CONSISTENCY_SQL).fetchone()) == 2
