"""Key-result types: each type is one definition holding everything that differs between types
(which target fields it takes and how the config checks them, its raw and expected progress,
when it counts as achieved, why it cannot be measured, and how its target reads), and the
config, the OKR math, the page and the CLI all read that definition. A new type is one entry in
KR_TYPES; docs/computation.md gives the formulas in words.

Nothing here imports the rest of the engine: the config imports the type names and targets from
here, and the math builds its frame-wide expressions from `KrType` rules applied to `KrTerms`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from transforms.config import KeyResult, Metric

ROUND = 9
"""Decimals every value, target and progress is rounded to before any comparison."""
RELATIVE_TARGET = re.compile(r"^([+-])(\d+(?:\.\d+)?)(%?)$")


def rounded(expr: pl.Expr) -> pl.Expr:
    return expr.round(ROUND)


def clamp01(expr: pl.Expr) -> pl.Expr:
    return expr.clip(0.0, 1.0)


@dataclass(frozen=True)
class RelativeTarget:
    """A target relative to the baseline: t = b + pct*|b| or t = b + delta."""

    amount: float
    percent: bool

    def apply(self, baseline: float | None) -> float | None:
        if baseline is None:
            return None
        return baseline + (self.amount / 100 * abs(baseline) if self.percent else self.amount)


def parse_target(value: float | str | None) -> float | RelativeTarget | None:
    if value is None or isinstance(value, float | int):
        return value
    match = RELATIVE_TARGET.match(value)
    amount = float(match[2]) * (1 if match[1] == "+" else -1)
    return RelativeTarget(amount, percent=match[3] == "%")


def numeric_target(kr: KeyResult, target: float | RelativeTarget | None) -> float | None:
    """The target as a number when the config alone fixes it."""
    if isinstance(target, RelativeTarget):
        return target.apply(kr.baseline) if kr.baseline != "auto" else None
    return target


@dataclass(frozen=True)
class KrTerms:
    """The per-KR-and-day columns a type's rules are written in (see okr.key_result_daily)."""

    value: pl.Expr = field(default_factory=lambda: rounded(pl.col("value")))
    """a, rounded; `raw_value` is the exact measured value used in the progress ratio."""
    raw_value: pl.Expr = field(default_factory=lambda: pl.col("value"))
    baseline: pl.Expr = field(default_factory=lambda: pl.col("baseline"))
    target: pl.Expr = field(default_factory=lambda: pl.col("target"))
    cumulative: pl.Expr = field(default_factory=lambda: pl.col("cumulative"))
    date: pl.Expr = field(default_factory=lambda: pl.col("date"))
    period_end: pl.Expr = field(default_factory=lambda: pl.col("period_end"))
    day_number: pl.Expr = field(
        default_factory=lambda: (pl.col("date") - pl.col("period_start")).dt.total_days() + 1
    )
    window_days: pl.Expr = field(
        default_factory=lambda: (pl.col("period_end") - pl.col("period_start")).dt.total_days() + 1
    )
    days_with_value: pl.Expr = field(
        default_factory=lambda: (
            pl.col("value").is_not_null().cum_sum().over(partition_by="kr_id", order_by="date")
        )
    )

    def running(self, expr: pl.Expr) -> pl.Expr:
        """`expr` over the KR's days so far (a window over the KR, in date order)."""
        return expr.over(partition_by="kr_id", order_by="date")


Problem = Callable[[str, str], None]


