"""The scorecard printed by `okr scorecard` and the demo: objectives with their KRs, progress
against expected progress, the status as shown (stale data reads stale) and the grade (marked
provisional until the quarter closes), values in their metric's unit, read from the marts."""

from __future__ import annotations

import duckdb
import polars as pl

from bi.page.data import metric_units
from transforms.kr_types import KR_TYPES
from transforms.units import format_value

LEGEND = (
    "grade*: provisional, the quarter is still running; grades are final once it closes.\n"
    "committed / aspirational: an objective is achieved at the end when its score reaches 1.0 "
    "(committed) or 0.7 (aspirational: 0.7 counts as achieved, and its KRs are on track against "
    "0.7 of the expected progress).\n"
    "stale: no data for longer than the metric's freshness (else its trailing window, else 31 "
    "days); the value shown is the last one measured.\n"
    "confidence ... disagrees: the owner's latest check-in is confident while the KR is off "
    "track, or not confident while it is on track (docs/checkins.md)."
)

BAR = 20


def _bar(progress: float | None, expected: float | None) -> str:
    """`[#######-----|-----]`: filled to progress, `|` where expected progress stands."""
    if progress is None:
        return "[" + " " * BAR + "]"
    cells = ["#" if i < round(progress * BAR) else "-" for i in range(BAR)]
    if expected is not None:
        cells[min(BAR - 1, round(expected * BAR))] = "|"
    return "[" + "".join(cells) + "]"


def _grade(grade: str | None, final: bool | None) -> str:
    if grade is None:
        return "-"
    return grade if final else f"{grade}*"


def _status(row: dict) -> str:
    """The status as shown (display_status; status in a warehouse that predates it)."""
    return row.get("display_status") or row["status"]


def _pct(value: float | None) -> str:
    return "  -  " if value is None else f"{value * 100:4.0f}%"


def scorecard_text(con: duckdb.DuckDBPyConnection, quarters: list[str] | None = None) -> str:
    """Plain-text scorecard of the given quarter labels (default: all in the marts)."""
    objectives = con.sql(
        "SELECT * FROM marts.objective_attainment ORDER BY quarter_start, team, objective_id"
    ).pl()
    krs = con.sql("SELECT * FROM marts.key_result_attainment ORDER BY kr_id").pl()
    units = metric_units(con)
    if quarters:
        objectives = objectives.filter(pl.col("quarter").is_in(quarters))
    lines: list[str] = []
    for (quarter,), rows in objectives.group_by("quarter", maintain_order=True):
        as_of = rows["as_of_date"].max()
        quarter_krs = krs.filter(pl.col("quarter") == quarter)
        lines += ["", f"== {quarter}  (as of {as_of}) " + "=" * 60]
        for o in rows.iter_rows(named=True):
            has_krs = o["kr_count"] > 0
            score = o["score"] if has_krs else o["rollup_score"]
            expected = o["expected_progress"] if has_krs else o["rollup_expected_progress"]
            lines.append(
                f"{o['title'][:46]:<46} {o['team']:<8} {_bar(score, expected)} "
                f"{_pct(score)} exp {_pct(expected)}  {_status(o):<11} "
                f"{_grade(o['grade'], o.get('grade_is_final')):<8}{o['type']}"
                + ("" if has_krs else "  (roll-up of child objectives)")
            )
            objective_krs = quarter_krs.filter(pl.col("objective_id") == o["objective_id"])
            lines += _kr_lines(objective_krs, units)
        # KRs whose window runs past their objective's period (e.g. six months in a quarter).
        continuing = quarter_krs.filter(
            ~pl.col("objective_id").is_in(rows["objective_id"].implode())
        )
        if continuing.height:
            lines.append("Key results continuing past their objective's period")
            lines += _kr_lines(continuing, units)
    if lines:
        lines += ["", LEGEND]
    return "\n".join(lines).lstrip("\n")


def _kr_lines(krs: pl.DataFrame, units: dict[str, str | None]) -> list[str]:
    lines = []
    for k in krs.iter_rows(named=True):
        unit = units.get(k["metric_id"])

        def number(value: float | None, unit: str | None = unit) -> str:
            return format_value(value, unit, with_unit=False)

        target = KR_TYPES[k["kr_type"]].target_text(k, number)
        line = (
            f"  - {k['kr_title'][:42]:<42} {_bar(k['progress'], k['expected_progress'])} "
            f"{_pct(k['progress'])} exp {_pct(k['expected_progress'])}  {_status(k):<11} "
            f"{_grade(k['grade'], k.get('grade_is_final')):<8}"
            f"{format_value(k.get('display_value', k['current_value']), unit)}"
            + (
                f" (n = {format_value(k['denominator_value'], None)})"
                if k.get("denominator_value") is not None
                else ""
            )
            + f" / {target}"
        )
        if k["kr_type"] == "milestone" and k.get("best_value") is not None and k["progress"] != 1:
            line += f" (best so far {number(k['best_value'])} of {target})"
        if _status(k) == "stale" and k.get("data_through") is not None:
            line += f" (data through {k['data_through']})"
        elif (k.get("display_value_date") or k["as_of_date"]) < k["as_of_date"]:
            line += f" (as of {k['display_value_date']}, the last day with data)"
        if k.get("confidence_flag"):
            line += (
                f"  [confidence {format_value(k['confidence'], None)}/10 "
                f"{k['confidence_level']} disagrees]"
            )
        lines.append(line)
    return lines
