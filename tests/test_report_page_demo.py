"""The scorecard page the demo publishes (`okr demo`: the shipped example end to end, the page
written by the bi/scorecard_page asset from the real marts): every published quarter in one page
of reasonable size, each quarter's charts drawing in headless Chromium when it is chosen.
Screenshots are written under the test's tmp folder."""

from __future__ import annotations

import re
import time
from pathlib import Path

import duckdb
import pytest
from test_report_page import all_specs, open_page

from bi.page import rows_of

MAX_PAGE_BYTES = 2_500_000  # the Vega bundle (~0.9 MB) and nine quarters of the example


@pytest.fixture(scope="module")
def demo(demo_run) -> tuple[Path, str]:
    """The session's `okr demo` run: its snapshot, and the page it published."""
    root, _ = demo_run
    return root / "okr_bi.duckdb", (root / "scorecard.html").read_text(encoding="utf-8")


def test_the_demo_page_holds_every_published_quarter_latest_first(demo):
    snapshot, page = demo
    with duckdb.connect(str(snapshot), read_only=True) as con:
        quarters = [
            q
            for (q, _) in con.sql(
                "SELECT DISTINCT quarter, quarter_start FROM marts.objective_attainment "
                "ORDER BY quarter_start DESC"
            ).fetchall()
        ]
        names = dict(con.sql("SELECT metric_id, name FROM marts.dim_metrics").fetchall())
    assert len(quarters) > 4
    sections = re.findall(r'<section class="quarter[^"]*" id="[^"]+" data-quarter="([^"]+)"', page)
    assert sections == quarters
    assert f'data-quarter="{quarters[0]}" data-default>' in page
    assert len(page.encode()) < MAX_PAGE_BYTES
    assert page.count("window.vegaEmbed=") == 1

    # Heatmap rows by the metrics' display names, a value in every measured cell.
    specs = all_specs(page)
    heatmap = rows_of(specs[f"q-{quarters[0]}"][f"q-{quarters[0]}-kpi-health"])
    assert {r["metric"] for r in heatmap} == {names[r["metric_id"]] for r in heatmap}
    assert not {r["metric"] for r in heatmap} & set(names) - set(names.values())
    assert all(r["label"] not in ("", "–") for r in heatmap if r["value"] is not None)
    assert {"no_target"} <= {r["health"] for r in heatmap}
    # cells read in their metric's unit: a ratio as a percentage, a currency with its code
    with duckdb.connect(str(snapshot), read_only=True) as con:
        units = dict(con.sql("SELECT metric_id, unit FROM marts.dim_metrics").fetchall())
    measured = [r for r in heatmap if r["value"] is not None]
    for unit, pattern in (("ratio", r"^-?[\d,.]+%$"), ("EUR", r"^EUR -?[\d,.]+[kMB]?$")):
        cells = [r["label"] for r in measured if units[r["metric_id"]] == unit]
        assert cells and all(re.match(pattern, label) for label in cells), (unit, cells[:5])


def test_every_quarter_of_the_demo_page_draws_its_charts_and_its_tree(demo, tmp_path):
    snapshot, page = demo
    with duckdb.connect(str(snapshot), read_only=True) as con:
        rows = con.sql(
            "SELECT quarter, objective_id, parent_id FROM marts.objective_attainment"
        ).fetchall()
    present = {(quarter, objective) for quarter, objective, _ in rows}
    tree = {  # the parent each card sits under: its parent_id when that has a row too
        (quarter, objective): parent if (quarter, parent) in present else None
        for quarter, objective, parent in rows
    }
    assert any(tree.values())
    specs = all_specs(page)
    with open_page(page, tmp_path) as view:
        for slug, charts in specs.items():
            view.choose("quarter-select", slug)
            view.wait_for_canvases(f"#{slug} .chart canvas", len(charts))
            assert view.evaluate("document.querySelectorAll('.chart-error').length") == 0
            assert view.visible("section.quarter") == [slug]
            quarter = view.evaluate(f"document.getElementById('{slug}').dataset.quarter")
            for container in ("objectives", "tree"):
                nested = view.evaluate(
                    f"Array.from(document.querySelectorAll('#{slug} .{container} "
                    ".node[data-objective-id]')).map(n => [n.dataset.objectiveId,"
                    " n.parentElement.closest('.node') ?"
                    " n.parentElement.closest('.node').dataset.objectiveId : null])"
                )
                assert {(quarter, o): p for o, p in nested} == {
                    key: parent for key, parent in tree.items() if key[0] == quarter
                }
        view.choose("quarter-select", next(iter(specs)))
        time.sleep(0.5)
        view.screenshot("latest")


def kr_text(view, slug: str, kr_id: str) -> str:
    """The visible text of a KR row of one quarter, as the browser lays it out."""
    return view.evaluate(f"document.querySelector('#{slug} .kr[data-kr-id=\"{kr_id}\"]').innerText")


def test_the_demo_page_shows_units_stale_provisional_grades_and_milestone_closeness(demo, tmp_path):
    snapshot, page = demo
    with duckdb.connect(str(snapshot), read_only=True) as con:
        krs = {
            row[0]: row
            for row in con.sql(
                "SELECT kr_id, display_value, denominator_value, best_value, display_status, "
                "grade, data_through FROM marts.key_result_attainment WHERE quarter = '2026-Q4'"
            ).fetchall()
        }
    with open_page(page, tmp_path) as view:
        view.choose("quarter-select", "q-2026-Q4")
        # a rate stored as a fraction reads as a percentage, with its denominator
        conversion = krs["web-conversion-2026q4"]
        text = kr_text(view, "q-2026-Q4", "web-conversion-2026q4")
        assert f"current {conversion[1] * 100:.2f}% (n = {conversion[2]:,.0f})" in text
        assert "target 2.50%" in text
        # counts in their unit, no cents
        assert re.search(
            r"current [\d,]+ clients", kr_text(view, "q-2026-Q4", "major-clients-2026q4")
        )
        # stale: the badge, and why; the value as of the last day with data
        churn = kr_text(view, "q-2026-Q4", "new-customer-churn-2026")
        assert krs["new-customer-churn-2026"][4] == "stale"
        assert "STALE" in churn.upper() and "no data since 2025-11-02" in churn
        assert "as of 2025-11-02, the last day with data" in churn
        # a milestone says how close it came; the running quarter's grades are provisional
        milestone = kr_text(view, "q-2026-Q4", "milestone-90k-users-2026q4")
        best = krs["milestone-90k-users-2026q4"][3]
        assert f"best so far {best:,.0f} of 90,000" in milestone
        assert "(provisional)" in milestone
        assert (
            view.evaluate("document.querySelectorAll('#q-2026-Q4 .grade.provisional').length") > 0
        )
        view.screenshot("running-quarter")
        # a closed quarter's grades are final
        view.choose("quarter-select", "q-2026-Q3")
        assert (
            view.evaluate("document.querySelectorAll('#q-2026-Q3 .grade.provisional').length") == 0
        )
        assert view.evaluate("document.querySelectorAll('#q-2026-Q3 .grade').length") > 0
        assert "closed: grades are final" in view.evaluate(
            "document.querySelector('#q-2026-Q3 .quarter-head').innerText"
        )
        view.screenshot("closed-quarter")
    # the legend explains committed vs aspirational, provisional and stale
    assert "aspirational ones at 70%" in page and "final once the quarter closes" in page
