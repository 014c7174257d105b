"""Seeded benchmark data: a config folder (metrics.yaml, okrs.yaml), a data folder (CSV drop
files, analytics event exports) and flat parameter files for the plain-SQL baseline.

Everything is a pure function of the `Spec` (no random state): a value is a hash of its day,
position and the seed, so a running quarter regenerated one day later is a superset of the
earlier file, and the same spec always yields byte-identical files. DuckDB writes the files
(`COPY ... TO`), so 100M observations take about a minute, not an hour of Python loops.

Layout of one dataset folder:

    config/metrics.yaml, config/okrs.yaml   the project's config (docs/configuration.md)
    data/csv/obs_<yyyy>q<n>.csv             long CSV: date,metric_id,value,segment
    data/analytics/events_<yyyy>q<n>.jsonl  events: event, timestamp (+00:00), user_id
    params/{metrics,key_results,quarters}.csv  the same config, flat, for rollup_baseline.sql
    params/metric_defs.csv                  every metric's definition, flat, for reference.py
    meta.json                               the spec, "today" and row counts

Shape: `csv_metrics` CSV metrics (a quarter sums, a quarter averages higher-is-better, a quarter
averages lower-is-better, the rest sums) plus two event metrics (`active_users`: distinct users,
`signups`: count of signup events). Each data quarter has `krs_per_quarter` KRs in objectives of
five (increase with auto baseline and a relative or absolute target, increase/decrease from a
fixed baseline, maintain_above/below), five teams, and a yearly company objective per calendar
year as their parent. Every day has `obs_per_day` observations, spread round-robin over the CSV
metrics (several per metric and day are told apart by `segment`), and `events_per_day` events
whose users go round-robin over `users` ids, so every id appears once enough events exist.

Optional shapes (issue 15; all off by default, and then every file above is byte-identical to
what earlier versions wrote): `regions` adds a `region` column (r0..r{n-1}) and filters every
fourth CSV metric on half the regions; `ratio_metrics` adds ratios of two sum metrics, with an
`increase` (+5%, auto baseline) and a `maintain_above` KR on them in each objective group's
positions 2 and 3; `trailing_days` adds a `count_distinct` of users over a trailing window with
an `increase` (+10%, auto baseline) KR at position 4.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import duckdb
import yaml

from transforms.calendar import Quarter, quarter_from_label, quarter_of

FIRST_DAY_MEAN = 50.0  # values are uniform on [0, 100)
EVENT_METRICS = ("active_users", "signups")
TEAMS = 5
KRS_PER_OBJECTIVE = 5
OPTIONAL = ("regions", "ratio_metrics", "trailing_days")


@dataclass(frozen=True)
class Spec:
    last_quarter: str = "2025-Q4"  # the running quarter
    quarters: int = 8  # data quarters, the running one included
    today_offset: int = 44  # "today" is this many days after the running quarter's start
    obs_per_day: int = 1370
    csv_metrics: int = 998
    krs_per_quarter: int = 125
    events_per_day: int = 2740
    users: int = 1_000_000
    seed: int = 42
    # Optional shapes of the issue-15 dataset (all off by default, so the datasets above stay
    # byte-identical): a `region` dimension column with this many values, a region filter on
    # every fourth CSV metric, ratio metrics (sum / sum), and a trailing-window distinct count.
    regions: int = 0
    ratio_metrics: int = 0
    trailing_days: int = 0

    @property
    def data_quarters(self) -> list[Quarter]:
        quarters = [quarter_from_label(self.last_quarter)]
        while len(quarters) < self.quarters:
            quarters.insert(0, quarter_of(quarters[0].start - timedelta(days=1)))
        return quarters

    @property
    def today(self) -> date:
        return self.data_quarters[-1].start + timedelta(days=self.today_offset)

    @property
    def data_days(self) -> int:
        return (self.today - self.data_quarters[0].start).days + 1

    def metric_ids(self) -> list[str]:
        return [m["id"] for m in metrics_config(self)]


def region_filter(spec: Spec, k: int) -> list[str] | None:
    """The regions CSV metric k is filtered on (half of them, every fourth metric), if any."""
    if spec.regions and k % 4 == 1:
        return [f"r{j}" for j in range(max(1, spec.regions // 2))]
    return None


def ratio_parts(spec: Spec, j: int) -> tuple[str, str]:
    """Numerator and denominator of ratio metric j: two sum metrics."""
    base = (4 * j) % max(4, spec.csv_metrics - spec.csv_metrics % 4)
    return f"m{base:04d}", f"m{base + 1:04d}"


def trailing_metric(spec: Spec) -> str:
    return f"active_users_{spec.trailing_days}d"


def spec_for(observations: int, quarters: int = 8, **overrides) -> Spec:
    """A spec with about `observations` CSV rows over `quarters` data quarters."""
    probe = Spec(quarters=quarters, **overrides)
    per_day = max(1, round(observations / probe.data_days))
    return replace(probe, obs_per_day=per_day)


def metric_kind(k: int) -> str:
    """Kind of CSV metric k: sum (half), avg_high or avg_low (a quarter each)."""
    return {0: "sum", 1: "sum", 2: "avg_high", 3: "avg_low"}[k % 4]


def _unit(u: int, salt: int, seed: int) -> float:
    """A deterministic number in [0, 1) for index `u`."""
    return ((u * 2654435761 + salt * 40503 + seed * 9973) % 1_000_003) / 1_000_003


def _rows_per_metric_day(spec: Spec) -> float:
    return spec.obs_per_day / spec.csv_metrics


def quarter_sum_estimate(spec: Spec, days: int) -> float:
    """Expected sum of one sum metric over `days` days."""
    return FIRST_DAY_MEAN * _rows_per_metric_day(spec) * days


# -- config ---------------------------------------------------------------------------------------


def metrics_config(spec: Spec) -> list[dict]:
    metrics = []
    for k in range(spec.csv_metrics):
        kind = metric_kind(k)
        u = _unit(k, 1, spec.seed)
        entry = {
            "id": f"m{k:04d}",
            "name": f"Metric {k:04d} ({kind})",
            "source": "csv_observations",
            "aggregation": "sum" if kind == "sum" else "avg",
            "column": "value",
            "filter": {"metric_id": f"m{k:04d}"},
            "unit": "units",
            "direction": "lower_is_better" if kind == "avg_low" else "higher_is_better",
            "kind": "leading" if k % 2 else "lagging",
            "owner": f"team{k % TEAMS}",
        }
        if region_filter(spec, k):
            entry["filter"] = {"metric_id": f"m{k:04d}", "region": region_filter(spec, k)}
        if kind == "sum":
            target = quarter_sum_estimate(spec, 91) * (0.9 + 0.2 * u)
        elif kind == "avg_high":
            target = 48.0 + 4.0 * u
        else:
            target = 52.0 - 4.0 * u
        entry["target"] = {"value": round(target, 2), "tolerance": 0.05}
        metrics.append(entry)
    users_per_quarter = min(spec.users, spec.events_per_day * 91)
    metrics.append({
        "id": "active_users",
        "name": "Active users",
        "source": "analytics_events",
        "aggregation": "count_distinct",
        "column": "user_id",
        "unit": "users",
        "kind": "leading",
        "owner": "team0",
        "target": {"value": round(users_per_quarter * 0.95, 2), "tolerance": 0.1},
    })
    metrics.append({
        "id": "signups",
        "name": "Signups",
        "source": "analytics_events",
        "aggregation": "count",
        "filter": {"event": "signup"},
        "unit": "signups",
        "kind": "leading",
        "owner": "team1",
        "target": {"value": round(spec.events_per_day * 91 / 20 * 1.02, 2), "tolerance": 0.1},
    })
    if spec.trailing_days:
        metrics.append({
            "id": trailing_metric(spec),
            "name": f"Active users ({spec.trailing_days} days)",
            "source": "analytics_events",
            "aggregation": "count_distinct",
            "column": "user_id",
            "window": f"{spec.trailing_days}d",
            "unit": "users",
            "owner": "team2",
        })
    for j in range(spec.ratio_metrics):
        numerator, denominator = ratio_parts(spec, j)
        metrics.append({
            "id": f"ratio{j:03d}",
            "name": f"Ratio {j:03d}",
            "aggregation": "ratio",
            "numerator": numerator,
            "denominator": denominator,
            "unit": "ratio",
            "owner": f"team{j % TEAMS}",
        })
    return metrics


def key_results_of_quarter(spec: Spec, qi: int, quarter: Quarter) -> list[dict]:
    """The KRs of data quarter `qi`, as flat rows (also the baseline's parameter file)."""
    rows = []
    qdays = (quarter.end - quarter.start).days + 1
    tag = quarter.label.lower().replace("-", "")
    for i in range(spec.krs_per_quarter):
        g = qi * spec.krs_per_quarter + i
        u = _unit(g, 2, spec.seed)
        row = {
            "kr_id": f"kr-{tag}-{i:04d}",
            "objective_id": f"obj-{tag}-{i // KRS_PER_OBJECTIVE:03d}",
            "period_start": quarter.start,
            "period_end": quarter.end,
            "weight": float(1 + g % 3),
            "baseline": None,  # None: auto
            "target_abs": None,
            "target_pct": None,
        }
        if i == 0:
            row |= {"metric_id": "active_users", "kr_type": "increase", "target_pct": 0.1}
        elif i == 1:
            row |= {"metric_id": "signups", "kr_type": "increase", "target_pct": 0.2}
        elif spec.ratio_metrics and i in (2, 3):
            ratio = f"ratio{g % spec.ratio_metrics:03d}"
            if i == 2:
                row |= {"metric_id": ratio, "kr_type": "increase", "target_pct": 0.05}
            else:
                row |= {"metric_id": ratio, "kr_type": "maintain_above", "target_abs": 1.5}
        elif spec.trailing_days and i == 4:
            row |= {"metric_id": trailing_metric(spec), "kr_type": "increase", "target_pct": 0.1}
        else:
            k = g % spec.csv_metrics
            kind = metric_kind(k)
            row["metric_id"] = f"m{k:04d}"
            if kind == "sum" and g % 2 == 0:
                row |= {"kr_type": "increase", "target_pct": 0.2}
            elif kind == "sum":
                total = quarter_sum_estimate(spec, qdays) * (0.8 + 0.4 * u)
                row |= {"kr_type": "increase", "target_abs": round(total, 2)}
            elif kind == "avg_high" and g % 2 == 0:
                row |= {"kr_type": "increase", "baseline": 45.0,
                        "target_abs": round(50.0 + 10.0 * u, 2)}
            elif kind == "avg_high":
                row |= {"kr_type": "maintain_above", "target_abs": 49.0}
            elif g % 2 == 0:
                row |= {"kr_type": "decrease", "baseline": 55.0,
                        "target_abs": round(50.0 - 10.0 * u, 2)}
            else:
                row |= {"kr_type": "maintain_below", "target_abs": 51.0}
        rows.append(row)
    return rows


def objectives_config(spec: Spec) -> tuple[list[dict], list[dict], list[dict]]:
    """(okrs.yaml objectives, flat KR rows, flat objective rows)."""
    quarters = spec.data_quarters
    first, last = quarters[0].start, quarters[-1].end
    objectives, kr_rows, objective_rows = [], [], []
    years = sorted({q.start.year for q in quarters})
    for year in years:
        start, end = max(date(year, 1, 1), first), min(date(year, 12, 31), last)
        objectives.append({
            "id": f"company-{year}",
            "title": f"Company goals {year}",
            "team": "exec",
            "owner": "ceo",
            "period": {"start": start.isoformat(), "end": end.isoformat()},
            "key_results": [],
        })
        objective_rows.append({"objective_id": f"company-{year}", "success_level": 1.0})
    for qi, quarter in enumerate(quarters):
        krs = key_results_of_quarter(spec, qi, quarter)
        by_objective: dict[str, list[dict]] = {}
        for row in krs:
            by_objective.setdefault(row["objective_id"], []).append(row)
        for j, (objective_id, rows) in enumerate(by_objective.items()):
            aspirational = j % 3 == 2
            level = 0.7 if aspirational else 1.0
            objective_rows.append({"objective_id": objective_id, "success_level": level})
            key_results = []
            for row in rows:
                row["success_level"] = level
                entry = {
                    "id": row["kr_id"],
                    "title": f"{row['kr_type']} {row['metric_id']}",
                    "metric": row["metric_id"],
                    "type": row["kr_type"],
                    "weight": row["weight"],
                }
                if row["baseline"] is not None:
                    entry["baseline"] = row["baseline"]
                if row["target_pct"] is not None:
                    entry["target"] = f"+{round(row['target_pct'] * 100)}%"
                else:
                    entry["target"] = row["target_abs"]
                key_results.append(entry)
                kr_rows.append(row)
            objectives.append({
                "id": objective_id,
                "title": f"Objective {objective_id}",
                "team": f"team{j % TEAMS}",
                "owner": f"owner{j}",
                "type": "aspirational" if aspirational else "committed",
                "period": quarter.label,
                "parent": f"company-{quarter.start.year}",
                "weight": float(1 + j % 2),
                "related_metrics": [row["metric_id"] for row in rows[:2]],
                "key_results": key_results,
            })
    return objectives, kr_rows, objective_rows


def write_config(spec: Spec, folder: Path) -> None:
    config, params = folder / "config", folder / "params"
    config.mkdir(parents=True, exist_ok=True)
    params.mkdir(parents=True, exist_ok=True)
    metrics = metrics_config(spec)
    objectives, kr_rows, _ = objectives_config(spec)
    settings = {"timezone": "UTC", "fiscal_year_start_month": 1, "week_start": "monday"}
    (config / "metrics.yaml").write_text(
        yaml.safe_dump({"settings": settings, "metrics": metrics}, sort_keys=False)
    )
    (config / "okrs.yaml").write_text(yaml.safe_dump({"objectives": objectives}, sort_keys=False))
    with (params / "metrics.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["metric_id", "source", "aggregation", "event_filter", "direction",
                      "target_value", "tolerance"])
        for m in metrics:
            if "target" not in m:
                continue  # rollup_baseline.sql's shapes only (the issue-15 extras have none)
            out.writerow([
                m["id"],
                "csv" if m["source"] == "csv_observations" else "events",
                m["aggregation"],
                m.get("filter", {}).get("event", ""),
                m.get("direction", "higher_is_better"),
                m["target"]["value"],
                m["target"]["tolerance"],
            ])
    with (params / "metric_defs.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["metric_id", "source", "aggregation", "event_filter", "region_filter",
                      "window_days", "numerator", "denominator"])
        for m in metrics:
            window = m.get("window", "period")
            out.writerow([
                m["id"],
                {"csv_observations": "csv", "analytics_events": "events"}.get(m.get("source"), ""),
                m["aggregation"],
                m.get("filter", {}).get("event", ""),
                "|".join(m.get("filter", {}).get("region", [])),
                "" if window == "period" else window[:-1],
                m.get("numerator", ""),
                m.get("denominator", ""),
            ])
    columns = ["kr_id", "objective_id", "metric_id", "kr_type", "period_start", "period_end",
               "baseline", "target_abs", "target_pct", "weight", "success_level"]
    with (params / "key_results.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(columns)
        for row in kr_rows:
            out.writerow(["" if row[c] is None else row[c] for c in columns])
    write_quarters(spec.data_quarters, params / "quarters.csv")


def write_quarters(quarters: list[Quarter], path: Path) -> None:
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["quarter", "quarter_start", "quarter_end"])
        for q in quarters:
            out.writerow([q.label, q.start, q.end])


