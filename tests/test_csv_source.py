"""The CSV drop folder source: real files in a temp folder, a real DuckDB file, hand-checked rows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
from okr_fixtures import quarantined, raw_snapshot, rejects

from connectors import files
from connectors.csv_drop.extract import CsvSourceError, load_csv_folder
from connectors.csv_drop.staging import stage_csv_observations

T1 = datetime(2025, 4, 1, 8, 0, tzinfo=UTC)
T2 = datetime(2025, 4, 2, 8, 0, tzinfo=UTC)
NUMBER_HINT = "expected a plain decimal number such as 12, -3.5 or 1e6"


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir()
    return folder


def write(folder: Path, rel: str, text: str | bytes, *, bom: bool = False) -> Path:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text if isinstance(text, bytes) else text.encode()
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def observations(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "SELECT _source_ref, _source_row, date::VARCHAR, metric_id, value, dimensions::VARCHAR "
        "FROM raw.csv_observations ORDER BY _source_ref, _source_row, metric_id"
    ).fetchall()


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return raw_snapshot(con, "csv_observations", "rejected_rows", "loaded_files")


def test_long_file_with_bom_quotes_dimensions_and_blank_lines(con, drop):
    """Line numbers count the header as 1 and every blank line; quoted delimiters stay in."""
    write(
        drop,
        "long.csv",
        (
            "date,metric_id,value,region,channel\n"  # 1
            "2025-01-01,signups,12,eu,web\n"  # 2
            "\n"  # 3: blank, skipped but counted
            '2025-01-02,"signups","1,5e3","eu, west",\n'  # 4: quoted fields, empty dim omitted
            "2025-01-03,churn_rate,-0.25,,\n"  # 5: no dimensions
            "\n\n"  # 6, 7: blank lines at the end
        ),
        bom=True,
    )
    report = load_csv_folder(con, drop, now=T1)
    # "1,5e3" is one quoted field holding a comma, so it is not a number: the row is rejected.
    assert observations(con) == [
        ("long.csv", 2, "2025-01-01", "signups", 12.0, '{"channel":"web","region":"eu"}'),
        ("long.csv", 5, "2025-01-03", "churn_rate", -0.25, "{}"),
    ]
    assert rejects(con) == [
        (
            "long.csv:4",
            "value",
            f"value '1,5e3' is not a number; {NUMBER_HINT}",
            '2025-01-02,"signups","1,5e3","eu, west",',
        )
    ]
    assert (report.files_seen, report.files_loaded, report.rows_loaded, report.rows_rejected) == (
        1,
        ["long.csv"],
        2,
        1,
    )
    lineage = con.execute(
        "SELECT DISTINCT _source, _batch_id, _loaded_at FROM raw.csv_observations"
    ).fetchall()
    registry = con.execute(
        "SELECT source, source_ref, batch_id, rows_loaded, rows_rejected FROM raw.loaded_files"
    ).fetchall()
    assert lineage == [("csv", registry[0][2], T1)]
    assert registry == [("csv", "long.csv", lineage[0][1], 2, 1)]


def test_quoted_dimension_and_canonical_json(con, drop):
    """Dimension keys are sorted and values trimmed and unquoted, whatever the column order."""
    write(drop, "dims.csv", 'Value,zone,Metric_ID,date,area\n7," b ""q""",m.1, 2025-02-01 ,a\n')
    load_csv_folder(con, drop, now=T1)
    assert observations(con) == [
        ("dims.csv", 2, "2025-02-01", "m.1", 7.0, '{"area":"a","zone":"b \\"q\\""}'),
    ]


