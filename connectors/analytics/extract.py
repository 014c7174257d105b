"""Analytics exports folder -> `raw.analytics_events` and `raw.analytics_report` (docs/sources.md).

Files are found recursively under the folder (the lead passes `$OKR_DATA_DIR/analytics`):
- **events**: `*.jsonl`, `*.ndjson`, `*.json` (each also as `.gz`): one JSON object per line,
  `{"event", "timestamp", "user_id", "anonymous_id", "properties": {...}}`. Other keys are
  ignored. A `.json` file must be newline-delimited too (a JSON array is rejected line by line).
- **reports**: `*.csv` and `*.csv.gz` as analytics tools export them: `#` comment lines (the
  preamble; also skipped anywhere later), blank lines, then a header of display names and data
  lines. `,`, `;` or tab delimited (whichever the header has most of), RFC 4180 quoting. Each
  non-empty cell of a non-date column becomes one long row (date, column_name, value) with
  `column_name` the snake_case of the display name; `report` is the file name without
  `.csv[.gz]`. Dates are `YYYYMMDD` (ISO `YYYY-MM-DD` is accepted too); numbers may carry
  thousands separators (`"1,234"`); a totals row (first cell empty, `Total`, `Totals` or `Grand
  total`) is skipped, neither loaded nor rejected. Reports broken down by a text dimension are
  not supported (their text cells are rejected as non-numbers): one row per date is the shape.

How a file is read (no Python loop over rows, never the whole file in Python memory): DuckDB's
`read_csv` reads it -- `.gz` decompressed by DuckDB -- as physical lines into a temp table
(one VARCHAR column, no quoting, insertion order preserved), so `rowid + 1` is the line number;
then one SQL statement classifies every line with the `json` functions, `TRY_CAST` and regular
expressions into a second temp table, from which the good rows and the rejects are inserted.
Blank lines are skipped but counted. An event line is parsed once (`json_transform` of the five
keys); when that shows it passes every check, as most lines do, the ordered checks that name a
line's first failure (a JSON parse per key and check) are skipped.

When DuckDB cannot read a file as lines -- a damaged gzip stream ("Unexpected end of GZIP
stream": DuckDB fails the whole read and gives no prefix), mixed LF / CRLF line endings (its
strict reader refuses them, its lenient one miscounts lines), invalid UTF-8 -- the file is
streamed with Python instead (`gzip` for `.gz`) into the same temp table, in chunks of about
`CHUNK_BYTES` bytes split on LF and decoded in C, inserted through Arrow: never the whole file
in memory, no Python loop over lines. For a damaged gzip every complete line before the damage
is loaded (or rejected on its own merits) and one rejected row at `relpath:<last complete line +
1>` names the gzip error and holds the partial last line, if any; the file is listed in the
report's `warnings`. A gzip that breaks before its first complete line, and invalid UTF-8, make
the file unreadable (below).

Rejected lines go to `raw.rejected_rows` (location `relpath:line`, `field`, `reason`,
`raw_record`); the first failing check of a line decides. Events are rejected for: not valid
JSON; JSON but not an object; `event` missing, not a string or empty; `timestamp` missing, not a
string, not ISO-8601 **with a UTC offset** (`Z`, `+02:00`, `-0500`, `+05`) -- a timestamp without
offset is rejected, since the contract promises an offset and guessing a zone would shift
dates -- or not a real instant, or with an offset beyond +-14:00 (`+25:00`), or an instant outside
1900-01-01 .. 2199-12-31 UTC (the bounds of `connectors.files`); `user_id` / `anonymous_id` an object, array or boolean (numbers
are kept as text; empty strings count as absent); neither id present; `properties` present but
not an object (absent or null becomes `{}`). Report lines are rejected for bad quoting, a field
count different from the header's, an empty, invalid or out-of-range date; a non-numeric cell
(or one beyond +-1e15 or underflowing to 0, as in the CSV source) is rejected on its own (field = its display name) while the rest of the line loads.

Idempotency as in the CSV source: `raw.loaded_files` (source 'analytics') keeps each file's
SHA-256; an unchanged file is skipped, a changed one replaces its rows, rejects and registry row
in one transaction per file. A missing folder means no files. A file that cannot be read at
all (not UTF-8, not gzip or damaged before its first line, a report without a header or `Date`
column, ...) is quarantined: one `raw.rejected_rows` row at the file's path says why, whatever
it loaded before stays, and the other files still load (`connectors.files.load_files`).
"""

