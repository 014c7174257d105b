-- The roll-up baseline: KR attainment, daily KR progress, success-metric summaries and
-- metric_daily of the benchmark config, in plain DuckDB SQL straight from the staging tables.
--
-- It implements the docs/computation.md rules for the shapes the generator writes (and only
-- those): metrics over staging.csv_observations (sum, avg; filter on metric_id) and
-- staging.analytics_events (count_distinct of user_id, count with an event filter), all with
-- `window: period`, no freshness; KRs increase / decrease / maintain_above / maintain_below with
-- a fixed or auto baseline and an absolute or relative target. The runner checks that its
-- numbers agree with the project's marts.
--
-- Placeholders (the runner substitutes them): {{params}} is the dataset's params/ folder
-- (metrics.csv, key_results.csv, quarters.csv = the quarters of the run), {{today}} the as-of
-- date. Results land in schema `baseline`.

CREATE SCHEMA IF NOT EXISTS baseline;

CREATE OR REPLACE TEMP TABLE p_metrics AS
SELECT * FROM read_csv('{{params}}/metrics.csv', header = true, auto_detect = false, columns = {
    'metric_id': 'VARCHAR', 'source': 'VARCHAR', 'aggregation': 'VARCHAR',
    'event_filter': 'VARCHAR', 'direction': 'VARCHAR', 'target_value': 'DOUBLE',
    'tolerance': 'DOUBLE'});

CREATE OR REPLACE TEMP TABLE p_krs AS
SELECT * FROM read_csv('{{params}}/key_results.csv', header = true, auto_detect = false, columns = {
    'kr_id': 'VARCHAR', 'objective_id': 'VARCHAR', 'metric_id': 'VARCHAR', 'kr_type': 'VARCHAR',
    'period_start': 'DATE', 'period_end': 'DATE', 'baseline': 'DOUBLE', 'target_abs': 'DOUBLE',
    'target_pct': 'DOUBLE', 'weight': 'DOUBLE', 'success_level': 'DOUBLE'});

CREATE OR REPLACE TEMP TABLE p_quarters AS
SELECT * FROM read_csv('{{params}}/quarters.csv', header = true, auto_detect = false, columns = {
    'quarter': 'VARCHAR', 'quarter_start': 'DATE', 'quarter_end': 'DATE'});

-- 1. Daily partials: per metric and day its source has rows, the matching rows n, their sum s
--    and all the source's rows source_n (a sum is 0, not null, when the source has rows).
CREATE OR REPLACE TEMP TABLE partials AS
WITH csv_days AS (
    SELECT date, count(*)::DOUBLE AS source_n FROM staging.csv_observations GROUP BY date
), csv_metric_days AS (
    SELECT metric_id, date, count(value)::DOUBLE AS n, sum(value) AS s
    FROM staging.csv_observations GROUP BY metric_id, date
), event_days AS (
    SELECT date, event, count(*)::DOUBLE AS rows_n
    FROM staging.analytics_events GROUP BY date, event
)
SELECT m.metric_id, d.date, coalesce(c.n, 0) AS n, c.s, d.source_n
FROM p_metrics m
JOIN csv_days d ON m.source = 'csv'
LEFT JOIN csv_metric_days c ON c.metric_id = m.metric_id AND c.date = d.date
UNION ALL
SELECT m.metric_id, e.date,
       sum(e.rows_n) FILTER (WHERE m.event_filter IS NULL OR e.event = m.event_filter) AS n,
       NULL::DOUBLE AS s, sum(e.rows_n) AS source_n
FROM p_metrics m JOIN event_days e ON m.source = 'events'
GROUP BY m.metric_id, e.date;

CREATE OR REPLACE TEMP TABLE users AS
SELECT DISTINCT date, user_id FROM staging.analytics_events WHERE user_id IS NOT NULL;

-- 2. KRs: resolved baseline (auto = the same-length window just before the KR) and target.
CREATE OR REPLACE TEMP TABLE kr AS
SELECT k.*, m.aggregation,
       m.aggregation IN ('sum', 'count', 'count_distinct') AS cumulative,
       k.kr_type IN ('maintain_above', 'maintain_below', 'within_range') AS maintain,
       k.period_start - CAST(k.period_end - k.period_start + 1 AS INTEGER) AS base_start,
       k.period_start - 1 AS base_end,
       least(k.period_end, DATE '{{today}}', (SELECT max(quarter_end) FROM p_quarters)) AS last_day
FROM p_krs k JOIN p_metrics m USING (metric_id);