def test_plain_lines_and_padded_or_quoted_lines_load_alike(con, drop):
    """Plain lines take the fast split; padded or quoted spellings of the same row load the same
    values, and JSON escapes what needs escaping either way."""
    write(
        drop,
        "same.csv",
        (
            "date,metric_id,value,zone,area\n"
            "2025-02-01,m.1,1.5e3,a\\b,x y\n"
            ' 2025-02-01 ,"m.1", 1.5e3 ,"a\\b","x y"\n'
            "2025-02-01,m.1,1.5e3,,\n"
            "2025-02-01,m.1,\t1.5e3,,\n"
        ),
    )
    load_csv_folder(con, drop, now=T1)
    expected = ("2025-02-01", "m.1", 1500.0)
    assert [row[1:] for row in observations(con)] == [
        (2, *expected, '{"area":"x y","zone":"a\\\\b"}'),
        (3, *expected, '{"area":"x y","zone":"a\\\\b"}'),
        (4, *expected, "{}"),
        (5, *expected, "{}"),
    ]
    assert rejects(con) == []


def test_wide_file_with_semicolons_unpivots_and_skips_empty_cells(con, drop):
    """Wide: one observation per non-empty cell; an empty cell is no observation, not an error."""
    write(
        drop,
        "sub/wide.csv",
        'date;visits;signups;nps\r\n2025-01-01;100;;40\r\n2025-01-02;"110";7;\r\n',
    )
    report = load_csv_folder(con, drop, now=T1)
    assert observations(con) == [
        ("sub/wide.csv", 2, "2025-01-01", "nps", 40.0, "{}"),
        ("sub/wide.csv", 2, "2025-01-01", "visits", 100.0, "{}"),
        ("sub/wide.csv", 3, "2025-01-02", "signups", 7.0, "{}"),
        ("sub/wide.csv", 3, "2025-01-02", "visits", 110.0, "{}"),
    ]
    assert rejects(con) == []
    assert report.rows_loaded == 4


def test_each_kind_of_bad_long_row_is_rejected_while_good_rows_load(con, drop):
    """Every bad row lands in raw.rejected_rows with its exact file:line, field and a reason."""
    write(
        drop,
        "obs/bad.csv",
        (
            "date,metric_id,value,region\n"  # 1
            "2025-01-01,signups,1,eu\n"  # 2 good
            "2025-13-01,signups,2,eu\n"  # 3 bad date
            "2025-01-03,signups,abc,eu\n"  # 4 not a number
            "2025-01-04,signups,,eu\n"  # 5 empty value
            "2025-01-05,,5,eu\n"  # 6 empty metric id
            "2025-01-06,Sign Ups,6,eu\n"  # 7 invalid metric id
            "2025-01-07,signups,7\n"  # 8 too few fields
            "\n"  # 9 blank
            "2025-01-08,signups,8,eu,x\n"  # 10 too many fields
            '2025-01-09,"signups"x,9,eu\n'  # 11 malformed quoting
            "01/10/2025,signups,10,eu\n"  # 12 not ISO
            "2025-01-11,signups,1e400,eu\n"  # 13 overflows a double
            "2025-01-12,signups,-1.5E2,\n"  # 14 good
        ),
    )
    report = load_csv_folder(con, drop, now=T1)
    assert observations(con) == [
        ("obs/bad.csv", 2, "2025-01-01", "signups", 1.0, '{"region":"eu"}'),
        ("obs/bad.csv", 14, "2025-01-12", "signups", -150.0, "{}"),
    ]
    date_hint = "expected an ISO date YYYY-MM-DD"
    id_hint = "ids match [a-z0-9][a-z0-9_.-]*"
    assert [row[:3] for row in rejects(con)] == [
        ("obs/bad.csv:3", "date", f"date '2025-13-01' is not a valid date; {date_hint}"),
        ("obs/bad.csv:4", "value", f"value 'abc' is not a number; {NUMBER_HINT}"),
        ("obs/bad.csv:5", "value", f"value is empty; {NUMBER_HINT}"),
        ("obs/bad.csv:6", "metric_id", f"metric_id is empty; {id_hint}"),
        ("obs/bad.csv:7", "metric_id", f"metric_id 'Sign Ups' is not a valid metric id; {id_hint}"),
        ("obs/bad.csv:8", None, "line has 3 fields but the header has 4"),
        ("obs/bad.csv:10", None, "line has 5 fields but the header has 4"),
        (
            "obs/bad.csv:11",
            None,
            "line has malformed quoting: a quoted field must be wrapped in "
            "double quotes, with inner quotes doubled, and cannot run over a line break",
        ),
        ("obs/bad.csv:12", "date", f"date '01/10/2025' is not a valid date; {date_hint}"),
        ("obs/bad.csv:13", "value", f"value '1e400' is not a number; {NUMBER_HINT}"),
    ]
    assert rejects(con)[5][3] == "2025-01-07,signups,7"
    assert (report.rows_loaded, report.rows_rejected) == (2, 10)
    assert (
        con.execute("SELECT DISTINCT source, batch_id FROM raw.rejected_rows").fetchall()
        == con.execute("SELECT 'csv', batch_id FROM raw.loaded_files").fetchall()
    )


