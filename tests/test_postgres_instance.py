"""The production topology on one machine: the Dagster instance in a real PostgreSQL server
(tests/pg_server.py), set up from the template `okr` selects when OKR_DAGSTER_PG_URL is set, with
the code location (`dagster code-server start`), the daemon (`dagster-daemon run`) and the
webserver (`dagster-webserver`) as separate processes, as deploy/README.md runs them.

One scenario, in order: a sensor tick queues a run that the daemon launches on the code server;
the test holds the warehouse file, so the run's first step waits inside the pool's one slot, and
its worker process is killed with SIGKILL there. The code server fails the run, the daemon's run
monitoring gives the slot back, and the step process the dead worker left behind writes nothing.
A run launched through the UI's API then takes the slot, and `okr backfill` runs in the same
instance. Every check reads PostgreSQL itself: runs, run tags, event logs, ticks, the sensor's
cursor and the pool's slots. The password never shows in a process's log, `okr`'s output, the
UI's instance page, the instance folder or the stored events.

Then the settings' mistakes: each is one line from `okr`, exit status 2, without the password."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import requests
import yaml
from dagster._core.scheduler.instigation import InstigatorState, TickData
from pg_server import PgServer, free_port, postgres_server
from test_pipeline import process_env, write_project
from ui_driver import ProcessDied, start_process_group, stop_process_group, wait_until

from pipelines.checks import quality_checks
from pipelines.cli import main
from pipelines.resources import WAREHOUSE_POOL
from pipelines.settings import (
    DAGSTER_PG_URL_ENV,
    INSTANCE_TEMPLATE,
    POSTGRES_INSTANCE_TEMPLATE,
    PROJECT_ROOT,
    Settings,
)

BIN = Path(sys.executable).parent
DEPLOY_WORKSPACE = PROJECT_ROOT / "deploy" / "workspace.yaml"
LOCATION = "okr"
REPOSITORY = "__repository__"
SENSOR = "source_files_sensor"
START_TIMEOUT = 120.0
RUN_TIMEOUT = 240.0
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
# Short intervals so the test does not wait on production timings (the template keeps them).
TEST_TIMINGS = {
    ("run_coordinator", "config", "dequeue_interval_seconds"): 1,
    ("run_monitoring", "poll_interval_seconds"): 1,
    ("run_monitoring", "free_slots_after_run_end_seconds"): 5,
}


@dataclass
class Deployment:
    pg: PgServer
    settings: Settings
    home: Path
    root: Path
    env: dict[str, str] = field(repr=False)  # holds the password
    processes: dict[str, subprocess.Popen]
    webserver_url: str
    outputs: list[str] = field(default_factory=list, repr=False)
    """What `okr` printed, for the check that no output holds the password."""

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n{self.log(name)[-4000:]}" for name in self.processes)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise ProcessDied(f"{name} exited with {process.returncode}\n{self.logs()}")

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(
            f"{self.webserver_url}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=30,
        )
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), f"GraphQL errors: {body['errors']}"
        return body["data"]

    def okr(self, *args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(BIN / "okr"), *args],
            cwd=PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.outputs.append(result.stdout + result.stderr)
        return result

    def run_statuses(self, run_ids: list[str]) -> dict[str, str]:
        rows = self.pg.query("SELECT run_id, status FROM runs WHERE run_id = ANY(%s)", (run_ids,))
        return dict(rows)

    def wait_for_runs(self, run_ids: list[str], what: str) -> dict[str, str]:
        def finished() -> dict[str, str] | None:
            self.check_alive()
            statuses = self.run_statuses(run_ids)
            done = len(statuses) == len(run_ids) and set(statuses.values()) <= TERMINAL
            return statuses if done else None

        try:
            return wait_until(finished, RUN_TIMEOUT, what, interval=1.0)
        except TimeoutError as error:
            raise AssertionError(f"{error}: {self.run_statuses(run_ids)}\n{self.logs()}") from None

    def event_types(self, run_id: str) -> list[str]:
        """The run's Dagster events in order (log messages, which have no type, left out)."""
        rows = self.pg.query(
            "SELECT dagster_event_type FROM event_logs "
            "WHERE run_id = %s AND dagster_event_type IS NOT NULL ORDER BY id",
            (run_id,),
        )
        return [event_type for (event_type,) in rows]

    def slot_holders(self) -> set[str]:
        rows = self.pg.query(
            "SELECT run_id FROM concurrency_slots "
            "WHERE concurrency_key = %s AND run_id IS NOT NULL AND NOT deleted",
            (WAREHOUSE_POOL,),
        )
        return {run_id for (run_id,) in rows}


