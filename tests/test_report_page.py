"""The scorecard page: built from a small real warehouse (the marts created from their Table specs,
a few hand-written rows: two quarters, an objective with two children, four KPI metrics), checked
as HTML (self-contained, escaped, the right charts) and opened in headless Chromium, where
screenshots show whether Vega drew the charts and the page's script works the selector and the
filters. Every screenshot is written under the test's tmp folder.

How the screenshot check works: every chart draws in a colour the page's CSS never uses (the
burn-up line, the heatmap's health colours and no-data hatching, the team bars). Rendered charts
put many pixels of that colour on screen; a page whose charts failed puts none. The negative
control removes the inlined Vega bundle from the same page and expects none of those pixels, so
the check can fail.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from PIL import Image, ImageChops

from bi.page import (
    BURNUP_COLOR,
    HEALTH_COLORS,
    NO_DATA_STRIPE,
    TEAM_COLOR,
    render_scorecard_page,
    rows_of,
    write_scorecard_page,
)
from transforms.kpi import MARTS_SUCCESS_METRIC_SUMMARY
from transforms.tables import (
    MARTS_KEY_RESULT_ATTAINMENT,
    MARTS_KEY_RESULT_PROGRESS_DAILY,
    MARTS_OBJECTIVE_ATTAINMENT,
    MARTS_TEAM_ATTAINMENT,
)
from warehouse.tables import Table
from warehouse.writes import insert_frame

CHROMIUM = Path("/usr/bin/chromium")
Q_START, Q_END = date(2025, 1, 1), date(2025, 3, 31)
OLD_START, OLD_END = date(2024, 10, 1), date(2024, 12, 31)
AS_OF = date(2025, 1, 30)  # day 30 of 90
DAYS = [Q_START + timedelta(days=i) for i in range((AS_OF - Q_START).days + 1)]
GROWTH_TITLE = 'Grow <b>revenue</b> & "reach"'
CARE_TITLE = "Delight customers"
COMPANY_TITLE = "Be the customers' favourite"
OLD_TITLE = "Last quarter's objective"
ODD_TEAM = "ops </script><i>"
ANN = "Ann <ann@example.com>"
HOSTILE = "</script><b>x"
METRIC_NAMES = {
    "revenue": "Revenue (all regions)",
    "csat": "Customer satisfaction",
    "visits": "Website visits",
    "nps": "Net promoter score",
}


def insert(con: duckdb.DuckDBPyConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Rows as dicts; columns a row leaves out are null."""
    table.create(con)
    frame = pl.DataFrame(
        [{c: row.get(c) for c in table.column_names} for row in rows], infer_schema_length=None
    )
    insert_frame(con, table, frame)


def quarter(**row: Any) -> dict[str, Any]:
    """A row of the running quarter: grades provisional, shown as its status."""
    return {
        "quarter": "2025-Q1",
        "quarter_start": Q_START,
        "grade_is_final": False,
        "stale_after_days": 31,
        "display_status": row.get("status"),
        **row,
    }


def old_quarter(**row: Any) -> dict[str, Any]:
    """A row of the closed quarter: grades final."""
    return {
        "quarter": "2024-Q4",
        "quarter_start": OLD_START,
        "grade_is_final": True,
        "stale_after_days": 31,
        "display_status": row.get("status"),
        **row,
    }


