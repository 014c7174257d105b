"""The hand-written single-process reference of the `backfill` scenario (issue 15): every KR's
value, baseline, target, progress, expected progress, status and grade as of
min(KR end, today), straight from the raw CSV and JSONL files in one DuckDB connection.

    python -m benchmarks.reference --data DATA --params PARAMS --as-of 2025-11-14 --out ref.duckdb

It implements the docs/computation.md rules for the shapes benchmarks/generate.py writes and
only those: CSV metrics (`sum`, `avg`, a `metric_id` filter and optionally a `region` list),
event metrics (`count` with an `event` filter, `count_distinct` of `user_id`), `window: period`
or `Nd`, ratios of two such metrics over the ratio's window (a ratio of totals), KRs `increase`
/ `decrease` / `maintain_above` / `maintain_below` with a fixed or `auto` baseline (the same
number of days just before S for a period window, [S - N, S - 1] for an `Nd` one) and an
absolute or relative target. The files carry no rejects and no repeated keys, and the
timezone is UTC (the generator's settings), so the raw rows are the staged rows. The result is
the table `reference.key_result_attainment` in `--out`; the runner compares it row by row with
the project's `marts.key_result_attainment`. The parent times this process from its start to
its exit, imports included.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb

from warehouse.sql import quote_ident, quote_literal

# Windows measured: per KR its current value ('cur', as of its as-of day), its auto baseline
# ('base') and, for maintain KRs, every day of [S, as-of] ('day'). A ratio window is measured
# on its numerator and denominator ('num', 'den'), every other metric on itself ('self').
SQL = """
CREATE TEMP TABLE defs AS SELECT * FROM read_csv($defs, header = true, auto_detect = false,
    columns = {'metric_id': 'VARCHAR', 'source': 'VARCHAR', 'aggregation': 'VARCHAR',
               'event_filter': 'VARCHAR', 'region_filter': 'VARCHAR', 'window_days': 'INTEGER',
               'numerator': 'VARCHAR', 'denominator': 'VARCHAR'});
CREATE TEMP TABLE krs AS SELECT * FROM read_csv($krs, header = true, auto_detect = false,
    columns = {'kr_id': 'VARCHAR', 'objective_id': 'VARCHAR', 'metric_id': 'VARCHAR',
               'kr_type': 'VARCHAR', 'period_start': 'DATE', 'period_end': 'DATE',
               'baseline': 'DOUBLE', 'target_abs': 'DOUBLE', 'target_pct': 'DOUBLE',
               'weight': 'DOUBLE', 'success_level': 'DOUBLE'});

CREATE TEMP TABLE csv_parts AS
SELECT date, metric_id, {region} AS region, count(*)::DOUBLE AS rows_n,
       count(value)::DOUBLE AS n, sum(value) AS s
FROM read_csv($csv, header = true, auto_detect = false, columns = {columns})
GROUP BY ALL;

CREATE TEMP TABLE events AS
SELECT CAST(timezone($tz, CAST("timestamp" AS TIMESTAMPTZ)) AS DATE) AS date, event, user_id
FROM read_json($events, format = 'newline_delimited',
               columns = {'event': 'VARCHAR', 'timestamp': 'VARCHAR', 'user_id': 'VARCHAR'});

-- Daily partials of every non-distinct metric: matching rows n, their sum s, source rows src.
CREATE TEMP TABLE partials AS
WITH csv_days AS (SELECT date, sum(rows_n) AS src FROM csv_parts GROUP BY date),
ev_days AS (SELECT date, event, count(*)::DOUBLE AS k FROM events GROUP BY date, event),
csv_metric_days AS (
    SELECT m.metric_id, p.date, sum(p.n) AS n, sum(p.s) AS s
    FROM defs m JOIN csv_parts p ON p.metric_id = m.metric_id
     AND (m.region_filter IS NULL OR list_contains(string_split(m.region_filter, '|'), p.region))
    WHERE m.source = 'csv' GROUP BY ALL
)
SELECT m.metric_id, d.date, coalesce(c.n, 0) AS n, c.s, d.src
FROM defs m JOIN csv_days d ON m.source = 'csv'
LEFT JOIN csv_metric_days c ON c.metric_id = m.metric_id AND c.date = d.date
UNION ALL
SELECT m.metric_id, e.date,
       coalesce(sum(e.k) FILTER (WHERE m.event_filter IS NULL OR e.event = m.event_filter), 0),
       NULL, sum(e.k)
FROM defs m JOIN ev_days e ON m.source = 'events' AND m.aggregation <> 'count_distinct'
GROUP BY ALL;

CREATE TEMP TABLE users AS SELECT DISTINCT date, user_id FROM events WHERE user_id IS NOT NULL;
CREATE TEMP TABLE event_rows AS SELECT date, count(*)::DOUBLE AS src FROM events GROUP BY date;

