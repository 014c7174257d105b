"""`dagster dev -w workspace.yaml` and `dg` load the same Definitions, from the same module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipelines.build import build_definitions
from pipelines.settings import PROJECT_ROOT, Settings

BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKR_")}
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dg_and_the_workspace_load_the_same_definitions():
    expected = {
        "/".join(key.path)
        for key in build_definitions(Settings.from_env()).resolve_asset_graph().get_all_asset_keys()
    }
    listed = _run("dg", "list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {asset["asset_key"] for asset in json.loads(listed.stdout)["assets"]} == expected
    assert {"raw/csv_observations", "marts/key_result_attainment"} <= expected

    checked = _run("dg", "check", "defs")
    assert checked.returncode == 0, checked.stderr
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr

    validated = _run("dagster", "definitions", "validate", "-w", "workspace.yaml")
    assert validated.returncode == 0, validated.stderr
    assert "pipelines.definitions" in validated.stderr + validated.stdout