def build_marts(con: duckdb.DuckDBPyConnection) -> None:
    """2025-Q1: the company objective (no KRs, a roll-up) with two children, three KRs with 30
    days of progress. 2024-Q4: the growth objective again (one KR, 10 days) and another."""
    statuses = dict.fromkeys(
        ("kr_not_started", "kr_no_data", "kr_achieved", "kr_missed", "kr_stale"), 0
    )
    statuses |= {"kr_on_track": 0, "kr_at_risk": 0, "kr_off_track": 0}
    objective = {
        "type": "committed",
        "weight": 1.0,
        "period_start": Q_START,
        "period_end": Q_END,
        "as_of_date": AS_OF,
        **statuses,
    }
    old = {**objective, "period_start": OLD_START, "period_end": OLD_END, "as_of_date": OLD_END}
    insert(
        con,
        MARTS_OBJECTIVE_ATTAINMENT,
        [
            quarter(
                **(objective | {"type": "aspirational"}),
                objective_id="company",
                title=COMPANY_TITLE,
                team="exec",
                owner="Maya",
                rollup_score=0.65,
                rollup_expected_progress=0.66,
                status="on_track",
                grade="yellow",
                kr_count=0,
            ),
            quarter(
                **objective,
                objective_id="growth",
                title=GROWTH_TITLE,
                team="sales",
                owner=ANN,
                parent_id="company",
                score=0.30,
                expected_progress=1 / 3,
                rollup_score=0.30,
                rollup_expected_progress=1 / 3,
                status="on_track",
                grade="red",
                kr_count=2,
            ),
            quarter(
                **objective,
                objective_id="care",
                title=CARE_TITLE,
                team=ODD_TEAM,
                owner="Bo",
                parent_id="company",
                score=1.0,
                expected_progress=1.0,
                rollup_score=1.0,
                rollup_expected_progress=1.0,
                status="on_track",
                grade="green",
                kr_count=1,
            ),
            old_quarter(
                **old,
                objective_id="growth",
                title=GROWTH_TITLE,
                team="sales",
                owner=ANN,
                score=0.5,
                expected_progress=1.0,
                rollup_score=0.5,
                rollup_expected_progress=1.0,
                status="missed",
                grade="yellow",
                kr_count=1,
            ),
            old_quarter(
                **old,
                objective_id="old",
                title=OLD_TITLE,
                team="sales",
                owner="Dee",
                status="missed",
                kr_count=0,
            ),
        ],
    )
    krs = [
        ("kr-revenue", "growth", "revenue", "increase", 100.0, 200.0, 0.40, ANN),
        ("kr-signups", "growth", "signups", "increase", 0.0, 50.0, 0.20, "Cy"),
        ("kr-csat", "care", "csat", "maintain_above", 88.0, 88.0, 1.0, "Bo"),
    ]
    attainment, daily = [], []
    for kr_id, objective_id, metric_id, kr_type, baseline, target, final, owner in krs:
        expected = [1.0 if kr_type == "maintain_above" else (i + 1) / 90 for i in range(30)]
        progress = [
            final if kr_type == "maintain_above" else final * (i + 1) / 30 for i in range(30)
        ]
        common = {
            "kr_id": kr_id,
            "objective_id": objective_id,
            "metric_id": metric_id,
            "kr_type": kr_type,
            "baseline": baseline,
            "target": target,
            "status": "on_track",
        }
        attainment.append(
            quarter(
                **common,
                kr_title=f"KR {kr_id} <{metric_id}>",
                team=ODD_TEAM if objective_id == "care" else "sales",
                owner=owner,
                period_start=Q_START,
                period_end=Q_END,
                as_of_date=AS_OF,
                current_value=baseline + progress[-1] * (target - baseline),
                raw_progress=progress[-1],
                progress=progress[-1],
                expected_progress=expected[-1],
                grade="yellow",
                weight=1.0,
                success_level=1.0,
                data_through=AS_OF,
            )
        )
        daily += [
            quarter(
                **common,
                as_of_date=day,
                current_value=baseline,
                raw_progress=p,
                progress=p,
                expected_progress=e,
                data_through=day,
            )
            for day, p, e in zip(DAYS, progress, expected, strict=True)
        ]
    old_kr = {
        "kr_id": "kr-old",
        "objective_id": "growth",
        "metric_id": "revenue",
        "kr_type": "increase",
        "baseline": 0.0,
        "target": 100.0,
        "status": "missed",
    }
    attainment.append(
        old_quarter(
            **old_kr,
            kr_title="Last quarter's revenue",
            team="sales",
            owner=ANN,
            period_start=OLD_START,
            period_end=OLD_END,
            as_of_date=OLD_END,
            current_value=50.0,
            progress=0.5,
            expected_progress=1.0,
            weight=1.0,
            success_level=1.0,
        )
    )
    daily += [
        old_quarter(
            **old_kr,
            as_of_date=OLD_START + timedelta(days=i),
            progress=i / 20,
            expected_progress=(i + 1) / 92,
        )
        for i in range(10)
    ]
    insert(con, MARTS_KEY_RESULT_ATTAINMENT, attainment)
    insert(con, MARTS_KEY_RESULT_PROGRESS_DAILY, daily)
    insert(
        con,
        MARTS_TEAM_ATTAINMENT,
        [
            quarter(
                team=team,
                as_of_date=AS_OF,
                score_weighted=score,
                score_unweighted=score,
                expected_progress=expected,
                objective_count=1,
                scored_objective_count=1,
            )
            for team, score, expected in (("sales", 0.3, 1 / 3), (ODD_TEAM, 1.0, 1.0))
        ],
    )


