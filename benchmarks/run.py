"""The benchmark runner (issues 6 and 15): each scenario's project wall time and peak memory
next to a baseline measured in the same run on the same files, and their ratio.

    .venv/bin/python -m benchmarks.run --scale 1m --scenarios backfill,empty-run

Every ratio is a set of interleaved pairs (`Scale.pairs`: 3, smoke 1) in this one process tree,
one run of each side per pair, the order alternating from pair to pair; the table shows the
medians, the ratio is of the medians, and a note gives min/median of both sides. Commands users
type (`okr backfill ...`) are timed as they run them: the console script as a subprocess from
process start to exit, with a real DAGSTER_HOME folder (set up from pipelines/dagster.yaml by
`okr` itself). Library-level measurements (ingest, rollup) run in child processes
(`--child`) timed after their imports, so each peak RSS (VmHWM) is its own. Data is generated
into `--workdir` (default /tmp/okr-bench, never committed) and reused while its spec is
unchanged.

Scenarios (project vs baseline):
- ingest: `load_csv_folder` + `stage_csv_observations` per quarter (what the raw and staging
  assets do) vs `CREATE TABLE t AS SELECT * FROM read_csv(files)`. Target 2x.
- rollup: `okr_mart_frames` and the mart writes (the okr_marts asset's body: seven marts) vs
  benchmarks/rollup_baseline.sql (four of them: key_result_attainment,
  key_result_progress_daily, success_metric_summary, metric_daily) on the same staging
  tables; then those four are compared row by row (benchmarks/compare.py). Target 1.5x.
- backfill: `okr backfill` on a fresh warehouse and DAGSTER_HOME vs `python -m
  benchmarks.reference` (one DuckDB process reading the raw files) on the issue-15 dataset
  (4 quarters, ~200 metrics and KRs, ratios, a 30-day distinct count, region filters); then
  every KR row is compared. Target 3x at 2M CSV rows (1m), 2x at 20M (10m, 100m).
- empty-run: `okr backfill` of that config on empty csv/ and analytics/ folders vs `python -c
  "import dagster"`. Target: at most 4 s more.
- memory: `okr backfill` of everything on a fresh warehouse; peak RSS <= 2048 MB (the baseline
  column is DuckDB's bare load of the same CSV and event files).
- config-memory: `okr backfill` of one quarter with 10x the metrics and KRs vs the scale's
  config on as many rows; the large config's median peak RSS within 2048 MB.
- incremental: `okr backfill <running quarter>` after a new day of data lands, with N quarters
  of history vs with 1 (each side keeps its warehouse and DAGSTER_HOME). Target 1.3x.
- orchestration: `okr backfill` of every quarter on a fresh warehouse vs `okr backfill
  <running quarter>` when that quarter's file arrives (history built before, untimed). Target
  1.5x. Plus `import pipelines.definitions` (with the dataset's config) vs `import dagster`:
  +0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

from benchmarks import sql_source
from benchmarks.compare import REL_TOLERANCE, agrees, compare_rows
from benchmarks.generate import Spec, generate, spec_for, write_quarter_data

ROOT = Path(__file__).resolve().parent.parent
BASELINE_SQL = Path(__file__).resolve().parent / "rollup_baseline.sql"
RESULT_PREFIX = "BENCH_RESULT "
SCENARIOS = ("ingest", "rollup", "backfill", "empty-run", "memory", "config-memory",
             "incremental", "orchestration")
EXTRA_SCENARIOS = ("sql-source",)
"""Run only when named: sql-source needs PostgreSQL server binaries (benchmarks/sql_source.py)."""
MEMORY_TARGET_MB = 2048.0
CONFIG_GROWTH = 10  # config-memory: the large config has this many times the metrics and KRs
DUCKDB_THREADS = 2  # WarehouseResource's default, used by the baselines too
EMPTY_RUN_EXTRA_S = 4.0  # empty-run: okr backfill of nothing <= import dagster + this
UNSET_ENV = ("CRM_API_BASE_URL", "CRM_API_TOKEN", "OKR_SQL_SOURCE_URL", "OKR_DAGSTER_PG_URL")
"""Unset for every `okr` run: the benchmark's sources are the files only, its instance local."""


@dataclass(frozen=True)
class Scale:
    main: Spec
    incremental_history: int  # quarters of history in the long incremental run
    backfill: Spec  # the issue-15 dataset of the backfill and empty-run scenarios
    backfill_target: float  # backfill: okr backfill <= this x the reference
    import_repeats: int = 3
    pairs: int = 3  # interleaved pairs of every ratio


