"""Real in-process Dagster materializations against a DuckDB file: the whole graph, the
partitions, the backfill command, idempotent reruns, and every mart column commented."""

from __future__ import annotations

import os
import textwrap
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.build import build_definitions
from pipelines.cli import backfill
from pipelines.settings import Settings
from transforms.tables import (
    MARTS_KEY_RESULT_ATTAINMENT,
    MARTS_OBJECTIVE_ATTAINMENT,
    MARTS_TEAM_ATTAINMENT,
)

METRICS = """
settings: {timezone: UTC, fiscal_year_start_month: 1}
metrics:
  - {id: visits, name: Visits, source: csv_observations, aggregation: sum, column: value,
     filter: {metric_id: visits}, target: {value: 1200, tolerance: 0.1}}
  - {id: csat, name: CSAT, source: csv_observations, aggregation: last, column: value,
     filter: {metric_id: csat}}
"""
OKRS = """
objectives:
  - id: company-2025
    title: Company
    team: exec
    period: {start: 2025-01-01, end: 2025-06-30}
  - id: growth-q1
    title: Grow
    team: growth
    parent: company-2025
    period: 2025-Q1
    related_metrics: [visits]
    key_results:
      - {id: kr-visits-q1, title: Visits +50%, metric: visits, type: increase, target: "+50%"}
      - {id: kr-csat-h1, title: CSAT 70 to 90, metric: csat, type: increase, baseline: 70,
         target: 90, period: {start: 2025-01-01, end: 2025-06-30}}
"""


def write_project(root: Path, as_of: str = "2025-05-15") -> Settings:
    """A config with a two-quarter KR and daily data: 10 visits a day in 2024-Q4, 12 in 2025;
    CSAT 70 on Jan 1, 80 on Apr 1."""
    (root / "config").mkdir()
    (root / "config" / "metrics.yaml").write_text(textwrap.dedent(METRICS))
    (root / "config" / "okrs.yaml").write_text(textwrap.dedent(OKRS))
    csv_dir = root / "data" / "csv"
    csv_dir.mkdir(parents=True)
    day, lines = date(2024, 10, 1), ["date,visits"]
    while day <= date(2025, 5, 15):
        lines.append(f"{day},{10 if day.year == 2024 else 12}")
        day += timedelta(days=1)
    (csv_dir / "visits.csv").write_text("\n".join(lines) + "\n")
    (csv_dir / "csat.csv").write_text(
        "date,metric_id,value\n2025-01-01,csat,70\n2025-04-01,csat,80\n"
    )
    return Settings(
        config_dir=root / "config",
        data_dir=root / "data",
        warehouse=root / "warehouse.duckdb",
        bi_snapshot=root / "bi.duckdb",
        as_of=as_of,
    )


