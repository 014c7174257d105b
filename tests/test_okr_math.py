"""The OKR math of docs/computation.md, on numbers worked out by hand: KR progress for every type,
expected progress, statuses, grades, objective scores, the roll-up, team scores, fiscal quarters
and relative targets."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from okr_fixtures import (
    csv_metric,
    daily_rows,
    day,
    jan,
    key_result,
    kr_params,
    objective,
    params_frame,
    series_frame,
    warehouse,
    write_config,
)

from transforms.attainment import compute_okr_results
from transforms.calendar import quarter_from_label, quarter_of, quarters_between
from transforms.config import Settings
from transforms.okr import (
    grade,
    key_result_attainment,
    key_result_daily,
    kr_parameters,
    objective_attainment,
    objective_parameters,
    team_attainment,
)

Q1 = quarter_from_label("2025-Q1")  # 2025-01-01 .. 2025-03-31
Q2 = quarter_from_label("2025-Q2")


def column(rows, name):
    return [row[name] for row in rows]


# -- increase, decrease, cumulative ---------------------------------------------------------


def test_increase_progress_expected_and_status():
    # b = 100, t = 120 over Jan 1..10; r = (a - 100) / 20, e = day / 10
    rows = daily_rows(kr_params(baseline=100, target=120), [100, 104, None, 108, 110])
    assert column(rows, "raw_progress") == pytest.approx([0.0, 0.2, None, 0.4, 0.5])
    assert column(rows, "progress") == pytest.approx([0.0, 0.2, None, 0.4, 0.5])
    assert column(rows, "expected_progress") == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    # gaps e - p: 0.1, 0, -, 0, 0 -> on_track; a null value -> no_data
    assert column(rows, "status") == ["on_track", "on_track", "no_data", "on_track", "on_track"]
    assert column(rows, "grade") == ["red", "red", None, "yellow", "yellow"]


def test_increase_keeps_r_beyond_the_bounds_and_clamps_p():
    # a = 130: r = 30 / 20 = 1.5, p = 1, achieved; a = 90: r = -10 / 20 = -0.5, p = 0
    over, under = (
        daily_rows(kr_params(baseline=100, target=120), [value])[0] for value in (130, 90)
    )
    assert (over["raw_progress"], over["progress"], over["status"]) == (1.5, 1.0, "achieved")
    assert over["grade"] == "green"
    assert (under["raw_progress"], under["progress"]) == (-0.5, 0.0)


def test_decrease_with_a_relative_target(tmp_path):
    config = write_config(
        tmp_path,
        [csv_metric("churn", "avg", window="30d", direction="lower_is_better")],
        [objective("o", [key_result("kr", "churn", "decrease", target="-15%")])],
    )
    params = kr_parameters(config, {"kr": 10.0})
    # t = b + pct * |b| = 10 - 0.15 * 10 = 8.5
    assert params["target"].to_list() == [pytest.approx(8.5)]
    daily = key_result_daily(params, series_frame("kr", Q1.start, [9.1]), config.settings)
    # r = (9.1 - 10) / (8.5 - 10) = -0.9 / -1.5 = 0.6
    assert daily["raw_progress"].to_list() == [pytest.approx(0.6)]
    assert daily["progress"].to_list() == [pytest.approx(0.6)]


@pytest.mark.parametrize(
    ("target", "baseline", "expected"),
    [
        ("+20%", -10.0, -8.0),  # -10 + 0.2 * |-10|
        ("+5", 10.0, 15.0),  # 10 + 5
        ("-15%", 10.0, 8.5),  # 10 - 0.15 * 10
        ("+20%", None, None),  # no baseline, no target
        (40.0, None, 40.0),  # an absolute target needs no baseline
    ],
)
def test_relative_targets_apply_to_the_baseline(tmp_path, target, baseline, expected):
    kr_type = "decrease" if str(target).startswith("-") else "increase"
    config = write_config(
        tmp_path,
        [csv_metric("m", "avg", window="7d")],
        [objective("o", [key_result("kr", "m", kr_type, target=target)])],
    )
    params = kr_parameters(config, {"kr": baseline})
    assert params["target"].to_list() == [pytest.approx(expected) if expected else None]
    assert params["baseline"].to_list() == [baseline]


def test_a_number_baseline_in_the_config_wins_over_measurement(tmp_path):
    config = write_config(
        tmp_path,
        [csv_metric("m", "avg", window="7d")],
        [objective("o", [key_result("kr", "m", baseline=3, target="+5")])],
    )
    params = kr_parameters(config, {})
    assert params.select("baseline", "target").row(0) == (3.0, 8.0)  # 3 + 5


@pytest.mark.parametrize(
    ("kr_type", "baseline", "target", "value", "note"),
    [
        # an auto baseline of 130 is already above the target 120: (a - b) / (t - b) would give
        # a = 110 -> r = 1 (achieved by falling), a = 140 -> r = -1; no progress instead
        ("increase", 130.0, 120.0, 110.0, "already above"),
        ("decrease", 5.0, 8.0, 8.0, "already below"),
    ],
)
def test_a_baseline_already_past_the_target_has_no_progress(kr_type, baseline, target, value, note):
    rows = daily_rows(kr_params(kr_type=kr_type, baseline=baseline, target=target), [value])
    assert (rows[0]["progress"], rows[0]["status"]) == (None, "no_data")
    assert note in rows[0]["note"]


def test_success_level_comes_from_the_objective_type(tmp_path):
    kr = key_result("kr", "m", target=10)
    config = write_config(
        tmp_path,
        [csv_metric("m", "avg", window="7d")],
        [objective("c", [kr]), objective("a", [{**kr, "id": "kr2"}], type="aspirational")],
    )
    params = kr_parameters(config, {"kr": 1.0, "kr2": 1.0}).sort("kr_id")
    assert params["success_level"].to_list() == [1.0, 0.7]


def test_cumulative_progress_runs_from_zero():
    # b = 50 only set the target (+20% -> 60); a = 30 -> r = a / t = 0.5, not (30-50)/(60-50)
    rows = daily_rows(kr_params(baseline=50, target=60, cumulative=True), [12, 30])
    assert column(rows, "raw_progress") == pytest.approx([0.2, 0.5])
    # expected 0.1, 0.2 -> gaps -0.1, -0.3 -> on_track
    assert column(rows, "status") == ["on_track", "on_track"]


def test_cumulative_kr_through_the_pipeline_uses_the_previous_windows_total(tmp_path):
    # KR Jan 11..20 on a period sum; b = total of Jan 1..10 = 10 * 2 = 20; t = 20 + 50% = 30
    kr = key_result("kr", "deals", target="+50%")
    config = write_config(
        tmp_path / "c", [csv_metric("deals")], [objective("o", [kr], period=(jan(11), jan(20)))]
    )
    rows = [(jan(i), "deals", 2) for i in range(1, 11)] + [(jan(11), "deals", 3)]
    con = warehouse(tmp_path / "w.duckdb", rows + [(jan(12), "deals", 6)])
    row = compute_okr_results(con, config, [Q1], jan(12)).key_result_attainment.row(0, named=True)
    # a(Jan 12) = 3 + 6 = 9 -> r = 9 / 30 = 0.3; e = 2 / 10 = 0.2 -> gap -0.1 -> on_track
    assert (row["baseline"], row["target"], row["current_value"]) == (20, 30, 9)
    assert row["raw_progress"] == pytest.approx(0.3)
    assert row["expected_progress"] == pytest.approx(0.2)
    assert row["status"] == "on_track"


# -- maintain types --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kr_type", "bound", "values", "expected"),
    [
        # met 1, 0 (no value), 0 (90 < 100), 1 (100 is inclusive) -> 1/1, 1/2, 1/3, 2/4
        ("maintain_above", {"target": 100}, [120, None, 90, 100], [1, 1 / 2, 1 / 3, 2 / 4]),
        # met 1, 0, 1 (5 <= 5) -> 1, 1/2, 2/3
        ("maintain_below", {"target": 5}, [4, 6, 5], [1, 1 / 2, 2 / 3]),
        # [10, 20] inclusive: 10 in, 21 out, 15 in, 9.99 out -> 1, 1/2, 2/3, 2/4
        ("within_range", {"range_": (10, 20)}, [10, 21, 15, 9.99], [1, 1 / 2, 2 / 3, 2 / 4]),
        # no day with a value yet -> null; then the empty days count as not met: 1/3
        ("maintain_above", {"target": 1}, [None, None, 3], [None, None, 1 / 3]),
    ],
)
def test_maintain_progress_is_the_share_of_days_met(kr_type, bound, values, expected):
    rows = daily_rows(kr_params(kr_type=kr_type, **bound), values)
    assert column(rows, "progress") == pytest.approx(expected)
    assert column(rows, "expected_progress") == [1.0] * len(values)


def test_maintain_status_uses_expected_one_and_is_achieved_only_at_the_end():
    values = [5] * 7 + [0] * 3  # maintain_above 1 over Jan 1..10: met 7 of 10 days
    committed = daily_rows(kr_params(kr_type="maintain_above", target=1), values)
    aspirational = daily_rows(kr_params(kr_type="maintain_above", target=1, level=0.7), values)
    # day 7: p = 7/7 = 1 but d < E: not achieved yet; gap 1*1 - 1 = 0 -> on_track
    assert committed[6]["progress"] == 1.0
    assert committed[6]["status"] == "on_track"
    # day 8: 7/8 = 0.875, gap 0.125 -> at_risk; day 9: 7/9, gap 0.222 -> at_risk
    assert column(committed, "status")[7:9] == ["at_risk", "at_risk"]
    # day 10 = E: p = 0.7; committed L = 1 -> missed; aspirational L = 0.7 -> achieved
    assert committed[9]["progress"] == pytest.approx(0.7)
    assert committed[9]["status"] == "missed"
    assert aspirational[9]["status"] == "achieved"
    # aspirational day 8: gap 0.7 * 1 - 0.875 < 0 -> on_track
    assert aspirational[7]["status"] == "on_track"


def test_maintain_below_zero_on_a_cumulative_metric_is_measurable():
    # "no incidents": a count metric (cumulative) with bound 0; no division by t is involved
    rows = daily_rows(kr_params(kr_type="maintain_below", target=0, cumulative=True), [0, 0, 1])
    assert column(rows, "progress") == pytest.approx([1, 1, 2 / 3])
    assert column(rows, "note") == [None, None, None]


# -- milestone -------------------------------------------------------------------------------


def test_milestone_is_zero_until_reached_then_one_and_expects_nothing_before_e():
    rows = daily_rows(kr_params(kr_type="milestone", target=50), [None, 10, None, 55, 40])
    # day 1: no value yet -> null; 10 < 50 -> 0; no value -> still 0; 55 >= 50 -> 1; stays 1
    assert column(rows, "progress") == [None, 0.0, 0.0, 1.0, 1.0]
    assert column(rows, "raw_progress") == column(rows, "progress")  # r = p
    assert column(rows, "expected_progress") == [0.0] * 5
    assert column(rows, "status") == ["no_data", "on_track", "on_track", "achieved", "achieved"]


def test_milestone_not_reached_by_e_is_missed_and_follows_the_direction():
    missed = daily_rows(kr_params(kr_type="milestone", target=50, end=jan(3)), [10, 20, 49.9])
    assert column(missed, "status") == ["on_track", "on_track", "missed"]
    assert missed[2]["expected_progress"] == 1.0
    lower = daily_rows(kr_params(kr_type="milestone", target=2, higher_is_better=False), [5, 3, 2])
    assert column(lower, "progress") == [0.0, 0.0, 1.0]  # reached when a <= 2


# -- expected progress and statuses ----------------------------------------------------------


def test_expected_progress_counts_days_inclusively():
    # S = Jan 1, E = Mar 31 (90 days); Jan 9 is day 9 -> 9 / 90 = 0.1
    rows = daily_rows(kr_params(baseline=0, target=1, end=day(3, 31)), [0.0] * 9)
    assert rows[8]["expected_progress"] == pytest.approx(0.1)
    assert rows[0]["expected_progress"] == pytest.approx(1 / 90)


@pytest.mark.parametrize(
    ("end", "value_index", "value", "settings", "status"),
    [
        # e = 8/10 = 0.8, p = 7/10 = 0.7: 0.8 - 0.7 = 0.10000000000000009 in floats, 0.1 after
        # rounding to 9 decimals -> on_track
        (jan(10), 7, 7.0, Settings(), "on_track"),
        # e = 0.8, p = 0.69: gap 0.11 -> at_risk
        (jan(10), 7, 6.9, Settings(), "at_risk"),
        # e = 11/20 = 0.55, p = 0.3: 0.25000000000000006 in floats, 0.25 rounded -> at_risk
        (jan(20), 10, 3.0, Settings(), "at_risk"),
        # e = 0.55, p = 0.29: gap 0.26 -> off_track
        (jan(20), 10, 2.9, Settings(), "off_track"),
        # thresholds from settings: gap 0.1 > 0.05 but <= 0.2 -> at_risk
        (jan(10), 7, 7.0, Settings(on_track_gap=0.05, at_risk_gap=0.2), "at_risk"),
    ],
)
def test_gap_thresholds_after_rounding(end, value_index, value, settings, status):
    # b = 0, t = 10 -> p = a / 10
    values = [0.0] * value_index + [value]
    rows = daily_rows(kr_params(baseline=0, target=10, end=end), values, settings=settings)
    assert rows[value_index]["status"] == status


def test_success_level_scales_the_expected_progress():
    # day 5 of 10: e = 0.5, p = 0.3; committed gap 0.5 - 0.3 = 0.2 -> at_risk;
    # aspirational gap 0.7 * 0.5 - 0.3 = 0.05 -> on_track
    values = [0.0] * 4 + [3.0]
    committed = daily_rows(kr_params(baseline=0, target=10), values)
    aspirational = daily_rows(kr_params(baseline=0, target=10, level=0.7), values)
    assert committed[4]["status"] == "at_risk"
    assert aspirational[4]["status"] == "on_track"


@pytest.mark.parametrize(
    ("freshness", "latest", "values_end", "value", "status"),
    [
        # freshness 2d, d = Jan 5: latest Jan 3 -> 2 days old, not stale (gap 0.5 - 0.5)
        (2, jan(3), jan(10), 5.0, "on_track"),
        # latest Jan 2 -> 3 days old > 2 -> stale
        (2, jan(2), jan(10), 5.0, "stale"),
        # achieved wins over stale
        (2, jan(2), jan(10), 10.0, "achieved"),
        # d = E: missed wins over stale
        (2, jan(2), jan(5), 5.0, "missed"),
        # no freshness set: never stale
        (None, jan(1), jan(10), 5.0, "on_track"),
    ],
)
def test_stale_and_the_first_match_order(freshness, latest, values_end, value, status):
    params = kr_params(baseline=0, target=10, end=values_end, freshness_days=freshness)
    values = [0.0, 0.0, 0.0, 0.0, value]
    rows = daily_rows(params, values, latest=[jan(1), jan(2), jan(3), jan(3), latest])
    assert rows[4]["status"] == status


def test_not_started_and_no_data_in_the_quarter_rows():
    params = params_frame(
        kr_params("later", start=day(2, 1), end=day(2, 28), baseline=0, target=1),
        kr_params("empty", start=jan(1), end=jan(31), baseline=0, target=1),
    )
    series = series_frame("empty", jan(1), [None] * 15)
    daily = key_result_daily(params, series, Settings())
    rows = {
        row["kr_id"]: row for row in key_result_attainment(params, daily, [Q1], jan(15)).to_dicts()
    }
    # today Jan 15 < S = Feb 1 -> not_started (before no_data); as of Jan 15
    assert rows["later"]["status"] == "not_started"
    assert rows["later"]["as_of_date"] == jan(15)
    assert rows["later"]["progress"] is None
    assert rows["later"]["expected_progress"] == 0.0
    assert rows["empty"]["status"] == "no_data"
    assert "no data" in rows["empty"]["note"]


def test_grade_boundaries():
    frame = pl.DataFrame({"p": [0.0, 0.39, 0.3999999999999, 0.4, 0.69, 0.7, 1.0, None]})
    assert frame.select(grade(pl.col("p")).alias("g"))["g"].to_list() == [
        "red",
        "red",
        "yellow",  # 0.3999999999999 rounds to 0.4 at 9 decimals
        "yellow",
        "yellow",
        "green",
        "green",
        None,
    ]


# -- objectives, roll-up, teams --------------------------------------------------------------

KR_ROWS_SCHEMA = {
    "kr_id": pl.String,
    "objective_id": pl.String,
    "quarter_start": pl.Date,
    "progress": pl.Float64,
    "expected_progress": pl.Float64,
    "weight": pl.Float64,
    "status": pl.String,
}


def kr_rows(*rows, quarter=Q1):
    """(objective_id, progress, expected, weight) per KR, reported in `quarter`."""
    return pl.DataFrame(
        [
            {
                "kr_id": f"{objective_id}-kr{index}",
                "objective_id": objective_id,
                "quarter_start": quarter.start,
                "progress": p,
                "expected_progress": e,
                "weight": w,
                "status": "on_track" if p is not None else "no_data",
            }
            for index, (objective_id, p, e, w) in enumerate(rows)
        ],
        schema=KR_ROWS_SCHEMA,
    )


def objectives_config(tmp_path, *objectives):
    return write_config(tmp_path, [csv_metric("m")], list(objectives))


def by_id(frame, quarter=Q1):
    return {
        row["objective_id"]: row
        for row in frame.filter(pl.col("quarter_start") == quarter.start).to_dicts()
    }


def test_objective_score_is_the_weighted_mean_over_krs_with_progress(tmp_path):
    config = objectives_config(tmp_path, objective("o"))
    krs = kr_rows(("o", 0.5, 0.2, 1.0), ("o", 1.0, 0.6, 3.0), ("o", None, 1.0, 2.0))
    row = by_id(
        objective_attainment(objective_parameters(config), krs, [Q1], day(2, 14), Settings())
    )["o"]
    # O = (1*0.5 + 3*1.0) / (1 + 3) = 0.875; the null KR is skipped
    assert row["score"] == pytest.approx(0.875)
    # expected over the same KRs: (1*0.2 + 3*0.6) / 4 = 0.5 (not (0.2+1.8+2.0)/6)
    assert row["expected_progress"] == pytest.approx(0.5)
    assert row["status"] == "on_track"  # gap 0.5 - 0.875 < 0
    assert (row["kr_count"], row["kr_no_data"], row["kr_on_track"]) == (3, 1, 2)
    assert row["rollup_score"] == pytest.approx(0.875)  # no children: same as the score


@pytest.mark.parametrize(
    ("kind", "today", "progress", "status"),
    [
        # at the end (Mar 31): O = (0.7+0.7+0.7)/3 = 0.6999999999999998 in floats; rounded
        # 0.7 >= L = 0.7 -> achieved
        ("aspirational", day(3, 31), [0.7, 0.7, 0.7], "achieved"),
        ("committed", day(3, 31), [0.7, 0.7, 0.7], "missed"),
        ("committed", day(6, 30), [1.0, 1.0, 1.0], "achieved"),  # as of min(Mar 31, today)
        # before the end: gap rule, e = 0.5: 0.5 - 0.3 = 0.2 -> at_risk
        ("committed", day(2, 14), [0.3, 0.3, 0.3], "at_risk"),
        ("committed", day(2, 14), [None, None, None], "no_data"),
    ],
)
def test_objective_status(tmp_path, kind, today, progress, status):
    config = objectives_config(tmp_path, objective("o", type=kind))
    krs = kr_rows(*[("o", p, 0.5, 1.0) for p in progress])
    row = by_id(objective_attainment(objective_parameters(config), krs, [Q1], today, Settings()))[
        "o"
    ]
    assert row["status"] == status


def test_objective_not_started_before_its_period(tmp_path):
    config = objectives_config(tmp_path, objective("o", period=(day(2, 1), day(3, 31))))
    rows = objective_attainment(objective_parameters(config), kr_rows(), [Q1], jan(15), Settings())
    assert by_id(rows)["o"]["status"] == "not_started"


def hierarchy(tmp_path):
    return objectives_config(
        tmp_path,
        objective("company", team="exec", period=(jan(1), day(12, 31))),
        objective("p1", team="product", parent="company", weight=2),
        objective("t1", team="product", parent="p1"),
        objective("p2", team="sales", parent="company"),
        objective("p3", team="sales", weight=3),
        objective("late", team="sales", parent="company", weight=5, period="2025-Q2"),
    )


def test_rollup_bottom_up_over_two_levels_and_quarters(tmp_path):
    config = hierarchy(tmp_path)
    krs = pl.concat(
        [
            kr_rows(
                ("p1", 0.6, 0.8, 1.0),
                ("t1", 0.9, 0.6, 1.0),
                ("p2", 0.3, 0.5, 1.0),
                ("p3", 0.7, 0.5, 1.0),
            ),
            kr_rows(("late", 0.1, 0.4, 1.0), quarter=Q2),
        ]
    )
    rows = objective_attainment(objective_parameters(config), krs, [Q1, Q2], day(5, 15), Settings())
    q1, q2 = by_id(rows, Q1), by_id(rows, Q2)
    # p1: own KR 0.6 (w 1) + child t1 0.9 (w 1) -> (0.6 + 0.9) / 2 = 0.75; its score stays 0.6
    assert q1["p1"]["score"] == pytest.approx(0.6)
    assert q1["p1"]["rollup_score"] == pytest.approx(0.75)
    # company Q1: (2 * 0.75 + 1 * 0.3) / (2 + 1) = 0.6; `late` (Q2) does not count in Q1
    assert q1["company"]["score"] is None
    assert q1["company"]["rollup_score"] == pytest.approx(0.6)
    # expected rolls up the same way: p1 (0.8 + 0.6) / 2 = 0.7; company (2*0.7 + 0.5) / 3
    assert q1["company"]["rollup_expected_progress"] == pytest.approx(1.9 / 3)
    # no KRs -> status from rollup_score: gap 0.6333 - 0.6 = 0.033 -> on_track (as of Mar 31)
    assert q1["company"]["status"] == "on_track"
    # Q1 children end on Mar 31 = their as-of date: p1's score 0.6 < 1 -> missed
    assert q1["p1"]["status"] == "missed"
    # company Q2 (as of May 15): only `late` touches Q2 -> 5 * 0.1 / 5 = 0.1;
    # gap 0.4 - 0.1 = 0.3 -> off_track
    assert q2["company"]["rollup_score"] == pytest.approx(0.1)
    assert q2["company"]["status"] == "off_track"
    assert set(q2) == {"company", "late"}


def test_team_scores_weighted_and_unweighted(tmp_path):
    config = hierarchy(tmp_path)
    krs = kr_rows(
        ("p1", 0.6, 0.8, 1.0), ("t1", 0.9, 0.6, 1.0), ("p2", 0.3, 0.5, 1.0), ("p3", 0.7, 0.5, 1.0)
    )
    objectives = objective_attainment(
        objective_parameters(config), krs, [Q1], day(2, 14), Settings()
    )
    teams = {row["team"]: row for row in team_attainment(objectives).to_dicts()}
    # product: p1 only (t1's parent p1 is in product): 0.75
    assert teams["product"]["score_weighted"] == pytest.approx(0.75)
    assert teams["product"]["objective_count"] == 1
    # sales: p2 (0.3, w 1; parent in exec) and p3 (0.7, w 3):
    # weighted (0.3 + 3 * 0.7) / 4 = 0.6; unweighted (0.3 + 0.7) / 2 = 0.5
    assert teams["sales"]["score_weighted"] == pytest.approx(0.6)
    assert teams["sales"]["score_unweighted"] == pytest.approx(0.5)
    assert teams["sales"]["objective_count"] == 2
    assert teams["exec"]["score_weighted"] == pytest.approx(0.6)


def test_a_child_counts_for_its_team_where_its_same_team_parent_is_not_reported(tmp_path):
    config = objectives_config(
        tmp_path,
        objective("parent"),  # Q1 only
        objective("child", parent="parent", period=(jan(1), day(6, 30))),
    )
    krs = pl.concat(
        [
            kr_rows(("parent", 0.2, 0.5, 1.0), ("child", 0.8, 0.5, 1.0)),
            kr_rows(("child", 0.9, 0.5, 1.0), quarter=Q2),
        ]
    )
    objectives = objective_attainment(
        objective_parameters(config), krs, [Q1, Q2], day(5, 1), Settings()
    )
    teams = {row["quarter"]: row for row in team_attainment(objectives).to_dicts()}
    # Q1: the child counts through its parent: (0.2 + 0.8) / 2 = 0.5, one objective
    assert teams["2025-Q1"]["score_weighted"] == pytest.approx(0.5)
    assert teams["2025-Q1"]["objective_count"] == 1
    # Q2: the parent is not reported, so the child stands for itself
    assert teams["2025-Q2"]["score_weighted"] == pytest.approx(0.9)
    assert teams["2025-Q2"]["objective_count"] == 1


def test_objective_without_krs_or_scored_children_has_no_data(tmp_path):
    config = objectives_config(tmp_path, objective("top"), objective("child", parent="top"))
    rows = by_id(
        objective_attainment(
            objective_parameters(config),
            kr_rows(("child", None, 0.5, 1.0)),
            [Q1],
            jan(15),
            Settings(),
        )
    )
    assert rows["top"]["rollup_score"] is None
    assert rows["top"]["status"] == "no_data"


# -- fiscal quarters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "month", "start", "end"),
    [
        ("2025-Q1", 1, date(2025, 1, 1), date(2025, 3, 31)),
        ("2025-Q4", 1, date(2025, 10, 1), date(2025, 12, 31)),
        # FY2025 starting in April runs Apr 2024 .. Mar 2025 (named by the year it ends in)
        ("2025-Q1", 4, date(2024, 4, 1), date(2024, 6, 30)),
        ("2025-Q4", 4, date(2025, 1, 1), date(2025, 3, 31)),
        # FY2025 starting in February runs Feb 2024 .. Jan 2025
        ("2025-Q1", 2, date(2024, 2, 1), date(2024, 4, 30)),
        ("2025-Q4", 2, date(2024, 11, 1), date(2025, 1, 31)),
        ("2024-Q1", 2, date(2023, 2, 1), date(2023, 4, 30)),  # Feb 2024 is not yet FY2025
        # FY2025 starting in December runs Dec 2024 .. Nov 2025
        ("2025-Q1", 12, date(2024, 12, 1), date(2025, 2, 28)),
    ],
)
def test_fiscal_quarter_labels(label, month, start, end):
    quarter = quarter_from_label(label, month)
    assert (quarter.start, quarter.end) == (start, end)
    assert quarter_of(start, month).label == label
    assert quarter_of(end, month).label == label


@pytest.mark.parametrize(
    ("when", "month", "label"),
    [
        (date(2025, 3, 31), 4, "2025-Q4"),
        (date(2025, 4, 1), 4, "2026-Q1"),
        (date(2025, 1, 31), 2, "2025-Q4"),
        (date(2025, 2, 1), 2, "2026-Q1"),
        (date(2024, 12, 31), 1, "2024-Q4"),
    ],
)
def test_quarter_of_a_day(when, month, label):
    assert quarter_of(when, month).label == label


def test_quarters_between_and_config_periods_follow_the_fiscal_year(tmp_path):
    labels = [q.label for q in quarters_between(date(2025, 2, 15), date(2025, 7, 1), 4)]
    assert labels == ["2025-Q4", "2026-Q1", "2026-Q2"]  # Jan-Mar, Apr-Jun, Jul-Sep 2025
    config = write_config(
        tmp_path,
        [csv_metric("m")],
        [objective("o", period="2025-Q1")],
        settings={"fiscal_year_start_month": 4},
    )
    assert config.objective_windows["o"] == (date(2024, 4, 1), date(2024, 6, 30))


def test_kr_spanning_two_quarters_is_reported_in_each(tmp_path):
    # KR Feb 1 .. Apr 30 (28 + 31 + 30 = 89 days); one signup a day; b = 0, t = 100
    kr = key_result("kr", "signups", baseline=0, target=100, period=(day(2, 1), day(4, 30)))
    config = write_config(
        tmp_path / "c", [csv_metric("signups")], [objective("o", [kr], period=(jan(1), day(6, 30)))]
    )
    observations = [
        (d, "signups", 1.0)
        for d in pl.date_range(day(1, 1), day(6, 30), "1d", eager=True).to_list()
    ]
    con = warehouse(tmp_path / "w.duckdb", observations)
    results = compute_okr_results(con, config, [Q1, Q2], day(4, 15))
    rows = {r["quarter"]: r for r in results.key_result_attainment.to_dicts()}
    # Q1 as of Mar 31: a = Feb 1..Mar 31 = 59 days -> r = 0.59, e = 59 / 89
    assert rows["2025-Q1"]["as_of_date"] == day(3, 31)
    assert rows["2025-Q1"]["current_value"] == 59
    assert rows["2025-Q1"]["progress"] == pytest.approx(0.59)
    assert rows["2025-Q1"]["expected_progress"] == pytest.approx(59 / 89)
    # Q2 as of min(Jun 30, Apr 30, today Apr 15) = Apr 15: a = 59 + 15 = 74, e = 74 / 89
    assert rows["2025-Q2"]["as_of_date"] == day(4, 15)
    assert rows["2025-Q2"]["current_value"] == 74
    assert rows["2025-Q2"]["expected_progress"] == pytest.approx(74 / 89)
    # gaps 0.663 - 0.59 = 0.073 and 0.831 - 0.74 = 0.091 -> on_track in both
    assert rows["2025-Q1"]["status"] == rows["2025-Q2"]["status"] == "on_track"
    # the burn-up history: Feb 1..Mar 31 in Q1 (59 days), Apr 1..15 in Q2 (15 days)
    counts = dict(results.key_result_progress_daily.group_by("quarter").len().iter_rows())
    assert counts == {"2025-Q1": 59, "2025-Q2": 15}
    # the objective (Jan 1 .. Jun 30) is reported in both quarters too
    objective_rows = {r["quarter"]: r for r in results.objective_attainment.to_dicts()}
    assert objective_rows["2025-Q1"]["score"] == pytest.approx(0.59)
    assert objective_rows["2025-Q2"]["score"] == pytest.approx(0.74)


def test_krs_not_started_on_the_as_of_day_expect_nothing(tmp_path):
    """docs/computation.md: a KR not started on the as-of day has expected progress 0 (maintain types
    too) and status not_started; objectives average e over the KRs that have progress."""
    krs = [
        # started: Jan 1..31 (31 days); 2 signups a day -> a = 30 on Jan 15
        key_result("kr-now", "signups", baseline=0, target=100, period=(jan(1), jan(31))),
        # started, spans Q1 and Q2 (Jan 1..Apr 30, 120 days); Q2 has not started on Jan 15
        key_result("kr-span", "signups", baseline=0, target=400, period=(jan(1), day(4, 30)),
                   weight=2),
        # not started: a maintain type, whose expected is 1 once started
        key_result("kr-later", "nps", "maintain_above", target=50, period=(day(2, 1), day(3, 31)),
                   weight=4),
        # not started, spans Q1 and Q2
        key_result("kr-q2", "signups", baseline=0, target=100, period=(day(2, 1), day(4, 30)),
                   weight=8),
    ]  # fmt: skip
    quiet = [
        key_result("kr-quiet", "nps", "maintain_below", target=70, period=(day(2, 1), day(2, 28)))
    ]
    config = write_config(
        tmp_path / "c",
        [csv_metric("signups"), csv_metric("nps", "last")],
        [objective("o", krs, period=(jan(1), day(6, 30))), objective("quiet", quiet)],
    )
    every_day = pl.date_range(jan(1), day(6, 30), "1d", eager=True).to_list()
    con = warehouse(
        tmp_path / "w.duckdb",
        [(d, "signups", 2.0) for d in every_day] + [(d, "nps", 60.0) for d in every_day],
    )
    results = compute_okr_results(con, config, [Q1, Q2], jan(15))
    rows = {(r["quarter"], r["kr_id"]): r for r in results.key_result_attainment.to_dicts()}
    assert set(rows) == {
        ("2025-Q1", kr) for kr in ("kr-now", "kr-span", "kr-later", "kr-q2", "kr-quiet")
    } | {("2025-Q2", "kr-span"), ("2025-Q2", "kr-q2")}
    for key in [("2025-Q1", "kr-later"), ("2025-Q1", "kr-q2"), ("2025-Q2", "kr-q2"),
                ("2025-Q1", "kr-quiet")]:  # fmt: skip
        row = rows[key]
        assert row["as_of_date"] == jan(15), key
        assert (row["expected_progress"], row["status"]) == (0.0, "not_started"), key
        assert (row["progress"], row["raw_progress"], row["grade"]) == (None, None, None), key
    # started: e = 15/31, p = 30/100; gap 0.484 - 0.3 = 0.184 -> at_risk
    assert rows[("2025-Q1", "kr-now")]["expected_progress"] == pytest.approx(15 / 31)
    assert rows[("2025-Q1", "kr-now")]["progress"] == pytest.approx(0.3)
    assert rows[("2025-Q1", "kr-now")]["status"] == "at_risk"
    # kr-span in both quarters as of Jan 15: e = 15/120 = 0.125, p = 30/400; gap 0.05 -> on_track
    for quarter in ("2025-Q1", "2025-Q2"):
        row = rows[(quarter, "kr-span")]
        assert row["as_of_date"] == jan(15)
        assert row["expected_progress"] == pytest.approx(0.125)
        assert row["progress"] == pytest.approx(0.075)
        assert row["status"] == "on_track"
    # the burn-up history has days from each KR's start only: none for the unstarted KRs
    daily = results.key_result_progress_daily
    assert set(daily["kr_id"].unique()) == {"kr-now", "kr-span"}
    last = daily.filter((pl.col("kr_id") == "kr-now") & (pl.col("as_of_date") == jan(15)))
    assert last["expected_progress"].to_list() == pytest.approx([15 / 31])

    objectives = {
        (r["quarter"], r["objective_id"]): r for r in results.objective_attainment.to_dicts()
    }
    q1, q2 = objectives[("2025-Q1", "o")], objectives[("2025-Q2", "o")]
    # over the KRs with progress only: O = (1*0.3 + 2*0.075) / 3 = 0.15,
    # e = (1*15/31 + 2*0.125) / 3 = 0.2446 (the unstarted KRs' 0 weighs nothing);
    # gap 0.2446 - 0.15 = 0.0946 -> on_track
    assert q1["score"] == pytest.approx(0.15)
    assert q1["expected_progress"] == pytest.approx((15 / 31 + 0.25) / 3)
    assert (q1["status"], q1["kr_not_started"], q1["kr_count"]) == ("on_track", 2, 4)
    # Q2: only kr-span has progress
    assert (q2["score"], q2["expected_progress"]) == pytest.approx((0.075, 0.125))
    assert (q2["status"], q2["kr_not_started"]) == ("on_track", 1)
    # an objective under way whose only KR has not started: nothing to average yet
    quiet_row = objectives[("2025-Q1", "quiet")]
    assert (quiet_row["score"], quiet_row["expected_progress"]) == (None, None)
    assert (quiet_row["status"], quiet_row["kr_not_started"]) == ("no_data", 1)


# -- relative-target edge cases --------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "target", "before_s", "note"),
    [
        # no data before S -> b null -> t null -> p null
        (csv_metric("m", "last"), "+10%", [], "baseline"),
        # b = 0 on a non-cumulative metric: t = 0 + 20% * 0 = 0 = b
        (csv_metric("m", "last"), "+20%", [0.0], "equals"),
        # cumulative: b = 0 -> t = 0 <= 0
        (csv_metric("m"), "+20%", [0.0], "above zero"),
        # cumulative: b = -10 -> t = -10 + 20% * 10 = -8 <= 0
        (csv_metric("m"), "+20%", [-10.0], "above zero"),
    ],
)
def test_unmeasurable_relative_targets(tmp_path, metric, target, before_s, note):
    kr = key_result("kr", "m", target=target)
    config = write_config(
        tmp_path / "c", [metric], [objective("o", [kr], period=(day(2, 1), day(2, 28)))]
    )
    rows = [(jan(20), "m", v) for v in before_s] + [(day(2, 3), "m", 5.0)]
    con = warehouse(tmp_path / "w.duckdb", rows)
    row = compute_okr_results(con, config, [Q1], day(2, 10)).key_result_attainment.row(
        0, named=True
    )
    assert row["current_value"] == 5.0  # there is data; the target is what is missing
    assert row["progress"] is None
    assert row["raw_progress"] is None
    assert row["status"] == "no_data"
    assert note in row["note"]
