"""The analytics exports source: real files in a temp folder, a real DuckDB file, hand-checked rows."""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
from okr_fixtures import quarantined, raw_snapshot, rejects

import connectors.analytics.extract as analytics_extract
from connectors import files
from connectors.analytics.extract import AnalyticsSourceError, load_analytics_exports, snake_case
from connectors.analytics.staging import (
    refresh_analytics_report_view,
    stage_analytics_events,
    stage_analytics_report,
)
from connectors.analytics.tables import STAGING_ANALYTICS_EVENTS, STAGING_ANALYTICS_REPORT_LONG

T1 = datetime(2025, 7, 1, 8, 0, tzinfo=UTC)
T2 = datetime(2025, 7, 2, 8, 0, tzinfo=UTC)
Q1 = (date(2025, 1, 1), date(2025, 3, 31))
Q2 = (date(2025, 4, 1), date(2025, 6, 30))
TS_HINT = "expected ISO-8601 with a UTC offset such as 2025-03-31T23:30:00-05:00 or ...Z"
NUMBER_HINT = "expected a number such as 1234, 1,234 or 12.5"


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "analytics"
    path.mkdir()
    return path


def write(folder: Path, rel: str, data: str | bytes) -> Path:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    path.write_bytes(gzip.compress(raw) if rel.endswith(".gz") else raw)
    return path


def event(name: str, ts: str, user: object = "u1", **extra: object) -> str:
    record: dict[str, object] = {"event": name, "timestamp": ts}
    if user is not None:
        record["user_id"] = user
    record.update(extra)
    return json.dumps(record)


def events(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "SELECT _source_ref, _source_row, event, timezone('UTC', timestamp)::VARCHAR, user_id, "
        "anonymous_id, properties::VARCHAR FROM raw.analytics_events "
        "ORDER BY _source_ref, _source_row"
    ).fetchall()


def cells(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "SELECT _source_ref, _source_row, report, date::VARCHAR, column_name, value "
        "FROM raw.analytics_report ORDER BY _source_ref, _source_row, column_name"
    ).fetchall()


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return raw_snapshot(
        con, "analytics_events", "analytics_report", "rejected_rows", "loaded_files"
    )


# -- events ---------------------------------------------------------------------------------------


def test_plain_and_gz_events_load_with_offsets_lineage_and_queryable_properties(con, folder):
    """Both compressions load; offsets become instants; blank lines count; properties nest."""
    write(
        folder,
        "web/events.jsonl",
        "\n".join(
            [
                event(
                    "signup",
                    "2025-03-31T23:30:00-05:00",
                    properties={"plan": "pro", "seats": 3, "utm": {"source": "ads"}},
                ),
                "",
                event("login", "2025-04-01T06:00:00+02:00", user=42, anonymous_id="a-9"),
                event(
                    "view", "2025-04-02T10:00:00Z", user=None, anonymous_id="a-1", properties=None
                ),
            ]
        )
        + "\n",
    )
    write(
        folder,
        "app/day.ndjson.gz",
        event("open", "2025-04-03T00:15:00.250+0530", user="", anonymous_id="a-2") + "\r\n",
    )
    report = load_analytics_exports(con, folder, now=T1)
    assert events(con) == [
        ("app/day.ndjson.gz", 1, "open", "2025-04-02 18:45:00.25", None, "a-2", "{}"),
        (
            "web/events.jsonl",
            1,
            "signup",
            "2025-04-01 04:30:00",
            "u1",
            None,
            '{"plan":"pro","seats":3,"utm":{"source":"ads"}}',
        ),
        ("web/events.jsonl", 3, "login", "2025-04-01 04:00:00", "42", "a-9", "{}"),
        ("web/events.jsonl", 4, "view", "2025-04-02 10:00:00", None, "a-1", "{}"),
    ]
    assert con.execute(
        "SELECT properties->>'plan', (properties->>'seats')::INT, properties->'utm'->>'source' "
        "FROM raw.analytics_events WHERE event = 'signup'"
    ).fetchall() == [("pro", 3, "ads")]
    assert rejects(con) == []
    assert (report.files_seen, report.files_loaded, report.rows_loaded, report.rows_rejected) == (
        2,
        ["app/day.ndjson.gz", "web/events.jsonl"],
        4,
        0,
    )
    registry = con.execute(
        "SELECT source, source_ref, batch_id, rows_loaded, rows_rejected, loaded_at "
        "FROM raw.loaded_files ORDER BY source_ref"
    ).fetchall()
    lineage = con.execute(
        "SELECT DISTINCT _source, _source_ref, _batch_id, _loaded_at FROM raw.analytics_events "
        "ORDER BY _source_ref"
    ).fetchall()
    assert [row[:2] + row[3:] for row in registry] == [
        ("analytics", "app/day.ndjson.gz", 1, 0, T1),
        ("analytics", "web/events.jsonl", 3, 0, T1),
    ]
    assert lineage == [("analytics", ref, batch, at) for _, ref, batch, _, _, at in registry]


