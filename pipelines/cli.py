"""`okr`: the commands an analyst types. Quarters are given as labels (`2025-Q1`; `2025q1` works).

okr backfill 2025-Q1 2025-Q4   materialize every asset for a range of quarters, in one run
okr backfill --to 2025-Q2      from the first quarter (or --from X: up to the running quarter)
okr scorecard [2025-Q1 ...]    print objectives and KRs from the warehouse
okr demo                       run the shipped example end to end and print its scorecard

A mistake in what was typed, in the config or in the order of commands gets one line saying what
to do, and exit status 2, before any run starts.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import NoReturn

import dagster as dg
import duckdb

from bi.scorecard import scorecard_text
from pipelines.assets.staging import HISTORY_TAG
from pipelines.build import build_definitions
from pipelines.instance import prepare_dagster_home
from pipelines.partitions import partition_key
from pipelines.resources import WAREHOUSE_POOL, WarehouseLockedError, open_when_free
from pipelines.settings import (
    DEFAULT_DAGSTER_HOME,
    EXAMPLE_AS_OF,
    EXAMPLE_DIR,
    Settings,
    dagster_pg_url,
)
from transforms.calendar import normalize_label, quarter_of
from transforms.config import ConfigError, load_config
from transforms.tables import MARTS_OBJECTIVE_ATTAINMENT
from warehouse.writes import table_exists

PID_TAG, HOST_TAG = "okr/pid", "okr/host"
"""Run tags: the process running an `okr` run, so a later `okr` can tell that it died."""


class UsageError(Exception):
    """A mistake the user can fix by typing something else: one line, exit status 2."""


def _instance() -> dg.DagsterInstance:
    """The persistent instance under DAGSTER_HOME (default var/dagster_home, the same one
    `make dev` shows), set up on first use from the project's instance file: SQLite, or
    PostgreSQL when OKR_DAGSTER_PG_URL is set (pipelines/instance.py)."""
    try:
        prepare_dagster_home(DEFAULT_DAGSTER_HOME)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return dg.DagsterInstance.get()


def quarter_range(
    keys: list[str],
    fiscal_month: int,
    today: date,
    first: str | None,
    last: str | None,
    to_running: bool = False,
) -> tuple[str, str]:
    """Partition keys of the quarters [first, last] as typed (labels or ISO days). Without
    `last`: `first` alone (or up to the running quarter with `to_running`); without either, all
    quarters; without `first`, from the first quarter. A start before the first quarter anything reports in
    starts there (earlier data is history the run builds anyway). UsageError, naming the
    quarters there are, for anything else."""

    def label(key: str) -> str:
        return quarter_of(date.fromisoformat(key), fiscal_month).label

    span = f"quarters run from {label(keys[0])} to {label(keys[-1])}"

    def key_of(text: str) -> str:
        try:
            key = partition_key(text, fiscal_month)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if key > keys[-1]:
            raise UsageError(
                f"{label(key)} is after the running quarter {label(keys[-1])} (today is {today}); "
                f"{span}; set OKR_AS_OF to a later day to report as of it"
            )
        return key

    start = key_of(first) if first else keys[0]
    end = key_of(last) if last else start if first and not to_running else keys[-1]
    if start > end:
        raise UsageError(
            f"the range {label(start)}..{label(end)} ends before it starts; give the earlier "
            f"quarter first: okr backfill {label(end)} {label(start)}"
        )
    if end < keys[0]:
        raise UsageError(
            f"{label(end)} is before {label(keys[0])}, the first quarter an objective or key "
            f"result reports in; {span} (earlier data is built as history when a run reads it)"
        )
    return max(start, keys[0]), end


def backfill(
    settings: Settings,
    first: str | None,
    last: str | None,
    instance: dg.DagsterInstance | None = None,
    to_running: bool = False,
) -> dg.ExecuteInProcessResult:
    """Materialize every asset for the quarters [first, last] (see `quarter_range`) in a single
    run, in `instance` (default: the persistent one, opened once the range is known to be
    good). The staging assets also build the earlier quarters the marts read; the run's
    HISTORY_TAG names them."""
    job, start, end = _planned(settings, first, last, to_running)
    return _execute(job, start, end, instance or _instance())


def _planned(
    settings: Settings, first: str | None, last: str | None, to_running: bool
) -> tuple[dg.JobDefinition, str, str]:
    """The job and its partition range [start, end]: UsageError before anything is opened."""
    try:
        defs = build_definitions(settings)
    except ConfigError:
        raise
    except ValueError as exc:  # a setting the definitions read (check thresholds, ...)
        raise UsageError(str(exc)) from None
    config = load_config(settings.config_dir)
    job = defs.resolve_implicit_global_asset_job_def()
    keys = job.partitions_def.get_partition_keys()
    start, end = quarter_range(
        keys,
        config.settings.fiscal_year_start_month,
        _today(settings, config),
        first,
        last,
        to_running,
    )
    return job, start, end


def _execute(
    job: dg.JobDefinition, start: str, end: str, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    wait_for_the_warehouse_pool(instance)
    return job.execute_in_process(
        instance=instance,
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
            PID_TAG: str(os.getpid()),
            HOST_TAG: socket.gethostname(),
        },
        raise_on_error=False,
    )


def wait_for_the_warehouse_pool(instance: dg.DagsterInstance, poll: float = 1.0) -> None:
    """Before a run starts: release the warehouse slots of runs that can no longer free them
    (finished, or an `okr` run whose process is gone: SIGKILL, OOM killer), marking such runs
    failed, and wait (interruptibly, saying for what) while a live run holds one. Without this a
    dead run's slot makes the next run wait forever."""
    storage = instance.event_log_storage
    said: set[str] = set()
    while True:
        pool = storage.get_concurrency_info(WAREHOUSE_POOL)
        live = []
        for run_id in sorted(pool.active_run_ids | {step.run_id for step in pool.pending_steps}):
            run = instance.get_run_by_id(run_id)
            pid = run.tags.get(PID_TAG) if run else None
            if run is None or run.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
            elif pid and run.tags.get(HOST_TAG) == socket.gethostname() and not _alive(int(pid)):
                instance.report_run_failed(
                    run, f"its process {pid} ended without finishing the run (killed?)"
                )
                storage.free_concurrency_slots_for_run(run_id)
                print(
                    f"okr: run {run_id} (PID {pid}) died without finishing: marked it failed "
                    "and released its hold on the warehouse",
                    file=sys.stderr,
                )
            elif run_id in pool.active_run_ids:
                live.append(run_id)
        if not live:
            return
        for run_id in set(live) - said:
            print(
                f"okr: waiting for run {run_id} to finish with the warehouse (Ctrl-C to stop)",
                file=sys.stderr,
            )
        said |= set(live)
        time.sleep(poll)


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:  # no /proc (macOS): a signal reached it, so it runs
        return True


