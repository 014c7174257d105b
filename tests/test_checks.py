"""Asset checks: each check passes on a clean warehouse and fails on the bad data it is for, and a
failing blocking check keeps the bad data out of the layers below it in the same run.

One small project (CSV, analytics events and a report; timezone New York) is materialized once;
each test works on a copy of it. Single checks are evaluated directly on the copied warehouse;
the blocking behaviour is shown by real runs (`okr backfill` of one quarter)."""

from __future__ import annotations

import json
import shutil
import textwrap
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from connectors.analytics.extract import load_analytics_exports
from connectors.csv_drop.extract import load_csv_folder
from connectors.registry import FILE_SOURCES, SOURCES
from pipelines import checks
from pipelines.build import build_definitions
from pipelines.checks import checked_tables, checks_by_asset, quality_checks
from pipelines.checks.core import CheckInputs, QualityCheck, real_today
from pipelines.checks.tables import id_columns
from pipelines.cli import backfill
from pipelines.settings import (
    MAX_REJECT_RATE_ENV,
    SOURCE_MAX_AGE_ENV,
    ChecksSettings,
    Settings,
)
from transforms.config import load_config
from transforms.lint import MARTS_OKR_LINT

AS_OF = date(2025, 5, 15)
ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN

METRICS = """
settings: {timezone: America/New_York, fiscal_year_start_month: 1}
metrics:
  - {id: visits, name: Visits, source: csv_observations, aggregation: sum, column: value,
     filter: {metric_id: visits}}
  - {id: csat, name: CSAT, source: csv_observations, aggregation: last, column: value,
     filter: {metric_id: csat}}
  - {id: sessions, name: Sessions, source: analytics_events, aggregation: count,
     filter: {event: session_start}}
  - {id: web_users, name: Web users, source: analytics_report, aggregation: sum,
     column: active_users}
"""
OKRS = """
objectives:
  - id: grow
    title: Grow
    team: growth
    period: {start: 2025-01-01, end: 2025-06-30}
    key_results:
      - {id: kr-visits, title: Visits, metric: visits, type: increase, baseline: 0,
         target: 2000}
      - {id: kr-csat, title: CSAT, metric: csat, type: increase, baseline: 70, target: 90}
      - {id: kr-sessions, title: Sessions, metric: sessions, type: increase, baseline: 0,
         target: 10}
      - {id: kr-web-users, title: Web users, metric: web_users, type: increase, baseline: 0,
         target: 1000}
"""


def event(name: str, when: str, user: str) -> str:
    return json.dumps({"event": name, "timestamp": when, "user_id": user, "properties": {}})


def write_project(root: Path) -> Settings:
    """Visits every day of 2025 up to today, two CSAT scores, a few events (the last one on
    May 15 in New York, May 16 in UTC) and two days of a traffic report."""
    (root / "config").mkdir()
    (root / "config" / "metrics.yaml").write_text(textwrap.dedent(METRICS))
    (root / "config" / "okrs.yaml").write_text(textwrap.dedent(OKRS))
    csv_dir, analytics = root / "data" / "csv", root / "data" / "analytics"
    csv_dir.mkdir(parents=True)
    analytics.mkdir()
    days = (AS_OF - date(2025, 1, 1)).days + 1
    visits = [f"{date.fromordinal(date(2025, 1, 1).toordinal() + i)},10" for i in range(days)]
    (csv_dir / "visits.csv").write_text("date,visits\n" + "\n".join(visits) + "\n")
    (csv_dir / "csat.csv").write_text(
        "date,metric_id,value\n2025-01-01,csat,70\n2025-04-01,csat,80\n"
    )
    (analytics / "events.jsonl").write_text(
        "\n".join(
            [
                event("session_start", "2025-03-01T12:00:00Z", "u1"),
                event("session_start", "2025-05-14T12:00:00Z", "u2"),
                event("session_start", "2025-05-16T02:00:00Z", "u3"),  # May 15, 22:00 local
            ]
        )
        + "\n"
    )
    (analytics / "traffic.csv").write_text(
        "# Traffic report\n# 20250514-20250515\nDate,Active users\n20250514,100\n20250515,120\n"
    )
    return Settings(
        config_dir=root / "config",
        data_dir=root / "data",
        warehouse=root / "warehouse.duckdb",
        bi_snapshot=root / "bi.duckdb",
        as_of=AS_OF.isoformat(),
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Settings, dg.ExecuteInProcessResult]:
    settings = write_project(tmp_path_factory.mktemp("built"))
    result = backfill(settings, None, "2025-Q2", dg.DagsterInstance.ephemeral())
    assert result.success
    return settings, result


