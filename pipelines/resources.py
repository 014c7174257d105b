"""Resources: the warehouse connection and the OKR config, swappable in tests."""

from __future__ import annotations

import re
import time
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field, PrivateAttr

from transforms.config import OkrConfig, load_config

WAREHOUSE_POOL = "duckdb_warehouse"
"""Every step that opens the warehouse runs in this pool. DuckDB lets one process hold a file
read-write and then no other process may open it, so dagster.yaml limits the pool to 1 slot."""


class WarehouseResource(dg.ConfigurableResource):
    """The pipeline's DuckDB file. One connection per step; writes go through
    `warehouse.writes`, each partition replaced in one transaction."""

    path: str = Field(description="DuckDB file of the warehouse (OKR_WAREHOUSE).")
    memory_limit: str = Field(
        "1GB",
        description="DuckDB memory_limit (OKR_DUCKDB_MEMORY_LIMIT); larger data spills to disk.",
    )
    threads: int = Field(2, description="DuckDB worker threads.")
    allowed_directories: list[str] | None = Field(
        None,
        description="The only folders SQL may read or write files in (the input root, the BI "
        "snapshot's folder); none other, and no network. Unset: DuckDB's defaults.",
    )
    lock_timeout_seconds: float = Field(
        180.0,
        description="How long a step waits for another process (a notebook, the duckdb CLI, "
        "another run) to release the warehouse file before it fails (OKR_WAREHOUSE_LOCK_TIMEOUT).",
    )

    _instance: dg.DagsterInstance | None = PrivateAttr(None)
    _run_id: str | None = PrivateAttr(None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        run = context.run
        self._instance, self._run_id = context.instance, run.run_id if run else None

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = open_when_free(
            lambda: duckdb.connect(
                self.path, config={"memory_limit": self.memory_limit, "threads": self.threads}
            ),
            self.path,
            self.lock_timeout_seconds,
            dg.get_dagster_logger().warning,
        )
        try:
            self._check_the_run_goes_on()
        except BaseException:
            con.close()
            raise
        con.execute("SET enable_progress_bar = false")  # step logs get events, not a bar
        if self.allowed_directories is not None:
            # Defence in depth: even SQL built wrongly from config or data text cannot read
            # other files (read_text('/etc/passwd')) or reach the network. Not undoable later.
            folders = [str(Path(d).resolve()) + "/" for d in self.allowed_directories]
            con.execute("SET allowed_directories = ?", [folders])
            con.execute("SET enable_external_access = false")
        try:
            yield con
        except RuntimeError as exc:
            if str(exc) != _QUERY_INTERRUPTED:
                raise
            # DuckDB turns Ctrl-C or SIGTERM during a query into this plain error, losing the
            # interrupt; raised as one again, Dagster stops the run instead of going on.
            raise KeyboardInterrupt from exc
        finally:
            con.close()

    def _check_the_run_goes_on(self) -> None:
        """A step whose run has already ended does not write. When a run's worker process is
        killed, the step processes it had started live on; the run is marked failed and its
        pool slot given to the next run, so such a step, still waiting for the file, must not
        write once it gets it."""
        if self._instance is None or self._run_id is None:
            return  # used outside a run (tests, scripts)
        run = self._instance.get_run_by_id(self._run_id)
        if run is not None and run.is_finished:
            raise RunEndedError(
                f"run {self._run_id} has already ended ({run.status.value}; its worker process "
                "died or it was stopped) and its hold on the warehouse was released: this step "
                "of it does not write"
            )


class RunEndedError(Exception):
    """The step's run ended (its worker died) while the step waited for the warehouse."""


_QUERY_INTERRUPTED = "Query interrupted"


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")


class WarehouseLockedError(Exception):
    """The warehouse file stayed held by another process for the whole wait."""


def open_when_free(
    connect: Callable[[], duckdb.DuckDBPyConnection],
    path: str,
    timeout: float,
    say: Callable[[str], object],
) -> duckdb.DuckDBPyConnection:
    """`connect()`, retried with backoff (0.5 s doubling to 10 s) while another process holds
    the file's lock, saying once who holds it; WarehouseLockedError naming the holder and what
    to close when it is still held after `timeout` seconds."""
    deadline, delay, said = time.monotonic() + timeout, 0.5, None
    while True:
        try:
            return connect()
        except duckdb.IOException as exc:
            holder = _LOCK_HOLDER.search(str(exc))
            if holder is None:
                raise
            who = f"{Path(holder[1]).name} (PID {holder[2]})"
            if time.monotonic() + delay > deadline:
                raise WarehouseLockedError(
                    f"the warehouse {path} is still held by {who} after {timeout:g} s: close "
                    "that process's connection (a notebook, the duckdb CLI, another okr run) "
                    "and run again, or raise OKR_WAREHOUSE_LOCK_TIMEOUT"
                ) from None
            if said != who:
                say(f"the warehouse {path} is held by {who}; waiting up to {timeout:g} s for it")
                said = who
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


class OkrConfigResource(dg.ConfigurableResource):
    """The config folder (OKR_CONFIG_DIR) and the date treated as today (OKR_AS_OF)."""

    config_dir: str = Field(description="Folder holding metrics.yaml and okrs.yaml.")
    as_of: str | None = Field(None, description="ISO date treated as today; unset means today.")

    def load(self) -> OkrConfig:
        return load_config(self.config_dir)

    def today(self, config: OkrConfig) -> date:
        if self.as_of:
            return date.fromisoformat(self.as_of)
        return datetime.now(zoneinfo.ZoneInfo(config.settings.timezone)).date()


class SourceFoldersResource(dg.ConfigurableResource):
    """The input root (OKR_DATA_DIR): `csv/` is the drop folder, `analytics/` the exports."""

    data_dir: str = Field(description="Input root folder.")
    strict_files: bool = Field(
        False,
        description="A file that cannot be read fails the raw step once the other files have "
        "loaded, instead of only being quarantined (OKR_STRICT_FILES).",
    )

    def folder(self, name: str) -> Path:
        """A file source's folder under the data root."""
        return Path(self.data_dir) / name


class BiOutputsResource(dg.ConfigurableResource):
    """Where the published files go: the snapshot (OKR_BI_SNAPSHOT) and the page beside it."""

    snapshot_path: str = Field(description="The published DuckDB file BI tools open.")


class ApiResource(dg.ConfigurableResource):
    """An API source's endpoint (`connectors.source.ApiSource`). Built from `EnvVar`s, so the
    token is resolved at run time and never shows in the UI, the run config or the logs."""

    base_url: str = Field(description="API root, e.g. https://api.hubapi.com (CRM_API_BASE_URL).")
    token: str = Field(description="Bearer token (CRM_API_TOKEN).")
    timeout_seconds: float = Field(30.0, description="Read timeout per request.")
