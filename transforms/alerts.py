"""Alerts (docs/alerts.md): the transitions in the published marts that need a person, each with
a run key that names the transition itself, so the sensor that posts them (pipelines/alerts.py)
alerts once per transition however often the pipeline re-runs on the same data.

- `kr_status`: a KR shown at_risk or off_track in its latest quarter; dated by the first day of
  the current run of that status in the daily burn-up.
- `kpi_red`: a KPI whose latest period at its target grain is red; dated by the period where
  the current red streak started.
- `stale`: a metric whose KRs are shown stale; dated by its last day with data.
- `restated`: a closed quarter's grade that no longer matches what was recorded at the close;
  keyed by the restated numbers, so a further restatement alerts again.

Reads a connection to the BI snapshot (or the warehouse: the same `marts` tables and views);
every value from data is a bind parameter or a payload field, never SQL text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb

from transforms.calendar import add_months
from transforms.kpi import MARTS_SUCCESS_METRIC_SUMMARY
from transforms.reported import MARTS_GRADE_RESTATEMENTS
from transforms.tables import (
    MARTS_DIM_METRICS,
    MARTS_KEY_RESULT_ATTAINMENT,
    MARTS_KEY_RESULT_PROGRESS_DAILY,
)
from transforms.units import format_value
from warehouse.writes import relation_names

ALERTED_STATUSES = ("at_risk", "off_track")
CHECKIN_FACTS = (
    "checkin_date",
    "checkin_author",
    "confidence",
    "confidence_level",
    "checkin_comment",
    "confidence_flag",
)
PAYLOAD_VERSION = 1


@dataclass(frozen=True)
class Alert:
    key: str
    """The run key: kind, object and what dates the transition; equal for the same transition."""
    kind: str
    object_id: str
    quarter: str | None
    payload: Mapping[str, Any] = field(hash=False)
    """Slack-compatible message: `text`, `blocks`, and the same facts as data under `okr`."""


def pending_alerts(con: duckdb.DuckDBPyConnection, today: date) -> list[Alert]:
    """Every transition the marts show now, ordered by kind, then object. A table missing from
    an older snapshot gives no alerts of its kind instead of failing the others."""
    present = relation_names(con)

    def has(*tables: Any) -> bool:
        return all(table.fqn in present for table in tables)

    alerts: list[Alert] = []
    if has(MARTS_KEY_RESULT_ATTAINMENT, MARTS_KEY_RESULT_PROGRESS_DAILY):
        alerts += _kr_status(con)
    if has(MARTS_SUCCESS_METRIC_SUMMARY, MARTS_DIM_METRICS):
        alerts += _kpi_red(con, today)
    if has(MARTS_KEY_RESULT_ATTAINMENT, MARTS_DIM_METRICS):
        alerts += _stale(con)
    if has(MARTS_GRADE_RESTATEMENTS):
        alerts += _restated(con)
    return alerts


def _records(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


_LATEST_KR = f"""
    SELECT * FROM {MARTS_KEY_RESULT_ATTAINMENT.fqn}
    QUALIFY row_number() OVER (PARTITION BY kr_id ORDER BY quarter_start DESC) = 1
"""

# -- kr_status ----------------------------------------------------------------------------------

_KR_STATUS = f"""
    WITH alerting AS (
        SELECT * FROM ({_LATEST_KR}) WHERE display_status IN (SELECT unnest(?::VARCHAR[]))
    ),
    before AS (  -- the last day up to the row's as-of date with another status
        SELECT a.kr_id, max(d.as_of_date) AS day, arg_max(d.status, d.as_of_date) AS status
        FROM alerting a JOIN {MARTS_KEY_RESULT_PROGRESS_DAILY.fqn} d
          ON d.kr_id = a.kr_id AND d.as_of_date <= a.as_of_date AND d.status <> a.status
        GROUP BY a.kr_id
    ),
    since AS (
        SELECT a.kr_id, min(d.as_of_date) AS day
        FROM alerting a LEFT JOIN before b USING (kr_id)
        JOIN {MARTS_KEY_RESULT_PROGRESS_DAILY.fqn} d
          ON d.kr_id = a.kr_id AND d.as_of_date <= a.as_of_date
         AND (b.day IS NULL OR d.as_of_date > b.day)
        GROUP BY a.kr_id
    )
    SELECT a.*, coalesce(s.day, a.as_of_date) AS since, b.status AS previous_status
    FROM alerting a LEFT JOIN before b USING (kr_id) LEFT JOIN since s USING (kr_id)
    ORDER BY a.kr_id
