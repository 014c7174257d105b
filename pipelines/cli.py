"""`okr`: the commands an analyst types. Quarters are given as labels (`2025-Q1`).

okr backfill 2025-Q1 2025-Q4   materialize every asset for a range of quarters, in one run
okr scorecard [2025-Q1 ...]    print objectives and KRs from the warehouse
okr demo                       run the shipped example end to end and print its scorecard
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from connectors.crm_simulator import CrmSimulator
from pipelines.build import build_definitions
from pipelines.partitions import partition_key
from pipelines.settings import EXAMPLE_AS_OF, EXAMPLE_DIR, PROJECT_ROOT, Settings
from transforms.config import load_config
from transforms.scorecard import scorecard_text


def _instance() -> dg.DagsterInstance:
    """The persistent instance under DAGSTER_HOME (so runs show in `dagster dev`), set up from
    the project's dagster.yaml on first use; else an ephemeral one."""
    if not os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.ephemeral()
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return dg.DagsterInstance.get()


def backfill(
    settings: Settings, first: str | None, last: str | None, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """Materialize every asset for the quarters [first, last] (labels) in a single run."""
    defs = build_definitions(settings)
    fiscal_month = _fiscal_month(settings)
    job = defs.resolve_implicit_global_asset_job_def()
    keys = job.partitions_def.get_partition_keys(dynamic_partitions_store=instance)
    start = partition_key(first, fiscal_month) if first else keys[0]
    end = partition_key(last or first, fiscal_month) if (last or first) else keys[-1]
    for key in (start, end):
        if key not in keys:
            raise SystemExit(
                f"okr: quarter starting {key} is not a partition; partitions run from "
                f"{keys[0]} to {keys[-1]} (the running quarter)"
            )
    return job.execute_in_process(
        instance=instance,
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        },
        raise_on_error=False,
    )


def _fiscal_month(settings: Settings) -> int:
    return load_config(settings.config_dir).settings.fiscal_year_start_month


def _print_scorecard(settings: Settings, quarters: list[str]) -> None:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        print(scorecard_text(con, quarters or None))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="okr", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("backfill", help="materialize all assets for a range of quarters")
    run.add_argument("first", nargs="?", help="first quarter label, e.g. 2025-Q1 (default: all)")
    run.add_argument("last", nargs="?", help="last quarter label (default: first)")
    card = commands.add_parser("scorecard", help="print the scorecard from the warehouse")
    card.add_argument("quarters", nargs="*", help="quarter labels (default: all)")
    commands.add_parser("demo", help="run the shipped example end to end")
    args = parser.parse_args(argv)

    if args.command == "demo":
        return _demo()
    settings = Settings.from_env()
    if args.command == "scorecard":
        _print_scorecard(settings, args.quarters)
        return 0
    return _run(settings, args.first, args.last)


def _run(settings: Settings, first: str | None, last: str | None) -> int:
    result = backfill(settings, first, last, _instance())
    if not result.success:
        print("okr: the run failed; see the errors above", file=sys.stderr)
        return 1
    materialized = len(result.get_asset_materialization_events())
    print(f"okr: run {result.run_id} materialized {materialized} asset partitions")
    return 0


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore them."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _demo() -> int:
    """The shipped example: its config and files, and the CRM simulator serving its CRM data."""
    os.environ.setdefault("OKR_CONFIG_DIR", str(EXAMPLE_DIR))
    os.environ.setdefault("OKR_DATA_DIR", str(EXAMPLE_DIR / "data"))
    os.environ.setdefault("OKR_AS_OF", EXAMPLE_AS_OF)
    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / "var" / "dagster_home"))
    with (
        CrmSimulator() as crm,
        _environment(CRM_API_BASE_URL=crm.base_url, CRM_API_TOKEN=crm.token),
    ):
        settings = Settings.from_env()
        if _run(settings, None, None):
            return 1
    print(f"\nScorecard of the example, as of {settings.as_of} (warehouse: {settings.warehouse})")
    _print_scorecard(settings, [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
