"""CSV drop folder -> `raw.csv_observations` (docs/sources.md).

Every `*.csv` under the folder is a file of metric observations, either **long**
(`date,metric_id,value[,dimension...]`, detected by `metric_id` and `value` headers) or **wide**
(`date,<metric>,<metric>...`, unpivoted; an empty cell is no observation). UTF-8 with or without
BOM, `,` or `;` delimited (whichever the header line has more of), ISO dates, plain numbers.

How a file is read (all in DuckDB, no Python loop over rows):
- `read_csv` reads it as *physical lines* (one VARCHAR column, quoting off), materialized in a
  temp table, so `rowid + 1` is the line number by construction: a BOM, blank lines anywhere and
  quoted delimiters cannot shift it. (DuckDB's own CSV parser skips blank lines without counting
  them, numbers a multi-line record as one line, and in lenient mode silently turns `"a"b` into
  `a`; `file_row_number` is not supported for CSV.)
- A *clean* line -- one regular expression built from the header says every field already has
  its column's shape (an ISO date, a metric id, a number; no quote, no blank around a field) --
  is split with `string_split` and needs no further pattern checks: that is nearly every line
  of a machine-written file, and a regular expression per field costs several times more.
- Any other line is split into fields by a quote-aware regular expression (RFC 4180 quoting: a
  quoted field may hold the delimiter and doubled quotes) and its fields are trimmed. A line
  whose quoting does not parse -- including a quoted field that runs over a line break, which
  this source does not accept -- is rejected, as is a line whose field count differs from the
  header's (ragged row).
- Blank or whitespace-only lines are skipped: they are neither rows nor rejections.
- Rows are then classified with `TRY_CAST` and regular expressions; the first failing check of
  a line (quoting, field count, date, date range, metric_id, value, value bound) becomes its
  `raw.rejected_rows` row. Bounds (`connectors.files`, docs/sources.md): dates lie in `FIRST_DATE` .. `LAST_DATE`;
  a value is finite with |value| <= `MAX_ABS_VALUE` (1e15; `1e308` is rejected), and a nonzero
  literal must not underflow (`1e-400` would load as 0); `inf`, `nan` and literals that
  overflow to infinity (`1e309`) are not numbers. In
  wide files each bad cell is rejected on its own (field = its column), the rest of the line
  loads; a header that is not a valid metric id rejects every non-empty cell of its column.

Idempotency: `raw.loaded_files` keeps each file's SHA-256. An unchanged file is skipped; a
changed one replaces everything it loaded before (observations, rejected rows, registry row) in
one transaction. Each file is its own transaction. Files that disappear from the folder keep
their rows (a drop folder may be emptied after loading). A missing folder means no files.

A file that cannot be read at all (empty, not UTF-8, no `date` column, bad header, a dimension
column named like a built-in column of `staging.csv_observations`) is quarantined: one
`raw.rejected_rows` row at the file's path says why, whatever it loaded before stays, and the
other files still load (`connectors.files.load_files`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from connectors.csv_drop.tables import RAW_CSV_OBSERVATIONS, STAGING_CSV_OBSERVATIONS
from connectors.files import (
    MAX_COLUMNS,
    MAX_LINE_BYTES,
    MAX_LINE_CHARS,
    NO_SPLIT,
    NUMBER_PATTERN,
    RECORD_CHARS,
    FileLoadReport,
    FileSourceError,
    FileVersion,
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
    trim,
    underflow_reason,
    underflows,
    well_quoted,
)
from connectors.tables import RAW_LOADED_FILES, RAW_REJECTED_ROWS
from warehouse.sql import quote_literal
from warehouse.writes import ensure_tables, insertion_order

SOURCE = "csv"
METRIC_ID_PATTERN = "[a-z0-9][a-z0-9_.-]*"
_DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"
_LINES = "_csv_drop_lines"
_ROWS = "_csv_drop_rows"
_DATE_HINT = "expected an ISO date YYYY-MM-DD"
_NUMBER_HINT = "expected a plain decimal number such as 12, -3.5 or 1e6"
_ID_HINT = f"ids match {METRIC_ID_PATTERN}"
_RESERVED_DIMENSIONS = frozenset(
    STAGING_CSV_OBSERVATIONS.column_names + RAW_CSV_OBSERVATIONS.column_names
) - {"date", "metric_id", "value"}
"""Columns of the CSV tables besides the long file's own: a dimension of the same name would be
ambiguous (metrics name a dimension bare, `region`, so `dimensions` would mean the column)."""


class CsvSourceError(FileSourceError):
    """A CSV file (or the folder) cannot be read at all; the message names it and says why."""


CsvLoadReport = FileLoadReport


@dataclass(frozen=True)
class _Header:
    delim: str
    names: list[str]  # trimmed, as written; positions are 1-based in SQL

    def position(self, name: str) -> int | None:
        lowered = [n.lower() for n in self.names]
        return lowered.index(name) + 1 if name in lowered else None


def load_csv_folder(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    *,
    now: datetime | None = None,
    strict: bool = False,
) -> CsvLoadReport:
    """Load every new or changed `*.csv` under `folder` (recursively, by relative path); with
    `strict`, a quarantined file fails the load once the other files have loaded."""
    ensure_tables(con, RAW_CSV_OBSERVATIONS, RAW_REJECTED_ROWS, RAW_LOADED_FILES)
    return load_files(
        con,
        SOURCE,
        Path(folder),
        lambda path: path.name.endswith(".csv"),
        lambda path, version: (*_load_file(con, path, version), None),
        CsvSourceError,
        "CSV drop folder",
        now=now,
        strict=strict,
    )


def _load_file(con: duckdb.DuckDBPyConnection, path: Path, version: FileVersion) -> tuple[int, int]:
    """Load one file version in one transaction: (rows loaded, rows rejected)."""
    try:
        _parse(con, path, version.rel)
        return commit_version(
            con,
            version,
            RAW_CSV_OBSERVATIONS,
            _ROWS,
            "date, metric_id, value, dimensions",
            "date, metric_id, value, dimensions::JSON",
        )
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_LINES}")
        con.execute(f"DROP TABLE IF EXISTS {_ROWS}")


def _parse(con: duckdb.DuckDBPyConnection, path: Path, rel: str) -> None:
    """Fill temp table `_ROWS`: one row per observation or rejection, with its line number (and
    its text, for rejections)."""
    try:
        with insertion_order(con, preserve=True):
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {_LINES} AS SELECT line AS text FROM read_csv(?, "
                f"header = false, columns = {{'line': 'VARCHAR'}}, delim = '{NO_SPLIT}', "
                f"quote = '', escape = '', auto_detect = false, max_line_size = {MAX_LINE_BYTES})",
                [str(path)],
            )
    except duckdb.Error as exc:
        message = str(exc)
        line = re.search(r"Line: (\d+)", message)
        where = f" (line {line[1]})" if line else ""
        if "unicode" in message.lower() or "utf-8" in message.lower():
            raise CsvSourceError(f"{rel}: not UTF-8 text{where}; save it as UTF-8") from exc
        if "maximum line size" in message.lower():
            raise CsvSourceError(
                f"{rel}: a line{where} is longer than {MAX_LINE_BYTES >> 20} MiB, the most read "
                "as one line; is it a CSV file?"
            ) from exc
        first = message.splitlines()[0] if message else type(exc).__name__
        raise CsvSourceError(f"{rel}: cannot be read{where}: {clip(first, 200)}") from exc
    header = _read_header(con, rel)
    select = _long_sql(header) if header.position("metric_id") else _wide_sql(header)
    with insertion_order(con, preserve=False):  # rows carry their line number
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_ROWS} AS {select}")
    con.execute(f"DROP TABLE {_LINES}")  # a big file's lines need not wait for the commit


def _read_header(con: duckdb.DuckDBPyConnection, rel: str) -> _Header:
    rows = con.execute(f"SELECT text FROM {_LINES} WHERE rowid = 0").fetchall()
    if not rows:
        raise CsvSourceError(
            f"{rel}: the file is empty; expected a header line such as date,metric_id,value"
        )
    text = rows[0][0]
    if text is None or not text.strip():
        raise CsvSourceError(
            f"{rel}: line 1 is empty; the header (e.g. date,metric_id,value) must be on line 1"
        )
    delim = ";" if text.count(";") > text.count(",") else ","
    [(quoting_ok, names)] = con.execute(
        f"SELECT {well_quoted(delim)}, {fields(delim)} FROM {_LINES} WHERE rowid = 0"
    ).fetchall()
    if not quoting_ok:
        raise CsvSourceError(f"{rel}: the header on line 1 has malformed quoting: {excerpt(text)}")
    if len(names) > MAX_COLUMNS:
        raise CsvSourceError(
            f"{rel}: the header has {len(names):,} columns; at most {MAX_COLUMNS:,} are read: "
            "split the file into files with fewer columns"
        )
    header = _Header(delim, [name.strip() for name in names])
    lowered = [name.lower() for name in header.names]
    for i, name in enumerate(header.names, 1):
        if not name:
            raise CsvSourceError(f"{rel}: header column {i} has no name; every column needs one")
        if lowered.count(name.lower()) > 1:
            raise CsvSourceError(f"{rel}: column {excerpt(name)} appears twice in the header")
    if "date" not in lowered:
        raise CsvSourceError(
            f"{rel}: the header has no 'date' column (found: {excerpt(', '.join(header.names))}); "
            "expected date,metric_id,value[,dimension...] or date,<metric>,<metric>..."
        )
    if ("metric_id" in lowered) != ("value" in lowered):
        raise CsvSourceError(
            f"{rel}: a long file needs both 'metric_id' and 'value' columns "
            f"(found: {excerpt(', '.join(header.names))})"
        )
    clash = [name for name in header.names if name.lower() in _RESERVED_DIMENSIONS]
    if clash and "metric_id" in lowered:  # a long file, whose other columns are dimensions
        raise CsvSourceError(
            f"{rel}: dimension column {excerpt(clash[0])} is ambiguous: staging.csv_observations has a "
            f"built-in column of that name; rename it in the header, e.g. to "
            f"'{clash[0].strip('_')}_dim'"
        )
    if len(header.names) == 1:
        raise CsvSourceError(
            f"{rel}: the header has only a date column; expected "
            "date,metric_id,value[,dimension...] or date,<metric>,<metric>..."
        )
    return header


def _clean_pattern(header: _Header, shapes: dict[int, str]) -> str:
    """The regular expression a clean line matches in full: field i has the shape `shapes[i]`
    (1-based), any other field is unquoted text without blanks at its ends (maybe empty)."""
    d = header.delim
    plain = f'(?:[^"{d} \\t\\r](?:[^"{d}]*[^"{d} \\t\\r])?)?'
    return d.join(f"(?:{shapes.get(i, plain)})" for i in range(1, len(header.names) + 1))


def _parsed_lines(header: _Header, shapes: dict[int, str]) -> str:
    """CTE body: the data lines with their number, text, `clean` flag, quoting and fields
    (blank lines skipped). Only lines that are not clean pay for the quote-aware split. The
    blank test does not use `clean`: a filter on it would be pushed down and run the
    expression twice."""
    d = header.delim
    return f"""
        SELECT line_no, raw_record, clean, chars,
               CASE WHEN clean OR chars > {MAX_LINE_CHARS} THEN true
                    ELSE {well_quoted(d)} END AS well_quoted,
               CASE WHEN chars > {MAX_LINE_CHARS} THEN []::VARCHAR[]
                    WHEN clean THEN string_split(text, '{d}') ELSE {fields(d)} END AS fields
        FROM (
            SELECT rowid + 1 AS line_no, text, length(text) AS chars,
                   CASE WHEN length(text) > {MAX_LINE_CHARS}
                        THEN left(text, {RECORD_CHARS}) || '...' ELSE text END AS raw_record,
                   CASE WHEN length(text) > {MAX_LINE_CHARS} THEN false ELSE regexp_full_match(
                       text, {quote_literal(_clean_pattern(header, shapes))}) END AS clean
            FROM {_LINES} WHERE rowid > 0 AND regexp_matches(text, '[^ \\t\\r]')
        )
    """


def _cell(i: int | str) -> str:
    """Field i, trimmed unless the line is clean (then it has no blanks at its ends)."""
    return f"CASE WHEN clean THEN fields[{i}] ELSE {trim(f'fields[{i}]')} END"


def _unless_clean(check: str) -> str:
    """A shape check that a clean line passed already: skipped there (CASE evaluates lazily)."""
    return f"CASE WHEN clean THEN false ELSE {check} END"


def _bad_number(text: str, number: str) -> str:
    """`files.bad_number` for a cell whose TRY_CAST to DOUBLE is already `number`: a literal that
    overflows to infinity (1e309) is not a number either."""
    shape = _unless_clean(f"NOT regexp_full_match({text}, {quote_literal(NUMBER_PATTERN)})")
    return f"NOT coalesce(isfinite({number}), false) OR {shape}"


def _cases(checks: list[tuple[str, str | None, str]]) -> tuple[str, str, str]:
    """(failed, field, reason): `failed` numbers the first failing check, evaluating each check
    once; `field` and `reason` (over a relation with `failed`) name the field and say why."""
    failed = " ".join(f"WHEN {c} THEN {i}" for i, (c, _, _) in enumerate(checks, 1))
    field_sql = " ".join(
        f"WHEN {i} THEN {quote_literal(f) if f else 'NULL'}"
        for i, (_, f, _) in enumerate(checks, 1)
    )
    reason_sql = " ".join(f"WHEN {i} THEN {r}" for i, (_, _, r) in enumerate(checks, 1))
    return f"CASE {failed} END", f"CASE failed {field_sql} END", f"CASE failed {reason_sql} END"


def _line_checks(header: _Header, date_col: str) -> list[tuple[str, str | None, str]]:
    """Checks of a line and its date, over `well_quoted`, `fields`, `date_txt` and `date`."""
    n = len(header.names)
    date_shape = _unless_clean(f"NOT regexp_full_match(date_txt, {quote_literal(_DATE_PATTERN)})")
    return [
        (
            f"chars > {MAX_LINE_CHARS}",
            None,
            f"'line has ' || chars || ' characters; lines longer than {MAX_LINE_CHARS:,} are not "
            "read (raw_record keeps its start)'",
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
        ("date_txt = ''", date_col, quote_literal(f"{date_col} is empty; {_DATE_HINT}")),
        (
            f"date IS NULL OR {date_shape}",
            date_col,
            f"{quote_literal(date_col + ' ')} || '''' || {sql_excerpt('date_txt')} || ''' is not a valid "
            f"date; {_DATE_HINT}'",
        ),
        (
            date_out_of_range("date"),
            date_col,
            date_range_reason(quote_literal(date_col), "date_txt"),
        ),
    ]


def _long_sql(header: _Header) -> str:
    d, m, v = (header.position(name) for name in ("date", "metric_id", "value"))
    date_col, metric_col, value_col = (header.names[i - 1] for i in (d, m, v))
    dims = sorted((name, i) for i, name in enumerate(header.names, 1) if i not in (d, m, v))
    # Canonical JSON (sorted keys, empty values left out), as to_json of a MAP writes it; each
    # entry starts with a comma that substr drops from the first (concat_ws costs far more).
    entries = " || ".join(
        f"CASE WHEN dim_{i} = '' THEN '' ELSE ',' || to_json({quote_literal(name)})::VARCHAR || ':' "
        f"|| to_json(dim_{i})::VARCHAR END"
        for name, i in dims
    )
    dimensions = f"'{{' || substr({entries}, 2) || '}}'" if dims else "'{}'"
    failed, field_sql, reason_sql = _cases(
        [
            *_line_checks(header, date_col),
            ("metric_txt = ''", metric_col, quote_literal(f"{metric_col} is empty; {_ID_HINT}")),
            (
                _unless_clean(
                    f"NOT regexp_full_match(metric_txt, {quote_literal(METRIC_ID_PATTERN)})"
                ),
                metric_col,
                f"{quote_literal(metric_col + ' ')} || '''' || {sql_excerpt('metric_txt')} "
                "|| ''' is not a valid metric id; "
                f"{_ID_HINT}'",
            ),
            ("value_txt = ''", value_col, quote_literal(f"{value_col} is empty; {_NUMBER_HINT}")),
            (
                _bad_number("value_txt", "value"),
                value_col,
                f"{quote_literal(value_col + ' ')} || '''' || {sql_excerpt('value_txt')} "
                f"|| ''' is not a number; {_NUMBER_HINT}'",
            ),
            (
                beyond_bound("value"),
                value_col,
                bound_reason(quote_literal(value_col), "value_txt"),
            ),
            (
                underflows("value_txt", "value"),
                value_col,
                underflow_reason(quote_literal(value_col), "value_txt"),
            ),
        ]
    )
    shapes = {d: _DATE_PATTERN, m: METRIC_ID_PATTERN, v: NUMBER_PATTERN}
    dim_cells = "".join(f", {_cell(i)} AS dim_{i}" for _, i in dims)
    return f"""
        WITH lines AS ({_parsed_lines(header, shapes)}),
        cells AS (
            SELECT line_no, raw_record, clean, chars, well_quoted, fields,
                   {_cell(d)} AS date_txt, {_cell(m)} AS metric_txt,
                   {_cell(v)} AS value_txt{dim_cells}
            FROM lines
        ),
        typed AS (
            SELECT *, TRY_CAST(date_txt AS DATE) AS date, TRY_CAST(value_txt AS DOUBLE) AS value
            FROM cells
        ),
        checked AS (SELECT *, {failed} AS failed FROM typed)
        SELECT line_no, CASE WHEN failed IS NOT NULL THEN raw_record END AS raw_record,
               {field_sql} AS field, {reason_sql} AS reason,
               date, metric_txt AS metric_id, value, {dimensions} AS dimensions
        FROM checked
    """


def _wide_sql(header: _Header) -> str:
    d = header.position("date")
    date_col = header.names[d - 1]
    metrics = ", ".join(
        f"({quote_literal(name)}, {i}, {str(bool(re.fullmatch(METRIC_ID_PATTERN, name))).lower()})"
        for i, name in enumerate(header.names, 1)
        if i != d
    )
    failed, field_sql, reason_sql = _cases(_line_checks(header, date_col))
    shapes = {i: f"(?:{NUMBER_PATTERN})?" for i in range(1, len(header.names) + 1)}
    shapes[d] = _DATE_PATTERN
    bad = _bad_number("cell", "value")
    in_column = f"' in column ''' || {sql_excerpt('metric')} || ''''"
    return f"""
        WITH lines AS ({_parsed_lines(header, shapes)}),
        dated AS (SELECT *, {_cell(d)} AS date_txt FROM lines),
        checked AS (
            SELECT *, {field_sql} AS field, {reason_sql} AS reason
            FROM (SELECT *, {failed} AS failed
                  FROM (SELECT *, TRY_CAST(date_txt AS DATE) AS date FROM dated))
        ),
        metrics AS (SELECT * FROM (VALUES {metrics}) AS m(metric, position, valid_id)),
        cells AS (
            SELECT line_no, raw_record, clean, date, metric, valid_id,
                   {_cell("position")} AS cell
            FROM checked CROSS JOIN metrics
            WHERE reason IS NULL
        ),
        numbers AS (SELECT *, TRY_CAST(cell AS DOUBLE) AS value FROM cells WHERE cell <> ''),
        judged AS (
            SELECT *, failed IS NOT NULL AS rejected
            FROM (SELECT *, CASE WHEN NOT valid_id THEN 1 WHEN {bad} THEN 2
                                 WHEN {beyond_bound("value")} THEN 3
                                 WHEN {underflows("cell", "value")} THEN 4 END AS failed
                  FROM numbers)
        )
        SELECT line_no, raw_record, field, reason, NULL::DATE AS date, NULL AS metric_id,
               NULL::DOUBLE AS value, NULL AS dimensions
        FROM checked WHERE reason IS NOT NULL
        UNION ALL
        SELECT line_no, CASE WHEN rejected THEN raw_record END,
               CASE WHEN rejected THEN metric END AS field,
               CASE failed WHEN 1 THEN 'column ''' || {sql_excerpt("metric")}
                         || ''' is not a valid metric id ({_ID_HINT}), so its value '''
                         || {sql_excerpt("cell")} || ''' was not loaded'
                    WHEN 2 THEN 'value ''' || {sql_excerpt("cell")} || ''' in column '''
                         || {sql_excerpt("metric")} || ''' is not a number; {_NUMBER_HINT}'
                    WHEN 3 THEN {bound_reason("'value'", "cell", in_column)}
                    WHEN 4 THEN {underflow_reason("'value'", "cell", in_column)}
               END AS reason,
               date, metric, value, '{{}}'
        FROM judged
    """