CREATE TEMP TABLE kr AS
SELECT k.*, m.aggregation, m.window_days,
       m.aggregation IN ('sum', 'count', 'count_distinct') AND m.window_days IS NULL AS cumulative,
       k.kr_type IN ('maintain_above', 'maintain_below') AS maintain,
       least(k.period_end, $today::DATE) AS as_of_date,
       CAST(k.period_end - k.period_start + 1 AS INTEGER) AS n_days
FROM krs k JOIN defs m USING (metric_id);

CREATE TEMP TABLE windows AS
WITH w AS (
    SELECT kr_id, 'cur' AS role, as_of_date AS d, metric_id, window_days,
           CASE WHEN window_days IS NULL THEN period_start
                ELSE as_of_date - window_days + 1 END AS lo, as_of_date AS hi
    FROM kr
    UNION ALL
    SELECT kr_id, 'base', period_start - 1, metric_id, window_days,
           period_start - coalesce(window_days, n_days), period_start - 1
    FROM kr WHERE baseline IS NULL
    UNION ALL
    SELECT kr_id, 'day', d, metric_id, window_days,
           CASE WHEN window_days IS NULL THEN period_start ELSE d - window_days + 1 END, d
    FROM (SELECT *, unnest(generate_series(period_start, as_of_date, INTERVAL 1 DAY))::DATE AS d
          FROM kr WHERE maintain)
)
SELECT w.kr_id, w.role, w.d, w.lo, w.hi, p.part, p.metric_id, m.aggregation
FROM w JOIN defs r ON r.metric_id = w.metric_id
CROSS JOIN LATERAL (
    SELECT 'self' AS part, w.metric_id WHERE r.aggregation <> 'ratio'
    UNION ALL SELECT 'num', r.numerator WHERE r.aggregation = 'ratio'
    UNION ALL SELECT 'den', r.denominator WHERE r.aggregation = 'ratio'
) AS p(part, metric_id)
JOIN defs m ON m.metric_id = p.metric_id;

-- Zero or null: 0 when the source has rows in the window but none is selected, null when it
-- has none; an average is null without a selected row.
CREATE TEMP TABLE part_values AS
WITH sums AS (
    SELECT w.kr_id, w.role, w.d, w.part, w.aggregation,
           sum(p.n) AS n, sum(p.s) AS s, sum(p.src) AS src
    FROM windows w LEFT JOIN partials p ON p.metric_id = w.metric_id AND p.date BETWEEN w.lo AND w.hi
    WHERE w.aggregation <> 'count_distinct' GROUP BY ALL
), distincts AS (
    SELECT w.kr_id, w.role, w.d, w.part, w.aggregation,
           (SELECT count(DISTINCT u.user_id) FROM users u WHERE u.date BETWEEN w.lo AND w.hi)::DOUBLE
               AS n,
           (SELECT sum(e.src) FROM event_rows e WHERE e.date BETWEEN w.lo AND w.hi) AS src
    FROM windows w WHERE w.aggregation = 'count_distinct'
)
SELECT kr_id, role, d, part,
       CASE WHEN aggregation = 'avg' THEN CASE WHEN n > 0 THEN s / n END
            WHEN coalesce(n, 0) > 0 THEN CASE aggregation WHEN 'sum' THEN s ELSE n END
            WHEN coalesce(src, 0) > 0 THEN 0.0 END AS value
FROM (SELECT * FROM sums UNION ALL SELECT kr_id, role, d, part, aggregation, n, NULL, src
      FROM distincts);

CREATE TEMP TABLE kr_values AS
SELECT kr_id, role, d,
       CASE WHEN bool_or(part = 'self') THEN any_value(value) FILTER (WHERE part = 'self')
            ELSE any_value(value) FILTER (WHERE part = 'num')
                 / nullif(any_value(value) FILTER (WHERE part = 'den'), 0) END AS value
FROM part_values GROUP BY ALL;

CREATE TEMP TABLE resolved AS
SELECT k.*, coalesce(k.baseline, b.value) AS b,
       CASE WHEN k.target_pct IS NOT NULL
            THEN coalesce(k.baseline, b.value) + k.target_pct * abs(coalesce(k.baseline, b.value))
            ELSE k.target_abs END AS t,
       c.value AS current_value
FROM kr k
LEFT JOIN kr_values b ON b.kr_id = k.kr_id AND b.role = 'base'
LEFT JOIN kr_values c ON c.kr_id = k.kr_id AND c.role = 'cur';

CREATE TEMP TABLE maintained AS
SELECT r.kr_id, count(v.value) AS days_with_value,
       count(*) FILTER (WHERE CASE r.kr_type WHEN 'maintain_above'
                                   THEN round(v.value, 9) >= round(r.t, 9)
                                   ELSE round(v.value, 9) <= round(r.t, 9) END) AS days_met