def test_each_kind_of_malformed_event_is_quarantined_while_the_rest_loads(con, folder):
    """Each bad line is rejected once, with file:line, the field, a reason and the line itself."""
    ok = "2025-04-01T12:00:00Z"
    lines = [
        event("good", ok),  # 1
        '{"event": "x", "timestamp": ',  # 2 bad JSON
        "[1, 2]",  # 3 not an object
        event("x", ok).replace('"event": "x", ', ""),  # 4 no event
        json.dumps({"event": 7, "timestamp": ok, "user_id": "u"}),  # 5 event not a string
        event("", ok),  # 6 empty event
        json.dumps({"event": "x", "user_id": "u"}),  # 7 no timestamp
        event("x", "2025-04-01T12:00:00"),  # 8 no offset
        event("x", "2025-02-30T12:00:00Z"),  # 9 no such day
        event("x", "01/04/2025 12:00 +00:00"),  # 10 not ISO
        json.dumps({"event": "x", "timestamp": 1743508800, "user_id": "u"}),  # 11 epoch number
        event("x", ok, user={"id": 1}),  # 12 user_id an object
        event("x", ok, user="u", anonymous_id=["a"]),  # 13 anonymous_id an array
        event("x", ok, user=None),  # 14 no id at all
        event("x", ok, user=" ", anonymous_id=""),  # 15 only empty ids
        event("x", ok, properties=["plan"]),  # 16 properties an array
        event("x", ok, properties="pro"),  # 17 properties a string
        event("last", "2025-04-01T12:00:00.5-01:30", user=1.5),  # 18 good
    ]
    write(folder, "bad.jsonl", "\n".join(lines))  # no final newline: the last line still counts
    report = load_analytics_exports(con, folder, now=T1)
    assert [row[1:4] for row in events(con)] == [
        (1, "good", "2025-04-01 12:00:00"),
        (18, "last", "2025-04-01 13:30:00.5"),
    ]
    assert events(con)[1][4] == "1.5"
    got = rejects(con)
    assert [row[:3] for row in got] == [
        ("bad.jsonl:2", None, "line is not valid JSON"),
        (
            "bad.jsonl:3",
            None,
            "line is JSON but not an object (array); each line must be one "
            'event object {"event": ..., "timestamp": ..., ...}',
        ),
        ("bad.jsonl:4", "event", "event is missing; every event needs a name"),
        ("bad.jsonl:5", "event", "event must be a string, not ubigint"),
        ("bad.jsonl:6", "event", "event is empty; every event needs a name"),
        ("bad.jsonl:7", "timestamp", f"timestamp is missing; {TS_HINT}"),
        (
            "bad.jsonl:8",
            "timestamp",
            "timestamp '2025-04-01T12:00:00' has no UTC offset, so its "
            f"instant is unknown; {TS_HINT}",
        ),
        (
            "bad.jsonl:9",
            "timestamp",
            f"timestamp '2025-02-30T12:00:00Z' is not a valid timestamp; {TS_HINT}",
        ),
        (
            "bad.jsonl:10",
            "timestamp",
            f"timestamp '01/04/2025 12:00 +00:00' is not a valid timestamp; {TS_HINT}",
        ),
        ("bad.jsonl:11", "timestamp", f"timestamp must be a string, not ubigint; {TS_HINT}"),
        ("bad.jsonl:12", "user_id", "user_id must be a string or a number, not object"),
        ("bad.jsonl:13", "anonymous_id", "anonymous_id must be a string or a number, not array"),
        (
            "bad.jsonl:14",
            "user_id",
            "neither user_id nor anonymous_id is set; an event needs at least one",
        ),
        (
            "bad.jsonl:15",
            "user_id",
            "neither user_id nor anonymous_id is set; an event needs at least one",
        ),
        ("bad.jsonl:16", "properties", "properties must be a JSON object, not array"),
        ("bad.jsonl:17", "properties", "properties must be a JSON object, not varchar"),
    ]
    assert [row[3] for row in got] == lines[1:17]
    assert (report.rows_loaded, report.rows_rejected) == (2, 16)
    assert (
        con.execute("SELECT DISTINCT source, batch_id FROM raw.rejected_rows").fetchall()
        == con.execute("SELECT 'analytics', batch_id FROM raw.loaded_files").fetchall()
    )


