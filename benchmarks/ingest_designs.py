"""Ingest designs measured side by side (issue 15): what the raw and staging layers cost against
DuckDB's bare `CREATE TABLE AS read_csv`, and what the alternatives would save and lose.

    .venv/bin/python -m benchmarks.ingest_designs DATA_CSV_FOLDER [--pairs 3]

Each design loads the same long CSV files (`date,metric_id,value[,dimension...]`) into a fresh
DuckDB file in its own process, with the pipeline's settings (1GB, 2 threads); the designs run in
turn, round after round, and each is reported as min / median seconds and its ratio (of
medians) to the bare load:

- `read_csv`: `CREATE TABLE AS SELECT * FROM read_csv(files)` (no lineage, no rejects).
- `today`: the project's raw layer (lines read as text, parsed with per-line checks that name
  file, line and field; rows with lineage into raw.csv_observations, rejects into
  raw.rejected_rows), then staging per quarter (typed, deduplicated by key).
- `raw_only` (staging as a view over raw): the same without the staging write; the marts would
  then deduplicate and type on every read.
- `single_write` (one table: parse straight into a staging-shaped table, lineage included, no
  raw copy): the project's parse into a temp table, then one typed INSERT deduplicated within
  the file. A lower bound: replacing a changed file's rows and resolving keys across files
  would come on top.
- `duckdb_rejects` (DuckDB's own CSV reader and reject tables instead of the line-exact
  parser): typed read_csv with `store_rejects` and the file name as lineage; no line number
  per row, dimensions as plain columns, no deduplication.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DESIGNS = ("read_csv", "today", "raw_only", "single_write", "duckdb_rejects")
SETTINGS = {"memory_limit": "1GB", "threads": 2}


def _files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.glob("*.csv"))


def _quarters(con) -> list:
    from transforms.calendar import quarter_of

    first, last = con.execute("SELECT min(date), max(date) FROM raw.csv_observations").fetchone()
    quarters, day = [], first
    while day <= last:
        quarter = quarter_of(day)
        quarters.append(quarter)
        day = quarter.end.fromordinal(quarter.end.toordinal() + 1)
    return quarters


def run_design(design: str, folder: Path, database: Path) -> float:
    """One load of `folder` into `database` by `design`; seconds from connect to close."""
    import duckdb

    from connectors.csv_drop import extract
    from connectors.csv_drop.extract import load_csv_folder
    from connectors.csv_drop.staging import stage_csv_observations
    from connectors.csv_drop.tables import STAGING_CSV_OBSERVATIONS
    from warehouse.staging import one_row_per_key
    from warehouse.writes import insertion_order

    start = time.perf_counter()
    con = duckdb.connect(str(database), config=SETTINGS)
    if design == "read_csv":
        con.execute("CREATE TABLE t AS SELECT * FROM read_csv(?)", [_files(folder)])
    elif design in ("today", "raw_only"):
        load_csv_folder(con, folder)
        if design == "today":
            for quarter in _quarters(con):
                stage_csv_observations(con, quarter.start, quarter.end)
    elif design == "single_write":
        table = STAGING_CSV_OBSERVATIONS
        table.create(con)
        columns = ", ".join(table.column_names)
        for number, path in enumerate(sorted(folder.glob("*.csv"))):
            extract._parse(con, path, path.name)
            rows = (
                "SELECT date, metric_id, value, dimensions::JSON AS dimensions, "
                "date_trunc('quarter', date)::DATE AS quarter_start, ? AS _source_ref, "
                f"line_no AS _source_row, ? AS _batch_id FROM {extract._ROWS} "
                "WHERE reason IS NULL"
            )
            latest = one_row_per_key(rows, "date, metric_id, dimensions", "_source_row DESC")
            with insertion_order(con, preserve=False):
                con.execute(
                    f"INSERT INTO {table.fqn} ({columns}) SELECT {columns} FROM ({latest})",
                    [path.name, f"batch-{number}"],
                )
            con.execute(f"DROP TABLE {extract._ROWS}")
    elif design == "duckdb_rejects":
        files = _files(folder)
        header = Path(files[0]).read_text(encoding="utf-8").split("\n", 1)[0].split(",")
        types = {"date": "DATE", "value": "DOUBLE"}
        columns = {name: types.get(name, "VARCHAR") for name in header}
        con.execute(
            "CREATE TABLE t AS SELECT * EXCLUDE (filename), filename AS _source_ref "
            "FROM read_csv(?, filename = true, store_rejects = true, header = true, columns = ?)",
            [files, columns],
        )
    else:
        raise ValueError(design)
    con.close()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a folder of long CSV files")
    parser.add_argument("--pairs", type=int, default=3, help="rounds over every design")
    parser.add_argument("--child", nargs=2, metavar=("DESIGN", "DATABASE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_design(args.child[0], args.folder, Path(args.child[1]))))
        return 0
    seconds: dict[str, list[float]] = {design: [] for design in DESIGNS}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.pairs):
            for design in DESIGNS:
                database = Path(scratch) / f"{design}.duckdb"
                database.unlink(missing_ok=True)
                done = subprocess.run(
                    [sys.executable, "-m", "benchmarks.ingest_designs", str(args.folder),
                     "--child", design, str(database)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                seconds[design].append(json.loads(done.stdout.splitlines()[-1]))
    base = statistics.median(seconds["read_csv"])
    print(f"{'design':<16}{'min_s':>8}{'median_s':>10}{'ratio':>8}  ({args.pairs} rounds)")
    for design, values in seconds.items():
        median = statistics.median(values)
        print(f"{design:<16}{min(values):>8.2f}{median:>10.2f}{median / base:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