from __future__ import annotations

import gzip
import re
import unicodedata
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from connectors.analytics.tables import (
    RAW_ANALYTICS_EVENTS,
    RAW_ANALYTICS_REPORT,
    RESERVED_REPORT_COLUMNS,
)
from connectors.files import (
    FIRST_DATE,
    LAST_DATE,
    MAX_COLUMNS,
    MAX_LINE_BYTES,
    MAX_LINE_CHARS,
    NO_SPLIT,
    RECORD_CHARS,
    FileLoadReport,
    FileSourceError,
    FileVersion,
    bad_number,
    beyond_bound,
    bound_reason,
    clip,
    commit_version,
    date_out_of_range,
    date_range_reason,
    excerpt,
    fields,
    load_files,
    sql_excerpt,
    underflow_reason,
    underflows,
    well_quoted,
)
from connectors.tables import RAW_LOADED_FILES, RAW_REJECTED_ROWS
from warehouse.sql import quote_literal
from warehouse.tables import Table
from warehouse.writes import ensure_tables, insertion_order

SOURCE = "analytics"
VALID_OFFSET = r"(Z|[+-]((0\d|1[0-3])(:?[0-5]\d)?|14(:?00)?))$"
"""How a timestamp with a real UTC offset ends: Z, or -14:00 .. +14:00 with minutes 00-59."""
EVENT_SUFFIXES = (".jsonl", ".ndjson", ".json")
REPORT_SUFFIXES = (".csv",)
CHUNK_BYTES = 8 << 20  # decompressed bytes per chunk in the Python gzip fallback
TOTAL_LABELS = ("total", "totals", "grand total")
_LINES = "_analytics_lines"
_ROWS = "_analytics_rows"
_CHUNK = "_analytics_chunk"
# More than spaces on the line (a CR of a CRLF line does not count); blank lines are skipped.
_NOT_BLANK = "trim(rtrim(coalesce(text, ''), chr(13))) <> ''"
_ISO_WITH_OFFSET = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)"
_ISO_WITHOUT_OFFSET = r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?"
_TS_HINT = "expected ISO-8601 with a UTC offset such as 2025-03-31T23:30:00-05:00 or ...Z"
_DATE_HINT = "expected YYYYMMDD such as 20250131"
_NUMBER_HINT = "expected a number such as 1234, 1,234 or 12.5"


class AnalyticsSourceError(FileSourceError):
    """An export file (or the folder) cannot be read at all; the message names it and says why."""


AnalyticsLoadReport = FileLoadReport


@dataclass(frozen=True)
class _Damage:
    line_no: int
    reason: str
    partial: str | None