@pytest.fixture
def project(built, tmp_path: Path) -> Settings:
    """A copy of the materialized project to spoil."""
    source, _ = built
    shutil.copytree(source.config_dir, tmp_path / "config")
    shutil.copytree(source.data_dir, tmp_path / "data")
    shutil.copy(source.warehouse, tmp_path / "warehouse.duckdb")
    return Settings(
        config_dir=tmp_path / "config",
        data_dir=tmp_path / "data",
        warehouse=tmp_path / "warehouse.duckdb",
        bi_snapshot=tmp_path / "bi.duckdb",
        as_of=AS_OF.isoformat(),
    )


def sql(settings: Settings, *statements: str) -> None:
    with duckdb.connect(str(settings.warehouse)) as con:
        for statement in statements:
            con.execute(statement)


def evaluate(
    settings: Settings,
    asset: str,
    name: str,
    *,
    today: date = AS_OF,
    real: date | None = None,
    thresholds: ChecksSettings | None = None,
) -> dg.AssetCheckResult:
    """Evaluate one check as of `today`; `real` stands in for the clock's date (default: the
    clock's)."""
    [check] = [
        c
        for c in quality_checks(thresholds, FILE_SOURCES)
        if c.asset_key.to_user_string() == asset and c.name == name
    ]
    config = load_config(settings.config_dir)
    real = real or real_today(config.settings.timezone)
    with duckdb.connect(str(settings.warehouse)) as con:
        return check.evaluate(CheckInputs(con, config, today, real))


def meta(result: dg.AssetCheckResult, key: str):
    value = result.metadata[key]
    return getattr(value, "value", value)


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], object]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


MARTS = {"marts/key_result_attainment", "marts/objective_attainment", "bi/okr_snapshot"}


# -- wiring ------------------------------------------------------------------------------------


def test_every_check_runs_with_its_asset_and_passes_on_clean_data(built):
    settings, result = built
    ran = evaluations(result)
    expected = {(c.asset_key.to_user_string(), c.name) for c in quality_checks(sources=FILE_SOURCES)}
    assert set(ran) == expected
    assert [key for key, e in ran.items() if not e.passed] == []
    assert ("staging/csv_observations", "no_future_observations") in ran
    assert ("marts/key_result_attainment", "every_kr_metric_has_data") in ran


def test_every_table_asset_with_a_primary_key_gets_generic_checks(built, monkeypatch):
    settings, _ = built
    monkeypatch.setenv("CRM_API_BASE_URL", "http://127.0.0.1:9")  # the CRM assets and checks
    graph = build_definitions(
        Settings(**{**settings.__dict__, "api_sources": frozenset({"crm"})})
    ).resolve_asset_graph()
    layers = {
        table.fqn: (layer, table)
        for layer, tables in checked_tables(SOURCES).items()
        for table in tables
    }
    checked = 0
    for key in graph.get_all_asset_keys():
        table_name = graph.get(key).metadata.get("dagster/table_name")
        if table_name is None:
            continue
        # Every table asset is known to the checks: a new one cannot go unchecked by accident.
        assert table_name in layers, f"{table_name} is not in pipelines.checks"
        layer, table = layers[table_name]
        assert key == dg.AssetKey([table.schema, table.name])
        if not table.primary_key:
            continue
        for name in ("unique_key", "non_null_ids"):
            check_key = dg.AssetCheckKey(key, name)
            assert check_key in graph.asset_check_keys, (table_name, name)
            # Blocking on every layer: bad data must not reach the marts, bad marts must not be
            # published to BI.
            assert graph.get(check_key).blocking, (layer, check_key)
        checked += 1
    assert checked >= 17  # 3 raw CRM, 5 staging, 11 marts (minus tables without a key)
    for key in ("raw/crm_deals", "raw/csv_observations", "raw/analytics_events"):
        assert dg.AssetCheckKey(dg.AssetKey(key.split("/")), "freshness") in graph.asset_check_keys
    assert graph.get(
        dg.AssetCheckKey(dg.AssetKey(["staging", "crm_deals"]), "no_future_observations")
    ).blocking