def test_good_and_bad_lines_past_a_row_group_keep_their_exact_line_numbers(con, folder):
    """A big CRLF file mixing good, bad and blank lines: every row and reject keeps its physical
    line, also when the session had `preserve_insertion_order` off (reading turns it on)."""
    total = 130_000  # more than one DuckDB row group (122,880 rows)
    bad = {
        2: "not json",
        122_880: "[1]",
        122_881: json.dumps({"event": "x", "user_id": "u"}),
        129_999: event("x", "2025-04-01T12:00:00"),
    }
    blank = {3, 122_882}
    lines = [
        bad.get(n, "" if n in blank else event("tick", "2025-04-01T12:00:00Z", user=f"u{n}"))
        for n in range(1, total + 1)
    ]
    write(folder, "big.jsonl", "\r\n".join(lines) + "\r\n")
    con.execute("SET preserve_insertion_order = false")
    report = load_analytics_exports(con, folder, now=T1)
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() == (False,)
    assert (report.rows_loaded, report.rows_rejected) == (total - len(bad) - len(blank), len(bad))
    assert con.execute(
        "SELECT count(*), min(_source_row), max(_source_row) FROM raw.analytics_events "
        "WHERE user_id = 'u' || _source_row"
    ).fetchone() == (report.rows_loaded, 1, total)
    assert [(row[0], row[3]) for row in rejects(con)] == [
        (f"big.jsonl:{n}", text) for n, text in sorted(bad.items())
    ]


# Good lines the quick test does not vouch for, next to lines it does and bad lines like them.
TRICKY_LINES = [
    '  {"event": "a", "timestamp": "2025-04-01T12:00:00Z", "user_id": "u"}',
    '{"event": "say \\"hi\\"", "timestamp": "2025-04-01T12:00:00Z", "user_id": "u\\u00e9"}',
    '{"event": "\\u00a0", "timestamp": "2025-04-01T12:00:00Z", "user_id": "u"}',
    '{"event": "\u00a0x", "timestamp": "2025-04-01T12:00:00Z", "user_id": "u"}',
    '{"event": " ", "timestamp": "2025-04-01T12:00:00Z", "user_id": "u"}',
    '{"event": "a", "timestamp": " 2025-04-01T12:00:00Z\u00a0", "user_id": "u"}',
    '{"event": "a", "timestamp": "\\u0032025-04-01T12:00:00+05", "user_id": "u"}',
    '{"event": "a", "timestamp": "2025-04-01 12:00+0530", "user_id": 1e-7}',
    '{"event": "a", "timestamp": "2025-04-01T12:00:00.123456789-01:30", "user_id": -0}',
    '{"event": "a", "timestamp": "2025-04-01T12:00:00Z", "user_id": 12345678901234567890123}',
    '{"event": "a", "timestamp": "2025-04-01T12:00:00Z", "user_id": NaN}',
    '{"event": "a", "timestamp": "2025-04-01T12:00:00Z", "user_id": -Infinity}',
    '{"event": "a", "timestamp": "2025-04-01T12:00:00Z", "user_id": " ", "anonymous_id": 7}',
    '{"event": "a", "timestamp": "2025-04-01T12:00:00Z", "user_id": "\u3000"}',
    '{"event": "a", "timestamp": "2025-04-01T12:00:00Z", "user_id": true}',
    '{"event": "a", "timestamp": "2025-04-01T12:00:00Z", "user_id": "true"}',
    '{"event": "a", "timestamp": "2025-04-01T12:00:00Z", "anonymous_id": {"x": 1}, "user_id": 1}',
    '{"event": "a", "timestamp": "2025-04-01T12:00:00Z", "user_id": null, "anonymous_id": "z"}',
    '{"event": "a", "timestamp": "2025-04-01T12:00:00Z", "user_id": "u", "properties": null}',
    '{"event": "a", "timestamp": "2025-04-01T12:00:00Z", "user_id": "u", "properties": {"a": [1, 2.0]}}',
    '{"event": "a", "timestamp": "2025-04-01T12:00:00Z", "user_id": "u", "properties": "{}"}',
    '{"event": "a", "event": 5, "timestamp": "2025-04-01T12:00:00Z", "user_id": "u"}',
    '{"event": 5, "event": "a", "timestamp": "2025-04-01T12:00:00Z", "user_id": "u"}',
    '{"Event": "a", "timestamp": "2025-04-01T12:00:00Z", "user_id": "u"}',
    '{"event": "a", "timestamp": 20250401, "user_id": "u"}',
    '{"event": "a", "timestamp": "2025-04-01T12:00:00 +00:00", "user_id": "u"}',
    '{"event": "a", "timestamp": "2025-04-01T12:00:00", "user_id": "u"}',
    '"just a string"',
    "",
]


