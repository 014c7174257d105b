"""Check-ins (docs/checkins.md): the file source with its rejects and quarantines, manual KRs
measured from the values checked in, the latest confidence and comment on each KR row, the
check-in history with the day's status and the flags, the lint rule and the page; every number
worked out by hand in the comments."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from bi.page import render_scorecard_page
from bi.scorecard import scorecard_text
from connectors.checkins.extract import load_checkins_folder
from connectors.checkins.staging import stage_checkins
from pipelines.cli import backfill, main
from pipelines.settings import Settings
from transforms.alerts import pending_alerts
from transforms.config import ConfigError, load_config

METRICS = """
settings: {timezone: UTC, fiscal_year_start_month: 1}
metrics:
  - {id: avg_confidence, name: Average confidence, source: checkins, aggregation: avg,
     column: confidence, target: {value: 7, tolerance: 0.1}}
"""
OKRS = """
objectives:
  - id: launch-q1
    title: Launch
    team: product
    owner: ana
    period: 2025-Q1
    key_results:
      - {id: kr-hires, title: Hire 4 engineers, metric: manual, type: increase, baseline: 0,
         target: 4}
      - {id: kr-launch, title: Ship v1, metric: manual, type: milestone, target: 1}
  - id: growth-q2
    title: Grow
    team: product
    owner: ana
    period: 2025-Q2
    key_results:
      - {id: kr-hires-q2, title: Two more hires, metric: manual, type: increase,
         baseline: auto, target: "+2"}
      - {id: kr-contract, title: Sign the contract, metric: manual, type: milestone, target: 1}
"""
Q1_CSV = """\
date,kr_id,confidence,value,comment,author
2025-01-10,kr-hires,8,1,"First hire, more to come",ana
2025-01-15,kr-launch,high,0,Build started,bo
2025-02-09,kr-hires,medium,3,,ana
2025-02-20,kr-launch,9,1,"Shipped; ""v1"" live",bo
2025-03-01,kr-hires,3,,"Offer declined, second round",ana
2025-03-20,kr-hires-q2,,3,Where Q2 starts from,ana
"""
Q2_YAML = """\
- {date: 2025-05-01, kr_id: kr-hires-q2, confidence: 9, value: 3, comment: Two offers out,
   author: ana}
