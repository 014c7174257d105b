"""Quarterly partitions that follow the fiscal year and include the running quarter."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from transforms.calendar import (
    Quarter,
    normalize_label,
    quarter_from_label,
    quarter_of,
    quarter_start_months,
    quarters_between,
)
from transforms.config import OkrConfig
from transforms.history import first_reported_day


def quarterly_partitions(
    config: OkrConfig, today: date, as_of_set: bool = False
) -> dg.TimeWindowPartitionsDefinition:
    """Partition keys are quarter start dates (`2025-01-01`); commands accept labels. They run
    from the first quarter any objective or KR reports in (earlier quarters are staging history,
    built by the runs that read them) to the running quarter: that of `today`, which is
    OKR_AS_OF when it is set (earlier or later than the clock's), else the clock's."""
    fiscal_month = config.settings.fiscal_year_start_month
    first = quarter_of(first_reported_day(config) or today, fiscal_month)
    running = quarter_of(today, fiscal_month)
    months = ",".join(str(m) for m in quarter_start_months(fiscal_month))
    bounded = {}
    if as_of_set:
        # `end` stops the set after the as-of quarter; the offset lets it reach past the clock.
        after = running.end + timedelta(days=1)
        bounded = {
            "end": after.isoformat(),
            "end_offset": len(quarters_between(min(first.start, date.today()), after)) + 1,
        }
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=f"0 0 1 {months} *",
        start=min(first, running).start.isoformat(),
        fmt="%Y-%m-%d",
        timezone=config.settings.timezone,
        **({"end_offset": 1} | bounded),
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
    """A quarter as typed (`2025-Q1`, `2025q1`, or an ISO day in it) to its partition key;
    ValueError saying what is allowed otherwise."""
    try:
        day = date.fromisoformat(label_or_key.strip())
    except ValueError:
        return quarter_from_label(normalize_label(label_or_key), fiscal_month).start.isoformat()
    return quarter_of(day, fiscal_month).start.isoformat()
