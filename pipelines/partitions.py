"""Quarterly partitions that follow the fiscal year and include the running quarter."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from transforms.calendar import Quarter, quarter_from_label, quarter_of, quarter_start_months
from transforms.config import OkrConfig
from transforms.history import earliest_needed


def quarterly_partitions(config: OkrConfig, today: date) -> dg.TimeWindowPartitionsDefinition:
    """Partition keys are quarter start dates (`2025-01-01`); commands accept labels. The first
    quarter holds the earliest day any KR depends on (its baseline window included)."""
    fiscal_month = config.settings.fiscal_year_start_month
    starts = [start for start, _ in config.objective_windows.values()]
    history = earliest_needed(config)
    first = quarter_of(min([*starts, *([history] if history else [])], default=today), fiscal_month)
    months = ",".join(str(m) for m in quarter_start_months(fiscal_month))
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=f"0 0 1 {months} *",
        start=first.start.isoformat(),
        fmt="%Y-%m-%d",
        timezone=config.settings.timezone,
        end_offset=1,
    )


def quarters_in_window(window: dg.TimeWindow, fiscal_month: int) -> list[Quarter]:
    """The quarters of a (possibly multi-quarter, single-run) partition time window."""
    quarters, day = [], window.start.date()
    while day < window.end.date():
        quarter = quarter_of(day, fiscal_month)
        quarters.append(quarter)
        day = quarter.end + timedelta(days=1)
    return quarters


def partition_key(label_or_key: str, fiscal_month: int) -> str:
    """`2025-Q1` (or an ISO quarter start) to the partition key."""
    if "Q" in label_or_key:
        return quarter_from_label(label_or_key, fiscal_month).start.isoformat()
    return quarter_of(date.fromisoformat(label_or_key), fiscal_month).start.isoformat()
