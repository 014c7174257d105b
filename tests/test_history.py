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


def test_raw_fingerprints_follow_every_change_of_raw_without_rescanning_it(tmp_path: Path):
    """The quarters' raw row counts and batch fingerprints come from per-batch day counts kept
    in meta.raw_batch_days; they must equal what raw holds after loads, a replaced file, rows
    removed behind the loader's back and an emptied table, for each day rule."""
    import duckdb

    from connectors.csv_drop.extract import load_csv_folder
    from connectors.csv_drop.tables import RAW_CSV_OBSERVATIONS
    from transforms.history import raw_fingerprints
    from warehouse.meta import META_RAW_BATCH_DAYS
    from warehouse.staging import RawInput

    drop = tmp_path / "csv"
    drop.mkdir()
    (drop / "a.csv").write_text("date,metric_id,value\n2025-03-31,m,1\n2025-04-01,m,2\n")
    (drop / "b.csv").write_text("date,metric_id,value\n2025-03-30,m,3\n")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_csv_folder(con, drop)
    by_date = RawInput(RAW_CSV_OBSERVATIONS, "date")
    next_day = RawInput(RAW_CSV_OBSERVATIONS, "date + ?::INTEGER", (1,))

    def rows(raw: RawInput) -> dict[date, int]:
        return {q: n for q, (n, _) in raw_fingerprints(con, raw, 1).items()}

    def batches() -> int:
        return con.execute(
            f"SELECT count(DISTINCT batch_id) FROM {META_RAW_BATCH_DAYS.fqn}"
        ).fetchone()[0]

    q1, q2 = date(2025, 1, 1), date(2025, 4, 1)
    assert rows(by_date) == {q1: 2, q2: 1}  # Mar 31 and Mar 30 in Q1, Apr 1 in Q2
    assert rows(next_day) == {q1: 1, q2: 2}  # Mar 31 + 1 day is in Q2
    assert batches() == 2
    before = raw_fingerprints(con, by_date, 1)
    assert raw_fingerprints(con, by_date, 1) == before  # nothing changed: same answer

    (drop / "b.csv").write_text("date,metric_id,value\n2025-03-30,m,3\n2025-05-01,m,4\n")
    load_csv_folder(con, drop)  # b.csv replaced: a new batch, the old one gone
    after = raw_fingerprints(con, by_date, 1)
    assert {q: n for q, (n, _) in after.items()} == {q1: 2, q2: 2}
    assert after[q1][1] != before[q1][1] and after[q2][1] != before[q2][1]
    assert rows(next_day) == {q1: 1, q2: 3}
    assert batches() == 2  # the replaced file's batch is gone for both rules

    con.execute("DELETE FROM raw.csv_observations WHERE date = '2025-04-01'")  # not by batch
    assert rows(by_date) == {q1: 2, q2: 1}
    assert rows(next_day) == {q1: 1, q2: 2}
    con.execute("DELETE FROM raw.csv_observations")
    assert raw_fingerprints(con, by_date, 1) == {}
    assert rows(next_day) == {}
    assert batches() == 0
