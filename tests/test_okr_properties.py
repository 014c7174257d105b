"""Properties of the OKR math that hold for any numbers (docs/computation.md)."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from okr_fixtures import (
    STAGING_DDL,
    add_events,
    csv_metric,
    daily_rows,
    days,
    event_metric,
    jan,
    key_result,
    kr_params,
    objective,
    write_config,
)

from transforms.attainment import compute_okr_results
from transforms.calendar import quarter_from_label
from transforms.config import Settings
from transforms.measure import MetricReader
from transforms.okr import OBJECTIVE_PARAMETERS_SCHEMA, STATUSES, objective_attainment

FEW = settings(max_examples=50, deadline=None)
Q1 = quarter_from_label("2025-Q1")

number = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
values_strategy = st.lists(st.one_of(st.none(), number), min_size=1, max_size=12)
unit = st.floats(0, 1, allow_nan=False)
weight = st.floats(0.01, 100, allow_nan=False)


@FEW
@given(
    kr_type=st.sampled_from(
        ["increase", "decrease", "maintain_above", "maintain_below", "within_range", "milestone"]
    ),
    baseline=st.one_of(st.none(), number),
    target=number,
    bounds=st.tuples(number, number).filter(lambda b: b[0] < b[1]),
    values=values_strategy,
    extra_days=st.integers(0, 5),
    level=st.sampled_from([1.0, 0.7]),
    cumulative=st.booleans(),
    higher_is_better=st.booleans(),
)
def test_progress_is_within_zero_and_one_or_null(
    kr_type, baseline, target, bounds, values, extra_days, level, cumulative, higher_is_better
):
    within = kr_type == "within_range"
    params = kr_params(
        kr_type=kr_type,
        end=jan(len(values) + extra_days),
        baseline=baseline,
        target=None if within else target,
        range_=bounds if within else None,
        level=level,
        cumulative=cumulative and kr_type != "decrease",
        higher_is_better=higher_is_better,
    )
    for row in daily_rows(params, values):
        assert row["progress"] is None or 0 <= row["progress"] <= 1
        assert 0 <= row["expected_progress"] <= 1
        assert row["status"] in STATUSES
        assert (row["grade"] is None) == (row["progress"] is None)
        if row["progress"] is None:
            assert row["status"] == "no_data"
        if kr_type in ("maintain_above", "maintain_below", "within_range", "milestone"):
            assert row["raw_progress"] == row["progress"]


MIRRORS = {
    # type, its mirror, and how the bounds map: negate the data and the bounds
    "increase": "decrease",
    "maintain_above": "maintain_below",
    "milestone": "milestone",
    "within_range": "within_range",
}


@FEW
@given(
    kr_type=st.sampled_from(list(MIRRORS)),
    pair=st.tuples(number, number).filter(lambda p: p[1] - p[0] > 1e-3),
    values=values_strategy,
    level=st.sampled_from([1.0, 0.7]),
)
def test_a_mirrored_kr_on_negated_data_has_the_same_progress(kr_type, pair, values, level):
    low, high = pair
    if kr_type == "within_range":
        bounds = {"range_": (low, high)}
        mirrored = {"range_": (-high, -low)}
    else:  # increase: b = low -> t = high; the mirror decreases from -low to -high
        bounds = {"baseline": low, "target": high}
        mirrored = {"baseline": -low, "target": -high}
    original = daily_rows(kr_params(kr_type=kr_type, level=level, **bounds), values)
    mirror = daily_rows(
        kr_params(kr_type=MIRRORS[kr_type], level=level, higher_is_better=False, **mirrored),
        [None if v is None else -v for v in values],
    )
    for a, b in zip(original, mirror, strict=True):
        assert b["progress"] == pytest.approx(a["progress"], abs=1e-12)
        assert b["raw_progress"] == pytest.approx(a["raw_progress"], abs=1e-12)
        assert b["status"] == a["status"]


@settings(max_examples=25, deadline=None)
@given(
    data=st.lists(st.one_of(st.none(), st.integers(-50, 50)), min_size=10, max_size=10),
    baseline=st.integers(-50, 49),
    step=st.integers(1, 40),
)
def test_a_decrease_kr_on_negated_warehouse_data_mirrors_an_increase(data, baseline, step):
    period = (jan(1), jan(10))
    up = key_result("up", "level", baseline=baseline, target=baseline + step)
    down = key_result("down", "negated", "decrease", baseline=-baseline, target=-baseline - step)
    with tempfile.TemporaryDirectory() as folder:
        config = write_config(
            Path(folder),
            [
                csv_metric("level", "avg", window="3d"),
                csv_metric("negated", "avg", window="3d", direction="lower_is_better"),
            ],
            [objective("o", [up, down], period=period)],
        )
        con = duckdb.connect()
        con.execute(STAGING_DDL)
        for when, value in zip(days(jan(1), 10), data, strict=True):
            if value is not None:
                con.execute(
                    "INSERT INTO staging.csv_observations VALUES (?, 'level', ?, NULL), "
                    "(?, 'negated', ?, NULL)",
                    [when, value, when, -value],
                )
        daily = compute_okr_results(con, config, [Q1], jan(10)).key_result_progress_daily
    rows = {kr: daily.filter(pl.col("kr_id") == kr).sort("as_of_date") for kr in ("up", "down")}
    assert rows["up"]["progress"].to_list() == pytest.approx(rows["down"]["progress"].to_list())
    assert rows["up"]["status"].to_list() == rows["down"]["status"].to_list()


# -- objectives and the roll-up --------------------------------------------------------------


def objectives_frame(*rows):
    """(objective_id, parent_id, weight) rows, all in team product over Q1."""
    return pl.DataFrame(
        [
            {
                "objective_id": objective_id,
                "title": objective_id,
                "team": "product",
                "owner": None,
                "type": "committed",
                "parent_id": parent,
                "weight": w,
                "success_level": 1.0,
                "period_start": Q1.start,
                "period_end": Q1.end,
                "depth": 0 if parent is None else 1,
                "parent_team": None if parent is None else "product",
            }
            for objective_id, parent, w in rows
        ],
        schema=OBJECTIVE_PARAMETERS_SCHEMA,
    )


def krs_frame(objective_id, krs):
    return pl.DataFrame(
        [
            {
                "kr_id": f"kr{i}",
                "objective_id": objective_id,
                "quarter_start": Q1.start,
                "progress": p,
                "expected_progress": e,
                "weight": w,
                "status": "on_track",
            }
            for i, (p, e, w) in enumerate(krs)
        ],
        schema={
            "kr_id": pl.String,
            "objective_id": pl.String,
            "quarter_start": pl.Date,
            "progress": pl.Float64,
            "expected_progress": pl.Float64,
            "weight": pl.Float64,
            "status": pl.String,
        },
    )


kr_strategy = st.lists(st.tuples(st.one_of(st.none(), unit), unit, weight), min_size=1, max_size=6)


@FEW
@given(krs=kr_strategy, child_weight=weight)
def test_a_parent_with_one_child_and_no_krs_rolls_up_to_the_child(krs, child_weight):
    objectives = objectives_frame(("parent", None, 1.0), ("child", "parent", child_weight))
    rows = objective_attainment(objectives, krs_frame("child", krs), [Q1], jan(20), Settings())
    by_id = {row["objective_id"]: row for row in rows.to_dicts()}
    child, parent = by_id["child"], by_id["parent"]
    if child["rollup_score"] is None:
        assert parent["rollup_score"] is None
    else:
        assert parent["rollup_score"] == pytest.approx(child["rollup_score"], rel=1e-12)
        assert parent["rollup_expected_progress"] == pytest.approx(
            child["rollup_expected_progress"], rel=1e-12
        )


@FEW
@given(krs=kr_strategy)
def test_objective_score_lies_between_its_krs_progress(krs):
    rows = objective_attainment(
        objectives_frame(("o", None, 1.0)), krs_frame("o", krs), [Q1], jan(20), Settings()
    )
    score = rows["score"][0]
    scored = [p for p, _, _ in krs if p is not None]
    if not scored:
        assert score is None
        assert rows["status"][0] == "no_data"
    else:
        assert min(scored) - 1e-12 <= score <= max(scored) + 1e-12


# -- measurement against a brute-force count -------------------------------------------------

_CONFIG_DIR = Path(tempfile.mkdtemp(prefix="okr-props-"))
_DISTINCT_CONFIG = write_config(
    _CONFIG_DIR,
    [
        event_metric("users", "count_distinct", column="user_id", filter={"event": "visit"}),
        event_metric(
            "users_3d", "count_distinct", column="user_id", filter={"event": "visit"}, window="3d"
        ),
        event_metric("visits_3d", filter={"event": "visit"}, window="3d"),
    ],
)

sightings = st.lists(
    st.tuples(st.sampled_from(["visit", "other"]), st.integers(0, 13), st.sampled_from("abcd")),
    max_size=25,
)


def brute_force(rows, first_day, day_index, window):
    """Distinct visiting users and visit count over [day_index - window + 1, day_index] (or from
    first_day), with the zero/null rule: null when no source row falls in the window."""
    lo = first_day if window is None else day_index - window + 1
    inside = [r for r in rows if lo <= r[1] <= day_index]
    if not inside:
        return None, None
    visits = [r for r in inside if r[0] == "visit"]
    return len({r[2] for r in visits}), len(visits)


@FEW
@given(rows=sightings, first_day=st.integers(0, 4))
def test_distinct_counts_and_counts_match_a_brute_force_count(rows, first_day):
    con = duckdb.connect()
    con.execute(STAGING_DDL)
    add_events(
        con,
        [
            (name, f"{(jan(1) + timedelta(days=offset)).isoformat()}T12:00:00+00:00", user)
            for name, offset, user in rows
        ],
    )
    reader = MetricReader(con, _DISTINCT_CONFIG)
    first, last = jan(1) + timedelta(days=first_day), jan(14)
    metrics = _DISTINCT_CONFIG.metrics
    period = reader.series(metrics["users"], first, last)["value"].to_list()
    trailing = reader.series(metrics["users_3d"], first, last)["value"].to_list()
    counts = reader.series(metrics["visits_3d"], first, last)["value"].to_list()
    for i, day_index in enumerate(range(first_day, 14)):
        assert period[i] == brute_force(rows, first_day, day_index, None)[0]
        assert trailing[i] == brute_force(rows, first_day, day_index, 3)[0]
        assert counts[i] == brute_force(rows, first_day, day_index, 3)[1]