"""


def _kr_status(con: duckdb.DuckDBPyConnection) -> list[Alert]:
    """A KR shown (display_status) at_risk or off_track: a stale KR is alerted as stale, and one
    judged on too few cases is not judged. The run of its status is walked back on the daily
    status, so the same run keeps its key and a new run (off, on, off again) gets a new one."""
    alerts = []
    for row in _records(con, _KR_STATUS, [list(ALERTED_STATUSES)]):
        since = row["since"]
        status = row["status"]
        title = row["kr_title"]
        text = (
            f"Key result {title} ({row['kr_id']}) is {_words(status)} since {since}"
            f"{_was(row['previous_status'])}: progress {_pct(row['progress'])} against "
            f"{_pct(row['expected_progress'])} expected ({row['quarter']}, team {row['team']}"
            f"{', owner ' + row['owner'] if row['owner'] else ''}).{_checkin(row)}"
        )
        alerts.append(
            _alert(
                key=f"kr-status:{row['kr_id']}:{status}:{since}",
                kind="kr_status",
                object_id=row["kr_id"],
                quarter=row["quarter"],
                text=text,
                facts={
                    "title": title,
                    "from": row["previous_status"],
                    "to": status,
                    "date": since,
                    "as_of": row["as_of_date"],
                    "objective_id": row["objective_id"],
                    "team": row["team"],
                    "owner": row["owner"],
                    "metric_id": row["metric_id"],
                    "value": row["current_value"],
                    "target": row["target"],
                    "progress": row["progress"],
                    "expected_progress": row["expected_progress"],
                    # the owner's latest check-in of the quarter (null in marts before check-ins)
                    **{name: row.get(name) for name in CHECKIN_FACTS},
                },
            )
        )
    return alerts


# -- kpi_red ------------------------------------------------------------------------------------

_KPI_LATEST = f"""
    SELECT s.metric_id, s.metric_name, s.grain, s.period_start, s.period_end, s.period_label,
           s.quarter, s.value, s.health_target, s.target_value, s.health, s.consecutive_red,
           s.is_provisional, s.unit, s.direction, s.as_of_date
    FROM {MARTS_SUCCESS_METRIC_SUMMARY.fqn} s JOIN {MARTS_DIM_METRICS.fqn} m USING (metric_id)
    WHERE s.grain = coalesce(m.target_grain, 'quarter') AND s.period_start <= ?
    QUALIFY row_number() OVER (PARTITION BY s.metric_id ORDER BY s.period_start DESC) = 1
    ORDER BY s.metric_id
"""
_KPI_BEFORE = f"""
    WITH streak AS (
        SELECT unnest(?::VARCHAR[]) AS metric_id, unnest(?::VARCHAR[]) AS grain,
               unnest(?::DATE[]) AS start
    )
    SELECT w.metric_id, w.grain, w.start, s.health
    FROM streak w ASOF LEFT JOIN {MARTS_SUCCESS_METRIC_SUMMARY.fqn} s
        ON w.metric_id = s.metric_id AND w.grain = s.grain AND w.start > s.period_start
