"""The demo end to end: `okr demo` on the shipped example, its marts and its printed scorecard
checked against numbers computed here by hand, straight from the example CSV files, its
analytics exports (gzipped NDJSON events, report CSVs) and the CRM simulator's records."""

from __future__ import annotations

import csv
import gzip
import json
from collections import defaultdict
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest

from connectors.crm.simulator import generate_data
from pipelines.settings import EXAMPLE_AS_OF, EXAMPLE_DIR
from transforms.calendar import quarters_between
from transforms.config import load_config
from transforms.marts import okr_mart_frames
from transforms.units import format_value

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


ZONE = ZoneInfo(load_config(EXAMPLE_DIR).settings.timezone)


def local_day(timestamp: str) -> date:
    """The date of an ISO-8601 timestamp with offset (or Z) in the config's timezone."""
    return datetime.fromisoformat(timestamp).astimezone(ZONE).date()


@cache
def read_events() -> tuple[dict, ...]:
    """Every event of the example's gzipped NDJSON exports, with its local `day` added."""
    events = []
    for path in sorted((EXAMPLE_DIR / "data" / "analytics").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                event = json.loads(line)
                events.append({**event, "day": local_day(event["timestamp"])})
    return tuple(events)


def read_report() -> dict[date, dict[str, float]]:
    """Day -> {snake_case column: value} from the example's traffic report CSVs: `#` preamble,
    display-name header, YYYYMMDD dates, "1,234" numbers, a totals row at the end."""
    rows: dict[date, dict[str, float]] = {}
    for path in sorted((EXAMPLE_DIR / "data" / "analytics").glob("*.csv")):
        lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x and x[0] != "#"]
        for row in csv.DictReader(lines):
            day = row.pop("Date")
            if day in ("", "Total"):
                continue
            rows[datetime.strptime(day, "%Y%m%d").date()] = {
                name.lower().replace(" ", "_"): float(cell.replace(",", ""))
                for name, cell in row.items()
            }
    return rows


@cache
def live_crm(crm_object: str) -> tuple[dict, ...]:
    """The properties of the CRM simulator's live (not archived) records the demo syncs."""
    return tuple(r["properties"] for r in generate_data()[crm_object] if not r["archived"])


@pytest.fixture(scope="module")
def demo(demo_run) -> tuple[Path, str]:
    """The session's `okr demo` run: its warehouse, and what it printed."""
    root, printed = demo_run
    return root / "warehouse.duckdb", printed


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
    lines = printed.splitlines()

    def line_of(title: str, quarter: str = "2026-Q4") -> str:
        start = lines.index(next(x for x in lines if x.startswith(f"== {quarter}")))
        return next(x for x in lines[start:] if title in x)

    row = kr_row(warehouse, "major-clients-2026q4")
    line = line_of("Acquire 5 major new clients")
    # a count in its unit, no decimals; the grade is provisional (*) in the running quarter
    assert f"{row['current_value']:,.0f} clients / 5" in line
    assert f"{row['progress'] * 100:4.0f}%" in line and row["display_status"] in line
    assert f"{row['grade']}*" in line
    # a rate stored as a fraction reads as a percentage, with its denominator beside it
    conversion = kr_row(warehouse, "web-conversion-2026q4")
    assert (
        f"{conversion['current_value'] * 100:.2f}% (n = {conversion['denominator_value']:,.0f})"
        " / 2.50%"
    ) in line_of("website conversion")
    # a milestone says how close it came
    milestone = kr_row(warehouse, "milestone-90k-users-2026q4")
    assert f"best so far {milestone['best_value']:,.0f} of 90,000" in line_of("Pass 90,000")
    # data that stopped a year ago reads stale, with the day it stopped
    churn = line_of("Keep the churn of new customer accounts")
    assert " stale " in churn and "data through 2025-11-02" in churn
    # ... and its 365-day window is shown as of that day, not slid past the data to 0%
    stopped = kr_row(warehouse, "new-customer-churn-2026")
    assert stopped["display_value_date"] == date(2025, 11, 2) and stopped["display_value"] > 0
    shown = format_value(stopped["display_value"], "ratio")
    assert f" {shown} (n = " in churn and "/ 12.0%" in churn
    # closed quarters' grades are final (no *), and the legend explains both
    assert "*" not in line_of("Acquire 5 major new clients", "2026-Q3")
    assert "grade*: provisional" in printed and "aspirational" in printed


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


# ---- the analytics and CRM sources ----------------------------------------------------------


