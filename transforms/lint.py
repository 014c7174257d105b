"""`marts.okr_lint`: OKR hygiene and metrics overload, as rows BI tools can list and filter.

Each rule is one function returning findings; `RULES` documents them (and the README lists them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import polars as pl

from transforms.config import OkrConfig, RatioMetric, SourceMetric
from transforms.measure import MetricReader
from warehouse.tables import Column, Table

MAX_KRS_PER_OBJECTIVE = 5

MARTS_OKR_LINT = Table(
    "marts",
    "okr_lint",
    "OKR hygiene and metrics-overload findings of the current config and data, one row each; "
    "rebuilt on every run.",
    (
        Column("severity", "VARCHAR", "error, warning or info.", False),
        Column("object_type", "VARCHAR", "objective, key_result, metric or team.", False),
        Column("object_id", "VARCHAR", "Id of the objective, KR, metric or team concerned.", False),
        Column("rule", "VARCHAR", "Rule id (see the README's OKR lint section).", False),
        Column("message", "VARCHAR", "What is wrong and what to do, in words.", False),
        Column("quarter", "VARCHAR", "Quarter the finding is about, when it is about one."),
        Column("as_of_date", "DATE", "The date treated as today when the rule ran.", False),
    ),
    primary_key=("rule", "object_id", "quarter"),
)


@dataclass(frozen=True)
class Finding:
    severity: str
    object_type: str
    object_id: str
    rule: str
    message: str
    quarter: str | None = None


@dataclass(frozen=True)
class LintInputs:
    config: OkrConfig
    kr_attainment: pl.DataFrame
    """marts.key_result_attainment, all quarters."""
    latest_data: dict[str, date | None]
    """Latest day with data on or before today, per metric id."""
    today: date
    checkin_kr_ids: frozenset[str] = frozenset()
    """The KR ids staging.checkins names."""


def too_many_krs(inputs: LintInputs) -> Iterator[Finding]:
    for objective in inputs.config.objectives.values():
        if len(objective.key_results) > MAX_KRS_PER_OBJECTIVE:
            yield Finding(
                "warning",
                "objective",
                objective.id,
                "too_many_krs",
                f"{len(objective.key_results)} key results; more than "
                f"{MAX_KRS_PER_OBJECTIVE} dilutes focus: keep the few that matter most",
            )


def unused_metric(inputs: LintInputs) -> Iterator[Finding]:
    config = inputs.config
    used = {kr.metric.id for kr in config.key_results.values()}
    used |= {m for o in config.objectives.values() for m in o.related_metrics}
    used |= {
        part
        for metric_id in set(used)
        if isinstance(metric := config.metrics[metric_id], RatioMetric)
        for part in metric.parts
    }
    for metric_id in config.metrics:
        if metric_id not in used:
            yield Finding(
                "info",
                "metric",
                metric_id,
                "unused_metric",
                "no key result or objective uses this metric; link it as a related metric "
                "or remove it to avoid metrics overload",
            )


def kr_without_data(inputs: LintInputs) -> Iterator[Finding]:
    rows = inputs.kr_attainment.filter(pl.col("status") == "no_data")
    for row in rows.iter_rows(named=True):
        yield Finding(
            "warning",
            "key_result",
            row["kr_id"],
            "kr_without_data",
            f"no progress can be measured for metric '{row['metric_id']}' as of "
            f"{row['as_of_date']}: {row['note'] or 'no data'}",
            row["quarter"],
        )


def stale_source(inputs: LintInputs) -> Iterator[Finding]:
    for metric in inputs.config.metrics.values():
        latest = inputs.latest_data.get(metric.id)
        if metric.freshness_days is None:
            continue
        if latest is None or (inputs.today - latest).days > metric.freshness_days:
            seen = f"its latest data is from {latest}" if latest else "it has no data at all"
            source = metric.source if isinstance(metric, SourceMetric) else "ratio parts"
            yield Finding(
                "warning",
                "metric",
                metric.id,
                "stale_source",
                f"{seen}, older than its freshness of {metric.freshness}; check the "
                f"'{source}' source",
            )


def objective_without_owner(inputs: LintInputs) -> Iterator[Finding]:
    for objective in inputs.config.objectives.values():
        if not objective.owner:
            yield Finding(
                "warning",
                "objective",
                objective.id,
                "objective_without_owner",
                "no owner: every objective needs one person accountable for it",
            )


def objective_without_krs(inputs: LintInputs) -> Iterator[Finding]:
    config = inputs.config
    for objective in config.objectives.values():
        if not objective.key_results and not config.children(objective.id):
            yield Finding(
                "warning",
                "objective",
                objective.id,
                "objective_without_krs",
                "neither key results nor child objectives: nothing measures it",
            )


def kr_outlives_objective(inputs: LintInputs) -> Iterator[Finding]:
    config = inputs.config
    for kr in config.key_results.values():
        start, end = config.objective_windows[kr.objective.id]
        if kr.start < start or kr.end > end:
            yield Finding(
                "info",
                "key_result",
                kr.id,
                "kr_outlives_objective",
                f"its window {kr.start}..{kr.end} runs outside objective '{kr.objective.id}' "
                f"({start}..{end}); in quarters outside the objective it counts in no score",
            )


def checkin_unknown_kr(inputs: LintInputs) -> Iterator[Finding]:
    for kr_id in sorted(inputs.checkin_kr_ids - inputs.config.key_results.keys()):
        yield Finding(
            "warning",
            "key_result",
            kr_id,
            "checkin_unknown_kr",
            "check-ins name this KR id, which okrs.yaml does not have: correct the id in the "
            "check-in files (raw.checkins has each row's file and line) or add the KR",
        )


RULES: dict[str, Callable[[LintInputs], Iterator[Finding]]] = {
    "too_many_krs": too_many_krs,
    "unused_metric": unused_metric,
    "kr_without_data": kr_without_data,
    "stale_source": stale_source,
    "objective_without_owner": objective_without_owner,
    "objective_without_krs": objective_without_krs,
    "kr_outlives_objective": kr_outlives_objective,
    "checkin_unknown_kr": checkin_unknown_kr,
}


def latest_data_dates(
    reader: MetricReader, config: OkrConfig, today: date
) -> dict[str, date | None]:
    return reader.latest_data_dates(config.metrics.items(), today)


def okr_lint(inputs: LintInputs) -> pl.DataFrame:
    rows = [
        {**finding.__dict__, "as_of_date": inputs.today}
        for rule in RULES.values()
        for finding in rule(inputs)
    ]
    return MARTS_OKR_LINT.frame(rows).sort("severity", "rule", "object_id")