def test_crm_checks_exist_only_with_a_crm():
    without = {c.asset_key.to_user_string() for c in quality_checks(sources=FILE_SOURCES)}
    with_crm = {c.asset_key.to_user_string() for c in quality_checks(sources=SOURCES)}
    assert not any("crm" in key for key in without)
    assert {"raw/crm_deals", "staging/crm_contacts"} <= with_crm


def test_a_nullable_key_column_is_not_an_id():
    # okr_lint findings about no particular quarter have quarter = NULL by design.
    assert id_columns(MARTS_OKR_LINT) == ["rule", "object_id"]


# -- unique keys and non-null ids ----------------------------------------------------------------


def test_unique_key_fails_on_a_duplicate_key(project: Settings):
    assert evaluate(project, "staging/csv_observations", "unique_key").passed
    sql(
        project,
        "INSERT INTO staging.csv_observations SELECT * FROM staging.csv_observations "
        "WHERE metric_id = 'csat' AND date = '2025-04-01'",
    )
    result = evaluate(project, "staging/csv_observations", "unique_key")
    assert not result.passed and result.severity == ERROR
    assert meta(result, "duplicate_keys") == 1 and meta(result, "duplicate_rows") == 1
    assert "2025-04-01 | csat" in meta(result, "examples")


def test_unique_key_on_a_mart_is_an_error(project: Settings):
    sql(
        project,
        "INSERT INTO marts.key_result_attainment SELECT * FROM marts.key_result_attainment "
        "WHERE kr_id = 'kr-visits'",
    )
    result = evaluate(project, "marts/key_result_attainment", "unique_key")
    assert not result.passed and result.severity == ERROR
    assert meta(result, "duplicate_keys") == 2  # kr-visits in 2025-Q1 and 2025-Q2
    assert "kr-visits" in meta(result, "examples")


def test_non_null_ids_fails_on_a_null_key_column(project: Settings):
    assert evaluate(project, "staging/csv_observations", "non_null_ids").passed
    # A table created without the NOT NULL constraint (say, by an older version) lets it in.
    sql(
        project,
        "ALTER TABLE staging.csv_observations ALTER COLUMN metric_id DROP NOT NULL",
        "INSERT INTO staging.csv_observations SELECT * REPLACE (NULL AS metric_id) "
        "FROM staging.csv_observations WHERE metric_id = 'csat'",
    )
    result = evaluate(project, "staging/csv_observations", "non_null_ids")
    assert not result.passed and result.severity == ERROR
    assert meta(result, "rows_with_null_ids") == 2
    assert meta(result, "nulls/metric_id") == 2 and meta(result, "nulls/date") == 0
    assert "csat.csv" in meta(result, "examples")  # the offending rows' file


def test_a_failing_staging_key_check_keeps_the_marts_from_running(project: Settings):
    # A duplicate left in 2025-Q1 by an earlier run still fails a run of 2025-Q2 only.
    sql(
        project,
        "INSERT INTO staging.csv_observations SELECT * FROM staging.csv_observations "
        "WHERE metric_id = 'visits' AND date = '2025-02-01'",
    )
    result = backfill(project, "2025-Q2", None, dg.DagsterInstance.ephemeral())
    assert not result.success
    check = evaluations(result)[("staging/csv_observations", "unique_key")]
    assert not check.passed and check.severity == ERROR
    assert "staging/csv_observations" in materialized(result)
    assert not MARTS & materialized(result)


# -- progress --------------------------------------------------------------------------------------


def test_progress_in_range_fails_on_progress_above_one(project: Settings):
    sql(
        project,
        "UPDATE marts.key_result_attainment SET progress = NULL WHERE kr_id = 'kr-csat'",
    )
    assert evaluate(project, "marts/key_result_attainment", "progress_in_range").passed
    sql(
        project,
        "UPDATE marts.key_result_attainment SET progress = 1.5 "
        "WHERE kr_id = 'kr-visits' AND quarter = '2025-Q1'",
    )
    result = evaluate(project, "marts/key_result_attainment", "progress_in_range")
    assert not result.passed and result.severity == ERROR
    assert meta(result, "progress_out_of_range") == 1
    assert meta(result, "expected_progress_out_of_range") == 0
    assert "kr-visits" in meta(result, "examples")


