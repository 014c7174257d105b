"""Check-ins folder -> `raw.checkins` (docs/checkins.md).

Check-ins are written by people, a few per KR and week, so a file is small: it is parsed in
Python (the csv module, PyYAML) and each record validated on its own. A record that fails goes
to `raw.rejected_rows` with its line and the first field that failed; the others load. A file
that cannot be read at all (not UTF-8, no header, an unknown column, YAML that does not parse
or is not a list of check-ins, bigger than `MAX_FILE_BYTES`) is quarantined by the shared file
loader (`connectors.files.load_files`), which also makes a reload of the same file version a
no-op and a changed version replace what the file loaded before.

- CSV (`*.csv`): a header naming `date`, `kr_id` and `confidence` or `value` (any order; also
  `comment`, `author`), `,` or `;` delimited (whichever the header has more of), RFC 4180
  quoting (a comment may hold the delimiter, quotes and line breaks), UTF-8 with or without BOM.
  A record's line is the line it starts on.
- YAML (`*.yaml`, `*.yml`): a list of mappings with the same keys, or a mapping whose only key
  `checkins` holds that list. Dates may be written bare (2025-02-03) or quoted.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import yaml

from connectors.checkins.tables import CONFIDENCE_WORDS, MAX_CONFIDENCE, RAW_CHECKINS
from connectors.files import (
    FIRST_DATE,
    LAST_DATE,
    MAX_ABS_VALUE,
    MIN_NORMAL,
    NUMBER_PATTERN,
    FileLoadReport,
    FileSourceError,
    FileVersion,
    clip,
    commit_version,
    excerpt,
    load_files,
)
from connectors.tables import RAW_LOADED_FILES, RAW_REJECTED_ROWS
from warehouse.writes import ensure_tables

SOURCE = "checkins"
COLUMNS = ("date", "kr_id", "confidence", "value", "comment", "author")
MAX_FILE_BYTES = 16 << 20
"""A check-in file larger than this is quarantined: people write check-ins, a few per KR a week."""
MAX_COMMENT_CHARS = 10_000
MAX_AUTHOR_CHARS = 200
KR_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NUMBER = re.compile(f"^{NUMBER_PATTERN}$")
TEXT_FIELDS = ("kr_id", "comment", "author")
"""Fields kept as written in YAML: typed, `off` would become False and `0x1F` 31."""
_YAML_NULL = "tag:yaml.org,2002:null"
_YAML_NUMBERS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_ROWS = "_okr_checkin_rows"
_VALUES = "date, kr_id, confidence, confidence_text, value, comment, author"
_ARROW = pa.schema(
    [
        ("line_no", pa.int64()),
        ("raw_record", pa.string()),
        ("field", pa.string()),
        ("reason", pa.string()),
        ("date", pa.date32()),
        ("kr_id", pa.string()),
        ("confidence", pa.float64()),
        ("confidence_text", pa.string()),
        ("value", pa.float64()),
        ("comment", pa.string()),
        ("author", pa.string()),
    ]
)


class CheckinSourceError(FileSourceError):
    """A check-in file (or the folder) cannot be read at all; the message says why."""


def is_checkin_file(path: Path) -> bool:
    return path.name.lower().endswith((".csv", ".yaml", ".yml"))


def load_checkins_folder(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    *,
    now: datetime | None = None,
    strict: bool = False,
) -> FileLoadReport:
    """Load every new or changed check-in file under `folder` (recursively); with `strict`, a
    quarantined file fails the load once the other files have loaded."""
    ensure_tables(con, RAW_CHECKINS, RAW_REJECTED_ROWS, RAW_LOADED_FILES)
    return load_files(
        con,
        SOURCE,
        Path(folder),
        is_checkin_file,
        lambda path, version: (*_load_file(con, path, version), None),
        CheckinSourceError,
        "check-ins folder",
        now=now,
        strict=strict,
    )


@dataclass(frozen=True)
class Record:
    """One check-in as written: where it starts, its fields as text or YAML scalars, and its
    text for `raw.rejected_rows`."""

    line: int
    fields: dict[str, Any]
    text: str
    problem: str | None = None
    """Why the record as a whole is no check-in (its shape), before any field is read."""


def read_records(path: Path) -> list[Record]:
    """The file's check-ins, unvalidated; raises CheckinSourceError when the file cannot be
    read as check-ins at all."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CheckinSourceError(
            f"is {size:,} bytes, more than the {MAX_FILE_BYTES >> 20} MiB a check-in file may "
            "have; split it into several files"
        )
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CheckinSourceError(
            f"is not UTF-8 text (byte {exc.start}); save it as UTF-8 and run again"
        ) from exc
    if path.name.lower().endswith(".csv"):
        return list(_csv_records(text))
    return list(_yaml_records(text))