"""
"""The health of the period before each red streak, in one query for all of them."""


def periods_back(grain: str, start: date, periods: int) -> date:
    """The first day of the period `periods` before the one starting at `start` (weeks are 7
    days, months and fiscal quarters whole calendar months): where a red streak began, worked
    out from its length, so the key does not depend on which earlier periods the marts hold."""
    if grain == "week":
        return start - timedelta(weeks=periods)
    return add_months(start, -periods * (3 if grain == "quarter" else 1))


def _kpi_red(con: duckdb.DuckDBPyConnection, today: date) -> list[Alert]:
    """A KPI whose latest period (started by `today`) at its target grain is red. The key names
    the period its red streak started in: the streak keeps one key while it lasts."""
    red = [row for row in _records(con, _KPI_LATEST, [today]) if row["health"] == "red"]
    starts = [
        periods_back(row["grain"], row["period_start"], int(row["consecutive_red"]) - 1)
        for row in red
    ]
    before = {
        (metric_id, grain, start): health
        for metric_id, grain, start, health in con.execute(
            _KPI_BEFORE,
            [[row["metric_id"] for row in red], [row["grain"] for row in red], starts],
        ).fetchall()
    }
    alerts = []
    for row, start in zip(red, starts, strict=True):
        grain, streak = row["grain"], int(row["consecutive_red"])
        name, unit = row["metric_name"], row["unit"]
        periods = f"{streak} {grain}{'s' if streak != 1 else ''} in a row"
        text = (
            f"KPI {name} ({row['metric_id']}) is red for the {grain} {row['period_label']}: "
            f"{_num(row['value'], unit)} against {_num(row['health_target'], unit)}"
            f"{' so far' if row['is_provisional'] else ''} ({periods}, since {start})."
        )
        alerts.append(
            _alert(
                key=f"kpi-red:{row['metric_id']}:{grain}:{start}",
                kind="kpi_red",
                object_id=row["metric_id"],
                quarter=row["quarter"],
                text=text,
                facts={
                    "title": name,
                    "from": before[(row["metric_id"], grain, start)],
                    "to": "red",
                    "date": start,
                    "as_of": row["as_of_date"],
                    "grain": grain,
                    "period": row["period_label"],
                    "period_start": row["period_start"],
                    "period_end": row["period_end"],
                    "consecutive_red": streak,
                    "value": row["value"],
                    "health_target": row["health_target"],
                    "target": row["target_value"],
                    "is_provisional": row["is_provisional"],
                    "unit": unit,
                    "direction": row["direction"],
                },
            )
        )
    return alerts


# -- stale --------------------------------------------------------------------------------------

_STALE = f"""
    SELECT k.metric_id, k.data_through, any_value(m.name) AS metric_name,
           any_value(m.source) AS source, max(k.quarter) AS quarter, max(k.as_of_date) AS as_of,
           max(k.stale_after_days) AS stale_after_days,
           list(k.kr_id ORDER BY k.kr_id) AS kr_ids
    FROM ({_LATEST_KR}) k LEFT JOIN {MARTS_DIM_METRICS.fqn} m USING (metric_id)
    WHERE k.display_status = 'stale'
    GROUP BY k.metric_id, k.data_through
    ORDER BY k.metric_id, k.data_through
"""


def _stale(con: duckdb.DuckDBPyConnection) -> list[Alert]:
    """One alert per metric and last day with data: new data followed by a new gap alerts
    again, the same gap once."""
    alerts = []
    for row in _records(con, _STALE):
        metric_id, through = row["metric_id"], row["data_through"]
        name = row["metric_name"] or metric_id
        source = f"source {row['source']}, " if row["source"] else ""
        since = f"since {through}" if through else "at all"
        krs = row["kr_ids"]
        text = (
            f"No new data for metric {name} ({source}{metric_id}) {since}, as of {row['as_of']}: "
            f"{len(krs)} key result{'s' if len(krs) != 1 else ''} shown stale "
            f"({', '.join(krs)})."
        )
        alerts.append(
            _alert(
                key=f"stale:{metric_id}:{through or 'none'}",
                kind="stale",
                object_id=metric_id,
                quarter=row["quarter"],
                text=text,
                facts={
                    "title": name,
                    "from": None,
                    "to": "stale",
                    "date": through,
                    "as_of": row["as_of"],
                    "source": row["source"],
                    "stale_after_days": row["stale_after_days"],
                    "kr_ids": krs,
                },
            )
        )
    return alerts


# -- restated -----------------------------------------------------------------------------------

_RESTATED = f"""
    SELECT object_type, object_id, quarter, objective_id, title, reported_at,
           reported_value, restated_value, reported_progress, restated_progress,
           reported_status, restated_status, reported_grade, restated_grade
    FROM {MARTS_GRADE_RESTATEMENTS.fqn}
    ORDER BY quarter_start, object_type, object_id
