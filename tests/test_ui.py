"""The UI tried as a new user would: `make dev` (`dg dev`) on 127.0.0.1 over a small
project, the asset graph, catalog, automation and asset-check pages opened in headless Chromium,
and a materialization launched through the UI's GraphQL API.

What the pages must show is computed from the same Definitions, built in-process from the same
settings, so new assets, schedules, sensors and checks are covered without editing this file."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import duckdb
import pytest
from PIL import Image
from test_pipeline import process_env, write_project
from ui_driver import CHROMIUM, VIEWPORT, Chromium, DagsterDev, wait_until

from pipelines.build import build_definitions
from pipelines.instance import write_instance_file
from pipelines.settings import INSTANCE_TEMPLATE, PROJECT_ROOT, Settings

SERVER_TIMEOUT = 90.0
PAGE_TIMEOUT = 30.0
RUN_TIMEOUT = 120.0
ASSET_JOB = "__ASSET_JOB"
"""The implicit job the UI's Materialize button launches, with an asset selection."""
RAW_CSV = dg.AssetKey(["raw", "csv_observations"])
DIM_METRICS = dg.AssetKey(["marts", "dim_metrics"])


@dataclass
class Ui:
    server: DagsterDev
    browser: Chromium
    settings: Settings
    defs: dg.Definitions
    location: str
    repository: str
    artifacts: Path

    def open(self, route: str) -> None:
        self.browser.navigate(self.server.url + route)

    @property
    def asset_graph(self):
        return self.defs.resolve_asset_graph()


def _require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"{CHROMIUM} is not installed (Debian package `chromium`)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    _require_chromium()
    root = tmp_path_factory.mktemp("ui")
    (root / "project").mkdir()
    settings = write_project(root / "project")
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    write_instance_file(dagster_home, INSTANCE_TEMPLATE)
    defs = build_definitions(settings)

    with ExitStack() as cleanup:
        server = DagsterDev(PROJECT_ROOT, process_env(settings, dagster_home), root / "dagster.log")
        cleanup.callback(server.close)
        locations = server.wait_ready(SERVER_TIMEOUT)
        assert len(locations) == 1 and len(locations[0]["repositories"]) == 1, locations
        # The first visit pops up a "Join the Dagster community" dialog over the page; a new user
        # clicks Skip, which sends this mutation.
        server.graphql("mutation { setNuxSeen }")
        browser = Chromium(root / "chromium_profile", root / "chromium.log")
        cleanup.callback(browser.close)
        yield Ui(
            server=server,
            browser=browser,
            settings=settings,
            defs=defs,
            location=locations[0]["name"],
            repository=locations[0]["repositories"][0]["name"],
            artifacts=root,
        )


# -- the asset graph and the catalog ------------------------------------------------------------

# Clicks the expand arrow of every collapsed asset group in the lineage page's sidebar.
EXPAND_SIDEBAR_GROUPS_JS = """
(() => {
  const arrows = Array.from(document.querySelectorAll('button')).filter((button) => {
    const arrow = button.querySelector('[aria-label="arrow_drop_down"]');
    return arrow && arrow.style.transform.includes('-90deg')
      && button.parentElement.querySelector('[aria-label="asset_group"]');
  });
  arrows.forEach((button) => button.click());
  return arrows.length;
})()
"""


# The lineage sidebar's rows in order: [is an asset group, label].
SIDEBAR_ROWS_JS = """
Array.from(document.querySelectorAll('[data-index]'))
  .sort((a, b) => Number(a.dataset.index) - Number(b.dataset.index))
  .map((row) => {
    const label = row.querySelector('[title]');
    return [
      Boolean(row.querySelector('[aria-label="asset_group"]')),
      label ? label.getAttribute('title') : row.innerText.trim(),
    ];
  })
"""


def _ink_in_graph_area(path: Path) -> tuple[int, int]:
    """(ink pixels (gray < 200), non-white pixels) of the screenshot right of the sidebar and
    below the page header: where the lineage graph is drawn (its dotted background is lighter)."""
    with Image.open(path) as image:
        gray = image.convert("L")
        width, height = gray.size
        histogram = gray.crop((int(width * 0.4), 120, width - 80, height)).histogram()
    return sum(histogram[:200]), sum(histogram[:250])