# -- data -----------------------------------------------------------------------------------------


def quarter_file_stem(quarter: Quarter) -> str:
    return quarter.label.lower().replace("-", "")


def write_quarter_data(spec: Spec, folder: Path, quarter: Quarter, last_day: date) -> int:
    """The quarter's CSV and event files with data from its start to `last_day`; returns the
    number of CSV rows. Day numbers count from 2000-01-01, so values do not depend on the spec's
    first quarter."""
    csv_dir, events_dir = folder / "data" / "csv", folder / "data" / "analytics"
    csv_dir.mkdir(parents=True, exist_ok=True)
    events_dir.mkdir(parents=True, exist_ok=True)
    stem = quarter_file_stem(quarter)
    last = min(last_day, quarter.end)
    days = (last - quarter.start).days + 1
    if days <= 0:
        return 0
    epoch = (quarter.start - date(2000, 1, 1)).days
    con = duckdb.connect(config={"threads": 2, "memory_limit": "2GB",
                                 "preserve_insertion_order": True})
    con.execute("SET enable_progress_bar = false")
    try:
        per_day, metrics, seed = spec.obs_per_day, spec.csv_metrics, spec.seed
        region = "" if not spec.regions else (
            f", 'r' || CAST(hash({epoch} + i // {per_day}, i % {per_day}, {seed} + 2)"
            f" % {spec.regions} AS VARCHAR) AS region")
        con.execute(f"""
            COPY (
                SELECT strftime(DATE '{quarter.start}' + CAST(i // {per_day} AS INTEGER),
                                '%Y-%m-%d') AS date,
                       'm' || lpad(CAST((i % {per_day}) % {metrics} AS VARCHAR), 4, '0')
                           AS metric_id,
                       round((hash({epoch} + i // {per_day}, i % {per_day}, {seed}) % 100000)
                             / 1000.0, 3) AS value,
                       's' || CAST((i % {per_day}) // {metrics} AS VARCHAR) AS segment{region}
                FROM range({days * per_day}) AS r(i)
            ) TO '{csv_dir / f"obs_{stem}.csv"}' (HEADER true, DELIMITER ',')
        """)
        per_day, users = spec.events_per_day, spec.users
        if per_day:
            con.execute(f"""
                COPY (
                    SELECT CASE WHEN h % 20 = 0 THEN 'signup'
                                WHEN h % 2 = 0 THEN 'page_view' ELSE 'session_start' END AS event,
                           strftime(DATE '{quarter.start}' + CAST(i // {per_day} AS INTEGER)
                                    + to_seconds(CAST(h % 86400 AS BIGINT)),
                                    '%Y-%m-%dT%H:%M:%S+00:00') AS "timestamp",
                           'u' || lpad(CAST((({epoch} + i // {per_day}) * {per_day}
                                             + i % {per_day}) % {users} AS VARCHAR), 7, '0')
                               AS user_id
                    FROM (SELECT i, hash({epoch} + i // {per_day}, i % {per_day}, {seed} + 1) AS h
                          FROM range({days * per_day}) AS r(i))
                ) TO '{events_dir / f"events_{stem}.jsonl"}' (FORMAT json)
            """)
    finally:
        con.close()
    return days * spec.obs_per_day


