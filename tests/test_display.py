"""Numbers that explain themselves, on real DuckDB files and hand-worked numbers: units as people
read them, stale data shown as stale even without a configured freshness, grades provisional
until the quarter closes, and how close a milestone came."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from okr_fixtures import csv_metric, jan, key_result, objective, warehouse, write_config

from transforms.attainment import compute_okr_results
from transforms.calendar import quarter_from_label
from transforms.config import ConfigError
from transforms.dimensions import dim_metrics
from transforms.okr import DEFAULT_STALE_DAYS
from transforms.units import d3_format, display_format, format_value

Q1 = quarter_from_label("2025-Q1")  # 2025-01-01 .. 2025-03-31


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (0.025, "ratio", "2.50%"),  # a fraction; two decimals under 10%
        (0.628, "ratio", "62.8%"),
        (0.0049, "ratio", "0.49%"),
        (85, "%", "85.0%"),  # percent points
        (1.85, "%", "1.85%"),
        (1315.2, "users", "1,315 users"),  # +20% of 1,096 users: no cents on a count
        (86146, "EUR", "EUR 86,146"),
        (12.345, "index", "12.3 index"),
        (3.456, None, "3.46"),
        (5.0, "clients", "5 clients"),  # a whole number shows no decimals
        (None, "EUR", "—"),
        (float("nan"), "users", "—"),
    ],
)
def test_values_read_in_their_unit(value, unit, shown):
    assert format_value(value, unit) == shown


def test_dim_metrics_gives_bi_tools_a_display_format_per_unit(tmp_path):
    config = write_config(
        tmp_path / "c",
        [
            csv_metric("rate", "last", unit="ratio"),
            csv_metric("csat", "last", unit="%"),
            csv_metric("revenue", unit="EUR"),
            csv_metric("visits"),
        ],
    )
    formats = {
        row["metric_id"]: (row["display_format"], row["d3_format"])
        for row in dim_metrics(config).iter_rows(named=True)
    }
    assert formats == {
        "rate": ("0.0%", ".1%"),
        "csat": ('0.0"%"', ".1f"),
        "revenue": ('"EUR "#,##0', ",.0f"),
        "visits": ("#,##0", ",.0f"),
    }
    assert display_format("USD") == '"USD "#,##0' and d3_format(None) == ",.0f"


def _results(tmp_path, metrics, objectives, rows, today):
    config = write_config(tmp_path / "c", metrics, objectives)
    con = warehouse(tmp_path / "w.duckdb", rows)
    return compute_okr_results(con, config, [Q1], today)


def _kr(results, kr_id="kr"):
    frame = results.key_result_attainment
    return frame.filter(frame["kr_id"] == kr_id).row(0, named=True)


@pytest.mark.parametrize(
    ("metric", "today", "stale"),
    [
        # trailing 7d, data through Jan 5: Jan 12 is 7 days on (still shown), Jan 13 is 8
        ({"window": "7d"}, jan(12), False),
        ({"window": "7d"}, jan(13), True),
        # no trailing window, no freshness: a month without data (31 days) is allowed
        ({}, jan(5) + timedelta(days=DEFAULT_STALE_DAYS), False),
        ({}, jan(5) + timedelta(days=DEFAULT_STALE_DAYS + 1), True),
        # a configured freshness wins over both defaults (and is the contract's `stale` status)
        ({"window": "7d", "freshness": "2d"}, jan(8), True),
    ],
)
def test_a_kr_without_recent_data_is_shown_stale_never_on_track(tmp_path, metric, today, stale):
    # values 10/day on Jan 1..5; KR: maintain the daily value at or above 5
    results = _results(
        tmp_path,
        [csv_metric("m", "last" if "window" not in metric else "sum", **metric)],
        [objective("o", [key_result("kr", "m", "maintain_above", target=5)])],
        [(jan(i), "m", 10) for i in range(1, 6)],
        today,
    )
    row = _kr(results)
    assert row["data_through"] == jan(5)
    expected_after = 2 if "freshness" in metric else 7 if "window" in metric else 31
    assert row["stale_after_days"] == expected_after
    if stale:
        assert row["display_status"] == "stale"
        assert row["status"] in ("stale", "on_track", "at_risk", "off_track")
    else:
        assert row["display_status"] == row["status"] != "stale"
    objective_row = results.objective_attainment.row(0, named=True)
    # its only KR is shown stale, so the objective is not shown on track either
    assert (objective_row["display_status"] == "stale") == stale


def test_an_objective_with_one_fresh_kr_is_not_shown_stale(tmp_path):
    results = _results(
        tmp_path,
        [csv_metric("old", "last"), csv_metric("new", "last")],
        [
            objective(
                "o",
                [
                    key_result("kr-old", "old", "maintain_above", target=5),
                    key_result("kr-new", "new", "maintain_above", target=5),
                ],
            )
        ],
        [(jan(1), "old", 10)] + [(jan(1) + timedelta(days=i), "new", 10) for i in range(60)],
        date(2025, 3, 1),  # old: 59 days without data; new: data through Mar 1
    )
    assert _kr(results, "kr-old")["display_status"] == "stale"
    assert _kr(results, "kr-new")["display_status"] != "stale"
    assert results.objective_attainment["display_status"].to_list() != ["stale"]


@pytest.mark.parametrize(
    ("today", "final"), [(date(2025, 3, 30), False), (date(2025, 3, 31), True)]
)
def test_grades_are_provisional_until_the_quarter_closes(tmp_path, today, final):
    results = _results(
        tmp_path,
        [csv_metric("m")],
        [objective("o", [key_result("kr", "m", baseline=0, target=100)])],
        [(jan(1), "m", 50)],
        today,
    )
    assert _kr(results)["grade_is_final"] is final
    assert results.objective_attainment["grade_is_final"].to_list() == [final]


@pytest.mark.parametrize(
    ("direction", "best"), [("higher_is_better", 86146.0), ("lower_is_better", 70000.0)]
)
def test_a_milestone_shows_how_close_it_came(tmp_path, direction, best):
    # daily `last` values 70,000, 86,146, 80,000: the best so far is the max (min when lower
    # is better); the milestone at 90,000 is not reached, so progress stays 0
    values = [70000, 86146, 80000]
    results = _results(
        tmp_path,
        [csv_metric("m", "last", direction=direction)],
        [
            objective(
                "o",
                [key_result("kr", "m", "milestone", target=90000 if best > 80000 else 1)],
            )
        ],
        [(jan(i + 1), "m", v) for i, v in enumerate(values)] + [(jan(4), "m", 75000)],
        jan(4),
    )
    row = _kr(results)
    assert row["current_value"] == 75000
    assert row["best_value"] == best
    assert row["progress"] == 0


def test_a_trailing_window_does_not_slide_past_the_last_day_with_data(tmp_path):
    # 10 a day on Jan 1..20, a trailing 7-day sum: 70 as of Jan 20. As of Jan 24 the window
    # [Jan 18, Jan 24] holds only 3 days (30): current_value follows the rules, but the value
    # shown is 70, as of Jan 20. Not stale yet (4 days <= 7).
    results = _results(
        tmp_path,
        [csv_metric("m", window="7d")],
        [objective("o", [key_result("kr", "m", "maintain_above", target=50)])],
        [(jan(i), "m", 10) for i in range(1, 21)],
        jan(24),
    )
    row = _kr(results)
    assert (row["current_value"], row["display_value"], row["display_value_date"]) == (
        30,
        70,
        jan(20),
    )
    assert row["display_status"] == row["status"] != "stale"
    # with data up to the as-of day, the shown value is the current one
    fresh = _results(
        tmp_path / "fresh",
        [csv_metric("m", window="7d")],
        [objective("o", [key_result("kr", "m", "maintain_above", target=50)])],
        [(jan(i), "m", 10) for i in range(1, 25)],
        jan(24),
    )
    row = _kr(fresh)
    assert (row["current_value"], row["display_value"], row["display_value_date"]) == (
        70,
        70,
        jan(24),
    )


@pytest.mark.parametrize(
    ("minimum", "shown_too_few"), [(None, False), (4, False), (5, True)]
)
def test_a_ratio_kr_shows_its_denominator_and_too_few_to_judge(tmp_path, minimum, shown_too_few):
    # won / closed deals over the KR window: Jan 1 one of one, Jan 2 none of one, Jan 3 one of
    # two: as of Jan 3, 2 of 4 = 0.5 over a denominator of 4 deals; below a minimum of 5 deals
    # the KR is too few to judge, at 4 it is judged
    ratio = {
        "id": "win_rate",
        "name": "Win rate",
        "aggregation": "ratio",
        "numerator": "won",
        "denominator": "closed",
        "unit": "ratio",
    }
    if minimum is not None:
        ratio["min_denominator"] = minimum
    results = _results(
        tmp_path,
        [csv_metric("won"), csv_metric("closed"), ratio],
        [objective("o", [key_result("kr", "win_rate", "maintain_above", target=0.4)])],
        [
            (jan(1), "won", 1),
            (jan(1), "closed", 1),
            (jan(2), "won", 0),
            (jan(2), "closed", 1),
            (jan(3), "won", 1),
            (jan(3), "closed", 2),
        ],
        jan(3),
    )
    row = _kr(results)
    assert (row["current_value"], row["denominator_value"]) == (0.5, 4)
    assert row["status"] == "on_track"  # the rules themselves do not change
    assert (row["display_status"] == "too_few_to_judge") is shown_too_few


def test_min_denominator_belongs_to_ratios(tmp_path):
    with pytest.raises(ConfigError, match="only a ratio metric has a denominator"):
        write_config(tmp_path / "c", [csv_metric("won", min_denominator=5)])
