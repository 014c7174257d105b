"""The scorecard page: built from a small real warehouse (the marts created from their Table specs,
a few hand-written rows), checked as HTML (self-contained, escaped, the right charts) and opened
in headless Chromium, where a screenshot shows whether Vega drew the charts.

How the screenshot check works: every chart draws in a colour the page's CSS never uses (the
burn-up line, the heatmap's health colours, the team bars). Rendered charts put many pixels of
that colour on screen; a page whose charts failed puts none. The negative control removes the
inlined Vega bundle from the same page and expects none of those pixels, so the check can fail.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
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
    TEAM_COLOR,
    render_scorecard_page,
    write_scorecard_page,
)
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
AS_OF = date(2025, 1, 30)  # day 30 of 90
DAYS = [Q_START + timedelta(days=i) for i in range((AS_OF - Q_START).days + 1)]
GROWTH_TITLE = 'Grow <b>revenue</b> & "reach"'
CARE_TITLE = "Delight customers"
ODD_TEAM = "ops </script><i>"


def insert(con: duckdb.DuckDBPyConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Rows as dicts; columns a row leaves out are null."""
    table.create(con)
    frame = pl.DataFrame(
        [{c: row.get(c) for c in table.column_names} for row in rows], infer_schema_length=None
    )
    insert_frame(con, table, frame)


def quarter(**row: Any) -> dict[str, Any]:
    return {"quarter": "2025-Q1", "quarter_start": Q_START, **row}


def build_marts(con: duckdb.DuckDBPyConnection) -> None:
    """Two objectives, three KRs with 30 days of progress, and an older quarter."""
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
    insert(
        con,
        MARTS_OBJECTIVE_ATTAINMENT,
        [
            quarter(
                **objective,
                objective_id="growth",
                title=GROWTH_TITLE,
                team="sales",
                owner="Ann <ann@example.com>",
                score=0.30,
                expected_progress=1 / 3,
                rollup_score=0.30,
                rollup_expected_progress=1 / 3,
                status="on_track",
                kr_count=2,
            ),
            quarter(
                **objective,
                objective_id="care",
                title=CARE_TITLE,
                team=ODD_TEAM,
                owner="Bo",
                score=1.0,
                expected_progress=1.0,
                rollup_score=1.0,
                rollup_expected_progress=1.0,
                status="on_track",
                kr_count=1,
            ),
            {
                **objective,
                "quarter": "2024-Q4",
                "quarter_start": date(2024, 10, 1),
                "objective_id": "old",
                "title": "Last quarter's objective",
                "team": "sales",
                "status": "missed",
                "as_of_date": date(2024, 12, 31),
                "kr_count": 0,
            },
        ],
    )
    krs = [
        ("kr-revenue", "growth", "revenue", "increase", 100.0, 200.0, 0.40),
        ("kr-signups", "growth", "signups", "increase", 0.0, 50.0, 0.20),
        ("kr-csat", "care", "csat", "maintain_above", 88.0, 88.0, 1.0),
    ]
    attainment, daily = [], []
    for kr_id, objective_id, metric_id, kr_type, baseline, target, final in krs:
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
                team="sales",
                owner="Ann",
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


