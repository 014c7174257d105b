"""Hostile files in the drop folders (issue 11, items 4 and 5), on real files and a real DuckDB
file: symbolic links out of the folder are quarantined by name and never read, links that stay
inside load, a file rewritten while it is loaded ends with the warehouse holding exactly the
version whose hash is recorded, and reasons quote file text only as a short, escaped excerpt.

The only stand-in is the concurrent writer: the loader's own read step is wrapped so that the
file is rewritten at a chosen moment, and everything else runs as in production."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

import connectors.analytics.extract as analytics_extract
import connectors.csv_drop.extract as csv_drop
from connectors import files
from connectors.analytics.extract import load_analytics_exports
from connectors.csv_drop.extract import load_csv_folder

SECRET = "s3cr3t-outside-the-folder"
OUTSIDE_CSV = f"date,metric_id,value\n2025-01-01,{SECRET},1\n"
GOOD_CSV = "date,metric_id,value\n2025-01-01,visits,10\n"

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def warehouse_text(con: duckdb.DuckDBPyConnection) -> str:
    """Every value of every raw table, as text: what could have leaked into the warehouse."""
    tables = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema = 'raw' AND table_type = 'BASE TABLE'"
    ).fetchall()
    return "\n".join(
        repr(con.execute(f'SELECT * FROM "{schema}"."{name}"').fetchall())
        for schema, name in tables
    )


def quarantine_rows(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, str]:
    return dict(
        con.execute(
            "SELECT source_ref, reason FROM raw.rejected_rows "
            "WHERE source = ? AND location = source_ref",
            [source],
        ).fetchall()
    )


def test_a_link_to_a_file_outside_is_quarantined_unread(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "else.csv").write_text(OUTSIDE_CSV)
    drop = tmp_path / "csv"
    drop.mkdir()
    (drop / "good.csv").write_text(GOOD_CSV)
    (drop / "link.csv").symlink_to(outside / "else.csv")
    (drop / "passwd.csv").symlink_to("/etc/passwd")

    report = load_csv_folder(con, drop)

    assert report.files_loaded == ["good.csv"]
    assert set(report.files_quarantined) == {"link.csv", "passwd.csv"}
    rows = quarantine_rows(con, "csv")
    assert set(rows) == {"link.csv", "passwd.csv"}
    for reason in rows.values():
        assert "symbolic link to a file outside the CSV drop folder" in reason
        assert "copy the file into the folder" in reason
    text = warehouse_text(con)
    assert SECRET not in text and "root:" not in text
    assert con.execute("SELECT count(*) FROM raw.loaded_files").fetchall() == [(1,)]

    # Unchanged: the quarantine row stays as it is; removed: it goes.
    [(batch,)] = con.execute(
        "SELECT batch_id FROM raw.rejected_rows WHERE source_ref = 'link.csv'"
    ).fetchall()
    again = load_csv_folder(con, drop)
    assert set(again.files_quarantined) == {"link.csv", "passwd.csv"}
    assert con.execute(
        "SELECT batch_id FROM raw.rejected_rows WHERE source_ref = 'link.csv'"
    ).fetchall() == [(batch,)]
    (drop / "link.csv").unlink()
    (drop / "passwd.csv").unlink()
    load_csv_folder(con, drop)
    assert quarantine_rows(con, "csv") == {}


def test_a_linked_folder_outside_is_not_walked_into(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    outside = tmp_path / "shared"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "else.csv").write_text(OUTSIDE_CSV)
    (outside / "events.jsonl").write_text(
        json.dumps({"event": SECRET, "timestamp": "2025-01-01T00:00:00Z", "user_id": "u"}) + "\n"
    )
    for name in ("csv", "analytics"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "shared").symlink_to(outside, target_is_directory=True)

    csv_report = load_csv_folder(con, tmp_path / "csv")
    analytics_report = load_analytics_exports(con, tmp_path / "analytics")

    assert csv_report.files_loaded == analytics_report.files_loaded == []
    assert (
        set(csv_report.files_quarantined) == set(analytics_report.files_quarantined) == {"shared"}
    )
    assert "symbolic link to a folder outside" in quarantine_rows(con, "csv")["shared"]
    assert (
        "folder outside the analytics exports folder"
        in (quarantine_rows(con, "analytics")["shared"])
    )
    assert SECRET not in warehouse_text(con)


def test_links_that_stay_inside_the_folder_load(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    drop = tmp_path / "csv"
    (drop / "archive").mkdir(parents=True)
    (drop / "archive" / "2025.csv").write_text(GOOD_CSV)
    (drop / "latest.csv").symlink_to(Path("archive") / "2025.csv")  # relative, inside
    (drop / "mirror").symlink_to(drop / "archive", target_is_directory=True)  # not walked into

    report = load_csv_folder(con, drop)

    assert report.files_loaded == ["archive/2025.csv", "latest.csv"]
    assert report.files_quarantined == {}
    assert con.execute(
        "SELECT _source_ref, metric_id, value FROM raw.csv_observations ORDER BY 1"
    ).fetchall() == [("archive/2025.csv", "visits", 10.0), ("latest.csv", "visits", 10.0)]


def test_the_drop_folder_itself_may_be_a_link(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    real = tmp_path / "mnt" / "drop"
    real.mkdir(parents=True)
    (real / "a.csv").write_text(GOOD_CSV)
    (tmp_path / "csv").symlink_to(real, target_is_directory=True)

    assert load_csv_folder(con, tmp_path / "csv").files_loaded == ["a.csv"]


def _rewrite_during(
    monkeypatch: pytest.MonkeyPatch,
    module: object,
    step: str,
    path: Path,
    versions: list[str],
    *,
    after: bool = False,
) -> list[str]:
    """Wrap the loader's read step `module.step` so that, on each call while `versions` last,
    the file is rewritten with the next one -- just before the step reads it or, with `after`,
    just after (between the parse and the commit). Returns the list of contents written."""
    real: Callable[..., object] = getattr(module, step)
    written: list[str] = []

    def rewrite() -> None:
        if versions:
            written.append(versions.pop(0))
            path.write_text(written[-1])

    def wrapped(*args: object, **kwargs: object) -> object:
        if not after:
            rewrite()
        result = real(*args, **kwargs)
        if after:
            rewrite()
        return result

    monkeypatch.setattr(module, step, wrapped)
    return written


def _recorded(con: duckdb.DuckDBPyConnection, rel: str) -> str:
    [(digest,)] = con.execute(
        "SELECT content_hash FROM raw.loaded_files WHERE source_ref = ?", [rel]
    ).fetchall()
    return digest


def csv_of(value: int, rows: int = 50) -> str:
    return "date,metric_id,value\n" + "".join(
        f"2025-01-{day % 28 + 1:02d},m{day},{value}\n" for day in range(rows)
    )


@pytest.mark.parametrize("after", [False, True], ids=["before-parse", "after-parse"])
def test_a_csv_rewritten_while_loaded_keeps_the_version_whose_hash_is_recorded(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch, after: bool
) -> None:
    drop = tmp_path / "csv"
    drop.mkdir()
    path = drop / "big.csv"
    path.write_text(csv_of(1))
    written = _rewrite_during(monkeypatch, csv_drop, "_parse", path, [csv_of(2)], after=after)

    report = load_csv_folder(con, drop)

    assert written == [csv_of(2)]  # the rewrite did happen, during the first attempt
    assert report.files_loaded == ["big.csv"] and report.files_quarantined == {}
    assert _recorded(con, "big.csv") == hashlib.sha256(path.read_bytes()).hexdigest()
    assert con.execute(
        "SELECT DISTINCT value, count(*) OVER () FROM raw.csv_observations"
    ).fetchall() == [(2.0, 50)]
    # Once the folder settles, the next run has nothing to redo: it skips an exact version.
    assert load_csv_folder(con, drop).files_skipped == ["big.csv"]


def test_an_export_rewritten_while_loaded_keeps_the_version_whose_hash_is_recorded(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    def events(name: str) -> str:
        return "".join(
            json.dumps({"event": name, "timestamp": "2025-01-01T00:00:00Z", "user_id": f"u{i}"})
            + "\n"
            for i in range(20)
        )

    folder = tmp_path / "analytics"
    folder.mkdir()
    path = folder / "events.jsonl"
    path.write_text(events("old"))
    _rewrite_during(
        monkeypatch, analytics_extract, "_read_lines", path, [events("new")], after=True
    )

    report = load_analytics_exports(con, folder)

    assert report.files_loaded == ["events.jsonl"]
    assert _recorded(con, "events.jsonl") == hashlib.sha256(path.read_bytes()).hexdigest()
    assert con.execute("SELECT DISTINCT event FROM raw.analytics_events").fetchall() == [("new",)]


def test_a_file_that_keeps_changing_is_quarantined_then_loads_once_settled(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop = tmp_path / "csv"
    drop.mkdir()
    path = drop / "busy.csv"
    path.write_text(csv_of(0))
    versions = [csv_of(n) for n in range(1, files.READ_ATTEMPTS + 1)]
    _rewrite_during(monkeypatch, csv_drop, "_parse", path, versions, after=True)

    report = load_csv_folder(con, drop)

    assert "kept changing while it was read" in report.files_quarantined["busy.csv"]
    assert con.execute("SELECT count(*) FROM raw.csv_observations").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM raw.loaded_files").fetchall() == [(0,)]

    monkeypatch.undo()  # the writer is done: the settled file loads and its quarantine goes
    again = load_csv_folder(con, drop)
    assert again.files_loaded == ["busy.csv"] and quarantine_rows(con, "csv") == {}
    assert _recorded(con, "busy.csv") == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_replacement_that_breaks_the_file_mid_load_is_not_judged_on_stale_bytes(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first read sees a half-written file (no header yet): it is not quarantined for that,
    since by the time it is judged the file has changed; the complete file loads."""
    drop = tmp_path / "csv"
    drop.mkdir()
    path = drop / "half.csv"
    path.write_text("")
    real = csv_drop._parse

    def parse_then_finish_writing(*args: object) -> None:
        try:
            real(*args)
        finally:
            if path.stat().st_size == 0:
                path.write_text(GOOD_CSV)  # the writer finishes after the empty file was read

    monkeypatch.setattr(csv_drop, "_parse", parse_then_finish_writing)

    report = load_csv_folder(con, drop)

    assert report.files_loaded == ["half.csv"] and report.files_quarantined == {}
    assert _recorded(con, "half.csv") == hashlib.sha256(GOOD_CSV.encode()).hexdigest()