def test_wide_bad_cells_and_bad_headers_reject_only_those_cells(con, drop):
    """A bad cell or a column whose header is no metric id is rejected; the line's rest loads."""
    write(
        drop,
        "wide.csv",
        "date,visits,Page Views,nps\n2025-01-01,10,5,x\n2025-01-32,1,2,3\n2025-01-03,11,,4\n",
    )
    load_csv_folder(con, drop, now=T1)
    assert observations(con) == [
        ("wide.csv", 2, "2025-01-01", "visits", 10.0, "{}"),
        ("wide.csv", 4, "2025-01-03", "nps", 4.0, "{}"),
        ("wide.csv", 4, "2025-01-03", "visits", 11.0, "{}"),
    ]
    assert rejects(con) == [
        (
            "wide.csv:2",
            "Page Views",
            "column 'Page Views' is not a valid metric id (ids match "
            "[a-z0-9][a-z0-9_.-]*), so its value '5' was not loaded",
            "2025-01-01,10,5,x",
        ),
        (
            "wide.csv:2",
            "nps",
            f"value 'x' in column 'nps' is not a number; {NUMBER_HINT}",
            "2025-01-01,10,5,x",
        ),
        (
            "wide.csv:3",
            "date",
            "date '2025-01-32' is not a valid date; expected an ISO date YYYY-MM-DD",
            "2025-01-32,1,2,3",
        ),
    ]


def test_wide_plain_lines_still_reject_bad_headers_and_overflowing_numbers(con, drop):
    """A plain wide line skips the per-cell pattern checks, not the rejections."""
    write(drop, "wide.csv", "date,visits,Page Views\n2025-01-01,10,5\n2025-01-02,1e400,\n")
    load_csv_folder(con, drop, now=T1)
    assert observations(con) == [("wide.csv", 2, "2025-01-01", "visits", 10.0, "{}")]
    assert [row[:3] for row in rejects(con)] == [
        (
            "wide.csv:2",
            "Page Views",
            "column 'Page Views' is not a valid metric id (ids match "
            "[a-z0-9][a-z0-9_.-]*), so its value '5' was not loaded",
        ),
        (
            "wide.csv:3",
            "visits",
            f"value '1e400' in column 'visits' is not a number; {NUMBER_HINT}",
        ),
    ]


def test_loading_the_same_folder_twice_changes_nothing(con, drop):
    """An unchanged file is skipped: same rows, same batch ids, same registry, no new rejects."""
    write(drop, "a.csv", "date,metric_id,value\n2025-01-01,m,1\n2025-01-02,m,oops\n")
    write(drop, "b.csv", "date,m2\n2025-01-01,3\n")
    first = load_csv_folder(con, drop, now=T1)
    before = snapshot(con)
    second = load_csv_folder(con, drop, now=T2)
    assert snapshot(con) == before
    assert (first.files_loaded, first.files_skipped) == (["a.csv", "b.csv"], [])
    assert (second.files_loaded, second.files_skipped) == ([], ["a.csv", "b.csv"])
    assert (second.rows_loaded, second.rows_rejected) == (0, 0)
    assert [len(rows) for rows in before.values()] == [2, 1, 2]