def test_make_dev_starts_without_a_warning(ui: Ui):
    # A newcomer cannot act on "dagster dev is superseded", "a dagster.yaml in the current folder
    # is not the instance's" or "the active virtual environment does not match".
    log = ui.server.log_path.read_text(errors="replace")
    assert "Serving dagster-webserver" in log
    assert [line for line in log.splitlines() if "warn" in line.lower()] == []


def test_asset_graph_and_catalog_show_every_asset(ui: Ui):
    keys = ui.asset_graph.get_all_asset_keys()
    groups = {ui.asset_graph.get(key).group_name for key in keys}
    assert keys and groups

    # The global lineage: the groups, drawn as a graph and listed in the sidebar.
    ui.open("/asset-groups")
    ui.browser.wait_for_lines(groups, "the asset graph's groups", PAGE_TIMEOUT)
    shot = ui.artifacts / "asset_graph.png"

    def graph_drawn() -> bool:
        ink, _ = _ink_in_graph_area(ui.browser.screenshot(shot))
        return ink > 200 and "Empty graph" not in ui.browser.lines()

    wait_until(graph_drawn, PAGE_TIMEOUT, f"the asset graph to be drawn (see {shot})")
    ink, non_white = _ink_in_graph_area(shot)
    print(f"asset graph screenshot: {shot} ({ink} ink, {non_white} non-white pixels)")
    assert non_white > 2000, f"the asset graph looks blank: {shot}"

    # Every asset under its group in the sidebar, once its groups are expanded (on a page tall
    # enough for the sidebar's virtualized list to render every row).
    expected: dict[str, set[str]] = {}
    for key in keys:
        expected.setdefault(ui.asset_graph.get(key).group_name, set()).add(key.path[-1])
    ui.browser.set_viewport(VIEWPORT[0], max(VIEWPORT[1], 40 * (len(keys) + len(groups)) + 400))
    listed: dict[str, set[str]] = {}

    def sidebar_lists_every_asset() -> bool:
        ui.browser.evaluate(EXPAND_SIDEBAR_GROUPS_JS)
        listed.clear()
        group = None
        for is_group, label in ui.browser.evaluate(SIDEBAR_ROWS_JS):
            if is_group:
                group = label
            listed.setdefault(group, set()).add(label)
        return all(names <= listed.get(group, set()) for group, names in expected.items())

    try:
        wait_until(sidebar_lists_every_asset, PAGE_TIMEOUT, "every asset in the sidebar")
    except TimeoutError:
        pytest.fail(f"the asset graph's sidebar lists {listed}, expected {expected}")
    finally:
        ui.browser.set_viewport(*VIEWPORT)

    # The catalog lists every asset by its full key (`marts / dim_metrics`).
    ui.open("/assets")
    ui.browser.wait_for_lines(
        {" / ".join(key.path) for key in keys}, "the asset catalog", PAGE_TIMEOUT
    )


# -- automation ---------------------------------------------------------------------------------


def test_automation_page_lists_every_schedule_and_sensor(ui: Ui):
    repository = ui.defs.get_repository_def()
    kinds = {
        "schedule": {schedule.name for schedule in repository.schedule_defs},
        "sensor": {sensor.name for sensor in repository.sensor_defs},
    }
    for kind, names in kinds.items():
        if not names:
            print(f"note: the Definitions have no {kind}; nothing to look for on /automation")
    expected = set().union(*kinds.values())
    if not expected:
        pytest.skip("the Definitions have no schedules or sensors")
    ui.open("/automation")
    ui.browser.wait_for_lines(expected, "the automation page", PAGE_TIMEOUT)


# -- asset checks -------------------------------------------------------------------------------


def _asset_route(key: dg.AssetKey) -> str:
    return "/assets/" + "/".join(quote(part, safe="") for part in key.path)


def test_each_assets_checks_tab_lists_its_checks(ui: Ui):
    checks: dict[dg.AssetKey, set[str]] = {}
    for check in ui.asset_graph.asset_check_keys:
        checks.setdefault(check.asset_key, set()).add(check.name)
    if not checks:
        print("note: the Definitions have no asset checks; no Checks tab to look at")
        pytest.skip("the Definitions have no asset checks")
    for key, names in sorted(checks.items()):
        ui.open(f"{_asset_route(key)}?view=checks")
        ui.browser.wait_for_lines(
            names | {f"Checks ({len(names)})"},
            f"the Checks tab of {key.to_user_string()}",
            PAGE_TIMEOUT,
        )