def test_reasons_quote_only_a_short_escaped_excerpt(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    drop = tmp_path / "csv"
    drop.mkdir()
    long_value = "x" * 5000
    (drop / "values.csv").write_text(
        "date,metric_id,value\n"
        f"2025-01-01,visits,{long_value}\n"
        "2025-01-02,visits,1\x1b[31mred\n"
        f"2025-13-01{'y' * 300},visits,1\n"
    )
    (drop / "header.csv").write_text("when," + "\x07bell," * 2000 + "\n")
    (drop / "wide.csv").write_text(f"date,{'Z' * 500}\n2025-01-01,1\n")

    load_csv_folder(con, drop)

    reasons = [
        reason
        for (reason,) in con.execute(
            "SELECT reason FROM raw.rejected_rows WHERE reason IS NOT NULL"
        ).fetchall()
    ]
    assert len(reasons) == 5
    for reason in reasons:
        assert len(reason) < 400, reason
        assert not any(ch in reason for ch in "\x1b\x07"), reason
    assert any("'" + "x" * 80 + "...'" in reason for reason in reasons)
    assert any("\\u001b[31mred" in reason.lower() for reason in reasons)
    # The raw record is the line itself, untouched.
    assert con.execute(
        "SELECT count(*) FROM raw.rejected_rows WHERE raw_record = ?",
        [f"2025-01-01,visits,{long_value}"],
    ).fetchall() == [(1,)]


def test_excerpt_and_clip() -> None:
    assert files.excerpt("abc") == "'abc'"
    assert files.excerpt("a\nb\x00") == "'a\\nb\\x00'"
    assert files.excerpt("z" * 100, 10) == "'" + "z" * 10 + "'..."
    assert files.clip("plain text") == "plain text"
    assert files.clip("bell\x07") == "bell\\x07"