def test_a_changed_file_replaces_everything_it_loaded_before(con, drop):
    """Same path, new bytes: old observations, old rejects and the old registry row are gone."""
    write(drop, "a.csv", "date,metric_id,value\n2025-01-01,m,1\n2025-01-02,m,bad\n")
    write(drop, "other.csv", "date,metric_id,value\n2025-01-01,o,9\n")
    load_csv_folder(con, drop, now=T1)
    other_before = con.execute(
        "SELECT * FROM raw.csv_observations WHERE _source_ref = 'other.csv'"
    ).fetchall()
    write(drop, "a.csv", "date,metric_id,value\n2025-01-01,m,10\n2025-01-03,m,30\n2025-01-04,m\n")
    report = load_csv_folder(con, drop, now=T2)
    assert (report.files_loaded, report.files_skipped) == (["a.csv"], ["other.csv"])
    assert [row for row in observations(con) if row[0] == "a.csv"] == [
        ("a.csv", 2, "2025-01-01", "m", 10.0, "{}"),
        ("a.csv", 3, "2025-01-03", "m", 30.0, "{}"),
    ]
    assert [row[:2] for row in rejects(con)] == [("a.csv:4", None)]
    registry = con.execute(
        "SELECT source_ref, content_hash, rows_loaded, rows_rejected, loaded_at, batch_id "
        "FROM raw.loaded_files ORDER BY source_ref"
    ).fetchall()
    assert [row[:5] for row in registry] == [
        ("a.csv", files.sha256(drop / "a.csv")[0], 2, 1, T2),
        ("other.csv", files.sha256(drop / "other.csv")[0], 1, 0, T1),
    ]
    batches = con.execute(
        "SELECT DISTINCT _batch_id FROM raw.csv_observations "
        "WHERE _source_ref = 'a.csv' UNION SELECT DISTINCT batch_id "
        "FROM raw.rejected_rows"
    ).fetchall()
    assert batches == [(registry[0][5],)]
    assert (
        con.execute("SELECT * FROM raw.csv_observations WHERE _source_ref = 'other.csv'").fetchall()
        == other_before
    )


def test_a_failed_replacement_rolls_back_to_the_previous_version(con, drop, monkeypatch):
    """Delete, insert and registry write are one transaction: a failure at the end undoes all."""
    write(drop, "a.csv", "date,metric_id,value\n2025-01-01,m,1\n2025-01-02,m,bad\n")
    load_csv_folder(con, drop, now=T1)
    before = snapshot(con)
    write(drop, "a.csv", "date,metric_id,value\n2025-01-01,m,2\n")
    real = files.sha256
    # A NULL size violates raw.loaded_files' NOT NULL: the last statement of the transaction fails.
    monkeypatch.setattr(files, "sha256", lambda path: (real(path)[0], None))
    with pytest.raises(duckdb.ConstraintException):
        load_csv_folder(con, drop, now=T2)
    assert snapshot(con) == before
    # The loader's temporary DuckDB settings are restored even after a failed transaction.
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchall() == [(True,)]


