"""Silently wrong numbers (issue 11, item 8): values that overflow a sum, underflow to 0 or are
not finite, and dates or timestamps outside every partition, are rejected at the raw layer line
by line with a reason; the good rows of the same file load. The blocking `finite_values` check
fails on a mart that holds inf or NaN. Real files in tmp_path, a real DuckDB warehouse."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from connectors.analytics.extract import load_analytics_exports
from connectors.csv_drop.extract import load_csv_folder
from connectors.registry import FILE_SOURCES
from pipelines.checks import quality_checks
from pipelines.checks.core import CheckInputs
from transforms.marts import OKR_MARTS
from transforms.tables import MARTS_KEY_RESULT_ATTAINMENT, MARTS_KEY_RESULT_PROGRESS_DAILY
from warehouse.tables import Table

ERROR = dg.AssetCheckSeverity.ERROR


def rejects(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str]]:
    rows = con.execute("SELECT location, field, reason FROM raw.rejected_rows").fetchall()
    return {location: (field, reason) for location, field, reason in rows}


def test_csv_long_file_rejects_hostile_numbers_and_dates(tmp_path: Path):
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "hostile.csv").write_text(
        "date,metric_id,value\n"
        "2025-01-01,visits,1e308\n"  # 2
        "2025-01-02,visits,1e308\n"  # 3
        "2025-01-03,visits,1e-400\n"  # 4
        "2025-01-04,visits,-inf\n"  # 5
        "2025-01-05,visits,nan\n"  # 6
        "9999-12-31,visits,1\n"  # 7
        "0001-01-01,visits,1\n"  # 8
        "2025-01-06,visits,5\n"  # 9: good
        "2025-01-07,visits,1e309\n"  # 10
        "2025-01-08,visits,0e-400\n"  # 11: good, a zero
        "2025-01-09,visits,-1e15\n"  # 12: good, at the bound
        '2025-01-10,visits," 1e16 "\n'  # 13: not clean, still bounded
        "2199-12-31,visits,2.5e-300\n"  # 14: good, last plausible day
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    report = load_csv_folder(con, folder)
    got = rejects(con)
    assert report.rows_loaded == 4 and report.rows_rejected == 9
    for line in (2, 3, 13):
        field, reason = got.pop(f"hostile.csv:{line}")
        assert field == "value" and "beyond the bound of +-1e15" in reason
    assert "'1e308'" in rejects(con)["hostile.csv:2"][1]
    field, reason = got.pop("hostile.csv:4")
    assert field == "value" and "'1e-400' is too small" in reason and "load as 0" in reason
    for line, text in ((5, "-inf"), (6, "nan"), (10, "1e309")):
        field, reason = got.pop(f"hostile.csv:{line}")
        assert field == "value" and f"'{text}' is not a number" in reason
    for line, text in ((7, "9999-12-31"), (8, "0001-01-01")):
        field, reason = got.pop(f"hostile.csv:{line}")
        assert field == "date" and f"'{text}' is outside the plausible range" in reason
    assert got == {}
    loaded = con.execute(
        "SELECT _source_row, date, value FROM raw.csv_observations ORDER BY _source_row"
    ).fetchall()
    assert loaded == [
        (9, date(2025, 1, 6), 5.0),
        (11, date(2025, 1, 8), 0.0),
        (12, date(2025, 1, 9), -1e15),
        (14, date(2199, 12, 31), 2.5e-300),
    ]
    [(total,)] = con.execute("SELECT sum(value) FROM raw.csv_observations").fetchall()
    assert math.isfinite(total)


def test_csv_wide_file_rejects_only_the_hostile_cells(tmp_path: Path):
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "wide.csv").write_text(
        "date;visits;csat\n"
        "2025-01-01;1e308;3\n"
        "9999-12-31;1;2\n"
        "2025-01-02;1e-400;-1e15\n"
        "2025-01-03;NaN;Infinity\n"
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_csv_folder(con, folder)
    rows = con.execute(
        "SELECT location, field, reason FROM raw.rejected_rows ORDER BY location, field"
    ).fetchall()
    assert [(loc, field) for loc, field, _ in rows] == [
        ("wide.csv:2", "visits"),
        ("wide.csv:3", "date"),
        ("wide.csv:4", "visits"),
        ("wide.csv:5", "csat"),
        ("wide.csv:5", "visits"),
    ]
    assert "value '1e308' in column 'visits' is beyond the bound" in rows[0][2]
    assert "'9999-12-31' is outside the plausible range" in rows[1][2]
    assert "value '1e-400' in column 'visits' is too small" in rows[2][2]
    assert "'Infinity' in column 'csat' is not a number" in rows[3][2]
    loaded = con.execute(
        "SELECT date, metric_id, value FROM raw.csv_observations ORDER BY ALL"
    ).fetchall()
    assert loaded == [(date(2025, 1, 1), "csat", 3.0), (date(2025, 1, 2), "csat", -1e15)]


def event(timestamp: str) -> str:
    return json.dumps({"event": "signup", "timestamp": timestamp, "user_id": "u1"})


def test_analytics_events_reject_implausible_timestamps_and_offsets(tmp_path: Path):
    folder = tmp_path / "analytics"
    folder.mkdir()
    stamps = [
        "2025-01-01T00:00:00Z",  # 1: good
        "3000-01-01T00:00:00Z",  # 2
        "2025-01-01T00:00:00+25:00",  # 3
        "2025-01-01T00:00:00+14:00",  # 4: good (Kiribati)
        "2025-01-01T00:00:00-0530",  # 5: good
        "0001-01-01T00:00:00+00:00",  # 6
        "2025-01-01T00:00:00+05:60",  # 7
        "2025-01-01T00:00:00-12",  # 8: good
        "9999-12-31T23:59:59.999Z",  # 9
    ]
    (folder / "events.jsonl").write_text("\n".join(event(s) for s in stamps) + "\n")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    report = load_analytics_exports(con, folder)
    got = rejects(con)
    assert report.rows_loaded == 4 and report.rows_rejected == 5
    for line in (2, 6, 9):
        field, reason = got.pop(f"events.jsonl:{line}")
        assert field == "timestamp" and "outside the plausible range" in reason, reason
        assert stamps[line - 1] in reason
    for line in (3, 7):
        field, reason = got.pop(f"events.jsonl:{line}")
        assert field == "timestamp" and "invalid UTC offset" in reason, reason
        assert stamps[line - 1] in reason
    assert got == {}
    rows = con.execute("SELECT _source_row FROM raw.analytics_events ORDER BY 1").fetchall()
    assert [r for (r,) in rows] == [1, 4, 5, 8]


def test_analytics_report_rejects_hostile_cells_and_dates(tmp_path: Path):
    folder = tmp_path / "analytics"
    folder.mkdir()
    (folder / "traffic.csv").write_text(
        "# Traffic\n"
        "Date,Active users,Sessions\n"
        '20250101,1e308,"1,234"\n'  # 3
        "99991231,1,2\n"  # 4
        "20250102,1e-400,1e309\n"  # 5
        "00010101,1,1\n"  # 6
        "20250103,nan,-inf\n"  # 7
        "20250104,5,6\n"  # 8
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_analytics_exports(con, folder)
    rows = con.execute(
        "SELECT location, field, reason FROM raw.rejected_rows ORDER BY location, field"
    ).fetchall()
    assert [(loc, field) for loc, field, _ in rows] == [
        ("traffic.csv:3", "Active users"),
        ("traffic.csv:4", "Date"),
        ("traffic.csv:5", "Active users"),
        ("traffic.csv:5", "Sessions"),
        ("traffic.csv:6", "Date"),
        ("traffic.csv:7", "Active users"),
        ("traffic.csv:7", "Sessions"),
    ]
    reasons = [reason for _, _, reason in rows]
    assert "'1e308' in column 'Active users' is beyond the bound" in reasons[0]
    assert "'99991231' is outside the plausible range" in reasons[1]
    assert "'1e-400' in column 'Active users' is too small" in reasons[2]
    assert "'1e309' in column 'Sessions' is not a number" in reasons[3]
    assert "'00010101' is outside the plausible range" in reasons[4]
    assert "not a number" in reasons[5] and "not a number" in reasons[6]
    loaded = con.execute(
        "SELECT date, column_name, value FROM raw.analytics_report ORDER BY ALL"
    ).fetchall()
    assert loaded == [
        (date(2025, 1, 1), "sessions", 1234.0),
        (date(2025, 1, 4), "active_users", 5.0),
        (date(2025, 1, 4), "sessions", 6.0),
    ]


# -- finite_values ------------------------------------------------------------------------------

FINITE_MARTS = (
    OKR_MARTS["success_metric_summary"],
    OKR_MARTS["metric_daily"],
    MARTS_KEY_RESULT_ATTAINMENT,
    MARTS_KEY_RESULT_PROGRESS_DAILY,
)


def finite_check(table: Table):
    [check] = [
        c
        for c in quality_checks(sources=FILE_SOURCES)
        if c.name == "finite_values" and c.table.fqn == table.fqn
    ]
    return check


def test_finite_values_is_a_blocking_error_on_the_marts_with_doubles():
    names = {c.table.fqn for c in quality_checks(sources=FILE_SOURCES) if c.name == "finite_values"}
    assert {
        "marts.success_metric_summary",
        "marts.metric_daily",
        "marts.key_result_attainment",
    } <= names
    assert "marts.okr_lint" not in names  # no DOUBLE column
    for table in FINITE_MARTS:
        check = finite_check(table)
        assert check.severity == ERROR and check.blocking and check.spec().blocking


def insert_row(con: duckdb.DuckDBPyConnection, table: Table, value: str) -> None:
    """One row of `table` with every DOUBLE column `value` (0 for NULL where it may not be null) and the rest filled with a default
    of its type (the key columns distinct per call through random())."""
    defaults = {
        "VARCHAR": "md5(random()::VARCHAR)",
        "DATE": "DATE '2025-01-01' + (random() * 1000)::INTEGER",
        "INTEGER": "1",
        "BIGINT": "1",
        "BOOLEAN": "true",
        "TIMESTAMP": "TIMESTAMP '2025-01-01'",
        "TIMESTAMPTZ": "TIMESTAMPTZ '2025-01-01 00:00:00+00'",
        "JSON": "'{}'",
    }
    values = [
        ("0" if value == "NULL" and not c.nullable else value)
        if c.type == "DOUBLE"
        else defaults.get(c.type.upper(), "NULL")
        for c in table.columns
    ]
    con.execute(f"INSERT INTO {table.fqn} VALUES ({', '.join(values)})")


@pytest.mark.parametrize("bad", ["'inf'::DOUBLE", "'-inf'::DOUBLE", "'nan'::DOUBLE"])
@pytest.mark.parametrize("name", ["success_metric_summary", "metric_daily"])
def test_finite_values_fails_on_a_mart_holding_inf_or_nan(tmp_path: Path, name: str, bad: str):
    table = OKR_MARTS[name]
    check = finite_check(table)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    table.create(con)
    inputs = CheckInputs(con, None, date(2025, 5, 15), date(2025, 5, 15))  # type: ignore[arg-type]
    assert check.evaluate(inputs).passed  # empty
    insert_row(con, table, "12.5")
    insert_row(con, table, "NULL")
    result = check.evaluate(inputs)
    assert result.passed, result.description
    con.execute(f"UPDATE {table.fqn} SET value = {bad} WHERE value = 12.5")
    result = check.evaluate(inputs)
    assert not result.passed and result.severity == ERROR
    assert table.fqn in result.description and "value (1)" in result.description
    assert result.metadata["rows_with_non_finite_values"].value == 1
    examples = result.metadata["examples"].value
    assert "value" in examples and table.primary_key[0] in examples
    assert ("inf" in examples) or ("nan" in examples)


def test_finite_values_names_the_column_of_key_result_attainment(tmp_path: Path):
    table = MARTS_KEY_RESULT_ATTAINMENT
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    table.create(con)
    insert_row(con, table, "0.5")
    inputs = CheckInputs(con, None, date(2025, 5, 15), date(2025, 5, 15))  # type: ignore[arg-type]
    assert finite_check(table).evaluate(inputs).passed
    con.execute(f"UPDATE {table.fqn} SET current_value = 'inf'::DOUBLE")
    result = finite_check(table).evaluate(inputs)
    assert not result.passed
    assert "current_value (1)" in result.description and "raw_progress" not in result.description
    assert "kr_id=" in result.description