def _process_env(settings: Settings, home: Path, pg_url: str) -> dict[str, str]:
    return process_env(
        settings, home, OKR_CACHE_DIR=os.environ["OKR_CACHE_DIR"], **{DAGSTER_PG_URL_ENV: pg_url}
    )


def _test_instance_config(home: Path) -> None:
    """The template as shipped, with TEST_TIMINGS instead of its production intervals."""
    config = yaml.safe_load(POSTGRES_INSTANCE_TEMPLATE.read_text())
    for path, value in TEST_TIMINGS.items():
        node = config
        for key in path[:-1]:
            node = node[key]
        assert path[-1] in node, f"the template has no {'.'.join(path)}"
        node[path[-1]] = value
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def deployment(pg: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("pg_deployment")
    (root / "project").mkdir()
    settings = write_project(root / "project")
    # One source file, so the sensor's tick requests one run.
    (settings.data_dir / "csv" / "csat.csv").unlink()
    home = root / "dagster_home"
    home.mkdir()
    _test_instance_config(home)
    env = _process_env(settings, home, pg.url)
    code_port, web_port = free_port(), free_port()
    # The shipped workspace of the daemon and the webserver, pointed at this code server's port.
    workspace = yaml.safe_load(DEPLOY_WORKSPACE.read_text())
    [server] = [entry["grpc_server"] for entry in workspace["load_from"]]
    assert server == {"host": "localhost", "port": 4000, "location_name": LOCATION}
    server.update(host="127.0.0.1", port=code_port)
    (root / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    with ExitStack() as cleanup:
        processes: dict[str, subprocess.Popen] = {}

        def start(name: str, args: list[str], cwd: Path) -> None:
            processes[name] = start_process_group(args, root / f"{name}.log", cwd=cwd, env=env)
            cleanup.callback(stop_process_group, processes[name], 20, signal.SIGINT)

        started = time.monotonic()
        start(
            "code_server",
            [
                str(BIN / "dagster"),
                "code-server",
                "start",
                "-m",
                "pipelines.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(code_port),
                "--location-name",
                LOCATION,
            ],
            PROJECT_ROOT,
        )
        deployment = Deployment(
            pg, settings, home, root, env, processes, f"http://127.0.0.1:{web_port}"
        )
        from dagster._grpc.client import DagsterGrpcClient

        def code_server_serving() -> bool:
            deployment.check_alive()
            socket.create_connection(("127.0.0.1", code_port), timeout=1).close()
            client = DagsterGrpcClient(port=code_port, host="127.0.0.1")
            return client.health_check_query() == "SERVING"

        wait_until(code_server_serving, START_TIMEOUT, "the code server", interval=0.5)
        start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], root)
        start(
            "webserver",
            [
                str(BIN / "dagster-webserver"),
                "-w",
                "workspace.yaml",
                "-h",
                "127.0.0.1",
                "-p",
                str(web_port),
            ],
            root,
        )

        def location_loaded() -> bool:
            deployment.check_alive()
            entries = deployment.graphql(
                """{ workspaceOrError { ... on Workspace { locationEntries {
                     name loadStatus locationOrLoadError { __typename } } } } }"""
            )["workspaceOrError"]["locationEntries"]
            return [(e["name"], e["locationOrLoadError"]["__typename"]) for e in entries] == [
                (LOCATION, "RepositoryLocation")
            ]

        wait_until(location_loaded, START_TIMEOUT, "the webserver to load the code location")

        def daemons_running() -> bool:
            deployment.check_alive()
            statuses = deployment.graphql(
                "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"
            )["instance"]["daemonHealth"]["allDaemonStatuses"]
            healthy = {status["daemonType"] for status in statuses if status["healthy"]}
            return {"SENSOR", "QUEUED_RUN_COORDINATOR", "MONITORING"} <= healthy

        wait_until(daemons_running, START_TIMEOUT, "the daemons' heartbeats", interval=1.0)
        print(f"code server, daemon and webserver up in {time.monotonic() - started:.1f} s")
        yield deployment