def month_start(year: int, month: int) -> date:
    return date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def add_success_metric_summary(
    con: duckdb.DuckDBPyConnection, names: dict[str, str] = METRIC_NAMES
) -> None:
    """The KPI mart (built elsewhere) from its Table spec: 8 months (2024-07 .. 2025-02) of
    revenue and csat in green, yellow and red, visits without a target (no_target), nps without
    data (no_data); and a weekly row."""
    healths = ["green", "yellow", "red", "green", "red", "green", "yellow", "green"]
    rows = []
    for i in range(8):
        start = month_start(2024, 7 + i)
        end = month_start(2024, 8 + i) - timedelta(days=1)
        for metric_id, health, value, target in (
            ("revenue", healths[i], 10.0 + i, 12.0),
            ("csat", healths[-1 - i], 80.5 + i, 85.0),
            ("visits", "no_target", 12_345.0 + i, None),
            ("nps", "no_data", None, 40.0),
        ):
            rows.append(
                {
                    "metric_id": metric_id,
                    "grain": "month",
                    "period_start": start,
                    "period_end": end,
                    "period_label": start.strftime("%Y-%m"),
                    "quarter": f"{end.year}-Q{(end.month - 1) // 3 + 1}",
                    "quarter_start": month_start(end.year, (end.month - 1) // 3 * 3 + 1),
                    "metric_name": names[metric_id],
                    "as_of_date": min(end, AS_OF),
                    "is_complete": end < AS_OF,
                    "elapsed_share": 1.0,
                    "value": value,
                    "is_stale": False,
                    "target_value": target,
                    "health": health,
                    "is_provisional": False,
                    "consecutive_red": 0,
                    "kind": "lagging",
                    "direction": "higher_is_better",
                    "linked_kr_count": 0,
                }
            )
    week = {**rows[0], "grain": "week", "period_start": date(2025, 1, 6)}
    week |= {"period_end": date(2025, 1, 12), "period_label": "2025-01-06", "health": "red"}
    insert(con, MARTS_SUCCESS_METRIC_SUMMARY, [*rows, week])


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    build_marts(con)
    yield con
    con.close()


def all_specs(page: str) -> dict[str, dict[str, dict[str, Any]]]:
    """{quarter section id: {chart id: spec}}."""
    blocks = re.findall(
        r'<script type="application/json" class="okr-chart-specs" id="([^"]+)-specs">(.*?)'
        r"</script>",
        page,
        re.S,
    )
    assert blocks
    return {section: json.loads(text) for section, text in blocks}


def without_vega(page: str) -> str:
    stripped, count = re.subn(
        r'<script id="vega-bundle">.*?</script>', "<script></script>", page, flags=re.S
    )
    assert count == 1
    return stripped


def section_of(page: str, slug: str) -> str:
    match = re.search(
        rf'<section class="quarter[^"]*" id="{slug}".*?</section>(?=<section class="quarter|</main>)',
        page,
        re.S,
    )
    assert match, slug
    return match.group(0)


# -- the HTML -------------------------------------------------------------------------------------


def test_the_page_is_self_contained_and_escapes_the_data(warehouse, tmp_path):
    path = write_scorecard_page(warehouse, tmp_path / "site" / "scorecard.html")
    page = path.read_text(encoding="utf-8")

    # Outside script bodies (the Vega bundle's code mentions URLs and tags in strings): no
    # element loads anything, no stylesheet or font comes from elsewhere.
    markup = re.sub(r"(<script\b[^>]*>).*?</script>", r"\1</script>", page, flags=re.S | re.I)
    tags = re.findall(r"<[a-z][^>]*>", markup, re.I)
    assert not [
        t
        for t in tags
        if re.search(r"\b(?:src|href|srcset|data)\s*=", t, re.I)
        and not re.search(r'\bhref="#[\w-]+"', t)
    ]
    assert not re.search(r"<link\b|@import|@font-face|url\(", markup, re.I)
    assert not re.search(r"https?://", markup)
    assert page.count("window.vegaEmbed=") == 1  # the libraries inlined exactly once

    assert "<h1>OKR scorecard</h1>" in page and "<title>OKR scorecard 2025-Q1</title>" in page
    assert "as of 2025-01-30" in page and "as of 2024-12-31" in page
    assert html.escape(GROWTH_TITLE) in page and GROWTH_TITLE not in page
    assert html.escape(CARE_TITLE) in page
    assert html.escape("KR kr-revenue <revenue>") in page
    assert html.escape(ANN) in page and ANN not in page
    assert html.escape(ODD_TEAM) in page and ODD_TEAM not in page
    # Every published quarter is in the page, the latest first and shown by default.
    assert re.findall(r'<section class="quarter[^"]*" id="([^"]+)"', page) == [
        "q-2025-Q1",
        "q-2024-Q4",
    ]
    assert (
        '<section class="quarter active" id="q-2025-Q1" data-quarter="2025-Q1" data-default>'
        in page
    )
    assert '<section class="quarter" id="q-2024-Q4" data-quarter="2024-Q4">' in page
    assert html.escape(OLD_TITLE) in section_of(page, "q-2024-Q4")
    assert html.escape(OLD_TITLE) not in section_of(page, "q-2025-Q1")
    # Scripts: the js flag, one spec block per quarter, the bundle, the page script; a name
    # holding `</script>` stays inside the JSON or the escaped markup.
    assert page.count("<script") == 5 and page.count("</script>") == 5

    specs = all_specs(page)
    assert sorted(specs) == ["q-2024-Q4", "q-2025-Q1"]
    assert sorted(specs["q-2025-Q1"]) == [
        "q-2025-Q1-kr-1",
        "q-2025-Q1-kr-2",
        "q-2025-Q1-kr-3",
        "q-2025-Q1-team-attainment",
    ]
    assert sorted(specs["q-2024-Q4"]) == ["q-2024-Q4-kr-1"]  # no team rows in 2024-Q4
    for quarter_specs in specs.values():
        for chart_id in quarter_specs:
            assert f'id="{chart_id}"' in page
    teams = [row["team"] for row in rows_of(specs["q-2025-Q1"]["q-2025-Q1-team-attainment"])]
    assert ODD_TEAM in teams
    charts = dict(re.findall(r'<div class="chart burnup" id="([^"]+)" data-kr-id="([^"]+)">', page))
    assert charts == {
        "q-2025-Q1-kr-1": "kr-csat",  # the KRs in the order of their objectives' cards
        "q-2025-Q1-kr-2": "kr-revenue",
        "q-2025-Q1-kr-3": "kr-signups",
        "q-2024-Q4-kr-1": "kr-old",
    }
    burnup = rows_of(specs["q-2025-Q1"]["q-2025-Q1-kr-2"])
    assert len(burnup) == 30 and burnup[0]["as_of_date"] == "2025-01-01"
    assert burnup[-1]["progress"] == round(0.4, 4)
    assert [r["as_of_date"] for r in rows_of(specs["q-2024-Q4"]["q-2024-Q4-kr-1"])][-1] == (
        "2024-10-10"
    )


def test_a_hostile_objective_title_stays_escaped(warehouse, tmp_path):
    warehouse.execute(
        "UPDATE marts.objective_attainment SET title = ? WHERE objective_id = 'care'", [HOSTILE]
    )
    add_success_metric_summary(warehouse, {**METRIC_NAMES, "visits": HOSTILE})
    page = render_scorecard_page(warehouse)
    assert HOSTILE not in page
    escaped = html.escape(HOSTILE)
    assert f"<h3>{escaped}</h3>" in page  # the card
    assert f">{escaped}</a>" in page  # the alignment tree
    assert page.count("<script") == 5 and page.count("</script>") == 5
    # In the chart specs the `<` is escaped and the name comes back whole.
    [block] = re.findall(r'id="q-2025-Q1-specs">(.*?)</script>', page, re.S)
    assert "<" not in block and "\\u003c/script>\\u003cb>x" in block
    heatmap = json.loads(block)["q-2025-Q1-kpi-health"]
    assert HOSTILE in {row["metric"] for row in rows_of(heatmap)}

    # In the browser: the title is text, no <b> element came from the data, charts still drew.
    with open_page(page, tmp_path / "browser") as browser:
        assert (
            browser.evaluate(
                "document.querySelector('#q-2025-Q1 .node[data-objective-id=\"care\"] h3')"
                ".textContent"
            )
            == HOSTILE
        )
        assert browser.evaluate("document.querySelectorAll('main b').length") == browser.evaluate(
            "document.querySelectorAll('main .numbers b, main .kr-meta b').length"
        )
        assert browser.evaluate("document.querySelectorAll('.chart-error').length") == 0
        browser.screenshot("hostile")


def test_kpi_heatmap_rows_are_metric_names_with_values_and_tell_no_target_from_no_data(
    warehouse,
):
    add_success_metric_summary(warehouse)
    page = render_scorecard_page(warehouse)
    specs = all_specs(page)["q-2025-Q1"]
    assert "q-2025-Q1-kpi-health" in specs and "q-2025-Q1-team-attainment" not in specs
    heatmap = specs["q-2025-Q1-kpi-health"]
    rows = rows_of(heatmap)
    # Months starting on or before the as-of date (2025-02 does not), the last six, no weeks.
    assert sorted({r["period"] for r in rows}) == [
        "2024-08",
        "2024-09",
        "2024-10",
        "2024-11",
        "2024-12",
        "2025-01",
    ]
    assert len(rows) == 24
    # Rows are labelled with the names, in name order; ids only in the tooltip.
    assert {r["metric"] for r in rows} == set(METRIC_NAMES.values())
    layer_y = heatmap["encoding"]["y"]
    assert layer_y["field"] == "metric" and layer_y["sort"] == sorted(METRIC_NAMES.values())
    assert [r["period"] for r in rows if not r["complete"]] == ["2025-01"] * 4
    # Every cell writes its value; no_target adds the words, no_data says so instead.
    by_cell = {(r["metric_id"], r["period"]): r for r in rows}
    assert (by_cell["revenue", "2024-08"]["label"], by_cell["revenue", "2024-08"]["word"]) == (
        "11",
        "",
    )
    assert by_cell["visits", "2024-08"]["label"] == "12.35k"
    assert by_cell["visits", "2024-08"]["word"] == "no target"
    assert (by_cell["nps", "2024-08"]["label"], by_cell["nps", "2024-08"]["word"]) == (
        "no data",
        "",
    )
    text_fields = [
        layer["encoding"]["text"]["field"]
        for layer in heatmap["layer"]
        if "text" in layer.get("encoding", {})
    ]
    assert text_fields == ["label", "label", "word"]
    # Different colours, and no_data hatched on top of its colour; a legend names them.
    colours = heatmap["layer"][0]["encoding"]["color"]
    scale = dict(zip(colours["scale"]["domain"], colours["scale"]["range"], strict=True))
    assert scale["no_target"] != scale["no_data"]
    assert colours["legend"]["title"] == "health"
    hatch = heatmap["layer"][1]
    assert hatch["transform"] == [{"filter": "datum.health === 'no_data'"}]
    assert {s["color"] for s in hatch["mark"]["fill"]["stops"]} == {
        NO_DATA_STRIPE,
        scale["no_data"],
    }
    # The chart takes the width of its container.
    assert heatmap["width"] == "container"
    assert 'class="chart wide kpi-heatmap" id="q-2025-Q1-kpi-health"' in page


# -- rendered in headless Chromium ----------------------------------------------------------------


def chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing; .ci/run installs the Debian package chromium")
    pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium); CI requires it")


