"""Graded at close, through real materializations: the grades computed once a quarter has closed
are recorded and never silently restated; late data shows up as a restatement beside them. Also
the as-of date of each quarter and the views BI users reach for first, in the warehouse and in
the published snapshot."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import dagster as dg
import duckdb
import pytest
from test_pipeline import rows, write_project
from test_report_page import open_page

from pipelines.cli import backfill
from transforms.views import MART_VIEWS

RECORD = (
    "SELECT object_type, object_id, quarter, value, progress, status, grade, reported_at "
    "FROM marts.reported_grades ORDER BY ALL"
)


def test_closed_quarters_grades_are_recorded_once_and_late_data_is_a_restatement(tmp_path):
    settings = write_project(tmp_path)  # as of 2025-05-15: Q1 closed, Q2 running
    instance = dg.DagsterInstance.ephemeral()
    assert backfill(settings, "2025-Q1", "2025-Q2", instance).success
    recorded = rows(settings, RECORD)
    # Q1's two KRs and two objectives, nothing of the running Q2
    assert {(r[0], r[1], r[2]) for r in recorded} == {
        ("key_result", "kr-visits-q1", "2025-Q1"),
        ("key_result", "kr-csat-h1", "2025-Q1"),
        ("objective", "growth-q1", "2025-Q1"),
        ("objective", "company-2025", "2025-Q1"),
    }
    # 12 visits a day over Q1's 90 days = 1,080, against a target of +50% on the 900 of the 90
    # days before (10 a day) = 1,350: p = 1080 / 1350 = 0.8
    visits = next(r for r in recorded if r[1] == "kr-visits-q1")
    assert visits[3] == 1080 and visits[4] == pytest.approx(0.8)
    assert rows(settings, "SELECT count(*) FROM marts.grade_restatements") == [(0,)]

    # A correction for Q1 arrives: 300 visits on 2025-03-31, replacing that day's 12 (a later
    # file's row replaces an earlier one's). Re-running Q1 restates it: 1,080 - 12 + 300.
    csv = settings.data_dir / "csv"
    (csv / "late.csv").write_text("date,metric_id,value\n2025-03-31,visits,300\n")
    assert backfill(settings, "2025-Q1", "2025-Q1", instance).success
    assert rows(settings, RECORD) == recorded  # the record did not move
    [current] = rows(
        settings,
        "SELECT current_value, progress, grade FROM marts.key_result_attainment "
        "WHERE kr_id = 'kr-visits-q1'",
    )
    assert current[0] == 1368 and current[1] == 1.0 and current[2] == "green"
    restated = rows(
        settings,
        "SELECT object_id, reported_value, restated_value, value_difference, reported_grade, "
        "restated_grade, reported_at FROM marts.grade_restatements ORDER BY object_id",
    )
    # growth-q1's score moved with its KR (company-2025 has no KRs of its own, and its
    # roll-up is not what objectives are graded on in reported_grades: it moved too)
    by_id = {r[0]: r for r in restated}
    assert by_id["kr-visits-q1"][1:6] == (1080, 1368, 288, "green", "green")
    assert by_id["kr-visits-q1"][6] == visits[7]
    assert "growth-q1" in by_id
    assert "kr-csat-h1" not in by_id  # unchanged numbers are not restatements

    # The page marks the restated grades (drawn in headless Chromium).
    page = (settings.bi_snapshot.parent / "scorecard.html").read_text(encoding="utf-8")
    with open_page(page, tmp_path / "shots") as view:
        view.choose("quarter-select", "q-2025-Q1")
        marked = view.evaluate(
            "Array.from(document.querySelectorAll('#q-2025-Q1 .restated'))"
            ".map(e => e.closest('[data-kr-id],[data-objective-id]'))"
            ".map(e => e.dataset.krId || e.dataset.objectiveId)"
        )
        assert sorted(marked) == sorted(r[0] for r in restated)
        text = view.evaluate(
            "document.querySelector('#q-2025-Q1 .kr[data-kr-id=\"kr-visits-q1\"] .restated')"
            ".innerText"
        )
        assert "reported green (80%)" in text and "now green (100%)" in text
        view.screenshot("restated")


def test_each_quarter_keeps_the_as_of_date_it_was_computed_at(tmp_path):
    early = write_project(tmp_path, as_of="2025-03-15")
    instance = dg.DagsterInstance.ephemeral()
    assert backfill(early, "2025-Q1", "2025-Q1", instance).success
    # Q1 is the running quarter: its scorecard is the running one
    scorecard = "SELECT * FROM marts.okr_scorecard WHERE quarter = '2025-Q1' ORDER BY ALL"
    assert rows(early, "SELECT * FROM marts.running_quarter_scorecard ORDER BY ALL") == rows(
        early, scorecard
    )
    assert len(rows(early, scorecard)) >= 3  # growth-q1's two KRs and its related metric
    later = replace(early, as_of="2025-05-15")
    assert backfill(later, "2025-Q2", "2025-Q2", instance).success
    assert rows(
        later, "SELECT quarter, as_of_date, run_today, is_closed FROM marts.quarter_as_of ORDER BY 1"
    ) == [
        ("2025-Q1", date(2025, 3, 15), date(2025, 3, 15), False),
        ("2025-Q2", date(2025, 5, 15), date(2025, 5, 15), False),
    ]
    # Q1 was never computed closed, so nothing is recorded for it yet
    assert rows(later, "SELECT count(*) FROM marts.reported_grades") == [(0,)]


def test_the_first_views_bi_users_reach_for_are_published(tmp_path):
    settings = write_project(tmp_path)
    assert backfill(settings, "2025-Q1", "2025-Q2", dg.DagsterInstance.ephemeral()).success
    with duckdb.connect(str(settings.bi_snapshot), read_only=True) as snap:
        views = {
            name
            for (name,) in snap.execute(
                "SELECT view_name FROM duckdb_views() WHERE schema_name = 'marts' AND NOT internal"
            ).fetchall()
        }
        assert {view.name for view in MART_VIEWS} <= views
        # every view column is commented, as the dictionary documents it
        for view in MART_VIEWS:
            comments = dict(
                snap.execute(
                    "SELECT column_name, comment FROM duckdb_columns() "
                    "WHERE schema_name = 'marts' AND table_name = ?",
                    [view.name],
                ).fetchall()
            )
            assert list(comments) == view.column_names, view.name
            assert all(comments.values()), view.name
            snap.execute(view.example).fetchall()  # the documented example runs
        latest = snap.execute(
            "SELECT kr_id, quarter, metric_name, display_status FROM marts.kr_latest_status "
            "ORDER BY kr_id"
        ).fetchall()
        # one row per KR, from the latest quarter it is reported in; CSAT's last value is from
        # Apr 1, 44 days before May 15: more than a month without data reads as stale
        assert latest == [
            ("kr-csat-h1", "2025-Q2", "CSAT", "stale"),
            ("kr-visits-q1", "2025-Q1", "Visits", "missed"),
        ]


def test_a_warehouse_written_before_these_columns_existed_gains_them_and_keeps_its_rows(tmp_path):
    settings = write_project(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    assert backfill(settings, "2025-Q1", "2025-Q1", instance).success
    with duckdb.connect(str(settings.warehouse)) as con:  # as an earlier version left it
        con.execute("ALTER TABLE marts.key_result_attainment DROP COLUMN best_value")
        con.execute("ALTER TABLE marts.key_result_attainment DROP COLUMN display_status")
        con.execute("DROP TABLE marts.quarter_as_of")
    assert backfill(settings, "2025-Q2", "2025-Q2", instance).success
    assert rows(
        settings,
        "SELECT quarter, count(*), count(best_value), count(display_status) "
        "FROM marts.key_result_attainment GROUP BY ALL ORDER BY ALL",
    ) == [("2025-Q1", 2, 0, 0), ("2025-Q2", 1, 1, 1)]  # Q1 kept, until it is recomputed
    assert rows(settings, "SELECT quarter FROM marts.quarter_as_of") == [("2025-Q2",)]