def export(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the project's paths in the environment, where `okr` and `Settings.from_env` read them."""
    for name, value in {
        "OKR_CONFIG_DIR": settings.config_dir,
        "OKR_DATA_DIR": settings.data_dir,
        "OKR_WAREHOUSE": settings.warehouse,
        "OKR_BI_SNAPSHOT": settings.bi_snapshot,
    }.items():
        monkeypatch.setenv(name, str(value))


def process_env(settings: Settings, dagster_home: Path, **extra: str) -> dict[str, str]:
    """The environment of a separate process (`okr`, a Dagster server) running the project:
    this one minus any OKR/CRM/Dagster settings, plus the project's paths and `extra`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OKR_", "CRM_", "DAGSTER_"))
    }
    env.update(
        DAGSTER_HOME=str(dagster_home),
        OKR_CONFIG_DIR=str(settings.config_dir),
        OKR_DATA_DIR=str(settings.data_dir),
        OKR_WAREHOUSE=str(settings.warehouse),
        OKR_BI_SNAPSHOT=str(settings.bi_snapshot),
        OKR_AS_OF=str(settings.as_of),
        **extra,
    )
    return env


@pytest.fixture
def project(tmp_path: Path) -> Settings:
    return write_project(tmp_path)


def rows(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_backfill_of_four_quarters_in_one_run_computes_the_marts(project: Settings):
    # Partitions start at 2025-Q1, where the objectives start: 2024-Q3..Q4 are history only.
    result = backfill(project, "2024-Q3", "2025-Q2", dg.DagsterInstance.ephemeral())
    assert result.success
    # One run covers the four quarters: each step ran once, for the whole range.
    steps = [event.step_key for event in result.get_step_success_events()]
    assert len(steps) == len(set(steps))
    assert {"staging__csv_observations", "okr_marts"} <= set(steps)

    kr = dict(
        (row[0], row[1:])
        for row in rows(
            project,
            "SELECT kr_id || '@' || quarter, as_of_date, baseline, target, current_value, "
            "progress, expected_progress, status FROM marts.key_result_attainment",
        )
    )
    # Visits, cumulative: the baseline is the same-length window before S (Oct 3..Dec 31, 90 days
    # at 10/day) = 900, target +50% = 1350; a(Mar 31) = 90 days * 12 = 1080; p = 1080 / 1350 = 0.8; ended -> missed.
    assert kr["kr-visits-q1@2025-Q1"] == (
        date(2025, 3, 31),
        900.0,
        1350.0,
        1080.0,
        pytest.approx(0.8),
        1.0,
        "missed",
    )
    # CSAT spans Q1 and Q2. As of Mar 31: last value 70 -> p 0; expected 90/181.
    _, b, t, a, p, e, status = kr["kr-csat-h1@2025-Q1"]
    assert (b, t, a, p) == (70.0, 90.0, 70.0, 0.0)
    assert e == pytest.approx(90 / 181) and status == "off_track"
    # As of today (May 15): last value 80 -> p 0.5; expected 135/181 = 0.746; gap 0.246 -> at_risk.
    _, _, _, a, p, e, status = kr["kr-csat-h1@2025-Q2"]
    assert (a, p, status) == (80.0, 0.5, "at_risk") and e == pytest.approx(135 / 181)

    objectives = dict(
        (row[0], row[1:])
        for row in rows(
            project,
            "SELECT objective_id || '@' || quarter, score, rollup_score, status, kr_count "
            "FROM marts.objective_attainment",
        )
    )
    # growth-q1 in Q1: (0.8 + 0) / 2 = 0.4, ended below L = 1 -> missed.
    assert objectives["growth-q1@2025-Q1"] == (pytest.approx(0.4), pytest.approx(0.4), "missed", 2)
    # The company objective has no KRs: its status comes from the roll-up of its child.
    assert objectives["company-2025@2025-Q1"][:2] == (None, pytest.approx(0.4))
    # In Q2 growth-q1 does not touch the quarter, so the parent has nothing to roll up.
    assert objectives["company-2025@2025-Q2"][1:3] == (None, "no_data")

    assert rows(
        project,
        "SELECT team, score_weighted FROM marts.team_attainment "
        "WHERE quarter = '2025-Q1' ORDER BY team",
    ) == [
        ("exec", pytest.approx(0.4)),
        ("growth", pytest.approx(0.4)),
    ]
    # Burn-up history: every day of each KR window up to today, no more.
    assert rows(
        project,
        "SELECT kr_id, count(*), max(as_of_date) FROM "
        "marts.key_result_progress_daily GROUP BY kr_id ORDER BY kr_id",
    ) == [
        ("kr-csat-h1", 135, date(2025, 5, 15)),
        ("kr-visits-q1", 90, date(2025, 3, 31)),
    ]


def test_the_okr_scorecard_puts_krs_and_related_metric_health_side_by_side(project: Settings):
    assert backfill(project, "2024-Q3", "2025-Q1", dg.DagsterInstance.ephemeral()).success
    items = rows(
        project,
        "SELECT item_type, item_id, value, target, status FROM marts.okr_scorecard "
        "WHERE objective_id = 'growth-q1' AND quarter = '2025-Q1' ORDER BY sort_order",
    )
    # Visits in Q1: 90 days * 12 = 1080 against the quarter target 1200 with 10% tolerance:
    # 1080 >= 1200 - 120 -> yellow.
    assert items == [
        ("key_result", "kr-csat-h1", 70.0, 90.0, "off_track"),
        ("key_result", "kr-visits-q1", 1080.0, 1350.0, "missed"),
        ("success_metric", "visits", 1080.0, 1200.0, "yellow"),
    ]


def test_rerunning_a_quarter_is_idempotent(project: Settings):
    instance = dg.DagsterInstance.ephemeral()
    assert backfill(project, "2024-Q3", "2025-Q2", instance).success
    query = "SELECT * FROM marts.key_result_attainment ORDER BY ALL"
    first = rows(project, query)
    counts = rows(project, "SELECT count(*) FROM staging.csv_observations")
    assert backfill(project, "2025-Q1", None, instance).success
    assert rows(project, query) == first
    assert rows(project, "SELECT count(*) FROM staging.csv_observations") == counts


def test_every_mart_column_has_a_comment(project: Settings):
    assert backfill(project, "2024-Q3", "2025-Q1", dg.DagsterInstance.ephemeral()).success
    missing = rows(
        project,
        "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'marts' "
        "AND (comment IS NULL OR comment = '')",
    )
    assert missing == []
    tables = rows(
        project,
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts' "
        "AND comment IS NOT NULL ORDER BY 1",
    )
    for table in (MARTS_KEY_RESULT_ATTAINMENT, MARTS_OBJECTIVE_ATTAINMENT, MARTS_TEAM_ATTAINMENT):
        assert (table.name,) in tables


def test_partitions_follow_the_fiscal_year_and_include_the_running_quarter(tmp_path: Path):
    settings = write_project(tmp_path, as_of="2025-05-15")
    metrics = settings.config_dir / "metrics.yaml"
    metrics.write_text(
        metrics.read_text().replace("fiscal_year_start_month: 1", "fiscal_year_start_month: 2")
    )
    defs = build_definitions(settings)
    partitions = defs.resolve_implicit_global_asset_job_def().partitions_def
    keys = partitions.get_partition_keys()
    # Fiscal quarters start in Feb, May, Aug, Nov, and fiscal 2025 starts in Feb 2024: growth-q1
    # (2025-Q1) runs Feb..Apr 2024, the first quarter anything reports in. Its baseline window
    # (from Nov 2023) is staging history, built by the runs that read it: not a partition.
    assert keys[:3] == ["2024-02-01", "2024-05-01", "2024-08-01"]
    # They end with the running quarter: that of OKR_AS_OF (May..Jul 2025) when it is set ...
    assert keys[-1] == "2025-05-01"
    # ... else that of the clock.
    clock = build_definitions(replace(settings, as_of=None))
    keys = clock.resolve_implicit_global_asset_job_def().partitions_def.get_partition_keys()
    assert timedelta(0) <= date.today() - date.fromisoformat(keys[-1]) < timedelta(days=92)


def test_the_duckdb_memory_limit_comes_from_the_environment(tmp_path: Path, monkeypatch):
    export(write_project(tmp_path), monkeypatch)
    monkeypatch.setenv("OKR_DUCKDB_MEMORY_LIMIT", "300MB")
    warehouse = build_definitions(Settings.from_env()).resources["warehouse"]
    with warehouse.connect() as con:
        [(limit,)] = con.sql("SELECT current_setting('memory_limit')").fetchall()
    assert limit == "286.1 MiB"  # DuckDB shows 300 MB in binary units
    monkeypatch.delenv("OKR_DUCKDB_MEMORY_LIMIT")
    assert Settings.from_env().duckdb_memory_limit == "1GB"


def test_marts_run_on_their_own_without_staged_history_name_the_command_that_fixes_it(
    project: Settings,
):
    defs = build_definitions(project)
    job = defs.resolve_implicit_global_asset_job_def()
    everything = defs.resolve_asset_graph().get_all_asset_keys()
    raw = [key for key in everything if key.path[0] == "raw"]
    marts = [key for key in everything if key.path[0] == "marts" and "dim" not in key.path[1]]
    instance = dg.DagsterInstance.ephemeral()
    for selection, success in ((raw, True), (marts, False)):
        result = job.execute_in_process(
            asset_selection=selection,
            partition_key="2025-04-01",
            instance=instance,
            raise_on_error=False,
        )
        assert result.success is success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.user_failure_data.description
    assert message.startswith("staging.csv_observations has raw data for 2024-Q4, 2025-Q1, 2025-Q2")
    assert message.endswith("Run: okr backfill 2025-Q2 (it builds the staging history it needs)")


def test_warehouse_sql_reaches_no_file_outside_the_configured_folders(
    project: Settings, tmp_path_factory
):
    # Defence in depth for SQL built from config or data text: the pipeline's connections read
    # the input root (and write the BI snapshot's folder) but nothing else.
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.txt"
    outside.write_text("token\n")
    inside = project.data_dir / "csv" / "csat.csv"
    warehouse = build_definitions(project).resources["warehouse"]
    with warehouse.connect() as con:
        assert con.execute("SELECT count(*) FROM read_csv(?)", [str(inside)]).fetchall() == [(2,)]
        for sql in ("SELECT * FROM read_text(?)", "ATTACH ? AS elsewhere"):
            with pytest.raises(duckdb.PermissionException, match="disabled by configuration"):
                con.execute(sql, [str(outside)])
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