FROM resolved r JOIN kr_values v ON v.kr_id = r.kr_id AND v.role = 'day'
GROUP BY r.kr_id;

CREATE SCHEMA reference;
CREATE TABLE reference.key_result_attainment AS
WITH flagged AS (
    SELECT r.*, m.days_with_value, m.days_met,
           r.as_of_date - r.period_start + 1 AS day_number,
           coalesce(kr_type IN ('increase', 'decrease') AND NOT cumulative AND b IS NULL, false)
           OR coalesce(kr_type IN ('increase', 'decrease') AND NOT cumulative AND b = t, false)
           OR coalesce(kr_type = 'increase' AND NOT cumulative AND t < b, false)
           OR coalesce(kr_type = 'decrease' AND t > b, false)
           OR t IS NULL
           OR coalesce(kr_type = 'increase' AND cumulative AND t <= 0, false) AS unmeasurable
    FROM resolved r LEFT JOIN maintained m USING (kr_id)
), raw AS (
    SELECT *,
           CASE WHEN unmeasurable THEN NULL
                WHEN maintain THEN CASE WHEN days_with_value > 0 THEN days_met / day_number END
                WHEN cumulative THEN current_value / t
                ELSE (current_value - b) / (t - b) END AS raw_progress,
           CASE WHEN maintain THEN 1.0
                ELSE greatest(0.0, least(1.0, day_number / n_days)) END AS expected_progress
    FROM flagged
), clamped AS (
    SELECT *, CASE WHEN raw_progress IS NOT NULL
                   THEN greatest(0.0, least(1.0, raw_progress)) END AS progress
    FROM raw
), rounded AS (SELECT *, round(progress, 9) AS p FROM clamped)
SELECT kr_id, format('{}-Q{}', year(period_start), quarter(period_start)) AS quarter,
       period_start AS quarter_start, objective_id, as_of_date, b AS baseline, t AS target,
       current_value, raw_progress, progress, expected_progress,
       CASE WHEN as_of_date < period_start THEN 'not_started'
            WHEN p IS NULL THEN 'no_data'
            WHEN CASE WHEN maintain THEN as_of_date >= period_end AND p >= round(success_level, 9)
                      ELSE round(raw_progress, 9) >= 1 END THEN 'achieved'
            WHEN as_of_date >= period_end THEN 'missed'
            WHEN round(success_level * expected_progress - p, 9) <= 0.10 THEN 'on_track'
            WHEN round(success_level * expected_progress - p, 9) <= 0.25 THEN 'at_risk'
            ELSE 'off_track' END AS status,
       CASE WHEN p < 0.4 THEN 'red' WHEN p < 0.7 THEN 'yellow'
            WHEN p IS NOT NULL THEN 'green' END AS grade
FROM rounded;
"""


def csv_columns(files: list[str]) -> tuple[str, str]:
    """read_csv's `columns` struct from the first file's header (date DATE, value DOUBLE, the
    rest text) and the region expression (NULL when the files have no region column)."""
    with open(files[0]) as handle:
        header = handle.readline().strip().split(",")
    types = {"date": "DATE", "value": "DOUBLE"}
    struct = ", ".join(f"{quote_literal(c)}: {quote_literal(types.get(c, 'VARCHAR'))}"
                       for c in header)
    return "{" + struct + "}", quote_ident("region") if "region" in header else "NULL::VARCHAR"


def compute(data: Path, params: Path, as_of: str, out: Path, memory_limit: str,
            threads: int) -> int:
    csv_files = sorted(str(p) for p in (data / "csv").glob("*.csv"))
    event_files = sorted(str(p) for p in (data / "analytics").glob("*.jsonl"))
    columns, region = csv_columns(csv_files)
    con = duckdb.connect(str(out), config={"memory_limit": memory_limit, "threads": threads})
    try:
        values = {"defs": str(params / "metric_defs.csv"), "krs": str(params / "key_results.csv"),
                  "csv": csv_files, "events": event_files, "today": as_of, "tz": "UTC"}
        sql = SQL.replace("{columns}", columns).replace("{region}", region)
        for statement in filter(str.strip, sql.split(";\n")):
            con.execute(statement, {k: v for k, v in values.items() if f"${k}" in statement})
        return con.execute("SELECT count(*) FROM reference.key_result_attainment").fetchone()[0]
    finally:
        con.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with csv/, analytics/")
    parser.add_argument("--params", type=Path, required=True, help="the dataset's params/")
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--out", type=Path, required=True, help="a new DuckDB file")
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = compute(args.data, args.params, args.as_of, args.out, args.memory_limit, args.threads)
    print(f"{rows} KR rows in {time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    main()