def _csv_records(text: str) -> Iterator[Record]:
    lines = io.StringIO(text, newline="").readlines()  # line ends as the csv module sees them
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        raise CheckinSourceError("is empty; a check-in file needs a header line")
    header_line = lines[header_at]
    delim = ";" if header_line.count(";") > header_line.count(",") else ","
    names = [name.strip().lower() for name in next(csv.reader([header_line], delimiter=delim))]
    _check_columns(names)
    reader = csv.reader(io.StringIO("".join(lines[header_at + 1 :]), newline=""), delimiter=delim)
    consumed = header_at + 1
    while True:
        start = consumed + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CheckinSourceError(f"line {start}: {clip(str(exc))}; fix the quoting") from exc
        record_text = "".join(lines[consumed : header_at + 1 + reader.line_num]).rstrip("\r\n")
        consumed = header_at + 1 + reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            problem = f"the record has {len(row)} fields where the header has {len(names)}"
            yield Record(start, {}, record_text, problem)
            continue
        yield Record(start, dict(zip(names, row, strict=True)), record_text)


def _check_columns(names: list[str]) -> None:
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        raise CheckinSourceError(
            f"has column(s) {', '.join(map(excerpt, unknown))} a check-in does not have; "
            f"allowed: {', '.join(COLUMNS)}"
        )
    if len(set(names)) != len(names):
        raise CheckinSourceError("names a column twice in its header")
    missing = [name for name in ("date", "kr_id") if name not in names]
    if missing or not {"confidence", "value"} & set(names):
        raise CheckinSourceError(
            "needs the columns date, kr_id and confidence or value (also allowed: comment, "
            f"author); missing: {', '.join(missing) or 'confidence or value'}"
        )


def _yaml_records(text: str) -> Iterator[Record]:
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except RecursionError:
        raise CheckinSourceError("nests lists or mappings too deeply to be check-ins") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = clip(str(getattr(exc, "problem", None) or exc))
        raise CheckinSourceError(f"is not valid YAML{where} ({problem}); fix it") from None
    if root is None:
        return
    if isinstance(root, yaml.MappingNode) and [k.value for k, _ in root.value] == ["checkins"]:
        root = root.value[0][1]
    if not isinstance(root, yaml.SequenceNode):
        raise CheckinSourceError(
            "is not a list of check-ins; write a list of mappings (date, kr_id, confidence, "
            "comment, author, value), or put the list under a `checkins:` key"
        )
    lines = text.splitlines()
    for item in root.value:
        line = item.start_mark.line + 1
        record_text = "\n".join(lines[item.start_mark.line : max(item.end_mark.line, line)])
        if not isinstance(item, yaml.MappingNode):
            problem = f"the item is not a mapping of {', '.join(COLUMNS)}"
            yield Record(line, {}, record_text, problem)
            continue
        if not all(isinstance(key, yaml.ScalarNode) for key, _ in item.value):
            # Never turned into text: an alias to nested lists would expand exponentially.
            problem = f"a key is a list or mapping; keys are the field names {', '.join(COLUMNS)}"
            yield Record(line, {}, record_text, problem)
            continue
        yield Record(
            line, {key.value: _yaml_value(key.value, node) for key, node in item.value}, record_text
        )


