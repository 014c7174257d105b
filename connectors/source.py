"""What the pipeline needs to know about a source, in one descriptor per source: where it reads
(a folder of files, or an API), how it loads, the raw tables it lands and the staging tables
built from them. The pipeline builds the raw and staging assets, their checks and the file
sensor's selection from these descriptors (`connectors.registry.SOURCES`), so a new source is one
package with a descriptor plus one registry line."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from connectors.files import FileLoadReport
from warehouse.staging import RawInput
from warehouse.tables import Table

Connection = duckdb.DuckDBPyConnection
DEFAULT_MAX_AGE_DAYS = 2
"""Age in days of a source's newest data past which its freshness check warns, unless its
descriptor or OKR_SOURCE_MAX_AGE_DAYS says otherwise."""


@dataclass(frozen=True, kw_only=True)
class RawTable:
    """A raw table a source lands, as an asset of the graph."""

    table: Table
    kinds: frozenset[str]
    """Dagster kinds besides duckdb: the files' format (csv, json), or api."""
    description: str
    metric_source: str
    """The metric source (`source:` in metrics.yaml) whose freshness this table shows."""
    time_column: str
    """The column the freshness check dates its newest data by."""
    file_kind: str | None = None
    """Which of the source's files feed this table, when it lands several tables."""


@dataclass(frozen=True, kw_only=True)
class StagedTable:
    """A staging table built per fiscal quarter from one raw table."""

    table: Table
    raw: Table
    stage: Callable[[Connection, date, date, str], int]
    """(con, quarter start, quarter end, time zone) -> rows: replaces that quarter's partition."""
    raw_days: Callable[[str], RawInput]
    """The raw rows by the day staging files them under, given the time zone (fingerprints)."""
    future_column: str
    """The column no row may have after the real date."""
    after_write: Callable[[Connection], object] | None = None


@dataclass(frozen=True, kw_only=True)
class FileSource:
    name: str
    """The source family: `source` in raw.loaded_files and raw.rejected_rows."""
    folder: str
    """Its folder under OKR_DATA_DIR."""
    folder_description: str
    load: Callable[..., FileLoadReport]
    """(con, folder, strict=...) -> report: loads new or changed files into the raw tables."""
    file_kind: Callable[[Path], str | None]
    """The kind of a file in the folder the source reads, None for a file it ignores."""
    file_dates: Callable[[Path, str, str], tuple[date, date] | None]
    """(path, kind, time zone) -> the first and last day the file has data for, or None when
    that cannot be told (the file sensor then refreshes the running quarter only)."""
    raw: tuple[RawTable, ...]
    staged: tuple[StagedTable, ...]
    asset_name: str | None = None
    """The raw step's name when it lands several tables (one multi-asset)."""
    max_age_days: int = DEFAULT_MAX_AGE_DAYS
    """Age of its newest data past which the freshness check warns (OKR_SOURCE_MAX_AGE_DAYS
    overrides it)."""


@dataclass(frozen=True, kw_only=True)
class RefreshedTable:
    """A staging table rebuilt whole from its raw table on every run: an API source's records
    change after the fact, so per-quarter partitions would go stale."""

    table: Table
    raw: Table
    build: Callable[[Connection], pa.Table]
    """The table's rows, typed, from its raw table."""
    future_column: str
    """The column no row may have after the real date."""


class SyncReport(Protocol):
    """What an API source's sync reports: a line for the log and metadata per raw table."""

    @property
    def summary(self) -> str: ...

    def metadata(self, table: Table) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class ApiSource:
    """A source read from an HTTP API, synced incrementally into its raw tables. Its assets exist
    only when its base URL is set (`base_url_env`); the token is read at run time, so it never
    shows in the UI, run config or logs."""

    name: str
    """The source family (`OKR_SOURCE_MAX_AGE_DAYS` names it)."""
    description: str
    base_url_env: str
    token_env: str
    client: Callable[[str, str, float], AbstractContextManager[Any]]
    """(base URL, token, read timeout in seconds) -> a client, closed after the sync."""
    sync: Callable[[Connection, Any], SyncReport]
    """(con, client) -> report: upserts new and changed records into the raw tables."""
    raw: tuple[RawTable, ...]
    staged: tuple[RefreshedTable, ...]
    max_age_days: int = DEFAULT_MAX_AGE_DAYS
    """As for a FileSource."""


Source = FileSource | ApiSource