GOOD = "date,metric_id,value\n2025-01-01,m,1\n"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "the file is empty"),
        ("date,metric_id,value\n2025-01-01,caf\xe9,1\n".encode("latin-1"), "not UTF-8 text"),
        (b"day,metric_id,value\n2025-01-01,m,1\n", "no 'date' column"),
        (b"\ndate,metric_id,value\n", "line 1 is empty"),
        (b"date,metric_id,amount\n2025-01-01,m,1\n", "needs both 'metric_id' and 'value'"),
        (b"date,metric_id,value,Metric_Id\n2025-01-01,m,1,x\n", "'metric_id' appears twice"),
    ],
)
def test_an_unreadable_file_is_quarantined_while_other_files_load(con, drop, content, problem):
    """One rejected row at the file's path says why; the good files load as if it were absent."""
    write(drop, "a_good.csv", GOOD)
    write(drop, "b/broken.csv", content)
    write(drop, "c_good.csv", "date,n\n2025-01-01,2\n")
    report = load_csv_folder(con, drop, now=T1)
    assert report.files_loaded == ["a_good.csv", "c_good.csv"]
    [(rel, reason)] = report.files_quarantined.items()
    assert rel == "b/broken.csv" and problem in reason and not reason.startswith(rel)
    [(source, ref, field, stored, raw_record, batch)] = quarantined(con)
    assert (source, ref, field, stored, raw_record) == ("csv", rel, None, reason, None)
    assert batch.startswith(f"csv-{files.sha256(drop / rel)[0][:12]}-")
    assert con.execute("SELECT count(*) FROM raw.rejected_rows").fetchall() == [(1,)]
    assert [row[0] for row in observations(con)] == ["a_good.csv", "c_good.csv"]
    assert con.execute("SELECT source_ref FROM raw.loaded_files ORDER BY 1").fetchall() == [
        ("a_good.csv",),
        ("c_good.csv",),
    ]


def test_a_quarantined_file_is_skipped_while_unchanged_and_loads_once_fixed(con, drop):
    write(drop, "a.csv", GOOD)
    write(drop, "b.csv", "day,m\n2025-01-01,1\n")
    load_csv_folder(con, drop, now=T1)
    before = snapshot(con)
    again = load_csv_folder(con, drop, now=T2)
    assert snapshot(con) == before  # the same one quarantine row, not a second one
    assert (again.files_loaded, again.files_skipped) == ([], ["a.csv"])
    assert list(again.files_quarantined) == ["b.csv"]
    assert "no 'date' column" in again.files_quarantined["b.csv"]

    write(drop, "b.csv", "date,m\n2025-01-01,1\n")
    fixed = load_csv_folder(con, drop, now=T2)
    assert (fixed.files_loaded, fixed.files_quarantined) == (["b.csv"], {})
    assert quarantined(con) == []
    assert [row[:2] for row in observations(con)] == [("a.csv", 2), ("b.csv", 2)]


def test_a_removed_quarantined_file_is_no_longer_quarantined(con, drop):
    write(drop, "a.csv", GOOD)
    write(drop, "b.csv", b"")
    load_csv_folder(con, drop, now=T1)
    assert [row[1] for row in quarantined(con)] == ["b.csv"]
    (drop / "b.csv").unlink()
    report = load_csv_folder(con, drop, now=T2)
    assert (report.files_skipped, report.files_quarantined) == (["a.csv"], {})
    assert con.execute("SELECT count(*) FROM raw.rejected_rows").fetchall() == [(0,)]


def test_a_file_that_turns_unreadable_keeps_its_previous_rows(con, drop):
    """A new version that cannot be read is quarantined; what the last good version loaded stays.
    Putting that version back lifts the quarantine without reloading it."""
    write(drop, "a.csv", "date,metric_id,value\n2025-01-01,m,1\n2025-01-02,m,x\n")
    load_csv_folder(con, drop, now=T1)
    before = snapshot(con)
    write(drop, "a.csv", b"\xff\xfe garbage")
    report = load_csv_folder(con, drop, now=T2)
    assert "not UTF-8" in report.files_quarantined["a.csv"]
    after = snapshot(con)
    assert after["csv_observations"] == before["csv_observations"]
    assert after["loaded_files"] == before["loaded_files"]
    assert [row[1:4] for row in quarantined(con)] == [
        ("a.csv", None, report.files_quarantined["a.csv"])
    ]
    assert len(after["rejected_rows"]) == 2  # the old version's rejected line, the quarantine

    write(drop, "a.csv", "date,metric_id,value\n2025-01-01,m,1\n2025-01-02,m,x\n")
    restored = load_csv_folder(con, drop, now=T2)
    assert (restored.files_skipped, restored.files_quarantined) == (["a.csv"], {})
    assert snapshot(con) == before