def test_active_users_30d_counts_distinct_user_ids_of_the_trailing_30_local_days(demo):
    warehouse, _ = demo
    events = [
        e for e in read_events() if e["event"] in ("session_start", "page_view") and "user_id" in e
    ]
    # Timestamps carry the visitor's offset (New York evenings fall on the next UTC day).
    assert {e["timestamp"][-6:] for e in events} >= {"+00:00", "-05:00", "-04:00"}

    def distinct_users(day: date) -> int:
        window = set(days(day - timedelta(days=29), day))
        return len({e["user_id"] for e in events if e["day"] in window})

    b, a = distinct_users(Q4_START - timedelta(days=1)), distinct_users(AS_OF)
    per_day = defaultdict(set)
    for e in events:
        per_day[e["day"]].add(e["user_id"])
    summed = sum(len(per_day[d]) for d in days(AS_OF - timedelta(days=29), AS_OF))
    assert a < summed  # distinct counts do not add up over days

    row = kr_row(warehouse, "active-users-30d-2026q4")
    assert (row["baseline"], row["current_value"]) == (b, a)
    assert row["target"] == pytest.approx(b * 1.1)
    assert row["progress"] == pytest.approx(max(0.0, min(1.0, (a - b) / (0.1 * b))))
    assert row["expected_progress"] == pytest.approx(expected_q4())


def test_closed_won_revenue_sums_live_won_deals_by_close_date(demo):
    warehouse, _ = demo
    won = defaultdict(float)
    for deal in live_crm("deals"):
        if deal["dealstage"] == "closedwon":
            won[local_day(deal["closedate"])] += float(deal["amount"])
    a = sum(won[d] for d in days(Q4_START, AS_OF))
    # baseline: auto is the total of the 92 days before the quarter; cumulative, so r = a / t.
    b = sum(won[d] for d in days(Q4_START - timedelta(days=Q4_DAYS), Q4_START - timedelta(1)))
    t = b * 1.15
    row = kr_row(warehouse, "won-revenue-2026q4")
    assert (row["baseline"], row["target"], row["current_value"]) == (
        pytest.approx(b),
        pytest.approx(t),
        pytest.approx(a),
    )
    assert row["progress"] == pytest.approx(a / t)
    gap = expected_q4() - a / t
    assert row["status"] == (
        "on_track" if gap <= 0.10 else "at_risk" if gap <= 0.25 else "off_track"
    )


def test_win_rate_is_a_ratio_of_counts_not_an_average_of_daily_rates(demo):
    warehouse, _ = demo
    won, closed = defaultdict(int), defaultdict(int)
    for deal in live_crm("deals"):
        if deal["dealstage"] in ("closedwon", "closedlost"):
            day = local_day(deal["closedate"])
            closed[day] += 1
            won[day] += deal["dealstage"] == "closedwon"
    quarter = [d for d in days(Q4_START, AS_OF) if closed[d]]
    a = sum(won[d] for d in quarter) / sum(closed[d] for d in quarter)
    mean_of_daily_rates = sum(won[d] / closed[d] for d in quarter) / len(quarter)
    assert abs(a - mean_of_daily_rates) > 0.01

    row = kr_row(warehouse, "win-rate-2026q4")  # from 62% to 65%
    assert row["current_value"] == pytest.approx(a)
    assert row["progress"] == pytest.approx(max(0.0, min(1.0, (a - 0.62) / 0.03)))
    gap = expected_q4() - row["progress"]
    assert row["status"] == (
        "on_track" if gap <= 0.10 else "at_risk" if gap <= 0.25 else "off_track"
    )


def test_web_conversion_floor_counts_the_days_the_28_day_report_ratio_met_it(demo):
    warehouse, _ = demo
    report = read_report()

    def conversion(day: date) -> float:
        window = [report[d] for d in days(day - timedelta(days=27), day)]
        return sum(r["conversions"] for r in window) / sum(r["sessions"] for r in window)

    quarter = days(Q4_START, AS_OF)
    met = sum(round(conversion(d), 9) >= 0.025 for d in quarter)
    row = kr_row(warehouse, "web-conversion-2026q4")  # maintain_above 2.5%
    assert row["current_value"] == pytest.approx(conversion(AS_OF))
    assert row["progress"] == pytest.approx(met / len(quarter))
    # growth-2026q4 is aspirational (L = 0.7); maintain KRs expect 1.
    assert row["status"] == "off_track" and 0.7 - met / len(quarter) > 0.25


def test_each_quarters_marts_alone_equal_those_of_every_quarter_at_once_to_the_bit(demo):
    # The example's decimals (revenue in cents, averages) make sums order-sensitive: a quarter
    # backfilled on its own must give the very bits of a backfill from the first quarter.
    warehouse, _ = demo
    config = load_config(EXAMPLE_DIR)
    quarters = quarters_between(date(2024, 10, 1), AS_OF, config.settings.fiscal_year_start_month)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        together = okr_mart_frames(con, config, quarters, AS_OF)
        for quarter in quarters:
            alone = okr_mart_frames(con, config, [quarter], AS_OF)
            for name, frame in alone.items():
                if "quarter" not in frame.columns:
                    continue
                same = together[name].filter(pl.col("quarter") == quarter.label)
                assert frame.sort(frame.columns).equals(same.sort(frame.columns)), (
                    quarter.label,
                    name,
                )
    assert together["key_result_attainment"]["baseline"].drop_nulls().len() > 10  # not vacuous