# -- the instance file ----------------------------------------------------------------------------


def test_the_templates_differ_only_where_past_one_machine_needs_it():
    sqlite = yaml.safe_load(INSTANCE_TEMPLATE.read_text())
    postgres = yaml.safe_load(POSTGRES_INSTANCE_TEMPLATE.read_text())
    assert postgres["storage"] == {"postgres": {"postgres_url": {"env": DAGSTER_PG_URL_ENV}}}
    assert postgres["run_coordinator"]["class"] == "QueuedRunCoordinator"
    # The warehouse's one slot, per step, as on one machine.
    assert postgres["concurrency"]["pools"]["default_limit"] == 1
    assert sqlite["concurrency"]["pools"]["default_limit"] == 1
    assert postgres["concurrency"]["pools"]["granularity"] == "op"
    assert postgres["run_monitoring"]["enabled"] is True
    # a dead run's slot comes back on both
    for template in (sqlite, postgres):
        assert template["run_monitoring"]["enabled"] is True
        assert template["run_monitoring"]["free_slots_after_run_end_seconds"] > 0


def test_the_instance_folder_holds_no_password(deployment: Deployment):
    for path in deployment.home.rglob("*"):
        if path.is_file():
            assert deployment.pg.password not in path.read_text(errors="replace"), path


# -- a sensor tick, through the queue, to a worker that is killed -------------------------------

START_SENSOR = """
mutation Start($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) {
    __typename
    ... on Sensor { id sensorState { status selectorId } }
    ... on PythonError { message }
  }
}
"""
STOP_SENSOR = """
mutation Stop($id: String!, $selectorId: String!) {
  stopSensor(id: $id, jobSelectorId: $selectorId) { __typename }
}
"""


def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rpartition(")")[2].split()[1])
        chain.append(pid)
    return chain


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError):
            continue
        if parent == pid:
            children.append(int(stat.parent.name))
    return children


