"""What the file sources share: the folder listing (a missing folder is no files), one load per
file version (SHA-256), replaced in one transaction with its rejects and registry row, the
quarantine of files that cannot be read at all, and SQL that splits physical lines into RFC 4180
fields so every row keeps its exact line number.

A quarantined file has one `raw.rejected_rows` row whose `location` is the file itself (no
line) and whose `batch_id`, like every batch id, starts with the source and the first 12 hex
digits of the file's SHA-256: an unchanged quarantined file is recognised and skipped, a changed
one is read again and, once readable, its normal load replaces the quarantine row; a removed one
is no longer quarantined. A file that turns unreadable keeps the rows its last readable version
loaded.

Nothing outside the folder is read: a file (or a link to a folder) whose real path lies outside
the folder's real path -- a symbolic link out of it -- is quarantined by name without being
opened; links to folders are not followed. A file is hashed before it is parsed and again once
its rows are parsed, before they are committed: if the two hashes differ the file changed while
it was read, and its load starts over (up to `READ_ATTEMPTS` times, then it is quarantined as
"kept changing"), so the hash recorded is always that of the rows loaded. Text quoted from a
file into a reason or message is a short, escaped excerpt (`excerpt`, `sql_excerpt`)."""

from __future__ import annotations

import gzip
import hashlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from connectors.tables import RAW_LOADED_FILES, RAW_REJECTED_ROWS
from warehouse.tables import Table
from warehouse.writes import insertion_order, transaction

NUMBER_PATTERN = r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?"
# A "delimiter" no text file contains, so read_csv yields each physical line as one column.
NO_SPLIT = "\x1e\x1f\x1e\x1f"
STRICT_FILES_ENV = "OKR_STRICT_FILES"
READ_ATTEMPTS = 3  # loads of a file that changes while it is read, before it is quarantined
EXCERPT_CHARS = 80  # the most characters of file text a reason or message quotes
MAX_COLUMNS = 1_000  # header columns a file may have; a wider file is quarantined
MAX_LINE_CHARS = 1 << 20  # characters a line may have; a longer line is rejected on its own
MAX_LINE_BYTES = 64 << 20  # bytes DuckDB reads as one line; a file with a longer one is quarantined
RECORD_CHARS = 1_000  # characters of a too-long line kept in raw.rejected_rows.raw_record

MAX_ABS_VALUE = 1e15
"""Largest magnitude a loaded number may have (docs/sources.md): far above any business metric,
small enough that whole numbers up to it are exact in a DOUBLE (2^53 ~ 9.007e15) and that no
sum of fewer than 1e293 of them can overflow to inf."""
MIN_NORMAL = 2.2250738585072014e-308
"""Smallest positive normal DOUBLE: a nonzero literal below it in magnitude (1e-400, 1e-310)
rounds to 0 or to a subnormal that has lost precision, so it is rejected, not loaded as 0."""
FIRST_DATE, LAST_DATE = "1900-01-01", "2199-12-31"
"""The plausible range of a date (and of a timestamp's instant, in UTC) (docs/sources.md)."""


@dataclass
class FileLoadReport:
    """What one load of a source folder did."""

    folder: str = ""
    folder_status: str = "present"  # or "missing": no such folder, so no files
    files_seen: int = 0
    files_loaded: list[str] = field(default_factory=list)  # loaded for the first time or replaced
    files_skipped: list[str] = field(default_factory=list)  # unchanged since their last load
    # Files that cannot be read at all -> why; also those quarantined earlier and still unchanged.
    files_quarantined: dict[str, str] = field(default_factory=dict)
    rows_loaded: int = 0
    rows_rejected: int = 0
    warnings: list[str] = field(default_factory=list)  # e.g. damaged gzip files, partly loaded


class FileChangedWhileRead(Exception):  # noqa: N818 -- an event, not a failure: the load retries
    """The file's content differs from the version being loaded: it changed while it was read."""


