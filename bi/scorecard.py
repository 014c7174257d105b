"""The scorecard printed by `okr scorecard` and the demo: objectives with their KRs, progress
against expected progress and status, read from the marts."""

from __future__ import annotations

import duckdb
import polars as pl

from transforms.kr_types import KR_TYPES

BAR = 20


def _bar(progress: float | None, expected: float | None) -> str:
    """`[#######-----|-----]`: filled to progress, `|` where expected progress stands."""
    if progress is None:
        return "[" + " " * BAR + "]"
    cells = ["#" if i < round(progress * BAR) else "-" for i in range(BAR)]
    if expected is not None:
        cells[min(BAR - 1, round(expected * BAR))] = "|"
    return "[" + "".join(cells) + "]"


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if abs(value) < 1e6 else f"{value:,.0f}"


def _pct(value: float | None) -> str:
    return "  -  " if value is None else f"{value * 100:4.0f}%"


def scorecard_text(con: duckdb.DuckDBPyConnection, quarters: list[str] | None = None) -> str:
    """Plain-text scorecard of the given quarter labels (default: all in the marts)."""
    objectives = con.sql(
        "SELECT * FROM marts.objective_attainment ORDER BY quarter_start, team, objective_id"
    ).pl()
    krs = con.sql("SELECT * FROM marts.key_result_attainment ORDER BY kr_id").pl()
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
                f"{_pct(score)} exp {_pct(expected)}  {o['status']:<11}"
                + ("" if has_krs else "  (roll-up of child objectives)")
            )
            lines += _kr_lines(quarter_krs.filter(pl.col("objective_id") == o["objective_id"]))
        # KRs whose window runs past their objective's period (e.g. six months in a quarter).
        continuing = quarter_krs.filter(
            ~pl.col("objective_id").is_in(rows["objective_id"].implode())
        )
        if continuing.height:
            lines.append("Key results continuing past their objective's period")
            lines += _kr_lines(continuing)
    return "\n".join(lines).lstrip("\n")


def _kr_lines(krs: pl.DataFrame) -> list[str]:
    lines = []
    for k in krs.iter_rows(named=True):
        target = KR_TYPES[k["kr_type"]].target_text(k, _num)
        lines.append(
            f"  - {k['kr_title'][:42]:<42} {_bar(k['progress'], k['expected_progress'])} "
            f"{_pct(k['progress'])} exp {_pct(k['expected_progress'])}  {k['status']:<11}"
            f" {_num(k['current_value'])} / {target}"
        )
    return lines
