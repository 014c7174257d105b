-- Example queries for BI tools against the published snapshot (OKR_BI_SNAPSHOT).
-- The README shows them, and tests run every one against a real snapshot.

-- 1. The current status of every key result (its latest quarter row).
SELECT kr_id, kr_title, objective_id, team, quarter, as_of_date,
       current_value, target, round(progress, 3) AS progress,
       round(expected_progress, 3) AS expected, status, grade
FROM marts.key_result_attainment
QUALIFY row_number() OVER (PARTITION BY kr_id ORDER BY quarter_start DESC) = 1
ORDER BY team, objective_id, kr_id;

-- 2. A KR burn-up: progress against expected, day by day (pick any kr_id).
SELECT as_of_date, progress, expected_progress, status
FROM marts.key_result_progress_daily
WHERE kr_id = (SELECT min(kr_id) FROM marts.key_result_progress_daily)
ORDER BY as_of_date;

-- 3. Team roll-up per quarter.
SELECT quarter, team, round(score_weighted, 3) AS score_weighted,
       round(score_unweighted, 3) AS score_unweighted,
       round(expected_progress, 3) AS expected, objective_count
FROM marts.team_attainment
ORDER BY quarter_start, team;

-- 4. KPI health over time: monthly values against target, with the red streak.
SELECT s.metric_id, m.name, s.period_label, s.value, s.target_value, s.health,
       s.consecutive_red, s.is_complete
FROM marts.success_metric_summary AS s
JOIN marts.dim_metrics AS m USING (metric_id)
WHERE s.grain = 'month'
ORDER BY s.metric_id, s.period_start;