class FileSourceError(Exception):
    """A file (or the folder) cannot be read at all; the message names it and says why."""

    def __init__(self, message: str, report: FileLoadReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class FileVersion:
    """One version (content) of a file to load, and the batch that loads or quarantines it."""

    source: str
    rel: str
    digest: str
    size: int
    batch_id: str
    loaded_at: datetime
    path: Path | None = None  # the file hashed; `commit_version` checks it still has `digest`


def load_files(
    con: duckdb.DuckDBPyConnection,
    source: str,
    folder: Path,
    wanted: Callable[[Path], bool],
    load_one: Callable[[Path, FileVersion], tuple[int, int, str | None]],
    error: type[FileSourceError],
    description: str,
    *,
    now: datetime | None = None,
    strict: bool = False,
) -> FileLoadReport:
    """Load each new or changed file of `folder` that is `wanted` with `load_one` (rows loaded,
    rows rejected and an optional warning). A file it fails on with `error` is quarantined and
    the other files still load; with `strict`, quarantined files then fail the load in one
    `error` naming each (what loaded stays loaded). A quarantined file that was removed is no
    longer quarantined: removing it is as good a fix as repairing it."""
    report = FileLoadReport(folder=str(folder))
    files = _list_folder(folder, wanted, error, description)
    if files is None:
        report.folder_status = "missing"
        files = []
    report.files_seen = len(files)
    quarantined = {
        rel: (batch_id, reason)
        for rel, batch_id, reason in con.execute(
            f"SELECT source_ref, batch_id, reason FROM {RAW_REJECTED_ROWS.fqn} "
            "WHERE source = ? AND location = source_ref",
            [source],
        ).fetchall()
    }
    for rel in sorted(quarantined.keys() - {rel for rel, _, _ in files}):
        _lift_quarantine(con, source, rel)  # removed: no file left to fix
    root = folder.resolve()
    for rel, path, refusal in files:
        _load_path(
            con,
            source,
            rel,
            path,
            refusal,
            root,
            description,
            quarantined,
            load_one,
            error,
            now,
            report,
        )
    if strict and report.files_quarantined:
        listing = "\n".join(f"- {rel}: {why}" for rel, why in report.files_quarantined.items())
        raise error(
            f"{len(report.files_quarantined)} of {len(files)} files in the {description} "
            f"{folder} cannot be read and {STRICT_FILES_ENV} is set (the other files loaded; "
            f"fix or remove these, or unset {STRICT_FILES_ENV} to load around them):\n{listing}",
            report,
        )
    return report


def _load_path(
    con: duckdb.DuckDBPyConnection,
    source: str,
    rel: str,
    path: Path,
    refusal: str | None,
    root: Path,
    description: str,
    quarantined: dict[str, tuple[str, str]],
    load_one: Callable[[Path, FileVersion], tuple[int, int, str | None]],
    error: type[FileSourceError],
    now: datetime | None,
    report: FileLoadReport,
) -> None:
    """Load, skip or quarantine one listed file, starting over when it changed while read."""
    for _ in range(READ_ATTEMPTS):
        # Checked again at each attempt: the file may have been replaced by a link since listed.
        refusal = refusal or _outside(path, root, description)
        if refusal:
            if quarantined.get(rel, ("", ""))[1] != refusal:  # an unchanged row stays as it is
                _quarantine(con, _unread(source, rel, "link", now), refusal)
            report.files_quarantined[rel] = refusal
            return
        try:
            version = new_version(con, source, path, rel, now)
        except OSError as exc:  # cannot even be hashed: no read permission, gone since listed
            reason = (
                f"cannot be opened ({exc.strerror or exc}); give the user running the pipeline "
                "read access to it"
            )
            _quarantine(con, _unread(source, rel, "unopened", now), reason)
            report.files_quarantined[rel] = reason
            return
        if version is None:
            if rel in quarantined:  # back to the content loaded last: no longer quarantined
                _lift_quarantine(con, source, rel)
            report.files_skipped.append(rel)
            return
        batch_id, reason = quarantined.get(rel, ("", ""))
        if batch_id.startswith(_batch_prefix(source, version.digest)):
            report.files_quarantined[rel] = reason
            return
        try:
            loaded, rejected, warning = load_one(path, version)
        except FileChangedWhileRead:
            continue
        except error as exc:
            if not _unchanged(version):  # judged on bytes that are no longer the file
                continue
            reason = str(exc).removeprefix(f"{rel}: ")
            _quarantine(con, version, reason)
            report.files_quarantined[rel] = reason
            return
        report.files_loaded.append(rel)
        report.rows_loaded += loaded
        report.rows_rejected += rejected
        if warning:
            report.warnings.append(warning)
        return
    reason = (
        f"kept changing while it was read ({READ_ATTEMPTS} attempts), so no version of it could "
        "be loaded whole; write the file elsewhere and move it into the folder once complete "
        "(a rename is atomic), then run again"
    )
    # No content hash in the batch id: once the file settles, whatever its content, it loads.
    _quarantine(con, _unread(source, rel, "changing", now), reason)
    report.files_quarantined[rel] = reason


def _unread(source: str, rel: str, why: str, now: datetime | None) -> FileVersion:
    """The version of a file quarantined without a hash of its content."""
    return FileVersion(source, rel, "", 0, f"{source}-{why}-{uuid.uuid4().hex[:8]}", _when(now))


def _outside(path: Path, root: Path, description: str) -> str | None:
    """Why `path` is not read when its real path (links followed) lies outside `root`, the
    folder's real path; None when it is inside. Nothing is opened to tell."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a link loop
        real = None
    if real is not None and real.is_relative_to(root):
        return None
    what = "folder" if path.is_dir() else "file"
    return (
        f"is a symbolic link to a {what} outside the {description}, which the pipeline does not "
        f"read; copy the {what} into the folder instead of linking to it"
    )


def _unchanged(version: FileVersion) -> bool:
    """Whether the file still has the content of `version` (hashed again)."""
    if version.path is None:
        return True
    try:
        return sha256(version.path)[0] == version.digest
    except OSError:  # gone or unreadable since: not the version that was read
        return False


def _list_folder(
    folder: Path, wanted: Callable[[Path], bool], error: type[FileSourceError], description: str
) -> list[tuple[str, Path, str | None]] | None:
    """The wanted files under `folder` (recursively) by relative path, sorted, each with why it
    is refused unread (None: it may be read); None when the folder does not exist, which means
    no files for that source. Links to folders are not followed: one that points outside the
    folder is listed, refused, under its own name; one inside adds nothing that is not found at
    its real place. A file whose real path is outside the folder is refused."""
    try:
        if not folder.exists():
            return None
        if not folder.is_dir():
            raise error(
                f"the {description} {folder} is a file, not a folder; move the file away (the "
                "folder may be absent, which means no files) or point OKR_DATA_DIR elsewhere"
            )
        next(folder.iterdir(), None)  # an unreadable folder fails here, not silently in the walk
        root = folder.resolve()
        listed: list[tuple[str, Path, str | None]] = []
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
            base = Path(dirpath)
            for name in dirnames:  # links to folders are listed here but not walked into
                path = base / name
                if path.is_symlink() and (refusal := _outside(path, root, description)):
                    listed.append((path.relative_to(folder).as_posix(), path, refusal))
            for name in filenames:
                path = base / name
                if not wanted(path):
                    continue
                refusal = _outside(path, root, description)
                if refusal or path.is_file():  # not a FIFO, a socket or a broken link inside
                    listed.append((path.relative_to(folder).as_posix(), path, refusal))
        return sorted(listed)
    except OSError as exc:
        raise error(
            f"the {description} {folder} cannot be read ({exc.strerror or exc}); give the user "
            "running the pipeline read access to it"
        ) from exc


def _batch_prefix(source: str, digest: str) -> str:
    return f"{source}-{digest[:12]}-"


def _quarantine(con: duckdb.DuckDBPyConnection, version: FileVersion, reason: str) -> None:
    """One `raw.rejected_rows` row for the whole file, replacing the one of an earlier
    unreadable version; what an earlier readable version loaded stays."""
    with transaction(con):
        _lift_quarantine(con, version.source, version.rel)
        con.execute(
            f"INSERT INTO {RAW_REJECTED_ROWS.fqn} (source, source_ref, batch_id, location, "
            "field, reason, raw_record, rejected_at) VALUES (?, ?, ?, ?, NULL, ?, NULL, ?)",
            [
                version.source,
                version.rel,
                version.batch_id,
                version.rel,
                reason,
                version.loaded_at,
            ],
        )


def _lift_quarantine(con: duckdb.DuckDBPyConnection, source: str, rel: str) -> None:
    con.execute(
        f"DELETE FROM {RAW_REJECTED_ROWS.fqn} "
        "WHERE source = ? AND source_ref = ? AND location = source_ref",
        [source, rel],
    )


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
    batch_id = f"{_batch_prefix(source, digest)}{uuid.uuid4().hex[:8]}"
    return FileVersion(source, rel, digest, size, batch_id, _when(now), path)


def _when(now: datetime | None) -> datetime:
    """The load time: `now` (naive means UTC) or the clock's."""
    loaded_at = now or datetime.now(UTC)
    return loaded_at if loaded_at.tzinfo else loaded_at.replace(tzinfo=UTC)


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
    transaction. Rows with a `reason` are rejects. Returns (loaded, rejected). Raises
    `FileChangedWhileRead`, committing nothing, when the file no longer has the version's hash:
    the rows parsed may not be that version's."""
    if not _unchanged(version):
        raise FileChangedWhileRead(version.rel)
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


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` quoted for a message: at most `limit` characters, control and other unprintable
    characters escaped as `repr` does, `...` after the quote when it was cut."""
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def clip(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` without quotes when short and printable, else `excerpt` without its quotes."""
    if len(text) <= limit and text.isprintable():
        return text
    return repr(text[:limit])[1:-1] + ("..." if len(text) > limit else "")


def sql_excerpt(expr: str, limit: int = EXCERPT_CHARS) -> str:
    """SQL: the text `expr` as a reason may quote it -- as is when short and printable, else its
    first `limit` characters escaped as in JSON (other unprintable characters become `?`) and
    `...` when it was cut. The caller puts the quotes around it."""
    escaped = (
        f"regexp_replace(regexp_replace(to_json(left({expr}, {limit}))::VARCHAR, "
        "'^\"|\"$', '', 'g'), '\\p{C}', '?', 'g')"
    )
    return (
        f"CASE WHEN length({expr}) <= {limit} AND NOT regexp_matches({expr}, '\\p{{C}}') "
        f"THEN {expr} ELSE {escaped} || CASE WHEN length({expr}) > {limit} THEN '...' ELSE '' END "
        "END"
    )


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


def beyond_bound(number: str) -> str:
    """SQL: the finite DOUBLE `number` is beyond +-MAX_ABS_VALUE."""
    return f"abs({number}) > {MAX_ABS_VALUE!r}"


def underflows(text: str, number: str) -> str:
    """SQL: the literal `text` is nonzero (a nonzero digit before any exponent) but its DOUBLE
    `number` is below MIN_NORMAL in magnitude: it rounded to 0 or lost precision."""
    return (
        f"CASE WHEN abs({number}) < {MIN_NORMAL!r} "
        f"THEN regexp_matches(regexp_replace({text}, '[eE].*', ''), '[1-9]') ELSE false END"
    )


def bound_reason(what: str, text: str, where: str = "''") -> str:
    """SQL reason for `beyond_bound`; `what` and `where` are SQL for the text naming the cell
    before and after its value."""
    return (
        f"{what} || ' ''' || {sql_excerpt(text)} || '''' || {where} || ' is beyond the bound of "
        "+-1e15: not a plausible metric value, and it could overflow a sum'"
    )


def underflow_reason(what: str, text: str, where: str = "''") -> str:
    """SQL reason for `underflows`."""
    return (
        f"{what} || ' ''' || {sql_excerpt(text)} || '''' || {where} || ' is too small to represent: a nonzero "
        "number below 2.2e-308 in magnitude would load as 0 or lose precision'"
    )


def date_out_of_range(day: str) -> str:
    """SQL: the DATE `day` lies outside FIRST_DATE .. LAST_DATE."""
    return f"{day} NOT BETWEEN DATE '{FIRST_DATE}' AND DATE '{LAST_DATE}'"


def date_range_reason(what: str, text: str) -> str:
    """SQL reason for `date_out_of_range`."""
    return (
        f"{what} || ' ''' || {sql_excerpt(text)} || ''' is outside the plausible range "
        f"{FIRST_DATE} .. {LAST_DATE}; correct the date at the source'"
    )


# -- dates in a file, for the file sensor ---------------------------------------------------------

PHYSICAL_LINES = (
    "SELECT rtrim(ltrim(line, chr(65279)), chr(13)) AS text FROM read_csv($path, "
    f"header = false, columns = {{'line': 'VARCHAR'}}, delim = '{NO_SPLIT}', quote = '', "
    "escape = '', auto_detect = false, max_line_size = 67108864)"
)
"""The file's lines as text, one streaming DuckDB pass (gzip read as such); `$path` is bound."""


def first_line(path: Path, skip_comments: bool = False) -> str | None:
    """The first non-blank line of the file (with `skip_comments`, the first not starting with
    `#`) among its first 1,000, read in Python; None when there is none."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as handle:
        for _, line in zip(range(1000), handle, strict=False):
            text = line.strip("\r\n")
            if text.strip() and not (skip_comments and text.lstrip().startswith("#")):
                return text
    return None


def column_date_range(path: Path, delim: str, index: int) -> tuple[date, date] | None:
    """(first, last) day in the file's column `index` (YYYY-MM-DD or YYYYMMDD cells; `#` lines
    skipped), or None when no cell is a day."""
    cell = f"trim(list_extract({fields(delim)}, {index + 1}))"
    day = (
        r"CASE WHEN regexp_full_match(d, '\d{8}') THEN TRY_STRPTIME(d, '%Y%m%d')::DATE "
        r"WHEN regexp_full_match(d, '\d{4}-\d{2}-\d{2}') THEN TRY_CAST(d AS DATE) END"
    )
    with duckdb.connect(config={"threads": 1}) as con:
        [(low, high)] = con.execute(
            f"SELECT min(day), max(day) FROM (SELECT {day} AS day FROM (SELECT {cell} AS d "
            f"FROM ({PHYSICAL_LINES}) WHERE NOT starts_with(ltrim(text), '#')))",
            {"path": str(path)},
        ).fetchall()
    return (low, high) if low is not None else None
