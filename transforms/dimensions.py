"""The config as tables (`marts.dim_*`), so BI tools can join names, owners and targets."""

from __future__ import annotations

import json

import polars as pl

from transforms.config import OkrConfig, SourceMetric
from transforms.tables import MARTS_DIM_KEY_RESULTS, MARTS_DIM_METRICS, MARTS_DIM_OBJECTIVES
from transforms.units import d3_format, display_format


def dim_metrics(config: OkrConfig) -> pl.DataFrame:
    rows = [
        {
            "metric_id": m.id,
            "name": m.name,
            "description": m.description,
            "aggregation": m.aggregation,
            # the columns of the other kind of metric stay null
            **(
                {
                    "source": m.source,
                    "column_name": m.column,
                    "filter": json.dumps(m.filter, sort_keys=True) if m.filter else None,
                    "time_column": m.time_column_or_default,
                }
                if isinstance(m, SourceMetric)
                else {
                    "numerator": m.numerator,
                    "denominator": m.denominator,
                    "min_denominator": m.min_denominator,
                }
            ),
            "metric_window": m.window,
            "unit": m.unit,
            "display_format": display_format(m.unit),
            "d3_format": d3_format(m.unit),
            "direction": m.direction,
            "kind": m.kind,
            "owner": m.owner,
            "target_value": m.target.value if m.target else None,
            "target_tolerance": m.target.tolerance if m.target else None,
            "target_grain": m.target.grain if m.target else None,
            "freshness_days": m.freshness_days,
        }
        for m in config.metrics.values()
    ]
    return MARTS_DIM_METRICS.frame(rows)


def dim_objectives(config: OkrConfig) -> pl.DataFrame:
    rows = [
        {
            "objective_id": o.id,
            "title": o.title,
            "description": o.description,
            "team": o.team,
            "owner": o.owner,
            "type": o.type,
            "success_level": o.success_level,
            "period_start": config.objective_windows[o.id][0],
            "period_end": config.objective_windows[o.id][1],
            "parent_id": o.parent,
            "weight": o.weight,
            "depth": config.depth(o.id),
            "related_metrics": list(o.related_metrics),
        }
        for o in config.objectives.values()
    ]
    return MARTS_DIM_OBJECTIVES.frame(rows)


def dim_key_results(config: OkrConfig) -> pl.DataFrame:
    rows = [
        {
            "kr_id": kr_id,
            "objective_id": r.objective.id,
            "title": r.kr.title,
            "metric_id": r.metric.id,
            "kr_type": r.kr.type,
            "baseline_config": str(r.kr.baseline),
            "target_config": None if r.kr.target is None else str(r.kr.target),
            "range_low": r.kr.range[0] if r.kr.range else None,
            "range_high": r.kr.range[1] if r.kr.range else None,
            "period_start": r.start,
            "period_end": r.end,
            "weight": r.kr.weight,
            "owner": r.kr.owner or r.objective.owner,
        }
        for kr_id, r in config.key_results.items()
    ]
    return MARTS_DIM_KEY_RESULTS.frame(rows)
