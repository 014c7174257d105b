"""Alerts: the transitions `transforms.alerts.pending_alerts` finds in warehouses built by the
pipeline itself, the post to a real HTTP receiver on 127.0.0.1 (retries, refusals), the sensor's
requests, and the whole loop with the real daemon: one message per transition, none again when
the pipeline re-runs, one more for a new transition, and the webhook URL nowhere on record."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.scheduler.instigation import TickData
from test_pipeline import process_env
from ui_driver import start_process_group, stop_process_group, wait_until

import pipelines.alerts as alerts
from pipelines.alerts import ALERT_JOB, ALERT_OP
from pipelines.build import build_definitions
from pipelines.cli import backfill
from pipelines.instance import write_instance_file
from pipelines.settings import (
    ALERT_INTERVAL_ENV,
    ALERT_WEBHOOK_URL_ENV,
    INSTANCE_TEMPLATE,
    PROJECT_ROOT,
    Settings,
)
from transforms.alerts import Alert, pending_alerts, periods_back
from warehouse.sql import quote_ident

BIN = Path(sys.executable).parent
SENSOR = "okr_alerts_sensor"
METRICS = """
settings: {timezone: UTC, fiscal_year_start_month: 1}
metrics:
  - {id: orders, name: Orders, source: csv_observations, aggregation: last, column: value,
     filter: {metric_id: orders}}
  - {id: tickets, name: Tickets, source: csv_observations, aggregation: last, column: value,
     filter: {metric_id: tickets}}
  - {id: uptime, name: Uptime, source: csv_observations, aggregation: last, column: value,
     filter: {metric_id: uptime}, freshness: 3d}
  - {id: revenue, name: Revenue, source: csv_observations, aggregation: sum, column: value,
     filter: {metric_id: revenue}, unit: EUR,
     target: {value: 300, tolerance: 0.1, grain: month}}
"""
OKRS = """
objectives:
  - id: grow
    title: Grow <!channel>
    team: growth
    period: 2025-Q1
    key_results:
      - {id: kr-orders, title: Orders to 100, metric: orders, type: increase, baseline: 0,
         target: 100}
      - {id: kr-tickets, title: Tickets to 100, metric: tickets, type: increase, baseline: 0,
         target: 100}
      - {id: kr-uptime, title: Uptime to 100, metric: uptime, type: increase, baseline: 0,
         target: 100}
"""


def write_data(settings: Settings, orders_recover: tuple[date, date] | None = None) -> None:
    """Daily values from Jan 1 to Apr 30, 2025 (the marts read up to OKR_AS_OF). Every KR runs
    over 2025-Q1 from 0 to 100, so its expected progress on day d is about (d - Jan 1) / 90:
    - orders: 50, then 5 from Feb 10 (45% expected: a gap of 0.4 is off_track), except 90 on
      the days of `orders_recover` (back on_track);
    - tickets: 50, then 35 from Feb 15 (gap 0.16: at_risk), off_track from Feb 24 (gap > 0.25);
    - uptime: 60 up to Feb 10, then nothing: with a 3-day freshness, stale from Feb 14;
    - revenue: 10 a day in January (310 against the monthly target of 300: green), 2 a day
      after (red every month from February)."""
    lines = ["date,orders,tickets,uptime,revenue"]
    day = date(2025, 1, 1)
    while day <= date(2025, 4, 30):
        orders = 50 if day < date(2025, 2, 10) else 5
        if orders_recover and orders_recover[0] <= day <= orders_recover[1]:
            orders = 90
        tickets = 50 if day < date(2025, 2, 15) else 35
        uptime = 60 if day <= date(2025, 2, 10) else ""
        lines.append(f"{day},{orders},{tickets},{uptime},{10 if day.month == 1 else 2}")
        day += timedelta(days=1)
    (settings.data_dir / "csv" / "metrics.csv").write_text("\n".join(lines) + "\n")


def write_alert_project(root: Path, as_of: str = "2025-02-20") -> Settings:
    (root / "config").mkdir(parents=True)
    (root / "config" / "metrics.yaml").write_text(METRICS)
    (root / "config" / "okrs.yaml").write_text(OKRS)
    (root / "data" / "csv").mkdir(parents=True)
    settings = Settings(
        config_dir=root / "config",
        data_dir=root / "data",
        warehouse=root / "warehouse.duckdb",
        bi_snapshot=root / "bi.duckdb",
        as_of=as_of,
    )
    write_data(settings)
    return settings


def run_pipeline(settings: Settings, first: str, last: str | None = None) -> list[Alert]:
    """Backfill, then the alerts the published snapshot shows as of the run's day."""
    assert backfill(settings, first, last, dg.DagsterInstance.ephemeral()).success
    with duckdb.connect(str(settings.bi_snapshot), read_only=True) as con:
        return pending_alerts(con, date.fromisoformat(settings.as_of))