def file_kind(path: Path) -> str | None:
    """'events', 'report' or None (not an analytics export) from the file name."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(EVENT_SUFFIXES):
        return "events"
    if name.endswith(REPORT_SUFFIXES):
        return "report"
    return None


def report_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def snake_case(display_name: str) -> str:
    """'Active users' -> 'active_users', 'Avg. session duration' -> 'avg_session_duration',
    'activeUsers' -> 'active_users'; a leading digit gets a leading underscore."""
    text = unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode()
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text.strip())
    text = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return f"_{text}" if text[:1].isdigit() else text


def load_analytics_exports(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    *,
    now: datetime | None = None,
    strict: bool = False,
) -> AnalyticsLoadReport:
    """Load every new or changed export under `folder` (recursively, by relative path); with
    `strict`, a quarantined file fails the load once the other files have loaded."""
    ensure_tables(
        con, RAW_ANALYTICS_EVENTS, RAW_ANALYTICS_REPORT, RAW_REJECTED_ROWS, RAW_LOADED_FILES
    )
    return load_files(
        con,
        SOURCE,
        Path(folder),
        lambda path: file_kind(path) is not None,
        lambda path, version: _load_file(con, path, version),
        AnalyticsSourceError,
        "analytics exports folder",
        now=now,
        strict=strict,
    )


def _load_file(
    con: duckdb.DuckDBPyConnection, path: Path, version: FileVersion
) -> tuple[int, int, str | None]:
    """Load one file version in one transaction: rows loaded, rows rejected and a warning
    naming the line where a damaged gzip broke off."""
    rel = version.rel
    kind = file_kind(path)
    try:
        with insertion_order(con, preserve=True):  # rowid + 1 is the line number
            damage = _read_lines(con, path, rel)
        if kind == "events":
            select = _events_sql()
            target: Table = RAW_ANALYTICS_EVENTS
            columns = values = "event, timestamp, user_id, anonymous_id, properties"
            params: list[object] = []
        else:
            select = _report_sql(con, rel, damage)
            target = RAW_ANALYTICS_REPORT
            columns, values = "date, report, column_name, value", "date, ?, column_name, value"
            params = [report_name(path)]
        with insertion_order(con, preserve=False):  # rows carry their line number
            con.execute(f"CREATE OR REPLACE TEMP TABLE {_ROWS} AS {select}")
        con.execute(f"DROP TABLE IF EXISTS {_LINES}")
        if damage:
            con.execute(
                f"INSERT INTO {_ROWS} (line_no, raw_record, field, reason) VALUES (?, ?, NULL, ?)",
                [damage.line_no, damage.partial, damage.reason],
            )
        loaded, rejected = commit_version(con, version, target, _ROWS, columns, values, params)
    finally:
        for temp in (_LINES, _ROWS):
            con.execute(f"DROP TABLE IF EXISTS {temp}")
    return loaded, rejected, f"{rel}:{damage.line_no}: {damage.reason}" if damage else None


# -- reading lines ------------------------------------------------------------------------------


def _read_lines(con: duckdb.DuckDBPyConnection, path: Path, rel: str) -> _Damage | None:
    """Fill temp table `_LINES` (one VARCHAR `text` per physical line, in order); returns the
    damage of a gzip file that could be read only up to some line."""
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_LINES} AS SELECT line AS text FROM read_csv(?, "
            f"header = false, columns = {{'line': 'VARCHAR'}}, delim = '{NO_SPLIT}', "
            f"quote = '', escape = '', auto_detect = false, max_line_size = {MAX_LINE_BYTES})",
            [str(path)],
        )
        return None
    except duckdb.Error as exc:
        # A damaged gzip stream, mixed line endings (which DuckDB's strict reader refuses and
        # its lenient one miscounts), invalid UTF-8: stream the file in Python, which either
        # reads what is readable or raises an error naming the file and line.
        return _stream_lines(
            con, path, rel, clip(str(exc).splitlines()[0], 200) if str(exc) else ""
        )


def _stream_lines(
    con: duckdb.DuckDBPyConnection, path: Path, rel: str, duckdb_message: str
) -> _Damage | None:
    """Stream the readable lines of `path` into `_LINES`, about `CHUNK_BYTES` at a time, split
    on LF (a CR before it is dropped later). A gzip error ends the stream: what came before it
    is kept and the damage is returned."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_LINES} (text VARCHAR)")
    lines_done, pending, error, first = 0, b"", None, True
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        while True:
            try:
                block = handle.read1(CHUNK_BYTES)
            except (EOFError, OSError, zlib.error) as exc:
                error = exc
                break
            if first and block.startswith(b"\xef\xbb\xbf"):
                block = block[3:]
            first = False
            if not block:
                break
            pending += block
            cut = pending.rfind(b"\n")
            if cut >= 0 and len(pending) >= CHUNK_BYTES:
                lines_done += _append_lines(con, pending[:cut], rel, lines_done)
                pending = pending[cut + 1 :]
    cut = pending.rfind(b"\n")
    if cut >= 0:
        lines_done += _append_lines(con, pending[:cut], rel, lines_done)
        pending = pending[cut + 1 :]
    if error is None:
        if pending:  # an unterminated last line
            lines_done += _append_lines(con, pending, rel, lines_done)
        return None
    detail = (
        f"{type(error).__name__}: {clip(str(error), 200)}" if str(error) else type(error).__name__
    )
    if lines_done == 0:
        raise AnalyticsSourceError(
            f"{rel}: not a readable gzip file, it breaks before its first line ({detail}); "
            "export it again"
        )
    return _Damage(
        lines_done + 1,
        f"gzip stream is damaged after line {lines_done} ({detail}; DuckDB: {duckdb_message}); "
        "the lines before it were loaded, this line and anything after it were not",
        pending.decode("utf-8", "replace") if pending else None,
    )