def add_success_metric_summary(con: duckdb.DuckDBPyConnection) -> None:
    """The KPI mart (built elsewhere) by hand: 8 months of two metrics, and weekly rows."""
    con.execute(
        "CREATE TABLE marts.success_metric_summary (metric_id VARCHAR, grain VARCHAR, "
        "period_start DATE, period_end DATE, period_label VARCHAR, value DOUBLE, "
        "is_complete BOOLEAN, target_value DOUBLE, health VARCHAR)"
    )
    healths = ["green", "yellow", "red", "green", "red", "green", "yellow", "green"]
    for i in range(8):  # 2024-07 .. 2025-02; 2025-02 starts after the as-of date
        start = month_start(2024, 7 + i)
        end = month_start(2024, 8 + i) - timedelta(days=1)
        for metric_id, health in (("revenue", healths[i]), ("csat", healths[-1 - i])):
            con.execute(
                "INSERT INTO marts.success_metric_summary VALUES (?, 'month', ?, ?, ?, ?, ?, ?, ?)",
                [
                    metric_id,
                    start,
                    end,
                    start.strftime("%Y-%m"),
                    10.0 + i,
                    end < AS_OF,
                    12.0,
                    health,
                ],
            )
    con.execute(
        "INSERT INTO marts.success_metric_summary VALUES "
        "('revenue', 'week', DATE '2025-01-06', DATE '2025-01-12', '2025-01-06', 3, true, 3, 'red')"
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    build_marts(con)
    yield con
    con.close()


def chart_specs(page: str) -> dict[str, dict[str, Any]]:
    match = re.search(
        r'<script type="application/json" id="okr-chart-specs">(.*?)</script>', page, re.S
    )
    assert match
    return json.loads(match.group(1))


def without_vega(page: str) -> str:
    stripped, count = re.subn(
        r'<script id="vega-bundle">.*?</script>', "<script></script>", page, flags=re.S
    )
    assert count == 1
    return stripped


# -- the HTML -------------------------------------------------------------------------------------


def test_the_page_is_self_contained_and_escapes_the_data(warehouse, tmp_path):
    path = write_scorecard_page(warehouse, tmp_path / "site" / "scorecard.html")
    page = path.read_text(encoding="utf-8")

    # Outside script bodies (the Vega bundle's code mentions URLs and tags in strings): no
    # element loads anything, no stylesheet or font comes from elsewhere.
    markup = re.sub(r"(<script\b[^>]*>).*?</script>", r"\1</script>", page, flags=re.S | re.I)
    tags = re.findall(r"<[a-z][^>]*>", markup, re.I)
    assert not [t for t in tags if re.search(r"\b(?:src|href|srcset|data)\s*=", t, re.I)]
    assert not re.search(r"<link\b|@import|@font-face|url\(", markup, re.I)
    assert not re.search(r"https?://", markup)
    assert page.count("window.vegaEmbed=") == 1  # the libraries inlined exactly once

    assert "<h1>OKR scorecard 2025-Q1</h1>" in page and "as of 2025-01-30" in page
    assert html.escape(GROWTH_TITLE) in page and GROWTH_TITLE not in page
    assert html.escape(CARE_TITLE) in page
    assert html.escape("KR kr-revenue <revenue>") in page
    assert html.escape("Ann <ann@example.com>") in page
    assert "Last quarter&#x27;s objective" not in page  # other quarters stay out
    # Three script elements: the specs, the bundle, the embedding; a name holding `</script>`
    # stays inside the JSON.
    assert page.count("<script") == 3 and page.count("</script>") == 3

    specs = chart_specs(page)
    assert sorted(specs) == ["chart-kr-1", "chart-kr-2", "chart-kr-3", "chart-team-attainment"]
    for chart_id in specs:
        assert f'id="{chart_id}"' in page
    teams = [row["team"] for row in specs["chart-team-attainment"]["data"]["values"]]
    assert ODD_TEAM in teams
    burnup = specs["chart-kr-1"]
    assert len(burnup["data"]["values"]) == 30
    assert burnup["data"]["values"][0]["as_of_date"] == "2025-01-01"


def test_kpi_health_heatmap_of_the_last_six_months_when_the_kpi_mart_exists(warehouse):
    add_success_metric_summary(warehouse)
    page = render_scorecard_page(warehouse)
    specs = chart_specs(page)
    assert "chart-kpi-health" in specs and "chart-team-attainment" not in specs
    rows = specs["chart-kpi-health"]["data"]["values"]
    # Months starting on or before the as-of date (2025-02 does not), the last six, no weeks.
    assert sorted({r["period"] for r in rows}) == [
        "2024-08",
        "2024-09",
        "2024-10",
        "2024-11",
        "2024-12",
        "2025-01",
    ]
    assert len(rows) == 12 and {r["metric"] for r in rows} == {"revenue", "csat"}
    running = [r for r in rows if not r["complete"]]
    assert [r["period"] for r in running] == ["2025-01", "2025-01"]


def test_quarter_choice(warehouse):
    assert "OKR scorecard 2025-Q1" in render_scorecard_page(warehouse)  # the latest by default
    older = render_scorecard_page(warehouse, "2024-Q4")
    assert "Last quarter&#x27;s objective" in older and html.escape(GROWTH_TITLE) not in older
    with pytest.raises(ValueError, match="2023-Q1"):
        render_scorecard_page(warehouse, "2023-Q1")


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
        "--window-size=1280,2400",
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

    # One burn-up line per KR, each in its own row of the page, each drawn with many pixels.
    burnups = bands(colour_rows(shot, BURNUP_COLOR))
    assert len(burnups) == 3 and min(burnups) > 150, burnups
    # The heatmap: 12 cells of at least ~60x20 pixels in the health colours.
    for health in ("green", "yellow", "red"):
        assert sum(colour_rows(shot, HEALTH_COLORS[health], tolerance=4)) > 2000, health

    # Negative control: the same page without the Vega libraries draws none of it.
    broken = screenshot(without_vega(page), tmp_path / "broken")
    assert sum(colour_rows(broken, BURNUP_COLOR)) == 0
    for health in ("green", "yellow", "red"):
        assert sum(colour_rows(broken, HEALTH_COLORS[health], tolerance=4)) == 0


def test_the_team_roll_up_renders_without_the_kpi_mart(warehouse, tmp_path):
    page = render_scorecard_page(warehouse)
    shot = screenshot(page, tmp_path / "rendered")
    assert sum(colour_rows(shot, TEAM_COLOR)) > 2000  # two bars of 16 px, 30% and 100% long
    assert len(bands(colour_rows(shot, BURNUP_COLOR))) == 3
    broken = screenshot(without_vega(page), tmp_path / "broken")
    assert sum(colour_rows(broken, TEAM_COLOR)) == 0


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
    from bi.page import _burnup_spec

    def daily(first: date) -> pl.DataFrame:
        return pl.DataFrame(
            {"as_of_date": [first], "progress": [0.5], "expected_progress": [0.25]}
        )

    spring = _burnup_spec(daily(date(2025, 4, 1)), date(2025, 4, 1), date(2025, 6, 30))
    autumn = _burnup_spec(daily(date(2025, 10, 1)), date(2025, 10, 1), date(2025, 12, 31))
    for spec, (first, last) in ((spring, (4, 6)), (autumn, (10, 12))):
        for layer in spec["layer"]:
            lo, hi = layer["encoding"]["x"]["scale"]["domain"]
            assert (lo["month"], hi["month"]) == (first, last)  # not the other chart's
        assert spec["data"]["values"][0]["as_of_date"] == f"2025-{first:02d}-01"
        assert spec["layer"][1]["mark"]["type"] == "line"
