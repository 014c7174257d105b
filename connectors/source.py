"""What the pipeline needs to know about a file source, in one descriptor per source: the folder
it reads, how it loads it, the raw tables it lands and the staging tables built from them. The
pipeline builds the raw and staging assets, their checks and the file sensor's selection from
these descriptors (`connectors.registry.FILE_SOURCES`), so a new file source is one package with
a descriptor plus one registry line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from connectors.files import FileLoadReport
from warehouse.staging import RawInput
from warehouse.tables import Table

Connection = duckdb.DuckDBPyConnection


@dataclass(frozen=True, kw_only=True)
class RawTable:
    """A raw table a source lands, as an asset of the graph."""

    table: Table
    kinds: frozenset[str]
    """Dagster kinds besides duckdb: the files' format (csv, json)."""
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