def screenshot(page: str, folder: Path) -> Image.Image:
    """Load the page from a file in headless Chromium, without network, and screenshot it."""
    folder.mkdir()
    html_path, png = folder / "page.html", folder / "shot.png"
    html_path.write_text(page, encoding="utf-8")
    command = [
        str(chromium()),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={folder / 'profile'}",
        "--window-size=1280,3200",
        "--virtual-time-budget=10000",
        f"--screenshot={png}",
        html_path.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=90)
    assert png.exists(), f"no screenshot (exit {result.returncode}):\n{result.stderr[-3000:]}"
    with Image.open(png) as image:
        return image.convert("RGB")


def colour_rows(image: Image.Image, colour: str, tolerance: int = 12) -> list[int]:
    """Per pixel row of the image, how many pixels are within `tolerance` of `colour`."""
    target = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    masks = [
        band.point(lambda v, t=t: 255 if abs(v - t) <= tolerance else 0)
        for band, t in zip(image.split(), target, strict=True)
    ]
    mask = ImageChops.multiply(ImageChops.multiply(masks[0], masks[1]), masks[2])
    data, width = mask.tobytes(), image.width
    return [data[y * width : (y + 1) * width].count(255) for y in range(image.height)]


def bands(rows: list[int], gap: int = 40) -> list[int]:
    """Pixel counts of the vertical bands holding the colour, split where `gap` rows lack it."""
    found: list[int] = []
    last = -gap - 1
    for y, count in enumerate(rows):
        if count:
            if y - last > gap:
                found.append(0)
            found[-1] += count
            last = y
    return found