def _scales() -> dict[str, Scale]:
    full = {"csv_metrics": 998, "users": 1_000_000}

    def main(observations: int, events: int, **kw) -> Spec:
        probe = spec_for(observations, 8, **{**full, **kw})
        per_day = max(1, round(events / probe.data_days))
        return replace(probe, events_per_day=per_day, krs_per_quarter=125)

    def issue(observations: int, events: int, metrics: int = 200, krs: int = 200,
              users: int = 200_000) -> Spec:
        """The issue-15 dataset: 4 quarters, `metrics` metrics (CSV, 2 event metrics, a 30-day
        trailing distinct count, ratios), `krs` KRs with auto baselines, maintain KRs, ratio
        KRs, and a region filter on every fourth CSV metric."""
        ratios = max(1, metrics // 40)
        probe = spec_for(observations, 4, csv_metrics=metrics - 3 - ratios,
                         krs_per_quarter=krs // 4, users=users, regions=4,
                         ratio_metrics=ratios, trailing_days=30)
        return replace(probe, events_per_day=max(1, round(events / probe.data_days)))

    smoke = spec_for(100_000, 2, csv_metrics=48, krs_per_quarter=20, users=5_000)
    smoke = replace(smoke, events_per_day=round(20_000 / smoke.data_days))
    return {
        "smoke": Scale(smoke, incremental_history=3, backfill=issue(100_000, 20_000, 60, 40, 5_000),
                       backfill_target=3.0, import_repeats=1, pairs=1),
        "1m": Scale(main(1_000_000, 2_000_000), incremental_history=20,
                    backfill=issue(2_000_000, 1_000_000), backfill_target=3.0),
        "10m": Scale(main(10_000_000, 5_000_000), incremental_history=20,
                     backfill=issue(20_000_000, 5_000_000), backfill_target=2.0),
        "100m": Scale(main(100_000_000, 20_000_000), incremental_history=20,
                      backfill=issue(20_000_000, 5_000_000), backfill_target=2.0),
    }


SCALES = _scales()


@dataclass
class Row:
    scenario: str
    project_s: float
    baseline_s: float
    project_mb: float
    baseline_mb: float
    target: str
    ratio: float
    passed: bool
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (
            f"{self.scenario:<22}{self.project_s:>10.2f}{self.baseline_s:>11.2f}"
            f"{self.ratio:>8.2f}{self.project_mb:>16.0f}{self.baseline_mb:>17.0f}  "
            f"{self.target:<16}{verdict}"
        )


HEADER = (
    f"{'scenario':<22}{'project_s':>10}{'baseline_s':>11}{'ratio':>8}"
    f"{'project_peak_MB':>16}{'baseline_peak_MB':>17}  {'target':<16}result"
)


# -- children: one measurement per process ----------------------------------------------------------


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _memory_limit() -> str:
    """DuckDB's memory_limit on both sides: the pipeline's setting (`--memory-limit`)."""
    return os.environ.get("OKR_DUCKDB_MEMORY_LIMIT") or "1GB"


def _warehouse(path: str):
    from pipelines.resources import WarehouseResource

    return WarehouseResource(path=path, memory_limit=_memory_limit())


def _duckdb(path: Path):
    import duckdb

    return duckdb.connect(
        str(path), config={"memory_limit": _memory_limit(), "threads": DUCKDB_THREADS}
    )


def _quarters(labels: list[str]):
    from transforms.calendar import quarter_from_label

    return [quarter_from_label(label) for label in labels]


def child_ingest_project(args: dict) -> dict:
    from connectors.csv_drop.extract import load_csv_folder
    from connectors.csv_drop.staging import stage_csv_observations
    from connectors.csv_drop.tables import STAGING_CSV_OBSERVATIONS

    quarters = _quarters(args["quarters"])
    resource = _warehouse(args["warehouse"])
    phases = {}
    start = time.perf_counter()
    with resource.connect() as con:
        report = load_csv_folder(con, Path(args["csv_dir"]))
        phases["raw"] = time.perf_counter() - start
        t = time.perf_counter()
        for quarter in quarters:
            stage_csv_observations(con, quarter.start, quarter.end)
        phases["stage"] = time.perf_counter() - t
        staged = con.execute(f"SELECT count(*) FROM {STAGING_CSV_OBSERVATIONS.fqn}").fetchone()[0]
        t = time.perf_counter()
    phases["close"] = time.perf_counter() - t
    return {
        "seconds": time.perf_counter() - start,
        "rows_loaded": report.rows_loaded,
        "rows_rejected": report.rows_rejected,
        "rows_staged": staged,
        "phases": phases,
        "memory_limit": resource.memory_limit,
        "threads": resource.threads,
    }


def child_ingest_baseline(args: dict) -> dict:
    start = time.perf_counter()
    con = _duckdb(Path(args["warehouse"]))
    files = sorted(str(p) for p in Path(args["csv_dir"]).glob("*.csv"))
    con.execute("CREATE TABLE t AS SELECT * FROM read_csv(?)", [files])
    rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
    if args.get("events_dir"):
        events = sorted(str(p) for p in Path(args["events_dir"]).glob("*.jsonl"))
        if events:
            con.execute("CREATE TABLE e AS SELECT * FROM read_json(?)", [events])
    con.close()
    return {"seconds": time.perf_counter() - start, "rows": rows}


def child_prepare_rollup(args: dict) -> dict:
    """Raw and staging of every quarter (CSV and events), as the assets build them (untimed)."""
    from connectors.analytics.extract import load_analytics_exports
    from connectors.analytics.staging import stage_analytics_events
    from connectors.csv_drop.extract import load_csv_folder
    from connectors.csv_drop.staging import stage_csv_observations

    start = time.perf_counter()
    data = Path(args["data_dir"])
    with _warehouse(args["warehouse"]).connect() as con:
        load_csv_folder(con, data / "csv")
        load_analytics_exports(con, data / "analytics")
        for quarter in _quarters(args["quarters"]):
            stage_csv_observations(con, quarter.start, quarter.end)
            stage_analytics_events(con, quarter.start, quarter.end, "UTC")
    return {"seconds": time.perf_counter() - start}


def child_rollup_project(args: dict) -> dict:
    """What the okr_marts asset does for every data quarter: compute the seven marts and write
    them in one transaction."""
    from transforms.config import load_config
    from transforms.marts import OKR_MARTS, okr_mart_frames
    from warehouse.writes import replace_partitions

    quarters = _quarters(args["quarters"])
    today = date.fromisoformat(args["today"])
    phases = {}
    start = time.perf_counter()
    config = load_config(args["config_dir"])
    with _warehouse(args["warehouse"]).connect() as con:
        frames = okr_mart_frames(con, config, quarters, today)
        phases["compute"] = time.perf_counter() - start
        t = time.perf_counter()
        replace_partitions(
            con,
            {table: frames[name] for name, table in OKR_MARTS.items()},
            [q.start for q in quarters],
        )
        phases["write"] = time.perf_counter() - t
    return {"seconds": time.perf_counter() - start, "phases": phases}


def baseline_sql(params_dir: Path, today: str) -> str:
    return (
        BASELINE_SQL.read_text()
        .replace("{{params}}", str(params_dir).replace("'", "''"))
        .replace("{{today}}", today)
    )


def child_rollup_baseline(args: dict) -> dict:
    start = time.perf_counter()
    con = _duckdb(Path(args["warehouse"]))
    con.execute(baseline_sql(Path(args["params_dir"]), args["today"]))
    con.close()
    return {"seconds": time.perf_counter() - start}


# The tables rollup_baseline.sql writes, with their keys (docs/data_dictionary.md). The other
# three marts okr_marts writes (objective_attainment, okr_scorecard, team_attainment) have no
# baseline.
ROLLUP_TABLES = {
    "key_result_attainment": ["kr_id", "quarter_start"],
    "key_result_progress_daily": ["kr_id", "as_of_date"],
    "success_metric_summary": ["metric_id", "grain", "period_start"],
    "metric_daily": ["metric_id", "date"],
}
ROLLUP_NOT_COVERED = ("objective_attainment", "okr_scorecard", "team_attainment")


def child_rollup_compare(args: dict) -> dict:
    """Row-level agreement of the project's marts and the baseline's tables (benchmarks/compare)."""
    from benchmarks.compare import compare_rows

    con = _duckdb(Path(args["warehouse"]))
    tables = {name: compare_rows(con, f"marts.{name}", f"baseline.{name}", keys)
              for name, keys in ROLLUP_TABLES.items()}
    con.close()
    return {"seconds": 0.0, "tables": tables}


def _pipeline_env(args: dict) -> None:
    os.environ.update({
        "OKR_CONFIG_DIR": args["config_dir"],
        "OKR_DATA_DIR": args["data_dir"],
        "OKR_WAREHOUSE": args["warehouse"],
        "OKR_BI_SNAPSHOT": args["snapshot"],
        "OKR_AS_OF": args["as_of"],
    })
    for name in ("DAGSTER_HOME", "CRM_API_BASE_URL", "CRM_API_TOKEN"):
        os.environ.pop(name, None)


def run_steps(home: Path) -> dict[str, float]:
    """Step durations of the newest run in a Dagster instance folder (SQLite event log),
    read after the timed run: where the time went."""
    import sqlite3

    runs = sorted((p for p in (home / "history" / "runs").glob("*.db") if p.name != "index.db"),
                  key=lambda p: p.stat().st_mtime)
    if not runs:
        return {}
    con = sqlite3.connect(f"file:{runs[-1]}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT step_key, event FROM event_logs "
                           "WHERE dagster_event_type = 'STEP_SUCCESS'").fetchall()
    finally:
        con.close()
    steps = {}
    for step, event in rows:
        data = json.loads(event).get("dagster_event", {}).get("event_specific_data") or {}
        if data.get("duration_ms") is not None:
            steps[step] = round(data["duration_ms"] / 1000, 3)
    return steps


def child_import(args: dict) -> dict:
    """Import time of `args['module']` in a fresh interpreter (this child)."""
    if args.get("env"):
        _pipeline_env(args["env"])
    start = time.perf_counter()
    __import__(args["module"])
    return {"seconds": time.perf_counter() - start}


CHILDREN = {
    "ingest_project": child_ingest_project,
    "ingest_baseline": child_ingest_baseline,
    "prepare_rollup": child_prepare_rollup,
    "rollup_project": child_rollup_project,
    "rollup_baseline": child_rollup_baseline,
    "rollup_compare": child_rollup_compare,
    "import": child_import,
    "sql_pushdown": sql_source.child_sql_pushdown,
    "sql_rows": sql_source.child_sql_rows,
}


def run_child_main(task: str, payload: str) -> int:
    profile_dir = os.environ.get("BENCH_PROFILE_DIR")
    if profile_dir:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        result = profiler.runcall(CHILDREN[task], json.loads(payload))
        path = Path(profile_dir) / f"{os.environ.get('BENCH_CHILD_NAME', task)}.prof"
        profiler.dump_stats(path)
        pstats.Stats(str(path)).sort_stats("cumulative").print_stats(40)
    else:
        result = CHILDREN[task](json.loads(payload))
    result["peak_mb"] = _peak_mb()
    print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)
    return 0


