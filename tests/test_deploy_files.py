"""The deploy files stay in step with the project, without building an image or a cluster:
the Dagster libraries at the pinned Dagster's version, the image built from uv.lock with the uv
the Makefile pins and every package of the wheel, one port for the code server everywhere, and
the Helm values saying what pipelines/dagster_postgres.yaml says (the warehouse's one slot per
step, queued runs, run monitoring, the psycopg2 driver)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import yaml

from pipelines.settings import POSTGRES_INSTANCE_TEMPLATE, PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
TEMPLATE = yaml.safe_load(POSTGRES_INSTANCE_TEMPLATE.read_text())
VALUES = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()


def _pins() -> dict[str, str]:
    requirements = PYPROJECT["project"]["dependencies"] + [
        requirement
        for extra in PYPROJECT["project"]["optional-dependencies"].values()
        for requirement in extra
    ]
    return dict(
        re.fullmatch(r"([a-z0-9-]+)==(\S+)", requirement).groups()
        for requirement in requirements
        if "==" in requirement
    )


def test_the_dagster_libraries_match_the_pinned_dagster():
    pins = _pins()
    major, minor, patch = pins["dagster"].split(".")
    library = f"0.{int(minor) + 16}.{patch}"  # dagster 1.13.27 goes with libraries 0.29.27
    assert pins["dagster-postgres"] == library
    assert pins["dagster-k8s"] == library
    assert f"--version {pins['dagster']}" in (DEPLOY / "helm" / "values.yaml").read_text()


def test_the_image_installs_the_lock_with_the_pinned_uv_and_every_package():
    uv = re.search(r"^UV_VERSION := (\S+)$", (PROJECT_ROOT / "Makefile").read_text(), re.M)[1]
    assert f"uv=={uv}" in DOCKERFILE
    syncs = re.findall(r"uv sync ([^\n\\]+)", DOCKERFILE)
    assert syncs and all("--frozen" in s and "--no-dev" in s and "--extra k8s" in s for s in syncs)
    copied = set(re.findall(r"^COPY (\S+) ", DOCKERFILE, re.M))
    packages = set(PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    assert packages <= copied, packages - copied
    assert {"pyproject.toml", "uv.lock", "README.md"} <= set(
        re.search(r"^COPY (.+) \./$", DOCKERFILE, re.M)[1].split()
    )


def test_one_code_server_port_and_module_everywhere():
    command = shlex.split(re.search(r"^CMD \[(.+)\]$", DOCKERFILE, re.M)[1].replace('", "', '" "'))
    assert command[:3] == ["dagster", "code-server", "start"]
    port = int(command[command.index("-p") + 1])
    assert command[command.index("-m") + 1] == "pipelines.definitions"
    assert f"EXPOSE {port}" in DOCKERFILE
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["port"] == port
    [deployment] = VALUES["dagster-user-deployments"]["deployments"]
    assert deployment["port"] == port
    assert deployment["codeServerArgs"] == ["-m", "pipelines.definitions"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}


def test_the_helm_values_say_what_the_postgres_template_says():
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    assert VALUES["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    assert VALUES["postgresql"]["enabled"] is False
    assert VALUES["generatePostgresqlPasswordSecret"] is False
    pools, runs = TEMPLATE["concurrency"]["pools"], TEMPLATE["concurrency"]["runs"]
    assert VALUES["concurrency"] == {
        "enabled": True,
        "runs": {"maxConcurrentRuns": runs["max_concurrent_runs"]},
        "pools": {"defaultLimit": pools["default_limit"], "granularity": pools["granularity"]},
    }
    assert pools == {"default_limit": 1, "granularity": "op"}
    daemon = VALUES["dagsterDaemon"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert TEMPLATE["run_coordinator"]["class"] == "QueuedRunCoordinator"
    monitoring = TEMPLATE["run_monitoring"]
    assert daemon["runMonitoring"]["enabled"] is monitoring["enabled"] is True
    assert (
        daemon["runMonitoring"]["freeSlotsAfterRunEndSeconds"]
        == monitoring["free_slots_after_run_end_seconds"]
    )
    assert daemon["runMonitoring"]["startTimeoutSeconds"] == monitoring["start_timeout_seconds"]


def test_no_deploy_file_holds_a_secret():
    assert TEMPLATE["storage"]["postgres"]["postgres_url"] == {"env": "OKR_DAGSTER_PG_URL"}
    assert "postgresqlPassword" not in VALUES["postgresql"]  # from the Secret the values name
    assert VALUES["global"]["postgresqlSecretName"]
    env = [line for line in DOCKERFILE.splitlines() if re.match(r"\s*(ENV|ARG)\b|\s+\w+=", line)]
    assert not [line for line in env if re.search(r"(?i)password|token|secret|_URL", line)], env


def test_the_docker_context_leaves_out_what_the_image_never_needs():
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".tools", "var", "tests"} <= set(ignored)
    assert "README.md" not in ignored  # the wheel's metadata reads it
    assert Path(PROJECT_ROOT / "README.md").exists()