def test_the_charts_render_in_headless_chromium(warehouse, tmp_path):
    add_success_metric_summary(warehouse)
    page = render_scorecard_page(warehouse)
    shot = screenshot(page, tmp_path / "rendered")

    # One burn-up line per KR of the quarter shown, each in its own row, each many pixels; the
    # other quarter's burn-up is not drawn until that quarter is shown.
    burnups = bands(colour_rows(shot, BURNUP_COLOR))
    assert len(burnups) == 3 and min(burnups) > 150, burnups
    # The heatmap: 24 cells of at least ~150x30 pixels, in every health colour, no_data hatched.
    for health in ("green", "yellow", "red", "no_target"):
        assert sum(colour_rows(shot, HEALTH_COLORS[health], tolerance=4)) > 2000, health
    assert sum(colour_rows(shot, NO_DATA_STRIPE, tolerance=4)) > 2000

    # Negative control: the same page without the Vega libraries draws none of it.
    broken = screenshot(without_vega(page), tmp_path / "broken")
    assert sum(colour_rows(broken, BURNUP_COLOR)) == 0
    for colour in [
        *(HEALTH_COLORS[h] for h in ("green", "yellow", "red", "no_target")),
        NO_DATA_STRIPE,
    ]:
        assert sum(colour_rows(broken, colour, tolerance=4)) == 0, colour


def test_the_team_roll_up_renders_without_the_kpi_mart(warehouse, tmp_path):
    page = render_scorecard_page(warehouse)
    shot = screenshot(page, tmp_path / "rendered")
    assert sum(colour_rows(shot, TEAM_COLOR)) > 2000  # two bars of 16 px, 30% and 100% long
    assert len(bands(colour_rows(shot, BURNUP_COLOR))) == 3
    broken = screenshot(without_vega(page), tmp_path / "broken")
    assert sum(colour_rows(broken, TEAM_COLOR)) == 0


