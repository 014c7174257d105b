"""Success metrics (docs/computation.md): `marts.success_metric_summary` per week, month and
quarter, and `marts.metric_daily`, hand-computed on small warehouses.

2025-Q1 is Jan 1 - Mar 31 (90 days). Jan 1, 2025 is a Wednesday: Monday weeks of the quarter
start Jan 6, 13, ..., Mar 31 (13 weeks; the week of Dec 30, 2024 starts in 2024-Q4).
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import duckdb
import polars as pl
import pytest
from okr_fixtures import (
    csv_metric,
    day,
    event_metric,
    jan,
    key_result,
    objective,
    ratio_metric,
    warehouse,
    write_config,
)

from transforms.calendar import quarter_from_label
from transforms.kpi import (
    MARTS_METRIC_DAILY,
    MARTS_SUCCESS_METRIC_SUMMARY,
    metric_daily,
    success_metric_summary,
)
from transforms.measure import MetricReader
from warehouse.writes import insert_frame

Q1 = quarter_from_label("2025-Q1")
Q4_2024 = quarter_from_label("2024-Q4")
DEC = lambda dom: date(2024, 12, dom)  # noqa: E731
APR_30 = day(4, 30)  # every period of 2025-Q1 has ended except the week of Mar 31 - Apr 6


def setup(tmp_path, metrics, observations=(), events=(), settings=None, objectives=None):
    config = write_config(tmp_path / "config", metrics, objectives, settings)
    con = warehouse(tmp_path / "warehouse.duckdb", observations, events)
    return MetricReader(con, config), config


def summary(tmp_path, metrics, observations=(), events=(), *, today=APR_30, quarters=(Q1,), **kw):
    reader, config = setup(tmp_path, metrics, observations, events, **kw)
    return success_metric_summary(reader, config, list(quarters), today)


def rows(frame: pl.DataFrame, metric_id: str, grain: str) -> dict[str, dict]:
    """The rows of one metric and grain, by period label."""
    selected = frame.filter((pl.col("metric_id") == metric_id) & (pl.col("grain") == grain))
    return {row["period_label"]: row for row in selected.iter_rows(named=True)}


def values(frame: pl.DataFrame, metric_id: str, grain: str, column: str = "value") -> dict:
    return {label: row[column] for label, row in rows(frame, metric_id, grain).items()}


# -- period values ----------------------------------------------------------------------------

SIGNUPS = [
    (DEC(30), "signups", 64),  # week of Dec 30 (2024-Q4), month Dec, quarter 2024-Q4
    (jan(6), "signups", 1),
    (jan(12), "signups", 2),
    (jan(13), "signups", 4),
    (jan(31), "signups", 8),
    (day(2, 1), "signups", 16),
    (day(3, 31), "signups", 32),
]


def test_sum_metric_per_week_month_and_quarter(tmp_path):
    frame = summary(tmp_path, [csv_metric("signups", unit="users")], SIGNUPS)
    weeks = values(frame, "signups", "week")
    # Weeks belong to the quarter holding their last day: Dec 30 - Jan 5 is a Q1 row, the week
    # of Mar 31 - Apr 6 a Q2 row (so no quarter's rows read data after its end).
    assert list(weeks) == [
        "2024-12-30", "2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27", "2025-02-03",
        "2025-02-10", "2025-02-17", "2025-02-24", "2025-03-03", "2025-03-10", "2025-03-17",
        "2025-03-24",
    ]  # fmt: skip
    assert weeks["2024-12-30"] == 64  # Dec 30 (in 2024) counts in its week
    assert weeks["2025-01-06"] == 3  # Jan 6 + Jan 12 = 1 + 2
    assert weeks["2025-01-13"] == 4
    assert weeks["2025-01-20"] is None  # the source has no rows that week: null, not 0
    assert weeks["2025-01-27"] == 24  # Jan 31 + Feb 1 = 8 + 16, a week across two months
    assert values(frame, "signups", "month") == {"2025-01": 15, "2025-02": 16, "2025-03": 32}
    assert values(frame, "signups", "quarter") == {"2025-Q1": 63}  # 15 + 16 + 32, not Dec 30

    week = rows(frame, "signups", "week")["2024-12-30"]
    assert (week["period_start"], week["period_end"]) == (DEC(30), jan(5))
    assert (week["quarter"], week["quarter_start"]) == ("2025-Q1", Q1.start)
    assert week["is_complete"] is True  # ended Jan 5, before today (Apr 30)
    month = rows(frame, "signups", "month")["2025-01"]
    assert month["period_end"] == jan(31)
    # previous periods are measured even before the reported quarter: Dec 2024 = 64
    assert month["previous_value"] == 64
    assert month["change_abs"] == 15 - 64
    assert month["change_pct"] == pytest.approx((15 - 64) / 64)
    assert rows(frame, "signups", "week")["2025-01-06"]["previous_value"] == 64  # Dec 30 week
    assert rows(frame, "signups", "quarter")["2025-Q1"]["previous_value"] == 64  # 2024-Q4
    assert month["unit"] == "users"
    assert month["health"] == "no_target"


def test_count_distinct_is_recounted_per_period(tmp_path):
    events = [
        ("login", "2025-01-06T10:00:00+00:00", "u1"),
        ("login", "2025-01-07T10:00:00+00:00", "u2"),
        ("login", "2025-01-14T10:00:00+00:00", "u1"),
        ("login", "2025-01-14T11:00:00+00:00", "u3"),
        ("login", "2025-01-15T11:00:00+00:00", "u3"),
    ]
    frame = summary(
        tmp_path,
        [event_metric("users", "count_distinct", column="user_id", target={"value": 3})],
        events=events,
    )
    weeks = values(frame, "users", "week")
    assert weeks["2025-01-06"] == 2  # {u1, u2}
    assert weeks["2025-01-13"] == 2  # {u1, u3} (u3 twice)
    # the month is {u1, u2, u3} = 3, not 2 + 2 = 4
    assert values(frame, "users", "month")["2025-01"] == 3
    assert values(frame, "users", "quarter")["2025-Q1"] == 3
    # a distinct count's target (per quarter) neither splits over weeks nor months
    assert values(frame, "users", "week", "health")["2025-01-06"] == "no_target"
    assert values(frame, "users", "month", "target_value")["2025-01"] is None
    assert rows(frame, "users", "quarter")["2025-Q1"]["health"] == "green"  # 3 >= 3


def test_ratio_is_a_ratio_of_the_period_sums(tmp_path):
    observations = [
        (jan(6), "conv", 1), (jan(6), "visits", 10),
        (jan(8), "conv", 3), (jan(8), "visits", 10),
        (jan(14), "conv", 6), (jan(14), "visits", 60),
    ]  # fmt: skip
    frame = summary(
        tmp_path,
        [csv_metric("conv"), csv_metric("visits"), ratio_metric("rate", "conv", "visits")],
        observations,
    )
    weeks = values(frame, "rate", "week")
    assert weeks["2025-01-06"] == pytest.approx(0.2)  # (1 + 3) / (10 + 10)
    assert weeks["2025-01-13"] == pytest.approx(0.1)  # 6 / 60
    # (1 + 3 + 6) / (10 + 10 + 60) = 0.125; the mean of the weekly ratios would be 0.15
    assert values(frame, "rate", "month")["2025-01"] == pytest.approx(0.125)
    assert values(frame, "rate", "quarter")["2025-Q1"] == pytest.approx(0.125)


def test_week_start_sunday(tmp_path):
    observations = [
        (jan(4), "signups", 1),  # Saturday: the week of Sunday Dec 29 (2024-Q4)
        (jan(5), "signups", 2),  # Sunday: opens the first week of 2025-Q1
        (jan(11), "signups", 4),  # Saturday: same week
        (jan(12), "signups", 8),  # Sunday: the next week
    ]
    frame = summary(
        tmp_path, [csv_metric("signups")], observations, settings={"week_start": "sunday"}
    )
    weeks = rows(frame, "signups", "week")
    assert list(weeks)[:3] == ["2024-12-29", "2025-01-05", "2025-01-12"]
    assert weeks["2024-12-29"]["value"] == 1  # Sunday Dec 29 - Saturday Jan 4: a Q1 row
    assert (weeks["2025-01-05"]["period_start"], weeks["2025-01-05"]["period_end"]) == (
        jan(5),
        jan(11),
    )
    assert weeks["2025-01-05"]["value"] == 6  # 2 + 4 (Monday weeks would split them)
    assert weeks["2025-01-05"]["previous_value"] == 1  # week of Dec 29
    assert weeks["2025-01-12"]["value"] == 8
    assert list(weeks)[-1] == "2025-03-23"  # Mar 23 - 29: the last week ending in Q1


# -- health -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "target", "tolerance", "readings"),
    [
        # higher: green a >= 1.1; yellow a >= 1.1 - 0.1 * 1.1 = 0.99 (0.9900000000000001 in
        # floating point: rounding to 9 decimals keeps 0.99 yellow); else red
        ("higher_is_better", 1.1, 0.1, (1.1, 0.99, 0.9899)),
        # lower: green a <= 0.3; yellow a <= 0.3 + 0.1 * 0.3 = 0.33 (0.32999999999999996)
        ("lower_is_better", 0.3, 0.1, (0.3, 0.33, 0.3301)),
    ],
)
def test_health_boundaries(tmp_path, direction, target, tolerance, readings):
    jan_value, feb_value, mar_value = readings
    observations = [
        (jan(15), "level", jan_value),
        (day(2, 15), "level", feb_value),
        (day(3, 15), "level", mar_value),
    ]
    metric = csv_metric(
        "level", "last", direction=direction, target={"value": target, "tolerance": tolerance}
    )
    frame = summary(tmp_path, [metric], observations)
    # a `last` metric takes its value as of the month end; a level target applies at any grain
    assert values(frame, "level", "month") == pytest.approx(
        {"2025-01": jan_value, "2025-02": feb_value, "2025-03": mar_value}
    )
    assert values(frame, "level", "month", "target_value") == {
        "2025-01": target,
        "2025-02": target,
        "2025-03": target,
    }
    assert values(frame, "level", "month", "health") == {
        "2025-01": "green",
        "2025-02": "yellow",
        "2025-03": "red",
    }
    assert values(frame, "level", "quarter", "health") == {"2025-Q1": "red"}  # as of Mar 31


def test_running_period_of_a_sum_is_provisional_against_a_pro_rated_target(tmp_path):
    observations = [
        *[(jan(d), "sales", 10) for d in range(1, 28)],  # Jan 1..27: 27 * 10 = 270
        (jan(28), "sales", 10),  # 280 by Jan 28
        (jan(30), "sales", 20),  # today: 300 for `fast`
        (day(2, 5), "sales", 1000),  # after today: never counted
    ]
    sales = csv_metric("sales", target={"value": 900, "tolerance": 0.1})
    today = jan(30)  # 30 of the quarter's 90 days
    frame = summary(tmp_path, [sales], observations, today=today)
    quarter = rows(frame, "sales", "quarter")["2025-Q1"]
    assert quarter["value"] == 300  # 28 * 10 + 20
    assert quarter["is_complete"] is False
    assert quarter["is_provisional"] is True
    assert quarter["elapsed_share"] == pytest.approx(30 / 90)
    assert quarter["target_value"] == 900
    assert quarter["health_target"] == pytest.approx(300)  # 900 * 30 / 90
    assert quarter["health"] == "green"  # 300 >= 300 (not red against the full 900)
    assert quarter["as_of_date"] == today
    # January (31 days) is 31/90 of the quarter: 900 * 31 / 90 = 310; 30 of 31 days -> 300
    month = rows(frame, "sales", "month")["2025-01"]
    assert month["target_value"] == pytest.approx(310)
    assert month["health_target"] == pytest.approx(300)
    # the week of Jan 27 - Feb 2: 7/90 of 900 = 70; Jan 27..30 is 4 of 7 days -> 40;
    # value Jan 27 + 28 + 30 = 10 + 10 + 20 = 40
    week = rows(frame, "sales", "week")["2025-01-27"]
    assert (week["value"], week["target_value"]) == pytest.approx((40, 70))
    assert week["health_target"] == pytest.approx(40)
    assert week["health"] == "green"
    # complete week Jan 20-26: 70 vs 70 -> green, not provisional
    complete = rows(frame, "sales", "week")["2025-01-20"]
    assert (complete["is_provisional"], complete["health"]) == (False, "green")
    # periods not started by today are not reported
    assert "2025-02" not in rows(frame, "sales", "month")
    assert list(rows(frame, "sales", "week"))[-1] == "2025-01-27"


def test_running_quarter_yellow_within_the_pro_rated_tolerance(tmp_path):
    observations = [(jan(d), "sales", 10) for d in range(1, 28)]  # 270 by Jan 30
    sales = csv_metric("sales", target={"value": 900, "tolerance": 0.1})
    frame = summary(tmp_path, [sales], observations, today=jan(30))
    # 300 - 0.1 * 300 = 270 <= 270 < 300 -> yellow
    assert rows(frame, "sales", "quarter")["2025-Q1"]["health"] == "yellow"
    frame = summary(tmp_path / "b", [sales], observations[:-1], today=jan(30))
    assert rows(frame, "sales", "quarter")["2025-Q1"]["health"] == "red"  # 260 < 270


def test_monthly_target_is_pro_rated_to_weeks_and_added_up_to_quarters(tmp_path):
    sales = csv_metric("sales", target={"value": 310, "grain": "month"})
    frame = summary(tmp_path, [sales], [(jan(6), "sales", 1)])
    weeks = values(frame, "sales", "week", "target_value")
    assert weeks["2025-01-06"] == pytest.approx(70)  # 310 / 31 days = 10 a day in January
    # Jan 27..31 at 10 a day + Feb 1..2 at 310 / 28 a day
    assert weeks["2025-01-27"] == pytest.approx(50 + 2 * 310 / 28)
    assert values(frame, "sales", "month", "target_value") == pytest.approx(
        {"2025-01": 310, "2025-02": 310, "2025-03": 310}
    )
    assert values(frame, "sales", "quarter", "target_value") == pytest.approx({"2025-Q1": 930})


# -- comparisons ------------------------------------------------------------------------------


def test_change_rolling_average_and_previous_zero(tmp_path):
    observations = [
        (day(11, 10, 2024), "sales", 30),
        (DEC(10), "sales", 30),
        (jan(10), "sales", 10),
        (day(2, 10), "other", 1),  # the source has rows in February, none of them sales -> 0
        (day(3, 10), "sales", 60),
    ]
    frame = summary(tmp_path, [csv_metric("sales")], observations)
    months = rows(frame, "sales", "month")
    assert [months[m]["value"] for m in months] == [10, 0, 60]
    assert months["2025-01"]["change_pct"] == pytest.approx((10 - 30) / 30)
    assert months["2025-02"]["change_pct"] == pytest.approx(-1)  # (0 - 10) / 10
    # previous value 0: the change is there, the percentage is not
    assert months["2025-03"]["previous_value"] == 0
    assert months["2025-03"]["change_abs"] == 60
    assert months["2025-03"]["change_pct"] is None
    # rolling: Jan (10 + 30 + 30) / 3; Feb (0 + 10 + 30) / 3; Mar (60 + 0 + 10) / 3
    assert [months[m]["rolling_avg_3"] for m in months] == pytest.approx([70 / 3, 40 / 3, 70 / 3])


def test_rolling_average_skips_periods_without_data(tmp_path):
    frame = summary(tmp_path, [csv_metric("sales")], [(DEC(10), "sales", 30), (jan(10), "x", 1)])
    months = rows(frame, "sales", "month")
    # Jan: 0 (rows, none matching); Nov 2024 has no data at all -> mean of Jan and Dec
    assert months["2025-01"]["value"] == 0
    assert months["2025-01"]["rolling_avg_3"] == pytest.approx(15)  # (0 + 30) / 2
    # Feb and Mar have no rows: Feb = (Jan 0 + Dec 30) / 2, Mar = Jan's 0 alone
    assert months["2025-02"]["rolling_avg_3"] == pytest.approx(15)
    assert months["2025-03"]["rolling_avg_3"] == 0
    assert months["2025-03"]["value"] is None
    assert months["2025-03"]["previous_value"] is None
    assert months["2025-03"]["change_pct"] is None


def test_year_over_year(tmp_path):
    observations = [
        (date(2024, 1, 10), "sales", 50),  # Wed: the week of Mon Jan 8, 2024 (364 days back)
        (date(2024, 2, 20), "sales", 25),
        (jan(8), "sales", 60),  # the week of Mon Jan 6, 2025
    ]
    frame = summary(tmp_path, [csv_metric("sales")], observations)
    week = rows(frame, "sales", "week")["2025-01-06"]
    assert week["yoy_value"] == 50
    assert week["yoy_change_pct"] == pytest.approx(0.2)  # (60 - 50) / 50
    month = rows(frame, "sales", "month")["2025-01"]
    assert (month["yoy_value"], month["yoy_change_pct"]) == (50, pytest.approx(0.2))
    # Feb 2025 has no data (null) against 25 a year earlier
    feb = rows(frame, "sales", "month")["2025-02"]
    assert (feb["value"], feb["yoy_value"], feb["yoy_change_pct"]) == (None, 25, None)
    quarter = rows(frame, "sales", "quarter")["2025-Q1"]
    assert quarter["yoy_value"] == 75  # 2024-Q1 = 50 + 25
    assert quarter["yoy_change_pct"] == pytest.approx(-0.2)  # (60 - 75) / 75
    # a week with nothing a year earlier: the week of Mon Feb 12, 2024 had no rows
    assert rows(frame, "sales", "week")["2025-02-10"]["yoy_value"] is None


def test_consecutive_red_counts_back_past_the_quarter_and_resets_on_no_data(tmp_path):
    readings = {
        DEC(30): 1,  # week of Dec 30 (2024-Q4): red
        jan(6): 1,  # red
        jan(13): 2,  # red
        # week of Jan 20: no rows at all -> no_data
        jan(27): 3,  # red
        day(2, 3): 10,  # green
        day(2, 10): 9,  # yellow: 10 - 0.1 * 10 = 9
        day(2, 17): 5,  # red
        day(2, 24): 4,  # red
    }
    sales = csv_metric("sales", target={"value": 10, "tolerance": 0.1, "grain": "week"})
    frame = summary(tmp_path, [sales], [(d, "sales", v) for d, v in readings.items()])
    weeks = rows(frame, "sales", "week")
    got = [(w["health"], w["consecutive_red"]) for w in list(weeks.values())[:8]]
    assert got == [
        ("red", 1),  # Dec 30 - Jan 5 (a Q1 row: it ends in January)
        ("red", 2),  # Jan 6
        ("red", 3),
        ("no_data", 0),
        ("red", 1),
        ("green", 0),
        ("yellow", 0),
        ("red", 1),
    ]
    assert weeks["2025-02-24"]["consecutive_red"] == 2
    assert weeks["2025-03-03"]["health"] == "no_data"


def test_rows_of_a_quarter_do_not_depend_on_the_other_quarters_of_the_run(tmp_path):
    sales = csv_metric("sales", target={"value": 10, "grain": "week"})
    observations = [(DEC(d), "sales", d % 7) for d in range(1, 32)] + [(jan(9), "sales", 3)]
    reader, config = setup(tmp_path, [sales], observations)
    alone = success_metric_summary(reader, config, [Q1], APR_30)
    both = success_metric_summary(reader, config, [Q4_2024, Q1], APR_30)
    assert both.filter(pl.col("quarter") == "2025-Q1").equals(alone)
    assert set(both["quarter"]) == {"2024-Q4", "2025-Q1"}


# -- config columns ---------------------------------------------------------------------------


def test_linked_kr_count_kind_direction_unit(tmp_path):
    metrics = [
        csv_metric("sales", kind="leading", direction="higher_is_better", unit="EUR"),
        csv_metric("churn", "last", kind="lagging", direction="lower_is_better", unit="%"),
    ]
    objectives = [
        objective(
            "o1", [key_result("k1", "sales", target=100), key_result("k2", "sales", target=5)]
        ),
        objective("o2", [key_result("k3", "sales", target=50)], related_metrics=["churn"]),
    ]
    frame = summary(tmp_path, metrics, [(jan(6), "sales", 1)], objectives=objectives)
    sales = rows(frame, "sales", "quarter")["2025-Q1"]
    churn = rows(frame, "churn", "quarter")["2025-Q1"]
    assert sales["linked_kr_count"] == 3
    assert churn["linked_kr_count"] == 0  # related to an objective, not a KR's metric
    assert (sales["kind"], sales["direction"], sales["unit"]) == (
        "leading",
        "higher_is_better",
        "EUR",
    )
    assert (churn["kind"], churn["direction"], churn["unit"]) == ("lagging", "lower_is_better", "%")
    assert churn["health"] == "no_target"


# -- metric_daily -----------------------------------------------------------------------------


def test_metric_daily_values_and_freshness(tmp_path):
    metrics = [
        csv_metric("sales", freshness="2d"),
        csv_metric("sales_3d", filter={"metric_id": "sales"}, window="3d"),
        csv_metric("level", "last"),
        event_metric("users", "count_distinct", column="user_id"),
    ]
    observations = [
        (DEC(31), "sales", 100),
        (jan(1), "sales", 1),
        (jan(2), "sales", 2),
        (jan(4), "sales", 4),
        (DEC(20), "level", 7),
        (jan(3), "level", 9),
    ]
    events = [
        ("login", "2025-01-02T10:00:00+00:00", "u1"),
        ("login", "2025-01-02T11:00:00+00:00", "u1"),
        ("login", "2025-01-02T12:00:00+00:00", "u2"),
        ("login", "2025-01-03T12:00:00+00:00", "u1"),
    ]
    reader, config = setup(tmp_path, metrics, observations, events)
    frame = metric_daily(reader, config, [Q1], jan(7))
    assert frame.columns == MARTS_METRIC_DAILY.column_names
    assert frame["date"].unique().sort().to_list() == [jan(d) for d in range(1, 8)]

    def column(metric_id, name="value"):
        return frame.filter(pl.col("metric_id") == metric_id).sort("date")[name].to_list()

    # a period metric: the day's own sum (Jan 3 has rows of other metrics -> 0; Jan 5-7 none)
    assert column("sales") == [1, 2, 0, 4, None, None, None]
    # trailing 3d as of each day: Jan 1 = Dec 30..Jan 1 = 100 + 1; Jan 2 = 103; Jan 3 = 3; ...
    assert column("sales_3d") == [101, 103, 3, 6, 4, 4, None]
    assert column("level") == [7, 7, 9, 9, 9, 9, 9]  # the latest value on or before the day
    assert column("users") == [None, 2, 1, None, None, None, None]  # distinct ids of each day
    assert column("sales", "data_through") == [jan(d) for d in (1, 2, 2, 4, 4, 4, 4)]
    # stale when d - data_through > 2 days: Jan 7 - Jan 4 = 3
    assert column("sales", "is_stale") == [False] * 6 + [True]
    assert column("level", "is_stale") == [False] * 7  # no freshness: never stale
    assert set(frame["quarter"]) == {"2025-Q1"} and set(frame["quarter_start"]) == {Q1.start}


def test_metric_daily_stops_at_today_and_skips_quarters_not_started(tmp_path):
    reader, config = setup(tmp_path, [csv_metric("sales")], [(jan(1), "sales", 1)])
    assert metric_daily(reader, config, [quarter_from_label("2025-Q2")], jan(7)).height == 0
    assert metric_daily(reader, config, [Q1], jan(7)).height == 7
    assert (
        success_metric_summary(reader, config, [quarter_from_label("2025-Q2")], jan(7)).height == 0
    )


# -- measuring many windows at once -----------------------------------------------------------


def test_values_over_agrees_with_value_over(tmp_path):
    rng = random.Random(7)
    observations = [
        (date.fromordinal(jan(1).toordinal() + rng.randrange(-40, 60)), m, rng.randrange(0, 50))
        for m in ("a", "b")
        for _ in range(60)
    ]
    events = [
        ("login", f"2025-{1 + i % 2:02d}-{1 + rng.randrange(28):02d}T10:00:00+00:00", f"u{i % 9}")
        for i in range(80)
    ]
    metrics = [
        csv_metric("a"),
        csv_metric("b"),
        *(
            csv_metric(f"a_{agg}", agg, filter={"metric_id": "a"})
            for agg in ("avg", "min", "max", "last", "count")
        ),
        csv_metric("a_7d", filter={"metric_id": "a"}, window="7d"),
        ratio_metric("ratio", "a", "b"),
        event_metric("users", "count_distinct", column="user_id"),
        event_metric("users_7d", "count_distinct", column="user_id", window="7d"),
    ]
    reader, config = setup(tmp_path, metrics, observations, events)
    starts = [date.fromordinal(jan(1).toordinal() + rng.randrange(-45, 60)) for _ in range(25)]
    windows = pl.DataFrame(
        {
            "start": starts,
            "end": [s.fromordinal(s.toordinal() + rng.randrange(0, 20)) for s in starts],
        }
    )
    for metric in config.metrics.values():
        many = reader.values_over(metric, windows)
        assert many.height == windows.unique().height
        for row in many.iter_rows(named=True):
            expected = reader.value_over(metric, row["start"], row["end"])
            assert row["value"] == pytest.approx(expected), (metric.id, row)


# -- table specs ------------------------------------------------------------------------------


def test_table_specs_are_documented_and_accept_the_frames(tmp_path):
    reader, config = setup(
        tmp_path,
        [csv_metric("sales", target={"value": 9, "tolerance": 0.1}, freshness="3d")],
        SIGNUPS,
    )
    con: duckdb.DuckDBPyConnection = reader.con
    for table, frame in (
        (MARTS_METRIC_DAILY, metric_daily(reader, config, [Q1], day(2, 10))),
        (MARTS_SUCCESS_METRIC_SUMMARY, success_metric_summary(reader, config, [Q1], day(2, 10))),
    ):
        assert table.schema == "marts" and table.partition_column == "quarter_start"
        assert {"quarter", "quarter_start"} <= set(table.column_names)
        assert all(len(c.description) > 10 for c in table.columns)
        assert frame.columns == table.column_names
        table.create(con)
        assert insert_frame(con, table, frame) == frame.height > 0
        keys = ", ".join(table.primary_key)
        duplicates = con.sql(
            f"SELECT count(*) FROM (SELECT {keys} FROM {table.fqn} GROUP BY ALL HAVING count(*) > 1)"
        ).fetchall()
        assert duplicates == [(0,)]
        comments = con.sql(
            "SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'marts' "
            "AND table_name = ? AND comment IS NOT NULL AND comment <> ''",
            params=[table.name],
        ).fetchall()
        assert comments == [(len(table.columns),)]


@pytest.mark.parametrize("red_since_year", [2019, 2022])
def test_a_red_streak_older_than_the_lookback_is_counted_in_full(tmp_path, red_since_year):
    """History is measured a year back first; streaks red all that way are measured further."""
    sales = csv_metric("sales", target={"value": 10, "tolerance": 0.1, "grain": "month"})
    kpi = csv_metric("kpi", target={"value": 10, "tolerance": 0.1, "grain": "month"})
    observations, month = [], date(2018, 1, 1)
    while month <= date(2025, 3, 1):
        # sales: green until red_since_year, red from then on; kpi: red except in 2023-06
        observations.append((month, "sales", 1 if month.year >= red_since_year else 20))
        observations.append((month, "kpi", 20 if month == date(2023, 6, 1) else 1))
        month = (month + timedelta(days=32)).replace(day=1)
    frame = summary(tmp_path, [sales, kpi], observations)
    months = rows(frame, "sales", "month")
    red_months = (2025 - red_since_year) * 12
    assert [months[label]["consecutive_red"] for label in ("2025-01", "2025-02", "2025-03")] == [
        red_months + 1, red_months + 2, red_months + 3
    ]
    kpi_months = rows(frame, "kpi", "month")
    # red from 2023-07 on: 18 months to 2024-12, then January to March 2025
    assert [kpi_months[label]["consecutive_red"] for label in ("2025-01", "2025-03")] == [19, 21]
    # the quarter grain counts whole quarters: sales red since Q1 of red_since_year
    quarter = rows(frame, "sales", "quarter")["2025-Q1"]
    assert quarter["health"] == "red"
    assert quarter["consecutive_red"] == (2025 - red_since_year) * 4 + 1


def test_a_ratio_is_as_fresh_as_its_older_part_in_both_kpi_marts(tmp_path):
    metrics = [csv_metric("won"), csv_metric("deals"), ratio_metric("win_rate", "won", "deals")]
    observations = [(jan(1), "won", 1), (jan(2), "deals", 4), (jan(3), "deals", 2)]
    reader, config = setup(tmp_path, metrics, observations)
    daily = metric_daily(reader, config, [Q1], jan(4))
    rate = daily.filter(pl.col("metric_id") == "win_rate").sort("date")
    assert rate["data_through"].to_list() == [jan(1)] * 4  # `won` has nothing after Jan 1
    assert rate["value"].to_list() == [None, 0.0, 0.0, None]  # the day's own sums
    weeks = rows(success_metric_summary(reader, config, [Q1], jan(4)), "win_rate", "week")
    assert weeks["2024-12-30"]["data_through"] == jan(1)
    assert weeks["2024-12-30"]["value"] == pytest.approx(1 / 6)