def keys(alerts: list[Alert]) -> list[str]:
    return [alert.key for alert in alerts]


# -- which transitions ---------------------------------------------------------------------------


def test_each_transition_has_one_key_that_a_rerun_keeps_and_a_new_transition_changes(
    tmp_path: Path,
):
    settings = write_alert_project(tmp_path)
    first = run_pipeline(settings, "2025-Q1")
    assert keys(first) == [
        "kr-status:kr-orders:off_track:2025-02-10",
        "kr-status:kr-tickets:at_risk:2025-02-15",
        "kpi-red:revenue:month:2025-02-01",
        "stale:uptime:2025-02-10",
    ]
    facts = {alert.key: alert.payload["okr"] for alert in first}
    orders = facts["kr-status:kr-orders:off_track:2025-02-10"]
    assert (orders["from"], orders["to"], orders["date"], orders["quarter"]) == (
        "on_track",
        "off_track",
        "2025-02-10",
        "2025-Q1",
    )
    assert orders["progress"] == pytest.approx(0.05)
    assert orders["title"] == "Orders to 100"
    tickets = facts["kr-status:kr-tickets:at_risk:2025-02-15"]
    assert (tickets["from"], tickets["to"]) == ("on_track", "at_risk")
    revenue = facts["kpi-red:revenue:month:2025-02-01"]
    # 20 days of February at 2 a day, against 20/28 of the 300 target
    assert (revenue["period"], revenue["value"], revenue["consecutive_red"]) == ("2025-02", 40, 1)
    assert revenue["health_target"] == pytest.approx(300 * 20 / 28)
    assert (revenue["from"], revenue["is_provisional"]) == ("green", True)
    [revenue_alert] = [alert for alert in first if alert.key.startswith("kpi-red:")]
    assert revenue_alert.payload["text"] == (  # values in their unit, as the page writes them
        "KPI Revenue (revenue) is red for the month 2025-02: EUR 40 against EUR 214 so far "
        "(1 month in a row, since 2025-02-01)."
    )
    uptime = facts["stale:uptime:2025-02-10"]
    assert (uptime["date"], uptime["source"], uptime["kr_ids"]) == (
        "2025-02-10",
        "csv_observations",
        ["kr-uptime"],
    )
    for alert in first:
        payload = alert.payload
        assert payload["okr"]["key"] == alert.key and payload["okr"]["kind"] == alert.kind
        assert payload["text"] == payload["blocks"][0]["text"]["text"]
        json.dumps(payload)  # plain JSON
    assert "is off track since 2025-02-10 (was on track)" in first[0].payload["text"]

    # The same data again: the same alerts, so the daemon's run keys see repeats.
    assert run_pipeline(settings, "2025-Q1") == first

    # Orders recover on Feb 21 and 22 (on_track), and fall again from Feb 23; tickets cross into
    # off_track on Feb 24. As of Feb 22 nothing new: orders is not alerting, the rest unchanged.
    write_data(settings, orders_recover=(date(2025, 2, 21), date(2025, 2, 22)))
    recovered = run_pipeline(replace(settings, as_of="2025-02-22"), "2025-Q1")
    assert set(keys(recovered)) == set(keys(first)) - {"kr-status:kr-orders:off_track:2025-02-10"}
    # As of Feb 25: two new transitions, each with a new key; the KPI streak and the stale gap
    # keep theirs.
    later = run_pipeline(replace(settings, as_of="2025-02-25"), "2025-Q1")
    assert keys(later) == [
        "kr-status:kr-orders:off_track:2025-02-23",
        "kr-status:kr-tickets:off_track:2025-02-24",
        "kpi-red:revenue:month:2025-02-01",
        "stale:uptime:2025-02-10",
    ]
    assert [a.payload["okr"]["from"] for a in later[:2]] == ["on_track", "at_risk"]