def test_strict_fails_naming_each_unreadable_file_after_loading_the_others(con, drop):
    write(drop, "a.csv", GOOD)
    write(drop, "b.csv", b"")
    write(drop, "c/d.csv", b"date\n2025-01-01\n")
    with pytest.raises(CsvSourceError) as raised:
        load_csv_folder(con, drop, now=T1, strict=True)
    message = str(raised.value)
    assert message.startswith(f"2 of 3 files in the CSV drop folder {drop} cannot be read")
    assert "OKR_STRICT_FILES" in message
    assert "\n- b.csv: the file is empty" in message
    assert "\n- c/d.csv: the header has only a date column" in message
    assert raised.value.report.files_loaded == ["a.csv"]
    assert [row[0] for row in observations(con)] == ["a.csv"]
    assert [row[1] for row in quarantined(con)] == ["b.csv", "c/d.csv"]
    # Still unchanged, still named: strict keeps failing until the files are fixed or removed.
    with pytest.raises(CsvSourceError, match="2 of 3 files"):
        load_csv_folder(con, drop, now=T2, strict=True)
    (drop / "b.csv").unlink()
    write(drop, "c/d.csv", "date,m\n2025-01-01,4\n")
    assert load_csv_folder(con, drop, now=T2, strict=True).files_loaded == ["c/d.csv"]


@pytest.mark.parametrize("column", ["dimensions", "Quarter_Start", "_source_ref"])
def test_a_dimension_named_like_a_builtin_column_is_quarantined(con, drop, column):
    """Metrics name a dimension bare (`region`), so one called like a column is ambiguous."""
    write(drop, "dims.csv", f"date,metric_id,value,{column}\n2025-01-01,m,1,x\n")
    report = load_csv_folder(con, drop, now=T1)
    assert report.files_quarantined == {
        "dims.csv": f"dimension column '{column}' is ambiguous: staging.csv_observations has a "
        f"built-in column of that name; rename it in the header, e.g. to "
        f"'{column.strip('_')}_dim'"
    }
    assert observations(con) == []


def test_builtin_names_are_fine_as_metrics_and_other_names_as_dimensions(con, drop):
    """Only a long file's dimensions can clash; `customer` is an ordinary dimension."""
    write(drop, "long.csv", "date,metric_id,value,customer\n2025-01-01,arr,10,acme\n")
    write(drop, "wide.csv", "date,quarter_start\n2025-01-01,3\n")
    report = load_csv_folder(con, drop, now=T1)
    assert (report.files_loaded, report.files_quarantined) == (["long.csv", "wide.csv"], {})
    assert observations(con) == [
        ("long.csv", 2, "2025-01-01", "arr", 10.0, '{"customer":"acme"}'),
        ("wide.csv", 2, "2025-01-01", "quarter_start", 3.0, "{}"),
    ]


def test_a_missing_folder_is_no_files_and_a_file_in_its_place_an_error(con, tmp_path):
    report = load_csv_folder(con, tmp_path / "csv", now=T1)
    assert (report.folder_status, report.files_seen, report.files_loaded) == ("missing", 0, [])
    assert con.execute("SELECT count(*) FROM raw.csv_observations").fetchall() == [(0,)]
    (tmp_path / "csv").write_text("date,m\n")
    with pytest.raises(CsvSourceError) as raised:
        load_csv_folder(con, tmp_path / "csv", now=T1)
    assert str(raised.value).startswith(
        f"the CSV drop folder {tmp_path / 'csv'} is a file, not a folder; move the file away"
    )