def test_the_quick_test_for_good_lines_agrees_with_the_exact_checks(
    con, folder, tmp_path, monkeypatch
):
    """Loading with the quick test switched off (every line through the exact checks) gives the
    same rows and rejects."""
    write(folder, "tricky.jsonl", "\n".join(TRICKY_LINES) + "\n")
    report = load_analytics_exports(con, folder, now=T1)
    assert (report.rows_loaded, report.rows_rejected) == (16, 12)
    first_failure = analytics_extract._first_failure
    monkeypatch.setattr(
        analytics_extract, "_first_failure", lambda checks, ok: first_failure(checks, "false")
    )
    exact = duckdb.connect(str(tmp_path / "exact.duckdb"))
    load_analytics_exports(exact, folder, now=T1)
    assert events(exact) == events(con)
    assert rejects(exact) == rejects(con)
    exact.close()


def truncated_gzip(complete_lines: list[str], partial: str) -> bytes:
    """A gzip stream holding the lines and the start of one more, then cut off: a full flush
    makes everything written so far decodable, and the stream has no end marker or trailer."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip header
    data = ("\n".join(complete_lines) + "\n" + partial).encode()
    return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)


def test_a_truncated_gzip_loads_its_readable_lines_and_rejects_the_damage(con, folder, monkeypatch):
    """The complete lines before the damage load (read in many small chunks, numbered right);
    one rejected row at the next line names the gzip error and keeps the partial line."""
    monkeypatch.setattr(analytics_extract, "CHUNK_BYTES", 100)  # ~1 line per chunk
    chunks: list[int] = []
    append = analytics_extract._append_lines

    def counting_append(con, data, rel, lines_done):
        chunks.append(lines_done)
        return append(con, data, rel, lines_done)

    monkeypatch.setattr(analytics_extract, "_append_lines", counting_append)
    lines = [
        event("tick", f"2025-04-01T00:{minute:02d}:00Z", user=f"u{minute}") for minute in range(40)
    ]
    lines[24] = "oops"
    (folder / "cut.jsonl.gz").write_bytes(truncated_gzip(lines, '{"event": "cu'))
    with pytest.raises(EOFError):  # the fixture really is damaged
        gzip.decompress((folder / "cut.jsonl.gz").read_bytes())
    report = load_analytics_exports(con, folder, now=T1)
    loaded = events(con)
    assert [row[1] for row in loaded] == [*range(1, 25), *range(26, 41)]
    assert loaded[-1][3:5] == ("2025-04-01 00:39:00", "u39")
    got = rejects(con)
    assert got[0] == ("cut.jsonl.gz:25", None, "line is not valid JSON", "oops")
    assert got[1][0] == "cut.jsonl.gz:41" and got[1][1] is None and got[1][3] == '{"event": "cu'
    assert got[1][2].startswith(
        "gzip stream is damaged after line 40 (EOFError: Compressed file "
        "ended before the end-of-stream marker was reached; DuckDB: "
    )
    assert "GZIP" in got[1][2].split("DuckDB: ")[1]  # DuckDB was tried first and gave up
    assert len(got) == 2
    assert len(chunks) >= 20  # streamed a few lines at a time, never the whole file at once
    assert (report.rows_loaded, report.rows_rejected) == (39, 2)
    assert report.warnings == [f"cut.jsonl.gz:41: {got[1][2]}"]
    before = snapshot(con)
    assert load_analytics_exports(con, folder, now=T2).files_skipped == ["cut.jsonl.gz"]
    assert snapshot(con) == before


def test_a_gzip_cut_before_its_first_line_is_quarantined(con, folder):
    write(folder, "ok.jsonl", event("a", "2025-04-01T00:00:00Z") + "\n")
    (folder / "tiny.json.gz").write_bytes(gzip.compress(b'{"event": "a"}\n')[:5])
    (folder / "plain.jsonl.gz").write_bytes(b'{"event": "not gzip at all"}\n')
    report = load_analytics_exports(con, folder, now=T1)
    assert [row[0] for row in events(con)] == ["ok.jsonl"]
    assert report.files_loaded == ["ok.jsonl"]
    assert [row[1:5] for row in quarantined(con)] == [
        ("plain.jsonl.gz", None, report.files_quarantined["plain.jsonl.gz"], None),
        ("tiny.json.gz", None, report.files_quarantined["tiny.json.gz"], None),
    ]
    for reason in report.files_quarantined.values():
        assert reason.startswith("not a readable gzip file, it breaks before its first line (")
        assert reason.endswith("); export it again")
    assert con.execute("SELECT count(*) FROM raw.rejected_rows").fetchall() == [(2,)]


# -- reports --------------------------------------------------------------------------------------

REPORT = (
    "# ----------------------------------------\n"  # 1
    "# Traffic overview\n"  # 2
    "# Start date: 20250101\n"  # 3
    "# End date: 20250331\n"  # 4
    "# ----------------------------------------\n"  # 5
    "\n"  # 6
    "Date,Active users,Sessions,Conversions\r\n"  # 7 (exported on Windows: CRLF from here on)
    '20250101,"1,234",1500,12\r\n'  # 8
    '20250102,987,"12,345.5",\r\n'  # 9 empty cell: no value, not an error
    "20250103,n/a,17,3\r\n"  # 10 bad cell: only that cell is rejected
    "20250230,1,2,3\r\n"  # 11 no such day
    "2025-01-04,4,5,6\r\n"  # 12 ISO is accepted too
    "20250105,1,2\r\n"  # 13 too few fields
    ',"2,225","13,862.5",15\r\n'  # 14 totals row (first cell empty)
    "Total,1,1,1\r\n"  # 15 totals row
)


def test_report_csv_lands_long_with_snake_case_columns_and_no_totals(con, folder):
    """Preamble and totals are skipped, YYYYMMDD and thousands separators parsed, cells long."""
    write(folder, "ga/Traffic overview.csv", REPORT)
    report = load_analytics_exports(con, folder, now=T1)
    ref = "ga/Traffic overview.csv"
    assert cells(con) == [
        (ref, 8, "Traffic overview", "2025-01-01", "active_users", 1234.0),
        (ref, 8, "Traffic overview", "2025-01-01", "conversions", 12.0),
        (ref, 8, "Traffic overview", "2025-01-01", "sessions", 1500.0),
        (ref, 9, "Traffic overview", "2025-01-02", "active_users", 987.0),
        (ref, 9, "Traffic overview", "2025-01-02", "sessions", 12345.5),
        (ref, 10, "Traffic overview", "2025-01-03", "conversions", 3.0),
        (ref, 10, "Traffic overview", "2025-01-03", "sessions", 17.0),
        (ref, 12, "Traffic overview", "2025-01-04", "active_users", 4.0),
        (ref, 12, "Traffic overview", "2025-01-04", "conversions", 6.0),
        (ref, 12, "Traffic overview", "2025-01-04", "sessions", 5.0),
    ]
    assert rejects(con) == [
        (
            f"{ref}:10",
            "Active users",
            f"value 'n/a' in column 'Active users' is not a number; {NUMBER_HINT}",
            "20250103,n/a,17,3",
        ),
        (
            f"{ref}:11",
            "Date",
            "Date '20250230' is not a valid date; expected YYYYMMDD such as 20250131",
            "20250230,1,2,3",
        ),
        (f"{ref}:13", None, "line has 3 fields but the header has 4", "20250105,1,2"),
    ]
    assert (report.rows_loaded, report.rows_rejected) == (10, 3)


def test_gz_report_with_semicolons_and_the_date_column_elsewhere(con, folder):
    write(folder, "weekly.csv.gz", "# export\nSessions;Date;Bounce rate\n10;20250301;0.5\n")
    load_analytics_exports(con, folder, now=T1)
    assert cells(con) == [
        ("weekly.csv.gz", 3, "weekly", "2025-03-01", "bounce_rate", 0.5),
        ("weekly.csv.gz", 3, "weekly", "2025-03-01", "sessions", 10.0),
    ]


@pytest.mark.parametrize(
    ("display", "snake"),
    [
        ("Active users", "active_users"),
        ("Date", "date"),
        ("Avg. session duration (s)", "avg_session_duration_s"),
        ("activeUsers", "active_users"),
        ("Événements", "evenements"),
        ("7-day active users", "_7_day_active_users"),
    ],
)
def test_snake_case_of_display_names(display, snake):
    assert snake_case(display) == snake


# -- idempotency and errors -----------------------------------------------------------------------


def test_loading_the_same_folder_twice_changes_nothing(con, folder):
    write(folder, "e.jsonl", event("a", "2025-04-01T00:00:00Z") + "\nbroken\n")
    write(folder, "e2.json.gz", event("b", "2025-04-01T00:00:00Z") + "\n")
    write(folder, "r.csv", "Date,Sessions\n20250101,5\n20250102,x\n")
    first = load_analytics_exports(con, folder, now=T1)
    before = snapshot(con)
    second = load_analytics_exports(con, folder, now=T2)
    assert snapshot(con) == before
    assert (first.files_loaded, first.files_skipped) == (["e.jsonl", "e2.json.gz", "r.csv"], [])
    assert (second.files_loaded, second.files_skipped) == ([], ["e.jsonl", "e2.json.gz", "r.csv"])
    assert (second.rows_loaded, second.rows_rejected) == (0, 0)
    assert [len(rows) for rows in before.values()] == [2, 1, 2, 3]


def test_a_changed_file_replaces_everything_it_loaded_before(con, folder):
    write(folder, "e.jsonl", event("a", "2025-04-01T00:00:00Z") + "\nbroken\n")
    write(folder, "r.csv", "Date,Sessions\n20250101,5\n20250102,x\n")
    write(folder, "other.jsonl", event("o", "2025-04-01T00:00:00Z") + "\n")
    load_analytics_exports(con, folder, now=T1)
    other = con.execute(
        "SELECT * FROM raw.analytics_events WHERE _source_ref = 'other.jsonl'"
    ).fetchall()
    write(folder, "e.jsonl", "\n" + event("b", "2025-04-02T00:00:00Z") + "\n")
    write(folder, "r.csv", "Date,Users\n20250103,7\n")
    report = load_analytics_exports(con, folder, now=T2)
    assert (report.files_loaded, report.files_skipped) == (["e.jsonl", "r.csv"], ["other.jsonl"])
    assert [row[:3] for row in events(con)] == [("e.jsonl", 2, "b"), ("other.jsonl", 1, "o")]
    assert cells(con) == [("r.csv", 2, "r", "2025-01-03", "users", 7.0)]
    assert rejects(con) == []
    registry = con.execute(
        "SELECT source_ref, rows_loaded, rows_rejected, loaded_at, batch_id FROM raw.loaded_files "
        "ORDER BY source_ref"
    ).fetchall()
    assert [row[:4] for row in registry] == [
        ("e.jsonl", 1, 0, T2),
        ("other.jsonl", 1, 0, T1),
        ("r.csv", 1, 0, T2),
    ]
    assert con.execute(
        "SELECT DISTINCT _batch_id FROM raw.analytics_events WHERE _source_ref = 'e.jsonl'"
    ).fetchall() == [(registry[0][4],)]
    assert (
        con.execute(
            "SELECT * FROM raw.analytics_events WHERE _source_ref = 'other.jsonl'"
        ).fetchall()
        == other
    )


def test_a_failed_replacement_rolls_back_to_the_previous_version(con, folder, monkeypatch):
    """Delete, insert and registry write are one transaction: a failure at the end undoes all."""
    write(folder, "e.jsonl", event("a", "2025-04-01T00:00:00Z") + "\nbroken\n")
    load_analytics_exports(con, folder, now=T1)
    before = snapshot(con)
    write(folder, "e.jsonl", event("b", "2025-04-01T00:00:00Z") + "\n")
    real = files.sha256
    # A NULL size violates raw.loaded_files' NOT NULL: the last statement of the transaction fails.
    monkeypatch.setattr(files, "sha256", lambda path: (real(path)[0], None))
    with pytest.raises(duckdb.ConstraintException):
        load_analytics_exports(con, folder, now=T2)
    assert snapshot(con) == before


@pytest.mark.parametrize(
    ("rel", "content", "problem"),
    [
        ("b/latin1.jsonl", '{"event": "caf\xe9"}\n'.encode("latin-1"), "not UTF-8 text (line 1)"),
        ("b/nodate.csv", b"# x\nDay,Sessions\n20250101,1\n", "has no Date column"),
        ("b/empty.csv", b"# only comments\n\n", "has no header line"),
        ("b/dupes.csv", b"Date,Active users,Active-Users\n", "all become 'active_users'"),
        ("b/reserved.csv", b"Date,Quarter start\n20250101,1\n", "is reserved ('quarter_start')"),
    ],
)
def test_an_unreadable_file_is_quarantined_while_other_files_load(
    con, folder, rel, content, problem
):
    write(folder, "a.jsonl", event("a", "2025-04-01T00:00:00Z") + "\n")
    write(folder, rel, content)
    write(folder, "c.csv", "Date,Sessions\n20250101,5\n")
    write(folder, "ignored.txt", "not an export")
    report = load_analytics_exports(con, folder, now=T1)
    assert (report.files_seen, report.files_loaded) == (3, ["a.jsonl", "c.csv"])
    [(quarantined_rel, reason)] = report.files_quarantined.items()
    assert quarantined_rel == rel and problem in reason
    assert [row[:5] for row in quarantined(con)] == [("analytics", rel, None, reason, None)]
    assert con.execute("SELECT count(*) FROM raw.rejected_rows").fetchall() == [(1,)]
    assert con.execute("SELECT source_ref FROM raw.loaded_files ORDER BY 1").fetchall() == [
        ("a.jsonl",),
        ("c.csv",),
    ]
    # Unchanged, it is not read again; fixed, it loads and its quarantine row goes.
    before = snapshot(con)
    assert load_analytics_exports(con, folder, now=T2).files_quarantined == {rel: reason}
    assert snapshot(con) == before
    good = event("b", "2025-04-02T00:00:00Z") + "\n"
    write(folder, rel, "Date,Sessions\n20250102,7\n" if rel.endswith(".csv") else good)
    fixed = load_analytics_exports(con, folder, now=T2)
    assert (fixed.files_loaded, fixed.files_quarantined, fixed.rows_loaded) == ([rel], {}, 1)
    assert quarantined(con) == []


def test_strict_fails_naming_the_unreadable_file_after_loading_the_others(con, folder):
    write(folder, "a.jsonl", event("a", "2025-04-01T00:00:00Z") + "\n")
    write(folder, "b.csv", "Sessions\n5\n")
    with pytest.raises(AnalyticsSourceError) as raised:
        load_analytics_exports(con, folder, now=T1, strict=True)
    message = str(raised.value)
    assert message.startswith(f"1 of 2 files in the analytics exports folder {folder} cannot be")
    assert "\n- b.csv: the header on line 1 has no Date column" in message
    assert [row[0] for row in events(con)] == ["a.jsonl"]
    assert [row[1] for row in quarantined(con)] == ["b.csv"]


def test_a_missing_folder_is_no_files_and_a_file_in_its_place_an_error(con, tmp_path):
    report = load_analytics_exports(con, tmp_path / "nope")
    assert (report.folder_status, report.files_seen) == ("missing", 0)
    assert con.execute("SELECT count(*) FROM raw.analytics_events").fetchall() == [(0,)]
    (tmp_path / "nope").write_text("")
    with pytest.raises(AnalyticsSourceError, match="is a file, not a folder"):
        load_analytics_exports(con, tmp_path / "nope")


# -- staging --------------------------------------------------------------------------------------


def staged_events(con, quarter: tuple[date, date], tz: str) -> list[tuple]:
    """Stage the quarter and read back what it wrote."""
    written = stage_analytics_events(con, *quarter, tz)
    rows = con.execute(
        f"SELECT {', '.join(STAGING_ANALYTICS_EVENTS.column_names)} FROM staging.analytics_events "
        'WHERE quarter_start = ? ORDER BY "timestamp", event, user_id, anonymous_id, '
        "_source_ref, _source_row",
        [quarter[0]],
    ).fetchall()
    assert written == len(rows)
    return [
        (
            event,
            ts.astimezone(UTC).isoformat(),
            day.isoformat(),
            user,
            props,
            start.isoformat(),
            ref,
            row,
        )
        for event, ts, day, user, _anonymous, props, start, ref, row, _batch in rows
    ]


def staged_report(con, quarter: tuple[date, date]) -> list[tuple]:
    """Stage the quarter's report values and read back what was written."""
    written = stage_analytics_report(con, *quarter)
    rows = con.execute(
        "SELECT date::VARCHAR, column_name, value, report, quarter_start::VARCHAR, _source_row "
        "FROM staging.analytics_report_long WHERE quarter_start = ? ORDER BY date, column_name",
        [quarter[0]],
    ).fetchall()
    assert written == len(rows)
    return rows