- {date: 2025-05-02, kr_id: kr-ghost, confidence: low, author: cy}
- {date: 2025-05-20, kr_id: kr-hires-q2, confidence: 1, value: 5, author: ana}
"""


def write_project(root: Path) -> Settings:
    (root / "config").mkdir()
    (root / "config" / "metrics.yaml").write_text(textwrap.dedent(METRICS))
    (root / "config" / "okrs.yaml").write_text(textwrap.dedent(OKRS))
    folder = root / "data" / "checkins"
    (folder / "q2").mkdir(parents=True)
    (folder / "q1.csv").write_text(Q1_CSV)
    (folder / "q2" / "may.yaml").write_text(Q2_YAML)
    return Settings(
        config_dir=root / "config",
        data_dir=root / "data",
        warehouse=root / "warehouse.duckdb",
        bi_snapshot=root / "bi.duckdb",
        as_of="2025-05-15",
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = write_project(tmp_path_factory.mktemp("checkins"))
    assert backfill(settings, "2025-Q1", "2025-Q2", dg.DagsterInstance.ephemeral()).success
    return settings


def query(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.bi_snapshot), read_only=True) as con:
        return con.execute(sql).fetchall()


def kr_row(settings: Settings, kr_id: str, quarter: str) -> dict:
    with duckdb.connect(str(settings.bi_snapshot), read_only=True) as con:
        frame = con.sql(
            "SELECT * FROM marts.key_result_attainment WHERE kr_id = ? AND quarter = ?",
            params=[kr_id, quarter],
        ).pl()
    assert frame.height == 1
    return frame.row(0, named=True)


# -- manual KRs ------------------------------------------------------------------------------


def test_a_manual_kr_reads_the_last_value_checked_in(project: Settings):
    row = kr_row(project, "kr-hires", "2025-Q1")
    # Values 1 (Jan 10), 3 (Feb 9); the Mar 1 check-in has no value, so 3 carries to Mar 31.
    # increase 0 -> 4: r = 3 / 4 = 0.75; the quarter ended: missed; 0.75 >= 0.7: green.
    assert (row["metric_id"], row["baseline"], row["target"], row["current_value"]) == (
        "manual.kr-hires",
        0.0,
        4.0,
        3.0,
    )
    assert (row["progress"], row["status"], row["grade"]) == (0.75, "missed", "green")
    assert row["data_through"] == date(2025, 2, 9)
    # Its latest check-in of the quarter is Mar 1's (low confidence); missed is not flagged.
    assert (row["checkin_date"], row["confidence"], row["confidence_level"]) == (
        date(2025, 3, 1),
        3.0,
        "low",
    )
    assert (row["checkin_comment"], row["checkin_author"], row["confidence_flag"]) == (
        "Offer declined, second round",
        "ana",
        None,
    )


def test_a_manual_milestone_is_reached_by_the_value_checked_in(project: Settings):
    row = kr_row(project, "kr-launch", "2025-Q1")
    assert (row["current_value"], row["progress"], row["status"]) == (1.0, 1.0, "achieved")
    # "high" is 8 on the 0-10 scale; the latest check-in (Feb 20) gave 9.
    assert (row["checkin_date"], row["confidence"]) == (date(2025, 2, 20), 9.0)
    assert row["checkin_comment"] == 'Shipped; "v1" live'


def test_an_auto_baseline_carries_the_last_value_from_before_the_kr(project: Settings):
    row = kr_row(project, "kr-hires-q2", "2025-Q2")
    # b = the last value checked in for it before Apr 1 = 3 (Mar 20), t = b + 2 = 5; a(May 15) = 3 from
    # May 1 (May 20 is after the as-of day): r = 0. e = 45 / 91, gap 0.49 > 0.25: off_track.
    assert (row["baseline"], row["target"], row["current_value"], row["progress"]) == (
        3.0,
        5.0,
        3.0,
        0.0,
    )
    assert row["expected_progress"] == pytest.approx(45 / 91)
    assert row["status"] == row["display_status"] == "off_track"
    # Confidence 9 (high) while off track: flagged.
    assert (row["checkin_date"], row["confidence"], row["confidence_flag"]) == (
        date(2025, 5, 1),
        9.0,
        "high_confidence_off_track",
    )


def test_a_manual_kr_without_check_ins_has_no_data(project: Settings):
    row = kr_row(project, "kr-contract", "2025-Q2")
    assert (row["current_value"], row["progress"], row["status"]) == (None, None, "no_data")
    assert row["checkin_date"] is None and row["confidence_flag"] is None


def test_manual_metrics_are_kr_values_not_kpis(project: Settings):
    dims = {m for (m,) in query(project, "SELECT metric_id FROM marts.dim_metrics")}
    assert dims == {
        "avg_confidence",
        "manual.kr-hires",
        "manual.kr-launch",
        "manual.kr-hires-q2",
        "manual.kr-contract",
    }
    summary = {m for (m,) in query(project, "SELECT metric_id FROM marts.success_metric_summary")}
    assert summary == {"avg_confidence"}
    daily = query(
        project,
        "SELECT value FROM marts.metric_daily WHERE metric_id = 'manual.kr-hires' "
        "AND date IN ('2025-01-09', '2025-01-10', '2025-03-31') ORDER BY date",
    )
    assert daily == [(None,), (1.0,), (3.0,)]


def test_check_ins_are_a_metric_source_too(project: Settings):
    # Average confidence over Q1: 8, 8 (high), 5 (medium), 9, 3 -> 33 / 5 = 6.6; the target 7
    # with tolerance 0.1 makes 6.3..7 yellow. Q2 up to May 15: 9 and 2 (low) -> 5.5: red.
    rows = dict(
        query(
            project,
            "SELECT period_label, value FROM marts.success_metric_summary "
            "WHERE metric_id = 'avg_confidence' AND grain = 'quarter'",
        )
    )
    assert rows == {"2025-Q1": pytest.approx(6.6), "2025-Q2": pytest.approx(5.5)}
    health = dict(
        query(
            project,
            "SELECT period_label, health FROM marts.success_metric_summary "
            "WHERE metric_id = 'avg_confidence' AND grain = 'quarter'",
        )
    )
    assert health == {"2025-Q1": "yellow", "2025-Q2": "red"}


# -- the history, the lint, the page ----------------------------------------------------------


def test_the_history_keeps_every_check_in_with_the_status_of_its_day(project: Settings):
    rows = query(
        project,
        "SELECT kr_id, checkin_date, author, quarter, objective_id, confidence_level, value, "
        "kr_status, confidence_flag FROM marts.key_result_checkins ORDER BY checkin_date",
    )
    assert rows == [
        # Jan 10: a = 1, r = 0.25 against e = 10/90: on track.
        ("kr-hires", date(2025, 1, 10), "ana", "2025-Q1", "launch-q1", "high", 1.0, "on_track", None),
        # A milestone is on track until reached.
        ("kr-launch", date(2025, 1, 15), "bo", "2025-Q1", "launch-q1", "high", 0.0, "on_track", None),
        ("kr-hires", date(2025, 2, 9), "ana", "2025-Q1", "launch-q1", "medium", 3.0, "on_track", None),
        ("kr-launch", date(2025, 2, 20), "bo", "2025-Q1", "launch-q1", "high", 1.0, "achieved", None),
        # Mar 1: 0.75 against e = 60/90: on track, but the owner's confidence is low.
        ("kr-hires", date(2025, 3, 1), "ana", "2025-Q1", "launch-q1", "low", None, "on_track",
         "low_confidence_on_track"),
        # Before the KR's window: no status (it sets the KR's baseline).
        ("kr-hires-q2", date(2025, 3, 20), "ana", "2025-Q1", "growth-q2", None, 3.0, None, None),
        ("kr-hires-q2", date(2025, 5, 1), "ana", "2025-Q2", "growth-q2", "high", 3.0, "off_track",
         "high_confidence_off_track"),
        # A KR id okrs.yaml lacks: kept, without objective or status.
        ("kr-ghost", date(2025, 5, 2), "cy", "2025-Q2", None, "low", None, None, None),
    ]  # fmt: skip


def test_lint_names_check_ins_for_a_kr_the_config_lacks(project: Settings):
    findings = query(
        project, "SELECT object_id, severity FROM marts.okr_lint WHERE rule = 'checkin_unknown_kr'"
    )
    assert findings == [("kr-ghost", "warning")]


def test_the_page_shows_the_latest_check_in_and_flags_disagreement(project: Settings):
    with duckdb.connect(str(project.bi_snapshot), read_only=True) as con:
        page = render_scorecard_page(con)
    q2 = page[page.index('data-kr-id="kr-hires-q2"') :]
    q2 = q2[: q2.index('<div class="chart')]
    assert "confidence <b>9/10</b> high" in q2 and "ana on 2025-05-01" in q2
    assert "Two offers out" in q2
    assert 'data-confidence-flag="high_confidence_off_track"' in q2
    assert "the owner is confident, but the data says off track" in q2
    no_checkin = page[page.index('data-kr-id="kr-contract"') :]
    assert 'class="kr-meta checkin"' not in no_checkin[: no_checkin.index('<div class="chart')]


def test_the_text_scorecard_and_the_scorecard_mart_carry_the_flags(project: Settings):
    with duckdb.connect(str(project.bi_snapshot), read_only=True) as con:
        text = scorecard_text(con, ["2025-Q2"])
        items = con.execute(
            "SELECT item_id, confidence, checkin_comment, confidence_flag FROM marts.okr_scorecard "
            "WHERE item_type = 'key_result' ORDER BY quarter_start, item_id"
        ).fetchall()
    [flagged] = [line for line in text.splitlines() if line.endswith("disagrees]")]
    assert (
        flagged.startswith("  - Two more hires") and "[confidence 9/10 high disagrees]" in flagged
    )
    assert items == [
        ("kr-hires", 3.0, "Offer declined, second round", None),
        ("kr-launch", 9.0, 'Shipped; "v1" live', None),
        ("kr-contract", None, None, None),
        ("kr-hires-q2", 9.0, "Two offers out", "high_confidence_off_track"),
    ]


def test_a_kr_status_alert_quotes_the_owners_latest_check_in(project: Settings):
    with duckdb.connect(str(project.bi_snapshot), read_only=True) as con:
        alerts = {a.key: a for a in pending_alerts(con, date(2025, 5, 15))}
    # Progress stays 0 while e = d / 91 grows: the gap passes 0.25 on Apr 23 (23/91 = 0.253).
    alert = alerts["kr-status:kr-hires-q2:off_track:2025-04-23"]
    assert alert.payload["text"].endswith(
        "Latest check-in, 2025-05-01 by ana: confidence 9/10 (high): Two offers out"
    )
    okr = alert.payload["okr"]
    assert (okr["confidence"], okr["checkin_comment"], okr["confidence_flag"]) == (
        9.0,
        "Two offers out",
        "high_confidence_off_track",
    )


def test_a_rerun_changes_nothing(project: Settings):
    before = query(project, "SELECT * FROM marts.key_result_checkins ORDER BY ALL")
    attainment = query(
        project, "SELECT * EXCLUDE (as_of_date) FROM marts.key_result_attainment ORDER BY ALL"
    )
    assert backfill(project, "2025-Q1", "2025-Q2", dg.DagsterInstance.ephemeral()).success
    assert query(project, "SELECT * FROM marts.key_result_checkins ORDER BY ALL") == before
    assert (
        query(
            project, "SELECT * EXCLUDE (as_of_date) FROM marts.key_result_attainment ORDER BY ALL"
        )
        == attainment
    )


# -- the files --------------------------------------------------------------------------------


def test_the_latest_check_in_is_the_last_one_by_the_row_s_as_of_date():
    """A KR ending on Feb 15 is measured as of Feb 15: a check-in of Feb 20 in the same quarter
    is after its numbers and is not shown; of two check-ins on one day, the last author by
    name is; a high confidence on an off-track KR is flagged."""
    import polars as pl

    from transforms.checkins import with_latest_checkins

    q1 = date(2025, 1, 1)
    kr_rows = pl.DataFrame(
        {
            "kr_id": ["kr-a"],
            "quarter_start": [q1],
            "as_of_date": [date(2025, 2, 15)],
            "display_status": ["off_track"],
        }
    )
    checkins = pl.DataFrame(
        {
            "kr_id": ["kr-a"] * 3,
            "quarter_start": [q1] * 3,
            "date": [date(2025, 2, 10), date(2025, 2, 10), date(2025, 2, 20)],
            "author": ["bo", "ana", "cy"],
            "confidence": [8.0, 3.0, 1.0],
            "confidence_level": ["high", "low", "low"],
            "comment": ["fine", "worried", "too late"],
        }
    )
    [row] = with_latest_checkins(kr_rows, checkins).to_dicts()
    assert (row["checkin_date"], row["checkin_author"], row["checkin_comment"]) == (
        date(2025, 2, 10),
        "bo",
        "fine",
    )
    assert row["confidence_flag"] == "high_confidence_off_track"


def load(folder: Path, con: duckdb.DuckDBPyConnection | None = None):
    con = con or duckdb.connect()
    return con, load_checkins_folder(con, folder)


def rejects(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "SELECT location, field, reason FROM raw.rejected_rows ORDER BY rejected_at, location"
    ).fetchall()


def test_bad_check_ins_are_rejected_with_file_line_and_field(tmp_path: Path):
    (tmp_path / "week.csv").write_text(
        "date;kr_id;confidence;comment\n"
        '2025-02-03;kr-a;7;"two\nlines; quoted"\n'
        "\n"
        "2025-02-1x;kr-a;5;bad date\n"
        "2025-02-10;KR A;5;bad id\n"
        "2025-02-10;kr-a;11;too sure\n"
        "2025-02-10;kr-a;sure;not a number\n"
        "2025-02-10;kr-a;;neither confidence nor value\n"
        "2025-02-10;kr-a;5\n"
    )
    (tmp_path / "more.yaml").write_text(
        "checkins:\n"
        "  - {date: 2025-02-06, kr_id: kr-b, value: abc}\n"
        "  - date: 2025-02-07T10:00:00\n"
        "    kr_id: kr-b\n"
        "    confidence: 5\n"
        "  - {date: 2025-02-08, kr_id: kr-b, confidence: 5, comment: [a, b]}\n"
        "  - {date: 2025-02-08, kr_id: kr-b, confidence: 5, __fields__: great}\n"
        "  - {date: 2025-02-09, kr_id: kr-b, value: 1e400}\n"
        "  - just text\n"
        "  - {date: 2025-02-09, kr_id: kr-b, confidence: Low, value: 2}\n"
    )
    con, report = load(tmp_path)
    assert (report.rows_loaded, report.rows_rejected) == (2, 12)
    assert con.execute(
        "SELECT _source_ref, _source_row, date, kr_id, confidence, value, comment "
        "FROM raw.checkins ORDER BY _source_ref"
    ).fetchall() == [
        ("more.yaml", 10, date(2025, 2, 9), "kr-b", 2.0, 2.0, None),
        ("week.csv", 2, date(2025, 2, 3), "kr-a", 7.0, None, "two\nlines; quoted"),
    ]
    assert {(location, field) for location, field, _ in rejects(con)} == {
        ("more.yaml:2", "value"),
        ("more.yaml:3", "date"),
        ("more.yaml:6", "comment"),
        ("more.yaml:7", "__fields__"),
        ("more.yaml:8", "value"),
        ("more.yaml:9", None),
        ("week.csv:5", "date"),
        ("week.csv:6", "kr_id"),
        ("week.csv:7", "confidence"),
        ("week.csv:8", "confidence"),
        ("week.csv:9", "confidence"),
        ("week.csv:10", None),
    }
    reasons = {location: reason for location, _, reason in rejects(con)}
    assert reasons["week.csv:5"] == "date '2025-02-1x' is not a date; use YYYY-MM-DD"
    assert reasons["week.csv:7"].startswith("confidence 11 is outside the scale 0-10")
    assert reasons["week.csv:9"] == (
        "confidence is missing; a check-in needs a confidence, a value or both"
    )
    assert reasons["week.csv:10"] == "the record has 3 fields where the header has 4"
    assert "is a time" in reasons["more.yaml:3"]


def test_files_that_cannot_be_read_are_quarantined_and_the_others_load(tmp_path: Path):
    (tmp_path / "typo.csv").write_text("date,kr_id,confidnce\n2025-01-01,kr-a,5\n")
    (tmp_path / "no_id.csv").write_text("date,confidence\n2025-01-01,5\n")
    (tmp_path / "latin1.csv").write_bytes(
        "date,kr_id,confidence,comment\n2025-01-01,kr-a,5,caf\xe9\n".encode("latin-1")
    )
    (tmp_path / "broken.yaml").write_text("- {date: 2025-01-01, kr_id: [\n")
    (tmp_path / "mapping.yml").write_text("date: 2025-01-01\nkr_id: kr-a\n")
    (tmp_path / "good.yml").write_text("- {date: 2025-01-01, kr_id: kr-a, confidence: 5}\n")
    (tmp_path / "notes.txt").write_text("not a check-in file: ignored\n")
    con, report = load(tmp_path)
    assert report.rows_loaded == 1 and report.files_loaded == ["good.yml"]
    assert set(report.files_quarantined) == {
        "typo.csv",
        "no_id.csv",
        "latin1.csv",
        "broken.yaml",
        "mapping.yml",
    }
    assert "'confidnce'" in report.files_quarantined["typo.csv"]
    assert "missing: kr_id" in report.files_quarantined["no_id.csv"]
    assert "not UTF-8" in report.files_quarantined["latin1.csv"]
    assert "not valid YAML at line" in report.files_quarantined["broken.yaml"]
    assert "not a list of check-ins" in report.files_quarantined["mapping.yml"]


def test_yaml_aliases_cannot_blow_up_a_load(tmp_path: Path):
    # Ten levels of anchored lists, four aliases each: 10 * 4**9 items once expanded. Each
    # level is a record's comment (rejected: not a single value); the last record uses the
    # deepest one as a key, which an early loader expanded into text (~4x the time per level).
    levels = ["[x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"[*l{i}, *l{i}, *l{i}, *l{i}]" for i in range(9)]
    bomb = "".join(
        f"- {{date: 2025-01-01, kr_id: kr-a, confidence: 5, comment: &l{i} {items}}}\n"
        for i, items in enumerate(levels)
    )
    (tmp_path / "bomb.yaml").write_text(
        bomb
        + "- {date: 2025-01-01, kr_id: kr-a, confidence: 5, comment: &c hello}\n"
        + "- {date: 2025-01-02, kr_id: kr-a, confidence: 5, comment: *c}\n"
        + "- {date: 2025-01-03, kr_id: kr-a, confidence: 5, comment: [*c, *c]}\n"
        + "- {date: 2025-01-04, kr_id: kr-a, confidence: 5, ? *l9 : 1}\n"
    )
    con, report = load(tmp_path)
    assert (report.rows_loaded, report.rows_rejected) == (2, 12)
    assert con.execute("SELECT comment FROM raw.checkins ORDER BY date").fetchall() == [
        ("hello",),
        ("hello",),
    ]
    assert [row for row in rejects(con) if row[0] == "bomb.yaml:14"] == [
        (
            "bomb.yaml:14",
            None,
            "a key is a list or mapping; keys are the field names date, kr_id, confidence, "
            "value, comment, author",
        )
    ]


def test_yaml_text_stays_as_written_and_numbers_follow_the_csv_rules(tmp_path: Path):
    # YAML 1.1 would read `off` and `No` as booleans, 0x1F as 31 and 1.50 as 1.5.
    (tmp_path / "words.yaml").write_text(
        "- {date: 2025-01-01, kr_id: kr-a, confidence: 5, comment: off, author: No}\n"
        "- {date: 2025-01-02, kr_id: kr-a, confidence: 5, comment: 1.50, author: 0x1F}\n"
        "- {date: 2025-01-03, kr_id: kr-a, confidence: 5, comment: ~, author: ''}\n"
        "- {date: 2025-01-04, kr_id: kr-a, value: 1.0e-400}\n"
        "- {date: 2025-01-05, kr_id: kr-a, value: 1e-400}\n"
        "- {date: 2025-01-06, kr_id: kr-a, value: 0.0e-400}\n"
    )
    con, report = load(tmp_path)
    assert con.execute(
        "SELECT comment, author, value FROM raw.checkins ORDER BY date"
    ).fetchall() == [
        ("off", "No", None),
        ("1.50", "0x1F", None),
        (None, None, None),
        (None, None, 0.0),
    ]
    too_small = (
        "is too small to represent: a nonzero number below 2.2e-308 in magnitude would load "
        "as 0 or lose precision"
    )
    assert rejects(con) == [
        ("words.yaml:4", "value", f"value '1.0e-400' {too_small}"),
        ("words.yaml:5", "value", f"value '1e-400' {too_small}"),
    ]


def test_loading_is_idempotent_and_a_later_file_wins_per_day_kr_and_author(tmp_path: Path):
    (tmp_path / "a.csv").write_text(
        "date,kr_id,confidence,author\n2025-01-06,kr-a,4,ana\n2025-01-06,kr-a,6,bo\n"
    )
    con, first = load(tmp_path)
    assert first.rows_loaded == 2
    _, again = load(tmp_path, con)
    assert again.files_skipped == ["a.csv"] and again.rows_loaded == 0
    assert con.execute("SELECT count(*) FROM raw.checkins").fetchone() == (2,)
    # A later file restates ana's check-in of Jan 6; bo's stays.
    (tmp_path / "b.yaml").write_text(
        "- {date: 2025-01-06, kr_id: kr-a, confidence: 9, author: ana}\n"
    )
    load(tmp_path, con)
    assert stage_checkins(con, date(2025, 1, 1), date(2025, 3, 31)) == 2
    assert con.execute(
        "SELECT author, confidence, confidence_level, _source_ref FROM staging.checkins "
        "ORDER BY author"
    ).fetchall() == [("ana", 9.0, "high", "b.yaml"), ("bo", 6.0, "medium", "a.csv")]
    # A changed file replaces what it loaded before.
    (tmp_path / "a.csv").write_text("date,kr_id,confidence,author\n2025-01-06,kr-a,1,bo\n")
    _, changed = load(tmp_path, con)
    assert changed.files_loaded == ["a.csv"]
    assert con.execute(
        "SELECT author, confidence FROM raw.checkins ORDER BY author"
    ).fetchall() == [("ana", 9.0), ("bo", 1.0)]


def test_okr_names_the_file_and_line_that_failed_the_reject_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    settings = write_project(tmp_path)
    (settings.data_dir / "checkins" / "q1.csv").write_text(
        Q1_CSV.replace("2025-02-09,kr-hires,medium", "2025-02-09,kr-hires,very")
    )
    for name, value in {
        "OKR_CONFIG_DIR": settings.config_dir,
        "OKR_DATA_DIR": settings.data_dir,
        "OKR_WAREHOUSE": settings.warehouse,
        "OKR_BI_SNAPSHOT": settings.bi_snapshot,
        "OKR_AS_OF": settings.as_of,
        "DAGSTER_HOME": tmp_path / "dagster_home",
    }.items():
        monkeypatch.setenv(name, str(value))
    assert main(["backfill", "2025-Q1"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-2] == (
        "okr: raw/checkins check reject_rate failed: 1 files reject more than 5.0% of their "
        "rows (worst: q1.csv, 16.7%, e.g. q1.csv:4: confidence 'very' is not a confidence: use "
        "0-10, low, medium or high); fix them (every rejected row is in raw.rejected_rows) or "
        "raise OKR_MAX_REJECT_RATE"
    )
    assert lines[-1] == "okr: the run failed; see the errors above"
    # The other check-ins of the file loaded; nothing reached the marts.
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        assert con.execute(
            "SELECT count(*) FROM raw.checkins WHERE _source_ref = 'q1.csv'"
        ).fetchone() == (5,)
        marts = {
            t
            for (t,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts'"
            ).fetchall()
        }
        assert "key_result_attainment" not in marts  # only the config's dims were written


# -- the config -------------------------------------------------------------------------------


def test_manual_is_reserved_among_metric_ids(tmp_path: Path):
    (tmp_path / "metrics.yaml").write_text(
        textwrap.dedent(
            """
            metrics:
              - {id: manual, name: M, source: checkins, aggregation: count}
              - {id: manual.kr-a, name: M, source: checkins, aggregation: count}
            """
        )
    )
    (tmp_path / "okrs.yaml").write_text(
        textwrap.dedent(
            """
            objectives:
              - id: o
                title: O
                team: t
                period: 2025-Q1
                key_results:
                  - {id: kr-a, title: A, metric: manual, type: milestone, target: 1}
            """
        )
    )
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path)
    problems = error.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("metrics.yaml:3: metric 'manual', field 'id': 'manual' and ids")
    assert problems[1].startswith("metrics.yaml:4: metric 'manual.kr-a', field 'id'")
    assert all("reserved for key results with `metric: manual`" in p for p in problems)