def generate(spec: Spec, folder: Path, *, force: bool = False) -> Path:
    """Write the dataset of `spec` into `folder` (skipped when meta.json says it is there)."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    # The optional shapes are left out of meta.json while off: older datasets stay valid.
    wanted = {"spec": {k: v for k, v in asdict(spec).items() if v or k not in OPTIONAL}}
    if not force and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("spec") == wanted["spec"]:
            return folder
    folder.mkdir(parents=True, exist_ok=True)
    for old in [*folder.glob("data/*/*"), meta_path]:
        old.unlink(missing_ok=True)
    write_config(spec, folder)
    rows = sum(write_quarter_data(spec, folder, q, spec.today) for q in spec.data_quarters)
    meta = {
        **wanted,
        "today": spec.today.isoformat(),
        "quarters": [q.label for q in spec.data_quarters],
        "observations": rows,
        "events": spec.events_per_day * spec.data_days,
        "metrics": len(metrics_config(spec)),
        "key_results": spec.krs_per_quarter * spec.quarters,
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a seeded benchmark dataset.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--quarters", type=int, default=8)
    parser.add_argument("--metrics", type=int, default=1000, help="metrics in all (2 are events)")
    parser.add_argument("--krs", type=int, default=1000, help="key results in all")
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--regions", type=int, default=0, help="a region column with N values")
    parser.add_argument("--ratios", type=int, default=0, help="ratio metrics (sum / sum)")
    parser.add_argument("--trailing-days", type=int, default=0,
                        help="a trailing N-day distinct count of users")
    args = parser.parse_args(argv)
    probe = Spec(quarters=args.quarters)
    spec = spec_for(
        args.observations,
        args.quarters,
        csv_metrics=args.metrics - len(EVENT_METRICS),
        krs_per_quarter=math.ceil(args.krs / args.quarters),
        events_per_day=max(1, round(args.events / probe.data_days)),
        users=args.users,
        seed=args.seed,
        regions=args.regions,
        ratio_metrics=args.ratios,
        trailing_days=args.trailing_days,
    )
    folder = generate(spec, args.folder, force=True)
    print(json.dumps(json.loads((folder / "meta.json").read_text()), indent=2))


if __name__ == "__main__":
    main()
