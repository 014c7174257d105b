"""`marts.okr_lint`: each hygiene rule fires where it should and nowhere else."""

from __future__ import annotations

from datetime import date

from okr_fixtures import csv_metric, key_result, objective, warehouse, write_config

from transforms.attainment import compute_okr_results
from transforms.calendar import quarter_from_label
from transforms.lint import LintInputs, latest_data_dates, okr_lint
from transforms.measure import MetricReader

TODAY = date(2025, 2, 15)


def findings(tmp_path) -> set[tuple[str, str, str | None]]:
    metrics = [
        csv_metric("visits", freshness="3d"),
        csv_metric("signups", freshness="30d"),
        csv_metric("orphan"),  # used by nobody
        csv_metric("empty"),  # used by a KR, never any data
    ]
    krs = [key_result(f"kr-{i}", "visits", target=100 + i, baseline=0) for i in range(6)]
    objectives = [
        objective("crowded", krs),  # six KRs
        objective(
            "lean",
            [
                key_result(
                    "kr-signups",
                    "signups",
                    baseline=0,
                    target=10,
                    period=(date(2025, 1, 1), date(2025, 6, 30)),
                ),
                key_result("kr-empty", "empty", baseline=0, target=10),
            ],
            owner=None,
        ),
        objective("hollow", []),  # neither KRs nor children
    ]
    config = write_config(tmp_path / "config", metrics, objectives)
    # visits last seen Feb 10 (5 days before today > 3d: stale); signups Feb 14 (fresh).
    con = warehouse(
        tmp_path / "w.duckdb",
        observations=[(date(2025, 2, 10), "visits", 5.0), (date(2025, 2, 14), "signups", 1.0)],
    )
    reader = MetricReader(con, config)
    results = compute_okr_results(con, config, [quarter_from_label("2025-Q1")], TODAY)
    inputs = LintInputs(
        config, results.key_result_attainment, latest_data_dates(reader, config, TODAY), TODAY
    )
    frame = okr_lint(inputs)
    assert (frame["as_of_date"] == TODAY).all()
    return {
        (rule, object_id, quarter)
        for rule, object_id, quarter in frame.select("rule", "object_id", "quarter").iter_rows()
    }


def test_each_rule_fires_exactly_where_it_should(tmp_path):
    found = findings(tmp_path)
    assert found == {
        ("too_many_krs", "crowded", None),
        ("unused_metric", "orphan", None),
        # kr-empty: the source has rows in the window but none of metric 'empty': a cumulative
        # sum is 0 then (not null), so the KR has progress 0 and is not flagged; 'orphan' is.
        ("stale_source", "visits", None),
        ("objective_without_owner", "lean", None),
        ("objective_without_krs", "hollow", None),
        ("kr_outlives_objective", "kr-signups", None),
    }


def test_a_kr_with_no_data_is_flagged_for_its_quarter(tmp_path):
    config = write_config(
        tmp_path / "config",
        [csv_metric("nps", "last")],
        [objective("o", [key_result("kr-nps", "nps", baseline=10, target=20)])],
    )
    con = warehouse(tmp_path / "w.duckdb")
    results = compute_okr_results(con, config, [quarter_from_label("2025-Q1")], TODAY)
    frame = okr_lint(
        LintInputs(
            config,
            results.key_result_attainment,
            latest_data_dates(MetricReader(con, config), config, TODAY),
            TODAY,
        )
    )
    rows = frame.filter(frame["rule"] == "kr_without_data").rows(named=True)
    assert [(r["object_id"], r["quarter"], r["severity"]) for r in rows] == [
        ("kr-nps", "2025-Q1", "warning")
    ]
    assert "metric 'nps'" in rows[0]["message"]