@dataclass(frozen=True)
class KrType:
    name: str
    takes_range: bool = False
    """within_range: `range: [low, high]` instead of `target`."""
    direction: int = 0
    """+1 (increase) or -1 (decrease): the target must lie that way from the baseline."""
    maintained: bool = False
    """Progress is the share of days the rule held; achieved at the end at the success level."""
    progress: Callable[[KrTerms], pl.Expr] = lambda t: pl.lit(None, pl.Float64)
    """Raw progress r on a day (before clamping), for a measurable KR."""
    expected: Callable[[KrTerms], pl.Expr] = lambda t: clamp01(t.day_number / t.window_days)
    """Expected progress e: where the KR should be on the day."""
    unmeasurable: Callable[[KrTerms], list[tuple[pl.Expr, str]]] = lambda t: []
    """(condition, reason) in order: the first that holds leaves the KR without progress."""

    def achieved(self, t: KrTerms) -> pl.Expr:
        """Maintained: the window is over and the share of days met reaches the success level;
        otherwise raw progress reaches 1."""
        if self.maintained:
            return (t.date >= t.period_end) & (
                rounded(pl.col("progress")) >= rounded(pl.col("success_level"))
            )
        return rounded(pl.col("raw_progress")) >= 1

    def check(self, kr: KeyResult, metric: Metric | None, problem: Problem) -> None:
        """Load-time checks of the KR's target fields against this type and its metric."""
        target = parse_target(kr.target)
        if self.takes_range:
            if kr.range is None:
                problem("range", f"{self.name} needs range: [low, high]")
            elif kr.range[0] >= kr.range[1]:
                problem("range", f"low {kr.range[0]:g} must be below high {kr.range[1]:g}")
            if kr.target is not None:
                problem("target", f"{self.name} uses range: [low, high], not target")
        elif target is None:
            problem("target", f"is required for type '{self.name}'")
        elif kr.range is not None:
            problem("range", "only within_range takes a range")
        if self.direction and target is not None:
            self._check_direction(kr, target, problem)
        if metric is not None and metric.is_cumulative:
            self._check_cumulative(kr, target, metric, problem)

    def _check_direction(self, kr: KeyResult, target: float | RelativeTarget, problem) -> None:
        goes_up = self.direction > 0
        article = f"a{'n' if goes_up else ''} {self.name}"
        if isinstance(target, RelativeTarget):
            if target.amount == 0:
                problem(
                    "target", f"'{kr.target}' equals the baseline; the target must differ from it"
                )
                return
            if (target.amount > 0) != goes_up:
                problem(
                    "target",
                    f"'{kr.target}' moves the wrong way for {article} KR; "
                    f"use '{'+' if goes_up else '-'}...'",
                )
                return
        numeric = numeric_target(kr, target)
        if numeric is None or kr.baseline == "auto":
            return
        shown = f"{kr.target}" if isinstance(target, RelativeTarget) else f"{numeric:g}"
        if numeric == kr.baseline:
            problem(
                "target",
                f"target {shown} equals the baseline ({kr.baseline:g}); the target must differ "
                "from it",
            )
        elif (numeric > kr.baseline) != goes_up:
            relation = "above" if goes_up else "below"
            problem(
                "target",
                f"{article} KR needs a target {relation} the baseline ({kr.baseline:g}), "
                f"got {shown}",
            )

    def _check_cumulative(
        self, kr: KeyResult, target: float | RelativeTarget | None, metric: Metric, problem
    ) -> None:
        """A cumulative metric (sum, count, count_distinct over the KR window) only grows."""
        if self.direction < 0:
            problem(
                "type",
                f"metric '{metric.id}' accumulates over the KR window ({metric.aggregation} "
                "with window: period), so it cannot decrease; use a trailing window or "
                "maintain_below",
            )
        numeric = numeric_target(kr, target)
        if self.direction > 0 and numeric is not None and numeric <= 0:
            problem(
                "target",
                f"metric '{metric.id}' accumulates from zero over the KR window, so an increase "
                f"target must be above 0, got {numeric:g}",
            )

    def target_text(self, kr: dict[str, Any], number: Callable[[float | None], str]) -> str:
        """The target as the page and the CLI show it, numbers formatted by `number`."""
        if self.takes_range:
            return f"{number(kr['range_low'])}..{number(kr['range_high'])}"
        return number(kr["target"])


def _change_unmeasurable(direction: int) -> Callable[[KrTerms], list[tuple[pl.Expr, str]]]:
    def reasons(t: KrTerms) -> list[tuple[pl.Expr, str]]:
        b, target, level = t.baseline, t.target, ~t.cumulative
        wrong_side = (
            (level & (target < b), "baseline is already above the target of an increase KR")
            if direction > 0
            # (load time rejects a decrease on a cumulative metric)
            else (target > b, "baseline is already below the target of a decrease KR")
        )
        found = [
            (level & b.is_null(), "baseline has no data"),
            (level & (b == target), "target equals baseline"),
            # An auto baseline can land beyond an absolute target; (a - b) / (t - b) would then
            # reward moving the wrong way, so there is no progress to report (load time rejects
            # the same when both numbers are in the config).
            wrong_side,
            (target.is_null(), "target depends on a baseline that has no data"),
        ]
        if direction > 0:
            found.append((t.cumulative & (target <= 0), "cumulative KR needs a target above zero"))
        return found

    return reasons