CREATE OR REPLACE TEMP TABLE kr_resolved AS
WITH windowed AS (
    SELECT k.kr_id, k.aggregation, sum(p.n) AS n, sum(p.s) AS s, sum(p.source_n) AS source_n
    FROM kr k
    LEFT JOIN partials p ON p.metric_id = k.metric_id AND p.date BETWEEN k.base_start AND k.base_end
    WHERE k.baseline IS NULL
    GROUP BY k.kr_id, k.aggregation
), distinct_users AS (
    SELECT k.kr_id, count(DISTINCT u.user_id)::DOUBLE AS distinct_n
    FROM kr k JOIN users u ON u.date BETWEEN k.base_start AND k.base_end
    WHERE k.baseline IS NULL AND k.aggregation = 'count_distinct'
    GROUP BY k.kr_id
), auto AS (
    SELECT w.kr_id,
           CASE WHEN w.aggregation = 'avg' THEN CASE WHEN w.n > 0 THEN w.s / w.n END
                WHEN coalesce(w.n, 0) > 0 THEN CASE w.aggregation WHEN 'sum' THEN w.s
                    WHEN 'count' THEN w.n ELSE coalesce(d.distinct_n, 0) END
                WHEN coalesce(w.source_n, 0) > 0 THEN 0.0 END AS auto_baseline
    FROM windowed w LEFT JOIN distinct_users d USING (kr_id)
)
SELECT k.*, coalesce(k.baseline, a.auto_baseline) AS b,
       CASE WHEN k.target_pct IS NOT NULL
            THEN coalesce(k.baseline, a.auto_baseline)
                 + k.target_pct * abs(coalesce(k.baseline, a.auto_baseline))
            ELSE k.target_abs END AS t
FROM kr k LEFT JOIN auto a USING (kr_id);

-- 3. Measured value a(d) of each KR on each day of its window up to the horizon: the
--    aggregation over [S, d] (distinct users counted from the day each is first seen).
CREATE OR REPLACE TEMP TABLE kr_series AS
WITH days AS (
    SELECT kr_id, metric_id,
           unnest(generate_series(period_start, last_day, INTERVAL 1 DAY))::DATE AS date
    FROM kr_resolved WHERE last_day >= period_start
), running AS (
    SELECT d.kr_id, d.date,
           sum(coalesce(p.n, 0)) OVER w AS cn, sum(coalesce(p.s, 0)) OVER w AS cs,
           sum(coalesce(p.source_n, 0)) OVER w AS csrc
    FROM days d LEFT JOIN partials p ON p.metric_id = d.metric_id AND p.date = d.date
    WINDOW w AS (PARTITION BY d.kr_id ORDER BY d.date ROWS UNBOUNDED PRECEDING)
), first_seen AS (
    SELECT kr_id, first_day AS date, count(*)::DOUBLE AS new_users FROM (
        SELECT k.kr_id, u.user_id, min(u.date) AS first_day
        FROM kr_resolved k JOIN users u ON u.date BETWEEN k.period_start AND k.last_day
        WHERE k.aggregation = 'count_distinct'
        GROUP BY k.kr_id, u.user_id
    ) GROUP BY kr_id, first_day
), with_users AS (
    SELECT r.*, sum(coalesce(f.new_users, 0)) OVER (
               PARTITION BY r.kr_id ORDER BY r.date ROWS UNBOUNDED PRECEDING) AS users_so_far
    FROM running r LEFT JOIN first_seen f ON f.kr_id = r.kr_id AND f.date = r.date
)
SELECT r.kr_id, r.date,
       CASE WHEN k.aggregation = 'avg' THEN CASE WHEN r.cn > 0 THEN r.cs / r.cn END
            WHEN r.cn > 0 THEN CASE k.aggregation WHEN 'sum' THEN r.cs WHEN 'count' THEN r.cn
                ELSE r.users_so_far END
            WHEN r.csrc > 0 THEN 0.0 END AS value
FROM with_users r JOIN kr_resolved k USING (kr_id);

