"""The published BI snapshot (`OKR_BI_SNAPSHOT`, docs/data_dictionary.md): the marts and dims, and
nothing else, copied into a separate DuckDB file that BI tools open read-only.

How it is written, and why readers and the publisher never wait on each other:

1. A NEW file is created next to the target (`<name>.tmp-<uuid>`), ATTACHed to the warehouse's
   DuckDB instance with `(STORAGE_VERSION 'v1.4.0')` so DuckDB 1.4 and later (BI drivers lag
   behind) can open it; without it DuckDB 2 writes a format older clients refuse ("version number
   69, but we can only read versions between 64 and 68"). Every table of the published schemas is
   recreated from the catalog's DDL (types and NOT NULL / keys kept) and copied in ONE read
   transaction, so the tables are one consistent state of the warehouse (its committed state: a
   caller's open transaction is not seen). Table and column comments are copied. CHECKPOINT,
   DETACH. The warehouse connection may be read-only: the new file is attached READ_WRITE.
2. The file is reopened on its own, in an instance that can see nothing but the snapshot and has
   external access disabled; views are recreated there from their SQL (`duckdb_views().sql`). A
   view that reads anything not in the snapshot (raw, staging, meta, files, macros) cannot bind
   and is left out (listed in `SnapshotReport.skipped_views`), so no view leaks unpublished data.
   `marts.snapshot_info` is written, CHECKPOINT, close: no `.wal` is left behind.
3. The file is fsynced, then `os.replace`d onto the target and the directory fsynced. The rename
   is atomic on POSIX: a new connection opens either the old complete file or the new complete
   one, never a half-written one. On any failure the temporary file is removed and the target is
   untouched.

Readers open with `read_only=True`, which takes a SHARED lock on the file they opened. The
publisher never writes the target file in place (it writes a new inode and renames it), so it
never takes a lock a reader holds, and never waits on one; a reader that has the old file open
keeps its inode and goes on reading the old snapshot until it reconnects.

Caveats:

- DuckDB's Python client caches database instances by path: while ANY connection to the snapshot
  path is open in a process, a new `duckdb.connect(path, read_only=True)` in that process joins
  the already open (old) file. A long-lived pool (duckdb-engine's default `QueuePool`, i.e.
  Superset) therefore keeps serving the snapshot it first opened. Readers that must see each new
  publication should not hold connections across queries (SQLAlchemy `NullPool`), or open an
  in-memory database and `ATTACH '<snapshot>' AS bi (READ_ONLY)`, which always opens the file the
  path names now.
- Windows: `os.replace` fails while another process has the target open (no POSIX unlink/rename
  semantics), so there the publish fails (cleanly, the old snapshot stays) while a BI client is
  connected. This module targets POSIX.
- A publisher killed mid-write (SIGKILL, power loss) can leave a `<name>.tmp-<uuid>` file next
  to the target; it is never read and can be deleted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from warehouse.sql import quote_ident, quote_literal
from warehouse.tables import Column, Table

log = logging.getLogger(__name__)

STORAGE_VERSION = "v1.4.0"
"""Oldest DuckDB release whose clients must be able to open the snapshot."""

FORBIDDEN_SCHEMAS = frozenset(
    {"raw", "staging", "meta", "main", "information_schema", "pg_catalog"}
)

SNAPSHOT_INFO = Table(
    "marts",
    "snapshot_info",
    "What this BI snapshot is: one row per published table or view, with when it was published, "
    "the as-of date of its numbers and the warehouse it was copied from.",
    (
        Column("snapshot_id", "VARCHAR", "Id of this publication; the same on every row.", False),
        Column("published_at", "TIMESTAMPTZ", "When the snapshot was written.", False),
        Column("as_of", "DATE", "Date the marts are measured as of, when the run knew it."),
        Column("source_warehouse", "VARCHAR", "Path of the warehouse file copied from.", False),
        Column("object_name", "VARCHAR", "Schema-qualified table or view published.", False),
        Column("object_type", "VARCHAR", "table or view.", False),
        Column("row_count", "BIGINT", "Rows copied (tables); null for views."),
        Column("duckdb_version", "VARCHAR", "DuckDB version that wrote the snapshot.", False),
        Column(
            "storage_version",
            "VARCHAR",
            "Storage format the file is written in: DuckDB releases from this one on open it.",
            False,
        ),
    ),
    primary_key=("object_name",),
)


@dataclass(frozen=True)
class SnapshotReport:
    path: Path
    snapshot_id: str
    published_at: datetime
    tables: tuple[str, ...]
    views: tuple[str, ...]
    rows: dict[str, int]
    bytes: int
    seconds: float
    skipped_views: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _CatalogObject:
    schema: str
    name: str
    sql: str
    comment: str | None

    @property
    def fqn(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class _Source:
    """The warehouse catalog being published, read in the copy's transaction."""

    database: str
    path: str
    tables: list[_CatalogObject]
    views: list[_CatalogObject]
    columns: dict[tuple[str, str], list[tuple[str, str | None]]]