def _today(settings: Settings, config) -> date:
    from pipelines.resources import OkrConfigResource

    return OkrConfigResource(config_dir=str(settings.config_dir), as_of=settings.as_of).today(
        config
    )


def _print_scorecard(settings: Settings, typed: list[str]) -> None:
    quarters = []
    for text in typed:
        try:
            quarters.append(normalize_label(text))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if not settings.warehouse.exists():
        raise UsageError(
            f"no warehouse at {settings.warehouse} yet; build it first with `okr backfill` "
            "(or `make demo` for the example)"
        )
    try:
        with open_when_free(
            lambda: duckdb.connect(str(settings.warehouse), read_only=True),
            str(settings.warehouse),
            settings.warehouse_lock_timeout,
            lambda text: print(f"okr: {text}", file=sys.stderr),
        ) as con:
            built = _reported_quarters(con)
            if not built:
                raise UsageError(
                    f"the warehouse {settings.warehouse} has no OKR marts yet; run `okr backfill`"
                )
            unknown = [q for q in quarters if q not in built]
            if unknown:
                raise UsageError(
                    f"the warehouse has no rows for {', '.join(unknown)}; it has "
                    f"{', '.join(built)} (`okr backfill QUARTER` builds one)"
                )
            print(scorecard_text(con, quarters or None))
    except WarehouseLockedError as exc:
        raise UsageError(str(exc)) from None