-- 4. Progress, expected progress, status and grade per KR and day.
CREATE OR REPLACE TEMP TABLE kr_daily AS
WITH base AS (
    SELECT s.date, s.value, round(s.value, 9) AS a, k.*,
           s.date - k.period_start + 1 AS day_number,
           k.period_end - k.period_start + 1 AS window_days
    FROM kr_series s JOIN kr_resolved k USING (kr_id)
), flagged AS (
    SELECT *,
           count(value) OVER w AS days_with_value,
           sum(CASE WHEN coalesce(CASE kr_type WHEN 'maintain_above' THEN a >= round(t, 9)
                                               WHEN 'maintain_below' THEN a <= round(t, 9) END,
                                  false) THEN 1.0 ELSE 0.0 END) OVER w AS days_met,
           coalesce(kr_type IN ('increase', 'decrease') AND NOT cumulative AND b IS NULL, false)
           OR coalesce(kr_type IN ('increase', 'decrease') AND NOT cumulative AND b = t, false)
           OR coalesce(kr_type = 'increase' AND NOT cumulative AND t < b, false)
           OR coalesce(kr_type = 'decrease' AND t > b, false)
           OR coalesce(kr_type <> 'within_range' AND t IS NULL, false)
           OR coalesce(kr_type = 'increase' AND cumulative AND t <= 0, false) AS unmeasurable
    FROM base
    WINDOW w AS (PARTITION BY kr_id ORDER BY date ROWS UNBOUNDED PRECEDING)
), raw AS (
    SELECT *,
           CASE WHEN unmeasurable THEN NULL
                WHEN maintain THEN CASE WHEN days_with_value > 0 THEN days_met / day_number END
                WHEN cumulative THEN value / t
                ELSE (value - b) / (t - b) END AS raw_progress,
           CASE WHEN maintain THEN 1.0
                ELSE greatest(0.0, least(1.0, day_number / window_days)) END AS expected_progress
    FROM flagged
), clamped AS (
    SELECT *,
           CASE WHEN raw_progress IS NOT NULL
                THEN greatest(0.0, least(1.0, raw_progress)) END AS progress
    FROM raw
), rounded AS (
    SELECT *, round(progress, 9) AS p FROM clamped
)
SELECT kr_id, objective_id, metric_id, kr_type, period_start, period_end, b AS baseline,
       t AS target, weight, date, value, raw_progress, progress, expected_progress,
       CASE WHEN date < period_start THEN 'not_started'
            WHEN p IS NULL THEN 'no_data'
            WHEN CASE WHEN maintain THEN date >= period_end AND p >= round(success_level, 9)
                      ELSE round(raw_progress, 9) >= 1 END THEN 'achieved'
            WHEN date >= period_end THEN 'missed'
            WHEN round(success_level * expected_progress - p, 9) <= 0.10 THEN 'on_track'
            WHEN round(success_level * expected_progress - p, 9) <= 0.25 THEN 'at_risk'
            ELSE 'off_track' END AS status,
       CASE WHEN p < 0.4 THEN 'red' WHEN p < 0.7 THEN 'yellow'
            WHEN p IS NOT NULL THEN 'green' END AS grade
FROM rounded;

CREATE OR REPLACE TABLE baseline.key_result_progress_daily AS
SELECT d.kr_id, q.quarter, q.quarter_start, d.date AS as_of_date, d.value AS current_value,
       d.raw_progress, d.progress, d.expected_progress, d.status, d.grade
FROM kr_daily d JOIN p_quarters q ON d.date BETWEEN q.quarter_start AND q.quarter_end;

CREATE OR REPLACE TABLE baseline.key_result_attainment AS
SELECT k.kr_id, k.objective_id, q.quarter, q.quarter_start, a.as_of_date, k.b AS baseline,
       k.t AS target, d.value AS current_value, d.raw_progress, d.progress, d.expected_progress,
       CASE WHEN a.as_of_date < k.period_start THEN 'not_started' ELSE d.status END AS status,
       d.grade
FROM kr_resolved k
JOIN p_quarters q ON k.period_start <= q.quarter_end AND k.period_end >= q.quarter_start
CROSS JOIN LATERAL (
    SELECT least(q.quarter_end, k.period_end, DATE '{{today}}') AS as_of_date) AS a
LEFT JOIN kr_daily d ON d.kr_id = k.kr_id AND d.date = a.as_of_date;

-- 5. Success-metric summaries: every period of every grain from the metric's first data (or
--    the first reported period) to the last reported one, measured over its own days up to today.
CREATE OR REPLACE TEMP TABLE calendar AS
SELECT unnest(generate_series(lo, hi, INTERVAL 1 DAY))::DATE AS date
FROM (SELECT least(min(quarter_start) - 7, (SELECT min(date) FROM partials)) AS lo,
             max(quarter_end) + 7 AS hi FROM p_quarters);

CREATE OR REPLACE TEMP TABLE periods AS
SELECT DISTINCT grain, period_start,
       CASE grain WHEN 'week' THEN period_start + 6
                  WHEN 'month' THEN (period_start + INTERVAL 1 MONTH)::DATE - 1
                  ELSE (period_start + INTERVAL 3 MONTH)::DATE - 1 END AS period_end
