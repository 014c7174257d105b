"""How a metric's numbers read, from its `unit`: one rule for the page, the text scorecard and
the display formats `marts.dim_metrics` gives BI tools. Stored values stay exact; only what is
shown is rounded.

| unit | stored | shown | Excel / Evidence | d3 / Superset |
| --- | --- | --- | --- | --- |
| `%` | percent points (85 = 85%) | 85.0% (2.55% under 10) | `0.0"%"` | `.1f` + `%` suffix |
| `ratio` | a fraction (0.0255) | 2.55% (62.8% from 10) | `0.0%` | `.1%` |
| a currency code (`EUR`, `USD`) | amount | EUR 1,234 | `"EUR "#,##0` | `,.0f` |
| anything else (`users`, `deals`) or none | amount | 1,316 users | `#,##0` | `,.0f` |

Percentages under 10% keep two decimals, so a 2.55% rate and its 2.60% target read apart.
Whole numbers show no decimals (5 clients). Other amounts under 100 keep decimals (1 under
100, 2 under 10) so small averages and indices stay readable; larger ones are whole numbers, as
a count is (a relative target of +20% on 1,096 users is shown as 1,315 users, not 1,315.20)."""

from __future__ import annotations

import math
import re

PERCENT_POINTS = "%"
FRACTION = "ratio"
CURRENCY = re.compile(r"^[A-Z]{3}$")
"""ISO 4217 codes are three capital letters."""


def _decimals(value: float) -> int:
    size = abs(value)
    return 0 if size >= 100 or float(value).is_integer() else 1 if size >= 10 else 2


def _amount(value: float) -> str:
    return f"{value:,.{_decimals(value)}f}"


def format_value(value: float | None, unit: str | None, *, with_unit: bool = True) -> str:
    """`value` as people read it in `unit`; an em dash when there is none."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if unit in (PERCENT_POINTS, FRACTION):
        points = value * 100 if unit == FRACTION else value
        return f"{points:,.{1 if abs(points) >= 10 else 2}f}%"
    if unit and CURRENCY.match(unit):
        return f"{unit} {_amount(value)}" if with_unit else _amount(value)
    if unit and with_unit:
        return f"{_amount(value)} {unit}"
    return _amount(value)


def display_format(unit: str | None) -> str:
    """An Excel-style number format (Evidence, spreadsheets, Metabase's custom formats)."""
    if unit == PERCENT_POINTS:
        return '0.0"%"'
    if unit == FRACTION:
        return "0.0%"
    if unit and CURRENCY.match(unit):
        return f'"{unit} "#,##0'
    return "#,##0"


def d3_format(unit: str | None) -> str:
    """A d3-format string (Superset's number formats); `%` units add a `%` suffix outside it."""
    if unit == PERCENT_POINTS:
        return ".1f"
    if unit == FRACTION:
        return ".1%"
    return ",.0f"
