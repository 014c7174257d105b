"""A reader does not stop the pipeline: a step that finds the warehouse held by another real
process (a notebook, the duckdb CLI) waits with backoff, says who holds it, and fails naming what
to close only when the wait runs out."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest
from test_pipeline import export, rows, write_project

from pipelines.cli import backfill, main
from pipelines.settings import Settings

HOLD = (
    "import duckdb, sys, time\n"
    "con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'read')\n"
    "print('holding', flush=True)\n"
    "time.sleep(float(sys.argv[3]))\n"
)


@contextmanager
def held(warehouse: Path, seconds: float, mode: str = "read") -> Iterator[int]:
    """Another process holding the warehouse open for `seconds`; yields its PID."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(warehouse), mode, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "holding"
        yield process.pid
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def built(tmp_path: Path) -> Settings:
    settings = write_project(tmp_path)
    assert backfill(settings, "2025-Q1", None, dg.DagsterInstance.ephemeral()).success
    return settings


def step_failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """The message of the error each failed step raised (under Dagster's wrapper)."""
    return [
        e.step_failure_data.error.cause.message for e in result.all_events if e.is_step_failure
    ]


def test_a_run_fails_naming_the_reader_only_when_the_wait_runs_out(built: Settings):
    with held(built.warehouse, 60) as pid:
        result = backfill(
            replace(built, warehouse_lock_timeout=1),
            "2025-Q1",
            None,
            dg.DagsterInstance.ephemeral(),
        )
    assert not result.success
    messages = step_failures(result)
    assert messages and all(
        "is still held by python" in m and f"(PID {pid}) after 1 s: close" in m for m in messages
    ), messages


def test_a_run_waits_for_a_reader_that_lets_go(built: Settings, caplog):
    before = rows(built, "SELECT * FROM marts.key_result_attainment ORDER BY ALL")
    with held(built.warehouse, 3) as pid:
        result = backfill(built, "2025-Q1", None, dg.DagsterInstance.ephemeral())
    assert result.success
    assert rows(built, "SELECT * FROM marts.key_result_attainment ORDER BY ALL") == before
    assert f"(PID {pid}); waiting up to 180 s" in caplog.text


def test_scorecard_while_a_run_writes_waits_then_says_what_to_close(
    built: Settings, monkeypatch, capsys
):
    export(built, monkeypatch)
    monkeypatch.setenv("OKR_WAREHOUSE_LOCK_TIMEOUT", "1")
    with held(built.warehouse, 60, mode="write") as pid:
        assert main(["scorecard"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("okr: the warehouse") and f"(PID {pid}); waiting up to 1 s" in err[0]
    assert f"(PID {pid}) after 1 s: close that process's connection" in err[1]
    assert len(err) == 2
