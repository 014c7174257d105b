"""Fiscal quarters: labels like `2025-Q1`, named by the calendar year in which the fiscal year ends."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

QUARTER_LABEL = re.compile(r"^(\d{4})-Q([1-4])$")
_TYPED_LABEL = re.compile(r"^(\d{4})\s*-?\s*[Qq]\s*(\d+)$")


@dataclass(frozen=True, order=True)
class Quarter:
    start: date
    end: date
    label: str


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def add_months(day: date, months: int) -> date:
    """The first day of the month `months` after the one holding `day` (before it if negative)."""
    return date(*_add_months(day.year, day.month, months), 1)


def quarter_from_label(label: str, fiscal_year_start_month: int = 1) -> Quarter:
    match = QUARTER_LABEL.match(label)
    if not match:
        raise ValueError(f"'{label}' is not a quarter label; expected YYYY-Qn such as 2025-Q1")
    fiscal_year, number = int(match[1]), int(match[2])
    # Fiscal year Y ends in calendar year Y, so it starts in Y-1 unless it starts in January.
    start_year = fiscal_year if fiscal_year_start_month == 1 else fiscal_year - 1
    year, month = _add_months(start_year, fiscal_year_start_month, 3 * (number - 1))
    start = date(year, month, 1)
    end_year, end_month = _add_months(year, month, 3)
    return Quarter(start, date(end_year, end_month, 1) - timedelta(days=1), label)


def normalize_label(text: str) -> str:
    """A quarter label as people type it (`2025-Q1`, `2025-q1`, `2025Q1`, `2025 q1`) in the
    canonical `2025-Q1`; ValueError, saying what is allowed, for anything else."""
    match = _TYPED_LABEL.match(text.strip())
    if not match or not 1 <= int(match[2]) <= 4:
        raise ValueError(
            f"'{text}' is not a quarter: type a fiscal quarter label YYYY-Qn with n from 1 to 4, "
            "e.g. 2025-Q1 (2025q1 works too)"
        )
    return f"{match[1]}-Q{match[2]}"


def quarter_of(day: date, fiscal_year_start_month: int = 1) -> Quarter:
    offset = (day.month - fiscal_year_start_month) % 12
    number = offset // 3 + 1
    first_month_year, _ = _add_months(day.year, day.month, -offset)
    fiscal_start_year = first_month_year
    fiscal_year = fiscal_start_year if fiscal_year_start_month == 1 else fiscal_start_year + 1
    return quarter_from_label(f"{fiscal_year}-Q{number}", fiscal_year_start_month)


def quarters_between(first: date, last: date, fiscal_year_start_month: int = 1) -> list[Quarter]:
    """Every quarter touching [first, last], in order."""
    quarters = []
    quarter = quarter_of(first, fiscal_year_start_month)
    while quarter.start <= last:
        quarters.append(quarter)
        quarter = quarter_of(quarter.end + timedelta(days=1), fiscal_year_start_month)
    return quarters


def quarter_start_months(fiscal_year_start_month: int) -> list[int]:
    """Calendar months in which quarters start, sorted (for the partition cron)."""
    return sorted((fiscal_year_start_month - 1 + 3 * i) % 12 + 1 for i in range(4))