def test_staging_events_use_the_local_date_in_the_timezone(con, folder):
    """23:30 at -05:00 on March 31 is April 1 in UTC but still March 31 in Chicago (CDT, -05:00).
    Not in New York: on that day New York is on EDT (-04:00), where it is 00:30 on April 1."""
    write(
        folder,
        "e.jsonl",
        "\n".join(
            [
                event("late", "2025-03-31T23:30:00-05:00"),
                event("first", "2025-01-01T00:30:00+00:00"),  # Dec 31 in Chicago
                event("q2", "2025-06-30T23:59:59-04:00"),  # June 30 in Chicago, July 1 in UTC
            ]
        )
        + "\n",
    )
    load_analytics_exports(con, folder, now=T1)
    assert [(e, d, q) for e, _, d, _, _, q, _, _ in staged_events(con, Q2, "UTC")] == [
        ("late", "2025-04-01", "2025-04-01")
    ]
    assert [(e, d) for e, _, d, *_ in staged_events(con, Q1, "UTC")] == [("first", "2025-01-01")]
    assert [(e, t, d) for e, t, d, *_ in staged_events(con, Q1, "America/Chicago")] == [
        ("late", "2025-04-01T04:30:00+00:00", "2025-03-31")
    ]
    assert [(e, d) for e, _, d, *_ in staged_events(con, Q2, "America/Chicago")] == [
        ("q2", "2025-06-30")
    ]
    assert [(e, d) for e, _, d, *_ in staged_events(con, Q2, "America/New_York")] == [
        ("late", "2025-04-01"),
        ("q2", "2025-06-30"),
    ]