def publish_snapshot(
    warehouse_con: duckdb.DuckDBPyConnection,
    snapshot_path: Path,
    schemas: tuple[str, ...] = ("marts",),
    *,
    as_of: date | None = None,
) -> SnapshotReport:
    """Write every table and view of `schemas` (committed state) to a new DuckDB file and
    atomically rename it onto `snapshot_path`. See the module docstring for the guarantees."""
    started = time.monotonic()
    bad = sorted(set(schemas) & FORBIDDEN_SCHEMAS)
    if bad or not schemas:
        raise ValueError(f"refusing to publish schemas {bad or schemas}: only marts and dims")
    snapshot_path = Path(snapshot_path).absolute()
    snapshot_path.parent.mkdir(parents=True, exist_ok=True)
    snapshot_id = uuid.uuid4().hex
    tmp = snapshot_path.with_name(f"{snapshot_path.name}.tmp-{snapshot_id}")
    published_at = datetime.now(UTC)
    try:
        source, rows = _copy_tables(warehouse_con, tmp, schemas, snapshot_id)
        views, skipped = _finish_snapshot(
            tmp,
            source,
            rows,
            info=dict(
                snapshot_id=snapshot_id,
                published_at=published_at,
                as_of=as_of,
                source_warehouse=source.path,
            ),
        )
        if _wal(tmp).exists():
            raise RuntimeError(f"{_wal(tmp)} left behind after CHECKPOINT: snapshot not flushed")
        _fsync(tmp)
        size = tmp.stat().st_size
        # A WAL next to the target could only come from someone opening a snapshot read-write;
        # it must never be replayed against the new file.
        _wal(snapshot_path).unlink(missing_ok=True)
        os.replace(tmp, snapshot_path)
        _fsync_dir(snapshot_path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        _wal(tmp).unlink(missing_ok=True)
        raise
    report = SnapshotReport(
        path=snapshot_path,
        snapshot_id=snapshot_id,
        published_at=published_at,
        tables=tuple(rows),
        views=tuple(views),
        rows=rows,
        bytes=size,
        seconds=time.monotonic() - started,
        skipped_views=skipped,
    )
    log.info(
        "published %s: %d tables, %d views, %d rows, %d bytes in %.2fs",
        snapshot_path,
        len(report.tables),
        len(report.views),
        sum(rows.values()),
        size,
        report.seconds,
    )
    return report


def _copy_tables(
    warehouse_con: duckdb.DuckDBPyConnection,
    tmp: Path,
    schemas: tuple[str, ...],
    snapshot_id: str,
) -> tuple[_Source, dict[str, int]]:
    """Phase 1, in the warehouse's instance (a cursor, so the caller's connection state is left
    alone): create `tmp` in the old storage version and copy the tables in one transaction, in
    which the catalog (tables, views, comments) is read too."""
    alias = f"okr_bi_snapshot_{snapshot_id}"
    cur = warehouse_con.cursor()
    attached = False
    try:
        source_db, source_path = cur.execute(
            "SELECT database_name, path FROM duckdb_databases() "
            "WHERE database_name = current_database()"
        ).fetchone()
        cur.execute(
            f"ATTACH {quote_literal(str(tmp))} AS {quote_ident(alias)} "
            f"(STORAGE_VERSION {quote_literal(STORAGE_VERSION)}, READ_WRITE)"
        )
        attached = True
        cur.execute("BEGIN TRANSACTION")
        source = _read_catalog(cur, source_db, source_path or "", schemas)
        if SNAPSHOT_INFO.fqn in {t.fqn for t in source.tables} | {v.fqn for v in source.views}:
            raise ValueError(f"{SNAPSHOT_INFO.fqn} is reserved for the snapshot's own metadata")
        cur.execute(f"USE {quote_ident(alias)}")
        rows: dict[str, int] = {}
        for schema in sorted(set(schemas) | {SNAPSHOT_INFO.schema}):
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        for table in source.tables:
            rows[table.fqn] = _copy_table(cur, source_db, alias, table, source.columns)
        cur.execute("COMMIT")
        cur.execute(f"USE {quote_ident(source_db)}")
        cur.execute(f"CHECKPOINT {quote_ident(alias)}")
        cur.execute(f"DETACH {quote_ident(alias)}")
        attached = False
        return source, rows
    finally:
        if attached:
            with contextlib.suppress(duckdb.Error):
                cur.execute("ROLLBACK")
            with contextlib.suppress(duckdb.Error):
                cur.execute(f"USE {quote_ident(source_db)}")
            with contextlib.suppress(duckdb.Error):
                cur.execute(f"DETACH {quote_ident(alias)}")
        cur.close()


def _copy_table(
    cur: duckdb.DuckDBPyConnection,
    source_db: str,
    alias: str,
    table: _CatalogObject,
    columns: dict[tuple[str, str], list[tuple[str, str | None]]],
) -> int:
    """Recreate one table from its catalog DDL in the snapshot (the current database) and copy
    its rows and comments; returns the rows copied."""
    cur.execute(table.sql)
    target = f"{quote_ident(alias)}.{quote_ident(table.schema)}.{quote_ident(table.name)}"
    source = f"{quote_ident(source_db)}.{quote_ident(table.schema)}.{quote_ident(table.name)}"
    (copied,) = cur.execute(f"INSERT INTO {target} SELECT * FROM {source}").fetchone()
    if table.comment is not None:
        cur.execute(f"COMMENT ON TABLE {target} IS {quote_literal(table.comment)}")
    for column, comment in columns.get((table.schema, table.name), []):
        cur.execute(f"COMMENT ON COLUMN {target}.{quote_ident(column)} IS {quote_literal(comment)}")
    return int(copied)


def _finish_snapshot(
    tmp: Path,
    source: _Source,
    rows: dict[str, int],
    info: dict,
) -> tuple[list[str], dict[str, str]]:
    """Phase 2, in an instance holding only the snapshot: views, then `snapshot_info`."""
    con = duckdb.connect(str(tmp), config={"enable_external_access": False})
    try:
        created, skipped = _create_views(con, source.views, source.columns)
        SNAPSHOT_INFO.create(con)
        version = con.execute("SELECT version()").fetchone()[0]
        objects = [(name, "table", n) for name, n in rows.items()]
        objects += [(name, "view", None) for name in created]
        con.executemany(
            f"INSERT INTO {SNAPSHOT_INFO.fqn} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [
                    info["snapshot_id"],
                    info["published_at"],
                    info["as_of"],
                    info["source_warehouse"],
                    name,
                    kind,
                    count,
                    version,
                    STORAGE_VERSION,
                ]
                for name, kind, count in objects
            ],
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return created, skipped


