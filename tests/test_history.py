"""Which history a KR reads (`transforms.history.history_start`), worked by hand: only what its
numbers read, so the partition mapping and the docs promise no quarter that is never read."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from okr_fixtures import write_config

from transforms.history import first_reported_day, history_start, lookback_quarters

Q1 = ("2025-01-01", "2025-03-31")


def config_with(tmp_path: Path, metric: dict, baseline: object):
    metric = {
        "id": "m",
        "name": "M",
        "source": "csv_observations",
        "column": "value",
        "filter": {"metric_id": "m"},
        **metric,
    }
    kr = {
        "id": "kr",
        "title": "KR",
        "metric": "m",
        "type": "increase",
        "baseline": baseline,
        "target": 100,
    }
    objective = {
        "id": "o",
        "title": "O",
        "team": "t",
        "period": {"start": Q1[0], "end": Q1[1]},
        "key_results": [kr],
    }
    return write_config(tmp_path, [metric], [objective])


@pytest.mark.parametrize(
    ("metric", "baseline", "first_day", "quarters_back"),
    [
        # Cumulative over the KR window, numeric baseline: nothing before S.
        ({"aggregation": "sum"}, 10, date(2025, 1, 1), 0),
        # A 28-day trailing window on S reads S-27..S.
        ({"aggregation": "sum", "window": "28d"}, 10, date(2024, 12, 5), 1),
        # Auto baseline of a period window: the same 90 days before S (Oct 3..Dec 31).
        ({"aggregation": "sum"}, "auto", date(2024, 10, 3), 1),
        # Auto baseline of a 28-day window: the window ending on S-1 starts on S-28.
        ({"aggregation": "avg", "window": "28d"}, "auto", date(2024, 12, 4), 1),
    ],
)
def test_a_kr_reads_only_the_history_its_numbers_need(
    tmp_path: Path, metric: dict, baseline: object, first_day: date, quarters_back: int
):
    config = config_with(tmp_path, metric, baseline)
    assert history_start(config.key_results["kr"]) == first_day
    assert lookback_quarters(config) == quarters_back
    assert first_reported_day(config) == date(2025, 1, 1)