def test_progress_in_range_fails_on_a_missing_expected_progress(project: Settings):
    assert evaluate(project, "marts/key_result_progress_daily", "progress_in_range").passed
    sql(
        project,
        "UPDATE marts.key_result_progress_daily SET expected_progress = NULL "
        "WHERE kr_id = 'kr-csat' AND as_of_date = '2025-03-01'",
        "UPDATE marts.key_result_progress_daily SET expected_progress = -0.1 "
        "WHERE kr_id = 'kr-csat' AND as_of_date = '2025-03-02'",
    )
    result = evaluate(project, "marts/key_result_progress_daily", "progress_in_range")
    assert not result.passed and result.severity == ERROR
    assert meta(result, "expected_progress_out_of_range") == 2


# -- every KR's metric has data --------------------------------------------------------------------


def test_every_kr_metric_has_data_warns_naming_the_krs(project: Settings):
    assert evaluate(project, "marts/key_result_attainment", "every_kr_metric_has_data").passed
    sql(project, "DELETE FROM staging.csv_observations WHERE metric_id = 'csat'")
    result = evaluate(project, "marts/key_result_attainment", "every_kr_metric_has_data")
    assert not result.passed and result.severity == WARN
    assert "kr-csat" in result.description and "kr-visits" not in result.description
    assert meta(result, "metrics_without_data") == ["csat"]
    assert "| kr-csat | grow | csat | csv_observations |" in meta(result, "krs_without_data")


# -- no observation dated in the future --------------------------------------------------------------


def test_no_future_observations_fails_on_a_date_after_the_real_date(project: Settings):
    sql(
        project,
        "INSERT INTO staging.csv_observations SELECT * REPLACE (DATE '2025-05-16' AS date) "
        "FROM staging.csv_observations WHERE metric_id = 'csat' AND date = '2025-04-01'",
    )
    result = evaluate(project, "staging/csv_observations", "no_future_observations", real=AS_OF)
    assert not result.passed and result.severity == ERROR
    assert meta(result, "future_rows") == 1 and "2025-05-16" in meta(result, "examples")
    assert meta(result, "rows_beyond_as_of") == 0
    assert "after the real date (2025-05-15), up to 2025-05-16" in result.description
    # By the clock the row is in the past: beyond the as-of day, which the marts ignore.
    now = evaluate(project, "staging/csv_observations", "no_future_observations")
    assert now.passed
    assert (meta(now, "future_rows"), meta(now, "rows_beyond_as_of")) == (0, 1)
    assert meta(now, "as_of") == "2025-05-15" and meta(now, "real_date") > "2025-05-16"
    assert "1 rows after the as-of day (2025-05-15) are ignored by the marts" in now.description


def test_no_future_observations_counts_timestamps_by_their_local_day(project: Settings):
    insert = (
        "INSERT INTO staging.analytics_events SELECT * REPLACE "
        "(TIMESTAMPTZ '{ts}' AS timestamp) FROM staging.analytics_events LIMIT 1"
    )

    def check(real: date) -> dg.AssetCheckResult:
        return evaluate(project, "staging/analytics_events", "no_future_observations", real=real)

    # 23:59 on May 15 in New York (May 16 in UTC): today, not the future.
    sql(project, insert.format(ts="2025-05-16 03:59:00+00"))
    assert check(AS_OF).passed and meta(check(AS_OF), "rows_beyond_as_of") == 0
    # 00:30 on May 16 in New York.
    sql(project, insert.format(ts="2025-05-16 04:30:00+00"))
    result = check(AS_OF)
    assert not result.passed and meta(result, "future_rows") == 1
    # A day later by the clock it is past, and beyond the as-of day.
    later = check(date(2025, 5, 16))
    assert later.passed and (meta(later, "future_rows"), meta(later, "rows_beyond_as_of")) == (0, 1)


def test_rows_between_a_past_as_of_day_and_the_real_date_pass(project: Settings):
    """OKR_AS_OF in the past: a later row is no future data; the marts measure without it."""
    (project.data_dir / "csv" / "late.csv").write_text("date,metric_id,value\n2025-05-20,csat,95\n")
    result = backfill(project, "2025-Q2", None, dg.DagsterInstance.ephemeral())
    assert result.success
    check = evaluations(result)[("staging/csv_observations", "no_future_observations")]
    assert check.passed
    assert check.metadata["rows_beyond_as_of"].value == 1
    assert check.metadata["future_rows"].value == 0
    assert materialized(result) >= MARTS
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        assert con.execute(
            "SELECT current_value FROM marts.key_result_attainment "
            "WHERE kr_id = 'kr-csat' AND quarter = '2025-Q2'"
        ).fetchall() == [(80.0,)]


