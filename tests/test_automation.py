"""Automation: the daily refresh of the running quarter, the quarter-close finalization and the
source-files sensor, evaluated against the real Definitions of a temporary project; one sensor
request is executed for real."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from test_pipeline import rows, write_project

import pipelines.automation as automation
from pipelines.build import build_definitions
from pipelines.cli import backfill
from pipelines.settings import Settings

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def project(root: Path, as_of: str | None = "2025-05-15") -> Settings:
    root.mkdir(parents=True, exist_ok=True)
    return write_project(root, as_of=as_of)


def with_settings(settings: Settings, **values: object) -> Settings:
    """Rewrite keys of the `settings:` line of metrics.yaml (timezone, fiscal month)."""
    metrics = settings.config_dir / "metrics.yaml"
    text = metrics.read_text()
    for key, value in values.items():
        old = {"timezone": "timezone: UTC", "fiscal_year_start_month": "fiscal_year_start_month: 1"}
        text = text.replace(old[key], f"{key}: {value}")
    metrics.write_text(text)
    return settings


def tick_schedule(defs: dg.Definitions, name: str, at: datetime) -> dg.RunRequest | str:
    context = dg.build_schedule_context(
        scheduled_execution_time=at, repository_def=defs.get_repository_def()
    )
    data = defs.resolve_schedule_def(name).evaluate_tick(context)
    if not data.run_requests:
        return data.skip_message or ""
    [request] = data.run_requests
    return request


def tick_sensor(defs: dg.Definitions, cursor: str | None) -> tuple[list[dg.RunRequest], str]:
    context = dg.build_sensor_context(cursor=cursor, definitions=defs)
    data = defs.resolve_sensor_def("source_files_sensor").evaluate_tick(context)
    return list(data.run_requests or []), data.cursor or ""


def quarters(request: dg.RunRequest) -> tuple[str, str]:
    if request.partition_key:
        assert RANGE_START not in request.tags
        return request.partition_key, request.partition_key
    return request.tags[RANGE_START], request.tags[RANGE_END]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


UTC = ZoneInfo("UTC")


# -- schedules ----------------------------------------------------------------------------------


def test_the_schedules_refresh_the_running_quarter_daily_and_finalize_the_closed_one(
    tmp_path: Path,
):
    # Without OKR_AS_OF the running quarter is the clock's, here the tick's.
    defs = build_definitions(project(tmp_path, as_of=None))
    refresh = defs.resolve_schedule_def("refresh_running_quarter")
    finalize = defs.resolve_schedule_def("finalize_closed_quarter")
    assert (refresh.cron_schedule, refresh.execution_timezone) == ("0 6 * * *", "UTC")
    assert (finalize.cron_schedule, finalize.execution_timezone) == ("0 5 1 1,4,7,10 *", "UTC")
    # Both run a job over every asset: sources, staging, marts and the BI snapshot.
    job = defs.resolve_job_def(refresh.job_name)
    assert finalize.job_name == refresh.job_name
    everything = defs.resolve_asset_graph().get_all_asset_keys()
    assert set(job.asset_layer.executable_asset_keys) == everything
    assert dg.AssetKey(["bi", "okr_snapshot"]) in everything

    may_15 = tick_schedule(defs, "refresh_running_quarter", datetime(2025, 5, 15, 6, tzinfo=UTC))
    may_16 = tick_schedule(defs, "refresh_running_quarter", datetime(2025, 5, 16, 6, tzinfo=UTC))
    jul_1 = tick_schedule(defs, "refresh_running_quarter", datetime(2025, 7, 1, 6, tzinfo=UTC))
    assert [r.partition_key for r in (may_15, may_16, jul_1)] == [
        "2025-04-01",
        "2025-04-01",
        "2025-07-01",
    ]
    assert len({r.run_key for r in (may_15, may_16, jul_1)}) == 3  # one run per day

    closed = tick_schedule(defs, "finalize_closed_quarter", datetime(2025, 7, 1, 5, tzinfo=UTC))
    assert (closed.partition_key, closed.run_key) == ("2025-04-01", "finalize-2025-04-01")
    new_year = tick_schedule(defs, "finalize_closed_quarter", datetime(2026, 1, 1, 5, tzinfo=UTC))
    assert new_year.partition_key == "2025-10-01"
    # The first partition (2025-Q1, where the objectives start) has nothing before it to finalize.
    first = tick_schedule(defs, "finalize_closed_quarter", datetime(2025, 1, 1, 5, tzinfo=UTC))
    assert isinstance(first, str) and "no quarter has closed" in first


def test_a_scheduled_run_on_an_empty_warehouse_builds_the_history_it_reads(tmp_path: Path):
    # The daily refresh of 2025-Q2 is the first run ever: it builds 2024-Q4 and 2025-Q1 staging
    # (baselines, the CSAT KR's first value) in the same run instead of failing for them.
    settings = project(tmp_path)
    defs = build_definitions(settings)
    request = tick_schedule(defs, "refresh_running_quarter", datetime(2025, 5, 15, 6, tzinfo=UTC))
    job = defs.resolve_job_def(defs.resolve_schedule_def("refresh_running_quarter").job_name)
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance, partition_key=request.partition_key, tags=request.tags
        )
        assert result.success
        assert instance.get_run_by_id(result.run_id).tags["okr/history_quarters"] == (
            "2024-Q4,2025-Q1"
        )
    assert rows(
        settings,
        "SELECT quarter, kr_id, baseline, status FROM marts.key_result_attainment ORDER BY ALL",
    ) == [("2025-Q2", "kr-csat-h1", 70.0, "at_risk")]


def test_the_schedules_follow_the_fiscal_year_and_the_timezone(tmp_path: Path):
    # A fiscal year starting in April: quarters still start in Jan/Apr/Jul/Oct, and 2025-04-01
    # is FY2026-Q1, so on April 1 the quarter just closed is FY2025-Q4 (2025-01-01).
    april = build_definitions(with_settings(project(tmp_path / "april", as_of=None), fiscal_year_start_month=4))
    assert april.resolve_schedule_def("finalize_closed_quarter").cron_schedule == "0 5 1 1,4,7,10 *"
    closed = tick_schedule(april, "finalize_closed_quarter", datetime(2025, 4, 1, 5, tzinfo=UTC))
    assert closed.partition_key == "2025-01-01"
    running = tick_schedule(april, "refresh_running_quarter", datetime(2025, 4, 2, 6, tzinfo=UTC))
    assert running.partition_key == "2025-04-01"

    # February: quarters start in Feb/May/Aug/Nov, and so does the quarter-close schedule.
    february = build_definitions(
        with_settings(project(tmp_path / "february", as_of=None), fiscal_year_start_month=2)
    )
    assert (
        february.resolve_schedule_def("finalize_closed_quarter").cron_schedule == "0 5 1 2,5,8,11 *"
    )
    closed = tick_schedule(february, "finalize_closed_quarter", datetime(2025, 5, 1, 5, tzinfo=UTC))
    assert closed.partition_key == "2025-02-01"
    running = tick_schedule(
        february, "refresh_running_quarter", datetime(2025, 4, 30, 6, tzinfo=UTC)
    )
    assert running.partition_key == "2025-02-01"

    # New York: 23:30 on June 30 local is already July 1 in UTC, but Q2 is still running there.
    new_york = build_definitions(
        with_settings(project(tmp_path / "ny", as_of=None), timezone="America/New_York")
    )
    refresh = new_york.resolve_schedule_def("refresh_running_quarter")
    assert refresh.execution_timezone == "America/New_York"
    late = datetime(2025, 6, 30, 23, 30, tzinfo=ZoneInfo("America/New_York"))
    assert tick_schedule(new_york, "refresh_running_quarter", late).partition_key == "2025-04-01"
    assert (
        tick_schedule(new_york, "refresh_running_quarter", late.astimezone(UTC)).run_key
        == "refresh-2025-06-30"
    )


# -- sensor -------------------------------------------------------------------------------------


def test_the_sensor_requests_one_run_per_new_or_changed_file_version(tmp_path: Path, monkeypatch):
    settings = write_project(tmp_path)  # as of 2025-05-15: the running quarter is 2025-04-01
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def("source_files_sensor")
    assert sensor.minimum_interval_seconds == 30
    assert sensor.job_name == "okr_source_files"
    targets = set(defs.resolve_job_def(sensor.job_name).asset_layer.executable_asset_keys)
    groups = {key.path[0] for key in targets}
    assert groups == {"raw", "staging", "marts", "bi"}
    assert dg.AssetKey(["raw", "csv_observations"]) in targets
    hashed: list[str] = []
    real_sha256 = automation.sha256
    monkeypatch.setattr(
        automation, "sha256", lambda path: hashed.append(path.name) or real_sha256(path)
    )
    csv_dir = settings.data_dir / "csv"

    # First tick: one request per file, keyed by content, for the quarters its dates touch.
    requests, cursor = tick_sensor(defs, None)
    by_file = {r.tags["okr/source_file"]: r for r in requests}
    assert set(by_file) == {"csv/visits.csv", "csv/csat.csv"}
    visits = by_file["csv/visits.csv"]
    assert visits.run_key == f"csv/visits.csv@{digest(csv_dir / 'visits.csv')[:16]}"
    # Data from Oct 2024 to today: the range starts at the first partition (2025-Q1, where the
    # objectives start); the run builds 2024-Q4 as history.
    assert quarters(visits) == ("2025-01-01", "2025-04-01")
    assert quarters(by_file["csv/csat.csv"]) == ("2025-01-01", "2025-04-01")

    # Second tick: nothing changed, nothing requested, nothing rehashed.
    hashed.clear()
    requests, cursor = tick_sensor(defs, cursor)
    assert requests == [] and hashed == []

    # Touched (new mtime) but the same bytes: rehashed, still no request.
    stat = (csv_dir / "csat.csv").stat()
    os.utime(csv_dir / "csat.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    requests, cursor = tick_sensor(defs, cursor)
    assert requests == [] and hashed == ["csat.csv"]

    # Changed: a new request with a new run key. The new version only has May data, but the
    # old one reached back to January: both versions' quarters are refreshed.
    original = (csv_dir / "csat.csv").read_text()
    (csv_dir / "csat.csv").write_text("date,metric_id,value\n2025-05-02,csat,85\n")
    [changed], cursor = tick_sensor(defs, cursor)
    assert changed.run_key == f"csv/csat.csv@{digest(csv_dir / 'csat.csv')[:16]}"
    assert changed.run_key != by_file["csv/csat.csv"].run_key
    assert quarters(changed) == ("2025-01-01", "2025-04-01")
    assert tick_sensor(defs, cursor)[0] == []

    # A new file with only running-quarter data asks for that one partition.
    (csv_dir / "late.csv").write_text("date,visits\n2025-05-10,5\n")
    [late], cursor = tick_sensor(defs, cursor)
    assert late.partition_key == "2025-04-01" and quarters(late) == ("2025-04-01", "2025-04-01")

    # Reverted: the same content gives the same run key, so the daemon treats it as a repeat.
    (csv_dir / "csat.csv").write_text(original)
    [reverted], cursor = tick_sensor(defs, cursor)
    assert reverted.run_key == by_file["csv/csat.csv"].run_key

    # A removed file leaves the cursor; the others stay.
    (csv_dir / "late.csv").unlink()
    requests, cursor = tick_sensor(defs, cursor)
    assert requests == []
    assert set(json.loads(cursor)["files"]) == {"csv/visits.csv", "csv/csat.csv"}


def test_the_sensor_watches_analytics_exports_and_reads_their_dates(tmp_path: Path):
    settings = write_project(tmp_path)
    defs = build_definitions(settings)
    _, cursor = tick_sensor(defs, None)
    analytics = settings.data_dir / "analytics" / "2025"
    analytics.mkdir(parents=True)
    # Events: 23:30 on Dec 31 at -05:00 is already Jan 1 in UTC, the config's timezone.
    events = [
        {"event": "signup", "timestamp": "2024-12-31T23:30:00-05:00", "user_id": "u1"},
        {"event": "signup", "timestamp": "2025-02-03T10:00:00Z", "user_id": "u2"},
    ]
    with gzip.open(analytics / "events.jsonl.gz", "wt") as handle:
        handle.write("\n".join(json.dumps(e) for e in events) + "\n")
    (analytics / "report.csv").write_text(
        '# Acme analytics\n# Report: traffic\n\nSessions;Date\n"1,234";20241215\n'
        "12;20250105\nTotal;\n"
    )
    (analytics / "notes.txt").write_text("not an export")
    (analytics / "nodate.csv").write_text("Day,Sessions\n2024-11-01,3\n")
    requests, cursor = tick_sensor(defs, cursor)
    by_file = {r.tags["okr/source_file"]: r for r in requests}
    assert set(by_file) == {
        "analytics/2025/events.jsonl.gz",
        "analytics/2025/report.csv",
        "analytics/2025/nodate.csv",
    }
    assert quarters(by_file["analytics/2025/events.jsonl.gz"]) == ("2025-01-01", "2025-04-01")
    assert quarters(by_file["analytics/2025/report.csv"]) == ("2025-01-01", "2025-04-01")
    # No Date column: the dates cannot be told, so only the running quarter is refreshed.
    assert by_file["analytics/2025/nodate.csv"].partition_key == "2025-04-01"
    assert tick_sensor(defs, cursor)[0] == []


def test_a_tick_over_its_time_budget_leaves_the_remaining_files_to_the_next(
    tmp_path: Path, monkeypatch
):
    defs = build_definitions(write_project(tmp_path))
    monkeypatch.setattr(automation, "TICK_BUDGET_SECONDS", -1.0)
    first, cursor = tick_sensor(defs, None)
    second, cursor = tick_sensor(defs, cursor)
    third, cursor = tick_sensor(defs, cursor)
    assert [len(first), len(second), len(third)] == [1, 1, 0]
    assert {r.tags["okr/source_file"] for r in first + second} == {
        "csv/csat.csv",
        "csv/visits.csv",
    }


def test_a_sensor_run_brings_a_new_files_rows_into_the_marts(tmp_path: Path):
    settings = write_project(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    assert backfill(settings, "2024-Q3", "2025-Q2", instance).success
    defs = build_definitions(settings)
    _, cursor = tick_sensor(defs, None)  # the shipped files are known (and loaded)
    kr_visits = (
        "SELECT current_value FROM marts.key_result_attainment "
        "WHERE kr_id = 'kr-visits-q1' AND quarter = '2025-Q1'"
    )
    assert rows(settings, kr_visits) == [(1080.0,)]

    # A correction for Feb 1, in an older quarter than the running one: 1000 visits, not 12
    # (the most recently loaded file wins for a date and metric).
    (settings.data_dir / "csv" / "promo.csv").write_text(
        "date,metric_id,value\n2025-02-01,visits,1000\n"
    )
    [request], cursor = tick_sensor(defs, cursor)
    assert quarters(request) == ("2025-01-01", "2025-04-01")
    job = defs.resolve_job_def(request.job_name or "okr_source_files")
    result = job.execute_in_process(
        instance=instance, tags=request.tags, partition_key=request.partition_key
    )
    assert result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert {
        dg.AssetKey(["raw", "csv_observations"]),
        dg.AssetKey(["staging", "csv_observations"]),
        dg.AssetKey(["marts", "key_result_attainment"]),
        dg.AssetKey(["bi", "okr_snapshot"]),
    } <= materialized
    assert rows(settings, kr_visits) == [(1080.0 - 12 + 1000,)]
    assert rows(
        settings,
        "SELECT value FROM marts.metric_daily WHERE metric_id = 'visits' AND date = '2025-02-01'",
    ) == [(1000.0,)]
    assert rows(
        settings,
        "SELECT count(*) FROM raw.loaded_files WHERE source_ref = 'promo.csv'",
    ) == [(1,)]
    assert tick_sensor(defs, cursor)[0] == []


@pytest.mark.parametrize("as_of", ["2025-05-15", None])
def test_the_sensor_refreshes_up_to_the_quarter_running_as_of_today(tmp_path: Path, as_of):
    settings = write_project(tmp_path, as_of=as_of)
    defs = build_definitions(settings)
    requests, _ = tick_sensor(defs, None)
    partitions = defs.resolve_job_def("okr_source_files").partitions_def
    running = "2025-04-01" if as_of else partitions.get_partition_keys()[-1]
    assert {quarters(r)[1] for r in requests} == {running}


def test_the_bi_outputs_follow_the_marts_declaratively(tmp_path):
    defs = build_definitions(write_project(tmp_path))
    graph = defs.resolve_asset_graph()
    for key in (dg.AssetKey(["bi", "okr_snapshot"]), dg.AssetKey(["bi", "scorecard_page"])):
        condition = graph.get(key).automation_condition
        assert condition is not None and "eager" in str(condition.get_label() or condition).lower()