def stage(con, start: date, end: date) -> list[tuple]:
    """Stage the quarter starting at `start` and read back what it wrote."""
    written = stage_csv_observations(con, start, end)
    rows = con.execute(
        "SELECT date::VARCHAR, metric_id, value, dimensions::VARCHAR, quarter_start::VARCHAR, "
        "_source_ref, _source_row FROM staging.csv_observations WHERE quarter_start = ? "
        "ORDER BY date, metric_id, dimensions",
        [start],
    ).fetchall()
    assert written == len(rows)
    return rows


def test_staging_later_loaded_file_wins_per_key_and_keeps_dimensions_apart(con, drop):
    """(date, metric_id, dimensions) is a key: the later load wins, other dimensions survive."""
    write(
        drop,
        "z_old.csv",
        "date,metric_id,value,region\n2025-01-01,m,1,eu\n2025-01-01,m,2,us\n2025-01-02,m,3,\n",
    )
    load_csv_folder(con, drop, now=T1)
    # Sorts before z_old.csv but is loaded later, so load time decides, not the path.
    write(
        drop, "a_new.csv", "date,metric_id,value,region\n2025-01-01,m,10,eu\n2025-01-01,m,11,eu\n"
    )
    load_csv_folder(con, drop, now=T2)
    assert stage(con, date(2025, 1, 1), date(2025, 3, 31)) == [
        ("2025-01-01", "m", 11.0, '{"region":"eu"}', "2025-01-01", "a_new.csv", 3),
        ("2025-01-01", "m", 2.0, '{"region":"us"}', "2025-01-01", "z_old.csv", 3),
        ("2025-01-02", "m", 3.0, "{}", "2025-01-01", "z_old.csv", 4),
    ]


def test_staging_keeps_only_the_quarter_and_records_the_partition(con, drop):
    """Rows outside [quarter_start, quarter_end] are left out; re-staging replaces the partition
    and its meta.partitions row, other quarters stay."""
    write(drop, "wide.csv", "date,m\n2024-12-31,1\n2025-01-01,2\n2025-03-31,3\n2025-04-01,4\n")
    load_csv_folder(con, drop, now=T1)
    q1 = stage(con, date(2025, 1, 1), date(2025, 3, 31))
    assert [(row[0], row[2], row[4]) for row in q1] == [
        ("2025-01-01", 2.0, "2025-01-01"),
        ("2025-03-31", 3.0, "2025-01-01"),
    ]
    assert stage_csv_observations(con, date(2025, 4, 1), date(2025, 6, 30)) == 1
    assert stage_csv_observations(con, date(2025, 1, 1), date(2025, 3, 31)) == 2
    assert con.execute(
        "SELECT quarter_start::VARCHAR, count(*) FROM staging.csv_observations GROUP BY 1 ORDER BY 1"
    ).fetchall() == [("2025-01-01", 2), ("2025-04-01", 1)]
    assert con.execute(
        "SELECT table_name, partition_value, row_count FROM meta.partitions ORDER BY 2"
    ).fetchall() == [
        ("staging.csv_observations", "2025-01-01", 2),
        ("staging.csv_observations", "2025-04-01", 1),
    ]


def test_staging_on_an_empty_warehouse_writes_an_empty_partition(con):
    """The raw table is created on demand, so staging before any load is empty, not an error."""
    assert stage(con, date(2025, 1, 1), date(2025, 3, 31)) == []
    assert con.execute("SELECT row_count FROM meta.partitions").fetchall() == [(0,)]


def test_staging_restores_a_changed_table_comment(con):
    """Tables are only re-created when missing or when a comment differs from the definition."""
    stage(con, date(2025, 1, 1), date(2025, 3, 31))
    con.execute("COMMENT ON COLUMN staging.csv_observations.value IS 'edited by hand'")
    stage(con, date(2025, 1, 1), date(2025, 3, 31))
    assert con.execute(
        "SELECT comment FROM duckdb_columns() WHERE table_name = 'csv_observations' "
        "AND schema_name = 'staging' AND column_name = 'value'"
    ).fetchall() == [("Observed value.",)]