def _change_progress(t: KrTerms) -> pl.Expr:
    """Cumulative: a / t (the metric starts the window at zero); otherwise (a - b) / (t - b)."""
    return (
        pl.when(t.cumulative)
        .then(t.raw_value / t.target)
        .otherwise((t.raw_value - t.baseline) / (t.target - t.baseline))
    )


def _needs_target(t: KrTerms) -> list[tuple[pl.Expr, str]]:
    return [(t.target.is_null(), "target depends on a baseline that has no data")]


def _share_of_days_met(t: KrTerms, met: pl.Expr) -> pl.Expr:
    return pl.when(t.days_with_value > 0).then(
        t.running(met.cast(pl.Float64).cum_sum()) / t.day_number
    )


def _maintained(name: str, met: Callable[[KrTerms], pl.Expr], takes_range: bool = False) -> KrType:
    """A type kept day by day: `met` says whether a day's value keeps the rule."""

    def rule(t: KrTerms) -> pl.Expr:
        return met(t).fill_null(False)

    return KrType(
        name,
        takes_range=takes_range,
        maintained=True,
        progress=lambda t: _share_of_days_met(t, rule(t)),
        expected=lambda t: pl.lit(1.0),
        unmeasurable=(lambda t: []) if takes_range else _needs_target,
    )


def _milestone_progress(t: KrTerms) -> pl.Expr:
    """1 from the first day the target is reached (the way the metric's direction says)."""
    reached = (
        pl.when(pl.col("higher_is_better"))
        .then(t.value >= rounded(t.target))
        .otherwise(t.value <= rounded(t.target))
    )
    return pl.when(t.days_with_value > 0).then(
        t.running(reached.fill_null(False).cast(pl.Float64).cum_max())
    )


KR_TYPES: dict[str, KrType] = {
    kr_type.name: kr_type
    for kr_type in (
        KrType(
            "increase",
            direction=+1,
            progress=_change_progress,
            unmeasurable=_change_unmeasurable(+1),
        ),
        KrType(
            "decrease",
            direction=-1,
            progress=_change_progress,
            unmeasurable=_change_unmeasurable(-1),
        ),
        _maintained(
            "maintain_above",
            lambda t: t.value >= rounded(t.target),
        ),
        _maintained(
            "maintain_below",
            lambda t: t.value <= rounded(t.target),
        ),
        _maintained(
            "within_range",
            lambda t: (
                (t.value >= rounded(pl.col("range_low")))
                & (t.value <= rounded(pl.col("range_high")))
            ),
            takes_range=True,
        ),
        KrType(
            "milestone",
            progress=_milestone_progress,
            expected=lambda t: pl.when(t.date >= t.period_end).then(1.0).otherwise(0.0),
            unmeasurable=_needs_target,
        ),
    )
}
MAINTAINED = tuple(name for name, kr_type in KR_TYPES.items() if kr_type.maintained)


def by_type(rule: Callable[[KrType], pl.Expr | None]) -> pl.Expr:
    """One frame-wide expression: each KR row gets `rule` of its own type (null where a type
    gives None)."""
    kr_type = pl.col("kr_type")
    chained: Any = pl
    for definition in KR_TYPES.values():
        expr = rule(definition)
        if expr is not None:
            chained = chained.when(kr_type == definition.name).then(expr)
    return chained.otherwise(None)


def first_reason(t: KrTerms) -> pl.Expr:
    """Why a KR with data still has no progress: the first of its type's reasons that holds."""

    def chain(definition: KrType) -> pl.Expr | None:
        reasons = definition.unmeasurable(t)
        if not reasons:
            return None
        (condition, text), *rest = reasons
        expr = pl.when(condition).then(pl.lit(text))
        for condition, text in rest:
            expr = expr.when(condition).then(pl.lit(text))
        return expr

    return by_type(chain)
