"""The demo end to end: `okr demo` on the shipped example, its marts and its printed scorecard
checked against numbers computed here by hand, straight from the example CSV files."""

from __future__ import annotations

import csv
from collections import defaultdict
from contextlib import redirect_stdout
from datetime import date, timedelta
from io import StringIO
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from pipelines.settings import EXAMPLE_AS_OF, EXAMPLE_DIR

AS_OF = date.fromisoformat(EXAMPLE_AS_OF)
Q4_START, Q4_END = date(2026, 10, 1), date(2026, 12, 31)
Q4_DAYS = (Q4_END - Q4_START).days + 1  # 92


def read_observations() -> dict[tuple[str, str], dict[date, float]]:
    """(metric_id, region or '') -> day -> summed value, from every example CSV file."""
    values: dict[tuple[str, str], dict[date, float]] = defaultdict(lambda: defaultdict(float))
    for path in sorted((EXAMPLE_DIR / "data" / "csv").glob("*.csv")):
        text = path.read_text(encoding="utf-8-sig")
        delimiter = ";" if text.split("\n", 1)[0].count(";") else ","
        rows = list(csv.DictReader(text.splitlines(), delimiter=delimiter))
        for row in rows:
            day = date.fromisoformat(row.pop("date"))
            if "metric_id" in row:
                key = (row["metric_id"], row.get("region") or "")
                values[key][day] += float(row["value"])
            else:  # wide file: one column per metric, empty cell = no observation
                for metric_id, cell in row.items():
                    if cell:
                        values[(metric_id, "")][day] += float(cell)
    return values


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    """Run `okr demo` once (defaults for config, data and as-of; warehouse in a temp folder)."""
    root = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("OKR_CONFIG_DIR", "OKR_DATA_DIR", "OKR_AS_OF"):
            patch.delenv(name, raising=False)
        patch.setenv("OKR_WAREHOUSE", str(root / "warehouse.duckdb"))
        patch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        out = StringIO()
        with redirect_stdout(out):
            assert main(["demo"]) == 0
    return root / "warehouse.duckdb", out.getvalue()


def kr_row(warehouse: Path, kr_id: str, quarter: str = "2026-Q4") -> dict:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        frame = con.sql(
            "SELECT * FROM marts.key_result_attainment WHERE kr_id = ? AND quarter = ?",
            params=[kr_id, quarter],
        ).pl()
    assert frame.height == 1
    return frame.row(0, named=True)


def expected_q4() -> float:
    return (AS_OF - Q4_START).days / Q4_DAYS + 1 / Q4_DAYS  # day 51 of 92


def test_csat_is_the_last_survey_result_and_stale(demo):
    warehouse, printed = demo
    csat = read_observations()[("csat", "")]
    latest = max(d for d in csat if d <= AS_OF)
    a = csat[latest]
    row = kr_row(warehouse, "csat-2026q4")
    # Baseline 89, target 93: r = (a - 89) / 4. The survey stopped more than 10 days ago.
    assert row["current_value"] == a
    assert row["progress"] == pytest.approx((a - 89) / 4)
    assert row["expected_progress"] == pytest.approx(expected_q4())
    assert (AS_OF - latest).days > 10 and row["status"] == "stale"
    assert row["data_through"] == latest


def test_region_revenue_sums_two_regions_against_the_previous_window(demo):
    warehouse, _ = demo
    observations = read_observations()
    per_day = defaultdict(float)
    for region in ("emea", "apac"):
        for day, value in observations[("revenue", region)].items():
            per_day[day] += value
    a = sum(per_day[d] for d in days(Q4_START, AS_OF))
    # Same-length window before S: the 92 days ending Sep 30.
    b = sum(per_day[d] for d in days(Q4_START - timedelta(days=Q4_DAYS), Q4_START - timedelta(1)))
    t = b * 1.10
    row = kr_row(warehouse, "region-revenue-2026q4")
    assert (row["baseline"], row["target"], row["current_value"]) == (
        pytest.approx(b),
        pytest.approx(t),
        pytest.approx(a),
    )
    assert row["progress"] == pytest.approx(a / t)  # cumulative: r = a / t


def test_active_users_trailing_average_against_its_value_the_day_before(demo):
    warehouse, _ = demo
    daily = read_observations()[("active_users", "")]

    def avg28(day: date) -> float:
        window = [daily[d] for d in days(day - timedelta(days=27), day) if d in daily]
        return sum(window) / len(window)

    b, a = avg28(Q4_START - timedelta(days=1)), avg28(AS_OF)
    t = b * 1.2
    row = kr_row(warehouse, "active-users-2026q4")
    assert row["current_value"] == pytest.approx(a)
    assert row["progress"] == pytest.approx(max(0.0, min(1.0, (a - b) / (t - b))))


def test_major_clients_and_the_objective_score(demo):
    warehouse, _ = demo
    clients = read_observations()[("major_new_clients", "")]
    a = sum(clients.get(d, 0.0) for d in days(Q4_START, AS_OF))
    row = kr_row(warehouse, "major-clients-2026q4")
    assert row["current_value"] == a and row["progress"] == pytest.approx(a / 5)
    gap = expected_q4() - a / 5
    assert row["status"] == (
        "on_track" if gap <= 0.10 else "at_risk" if gap <= 0.25 else "off_track"
    )

    krs = {
        k: kr_row(warehouse, k)
        for k in ("region-revenue-2026q4", "major-clients-2026q4", "retention-2026q4")
    }
    weights = {"region-revenue-2026q4": 2, "major-clients-2026q4": 1, "retention-2026q4": 1}
    score = sum(weights[k] * r["progress"] for k, r in krs.items()) / 4
    with duckdb.connect(str(warehouse), read_only=True) as con:
        [(objective_score, kr_count)] = con.execute(
            "SELECT score, kr_count FROM marts.objective_attainment "
            "WHERE objective_id = 'marketshare-2026q4' AND quarter = '2026-Q4'"
        ).fetchall()
    assert objective_score == pytest.approx(score) and kr_count == 3


def test_the_printed_scorecard_shows_every_quarter_and_the_measured_values(demo):
    warehouse, printed = demo
    for quarter in ("2024-Q4", "2025-Q1", "2025-Q4", "2026-Q3", "2026-Q4"):
        assert f"== {quarter}" in printed
    assert "(as of 2026-11-20)" in printed
    row = kr_row(warehouse, "major-clients-2026q4")
    line = next(
        x
        for x in printed.splitlines()
        if "Acquire 5 major new clients" in x and f"{row['current_value']:,.2f} / 5.00" in x
    )
    assert f"{row['progress'] * 100:4.0f}%" in line and row["status"] in line


def test_the_example_has_a_realistic_mix_of_statuses(demo):
    warehouse, _ = demo
    with duckdb.connect(str(warehouse), read_only=True) as con:
        statuses = {
            s
            for (s,) in con.execute(
                "SELECT DISTINCT status FROM marts.key_result_attainment"
            ).fetchall()
        }
        running = {
            s
            for (s,) in con.execute(
                "SELECT DISTINCT status FROM marts.key_result_attainment WHERE quarter = '2026-Q4'"
            ).fetchall()
        }
        quarters = con.execute(
            "SELECT count(DISTINCT quarter) FROM marts.objective_attainment"
        ).fetchall()[0][0]
    assert {"achieved", "missed", "on_track", "at_risk", "off_track", "stale"} <= statuses
    assert {"on_track", "at_risk", "off_track"} <= running
    assert quarters >= 8