def _append_lines(con: duckdb.DuckDBPyConnection, data: bytes, rel: str, lines_done: int) -> int:
    """Append the lines of `data` (complete lines, no final newline) to `_LINES`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = lines_done + data.count(b"\n", 0, exc.start) + 1
        raise AnalyticsSourceError(
            f"{rel}: not UTF-8 text (line {line}); save it as UTF-8"
        ) from exc
    chunk = pa.table({"text": pa.array(text.split("\n"), pa.string())})
    con.register(_CHUNK, chunk)
    try:
        con.execute(f"INSERT INTO {_LINES} SELECT text FROM {_CHUNK}")
    finally:
        con.unregister(_CHUNK)
    return chunk.num_rows


def _numbered_lines() -> str:
    """Non-blank physical lines with their line number (CR of CRLF files removed)."""
    return (
        f"SELECT rowid + 1 AS line_no, rtrim(coalesce(text, ''), chr(13)) AS text "
        f"FROM {_LINES} WHERE {_NOT_BLANK}"
    )


def _cases(checks: list[tuple[str, str | None, str]]) -> str:
    """`field` and `reason` columns: the first failing check names the field and says why."""
    field_sql = " ".join(f"WHEN {c} THEN {quote_literal(f) if f else 'NULL'}" for c, f, _ in checks)
    reason_sql = " ".join(f"WHEN {c} THEN {r}" for c, _, r in checks)
    return f"CASE {field_sql} END AS field, CASE {reason_sql} END AS reason"


def _first_failure(checks: list[tuple[str, str | None, str]], ok: str) -> str:
    """0 when `ok` (which must imply that every check passes), else the number of the first
    failing check, else NULL: the checks run only for lines that `ok` does not vouch for."""
    whens = " ".join(f"WHEN {c} THEN {i}" for i, (c, _, _) in enumerate(checks, 1))
    return f"CASE WHEN {ok} THEN 0 {whens} END"


def _failure_columns(checks: list[tuple[str, str | None, str]], failed: str) -> str:
    """`field` and `reason` of the check numbered `failed` (NULL for 0 or NULL)."""
    field_sql = " ".join(
        f"WHEN {i} THEN {quote_literal(f) if f else 'NULL'}"
        for i, (_, f, _) in enumerate(checks, 1)
    )
    reason_sql = " ".join(f"WHEN {i} THEN {r}" for i, (_, _, r) in enumerate(checks, 1))
    return f"CASE {failed} {field_sql} END AS field, CASE {failed} {reason_sql} END AS reason"


# -- events -------------------------------------------------------------------------------------

# One parse of a line: the value of `timestamp` as text, the other keys as minified JSON, whose
# first character tells the type (`"` a string, `{` an object, `-` or a digit a number).
_EVENT_STRUCT = (
    '{"event": "JSON", "timestamp": "VARCHAR", "user_id": "JSON", "anonymous_id": "JSON", '
    '"properties": "JSON"}'
)


def _type(key: str) -> str:
    return f"json_type(text, '$.{key}')"


def _string(key: str) -> str:
    return f"json_extract_string(text, '$.{key}')"


def _nonblank(expr: str) -> str:
    """`trim(expr) <> ''` without trim's per-character Unicode lookup when the first character
    is printable ASCII (trim strips only spaces from ASCII, so such a value is never blank)."""
    return f"CASE WHEN ascii({expr}) BETWEEN 33 AND 127 THEN true ELSE trim({expr}) <> '' END"


def _plain_string(j: str) -> str:
    """The value of the JSON text `j` if it is a string without escapes (dropping its quotes
    gives the value), else NULL."""
    return (
        f"CASE WHEN starts_with({j}, '\"') AND NOT contains({j}, '\\') "
        f"THEN substr({j}, 2, length({j}) - 2) END"
    )


def _fast_id(j: str) -> str:
    """The value of an id given as a plain string or a number (whose JSON text is the text
    `json_extract_string` gives); NULL for anything else, which the exact checks then judge."""
    return (
        f"CASE WHEN starts_with({j}, '\"') THEN {_plain_string(j)} "
        f"WHEN ascii({j}) = 45 OR ascii({j}) BETWEEN 48 AND 57 THEN {j} END"
    )


def _ts_in_range(ts: str) -> str:
    """SQL: the TIMESTAMPTZ `ts` lies in FIRST_DATE .. LAST_DATE, in UTC."""
    return (
        f"({ts} >= TIMESTAMPTZ '{FIRST_DATE} 00:00:00+00' "
        f"AND {ts} < TIMESTAMPTZ '{LAST_DATE} 00:00:00+00' + INTERVAL 1 DAY)"
    )


def _events_sql() -> str:
    """One row per non-blank line. A line is parsed once (`_EVENT_STRUCT`) and a common good
    line is recognised from that (`ok`); only the other lines run the ordered exact checks,
    which parse the line per key and name the first failure."""

    def bad_id(name: str) -> tuple[str, str, str]:
        return (
            f"{_type(name)} IN ('OBJECT', 'ARRAY', 'BOOLEAN')",
            name,
            f"'{name} must be a string or a number, not ' || lower({_type(name)})",
        )

    def present(name: str) -> str:
        return f"coalesce({_type(name)} NOT IN ('NULL') AND {_nonblank(_string(name))}, false)"

    ts_s = _string("timestamp")
    checks = [
        (
            f"chars > {MAX_LINE_CHARS}",
            None,
            f"'line has ' || chars || ' characters; lines longer than {MAX_LINE_CHARS:,} are not "
            "read (raw_record keeps its start)'",
        ),
        ("NOT valid", None, "'line is not valid JSON'"),
        (
            "json_type(text) <> 'OBJECT'",
            None,
            "'line is JSON but not an object (' || lower(json_type(text)) || '); each line must "
            'be one event object {"event": ..., "timestamp": ..., ...}\'',
        ),
        (
            f"coalesce({_type('event')}, 'NULL') = 'NULL'",
            "event",
            "'event is missing; every event needs a name'",
        ),
        (
            f"{_type('event')} <> 'VARCHAR'",
            "event",
            f"'event must be a string, not ' || lower({_type('event')})",
        ),
        (
            f"NOT {_nonblank(_string('event'))}",
            "event",
            "'event is empty; every event needs a name'",
        ),
        (
            f"coalesce({_type('timestamp')}, 'NULL') = 'NULL'",
            "timestamp",
            f"'timestamp is missing; {_TS_HINT}'",
        ),
        (
            f"{_type('timestamp')} <> 'VARCHAR'",
            "timestamp",
            f"'timestamp must be a string, not ' || lower({_type('timestamp')}) || '; {_TS_HINT}'",
        ),
        (
            f"regexp_full_match(trim({ts_s}), '{_ISO_WITHOUT_OFFSET}')",
            "timestamp",
            f"'timestamp ''' || {sql_excerpt(ts_s)} || ''' has no UTC offset, so its instant is unknown; "
            f"{_TS_HINT}'",
        ),
        (
            f"NOT regexp_full_match(trim({ts_s}), '{_ISO_WITH_OFFSET}') "
            f"OR TRY_CAST(trim({ts_s}) AS TIMESTAMPTZ) IS NULL",
            "timestamp",
            f"'timestamp ''' || {sql_excerpt(ts_s)} || ''' is not a valid timestamp; {_TS_HINT}'",
        ),
        (
            f"NOT regexp_matches(trim({ts_s}), '{VALID_OFFSET}')",
            "timestamp",
            f"'timestamp ''' || {sql_excerpt(ts_s)} || ''' has an invalid UTC offset; offsets "
            f"lie between -14:00 and +14:00 with minutes 00-59; {_TS_HINT}'",
        ),
        (
            f"NOT {_ts_in_range(f'TRY_CAST(trim({ts_s}) AS TIMESTAMPTZ)')}",
            "timestamp",
            f"'timestamp ''' || {sql_excerpt(ts_s)} || ''' is outside the plausible range "
            f"{FIRST_DATE} .. {LAST_DATE} (UTC); correct it at the source'",
        ),
        bad_id("user_id"),
        bad_id("anonymous_id"),
        (
            f"NOT {present('user_id')} AND NOT {present('anonymous_id')}",
            "user_id",
            "'neither user_id nor anonymous_id is set; an event needs at least one'",
        ),
        (
            f"{_type('properties')} NOT IN ('OBJECT', 'NULL')",
            "properties",
            f"'properties must be a JSON object, not ' || lower({_type('properties')})",
        ),
    ]
    # Implies that every check passes: a valid line starting with `{` is an object; a key set to
    # null is NULL in the struct and counts as missing in the checks too; a timestamp text that
    # matches the pattern (and has a valid offset) came from a string (no number, boolean, object or array reads like
    # one) and has no spaces to trim.
    ok = (
        f"valid AND starts_with(text, '{{') AND event IS NOT NULL AND {_nonblank('event')} "
        f"AND ts IS NOT NULL AND {_ts_in_range('ts')} "
        "AND (user_id_j IS NULL OR user_id IS NOT NULL) "
        "AND (anonymous_id_j IS NULL OR anonymous_id IS NOT NULL) "
        f"AND ({_nonblank('user_id')} OR {_nonblank('anonymous_id')}) "
        "AND (properties IS NULL OR starts_with(properties, '{'))"
    )
    return f"""
        WITH parsed AS (
            SELECT line_no, text, chars, valid, f.event::VARCHAR AS event_j, f.timestamp AS ts_text,
                   f.user_id::VARCHAR AS user_id_j, f.anonymous_id::VARCHAR AS anonymous_id_j,
                   f.properties
            FROM (
                SELECT *, CASE WHEN valid THEN json_transform(text, '{_EVENT_STRUCT}') END AS f
                FROM (
                    SELECT rowid + 1 AS line_no, text, length(text) AS chars,
                           CASE WHEN length(text) > {MAX_LINE_CHARS} THEN false
                                ELSE json_valid(text) END AS valid
                    FROM {_LINES}
                )
                WHERE CASE WHEN valid THEN true ELSE {_NOT_BLANK} END
            )
        ),
        fast AS (
            SELECT line_no, text, chars, valid, user_id_j, anonymous_id_j, properties,
                   {_plain_string("event_j")} AS event,
                   CASE WHEN regexp_full_match(ts_text, '{_ISO_WITH_OFFSET}')
                             AND regexp_matches(ts_text, '{VALID_OFFSET}')
                        THEN TRY_CAST(ts_text AS TIMESTAMPTZ) END AS ts,
                   {_fast_id("user_id_j")} AS user_id,
                   {_fast_id("anonymous_id_j")} AS anonymous_id
            FROM parsed
        ),
        checked AS (SELECT *, {_first_failure(checks, ok)} AS failed FROM fast)
        SELECT line_no,
               CASE WHEN failed = 1 THEN left(text, {RECORD_CHARS}) || '...'
                    WHEN failed > 0 THEN rtrim(text, chr(13)) END AS raw_record,
               {_failure_columns(checks, "failed")},
               CASE WHEN failed = 0 THEN event WHEN failed IS NULL THEN {_string("event")} END
                   AS event,
               CASE WHEN failed = 0 THEN ts
                    WHEN failed IS NULL THEN TRY_CAST(trim({ts_s}) AS TIMESTAMPTZ) END
                   AS "timestamp",
               CASE WHEN failed = 0 THEN CASE WHEN {_nonblank("user_id")} THEN user_id END
                    WHEN failed IS NULL AND {present("user_id")} THEN {_string("user_id")} END
                   AS user_id,
               CASE WHEN failed = 0
                    THEN CASE WHEN {_nonblank("anonymous_id")} THEN anonymous_id END
                    WHEN failed IS NULL AND {present("anonymous_id")}
                    THEN {_string("anonymous_id")} END AS anonymous_id,
               CASE WHEN failed = 0 THEN coalesce(properties, '{{}}'::JSON)
                    WHEN failed IS NULL AND {_type("properties")} = 'OBJECT'
                    THEN json_extract(text, '$.properties') ELSE '{{}}'::JSON END AS properties
        FROM checked
    """


# -- reports ------------------------------------------------------------------------------------


def _report_sql(con: duckdb.DuckDBPyConnection, rel: str, damage: _Damage | None) -> str:
    """SQL classifying the lines of a report CSV; one row per cell loaded or line/cell rejected."""
    content = f"SELECT * FROM ({_numbered_lines()}) WHERE NOT starts_with(ltrim(text), '#')"
    rows = con.execute(f"{content} ORDER BY line_no LIMIT 1").fetchall()
    if not rows:
        what = "damaged before its header" if damage else "has no header line"
        raise AnalyticsSourceError(
            f"{rel}: the report {what}; expected '#' comment lines, then a header such as "
            "Date,Active users,Sessions"
        )
    header_line, text = rows[0]
    delim = max((",", ";", "\t"), key=text.count)
    [(quoting_ok, header_fields)] = con.execute(
        f"SELECT {well_quoted(delim)}, {fields(delim)} FROM (SELECT ? AS text)", [text]
    ).fetchall()
    if not quoting_ok:
        raise AnalyticsSourceError(
            f"{rel}: the header on line {header_line} has malformed quoting: {excerpt(text)}"
        )
    if len(header_fields) > MAX_COLUMNS:
        raise AnalyticsSourceError(
            f"{rel}: the header on line {header_line} has {len(header_fields):,} columns; at most "
            f"{MAX_COLUMNS:,} are read: export fewer columns per report"
        )
    names = [name.strip() for name in header_fields]
    snakes = [snake_case(name) for name in names]
    for i, (name, snake) in enumerate(zip(names, snakes, strict=True), 1):
        if not snake:
            raise AnalyticsSourceError(
                f"{rel}: header column {i} on line {header_line} ({excerpt(name)}) has no usable name"
            )
        if snakes.count(snake) > 1:
            others = [n for n, s in zip(names, snakes, strict=True) if s == snake]
            raise AnalyticsSourceError(
                f"{rel}: columns {excerpt(', '.join(map(repr, others)))} on line {header_line} all become "
                f"'{snake}'; report columns must differ in snake_case"
            )
        if snake in RESERVED_REPORT_COLUMNS - {"date"}:
            raise AnalyticsSourceError(f"{rel}: column {excerpt(name)} is reserved ('{snake}')")
    if "date" not in snakes:
        raise AnalyticsSourceError(
            f"{rel}: the header on line {header_line} has no Date column (found: "
            f"{excerpt(', '.join(names))}); expected e.g. Date,Active users,Sessions"
        )
    if len(names) == 1:
        raise AnalyticsSourceError(
            f"{rel}: the header on line {header_line} has only a Date column"
        )
    n, d = len(names), snakes.index("date") + 1
    date_name = names[d - 1]
    columns = ", ".join(
        f"({quote_literal(name)}, {quote_literal(snake)}, {i})"
        for i, (name, snake) in enumerate(zip(names, snakes, strict=True), 1)
        if i != d
    )
    date_value = (
        r"CASE WHEN regexp_full_match(date_txt, '\d{8}') "
        "THEN TRY_STRPTIME(date_txt, '%Y%m%d')::DATE "
        r"WHEN regexp_full_match(date_txt, '\d{4}-\d{2}-\d{2}') THEN TRY_CAST(date_txt AS DATE) END"
    )
    line_checks = _cases(
        [
            (
                f"chars > {MAX_LINE_CHARS}",
                None,
                f"'line has ' || chars || ' characters; lines longer than {MAX_LINE_CHARS:,} are "
                "not read (raw_record keeps its start)'",
            ),
            (
                "NOT well_quoted",
                None,
                "'line has malformed quoting: a quoted field must be wrapped in double quotes, with "
                "inner quotes doubled, and cannot run over a line break'",
            ),
            (
                f"len(fields) <> {n}",
                None,
                f"'line has ' || len(fields) || ' fields but the header has {n}'",
            ),
            (
                "date_txt = ''",
                date_name,
                quote_literal(f"{clip(date_name)} is empty; {_DATE_HINT}"),
            ),
            (
                "date_value IS NULL",
                date_name,
                f"{quote_literal(clip(date_name) + ' ')} || '''' || "
                f"{sql_excerpt('date_txt')} || ''' is not a valid date; {_DATE_HINT}'",
            ),
            (
                date_out_of_range("date_value"),
                date_name,
                date_range_reason(quote_literal(clip(date_name)), "date_txt"),
            ),
        ]
    )
    totals = ", ".join(quote_literal(label) for label in TOTAL_LABELS)
    in_column = f"' in column ''' || {sql_excerpt('display_name')} || ''''"
    number = (
        r"CASE WHEN regexp_full_match(cell, '[+-]?\d{1,3}(,\d{3})+(\.\d*)?') "
        "THEN replace(cell, ',', '') ELSE cell END"
    )
    return f"""
        WITH data AS (
            SELECT line_no, length(text) AS chars,
                   CASE WHEN length(text) > {MAX_LINE_CHARS} THEN left(text, {RECORD_CHARS}) || '...'
                        ELSE text END AS raw_record,
                   CASE WHEN length(text) > {MAX_LINE_CHARS} THEN false
                        ELSE {well_quoted(delim)} END AS well_quoted,
                   CASE WHEN length(text) > {MAX_LINE_CHARS} THEN []::VARCHAR[]
                        ELSE {fields(delim)} END AS fields
            FROM ({content}) WHERE line_no > {header_line}
        ),
        kept AS (
            SELECT *, trim(fields[{d}]) AS date_txt FROM data
            WHERE NOT (well_quoted AND (trim(fields[1]) = '' OR lower(trim(fields[1])) IN ({totals})))
        ),
        checked AS (
            SELECT *, {line_checks}
            FROM (SELECT *, {date_value} AS date_value FROM kept)
        ),
        columns AS (SELECT * FROM (VALUES {columns}) AS c(display_name, column_name, position)),
        cells AS (
            SELECT line_no, raw_record, date_value, display_name, column_name, num_txt
            FROM (
                SELECT *, {number} AS num_txt
                FROM (
                    SELECT checked.*, columns.*, trim(fields[position]) AS cell
                    FROM checked CROSS JOIN columns WHERE reason IS NULL
                )
                WHERE cell <> ''
            )
        )
        SELECT line_no, raw_record, field, reason, NULL::DATE AS date, NULL::VARCHAR AS column_name,
               NULL::DOUBLE AS value
        FROM checked WHERE reason IS NOT NULL
        UNION ALL
        SELECT line_no, CASE WHEN failed IS NOT NULL THEN raw_record END,
               CASE WHEN failed IS NOT NULL THEN display_name END,
               CASE failed WHEN 1 THEN 'value ''' || {sql_excerpt("num_txt")}
                    || ''' in column ''' || {sql_excerpt("display_name")}
                    || ''' is not a number; {_NUMBER_HINT}'
                    WHEN 2 THEN {bound_reason("'value'", "num_txt", in_column)}
                    WHEN 3 THEN {underflow_reason("'value'", "num_txt", in_column)} END,
               date_value, column_name, value
        FROM (
            SELECT *, CASE WHEN {bad_number("num_txt")} THEN 1
                           WHEN {beyond_bound("value")} THEN 2
                           WHEN {underflows("num_txt", "value")} THEN 3 END AS failed
            FROM (SELECT *, TRY_CAST(num_txt AS DOUBLE) AS value FROM cells)
        )
    """