def test_restated_grades_alert_once_per_restatement_and_a_red_streak_keeps_its_start(
    tmp_path: Path,
):
    # As of Apr 10, 2025-Q1 has closed: its grades are recorded, nothing is restated. Its KRs
    # are missed (no status alert); revenue is red for February, March and April so far.
    settings = write_alert_project(tmp_path, as_of="2025-04-10")
    closed = run_pipeline(settings, "2025-Q1", "2025-Q2")
    assert keys(closed) == ["kpi-red:revenue:month:2025-02-01"]  # the streak started in Feb
    assert closed[0].payload["okr"]["consecutive_red"] == 3
    assert closed[0].payload["okr"]["period"] == "2025-04"

    # Late data for Q1: orders reached 100 on Mar 31. The KR is restated (missed, red, 5% ->
    # achieved, green, 100%), and its objective with it (mean of 5%, 35%, 60% -> of 100%, 35%,
    # 60%).
    late = settings.data_dir / "csv" / "late.csv"
    late.write_text("date,metric_id,value\n2025-03-31,orders,100\n")
    restated = run_pipeline(settings, "2025-Q1")
    assert keys(restated) == [
        "kpi-red:revenue:month:2025-02-01",
        "restated:key_result:kr-orders:2025-Q1:achieved:green:1.0000",
        "restated:objective:grow:2025-Q1:missed:yellow:0.6500",
    ]
    kr = restated[1].payload["okr"]
    assert (kr["from"], kr["to"], kr["reported"]["status"], kr["restated"]["value"]) == (
        "red",
        "green",
        "missed",
        100,
    )
    # Titles are data: shown as typed, never as Slack markup (a mention of the whole channel).
    objective = restated[2].payload
    assert objective["okr"]["title"] == "Grow <!channel>"
    assert "Grow &lt;!channel&gt;" in objective["text"] and "<!" not in objective["text"]
    assert run_pipeline(settings, "2025-Q1") == restated  # a re-run restates nothing new

    # A further correction (80 instead of 100) is a new restatement: new keys.
    late.write_text("date,metric_id,value\n2025-03-31,orders,80\n")
    assert keys(run_pipeline(settings, "2025-Q1"))[1:] == [
        "restated:key_result:kr-orders:2025-Q1:missed:green:0.8000",
        "restated:objective:grow:2025-Q1:missed:yellow:0.5833",
    ]


@pytest.mark.parametrize(
    ("grain", "start", "back", "expected"),
    [
        ("week", date(2025, 3, 3), 2, date(2025, 2, 17)),
        ("month", date(2025, 2, 1), 3, date(2024, 11, 1)),
        ("quarter", date(2025, 2, 1), 2, date(2024, 8, 1)),  # fiscal quarters starting Feb
        ("month", date(2025, 4, 1), 0, date(2025, 4, 1)),
    ],
)
def test_a_red_streak_starts_whole_periods_back(grain, start, back, expected):
    assert periods_back(grain, start, back) == expected


# -- the post -------------------------------------------------------------------------------------