FROM (
    SELECT g.grain, date_trunc(g.grain, c.date)::DATE AS period_start
    FROM calendar c CROSS JOIN (VALUES ('week'), ('month'), ('quarter')) AS g(grain)
);

-- Periods a run reports: those ending in one of its quarters that have started by today.
CREATE OR REPLACE TEMP TABLE reported AS
SELECT p.grain, p.period_start, q.quarter, q.quarter_start,
       CASE p.grain WHEN 'week' THEN strftime(p.period_start, '%Y-%m-%d')
                    WHEN 'month' THEN strftime(p.period_start, '%Y-%m')
                    ELSE q.quarter END AS period_label
FROM periods p JOIN p_quarters q ON p.period_end BETWEEN q.quarter_start AND q.quarter_end
WHERE p.period_start <= DATE '{{today}}';

CREATE OR REPLACE TEMP TABLE history AS
WITH first_reported AS (SELECT min(period_start) AS d FROM reported),
earliest AS (SELECT metric_id, min(date) AS d FROM partials WHERE source_n > 0 GROUP BY metric_id),
last_starts AS (SELECT grain, max(period_start) AS last_start FROM reported GROUP BY grain)
SELECT m.metric_id, p.grain, p.period_start, p.period_end,
       least(p.period_end, DATE '{{today}}') AS as_of_date
FROM p_metrics m
LEFT JOIN earliest e USING (metric_id)
CROSS JOIN first_reported f
CROSS JOIN periods p
JOIN last_starts l ON l.grain = p.grain
WHERE p.period_end >= least(f.d, coalesce(e.d, f.d)) AND p.period_start <= l.last_start;

CREATE OR REPLACE TEMP TABLE period_values AS
WITH sums AS (
    SELECT metric_id, g.grain, date_trunc(g.grain, date)::DATE AS period_start,
           sum(n) AS n, sum(s) AS s, sum(source_n) AS source_n
    FROM partials CROSS JOIN (VALUES ('week'), ('month'), ('quarter')) AS g(grain)
    WHERE date <= DATE '{{today}}'
    GROUP BY ALL
), distincts AS (
    SELECT g.grain, date_trunc(g.grain, date)::DATE AS period_start,
           count(DISTINCT user_id)::DOUBLE AS distinct_n
    FROM users CROSS JOIN (VALUES ('week'), ('month'), ('quarter')) AS g(grain)
    WHERE date <= DATE '{{today}}'
    GROUP BY ALL
), targets AS (
    -- sum and count targets are per quarter, spread evenly over its days
    SELECT h.metric_id, h.grain, h.period_start,
           sum(m.target_value * (least(q.period_end, h.period_end)
                                 - greatest(q.period_start, h.period_start) + 1)
               / (q.period_end - q.period_start + 1)) AS spread_target
    FROM history h JOIN p_metrics m USING (metric_id)
    JOIN periods q ON q.grain = 'quarter' AND q.period_start <= h.period_end
                   AND q.period_end >= h.period_start
    WHERE m.aggregation IN ('sum', 'count')
    GROUP BY ALL
)
SELECT h.*, m.aggregation, m.direction, m.tolerance,
       CASE WHEN m.aggregation = 'avg' THEN CASE WHEN s.n > 0 THEN s.s / s.n END
            WHEN coalesce(s.n, 0) > 0 THEN CASE m.aggregation WHEN 'sum' THEN s.s
                WHEN 'count' THEN s.n ELSE coalesce(d.distinct_n, 0) END
            WHEN coalesce(s.source_n, 0) > 0 THEN 0.0 END AS value,
       CASE WHEN m.aggregation IN ('sum', 'count') THEN t.spread_target
            WHEN m.aggregation = 'count_distinct' THEN
                 CASE WHEN h.grain = 'quarter' THEN m.target_value END
            ELSE m.target_value END AS target_value,
       h.period_end <= DATE '{{today}}' AS is_complete,
       (h.as_of_date - h.period_start + 1) / (h.period_end - h.period_start + 1) AS elapsed_share,
       h.period_end > DATE '{{today}}' AND m.aggregation <> 'avg' AS is_provisional
FROM history h JOIN p_metrics m USING (metric_id)
LEFT JOIN sums s USING (metric_id, grain, period_start)
LEFT JOIN distincts d ON m.aggregation = 'count_distinct' AND d.grain = h.grain
                      AND d.period_start = h.period_start
LEFT JOIN targets t USING (metric_id, grain, period_start);