def test_staging_events_drop_exact_duplicates_from_re_exports(con, folder):
    """A re-exported event (same name, instant, ids, properties) counts once; any difference
    keeps both. The first loaded copy is kept; a missing id counts as equal to a missing id."""
    same_instant = "2025-04-01T12:00:00+02:00"
    anonymous = event("view", "2025-04-01T11:00:00Z", user=None, anonymous_id="a-1")
    write(
        folder,
        "a_week1.jsonl",
        "\n".join(
            [
                event("buy", "2025-04-01T10:00:00Z", properties={"plan": "pro"}),
                event("buy", "2025-04-01T10:00:00Z", properties={"plan": "team"}),
                anonymous,
            ]
        )
        + "\n",
    )
    load_analytics_exports(con, folder, now=T1)
    write(
        folder,
        "b_month.jsonl.gz",
        "\n".join(
            [
                # the same instant as the first line of a_week1, written with another offset
                event("buy", same_instant, properties={"plan": "pro"}),
                event("buy", "2025-04-01T10:00:00Z", user="u2", properties={"plan": "pro"}),
                event("buy", "2025-04-01T10:00:00Z", properties={"plan": "pro"}),
                anonymous,
            ]
        )
        + "\n",
    )
    load_analytics_exports(con, folder, now=T2)
    rows = staged_events(con, Q2, "UTC")
    assert [(r[3], r[4], r[6], r[7]) for r in rows] == [
        ("u1", '{"plan":"pro"}', "a_week1.jsonl", 1),
        ("u1", '{"plan":"team"}', "a_week1.jsonl", 2),
        ("u2", '{"plan":"pro"}', "b_month.jsonl.gz", 2),
        (None, "{}", "a_week1.jsonl", 3),
    ]
    assert stage_analytics_events(con, *Q2, "UTC") == 4
    assert con.execute(
        "SELECT count(*), count(*) FILTER (WHERE properties->>'plan' = 'pro') "
        "FROM staging.analytics_events"
    ).fetchall() == [(4, 2)]