# -- the page's script, driven over the DevTools protocol -----------------------------------------


class PageInBrowser:
    def __init__(self, browser: Any, folder: Path):
        self.browser = browser
        self.folder = folder

    def evaluate(self, expression: str) -> Any:
        return self.browser.evaluate(expression)

    def choose(self, select_id: str, value: str) -> None:
        """Pick an option as a user does: the value changes, then a change event fires."""
        found = self.evaluate(
            f"(() => {{ const s = document.getElementById({json.dumps(select_id)});"
            f" const o = Array.from(s.options).find(o => o.value === {json.dumps(value)});"
            " if (!o) return false; s.value = o.value;"
            " s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()"
        )
        assert found, f"no option {value!r} in #{select_id}"

    def visible(self, selector: str) -> list[str]:
        """`data-objective-id` (or id) of the elements matching `selector` that take space."""
        return self.evaluate(
            f"Array.from(document.querySelectorAll({json.dumps(selector)}))"
            ".filter(e => e.getClientRects().length > 0)"
            ".map(e => e.getAttribute('data-objective-id') || e.getAttribute('data-kr-id')"
            " || e.id)"
        )

    def wait_for_canvases(self, selector: str, count: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length") >= count:
                return
            time.sleep(0.2)
        raise AssertionError(f"fewer than {count} charts drew in {selector}")

    def screenshot(self, name: str) -> Path:
        height = self.evaluate("document.documentElement.scrollHeight")
        self.browser.set_viewport(1280, min(max(height, 800), 8000))
        path = self.browser.screenshot(self.folder / f"{name}.png")
        self.browser.set_viewport(1280, 1000)
        return path


class open_page:  # noqa: N801 - used as `with open_page(...) as page`
    """The page from a file in headless Chromium over the DevTools protocol."""

    def __init__(self, page: str, folder: Path, scripts: bool = True):
        self.page, self.folder, self.scripts = page, folder, scripts

    def __enter__(self) -> PageInBrowser:
        from ui_driver import Chromium

        chromium()
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "page.html"
        path.write_text(self.page, encoding="utf-8")
        self.browser = Chromium(self.folder / "profile", self.folder / "chromium.log")
        try:
            self.browser.set_viewport(1280, 1000)
            if not self.scripts:
                self.browser.send("Emulation.setScriptExecutionDisabled", {"value": True})
            self.browser.navigate(path.as_uri())
            deadline = time.monotonic() + 30
            while self.browser.evaluate("document.readyState") != "complete":
                assert time.monotonic() < deadline, "the page did not load"
                time.sleep(0.1)
            view = PageInBrowser(self.browser, self.folder)
            if self.scripts:
                view.wait_for_canvases("section.quarter.active .chart canvas", 1)
            return view
        except BaseException:
            self.browser.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.browser.close()


def test_the_quarter_selector_shows_one_quarter_at_a_time(warehouse, tmp_path):
    page = render_scorecard_page(warehouse)
    with open_page(page, tmp_path) as view:
        view.wait_for_canvases("#q-2025-Q1 canvas", 4)
        assert view.visible("section.quarter") == ["q-2025-Q1"]
        assert view.evaluate("document.getElementById('quarter-select').value") == "q-2025-Q1"
        assert view.evaluate(
            "Array.from(document.getElementById('quarter-select').options).map(o => o.text)"
        ) == ["2025-Q1 (running)", "2024-Q4"]
        assert view.evaluate("document.querySelectorAll('#q-2024-Q4 canvas').length") == 0
        assert OLD_TITLE not in view.evaluate("document.body.innerText")
        view.screenshot("2025-Q1")

        view.choose("quarter-select", "q-2024-Q4")
        assert view.visible("section.quarter") == ["q-2024-Q4"]
        assert view.evaluate("document.title") == "OKR scorecard 2024-Q4"
        assert view.evaluate("location.hash") == "#q-2024-Q4"
        text = view.evaluate("document.body.innerText")
        assert OLD_TITLE in text and CARE_TITLE not in text
        view.wait_for_canvases("#q-2024-Q4 canvas", 1)  # drawn when first shown
        view.screenshot("2024-Q4")

        view.choose("quarter-select", "q-2025-Q1")
        assert view.visible("section.quarter") == ["q-2025-Q1"]


def test_the_quarter_named_in_the_link_or_the_call_opens_first(warehouse, tmp_path):
    page = render_scorecard_page(warehouse, "2024-Q4")
    assert (
        '<section class="quarter active" id="q-2024-Q4" data-quarter="2024-Q4" data-default>'
        in (page)
    )
    assert '<option value="q-2024-Q4" selected>' in page
    with pytest.raises(ValueError, match="2023-Q1"):
        render_scorecard_page(warehouse, "2023-Q1")
    with open_page(page, tmp_path / "default") as view:
        assert view.visible("section.quarter") == ["q-2024-Q4"]
    # A link to a quarter (or to anything in it) opens that quarter.
    with open_page(render_scorecard_page(warehouse), tmp_path / "linked") as view:
        view.browser.navigate("about:blank")
        view.browser.navigate((tmp_path / "linked" / "page.html").as_uri() + "#q-2024-Q4-o1")
        view.wait_for_canvases("#q-2024-Q4 canvas", 1)
        assert view.visible("section.quarter") == ["q-2024-Q4"]
        view.screenshot("linked")


def test_without_javascript_every_quarter_is_readable_latest_first(warehouse, tmp_path):
    page = render_scorecard_page(warehouse)
    with open_page(page, tmp_path, scripts=False) as view:
        assert "js" not in view.evaluate("document.documentElement.className")
        assert view.visible("section.quarter") == ["q-2025-Q1", "q-2024-Q4"]
        assert view.visible("#controls") == []  # the selector needs the script: not shown
        assert view.visible(".quarter-links") != []
        text = view.evaluate("document.body.innerText")
        assert text.index(CARE_TITLE) < text.index(OLD_TITLE)
        view.screenshot("no-js")


def test_team_and_owner_filters_hide_the_others(warehouse, tmp_path):
    page = render_scorecard_page(warehouse)
    assert f'<option value="{html.escape(ODD_TEAM)}">' in page
    cards = "#q-2025-Q1 .objectives .node"
    tree = "#q-2025-Q1 .tree .node"
    context = "#q-2025-Q1 .objectives .node.context"
    with open_page(page, tmp_path) as view:
        assert view.visible(cards) == ["company", "care", "growth"]
        assert view.evaluate("document.getElementById('filter-status').textContent") == ""

        view.choose("team-filter", "sales")
        assert view.visible(cards) == ["company", "growth"]
        assert view.visible(tree) == ["company", "growth"]
        assert view.visible(context) == ["company"]  # shown, dimmed, as the parent
        assert view.visible("#q-2025-Q1 .kr") == ["kr-revenue", "kr-signups"]
        assert view.evaluate("document.getElementById('filter-status').textContent") == (
            "1 of 3 objectives match"
        )
        view.screenshot("team-sales")

        view.choose("team-filter", ODD_TEAM)  # a team name with markup in it
        assert view.visible(cards) == ["company", "care"]

        view.choose("team-filter", "")
        view.choose("owner-filter", "Cy")  # owns a KR of growth, not the objective
        assert view.visible(cards) == ["company", "growth"]
        assert view.visible("#q-2025-Q1 .kr") == ["kr-signups"]
        view.screenshot("owner-cy")

        view.choose("owner-filter", ANN)
        assert view.visible(cards) == ["company", "growth"]
        assert view.visible("#q-2025-Q1 .kr") == ["kr-revenue", "kr-signups"]

        view.choose("owner-filter", "Maya")  # the parent's owner: the children stay hidden
        assert view.visible(cards) == ["company"] and view.visible(context) == []

        view.choose("owner-filter", "Dee")  # owns an objective of 2024-Q4 only
        assert view.visible(cards) == []
        assert view.visible("#q-2025-Q1 .no-match") != []
        view.choose("quarter-select", "q-2024-Q4")  # the filters hold across quarters
        assert view.visible("#q-2024-Q4 .objectives .node") == ["old"]

        view.choose("owner-filter", "")
        view.choose("quarter-select", "q-2025-Q1")
        assert view.visible(cards) == ["company", "care", "growth"]
        assert view.visible("#q-2025-Q1 .no-match") == []


def test_the_alignment_tree_shows_children_under_their_parent(warehouse, tmp_path):
    page = render_scorecard_page(warehouse)
    with open_page(page, tmp_path) as view:
        for container in (".tree", ".objectives"):
            parents = view.evaluate(
                f"Array.from(document.querySelectorAll('#q-2025-Q1 {container} .node'))"
                ".map(n => [n.getAttribute('data-objective-id'),"
                " n.parentElement.closest('.node') ?"
                " n.parentElement.closest('.node').getAttribute('data-objective-id') : null])"
            )
            assert parents == [["company", None], ["care", "company"], ["growth", "company"]]
            # Directly in the parent's list of children (`ul` in the tree, `.children` of cards).
            holders = view.evaluate(
                f"Array.from(document.querySelectorAll('#q-2025-Q1 {container} .node'))"
                ".map(n => n.parentElement.tagName + '.' + n.parentElement.className)"
            )
            assert holders == (
                ["UL.tree", "UL.", "UL."]
                if container == ".tree"
                else ["DIV.objectives", "DIV.children", "DIV.children"]
            )
        # On screen: each child below its parent and indented.
        boxes = view.evaluate(
            "Object.fromEntries(Array.from(document.querySelectorAll('#q-2025-Q1 .tree-row'))"
            ".map(r => [r.parentElement.getAttribute('data-objective-id'),"
            " [r.getBoundingClientRect().left, r.getBoundingClientRect().top]]))"
        )
        cards = view.evaluate(
            "Object.fromEntries(Array.from(document.querySelectorAll('#q-2025-Q1 .objective'))"
            ".map(c => [c.parentElement.getAttribute('data-objective-id'),"
            " [c.getBoundingClientRect().left, c.getBoundingClientRect().top]]))"
        )
        for placed in (boxes, cards):
            for child in ("growth", "care"):
                assert placed[child][0] > placed["company"][0] + 10
                assert placed[child][1] > placed["company"][1]
        view.screenshot("tree")
    # A parent in no row of the quarter: the child is a root, its card still names the parent.
    assert "part of: " + html.escape(COMPANY_TITLE) in page


def test_each_objective_shows_its_score_in_every_quarter(warehouse, tmp_path):
    page = render_scorecard_page(warehouse)
    with open_page(page, tmp_path) as view:
        entries = view.evaluate(
            "Object.fromEntries(Array.from(document.querySelectorAll('#q-2025-Q1 .objectives"
            " .node')).map(n => [n.getAttribute('data-objective-id'),"
            " Array.from(n.querySelectorAll(':scope > .objective .history .q-score'))"
            ".map(a => [a.getAttribute('data-quarter'), a.querySelector('.q-value').textContent,"
            " a.classList.contains('current')])]))"
        )
        assert entries == {
            "company": [["2025-Q1", "65%", True]],
            "growth": [["2024-Q4", "50%", False], ["2025-Q1", "30%", True]],
            "care": [["2025-Q1", "100%", True]],
        }
        view.screenshot("history")
        # An entry links to the objective in that quarter.
        view.evaluate(
            'document.querySelector(\'#q-2025-Q1 .node[data-objective-id="growth"]'
            ' .q-score[data-quarter="2024-Q4"]\').click()'
        )
        time.sleep(0.3)
        assert view.visible("section.quarter") == ["q-2024-Q4"]
        assert view.evaluate("location.hash") == "#q-2024-Q4-o1"
        assert (
            view.evaluate(
                "document.getElementById('q-2024-Q4-o1').closest('.node')"
                ".getAttribute('data-objective-id')"
            )
            == "growth"
        )


def test_the_heatmap_takes_the_page_width(warehouse, tmp_path):
    add_success_metric_summary(warehouse)
    page = render_scorecard_page(warehouse)
    with open_page(page, tmp_path) as view:
        view.wait_for_canvases("#q-2025-Q1-kpi-health canvas", 1)
        time.sleep(0.3)
        widths = view.evaluate(
            "[document.querySelector('#q-2025-Q1-kpi').clientWidth,"
            " document.querySelector('#q-2025-Q1-kpi-health canvas').getBoundingClientRect().width]"
        )
        assert widths[1] > 0.9 * (widths[0] - 40), widths  # the section less its padding
        assert widths[1] > 1000
        view.screenshot("heatmap")


# -- pieces ---------------------------------------------------------------------------------------


def test_the_vega_bundle_is_built_once_and_kept_in_the_cache(warehouse, monkeypatch, tmp_path):
    import bi.page as report_page

    monkeypatch.setenv("OKR_CACHE_DIR", str(tmp_path / "cache"))
    report_page._vega_bundle.cache_clear()
    first = render_scorecard_page(warehouse)
    [cached] = (tmp_path / "cache").glob("vega-bundle-*.js")
    report_page._vega_bundle.cache_clear()
    cached.write_text(cached.read_text() + "\n/* from the cache */")
    second = render_scorecard_page(warehouse)
    assert "/* from the cache */" in second  # the second page took the cached bundle
    assert second.replace("\n/* from the cache */", "") == first
    report_page._vega_bundle.cache_clear()


def test_each_burn_up_gets_its_own_window_and_data_from_the_shared_template():
    from bi.page.charts import burnup_columns, burnup_json

    def burnup(first: date, last: date) -> dict:
        daily = pl.DataFrame(
            {"as_of_date": [first], "progress": [0.123456], "expected_progress": [0.25]}
        )
        return json.loads(burnup_json(burnup_columns(daily), first, last))

    spring = burnup(date(2025, 4, 1), date(2025, 6, 30))
    autumn = burnup(date(2025, 10, 1), date(2025, 12, 31))
    for spec, (first, last) in ((spring, (4, 6)), (autumn, (10, 12))):
        lo, hi = spec["encoding"]["x"]["scale"]["domain"]
        assert (lo["month"], hi["month"]) == (first, last)  # not the other chart's
        assert rows_of(spec) == [
            {"as_of_date": f"2025-{first:02d}-01", "progress": 0.1235, "expected_progress": 0.25}
        ]
        assert spec["layer"][1]["mark"]["type"] == "line"