CREATE OR REPLACE TABLE baseline.success_metric_summary AS
WITH health_targets AS (
    SELECT *,
           CASE WHEN is_provisional AND aggregation IN ('sum', 'count')
                THEN target_value * elapsed_share ELSE target_value END AS health_target
    FROM period_values
), compared AS (
    SELECT v.*,
           lag(v.value) OVER w AS previous_value,
           y.value AS yoy_value,
           (coalesce(v.value, 0) + coalesce(lag(v.value) OVER w, 0)
            + coalesce(lag(v.value, 2) OVER w, 0))
           / nullif((v.value IS NOT NULL)::INT + (lag(v.value) OVER w IS NOT NULL)::INT
                    + (lag(v.value, 2) OVER w IS NOT NULL)::INT, 0) AS rolling_avg_3,
           CASE WHEN v.health_target IS NULL THEN 'no_target'
                WHEN v.value IS NULL THEN 'no_data'
                WHEN CASE WHEN v.direction = 'higher_is_better'
                          THEN round(v.value, 9) >= round(v.health_target, 9)
                          ELSE round(v.value, 9) <= round(v.health_target, 9) END THEN 'green'
                WHEN CASE WHEN v.direction = 'higher_is_better'
                          THEN round(v.value, 9) >= round(v.health_target
                               - coalesce(v.tolerance, 0) * abs(v.health_target), 9)
                          ELSE round(v.value, 9) <= round(v.health_target
                               + coalesce(v.tolerance, 0) * abs(v.health_target), 9) END
                     THEN 'yellow'
                ELSE 'red' END AS health
    FROM health_targets v
    LEFT JOIN period_values y
        ON y.metric_id = v.metric_id AND y.grain = v.grain
       AND y.period_start = CASE WHEN v.grain = 'week' THEN v.period_start - 364
                                 ELSE (v.period_start - INTERVAL 1 YEAR)::DATE END
    WINDOW w AS (PARTITION BY v.metric_id, v.grain ORDER BY v.period_start)
), runs AS (
    SELECT *, sum(CASE WHEN health = 'red' THEN 0 ELSE 1 END) OVER (
                  PARTITION BY metric_id, grain ORDER BY period_start
                  ROWS UNBOUNDED PRECEDING) AS run
    FROM compared
)
SELECT r.metric_id, r.grain, r.period_start, r.period_end, rep.period_label, rep.quarter,
       rep.quarter_start, r.as_of_date, r.is_complete, r.elapsed_share, r.value,
       r.previous_value, r.value - r.previous_value AS change_abs,
       CASE WHEN round(r.previous_value, 9) <> 0
            THEN (r.value - r.previous_value) / abs(r.previous_value) END AS change_pct,
       r.yoy_value,
       CASE WHEN round(r.yoy_value, 9) <> 0
            THEN (r.value - r.yoy_value) / abs(r.yoy_value) END AS yoy_change_pct,
       r.rolling_avg_3, r.target_value, r.health_target, r.health, r.is_provisional,
       sum(CASE WHEN r.health = 'red' THEN 1 ELSE 0 END) OVER (
           PARTITION BY r.metric_id, r.grain, r.run ORDER BY r.period_start
           ROWS UNBOUNDED PRECEDING) AS consecutive_red
FROM runs r JOIN reported rep USING (grain, period_start);

-- 6. metric_daily: each metric's own value on each day of the run's quarters up to today.
CREATE OR REPLACE TABLE baseline.metric_daily AS
WITH days AS (
    SELECT quarter, quarter_start,
           unnest(generate_series(quarter_start, least(quarter_end, DATE '{{today}}'),
                                  INTERVAL 1 DAY))::DATE AS date
    FROM p_quarters WHERE quarter_start <= DATE '{{today}}'
), daily_users AS (
    SELECT date, count(*)::DOUBLE AS distinct_n FROM users GROUP BY date
)
SELECT m.metric_id, d.date, d.quarter, d.quarter_start,
       CASE WHEN m.aggregation = 'avg' THEN CASE WHEN p.n > 0 THEN p.s / p.n END
            WHEN coalesce(p.n, 0) > 0 THEN CASE m.aggregation WHEN 'sum' THEN p.s
                WHEN 'count' THEN p.n ELSE coalesce(u.distinct_n, 0) END
            WHEN coalesce(p.source_n, 0) > 0 THEN 0.0 END AS value
FROM p_metrics m CROSS JOIN days d
LEFT JOIN partials p ON p.metric_id = m.metric_id AND p.date = d.date
LEFT JOIN daily_users u ON m.aggregation = 'count_distinct' AND u.date = d.date;
