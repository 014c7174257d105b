"""Wide and long lines (issue 11, item 7): a header wider than MAX_COLUMNS quarantines its file
with the limit, and the files after it still load; a line longer than MAX_LINE_CHARS, in the
middle or last without a newline, is rejected on its own with its start kept: every line is
loaded or rejected, never dropped."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from connectors.analytics.extract import load_analytics_exports
from connectors.csv_drop.extract import load_csv_folder
from connectors.files import MAX_COLUMNS, MAX_LINE_CHARS, RECORD_CHARS

LONG = "9" * (MAX_LINE_CHARS + 10)


def _load(tmp_path: Path, load, files: dict[str, str]):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    return con, load(con, folder)


def _rejects(con) -> list[tuple]:
    return con.execute(
        "SELECT location, reason, length(raw_record) FROM raw.rejected_rows ORDER BY location"
    ).fetchall()


def test_csv_a_too_wide_header_quarantines_its_file_and_the_next_files_load(tmp_path):
    wide = ",".join(["date", *(f"m{i}" for i in range(40_000))])
    con, report = _load(
        tmp_path,
        load_csv_folder,
        {"a.csv": wide + "\n2025-01-01" + ",1" * 40_000 + "\n", "b.csv": "date,x\n2025-01-01,1\n"},
    )
    assert report.files_quarantined == {
        "a.csv": f"the header has 40,001 columns; at most {MAX_COLUMNS:,} are read: split the "
        "file into files with fewer columns"
    }
    assert report.files_loaded == ["b.csv"]


@pytest.mark.parametrize("ending", ["\n2025-01-03,x,3\n", ""])
def test_csv_a_too_long_line_is_rejected_alone(tmp_path, ending):
    text = f"date,metric_id,value\n2025-01-01,x,1\n2025-01-02,x,{LONG}{ending}"
    con, report = _load(tmp_path, load_csv_folder, {"a.csv": text})
    chars = len(f"2025-01-02,x,{LONG}")
    assert _rejects(con) == [
        (
            "a.csv:3",
            f"line has {chars} characters; lines longer than {MAX_LINE_CHARS:,} are not read "
            "(raw_record keeps its start)",
            RECORD_CHARS + 3,
        )
    ]
    loaded = con.execute("SELECT _source_row FROM raw.csv_observations ORDER BY 1").fetchall()
    assert loaded == ([(2,), (4,)] if ending else [(2,)])


def test_analytics_wide_reports_and_long_lines_are_bounded(tmp_path):
    ok = json.dumps({"event": "page_view", "timestamp": "2025-01-15T10:00:00Z", "user_id": "u1"})
    big = json.dumps({"event": "page_view", "timestamp": "2025-01-15T10:00:00Z", "x": LONG})
    con, report = _load(
        tmp_path,
        load_analytics_exports,
        {
            "wide.csv": ",".join(["Date", *(f"M{i}" for i in range(5_000))]) + "\n",
            "events.jsonl": f"{ok}\n{big}\n{ok}",
            "last.jsonl": f"{ok}\n{big}",
            "report.csv": f"Date,Sessions\n20250101,5\n20250102,{LONG}\n20250103,7",
        },
    )
    assert report.files_quarantined == {
        "wide.csv": f"the header on line 1 has 5,001 columns; at most {MAX_COLUMNS:,} are read: "
        "export fewer columns per report"
    }
    assert [(location, length) for location, _, length in _rejects(con)] == [
        ("events.jsonl:2", RECORD_CHARS + 3),
        ("last.jsonl:2", RECORD_CHARS + 3),
        ("report.csv:3", RECORD_CHARS + 3),
        ("wide.csv", None),
    ]
    assert con.execute(
        "SELECT _source_ref, list(_source_row ORDER BY _source_row) FROM raw.analytics_events "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall() == [("events.jsonl", [1, 3]), ("last.jsonl", [1])]
    assert con.execute(
        "SELECT DISTINCT _source_row FROM raw.analytics_report ORDER BY 1"
    ).fetchall() == [(2,), (4,)]