def _running(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (an orphan PID 1 has not reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_a_sensor_tick_queues_a_run_whose_killed_worker_fails_it_and_frees_its_slot(
    deployment: Deployment,
):
    # The test holds the warehouse file, so the run's first warehouse step waits inside the
    # pool's one slot (a step that finds the file held waits for it), where it is killed.
    holder = duckdb.connect(str(deployment.settings.warehouse))
    try:
        started = time.monotonic()
        selector = {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "sensorName": SENSOR,
        }
        sensor = deployment.graphql(START_SENSOR, {"selector": selector})["startSensor"]
        assert sensor["__typename"] == "Sensor", sensor
        assert sensor["sensorState"]["status"] == "RUNNING"

        # The daemon ticks the sensor (the first tick comes at once): one run for the file.
        def successful_tick() -> list[str] | None:
            deployment.check_alive()
            for status, body in deployment.pg.query(
                "SELECT status, tick_body FROM job_ticks WHERE type = 'SENSOR' ORDER BY id"
            ):
                tick = dg.deserialize_value(body, TickData)
                if tick.instigator_name == SENSOR and status == "SUCCESS" and tick.run_ids:
                    return list(tick.run_ids)
            return None

        [run_id] = wait_until(successful_tick, RUN_TIMEOUT, "a sensor tick with a run", 1.0)
        # The sensor's cursor, in its instigator state in PostgreSQL, names the file. The daemon
        # records the tick before it saves the cursor, so wait for it, and stop the sensor only
        # then (stopping rewrites the state it read).
        def cursor() -> str | None:
            for (body,) in deployment.pg.query(
                "SELECT instigator_body FROM instigators WHERE instigator_type = 'SENSOR'"
            ):
                state = dg.deserialize_value(body, InstigatorState)
                if state.instigator_name == SENSOR and state.instigator_data is not None:
                    return state.instigator_data.cursor
            return None

        saved = wait_until(cursor, RUN_TIMEOUT, "the sensor's cursor in PostgreSQL", 0.5)
        assert "csv/visits.csv" in saved
        deployment.graphql(
            STOP_SENSOR, {"id": sensor["id"], "selectorId": sensor["sensorState"]["selectorId"]}
        )
        tags = dict(
            deployment.pg.query("SELECT key, value FROM run_tags WHERE run_id = %s", (run_id,))
        )
        assert tags["dagster/sensor_name"] == SENSOR
        assert re.fullmatch(r"csv/visits\.csv@[0-9a-f]{16}", tags["dagster/run_key"]), tags


        # Queued, dequeued by the daemon, started by the code server: it holds the slot.
        def holding_the_slot() -> bool:
            deployment.check_alive()
            return run_id in deployment.slot_holders()

        wait_until(holding_the_slot, RUN_TIMEOUT, f"run {run_id} to take the warehouse slot")

        def waiting_for_the_file() -> bool:  # its step process logged that the file is held
            deployment.check_alive()
            return deployment.pg.query(
                "SELECT count(*) FROM event_logs WHERE run_id = %s AND event LIKE %s",
                (run_id, f"%{deployment.settings.warehouse} is held by%"),
            ) != [(0,)]

        wait_until(waiting_for_the_file, RUN_TIMEOUT, f"run {run_id}'s step to wait for the file")
        print(f"sensor started to run holding the slot: {time.monotonic() - started:.1f} s")
        lifecycle = [
            event
            for event in deployment.event_types(run_id)
            if event.startswith("PIPELINE_")  # run events keep their old names in storage
        ]
        assert lifecycle == [
            dg.DagsterEventType.RUN_ENQUEUED.value,
            dg.DagsterEventType.RUN_STARTING.value,  # launched by the daemon's run queue
            dg.DagsterEventType.RUN_START.value,  # in a worker process of the code server
        ], lifecycle
        assert deployment.run_statuses([run_id]) == {run_id: "STARTED"}

        # SIGKILL its worker process: a process this test started, a child of its code server.
        [(event,)] = deployment.pg.query(
            "SELECT event FROM event_logs WHERE run_id = %s AND event LIKE %s",
            (run_id, "%Started process for run (pid: %"),
        )
        pid = int(re.search(r"Started process for run \(pid: (\d+)\)", event).group(1))
        assert deployment.processes["code_server"].pid in _ancestors(pid), pid
        left_behind = _children(pid)  # the step process waiting for the file outlives it
        assert left_behind, f"run worker {pid} has no step process"
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)

        # The code server that started the worker sees it die and fails the run...
        statuses = deployment.wait_for_runs([run_id], f"run {run_id} to be marked failed")
        assert statuses == {run_id: "FAILURE"}
        said = deployment.pg.query(
            "SELECT count(*) FROM event_logs WHERE run_id = %s AND event LIKE %s",
            (run_id, "%terminated by signal 9 (SIGKILL)%"),
        )
        assert said == [(1,)], deployment.event_types(run_id)
        assert run_id in deployment.slot_holders()  # not yet given back: that is the daemon's

        # ...and the daemon's run monitoring gives its slot back.
        def slot_free() -> bool:
            deployment.check_alive()
            return run_id not in deployment.slot_holders()

        wait_until(slot_free, 60, f"the daemon to free the slot of run {run_id}")
        print(f"killed worker to failed run and free slot: {time.monotonic() - killed_at:.1f} s")
    finally:
        holder.close()

    # The step process of the dead run gets the file now, sees its run ended and writes nothing.
    def step_refused() -> bool:
        return deployment.pg.query(
            "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = %s "
            "AND event LIKE %s",
            (run_id, dg.DagsterEventType.STEP_FAILURE.value, "%has already ended (FAILURE%"),
        ) == [(1,)]

    wait_until(step_refused, 90, f"the step run {run_id} left behind to give up")
    wait_until(
        lambda: not any(_running(process) for process in left_behind),
        60,
        f"the processes run {run_id} left behind ({left_behind}) to end",
    )
    assert dg.DagsterEventType.ASSET_MATERIALIZATION.value not in deployment.event_types(run_id)
    with duckdb.connect(str(deployment.settings.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)


# -- the next runs take the slot -----------------------------------------------------------------

LAUNCH = """
mutation Launch($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { id } }
    ... on PythonError { message }
  }
}
"""
RAW_CSV = ["raw", "csv_observations"]


def test_a_run_launched_from_the_ui_is_queued_and_takes_the_freed_slot(deployment: Deployment):
    started = time.monotonic()
    params = {
        "mode": "default",
        "runConfigData": "{}",
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "2025-04-01"}]},
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "pipelineName": "__ASSET_JOB",
            "assetSelection": [{"path": RAW_CSV}],
            # as the UI sends it: an asset with the checks its step runs
            "assetCheckSelection": [
                {"assetKey": {"path": RAW_CSV}, "name": item.name}
                for item in quality_checks()
                if item.asset_key.path == RAW_CSV
            ],
        },
    }
    launched = deployment.graphql(LAUNCH, {"executionParams": params})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["id"]
    statuses = deployment.wait_for_runs([run_id], f"run {run_id}")
    assert statuses == {run_id: "SUCCESS"}, deployment.logs()
    print(f"a queued one-asset run: {time.monotonic() - started:.1f} s")
    events = deployment.event_types(run_id)
    assert dg.DagsterEventType.RUN_ENQUEUED.value in events
    assert dg.DagsterEventType.ASSET_MATERIALIZATION.value in events
    assert run_id not in deployment.slot_holders()
    with duckdb.connect(str(deployment.settings.warehouse), read_only=True) as con:
        [(rows,)] = con.execute("SELECT count(*) FROM raw.csv_observations").fetchall()
    assert rows > 0


