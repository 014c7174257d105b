"""What the file sources share: one load per file version (SHA-256), replaced in one
transaction with its rejects and registry row, and SQL that splits physical lines into
RFC 4180 fields so every row keeps its exact line number."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from transforms.schema import RAW_LOADED_FILES, RAW_REJECTED_ROWS, Table
from transforms.warehouse import insertion_order, transaction

NUMBER_PATTERN = r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?"
# A "delimiter" no text file contains, so read_csv yields each physical line as one column.
NO_SPLIT = "\x1e\x1f\x1e\x1f"


@dataclass
class FileLoadReport:
    """What one load of a source folder did."""

    files_seen: int = 0
    files_loaded: list[str] = field(default_factory=list)  # loaded for the first time or replaced
    files_skipped: list[str] = field(default_factory=list)  # unchanged since their last load
    rows_loaded: int = 0
    rows_rejected: int = 0
    warnings: list[str] = field(default_factory=list)  # e.g. damaged gzip files, partly loaded
    errors: list[str] = field(default_factory=list)  # files that could not be read at all


class FileSourceError(Exception):
    """A file (or the folder) cannot be read at all; the message names it and says why."""

    def __init__(self, message: str, report: FileLoadReport | None = None) -> None:
        super().__init__(message)
        self.report = report


def load_files(
    files: list[tuple[str, Path]],
    load_one: Callable[[Path, str], tuple[int, int, str | None] | None],
    error: type[FileSourceError],
    description: str,
) -> FileLoadReport:
    """Load each (relative path, path) with `load_one` (None: unchanged; else rows loaded,
    rows rejected and an optional warning). A file that cannot be read at all is collected and,
    once every other file has loaded, reported in one `error` naming each."""
    report = FileLoadReport(files_seen=len(files))
    for rel, path in files:
        try:
            result = load_one(path, rel)
        except error as exc:
            report.errors.append(str(exc))
            continue
        if result is None:
            report.files_skipped.append(rel)
            continue
        loaded, rejected, warning = result
        report.files_loaded.append(rel)
        report.rows_loaded += loaded
        report.rows_rejected += rejected
        if warning:
            report.warnings.append(warning)
    if report.errors:
        listing = "\n".join(f"- {problem}" for problem in report.errors)
        raise error(
            f"{len(report.errors)} of {len(files)} {description} could not be read "
            f"(the other files loaded):\n{listing}",
            report,
        )
    return report


@dataclass(frozen=True)
class FileVersion:
    source: str
    rel: str
    digest: str
    size: int
    batch_id: str
    loaded_at: datetime


def new_version(
    con: duckdb.DuckDBPyConnection, source: str, path: Path, rel: str, now: datetime | None
) -> FileVersion | None:
    """The version of `path` to load, or None when exactly this content was loaded already."""
    digest, size = sha256(path)
    previous = con.execute(
        f"SELECT content_hash FROM {RAW_LOADED_FILES.fqn} WHERE source = ? AND source_ref = ?",
        [source, rel],
    ).fetchall()
    if previous and previous[0][0] == digest:
        return None
    loaded_at = now or datetime.now(UTC)
    if loaded_at.tzinfo is None:
        loaded_at = loaded_at.replace(tzinfo=UTC)
    batch_id = f"{source}-{digest[:12]}-{uuid.uuid4().hex[:8]}"
    return FileVersion(source, rel, digest, size, batch_id, loaded_at)


def commit_version(
    con: duckdb.DuckDBPyConnection,
    version: FileVersion,
    target: Table,
    rows_table: str,
    columns: str,
    values: str,
    params: list[object] | None = None,
) -> tuple[int, int]:
    """Replace everything the file loaded before (rows, rejects, registry row) with the parsed
    `rows_table` (`line_no`, `raw_record`, `field`, `reason` and the values), in one
    transaction. Rows with a `reason` are rejects. Returns (loaded, rejected)."""
    [(loaded, rejected)] = con.execute(
        f"SELECT count(*) FILTER (WHERE reason IS NULL), "
        f"count(*) FILTER (WHERE reason IS NOT NULL) FROM {rows_table}"
    ).fetchall()
    key = [version.source, version.rel]
    # Rows carry their line number; set outside the transaction, which a failure aborts.
    with insertion_order(con, preserve=False), transaction(con):
        for table, prefix in ((target, "_"), (RAW_REJECTED_ROWS, ""), (RAW_LOADED_FILES, "")):
            con.execute(
                f"DELETE FROM {table.fqn} WHERE {prefix}source = ? AND {prefix}source_ref = ?",
                key,
            )
        con.execute(
            f"INSERT INTO {target.fqn} ({columns}, _source, _source_ref, _source_row, "
            f"_batch_id, _loaded_at) SELECT {values}, ?, ?, line_no, ?, ? "
            f"FROM {rows_table} WHERE reason IS NULL",
            [*(params or []), *key, version.batch_id, version.loaded_at],
        )
        con.execute(
            f"INSERT INTO {RAW_REJECTED_ROWS.fqn} (source, source_ref, batch_id, location, "
            "field, reason, raw_record, rejected_at) "
            f"SELECT ?, ?, ?, ? || ':' || line_no, field, reason, raw_record, ? "
            f"FROM {rows_table} WHERE reason IS NOT NULL",
            [*key, version.batch_id, version.rel, version.loaded_at],
        )
        con.execute(
            f"INSERT INTO {RAW_LOADED_FILES.fqn} (source, source_ref, content_hash, "
            "size_bytes, batch_id, rows_loaded, rows_rejected, loaded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                *key,
                version.digest,
                version.size,
                version.batch_id,
                loaded,
                rejected,
                version.loaded_at,
            ],
        )
    return loaded, rejected


def sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def trim(expr: str) -> str:
    return f"trim({expr}, ' ' || chr(9) || chr(13))"


def _field_pattern(delim: str) -> str:
    return f'"(?:[^"]|"")*"|[^"{delim}]*'


def well_quoted(delim: str) -> str:
    """True when the line (prefixed by a delimiter) is a sequence of well-formed fields."""
    return f"regexp_full_match('{delim}' || text, '(?:{delim}(?:{_field_pattern(delim)}))+')"


def fields(delim: str) -> str:
    """The line's fields, unquoted. Prefixing a delimiter makes every match non-empty."""
    split = f"regexp_extract_all('{delim}' || text, '{delim}({_field_pattern(delim)})', 1)"
    unquote = """CASE WHEN starts_with(f, '"') THEN replace(substr(f, 2, length(f) - 2), '""', '"')
                 ELSE f END"""
    return f"list_transform({split}, lambda f: {unquote})"


def bad_number(expr: str) -> str:
    return (
        f"NOT coalesce(regexp_full_match({expr}, '{NUMBER_PATTERN}') "
        f"AND isfinite(TRY_CAST({expr} AS DOUBLE)), false)"
    )
