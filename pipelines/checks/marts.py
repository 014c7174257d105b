"""Checks of the marts' numbers: progress within [0, 1], and every KR's metric has data."""

from typing import Any

import dagster as dg

from pipelines.checks.core import (
    ERROR,
    EXAMPLES,
    WARN,
    CheckInputs,
    Outcome,
    QualityCheck,
    fetch,
    markdown,
    offending_rows,
    row_count,
)
from transforms.config import SourceMetric
from transforms.tables import MARTS_KEY_RESULT_ATTAINMENT, MARTS_KEY_RESULT_PROGRESS_DAILY
from warehouse.sql import quote_ident
from warehouse.tables import Table


def progress_in_range(table: Table, inputs: CheckInputs) -> Outcome:
    bad_progress = (
        "progress IS NOT NULL AND (isnan(progress) OR NOT round(progress, 9) BETWEEN 0 AND 1)"
    )
    bad_expected = (
        "expected_progress IS NULL OR isnan(expected_progress) "
        "OR NOT round(expected_progress, 9) BETWEEN 0 AND 1"
    )
    [(progress, expected)] = fetch(
        inputs.con,
        f"SELECT count(*) FILTER (WHERE {bad_progress}), count(*) FILTER (WHERE {bad_expected}) "
        f"FROM {table.fqn}",
    )
    metadata: dict[str, Any] = {
        "progress_out_of_range": progress,
        "expected_progress_out_of_range": expected,
        "rows": row_count(inputs.con, table),
    }
    if progress or expected:
        keys = ", ".join(map(quote_ident, table.primary_key))
        metadata["examples"] = offending_rows(
            inputs.con,
            f"SELECT {keys}, raw_progress, progress, expected_progress, status FROM {table.fqn} "
            f"WHERE ({bad_progress}) OR ({bad_expected}) ORDER BY {keys} LIMIT {EXAMPLES}",
        )
        return Outcome(
            False,
            f"{progress} rows with progress outside [0, 1], {expected} rows with "
            "expected_progress null or outside [0, 1]",
            metadata,
        )
    return Outcome(True, "progress is null or in [0, 1]; expected_progress in [0, 1]", metadata)


def every_kr_metric_has_data(inputs: CheckInputs) -> Outcome:
    """KRs whose metric has no data on or before today in the staging tables it reads."""
    metrics = {kr.metric.id: kr.metric for kr in inputs.config.key_results.values()}
    latest = inputs.metric_reader().latest_data_dates(metrics.items(), inputs.today)
    missing = [
        (
            kr_id,
            kr.objective.id,
            kr.metric.id,
            kr.metric.source if isinstance(kr.metric, SourceMetric) else "ratio",
            kr.start.isoformat(),
        )
        for kr_id, kr in sorted(inputs.config.key_results.items())
        if latest[kr.metric.id] is None
    ]
    metadata: dict[str, Any] = {
        "key_results": len(inputs.config.key_results),
        "key_results_without_data": len(missing),
        "metrics_without_data": dg.MetadataValue.json(
            sorted({metric for _, _, metric, _, _ in missing})
        ),
        "as_of": inputs.today.isoformat(),
    }
    if missing:
        metadata["krs_without_data"] = dg.MetadataValue.md(
            markdown(["kr_id", "objective_id", "metric_id", "source", "period_start"], missing)
        )
        return Outcome(
            False,
            f"{len(missing)} KRs measure a metric with no data on or before {inputs.today}: "
            + ", ".join(kr_id for kr_id, *_ in missing),
            metadata,
        )
    return Outcome(True, "every KR's metric has data", metadata)


def progress_checks() -> list[QualityCheck]:
    return [
        QualityCheck(
            "progress_in_range",
            table,
            "progress is null or within [0, 1]; expected_progress within [0, 1].",
            ERROR,
            True,
            lambda inputs, t=table: progress_in_range(t, inputs),
        )
        for table in (MARTS_KEY_RESULT_ATTAINMENT, MARTS_KEY_RESULT_PROGRESS_DAILY)
    ]


def kr_data_check() -> QualityCheck:
    return QualityCheck(
        "every_kr_metric_has_data",
        MARTS_KEY_RESULT_ATTAINMENT,
        "Every KR's metric has data on or before today in the staging tables; warns naming "
        "the KRs whose metric has none (a wrong filter, source or metric id upstream).",
        WARN,
        False,
        every_kr_metric_has_data,
    )