# -- a materialization launched as the UI does --------------------------------------------------

LAUNCH = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { id } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
  }
}
"""
RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      status
      eventConnection {
        events {
          __typename
          ... on MessageEvent { message level stepKey }
          ... on ExecutionStepFailureEvent { error { message } }
          ... on AssetCheckEvaluationEvent { evaluation { assetKey { path } checkName success } }
        }
      }
    }
  }
}
"""
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


def test_materialization_launched_through_the_graphql_api_succeeds(ui: Ui):
    graph = ui.asset_graph
    assert {RAW_CSV, DIM_METRICS} <= graph.get_all_asset_keys()
    # The raw CSV asset and the dims (one multi-asset: selecting one selects its siblings),
    # with their checks, as the UI's Materialize button sends them.
    selected = sorted(
        dg.AssetSelection.assets(RAW_CSV, DIM_METRICS)
        .required_multi_asset_neighbors()
        .resolve(graph)
    )
    checks = sorted(check for check in graph.asset_check_keys if check.asset_key in selected)
    params = {
        "mode": "default",
        "runConfigData": "{}",
        "executionMetadata": {"tags": []},
        "selector": {
            "repositoryLocationName": ui.location,
            "repositoryName": ui.repository,
            "pipelineName": ASSET_JOB,
            "assetSelection": [{"path": key.path} for key in selected],
            "assetCheckSelection": [
                {"assetKey": {"path": check.asset_key.path}, "name": check.name} for check in checks
            ],
        },
    }
    launched = ui.server.graphql(LAUNCH, {"executionParams": params})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["id"]

    started = time.monotonic()

    def finished() -> dict | None:
        ui.server.check_alive()
        run = ui.server.graphql(RUN, {"runId": run_id})["runOrError"]
        return run if run.get("status") in TERMINAL else None

    run = wait_until(finished, RUN_TIMEOUT, f"run {run_id} to finish", interval=1.0)
    if run["status"] != "SUCCESS":
        errors = [
            event.get("error", {}).get("message") or event.get("message")
            for event in run["eventConnection"]["events"]
            if event.get("level") == "ERROR" or event["__typename"] == "ExecutionStepFailureEvent"
        ]
        pytest.fail(
            f"run {run_id} ended {run['status']}:\n"
            + "\n".join(str(error) for error in errors)
            + f"\n--- dagster dev log ---\n{ui.server.log_tail()}"
        )
    print(f"run {run_id} succeeded in {time.monotonic() - started:.1f} s")
    evaluations = [
        event["evaluation"]
        for event in run["eventConnection"]["events"]
        if event["__typename"] == "AssetCheckEvaluationEvent"
    ]
    assert {(tuple(e["assetKey"]["path"]), e["checkName"]) for e in evaluations} == {
        (tuple(check.asset_key.path), check.name) for check in checks
    }, f"run {run_id} did not evaluate exactly the selected checks: {evaluations}"

    # Every selected asset's table now has rows in the warehouse (retrying while another run,
    # e.g. one the automation daemon started, holds the file).
    def table_rows() -> dict[str, int]:
        with duckdb.connect(str(ui.settings.warehouse), read_only=True) as con:
            return {
                f"{schema}.{table}": con.execute(
                    f'SELECT count(*) FROM "{schema}"."{table}"'
                ).fetchone()[0]
                for schema, table in (key.path for key in selected)
            }

    counts = wait_until(table_rows, PAGE_TIMEOUT, f"a read of {ui.settings.warehouse}")
    assert all(counts.values()), f"empty tables after run {run_id}: {counts}"

    # And the UI shows the run as a success.
    ui.open(f"/runs/{run_id}")
    shown = {"Success", _count(len(selected), "asset")} | (
        {_count(len(checks), "check")} if checks else set()
    )
    ui.browser.wait_for_lines(shown, f"the page of run {run_id}", PAGE_TIMEOUT)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