RUNS = """{ runsOrError { ... on Runs { results { runId status } } } }"""


def test_okr_backfill_runs_in_the_postgres_instance_and_the_ui_shows_it(deployment: Deployment):
    started = time.monotonic()
    result = deployment.okr("backfill", "2025-Q1", "2025-Q2")
    assert result.returncode == 0, result.stdout + result.stderr + deployment.logs()
    print(f"okr backfill against PostgreSQL: {time.monotonic() - started:.1f} s")
    # Nothing was left for okr to clean up or wait for: the daemon had freed the dead run's slot.
    assert "died without finishing" not in result.stderr
    assert "waiting for run" not in result.stderr
    [run_id] = re.findall(r"okr: run (\S+) materialized", result.stdout)
    assert deployment.run_statuses([run_id]) == {run_id: "SUCCESS"}
    events = deployment.event_types(run_id)
    assert events.count(dg.DagsterEventType.ASSET_MATERIALIZATION.value) > 10, events
    # It runs in okr's process, not through the queue, but in the same pool.
    assert dg.DagsterEventType.RUN_ENQUEUED.value not in events
    assert run_id not in deployment.slot_holders()
    runs = deployment.graphql(RUNS)["runsOrError"]["results"]
    assert {"runId": run_id, "status": "SUCCESS"} in runs


# -- the password stays secret -------------------------------------------------------------------


def test_no_log_page_or_table_shows_the_password(deployment: Deployment):
    password = deployment.pg.password
    for name in deployment.processes:
        assert password not in deployment.log(name), name
    for output in deployment.outputs:
        assert password not in output
    info = deployment.graphql("{ instance { info } }")["instance"]["info"]
    assert "run_storage: PostgresRunStorage" in info  # the UI's instance page
    assert password not in info
    for table, column in (("event_logs", "event"), ("runs", "run_body")):
        leaks = deployment.pg.query(
            f"SELECT count(*) FROM {table} WHERE {column} LIKE %s", (f"%{password}%",)
        )
        assert leaks == [(0,)], table


# -- settings mistakes: one line, exit status 2, no password -----------------------------------