def test_a_row_dated_after_the_real_date_blocks_the_marts(project: Settings, monkeypatch):
    # The clock says May 17; May 16 is only beyond the as-of day, May 20 is in the future.
    monkeypatch.setattr(checks, "real_today", lambda timezone: date(2025, 5, 17))
    (project.data_dir / "csv" / "late.csv").write_text(
        "date,metric_id,value\n2025-05-16,csat,90\n2025-05-20,csat,95\n"
    )
    result = backfill(project, "2025-Q2", None, dg.DagsterInstance.ephemeral())
    assert not result.success
    check = evaluations(result)[("staging/csv_observations", "no_future_observations")]
    assert not check.passed and check.severity == ERROR
    assert (check.metadata["future_rows"].value, check.metadata["rows_beyond_as_of"].value) == (
        1,
        1,
    )
    assert check.metadata["real_date"].value == "2025-05-17"
    assert "| 2025-05-20 | late.csv | 3 |" in check.metadata["examples"].value
    assert {"raw/csv_observations", "staging/csv_observations"} <= materialized(result)
    assert not MARTS & materialized(result)


# -- quarantined files -------------------------------------------------------------------------------


def test_quarantined_files_warns_on_the_assets_of_the_files_kind(project: Settings):
    for asset in ("raw/csv_observations", "raw/analytics_events", "raw/analytics_report"):
        assert evaluate(project, asset, "quarantined_files").passed
    (project.data_dir / "csv" / "empty.csv").write_text("")
    (project.data_dir / "analytics" / "nodate.csv").write_text("Day,Sessions\n20250101,1\n")
    with duckdb.connect(str(project.warehouse)) as con:
        load_csv_folder(con, project.data_dir / "csv")
        load_analytics_exports(con, project.data_dir / "analytics")
    csv_check = evaluate(project, "raw/csv_observations", "quarantined_files")
    assert not csv_check.passed and csv_check.severity == WARN
    assert meta(csv_check, "quarantined_files") == 1
    assert csv_check.description.endswith(
        "empty.csv: the file is empty; expected a header line such as date,metric_id,value"
    )
    assert "| empty.csv | the file is empty;" in meta(csv_check, "files")
    report = evaluate(project, "raw/analytics_report", "quarantined_files")
    assert not report.passed and "nodate.csv: the header on line 1 has no Date column" in (
        report.description
    )
    # A report file does not feed the events table.
    assert evaluate(project, "raw/analytics_events", "quarantined_files").passed


# -- reject rate -------------------------------------------------------------------------------------


def test_a_file_with_half_its_rows_rejected_blocks_staging(project: Settings):
    (project.data_dir / "csv" / "bad.csv").write_text(
        "date,metric_id,value\n2025-05-10,csat,81\n2025-05-11,csat,eighty\n"
    )
    result = backfill(project, "2025-Q2", None, dg.DagsterInstance.ephemeral())
    assert not result.success
    check = evaluations(result)[("raw/csv_observations", "reject_rate")]
    assert not check.passed and check.severity == ERROR
    assert check.metadata["files_over_threshold"].value == 1
    assert "| bad.csv | 1 | 1 | 0.5 |" in check.metadata["files_over_threshold_list"].value
    assert "eighty" in check.metadata["examples"].value
    done = materialized(result)
    assert "raw/csv_observations" in done and "staging/csv_observations" not in done
    assert "staging/analytics_events" in done  # not downstream of the bad file
    assert not MARTS & done

    # The threshold is a setting: a rate of exactly 0.5 does not exceed 0.5.
    lenient = ChecksSettings(max_reject_rate=0.5)
    assert evaluate(project, "raw/csv_observations", "reject_rate", thresholds=lenient).passed