def _create_views(
    con: duckdb.DuckDBPyConnection,
    views: list[_CatalogObject],
    columns: dict[tuple[str, str], list[tuple[str, str | None]]],
) -> tuple[list[str], dict[str, str]]:
    """Create the views that bind against the snapshot alone, in dependency order (retrying the
    ones that failed while any succeeds); the rest are skipped with the binder's reason."""
    pending = {view.fqn: (view.schema, view.name, view.sql, view.comment) for view in views}
    created: list[str] = []
    errors: dict[str, str] = {}
    progress = True
    while pending and progress:
        progress = False
        for fqn, (schema, name, sql, comment) in list(pending.items()):
            try:
                con.execute(sql)
            except duckdb.Error as error:
                errors[fqn] = str(error).splitlines()[0]
                continue
            target = f"{quote_ident(schema)}.{quote_ident(name)}"
            if comment is not None:
                con.execute(f"COMMENT ON VIEW {target} IS {quote_literal(comment)}")
            for column, text in columns.get((schema, name), []):
                con.execute(
                    f"COMMENT ON COLUMN {target}.{quote_ident(column)} IS {quote_literal(text)}"
                )
            created.append(fqn)
            errors.pop(fqn, None)
            del pending[fqn]
            progress = True
    skipped = {fqn: errors[fqn] for fqn in pending}
    for fqn, reason in skipped.items():
        log.warning("view %s not published: it reads outside the snapshot (%s)", fqn, reason)
    return created, skipped


def _read_catalog(
    cur: duckdb.DuckDBPyConnection, database: str, path: str, schemas: tuple[str, ...]
) -> _Source:
    objects = {}
    for kind in ("table", "view"):
        rows = cur.execute(
            f"SELECT schema_name, {kind}_name, sql, comment FROM duckdb_{kind}s() "
            "WHERE database_name = ? AND schema_name IN (SELECT unnest(?)) "
            f"AND NOT internal AND NOT temporary ORDER BY schema_name, {kind}_name",
            [database, list(schemas)],
        ).fetchall()
        objects[kind] = [_CatalogObject(*row) for row in rows]
    return _Source(
        database=database,
        path=path,
        tables=objects["table"],
        views=objects["view"],
        columns=_column_comments(cur, database, schemas),
    )


def _column_comments(
    cur: duckdb.DuckDBPyConnection, database: str, schemas: tuple[str, ...]
) -> dict[tuple[str, str], list[tuple[str, str | None]]]:
    rows = cur.execute(
        "SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name IN (SELECT unnest(?)) AND comment IS NOT NULL "
        "ORDER BY schema_name, table_name, column_index",
        [database, list(schemas)],
    ).fetchall()
    comments: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
    for schema, table, column, comment in rows:
        comments.setdefault((schema, table), []).append((column, comment))
    return comments


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make the rename durable (POSIX); directories cannot be opened on Windows."""
    with contextlib.suppress(OSError):
        _fsync(path)