# -- the parent ---------------------------------------------------------------------------------


class Runner:
    def __init__(
        self,
        scale: str,
        workdir: Path,
        timeout: float,
        verbose: bool,
        profile: bool = False,
        memory_limit: str = "1GB",
    ) -> None:
        self.profile = profile
        self.memory_limit = memory_limit
        self.scale_name = scale
        self.scale = SCALES[scale]
        self.workdir = workdir / scale
        self.timeout = timeout
        self.verbose = verbose
        self.logs = self.workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._cache: dict[str, dict] = {}
        self.rows: list[Row] = []
        self.messages: list[str] = []

    # -- helpers ------------------------------------------------------------------------------

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"  .. {message}", file=sys.stderr, flush=True)

    def child(self, task: str, **args) -> dict:
        return self.children([(task, args)])[0]

    def children(self, tasks: list[tuple[str, dict]]) -> list[dict]:
        """Run child measurements; several at once only for untimed setup work."""
        env = {**os.environ, "OKR_DUCKDB_MEMORY_LIMIT": self.memory_limit}
        if self.profile:
            env["BENCH_PROFILE_DIR"] = str(self.logs)
        started, procs = time.perf_counter(), []
        for task, args in tasks:
            name = f"{task}-{len(list(self.logs.glob('*.out'))):03d}"
            shown = {k: v for k, v in args.items() if k != "quarters"}
            self.log(f"{task} {json.dumps(shown)}")
            env["BENCH_CHILD_NAME"] = name
            out, err = self.logs / f"{name}.out", self.logs / f"{name}.err"
            # Output goes to files, not pipes: children running side by side never block.
            with out.open("w") as stdout, err.open("w") as stderr:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.run", "--child", task, json.dumps(args)],
                    cwd=ROOT, stdout=stdout, stderr=stderr, text=True, env=env,
                )
            procs.append((task, out, err, proc))
        results = []
        for task, out, err, proc in procs:
            try:
                proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            lines = [ln for ln in out.read_text().splitlines() if ln.startswith(RESULT_PREFIX)]
            if proc.returncode != 0 or not lines:
                tail = "\n".join(err.read_text().splitlines()[-25:])
                raise RuntimeError(f"child {task} failed (exit {proc.returncode}; {err}):\n{tail}")
            result = json.loads(lines[-1][len(RESULT_PREFIX):])
            self.log(f"{task}: {result['seconds']:.2f}s, peak {result['peak_mb']:.0f} MB "
                     f"(process {time.perf_counter() - started:.1f}s)")
            results.append(result)
        return results

    def dataset(self, name: str, spec: Spec) -> Path:
        self.log(f"dataset {name}: {spec}")
        return generate(spec, self.workdir / "datasets" / name)

    def fresh(self, *paths: Path) -> None:
        """Remove database files (and their WAL), leaving their folder."""
        for path in paths:
            for candidate in (path, Path(f"{path}.wal")):
                candidate.unlink(missing_ok=True)
            path.parent.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def fresh_dir(path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)

    @staticmethod
    def warm(folder: Path) -> None:
        """Read the input files once, so neither side pays for a cold page cache."""
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                with path.open("rb") as handle:
                    while handle.read(1 << 24):
                        pass

    def meta(self, folder: Path) -> dict:
        return json.loads((folder / "meta.json").read_text())

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(row.line(), flush=True)
        for note in row.notes:
            print(f"    {note}", flush=True)

    def pipeline_args(self, folder: Path, run: Path, as_of: str, data_dir: Path | None = None):
        return {
            "config_dir": str(folder / "config"),
            "data_dir": str(data_dir or folder / "data"),
            "warehouse": str(run / "warehouse.duckdb"),
            "snapshot": str(run / "okr_bi.duckdb"),
            "as_of": as_of,
        }

    def okr(self, args: dict, home: Path, cache: Path | None, *command: str) -> dict:
        """`okr <command>` as users run it: the console script in its own process, with its real
        Dagster instance folder `home` (set up from pipelines/dagster.yaml on first use), timed
        from process start to exit; peak RSS from the kernel's accounting of the finished
        child; the run's step durations read afterwards (untimed) from the instance.
        OKR_CACHE_DIR is `cache`, by default the runner's one folder kept across runs like a
        user's ~/.cache/okr-warehouse (the first run of a workdir fills it)."""
        cache = cache or self.workdir / "okr_cache"
        env = {**os.environ, "OKR_DUCKDB_MEMORY_LIMIT": self.memory_limit,
               "DAGSTER_HOME": str(home), "OKR_CACHE_DIR": str(cache),
               "OKR_CONFIG_DIR": args["config_dir"], "OKR_DATA_DIR": args["data_dir"],
               "OKR_WAREHOUSE": args["warehouse"], "OKR_BI_SNAPSHOT": args["snapshot"],
               "OKR_AS_OF": args["as_of"]}
        for name in UNSET_ENV:
            env.pop(name, None)
        home.mkdir(parents=True, exist_ok=True)
        result = self.process([str(Path(sys.executable).parent / "okr"), *command], env,
                              f"okr {' '.join(command)} ({args['config_dir']})")
        result["steps"] = run_steps(home)
        return result

    def process(self, argv: list[str], env: dict, label: str) -> dict:
        """Wall time from process start to exit and peak RSS of one command."""
        log = self.logs / f"cmd-{len(list(self.logs.glob('*.out'))):03d}.out"
        self.log(f"{label} > {log.name}")
        with log.open("w") as out:
            started = time.perf_counter()
            proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            tail = "\n".join(log.read_text().splitlines()[-25:])
            raise RuntimeError(f"{label} failed (exit {code}; {log}):\n{tail}")
        self.log(f"{label}: {seconds:.2f}s, peak {usage.ru_maxrss / 1024:.0f} MB")
        return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024}

    def interleave(self, sides: dict[str, Callable[[], dict]]) -> dict[str, list[dict]]:
        """`pairs` interleaved pairs, one run of each side per pair, the order alternating from
        pair to pair (ABBA...), so drift of the machine weighs on both sides alike."""
        results: dict[str, list[dict]] = {name: [] for name in sides}
        for i in range(self.scale.pairs):
            for name in list(sides)[:: 1 if i % 2 == 0 else -1]:
                results[name].append(sides[name]())
        return results

    def paired_row(self, scenario: str, results: dict[str, list[dict]], target: str,
                   limit: float, notes: list[str], *, diff: bool = False, ok: bool = True,
                   names: tuple[str, str] = ("project", "baseline")) -> Row:
        """The row of a paired measurement: medians in the table, the ratio of medians (or the
        difference with `diff`) against `limit`, min/median of both sides in a note."""
        secs = {n: [r["seconds"] for r in results[n]] for n in names}
        med = {n: statistics.median(v) for n, v in secs.items()}
        peak = {n: statistics.median(r["peak_mb"] for r in results[n]) for n in names}
        ratio = med[names[0]] / med[names[1]]
        measure = med[names[0]] - med[names[1]] if diff else ratio
        row = Row(scenario, med[names[0]], med[names[1]], peak[names[0]], peak[names[1]], target,
                  ratio, ok and measure <= limit,
                  [f"{len(results[names[0]])} interleaved pair(s); seconds min/median "
                   f"{min(secs[names[0]]):.2f}/{med[names[0]]:.2f} vs "
                   f"{min(secs[names[1]]):.2f}/{med[names[1]]:.2f} (seconds, ratio of medians "
                   f"{ratio:.2f}" + (f", difference {measure:+.2f} s)" if diff else ")"),
                   *notes])
        return row

    @staticmethod
    def slowest(steps: dict[str, float], n: int = 4) -> str:
        top = sorted(steps.items(), key=lambda kv: -kv[1])[:n]
        return ", ".join(f"{k} {v:.2f}s" for k, v in top) or "(no steps read)"

    # -- scenarios ----------------------------------------------------------------------------

    def ingest(self) -> None:
        folder = self.dataset("main", self.scale.main)
        meta = self.meta(folder)
        run = self.workdir / "runs" / "ingest"
        csv_dir = folder / "data" / "csv"
        self.warm(csv_dir)

        def side(task: str, name: str, **extra) -> Callable[[], dict]:
            def once() -> dict:
                self.fresh(run / name)
                result = self.child(task, warehouse=str(run / name), csv_dir=str(csv_dir), **extra)
                self.fresh(run / name)
                return result
            return once

        results = self.interleave({
            "project": side("ingest_project", "project.duckdb", quarters=meta["quarters"]),
            "baseline": side("ingest_baseline", "baseline.duckdb"),
        })
        mine = results["project"][-1]
        phases = ", ".join(f"{k} {v:.2f}s" for k, v in mine["phases"].items())
        self.add(self.paired_row("ingest", results, "<= 2.0x", 2.0, [
            f"{meta['observations']:,} rows ({mine['rows_loaded']:,} loaded, "
            f"{mine['rows_staged']:,} staged); project phases (last run): {phases}"]))

    def rollup(self) -> None:
        folder = self.dataset("main", self.scale.main)
        meta = self.meta(folder)
        run = self.workdir / "runs" / "rollup"
        warehouse = run / "warehouse.duckdb"
        self.fresh(warehouse)
        self.child("prepare_rollup", warehouse=str(warehouse), data_dir=str(folder / "data"),
                   quarters=meta["quarters"])
        common = {"warehouse": str(warehouse), "today": meta["today"]}
        results = self.interleave({
            "project": lambda: self.child("rollup_project", config_dir=str(folder / "config"),
                                          quarters=meta["quarters"], **common),
            "baseline": lambda: self.child("rollup_baseline",
                                           params_dir=str(folder / "params"), **common),
        })
        tables = self.child("rollup_compare", warehouse=str(warehouse))["tables"]
        agree = all(agrees(r) for r in tables.values())
        phases = ", ".join(f"{k} {v:.2f}s" for k, v in results["project"][-1]["phases"].items())
        notes = [f"{meta['observations']:,} observations, {meta['metrics']} metrics, "
                 f"{meta['key_results']} KRs, {len(meta['quarters'])} quarters; project phases "
                 f"(last run): {phases}",
                 f"baseline covers {', '.join(ROLLUP_TABLES)}; not covered: "
                 f"{', '.join(ROLLUP_NOT_COVERED)} (the project's time includes them)",
                 f"rollup agreement: {'OK' if agree else 'MISMATCH'} (rows compared: "
                 + ", ".join(f"{n} {r['compared']:,}" for n, r in tables.items())
                 + f"; every baseline column, doubles to {REL_TOLERANCE:g}, relative above 1)"]
        for name, r in tables.items():
            if not agrees(r):
                notes.append(f"  {name}: {r['mismatched']} mismatched, {r['only_project']} only "
                             f"in project, {r['only_reference']} only in baseline")
                notes += [f"  mismatch: {m}" for m in r["first"]]
        self.add(self.paired_row("rollup", results, "<= 1.5x", 1.5, notes, ok=agree))
        self.fresh(warehouse)

    def backfill(self) -> None:
        """The documented backfill end to end (`okr backfill`, fresh warehouse, fresh
        DAGSTER_HOME) vs the single-process DuckDB reference (`python -m benchmarks.reference`)
        on the issue-15 dataset; then their KR rows are compared."""
        folder = self.dataset("issue15", self.scale.backfill)
        meta = self.meta(folder)
        run = self.workdir / "runs" / "backfill"
        self.warm(folder / "data")
        args = self.pipeline_args(folder, run / "okr", meta["today"])
        out = run / "kr_reference.duckdb"  # not reference.duckdb: its catalog would shadow the schema

        def project() -> dict:
            self.fresh_dir(run / "okr")
            return self.okr(args, run / "okr" / "dagster_home", None, "backfill")

        def reference() -> dict:
            self.fresh(out)
            env = {**os.environ}
            return self.process(
                [sys.executable, "-m", "benchmarks.reference", "--data", str(folder / "data"),
                 "--params", str(folder / "params"), "--as-of", meta["today"], "--out", str(out),
                 "--memory-limit", self.memory_limit, "--threads", str(DUCKDB_THREADS)],
                env, "python -m benchmarks.reference")

        results = self.interleave({"project": project, "baseline": reference})
        import duckdb

        con = duckdb.connect(str(out))
        con.execute("ATTACH ? AS project (READ_ONLY)", [args["warehouse"]])
        check = compare_rows(con, "project.marts.key_result_attainment",
                             "reference.key_result_attainment", ["kr_id", "quarter_start"])
        con.close()
        agree = agrees(check)
        target = self.scale.backfill_target
        notes = [f"okr backfill of {meta['observations']:,} CSV rows and {meta['events']:,} "
                 f"events, {meta['metrics']} metrics, {meta['key_results']} KRs over "
                 f"{len(meta['quarters'])} quarters vs python -m benchmarks.reference; slowest "
                 f"steps (last run): {self.slowest(results['project'][-1]['steps'])}",
                 f"KR agreement: {'OK' if agree else 'MISMATCH'} ({check['compared']:,} rows of "
                 "marts.key_result_attainment compared on (kr_id, quarter_start): baseline, "
                 "target, current_value, progress, raw/expected progress, status, grade, "
                 f"as_of_date, objective; doubles to {REL_TOLERANCE:g}, relative above 1)"]
        if not agree:
            notes.append(f"  {check['mismatched']} mismatched, {check['only_project']} only in "
                         f"project, {check['only_reference']} only in reference")
            notes += [f"  mismatch: {m}" for m in check["first"]]
        self.add(self.paired_row("backfill", results, f"<= {target:.1f}x", target, notes,
                                 ok=agree))
        self.fresh_dir(run)

    def empty_run(self) -> None:
        """`okr backfill` of the issue-15 config on an empty data folder (its fixed cost) vs
        `python -c "import dagster"`; target: at most EMPTY_RUN_EXTRA_S more."""
        folder = self.dataset("issue15", self.scale.backfill)
        meta = self.meta(folder)
        run = self.workdir / "runs" / "empty-run"
        self.fresh_dir(run)
        for sub in ("csv", "analytics"):
            (run / "data" / sub).mkdir(parents=True)
        args = self.pipeline_args(folder, run / "okr", meta["today"], data_dir=run / "data")

        def project() -> dict:
            self.fresh_dir(run / "okr")
            return self.okr(args, run / "okr" / "dagster_home", None, "backfill")

        def bare() -> dict:
            return self.process([sys.executable, "-c", "import dagster"], {**os.environ},
                                'python -c "import dagster"')

        what = (f"okr backfill of {len(meta['quarters'])} quarters ({meta['metrics']} metrics, "
                f"{meta['key_results']} KRs) with empty csv/ and analytics/ folders vs python -c "
                f"\"import dagster\"")
        results = self.interleave({"project": project, "baseline": bare})
        self.add(self.paired_row(
            "empty-run", results, f"<= +{EMPTY_RUN_EXTRA_S:.2f} s", EMPTY_RUN_EXTRA_S,
            [f"{what}, a new warehouse and DAGSTER_HOME each run (the instance's databases are "
             f"created); slowest steps (last run): "
             f"{self.slowest(results['project'][-1]['steps'])}"], diff=True))
        # The everyday case: the same command again, its instance and warehouse already set up.
        self.fresh_dir(run / "okr")
        self.okr(args, run / "okr" / "dagster_home", None, "backfill")  # untimed set-up

        def again() -> dict:
            return self.okr(args, run / "okr" / "dagster_home", None, "backfill")

        results = self.interleave({"project": again, "baseline": bare})
        self.add(self.paired_row(
            "empty-run-again", results, f"<= +{EMPTY_RUN_EXTRA_S:.2f} s", EMPTY_RUN_EXTRA_S,
            [f"{what}, run again with the instance and warehouse of an earlier run"], diff=True))
        self.fresh_dir(run)

    def full_backfill(self) -> dict:
        """`okr backfill` of everything on a fresh warehouse and instance (memory)."""
        if "full_backfill" not in self._cache:
            folder = self.dataset("main", self.scale.main)
            run = self.workdir / "runs" / "full-backfill"
            self.fresh_dir(run)
            self.warm(folder / "data")
            args = self.pipeline_args(folder, run, self.meta(folder)["today"])
            self._cache["full_backfill"] = self.okr(args, run / "dagster_home", None,
                                                    "backfill")
            self.fresh_dir(run)
        return self._cache["full_backfill"]

    def memory(self) -> None:
        folder = self.dataset("main", self.scale.main)
        meta = self.meta(folder)
        mine = self.full_backfill()
        run = self.workdir / "runs" / "memory"
        self.fresh(run / "baseline.duckdb")
        base = self.child("ingest_baseline", warehouse=str(run / "baseline.duckdb"),
                          csv_dir=str(folder / "data" / "csv"),
                          events_dir=str(folder / "data" / "analytics"))
        self.fresh(run / "baseline.duckdb")
        ratio = mine["peak_mb"] / MEMORY_TARGET_MB
        self.add(Row("memory", mine["seconds"], base["seconds"], mine["peak_mb"], base["peak_mb"],
                     f"<= {MEMORY_TARGET_MB:.0f} MB", ratio, mine["peak_mb"] <= MEMORY_TARGET_MB,
                     [f"okr backfill (the console script, its own DAGSTER_HOME) of "
                      f"{meta['observations']:,} observations and {meta['events']:,} events end "
                      f"to end; ratio = peak / {MEMORY_TARGET_MB:.0f} MB; baseline = DuckDB's "
                      "bare load of the same files (one run each)"]))

    def config_memory(self) -> None:
        """Peak memory as the config grows: one quarter of the same number of rows with the
        scale's metrics and KRs (baseline) and with CONFIG_GROWTH times as many (project)."""
        small = replace(self.scale.main, quarters=1)
        large = replace(small, csv_metrics=small.csv_metrics * CONFIG_GROWTH,
                        krs_per_quarter=small.krs_per_quarter * CONFIG_GROWTH)
        sides, metas = {}, {}
        for name, spec in (("large", large), ("small", small)):
            folder = self.dataset(f"config-{name}", spec)
            self.warm(folder / "data")
            run = self.workdir / "runs" / f"config-{name}"
            metas[name] = self.meta(folder)
            args = self.pipeline_args(folder, run, spec.today.isoformat())

            def once(run: Path = run, args: dict = args) -> dict:
                self.fresh_dir(run)  # fresh warehouse, instance and config cache
                result = self.okr(args, run / "dagster_home", run / "cache", "backfill")
                self.fresh_dir(run)
                return result
            sides[name] = once
        results = self.interleave(sides)
        peak = {k: [r["peak_mb"] for r in v] for k, v in results.items()}
        median = {k: statistics.median(v) for k, v in peak.items()}
        row = self.paired_row(
            "config-memory", results, f"<= {MEMORY_TARGET_MB:.0f} MB", MEMORY_TARGET_MB,
            [f"okr backfill of one quarter ({metas['large']['observations']:,} rows) with "
             f"{metas['large']['metrics']:,} metrics and {metas['large']['key_results']:,} KRs "
             f"vs {metas['small']['metrics']:,} and {metas['small']['key_results']:,}; peak MB "
             f"min/median {min(peak['large']):.0f}/{median['large']:.0f} vs "
             f"{min(peak['small']):.0f}/{median['small']:.0f}; ratio = of the median peaks"],
            names=("large", "small"))
        row.ratio = median["large"] / median["small"]
        row.passed = median["large"] <= MEMORY_TARGET_MB
        self.add(row)

    def incremental(self) -> None:
        """Build 1 and N quarters of history + the running quarter as of the day before
        (`okr backfill`, the two setups side by side, untimed), land one more day of data, then
        time `okr backfill <running quarter>` on each in interleaved pairs. Each side keeps its
        warehouse and DAGSTER_HOME across the pairs: after the first pair a refresh re-runs on
        the same data (idempotent; what a second refresh of the day costs)."""
        history = self.scale.incremental_history
        setups = {}
        for quarters in (history, 1):
            spec = replace(self.scale.main, quarters=quarters + 1)
            spec = replace(spec, today_offset=spec.today_offset - 1)
            folder = self.dataset(f"incremental-{quarters}q", spec)
            run = self.workdir / "runs" / f"incremental-{quarters}q"
            self.fresh_dir(run)
            setups[quarters] = (spec, folder, run, self.meta(folder))
        procs = []
        for _spec, folder, run, meta in setups.values():  # setup: both at once, untimed
            env = {**os.environ, "OKR_DUCKDB_MEMORY_LIMIT": self.memory_limit,
                   "DAGSTER_HOME": str(run / "dagster_home"), "OKR_CACHE_DIR": str(run / "cache"),
                   **{f"OKR_{k.upper()}": v for k, v in {
                       "config_dir": str(folder / "config"), "data_dir": str(folder / "data"),
                       "warehouse": str(run / "warehouse.duckdb"),
                       "bi_snapshot": str(run / "okr_bi.duckdb"), "as_of": meta["today"]}.items()}}
            for name in UNSET_ENV:
                env.pop(name, None)
            (run / "dagster_home").mkdir(parents=True, exist_ok=True)
            log = (self.logs / f"setup-{run.name}.out").open("w")
            procs.append((log, subprocess.Popen([str(Path(sys.executable).parent / "okr"),
                                                 "backfill"], cwd=ROOT, env=env, stdout=log,
                                                stderr=subprocess.STDOUT)))
        for log, proc in procs:
            if proc.wait() != 0:
                raise RuntimeError(f"incremental setup failed: {log.name}")
            log.close()
        sides = {}
        for quarters, (spec, folder, run, _meta) in setups.items():
            running = spec.data_quarters[-1]
            today = spec.today + timedelta(days=1)
            write_quarter_data(spec, folder, running, today)
            (folder / "meta.json").unlink()  # the running quarter no longer matches the spec
            self.warm(folder / "data")
            args = self.pipeline_args(folder, run, today.isoformat())
            sides[f"{quarters}q"] = (lambda args=args, run=run, label=running.label: self.okr(
                args, run / "dagster_home", None, "backfill", label))
        results = self.interleave(sides)
        rows = {q: s[3]["observations"] for q, s in setups.items()}
        self.add(self.paired_row(
            "incremental", results, "<= 1.3x", 1.3,
            [f"okr backfill <running quarter> with {history} quarters of history "
             f"({rows[history]:,} rows) vs 1 ({rows[1]:,} rows), each in its own persistent "
             f"warehouse and DAGSTER_HOME; pair 1 refreshes a new day, later pairs the same data "
             f"again; slowest steps with {history}q (last run): "
             f"{self.slowest(results[f'{history}q'][-1]['steps'])}"],
            names=(f"{history}q", "1q")))
        for _, _, run, _ in setups.values():
            self.fresh_dir(run)

    def orchestration(self) -> None:
        """`okr backfill` of every quarter on a fresh warehouse and instance vs `okr backfill
        <running quarter>` when that quarter's file arrives, the history built before (untimed;
        a copy of a prepared warehouse and instance per pair)."""
        folder = self.dataset("main", self.scale.main)
        meta = self.meta(folder)
        root = self.workdir / "runs" / "orchestration"
        self.fresh_dir(root)
        self.warm(folder / "data")
        full = self.pipeline_args(folder, root / "full", meta["today"])
        # the one-quarter side: history built once into `prepared` (untimed), copied per pair
        prepared, data = root / "prepared", root / "data"
        running = meta["quarters"][-1].lower().replace("-", "")
        arriving = []
        for path in sorted((folder / "data").rglob("*")):
            if path.is_file():
                target = data / path.relative_to(folder / "data")
                target.parent.mkdir(parents=True, exist_ok=True)
                if running in path.name:
                    arriving.append((path, target))
                else:
                    os.link(path, target)
        prepared.mkdir()
        one = self.pipeline_args(folder, prepared, meta["today"], data_dir=data)
        self.okr(one, prepared / "dagster_home", None, "backfill", "--to",
                 meta["quarters"][-2])

        def project() -> dict:
            self.fresh_dir(root / "full")
            result = self.okr(full, root / "full" / "dagster_home", None,
                              "backfill")
            self._cache.setdefault("full_backfill", result)
            return result

        def one_quarter() -> dict:
            run = root / "one"
            shutil.rmtree(run, ignore_errors=True)
            shutil.copytree(prepared, run)  # the warehouse and instance before the file came
            # A copied instance folder names the original's files: point it at its own copies.
            # (Imported here: the import children must not find the project loaded.)
            from pipelines.instance import write_instance_file
            from pipelines.settings import INSTANCE_TEMPLATE

            write_instance_file(run / "dagster_home", INSTANCE_TEMPLATE)
            for path, target in arriving:  # the running quarter's files arrive
                target.unlink(missing_ok=True)
                os.link(path, target)
            args = self.pipeline_args(folder, run, meta["today"], data_dir=data)
            return self.okr(args, run / "dagster_home", None, "backfill",
                            meta["quarters"][-1])

        results = self.interleave({"project": project, "baseline": one_quarter})
        self.add(self.paired_row(
            "orchestration", results, "<= 1.5x", 1.5,
            [f"okr backfill of all {len(meta['quarters'])} data quarters on a fresh warehouse vs "
             f"okr backfill {meta['quarters'][-1]} when its file arrives; slowest steps (all, "
             f"last run): {self.slowest(results['project'][-1]['steps'])}"]))
        self.fresh_dir(root)
        self.orchestration_import(folder, meta)

    def orchestration_import(self, folder: Path, meta: dict) -> None:
        """import pipelines.definitions (with the dataset's config) vs import dagster."""
        env = self.pipeline_args(folder, self.workdir / "runs" / "import", meta["today"])
        acme = {**env, "config_dir": str(ROOT / "examples" / "acme"),
                "data_dir": str(ROOT / "examples" / "acme" / "data")}
        timings: dict[str, list[dict]] = {"bare": [], "defs": [], "acme": []}
        for _ in range(self.scale.import_repeats):
            timings["bare"].append(self.child("import", module="dagster"))
            timings["defs"].append(self.child("import", module="pipelines.definitions", env=env))
            timings["acme"].append(self.child("import", module="pipelines.definitions", env=acme))
        median = {k: statistics.median(r["seconds"] for r in v) for k, v in timings.items()}
        peak = {k: max(r["peak_mb"] for r in v) for k, v in timings.items()}
        extra = median["defs"] - median["bare"]
        self.add(Row("orchestration-import", median["defs"], median["bare"], peak["defs"],
                     peak["bare"], "<= +0.50 s", median["defs"] / median["bare"], extra <= 0.5,
                     [f"median of {self.scale.import_repeats}: import pipelines.definitions "
                      f"{median['defs']:.2f}s with the dataset's config ({meta['metrics']} "
                      f"metrics, {meta['key_results']} KRs), {median['acme']:.2f}s with "
                      f"examples/acme; import dagster {median['bare']:.2f}s (+{extra:.2f}s, "
                      f"acme +{median['acme'] - median['bare']:.2f}s)"]))

    def sql_source(self) -> None:
        """The SQL-engine source (pushdown) vs landing the raw rows, on the same PostgreSQL
        table: interleaved pairs, min and median; the marts of both sides must agree."""
        sys.path.insert(0, str(ROOT / "tests"))
        from pg_server import postgres_server

        rows = sql_source.ROWS[self.scale_name]
        run = self.workdir / "runs" / "sql-source"
        sides = {"pushdown": ("sql_pushdown", "sql_events"),
                 "rows": ("sql_rows", "analytics_events")}  # fmt: skip
        results: dict[str, list[dict]] = {name: [] for name in sides}
        with postgres_server("bench") as server:
            os.environ["OKR_SQL_SOURCE_URL"] = server.url  # the children's, never logged
            try:
                self.log(f"sql-source: {rows:,} events into PostgreSQL")
                sql_source.fill(server.url, rows)
                for name, (_, source) in sides.items():
                    sql_source.write_config(run / name / "config", source)
                for _ in range(self.scale.pairs):
                    for name, (task, _) in sides.items():
                        warehouse = run / name / "warehouse.duckdb"
                        self.fresh(warehouse)
                        results[name].append(self.child(
                            task, warehouse=str(warehouse), config_dir=str(run / name / "config"),
                            csv=str(run / "events.csv")))  # fmt: skip
                        self.fresh(warehouse)
            finally:
                os.environ.pop("OKR_SQL_SOURCE_URL", None)
        seconds = {k: [r["seconds"] for r in v] for k, v in results.items()}
        median = {k: statistics.median(v) for k, v in seconds.items()}
        peak = {k: statistics.median(r["peak_mb"] for r in v) for k, v in results.items()}
        mine, base = results["pushdown"][0], results["rows"][0]
        agree = len({r["digest"] for v in results.values() for r in v}) == 1
        fewer = mine["rows_transferred"] * 100 <= base["rows_transferred"]
        ratio = median["pushdown"] / median["rows"]

        def phases(side: str) -> str:
            return ", ".join(f"{k} {v:.2f}s" for k, v in results[side][-1]["phases"].items())

        self.add(Row("sql-source", median["pushdown"], median["rows"], peak["pushdown"],
                     peak["rows"], "rows <= 1%", ratio, agree and fewer,
                     [f"{mine['source_rows']:,} events in PostgreSQL; rows transferred "
                      f"{mine['rows_transferred']:,} vs {base['rows_transferred']:,} "
                      f"({mine['rows_transferred'] / base['rows_transferred']:.2%}), bytes "
                      f"{mine['bytes_transferred']:,} vs {base['bytes_transferred']:,} "
                      f"({mine['bytes_transferred'] / base['bytes_transferred']:.2%}); of the "
                      f"rows, {mine['partial_rows']:,} partials (counts, sums, min, max) and "
                      f"{mine['sighting_rows']:,} distinct (day, value, id) for distinct counts",
                      f"{self.scale.pairs} interleaved pair(s), seconds min/median "
                      f"{min(seconds['pushdown']):.2f}/{median['pushdown']:.2f} vs "
                      f"{min(seconds['rows']):.2f}/{median['rows']:.2f}; phases: pushdown "
                      f"{phases('pushdown')}; rows {phases('rows')}",
                      f"marts agreement: {'OK (bit-identical)' if agree else 'MISMATCH'}"]))

    def run(self, scenarios: list[str]) -> int:
        print(machine_line(), flush=True)
        print(f"scale: {self.scale_name}; workdir: {self.workdir}; DuckDB memory_limit "
              f"{self.memory_limit}, {DUCKDB_THREADS} threads on both sides", flush=True)
        print(HEADER, flush=True)
        failed = 0
        for scenario in scenarios:
            try:
                getattr(self, scenario.replace("-", "_"))()
            except Exception as exc:  # report and go on with the other scenarios
                failed += 1
                print(f"{scenario:<22}ERROR {exc}", flush=True)
        for message in self.messages:
            print(f"note: {message}")
        return 1 if failed else 0


def machine_line() -> str:
    import duckdb
    import polars

    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return (
        f"machine: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), "
        f"{mem_kb / 1024 / 1024:.1f} GiB RAM, {platform.machine()}, Python "
        f"{platform.python_version()}, duckdb {duckdb.__version__}, polars {polars.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=list(SCALES), default="smoke")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/okr-bench"))
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per child")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--memory-limit", default="1GB",
                        help="DuckDB memory_limit of both sides (the pipeline's "
                             "OKR_DUCKDB_MEMORY_LIMIT; default 1GB, its default)")
    parser.add_argument("--profile", action="store_true",
                        help="run each child under cProfile (.prof and top functions in logs/)")
    parser.add_argument("--child", nargs=2, metavar=("TASK", "JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run_child_main(*args.child)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in scenarios if s not in (*SCENARIOS, *EXTRA_SCENARIOS)]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from "
                     f"{', '.join((*SCENARIOS, *EXTRA_SCENARIOS))}")  # fmt: skip
    runner = Runner(args.scale, args.workdir, args.timeout, verbose=not args.quiet,
                    profile=args.profile, memory_limit=args.memory_limit)
    return runner.run(scenarios)


if __name__ == "__main__":
    sys.exit(main())
