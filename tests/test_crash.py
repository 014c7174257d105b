"""A killed run blocks nothing: `okr` is SIGKILLed (OOM killer, node loss) in the middle of a step
that holds the warehouse pool's one slot; the next `okr` says so in one line, releases the slot,
marks the dead run failed and finishes. SIGTERM (and Ctrl-C) stop `okr` cleanly. Real processes,
real signals, the real persistent instance."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from pipelines.cli import HOST_TAG, PID_TAG, interrupted, wait_for_the_warehouse_pool
from pipelines.instance import write_instance_file
from pipelines.resources import WAREHOUSE_POOL, WarehouseResource
from pipelines.settings import EXAMPLE_AS_OF, EXAMPLE_DIR, INSTANCE_TEMPLATE, PROJECT_ROOT

MID_STEP = "staging__csv_observations - staging.csv_observations"  # logged inside the step


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The example (without its CRM) in a temp warehouse and a temp persistent instance."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OKR_", "CRM_", "DAGSTER_"))},
        "OKR_CONFIG_DIR": str(EXAMPLE_DIR),
        "OKR_DATA_DIR": str(EXAMPLE_DIR / "data"),
        "OKR_AS_OF": EXAMPLE_AS_OF,
        "OKR_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "OKR_BI_SNAPSHOT": str(tmp_path / "okr_bi.duckdb"),
        "OKR_CACHE_DIR": os.environ["OKR_CACHE_DIR"],
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }


def okr(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def interrupt_mid_step(process: subprocess.Popen, signum: int) -> list[str]:
    """Send `signum` once the run is inside a step holding the warehouse slot; the lines so far."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if MID_STEP in line:
            process.send_signal(signum)
            return lines
    pytest.fail("the run never reached its staging step:\n" + "".join(lines[-20:]))


def finish(process: subprocess.Popen, timeout: float) -> tuple[int, str]:
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"okr did not finish within {timeout} s (stuck on a dead run's slot?)")
    return process.returncode, out


def test_after_a_sigkill_mid_step_the_next_run_releases_the_slot_and_finishes(env):
    killed = okr(env, "backfill")
    interrupt_mid_step(killed, signal.SIGKILL)
    killed.wait()
    returncode, out = finish(okr(env, "backfill", "2026-Q4"), timeout=300)
    assert returncode == 0, out
    died = [line for line in out.splitlines() if "died without finishing" in line]
    assert died == [
        f"okr: run {died[0].split()[2]} (PID {killed.pid}) died without finishing: marked it "
        "failed and released its hold on the warehouse"
    ]
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        statuses = {run.tags[PID_TAG]: run.status for run in instance.get_runs()}
        pool = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
        assert not pool.active_run_ids
    assert statuses[str(killed.pid)] == dg.DagsterRunStatus.FAILURE
    assert list(statuses.values()).count(dg.DagsterRunStatus.SUCCESS) == 1


def test_sigterm_stops_okr_in_one_line_and_the_next_run_is_not_blocked(env):
    stopped = okr(env, "backfill")
    interrupt_mid_step(stopped, signal.SIGTERM)
    returncode, out = finish(stopped, timeout=60)
    assert returncode == 130, out
    assert out.splitlines()[-1].startswith("okr: stopped; every table is as it was")
    returncode, out = finish(okr(env, "backfill", "2026-Q4"), timeout=300)
    assert returncode == 0, out
    assert "died without finishing" not in out and "waiting for run" not in out


def test_a_run_waits_for_a_live_holder_saying_so_and_goes_once_it_is_gone(tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    write_instance_file(home, INSTANCE_TEMPLATE)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.create_run_for_job(
            dg.GraphDefinition("other_run").to_job(),
            tags={PID_TAG: str(holder.pid), HOST_TAG: socket.gethostname()},
        )
        instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
        instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, run.run_id, "step")
        threading.Timer(1.0, holder.kill).start()
        started = time.monotonic()
        wait_for_the_warehouse_pool(instance, poll=0.1)
        assert time.monotonic() - started >= 1.0  # it waited while the holder lived
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    holder.wait()
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"okr: waiting for run {run.run_id} to finish with the warehouse (Ctrl-C to stop)",
        f"okr: run {run.run_id} (PID {holder.pid}) died without finishing: marked it failed and "
        "released its hold on the warehouse",
    ]


def test_an_interrupt_during_a_warehouse_query_stops_the_run_not_just_the_step(tmp_path):
    """DuckDB reports Ctrl-C/SIGTERM mid-query as a plain error; the run must still stop, not
    fail that step and go on with the next one (in-process, steps run in key order)."""
    warehouse = WarehouseResource(path=str(tmp_path / "warehouse.duckdb"))

    @dg.asset
    def a_slow_query(warehouse: WarehouseResource) -> None:
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        with warehouse.connect() as con:
            con.execute("SELECT count(*) FROM range(10_000_000_000) t(x) WHERE x % 7 = 3")

    @dg.asset
    def b_independent_step() -> None:
        pass

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [a_slow_query, b_independent_step],
            resources={"warehouse": warehouse},
            instance=instance,
            raise_on_error=False,
        )
        assert interrupted(result)
        assert instance.get_latest_materialization_event(b_independent_step.key) is None
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.FAILURE