class Receiver:
    """A webhook on 127.0.0.1 that records each POST (path, JSON body, when) and answers with
    the next of `answers` ((status, headers)), then 200."""

    def __init__(self, answers: list[tuple[int, dict[str, str]]] | None = None):
        self.posts: list[tuple[str, dict, float]] = []
        self.answers = list(answers or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    receiver.posts.append((self.path, json.loads(body), time.monotonic()))
                    status, headers = receiver.answers.pop(0) if receiver.answers else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def bodies(self) -> list[dict]:
        return [body for _, body, _ in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def secret_path() -> str:
    """A Slack-like webhook path, the secret of the URL, recognizable wherever it might leak."""
    return f"/services/T0/B0/secret-{uuid.uuid4().hex}"


def post_one(settings: Settings, alert: dict) -> tuple[bool, str]:
    """Runs okr_alert for `alert`: whether it succeeded, and every record of its event log."""
    job = build_definitions(settings).resolve_job_def(ALERT_JOB)
    config = {"key": alert["okr"]["key"], "kind": "kr_status", "payload_json": json.dumps(alert)}
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            run_config={"ops": {ALERT_OP: {"config": config}}},
            instance=instance,
            raise_on_error=False,
        )
        records = instance.all_logs(result.run_id)
    return result.success, "\n".join(repr(record) for record in records)


ALERT = {"text": "KR off track", "okr": {"key": "kr-status:kr:off_track:2025-02-10"}}


def test_a_snapshot_missing_a_kind_s_tables_gives_the_other_kinds(tmp_path: Path):
    """An older snapshot without the restatements view (or any mart) skips those alerts only."""
    settings = write_alert_project(tmp_path)
    full = run_pipeline(settings, "2025-Q1")
    with duckdb.connect(str(settings.bi_snapshot)) as con:
        con.execute("DROP VIEW marts.grade_restatements")
        con.execute("DROP TABLE marts.success_metric_summary")
        partial = pending_alerts(con, date.fromisoformat(settings.as_of))
    assert keys(partial) == [k for k in keys(full) if not k.startswith("kpi-red:")]
    assert pending_alerts(duckdb.connect(), date(2025, 3, 1)) == []


def test_a_5xx_answer_is_retried_and_retry_after_is_honoured(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
):
    settings = write_alert_project(tmp_path)
    path = secret_path()
    monkeypatch.setenv(ALERT_WEBHOOK_URL_ENV, receiver.url(path))
    # The 429 comes first: the backoff before a first retry is 0 s, so only Retry-After makes
    # the second post wait (after a 500 the backoff alone would wait 2 s).
    receiver.answers = [(429, {"Retry-After": "2"}), (500, {})]
    success, logs = post_one(settings, ALERT)
    assert success
    assert [(p, body) for p, body, _ in receiver.posts] == [(path, ALERT)] * 3
    first, second, _third = (at for _, _, at in receiver.posts)
    assert second - first >= 1.9  # waited as the 429 asked
    assert "answered [429, 500] first; retried" in logs
    assert path not in logs


def test_a_refused_alert_fails_the_run_naming_the_variable_not_the_url(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
):
    settings = write_alert_project(tmp_path)
    path = secret_path()
    monkeypatch.setenv(ALERT_WEBHOOK_URL_ENV, receiver.url(path))
    receiver.answers = [(403, {})]
    success, logs = post_one(settings, ALERT)
    assert not success
    assert len(receiver.posts) == 1  # a 4xx is not retried
    assert f"{ALERT_WEBHOOK_URL_ENV} answered HTTP 403 Forbidden" in logs
    assert path not in logs and "127.0.0.1" not in logs

    # Nothing listening (the receiver closed): the error's class, still not the URL.
    receiver.close()
    # (without the retries of refused connections, which back off for 14 s in all)
    monkeypatch.setattr(alerts, "RETRY", alerts.RETRY.new(total=0))
    success, logs = post_one(settings, ALERT)
    assert not success
    assert f"posting to {ALERT_WEBHOOK_URL_ENV} failed: ConnectionError" in logs
    assert path not in logs and "127.0.0.1" not in logs


# -- the sensor -----------------------------------------------------------------------------------


def tick(settings: Settings) -> dg.SensorExecutionData:
    defs = build_definitions(settings)
    context = dg.build_sensor_context(definitions=defs)
    return defs.resolve_sensor_def(SENSOR).evaluate_tick(context)


def test_the_sensor_requests_one_run_per_alert_keyed_by_its_transition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    settings = write_alert_project(tmp_path)
    monkeypatch.delenv(ALERT_WEBHOOK_URL_ENV, raising=False)
    assert ALERT_WEBHOOK_URL_ENV in (tick(settings).skip_message or "")
    url = f"https://hooks.example.com{secret_path()}"
    monkeypatch.setenv(ALERT_WEBHOOK_URL_ENV, url)
    assert "run the pipeline" in (tick(settings).skip_message or "")  # no snapshot yet

    alerts = run_pipeline(settings, "2025-Q1")
    requests = tick(settings).run_requests or []
    assert [r.run_key for r in requests] == keys(alerts)
    for request, alert in zip(requests, alerts, strict=True):
        config = request.run_config["ops"][ALERT_OP]["config"]
        assert json.loads(config["payload_json"]) == alert.payload
        assert request.tags["okr/alert_kind"] == alert.kind
        assert url not in json.dumps(request.run_config) and url not in json.dumps(request.tags)


# -- end to end: the daemon, a real receiver --------------------------------------------------------


def sensor_ticks(home: Path) -> list[tuple[str, TickData]]:
    with sqlite3.connect(home / "schedules" / "schedules.db") as con:
        found = con.execute(
            "SELECT status, tick_body FROM job_ticks WHERE type = 'SENSOR' ORDER BY id"
        ).fetchall()
    ticks = [(status, dg.deserialize_value(body, TickData)) for status, body in found]
    return [(status, data) for status, data in ticks if data.instigator_name == SENSOR]


def test_the_daemon_alerts_once_per_transition_and_never_shows_the_url(
    tmp_path: Path, receiver: Receiver
):
    started = time.monotonic()
    settings = write_alert_project(tmp_path / "project")
    home = tmp_path / "dagster_home"
    home.mkdir()
    write_instance_file(home, INSTANCE_TEMPLATE)
    with (home / "dagster.yaml").open("a") as instance_file:  # dequeue at once, for the test
        instance_file.write(
            "run_coordinator:\n  module: dagster._core.run_coordinator\n"
            "  class: QueuedRunCoordinator\n  config:\n    dequeue_interval_seconds: 1\n"
        )
    path = secret_path()
    env = process_env(
        settings,
        home,
        OKR_CACHE_DIR=str(tmp_path / "cache"),
        **{ALERT_WEBHOOK_URL_ENV: receiver.url(path), ALERT_INTERVAL_ENV: "2"},
    )
    outputs: list[str] = []

    def run(*args: str) -> None:
        done = subprocess.run(
            args, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        outputs.append(done.stdout + done.stderr)
        assert done.returncode == 0, outputs[-1]

    def settled_ticks(count: int) -> bool:
        ticks = sensor_ticks(home)
        return len(ticks) >= count and ticks[-1][0] in ("SUCCESS", "SKIPPED")

    def no_new_message_after_two_ticks(messages: int) -> None:
        after = len(sensor_ticks(home))
        wait_until(lambda: settled_ticks(after + 2), 30, "two more sensor ticks")
        assert len(receiver.posts) == messages

    run(str(BIN / "okr"), "backfill", "2025-Q1")
    run(str(BIN / "dagster"), "sensor", "start", SENSOR, "-w", "workspace.yaml")
    daemon = start_process_group(
        [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        tmp_path / "daemon.log",
        cwd=PROJECT_ROOT,
        env=env,
    )
    try:
        expected = [
            "kr-status:kr-orders:off_track:2025-02-10",
            "kr-status:kr-tickets:at_risk:2025-02-15",
            "kpi-red:revenue:month:2025-02-01",
            "stale:uptime:2025-02-10",
        ]
        wait_until(lambda: len(receiver.posts) >= 4, 60, "the first alerts", interval=0.5)
        no_new_message_after_two_ticks(4)
        assert sorted(body["okr"]["key"] for body in receiver.bodies()) == sorted(expected)
        assert {p for p, _, _ in receiver.posts} == {path}
        for body in receiver.bodies():  # Slack's fields, and the facts as data
            assert body["text"] == body["blocks"][0]["text"]["text"]
            assert body["okr"]["quarter"] == "2025-Q1"

        # The pipeline runs again on the same data: the same transitions, no new message.
        run(str(BIN / "okr"), "backfill", "2025-Q1")
        no_new_message_after_two_ticks(4)

        # Orders recover on Feb 17 and 18, and fall again from Feb 19: one new transition.
        write_data(settings, orders_recover=(date(2025, 2, 17), date(2025, 2, 18)))
        run(str(BIN / "okr"), "backfill", "2025-Q1")
        wait_until(lambda: len(receiver.posts) >= 5, 30, "the new alert", interval=0.5)
        no_new_message_after_two_ticks(5)
        assert receiver.bodies()[4]["okr"]["key"] == "kr-status:kr-orders:off_track:2025-02-19"

        with dg.DagsterInstance.from_config(str(home)) as instance:

            def finished_runs() -> list[dg.DagsterRun] | None:
                runs = instance.get_runs(dg.RunsFilter(job_name=ALERT_JOB))
                return runs if all(run.is_finished for run in runs) else None

            runs = wait_until(finished_runs, 30, "the alert runs to finish")
            assert sorted(r.tags["dagster/run_key"] for r in runs) == sorted(
                [*expected, "kr-status:kr-orders:off_track:2025-02-19"]
            )
            assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
    finally:
        stop_process_group(daemon, 20)

    # The URL's secret path is in no output, no file of the instance (runs, run config, events,
    # ticks, compute logs), and no table of the warehouse or the snapshot.
    outputs.append((tmp_path / "daemon.log").read_text(errors="replace"))
    assert not [output for output in outputs if path in output]
    assert not [f for f in home.rglob("*") if f.is_file() and path.encode() in f.read_bytes()]
    for database in (settings.warehouse, settings.bi_snapshot):
        with duckdb.connect(str(database), read_only=True) as con:
            columns = con.execute(
                "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
                "WHERE NOT internal AND data_type IN ('VARCHAR', 'JSON')"
            ).fetchall()
            for schema, table, column in columns:
                sql = (
                    f"SELECT count(*) FROM {quote_ident(schema)}.{quote_ident(table)} "
                    f"WHERE {quote_ident(column)}::VARCHAR LIKE ?"
                )
                assert con.execute(sql, [f"%{path}%"]).fetchone() == (0,), (table, column)
    print(f"end to end in {time.monotonic() - started:.1f} s")