def _yaml_value(name: str, node: yaml.Node) -> Any:
    """A field's YAML value: a list or mapping as its node (rejected as not a single value), a
    text field as written, a plain decimal number as its text (judged as in CSV files),
    anything else as YAML types it."""
    if not isinstance(node, yaml.ScalarNode):
        return node
    if node.tag == _YAML_NULL:
        return None
    if name in TEXT_FIELDS or (node.tag in _YAML_NUMBERS and NUMBER.match(node.value)):
        return node.value
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    """A scalar as YAML types it (numbers, dates, null), built on its own: nothing nested, so an
    alias cannot expand into more than one node."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node)
    except (yaml.YAMLError, ValueError, OverflowError):  # 2025-02-30: judged as text
        return node.value
    finally:
        loader.dispose()


# -- validation -----------------------------------------------------------------------------


def validate(record: Record) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """(the check-in's typed fields, None, None), or (None, field, reason) for the first field
    that fails."""
    if record.problem:
        return None, None, record.problem
    fields = record.fields
    unknown = sorted(set(fields) - set(COLUMNS))
    if unknown:
        return None, unknown[0], f"is not a field of a check-in; allowed: {', '.join(COLUMNS)}"
    typed: dict[str, Any] = {}
    for name, check in _CHECKS:
        value = fields.get(name)
        if isinstance(value, yaml.Node):
            return None, name, "must be a single value, not a list or mapping"
        if isinstance(value, str):
            value = value.strip()
        if value in (None, ""):
            value = None
        try:
            typed.update(check(value))
        except ValueError as exc:
            return None, name, str(exc)
    if typed["confidence"] is None and typed["value"] is None:
        return None, "confidence", "is missing; a check-in needs a confidence, a value or both"
    return typed, None, None


def _date(value: Any) -> dict[str, Any]:
    if value is None:
        raise ValueError("is missing; give the day of the check-in as YYYY-MM-DD")
    if isinstance(value, datetime):
        raise ValueError(f"'{value.isoformat()}' is a time; give the day as YYYY-MM-DD")
    if not isinstance(value, date):
        text = str(value)
        try:
            if not ISO_DAY.match(text):
                raise ValueError
            value = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{excerpt(text)} is not a date; use YYYY-MM-DD") from None
    if not FIRST_DATE <= value.isoformat() <= LAST_DATE:
        raise ValueError(f"{value} is outside the plausible range {FIRST_DATE} .. {LAST_DATE}")
    return {"date": value}


def _kr_id(value: Any) -> dict[str, Any]:
    if value is None:
        raise ValueError("is missing; name the key result's id from okrs.yaml")
    text = str(value)
    if not KR_ID.match(text) or len(text) > 200:
        raise ValueError(
            f"{excerpt(text)} is not a key result id (lowercase letters, digits, '_', '.', '-')"
        )
    return {"kr_id": text}


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        number = float(value)
    elif NUMBER.match(text := str(value)):
        number = float(text)
    else:
        raise ValueError(f"{excerpt(str(value))} is not {what}")
    if not math.isfinite(number):
        raise ValueError(f"{clip(str(value))} is not a finite number")
    if abs(number) > MAX_ABS_VALUE:
        raise ValueError(f"{clip(str(value))} is beyond the bound of +-1e15")
    if abs(number) < MIN_NORMAL and re.search("[1-9]", re.split("[eE]", str(value))[0]):
        raise ValueError(
            f"{excerpt(str(value))} is too small to represent: a nonzero number below 2.2e-308 "
            "in magnitude would load as 0 or lose precision"
        )
    return number


def _confidence(value: Any) -> dict[str, Any]:
    if value is None:
        return {"confidence": None, "confidence_text": None}
    text = str(value)
    word = CONFIDENCE_WORDS.get(text.lower()) if isinstance(value, str) else None
    number = (
        word if word is not None else _number(value, "a confidence: use 0-10, low, medium or high")
    )
    if not 0 <= number <= MAX_CONFIDENCE:
        raise ValueError(f"{clip(text)} is outside the scale 0-10 (or use low, medium, high)")
    return {"confidence": number, "confidence_text": text}


def _value(value: Any) -> dict[str, Any]:
    return {"value": None if value is None else _number(value, "a number")}


def _text(name: str, limit: int):
    def check(value: str | None) -> dict[str, Any]:
        if value is not None and len(value) > limit:
            raise ValueError(f"has {len(value):,} characters, more than the {limit:,} allowed")
        return {name: value}

    return check


_CHECKS = (
    ("date", _date),
    ("kr_id", _kr_id),
    ("confidence", _confidence),
    ("value", _value),
    ("comment", _text("comment", MAX_COMMENT_CHARS)),
    ("author", _text("author", MAX_AUTHOR_CHARS)),
)


# -- loading --------------------------------------------------------------------------------


def _load_file(con: duckdb.DuckDBPyConnection, path: Path, version: FileVersion) -> tuple[int, int]:
    """Load one file version in one transaction: (rows loaded, rows rejected)."""
    rows: list[dict[str, Any]] = []
    for record in read_records(path):
        typed, field, reason = validate(record)
        rows.append(
            {
                "line_no": record.line,
                "raw_record": None if typed else record.text[:1000],
                "field": field,
                "reason": reason if reason is None or field is None else f"{field} {reason}",
                **(typed or {}),
            }
        )
    con.register(_ROWS, pa.Table.from_pylist(rows, schema=_ARROW))
    try:
        return commit_version(con, version, RAW_CHECKINS, _ROWS, _VALUES, _VALUES)
    finally:
        con.unregister(_ROWS)


def file_dates(path: Path, kind: str, timezone: str) -> tuple[date, date] | None:
    """The first and last day of the file's valid check-ins (for the file sensor)."""
    try:
        days = [typed["date"] for typed, _, _ in map(validate, read_records(path)) if typed]
    except (CheckinSourceError, OSError):
        return None
    return (min(days), max(days)) if days else None