@pytest.fixture
def okr_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`okr` in this process (as test_cli runs it) over a small project, with the instance
    folder and the PostgreSQL URL given (None: unset), expecting exit status 2."""
    settings = write_project(tmp_path)

    def run(url: str | None, home: Path | None = None) -> None:
        for name, value in _process_env(settings, home or tmp_path / "dagster_home", "").items():
            if name.startswith(("OKR_", "DAGSTER_")):
                monkeypatch.setenv(name, value)
        if url is None:
            monkeypatch.delenv(DAGSTER_PG_URL_ENV)
        else:
            monkeypatch.setenv(DAGSTER_PG_URL_ENV, url)
        assert main(["backfill", "2025-Q1"]) == 2

    return run


def _one_line(capsys: pytest.CaptureFixture) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("okr: "), captured.err
    return lines[0]


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://okr:s3cret-pw@db.example:5432/dagster", "write postgresql+psycopg2://"),
        ("mysql://okr:s3cret-pw@db.example/dagster", "does not start with postgresql+psycopg2://"),
        ("postgresql+psycopg2://okr:s3cret-pw@db.example:port/dagster", "port does not parse"),
        ("postgresql+psycopg2://okr:s3cret-pw@db.example:5432", "names no database"),
        ("s3cret-pw", "does not start with postgresql+psycopg2://"),
    ],
)
def test_a_malformed_url_is_one_line_naming_the_setting(
    okr_env, capsys, tmp_path: Path, url: str, said: str
):
    okr_env(url)
    line = _one_line(capsys)
    assert line.startswith(f"okr: {DAGSTER_PG_URL_ENV} is not a PostgreSQL URL: ")
    assert said in line and "s3cret-pw" not in line
    assert not (tmp_path / "dagster_home").exists()  # nothing was set up


def test_a_server_that_does_not_answer_is_one_line(okr_env, capsys):
    okr_env(f"postgresql+psycopg2://okr:s3cret-pw@127.0.0.1:{free_port()}/dagster")
    line = _one_line(capsys)
    assert line.startswith(f"okr: {DAGSTER_PG_URL_ENV}: cannot connect to PostgreSQL at 127.0.0.1:")
    assert "Connection refused" in line and "s3cret-pw" not in line


def test_a_wrong_password_is_one_line_without_it(okr_env, capsys, pg: PgServer):
    okr_env(pg.url.replace(pg.password, "not-the-s3cret"))
    line = _one_line(capsys)
    assert "password authentication failed" in line and "not-the-s3cret" not in line


def test_a_sqlite_instance_is_not_switched_to_postgres(
    okr_env, capsys, tmp_path: Path, pg: PgServer
):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(INSTANCE_TEMPLATE, home / "dagster.yaml")
    okr_env(pg.url, home)
    line = _one_line(capsys)
    assert f"{DAGSTER_PG_URL_ENV} is set, but the instance in {home} keeps its runs on this" in line
    assert (home / "dagster.yaml").read_bytes() == INSTANCE_TEMPLATE.read_bytes()


def test_a_postgres_instance_without_the_url_is_one_line(okr_env, capsys, tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(POSTGRES_INSTANCE_TEMPLATE, home / "dagster.yaml")
    okr_env(None, home)
    line = _one_line(capsys)
    assert f"reads {DAGSTER_PG_URL_ENV} from the environment, which is unset" in line


def test_a_new_instance_folder_gets_the_postgres_template_when_the_url_is_set(
    tmp_path: Path, pg: PgServer
):
    env = _process_env(write_project(tmp_path), tmp_path / "dagster_home", pg.url)
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.instance"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    home = Path(result.stdout.strip())
    assert home == tmp_path / "dagster_home"
    assert (home / "dagster.yaml").read_bytes() == POSTGRES_INSTANCE_TEMPLATE.read_bytes()
    del env[DAGSTER_PG_URL_ENV]
    env["DAGSTER_HOME"] = str(tmp_path / "sqlite_home")
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.instance"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "sqlite_home")
    written = yaml.safe_load((tmp_path / "sqlite_home" / "dagster.yaml").read_text())
    template = yaml.safe_load(INSTANCE_TEMPLATE.read_text())
    assert written["storage"]["custom"]["config"]["base_dir"] == str(tmp_path / "sqlite_home")
    assert {**written, "storage": None} == {**template, "storage": None}