def _reported_quarters(con: duckdb.DuckDBPyConnection) -> list[str]:
    if not table_exists(con, MARTS_OBJECTIVE_ATTAINMENT):
        return []
    rows = con.execute(
        f"SELECT DISTINCT quarter, quarter_start FROM {MARTS_OBJECTIVE_ATTAINMENT.fqn} ORDER BY 2"
    ).fetchall()
    return [quarter for quarter, _ in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="okr", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("backfill", help="materialize all assets for a range of quarters")
    run.add_argument("first", nargs="?", help="first quarter label, e.g. 2025-Q1 (default: all)")
    run.add_argument("last", nargs="?", help="last quarter label (default: first)")
    run.add_argument("--from", dest="start", help="first quarter, up to --to or the running one")
    run.add_argument("--to", dest="end", help="last quarter, from --from or the first one")
    card = commands.add_parser("scorecard", help="print the scorecard from the warehouse")
    card.add_argument("quarters", nargs="*", help="quarter labels (default: all)")
    commands.add_parser("demo", help="run the shipped example end to end")
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill`, `timeout`: as on Ctrl-C
    try:
        return _command(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _command(args: argparse.Namespace) -> int:
    """One command; every way it can stop short is one line (or the config's problems)."""
    try:
        if args.command == "demo":
            return _demo()
        try:
            settings = Settings.from_env()
            dagster_pg_url()  # checked before any work; the instance opens once a run starts
        except ValueError as exc:
            raise UsageError(f"{exc} (an environment setting)") from None
        if args.command == "scorecard":
            _print_scorecard(settings, args.quarters)
            return 0
        if (args.first or args.last) and (args.start or args.end):
            raise UsageError("give quarters either as FIRST [LAST] or with --from/--to, not both")
        if args.first:
            return _run(settings, args.first, args.last)
        return _run(settings, args.start, args.end, to_running=True)
    except KeyboardInterrupt:
        print(
            "okr: stopped; every table is as it was before the step that was running (each "
            "write is one transaction): run the same command again to finish",
            file=sys.stderr,
        )
        return 130
    except UsageError as exc:
        print(f"okr: {exc}", file=sys.stderr)
    except ConfigError as exc:
        print(f"okr: the config has {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
    return 2


def failed_blocking_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    """One line per blocking check that failed the run: what failed, where, and why (the
    step's error only names the check)."""
    return [
        f"{'/'.join(e.asset_check_key.asset_key.path)} check {e.asset_check_key.name} failed: "
        f"{e.description}"
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.blocking and e.severity == dg.AssetCheckSeverity.ERROR
    ]


def interrupted(result: dg.ExecuteInProcessResult) -> bool:
    """Whether Ctrl-C or SIGTERM stopped the run (a step failed on the interrupt itself)."""
    return any(
        event.is_step_failure
        and event.step_failure_data.error.cls_name
        in {"DagsterExecutionInterruptedError", "KeyboardInterrupt"}
        for event in result.all_events
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run(settings: Settings, first: str | None, last: str | None, to_running: bool = False) -> int:
    job, start, end = _planned(settings, first, last, to_running)
    with _instance() as instance:
        result = _execute(job, start, end, instance)
        run = instance.get_run_by_id(result.run_id)
    if interrupted(result):
        raise KeyboardInterrupt
    if not result.success:
        for check in failed_blocking_checks(result):
            print(f"okr: {check}", file=sys.stderr)
        print("okr: the run failed; see the errors above", file=sys.stderr)
        return 1
    tags = run.tags if run else {}
    fiscal_month = load_config(settings.config_dir).settings.fiscal_year_start_month
    span = [
        quarter_of(date.fromisoformat(tags[f"dagster/asset_partition_range_{end}"]), fiscal_month)
        for end in ("start", "end")
    ]
    materialized = len(result.get_asset_materialization_events())
    if first and partition_key(first, fiscal_month) < span[0].start.isoformat():
        print(
            f"okr: starting at {span[0].label}, the first quarter an objective or key result "
            "reports in (what the marts read before it is built as history)"
        )
    print(
        f"okr: run {result.run_id} materialized {materialized} asset partitions for "
        f"{span[0].label}..{span[1].label}"
    )
    if tags.get(HISTORY_TAG):
        print(
            f"okr: also built staging for {tags[HISTORY_TAG].replace(',', ', ')} as history "
            "the marts read (their marts were not written)"
        )
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
    from connectors.crm.simulator import CrmSimulator  # an HTTP server only the demo needs

    os.environ.setdefault("OKR_CONFIG_DIR", str(EXAMPLE_DIR))
    os.environ.setdefault("OKR_DATA_DIR", str(EXAMPLE_DIR / "data"))
    os.environ.setdefault("OKR_AS_OF", EXAMPLE_AS_OF)
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


def entry() -> NoReturn:
    """The `okr` command: `main`, then an exit that skips tearing down the interpreter's ~1,900
    modules (about a second once Dagster is loaded). By then every warehouse write is committed,
    the instance is closed and the exit handlers have run; only the module teardown is skipped."""
    code = main()
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