def test_reject_rate_names_the_first_rejected_line_of_the_worst_file(project: Settings):
    # Rejected on lines 4 and 11: as text "bad.csv:11" sorts before "bad.csv:4".
    lines = [f"2025-05-{day:02d},csat,{80 + day}" for day in range(1, 11)]
    lines[2] = "2025-05-03,csat,eighty"
    lines[9] = "2025-05-10,csat,ninety"
    (project.data_dir / "csv" / "bad.csv").write_text("date,metric_id,value\n" + "\n".join(lines))
    with duckdb.connect(str(project.warehouse)) as con:
        load_csv_folder(con, project.data_dir / "csv")
    check = evaluate(project, "raw/csv_observations", "reject_rate")
    assert not check.passed
    assert "(worst: bad.csv, 20.0%, e.g. bad.csv:4: value 'eighty' is not a number" in (
        check.description
    )


def test_reject_rate_counts_event_and_report_files_apart(project: Settings):
    for asset in ("raw/analytics_events", "raw/analytics_report"):
        assert evaluate(project, asset, "reject_rate").passed
    folder = project.data_dir / "analytics"
    (folder / "more.jsonl").write_text(
        event("session_start", "2025-05-15T12:00:00Z", "u9") + "\n{not json\n"
    )
    with duckdb.connect(str(project.warehouse)) as con:
        load_analytics_exports(con, folder)
    events = evaluate(project, "raw/analytics_events", "reject_rate")
    assert not events.passed and meta(events, "files_over_threshold") == 1
    assert evaluate(project, "raw/analytics_report", "reject_rate").passed


def test_thresholds_come_from_the_environment(monkeypatch, built):
    assert ChecksSettings.from_env({}) == ChecksSettings()
    assert ChecksSettings.from_env({MAX_REJECT_RATE_ENV: "0.2"}).max_reject_rate == 0.2
    ages = ChecksSettings.from_env({SOURCE_MAX_AGE_ENV: "csv=1,crm=7"}).source_max_age_days
    assert ages == {"csv": 1, "analytics": 2, "checkins": 7, "crm": 7}
    assert set(ChecksSettings.from_env({SOURCE_MAX_AGE_ENV: "3"}).source_max_age_days.values()) == {
        3
    }
    for bad in ({MAX_REJECT_RATE_ENV: "5%"}, {MAX_REJECT_RATE_ENV: "1.5"}):
        with pytest.raises(ValueError, match=MAX_REJECT_RATE_ENV):
            ChecksSettings.from_env(bad)
    with pytest.raises(ValueError, match="csv=2,analytics=1"):
        ChecksSettings.from_env({SOURCE_MAX_AGE_ENV: "web=2"})

    settings, _ = built
    monkeypatch.setenv(MAX_REJECT_RATE_ENV, "0.25")
    monkeypatch.setenv(SOURCE_MAX_AGE_ENV, "5")
    specs = {
        (spec.asset_key.to_user_string(), spec.name): spec
        for checks in checks_by_asset(
            Settings.from_env().checks,  # the thresholds are read with every setting
            FILE_SOURCES,
        ).values()
        for spec in map(QualityCheck.spec, checks)
    }
    assert specs[("raw/csv_observations", "reject_rate")].metadata["max_reject_rate"] == 0.25
    assert specs[("raw/analytics_report", "freshness")].metadata["max_age_days"] == 5


# -- freshness ---------------------------------------------------------------------------------------


def test_freshness_warns_when_a_source_is_older_than_its_window(project: Settings):
    assert evaluate(project, "raw/csv_observations", "freshness").passed
    stale = evaluate(project, "raw/csv_observations", "freshness", today=date(2025, 5, 18))
    assert not stale.passed and stale.severity == WARN
    assert meta(stale, "age_days") == 3 and meta(stale, "latest_data_date") == "2025-05-15"
    wider = ChecksSettings(source_max_age_days={"csv": 3, "analytics": 2, "crm": 2})
    assert evaluate(
        project, "raw/csv_observations", "freshness", today=date(2025, 5, 18), thresholds=wider
    ).passed
    # Events date by their local day: the newest is May 15 in New York.
    events = evaluate(project, "raw/analytics_events", "freshness", today=date(2025, 5, 17))
    assert events.passed and meta(events, "latest_data_date") == "2025-05-15"


def test_freshness_warns_when_a_source_metrics_read_has_no_data(project: Settings):
    sql(project, "DELETE FROM raw.analytics_report")
    result = evaluate(project, "raw/analytics_report", "freshness")
    assert not result.passed and result.severity == WARN
    assert "web_users" in result.description