def test_staging_report_latest_file_wins_and_the_view_pivots(con, folder):
    write(
        folder,
        "z_old.csv",
        "# old\nDate,Active users,Sessions\n20250101,10,100\n20250102,20,200\n20250401,40,400\n",
    )
    load_analytics_exports(con, folder, now=T1)
    # Sorts first but loads later: load time decides which value of a (date, column) wins.
    write(folder, "a_new.csv", 'Date,Active users,Conversions\n20250102,"2,100",5\n')
    load_analytics_exports(con, folder, now=T2)
    assert [(d, c, v, r, row) for d, c, v, r, _, row in staged_report(con, Q1)] == [
        ("2025-01-01", "active_users", 10.0, "z_old", 3),
        ("2025-01-01", "sessions", 100.0, "z_old", 3),
        ("2025-01-02", "active_users", 2100.0, "a_new", 2),
        ("2025-01-02", "conversions", 5.0, "a_new", 2),
        ("2025-01-02", "sessions", 200.0, "z_old", 4),
    ]
    assert con.execute(
        "SELECT row_count FROM meta.partitions WHERE table_name = ?",
        [STAGING_ANALYTICS_REPORT_LONG.fqn],
    ).fetchall() == [(5,)]
    assert refresh_analytics_report_view(con) == ["active_users", "conversions", "sessions"]
    assert con.execute(
        "SELECT date::VARCHAR, quarter_start::VARCHAR, active_users, conversions, sessions "
        "FROM staging.analytics_report WHERE date BETWEEN '2025-01-01' AND '2025-03-31' ORDER BY 1"
    ).fetchall() == [
        ("2025-01-01", "2025-01-01", 10.0, None, 100.0),
        ("2025-01-02", "2025-01-01", 2100.0, 5.0, 200.0),
    ]
    assert con.execute(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = 'staging' "
        "AND table_name = 'analytics_report' AND column_name = 'active_users'"
    ).fetchall() == [("DOUBLE",)]
    assert [(d, c, q) for d, c, _, _, q, _ in staged_report(con, Q2)] == [
        ("2025-04-01", "active_users", "2025-04-01"),
        ("2025-04-01", "sessions", "2025-04-01"),
    ]


def test_staging_on_an_empty_warehouse_writes_empty_partitions(con):
    assert stage_analytics_events(con, *Q1, "UTC") == 0
    assert stage_analytics_report(con, *Q1) == 0
    assert refresh_analytics_report_view(con) == []
    assert con.execute("SELECT * FROM staging.analytics_report").fetchall() == []