"""


def _restated(con: duckdb.DuckDBPyConnection) -> list[Alert]:
    """A closed quarter's recorded grade that the current numbers no longer match. The key holds
    the restated status, grade and progress (to 4 decimals): a further restatement alerts again,
    a re-run that restates nothing new does not."""
    alerts = []
    for row in _records(con, _RESTATED):
        what = "key result" if row["object_type"] == "key_result" else "objective"
        reported = _grade(row["reported_grade"], row["reported_progress"], row["reported_status"])
        restated = _grade(row["restated_grade"], row["restated_progress"], row["restated_status"])
        progress = row["restated_progress"]
        rounded = "none" if progress is None else f"{progress:.4f}"
        text = (
            f"{row['quarter']} was graded at its close, and its numbers have changed since: "
            f"{what} {row['title']} ({row['object_id']}) was reported {reported}, is now "
            f"{restated}."
        )
        reported_at: datetime = row["reported_at"]
        alerts.append(
            _alert(
                key=(
                    f"restated:{row['object_type']}:{row['object_id']}:{row['quarter']}:"
                    f"{row['restated_status']}:{row['restated_grade']}:{rounded}"
                ),
                kind="restated",
                object_id=row["object_id"],
                quarter=row["quarter"],
                text=text,
                facts={
                    "title": row["title"],
                    "from": row["reported_grade"],
                    "to": row["restated_grade"],
                    "date": reported_at.date(),
                    "object_type": row["object_type"],
                    "objective_id": row["objective_id"],
                    "reported_at": reported_at,
                    "reported": {
                        "value": row["reported_value"],
                        "progress": row["reported_progress"],
                        "status": row["reported_status"],
                        "grade": row["reported_grade"],
                    },
                    "restated": {
                        "value": row["restated_value"],
                        "progress": progress,
                        "status": row["restated_status"],
                        "grade": row["restated_grade"],
                    },
                },
            )
        )
    return alerts


# -- the message --------------------------------------------------------------------------------


def _alert(
    key: str, kind: str, object_id: str, quarter: str | None, text: str, facts: dict[str, Any]
) -> Alert:
    okr = {
        "version": PAYLOAD_VERSION,
        "key": key,
        "kind": kind,
        "object_id": object_id,
        "quarter": quarter,
        **{name: _json(value) for name, value in facts.items()},
    }
    shown = slack_escape(text)
    payload = {
        "text": shown,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": shown}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": slack_escape(f"okr alert {key}")}],
            },
        ],
        "okr": okr,
    }
    return Alert(key, kind, object_id, quarter, payload)


def slack_escape(text: str) -> str:
    """Slack reads `<...>` as links and mentions (`<!channel>`): titles from config are shown
    as typed, never as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _json(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {name: _json(item) for name, item in value.items()}
    return value


def _checkin(row: dict[str, Any]) -> str:
    """The owner's latest check-in, as the KR alert quotes it."""
    if row.get("checkin_date") is None:
        return ""
    said = f": {row['checkin_comment']}" if row.get("checkin_comment") else ""
    confidence = (
        f"confidence {row['confidence']:g}/10 ({row['confidence_level']})"
        if row.get("confidence") is not None
        else "no confidence given"
    )
    return (
        f" Latest check-in, {row['checkin_date']} by {row.get('checkin_author') or 'someone'}: "
        f"{confidence}{said}"
    )


def _words(status: str) -> str:
    """A status as words: off_track -> off track."""
    return status.replace("_", " ")


def _was(previous: str | None) -> str:
    return f" (was {_words(previous)})" if previous else ""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: float | None, unit: str | None) -> str:
    """A value in its unit as the page and the text scorecard write it."""
    return "no data" if value is None else format_value(value, unit)


def _grade(grade: str | None, progress: float | None, status: str | None) -> str:
    return f"{grade or 'ungraded'} ({_pct(progress)}, {_words(status or 'no status')})"
