"""How far back the OKR marts read: a KR measured in a quarter also needs the days before its
window (auto baselines, trailing windows), so those staging quarters must exist too."""

from __future__ import annotations

from datetime import date, timedelta

from transforms.calendar import Quarter
from transforms.config import OkrConfig, ResolvedKeyResult


def history_start(kr: ResolvedKeyResult) -> date:
    """First day a KR's numbers can depend on: the same-length window before S (baseline
    auto), widened by a trailing window's length (its value as of the baseline's first day)."""
    length = kr.end - kr.start + timedelta(days=1)
    # A ratio's numerator and denominator are measured over the ratio's own window.
    return kr.start - length - timedelta(days=kr.metric.trailing_days or 0)


def krs_touching(config: OkrConfig, quarters: list[Quarter]) -> list[ResolvedKeyResult]:
    """The KRs whose window overlaps one of `quarters`: the only ones with rows there."""
    return [
        kr
        for kr in config.key_results.values()
        if any(kr.start <= q.end and kr.end >= q.start for q in quarters)
    ]


def earliest_needed(config: OkrConfig, quarters: list[Quarter] | None = None) -> date | None:
    """Earliest day any KR reported in `quarters` (default: every KR) depends on."""
    krs = config.key_results.values() if quarters is None else krs_touching(config, quarters)
    return min((history_start(kr) for kr in krs), default=None)
