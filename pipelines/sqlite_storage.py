"""The local instance's storage: Dagster's SQLite storage (its own database files, in its own
folders, so Dagster's tools read them as ever) with the event log's connections kept open.

Dagster's SQLite storages open a new engine and connection for every statement they run and
commit with a full fsync: a run writes hundreds of events (steps, materializations per
partition, check results), two or three connections each, so a backfill spent a third of its
main thread there (issue 15). Here the event log keeps one connection per database file and
process (used under the storage's own lock, as Dagster's is), and commits sync the write-ahead
log the way SQLite's WAL mode intends (`synchronous=NORMAL`: a commit survives the process being
killed; only a power cut can lose the last events, never corrupt the file). The run storage (a
few statements per run, used from several threads at once in the daemon) stays Dagster's own.
The warehouse itself is DuckDB's and is not affected."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as db
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy.pool import StaticPool


def _kept_engine(conn_string: str) -> db.Engine:
    """One connection reused for every transaction; usable from any thread (the storages
    serialize their own use)."""
    engine = db.create_engine(
        conn_string,
        poolclass=StaticPool,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
    )

    @db.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


class KeptSqliteEventLogStorage(SqliteEventLogStorage):
    """Event logs in SQLite (a file per run plus the cross-run index), connections kept open:
    the index's for the process, a run's while it is the latest run written."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: dict[str, db.Engine] = {}
        self._tables_found: set[str] = set()
        super().__init__(base_dir, inst_data)

    def has_table(self, table_name: str) -> bool:
        """Whether the index has the table, remembered once it does (migrations add tables,
        nothing drops them; `wipe` empties them): Dagster asks before storing every asset
        check event, and each question opened an engine of its own."""
        if table_name in self._tables_found:
            return True
        found = super().has_table(table_name)
        if found:
            self._tables_found.add(table_name)
        return found

    @contextmanager
    def _connect(self, shard: str) -> Iterator[db.Connection]:
        with self._db_lock:
            engine = self._engines.get(shard)
            if engine is None:
                for other in [s for s in self._engines if s != INDEX_SHARD_NAME]:
                    self._engines.pop(other).dispose()
                engine = _kept_engine(self.conn_string_for_shard(shard))
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
                self._engines[shard] = engine
            with engine.connect() as conn, conn.begin():
                yield conn

    def delete_events(self, run_id: str) -> None:
        with self._db_lock:
            engine = self._engines.pop(run_id, None)
        if engine is not None:
            engine.dispose()
        super().delete_events(run_id)

    def dispose(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
        super().dispose()


class OkrSqliteStorage(DagsterSqliteStorage):
    """Dagster's default local storage (`base_dir`/history and /schedules, as a dagster.yaml
    without a `storage` key has) with the kept-connection event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self.base_dir = base_dir
        self._run_storage = SqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = KeptSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData, config_value: dict[str, str]
    ) -> OkrSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
