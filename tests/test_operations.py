"""Writer discipline and backfills as data engineers rely on them: one warehouse writer at a
time, failed runs change nothing, and a multi-quarter backfill equals quarter-by-quarter runs."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest
from test_pipeline import write_project

from pipelines.build import build_definitions
from pipelines.cli import backfill
from pipelines.instance import write_instance_file
from pipelines.resources import WAREHOUSE_POOL
from pipelines.settings import INSTANCE_TEMPLATE

MARTS = (
    "key_result_attainment",
    "key_result_progress_daily",
    "objective_attainment",
    "team_attainment",
    "metric_daily",
    "success_metric_summary",
    "okr_scorecard",
)


def dump(warehouse: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {t: con.execute(f"SELECT * FROM marts.{t} ORDER BY ALL").fetchall() for t in MARTS}


def test_every_step_that_opens_the_warehouse_is_in_the_one_slot_pool(tmp_path: Path, monkeypatch):
    settings = write_project(tmp_path)
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    for assets_def in graph.assets_defs:
        page = dg.AssetKey(["bi", "scorecard_page"]) in assets_def.keys
        expected = None if page else WAREHOUSE_POOL  # the page reads the snapshot file only
        assert {n.pool for n in assets_def.node_def.iterate_op_defs()} == {expected}, (
            assets_def.keys
        )
    home = tmp_path / "home"
    home.mkdir()
    write_instance_file(home, INSTANCE_TEMPLATE)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = dg.DagsterInstance.get()
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def test_a_run_that_fails_half_way_leaves_every_mart_as_it_was(tmp_path: Path, monkeypatch):
    settings = write_project(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    assert backfill(settings, "2024-Q3", "2025-Q2", instance).success
    before = dump(settings.warehouse)

    # New data arrives, then the marts step dies after writing part of its tables.
    (settings.data_dir / "csv" / "late.csv").write_text("date,visits\n2025-02-01,1000\n")
    from warehouse.writes import insert_frame as real_insert

    calls = {"n": 0}

    def failing_insert(con, table, frame):
        if table.schema == "marts":
            calls["n"] += 1
            if calls["n"] == 4:
                raise RuntimeError("disk full (simulated)")
        return real_insert(con, table, frame)

    monkeypatch.setattr("warehouse.writes.insert_frame", failing_insert)
    assert not backfill(settings, "2024-Q3", "2025-Q2", instance).success
    assert calls["n"] == 4  # three marts were written inside the transaction, then it failed
    assert dump(settings.warehouse) == before

    monkeypatch.undo()
    assert backfill(settings, "2024-Q3", "2025-Q2", instance).success
    assert dump(settings.warehouse) != before  # the late file counts once the run succeeds


def test_a_six_quarter_backfill_equals_quarter_by_quarter_runs(tmp_path: Path):
    (tmp_path / "one").mkdir()
    (tmp_path / "each").mkdir()
    one_run = write_project(tmp_path / "one", as_of="2026-06-15")
    by_quarter = write_project(tmp_path / "each", as_of="2026-06-15")
    # Every partition: from 2025-Q1, where the objectives start, to the as-of quarter.
    labels = [
        "2025-Q1",
        "2025-Q2",
        "2025-Q3",
        "2025-Q4",
        "2026-Q1",
        "2026-Q2",
    ]
    result = backfill(one_run, labels[0], labels[-1], dg.DagsterInstance.ephemeral())
    assert result.success
    steps = [e.step_key for e in result.get_step_success_events()]
    assert len(steps) == len(set(steps))  # one run, each step once for all six quarters
    instance = dg.DagsterInstance.ephemeral()
    for label in labels:
        assert backfill(by_quarter, label, None, instance).success
    single, separate = dump(one_run.warehouse), dump(by_quarter.warehouse)
    assert single["key_result_attainment"]  # not vacuous
    for table in MARTS:
        assert single[table] == separate[table], table
    # Re-running a quarter is idempotent.
    assert backfill(by_quarter, "2025-Q1", None, instance).success
    assert dump(by_quarter.warehouse) == separate


@pytest.mark.parametrize("label", ["2025-Q1"])
def test_rerunning_a_quarter_does_not_touch_other_quarters(tmp_path: Path, label: str):
    settings = write_project(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    assert backfill(settings, "2024-Q3", "2025-Q2", instance).success
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        written = dict(
            con.execute(
                "SELECT partition_value, written_at FROM meta.partitions "
                "WHERE table_name = 'marts.key_result_attainment'"
            ).fetchall()
        )
    assert backfill(settings, label, None, instance).success
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        after = dict(
            con.execute(
                "SELECT partition_value, written_at FROM meta.partitions "
                "WHERE table_name = 'marts.key_result_attainment'"
            ).fetchall()
        )
    changed = {k for k in after if after[k] != written[k]}
    assert changed == {"2025-01-01"}
