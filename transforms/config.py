"""`metrics.yaml` and `okrs.yaml` (CONTRACT section 1): parsed and validated at load, so a bad
config stops before any number is computed, with an error naming the file, the id and the field."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from transforms.calendar import quarter_from_label
from transforms.sources import NUMERIC, SOURCES, TIME

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
Id = Annotated[str, Field(pattern=ID_PATTERN)]
Aggregation = Literal["sum", "avg", "min", "max", "last", "count", "count_distinct", "ratio"]
KrType = Literal[
    "increase", "decrease", "maintain_above", "maintain_below", "within_range", "milestone"
]
MAINTAIN_TYPES = ("maintain_above", "maintain_below", "within_range")
CUMULATIVE_AGGREGATIONS = ("sum", "count", "count_distinct")
DAYS = re.compile(r"^([1-9][0-9]*)d$")
RELATIVE_TARGET = re.compile(r"^([+-])(\d+(?:\.\d+)?)(%?)$")
FilterValue = str | int | float | bool


class ConfigError(ValueError):
    """Every problem found in a config folder, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid OKR config:\n" + "\n".join(f"  - {p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Settings(_Strict):
    timezone: str = "UTC"
    fiscal_year_start_month: int = Field(1, ge=1, le=12)
    week_start: Literal[
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
    ] = "monday"
    on_track_gap: float = Field(0.10, ge=0, le=1)
    at_risk_gap: float = Field(0.25, ge=0, le=1)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone '{value}'; use an IANA name such as UTC") from None
        return value

    @model_validator(mode="after")
    def _ordered_gaps(self) -> Settings:
        if self.at_risk_gap < self.on_track_gap:
            raise ValueError("at_risk_gap must be >= on_track_gap")
        return self


class MetricTarget(_Strict):
    value: float
    tolerance: float = Field(0.0, ge=0)
    grain: Literal["week", "month", "quarter"] = "quarter"


class Metric(_Strict):
    id: Id
    name: str
    description: str | None = None
    source: str | None = None
    aggregation: Aggregation
    column: str | None = None
    filter: dict[str, FilterValue | list[FilterValue]] = Field(default_factory=dict)
    time_column: str | None = None
    window: str = "period"
    numerator: str | None = None
    denominator: str | None = None
    unit: str | None = None
    direction: Literal["higher_is_better", "lower_is_better"] = "higher_is_better"
    kind: Literal["leading", "lagging"] = "lagging"
    owner: str | None = None
    target: MetricTarget | None = None
    freshness: str | None = None

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        if value != "period" and not DAYS.match(value):
            raise ValueError(f"window '{value}' is not allowed; use 'period' or a trailing 'Nd'")
        return value

    @field_validator("freshness")
    @classmethod
    def _freshness(cls, value: str | None) -> str | None:
        if value is not None and not DAYS.match(value):
            raise ValueError(f"freshness '{value}' is not allowed; use 'Nd', e.g. 2d")
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        if value is not None and value not in SOURCES:
            raise ValueError(f"unknown source '{value}'; allowed: {', '.join(SOURCES)}")
        return value

    @property
    def trailing_days(self) -> int | None:
        match = DAYS.match(self.window)
        return int(match[1]) if match else None

    @property
    def freshness_days(self) -> int | None:
        return int(self.freshness[:-1]) if self.freshness else None

    @property
    def is_cumulative(self) -> bool:
        """Accumulates from zero over a KR window, so progress runs from zero (CONTRACT 3)."""
        return self.window == "period" and self.aggregation in CUMULATIVE_AGGREGATIONS

    @property
    def time_column_or_default(self) -> str:
        return self.time_column or SOURCES[self.source].time_column


class PeriodRange(_Strict):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> PeriodRange:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


Period = str | PeriodRange


class KeyResult(_Strict):
    id: Id
    title: str
    metric: str
    type: KrType
    baseline: float | Literal["auto"] = "auto"
    target: float | str | None = None
    range: tuple[float, float] | None = None
    period: Period | None = None
    weight: float = Field(1.0, gt=0)
    owner: str | None = None

    @field_validator("target")
    @classmethod
    def _target(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, str) and not RELATIVE_TARGET.match(value.strip()):
            raise ValueError(
                f"target '{value}' is not a number or a relative change like '+20%', '-15%', '+5'"
            )
        return value.strip() if isinstance(value, str) else value


class Objective(_Strict):
    id: Id
    title: str
    description: str | None = None
    team: str
    owner: str | None = None
    type: Literal["committed", "aspirational"] = "committed"
    period: Period
    parent: str | None = None
    weight: float = Field(1.0, gt=0)
    related_metrics: list[str] = Field(default_factory=list)
    key_results: list[KeyResult] = Field(default_factory=list)

    @property
    def success_level(self) -> float:
        return 1.0 if self.type == "committed" else 0.7


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


@dataclass(frozen=True)
class ResolvedKeyResult:
    """A KR with everything its objective lends it resolved: window, success level, target form."""

    kr: KeyResult
    objective: Objective
    metric: Metric
    start: date
    end: date
    target: float | RelativeTarget | None

    @property
    def id(self) -> str:
        return self.kr.id


@dataclass(frozen=True)
class OkrConfig:
    folder: Path
    settings: Settings
    metrics: dict[str, Metric]
    objectives: dict[str, Objective]
    objective_windows: dict[str, tuple[date, date]]
    key_results: dict[str, ResolvedKeyResult]

    def children(self, objective_id: str) -> list[Objective]:
        return [o for o in self.objectives.values() if o.parent == objective_id]


def load_config(folder: Path | str) -> OkrConfig:
    """Read and validate `metrics.yaml` and `okrs.yaml`; raise ConfigError listing every problem."""
    folder = Path(folder)
    problems: list[str] = []
    metrics_doc = _read_yaml(folder / "metrics.yaml", problems)
    okrs_doc = _read_yaml(folder / "okrs.yaml", problems)
    if problems:
        raise ConfigError(problems)

    settings = _parse_one(
        Settings, metrics_doc.get("settings") or {}, "metrics.yaml", "settings", None, problems
    )
    metrics = _parse_list(Metric, metrics_doc, "metrics", "metrics.yaml", "metric", problems)
    objectives = _parse_list(Objective, okrs_doc, "objectives", "okrs.yaml", "objective", problems)
    for key in set(metrics_doc) - {"settings", "metrics"}:
        problems.append(f"metrics.yaml: unknown top-level key '{key}'; allowed: settings, metrics")
    for key in set(okrs_doc) - {"objectives"}:
        problems.append(f"okrs.yaml: unknown top-level key '{key}'; allowed: objectives")
    if problems or settings is None:
        raise ConfigError(problems)

    metric_by_id = _unique(metrics, "metrics.yaml", "metric", problems)
    objective_by_id = _unique(objectives, "okrs.yaml", "objective", problems)
    _unique([kr for o in objectives for kr in o.key_results], "okrs.yaml", "key result", problems)
    for metric in metrics:
        _check_metric(metric, metric_by_id, problems)
    windows = {
        o.id: _resolve_period(
            o.period, settings, f"okrs.yaml: objective '{o.id}', field 'period'", problems
        )
        for o in objectives
    }
    _check_hierarchy(objective_by_id, problems)
    key_results: dict[str, ResolvedKeyResult] = {}
    for objective in objectives:
        for metric_id in objective.related_metrics:
            if metric_id not in metric_by_id:
                problems.append(
                    f"okrs.yaml: objective '{objective.id}', field 'related_metrics': "
                    f"unknown metric '{metric_id}'"
                )
        for kr in objective.key_results:
            resolved = _resolve_kr(
                kr, objective, windows[objective.id], metric_by_id, settings, problems
            )
            if resolved:
                key_results[kr.id] = resolved
    if problems:
        raise ConfigError(problems)
    return OkrConfig(folder, settings, metric_by_id, objective_by_id, windows, key_results)


def _read_yaml(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        problems.append(f"{path.name}: file not found in {path.parent}")
        return {}
    except yaml.YAMLError as error:
        problems.append(f"{path.name}: not valid YAML: {error}")
        return {}
    if document is None:
        return {}
    if not isinstance(document, dict):
        problems.append(
            f"{path.name}: the top level must be a mapping, found {type(document).__name__}"
        )
        return {}
    return document


def _parse_one(model, raw, file: str, kind: str, entry_id: str | None, problems: list[str]):
    where = f"{file}: {kind}" + (f" '{entry_id}'" if entry_id else "")
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping, found {type(raw).__name__}")
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        for detail in error.errors():
            problems.append(f"{where}, {_field_path(raw, detail['loc'])}: {_message(detail)}")
        return None


def _field_path(raw: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """'field x' or, inside key_results, "key result 'kr-id', field 'x'"."""
    if len(loc) >= 3 and loc[0] == "key_results" and isinstance(loc[1], int):
        krs = raw.get("key_results") or []
        kr = krs[loc[1]] if loc[1] < len(krs) else {}
        kr_id = kr.get("id") if isinstance(kr, dict) else None
        return f"key result '{kr_id or f'#{loc[1] + 1}'}', field '{_join(loc[2:])}'"
    return f"field '{_join(loc)}'"


def _join(loc: tuple[Any, ...]) -> str:
    # Pydantic adds the union member it tried ('float', 'str', 'PeriodRange') to the location.
    parts = [
        str(p) for p in loc if not (isinstance(p, str) and p[:1].isupper() or p in _UNION_TAGS)
    ]
    return ".".join(parts) or "(entry)"


_UNION_TAGS = {"float", "str", "int", "bool", "literal['auto']", "tuple[float, float]", "list[...]"}


def _message(detail: dict[str, Any]) -> str:
    message = detail["msg"].removeprefix("Value error, ")
    if detail["type"] == "extra_forbidden":
        return "unknown field; check the spelling against CONTRACT section 1"
    if detail["type"] == "missing":
        return "is required"
    return message


def _parse_list(model, document, key, file, kind, problems):
    entries = document.get(key) or []
    if not isinstance(entries, list):
        problems.append(f"{file}: '{key}' must be a list")
        return []
    parsed = []
    for index, raw in enumerate(entries):
        entry_id = raw.get("id") if isinstance(raw, dict) else None
        item = _parse_one(model, raw, file, kind, str(entry_id or f"#{index + 1}"), problems)
        if item is not None:
            parsed.append(item)
    return parsed


def _unique(items, file: str, kind: str, problems: list[str]) -> dict[str, Any]:
    by_id: dict[str, Any] = {}
    for item in items:
        if item.id in by_id:
            problems.append(
                f"{file}: {kind} '{item.id}', field 'id': duplicate id; ids must be unique"
            )
        by_id[item.id] = item
    return by_id


def _check_metric(metric: Metric, metrics: dict[str, Metric], problems: list[str]) -> None:
    def problem(field: str, message: str) -> None:
        problems.append(f"metrics.yaml: metric '{metric.id}', field '{field}': {message}")

    if metric.aggregation == "ratio":
        for field in ("numerator", "denominator"):
            ref = getattr(metric, field)
            if ref is None:
                problem(field, "is required for aggregation 'ratio' (a metric id)")
            elif ref not in metrics:
                problem(field, f"unknown metric '{ref}'")
            elif metrics[ref].aggregation == "ratio":
                problem(field, f"'{ref}' is itself a ratio; numerator and denominator must not be")
        if metric.column:
            problem(
                "column",
                "a ratio divides two metrics; it takes numerator and denominator, not column",
            )
        return
    for field in ("numerator", "denominator"):
        if getattr(metric, field) is not None:
            problem(field, "only a ratio metric takes numerator and denominator")
    if metric.source is None:
        problem("source", f"is required; allowed: {', '.join(SOURCES)}")
        return
    source = SOURCES[metric.source]
    if metric.aggregation == "count":
        if metric.column:
            problem("column", "count counts the rows the filter selects; remove 'column'")
    elif metric.column is None:
        problem("column", f"is required for aggregation '{metric.aggregation}'")
    else:
        kind = source.column_kind(metric.column)
        if kind is None:
            problem(
                "column",
                f"source '{metric.source}' has no column '{metric.column}'; "
                f"it has: {', '.join(source.columns)}",
            )
        elif metric.aggregation != "count_distinct" and kind != NUMERIC:
            problem(
                "column",
                f"aggregation '{metric.aggregation}' needs a numeric column; "
                f"'{metric.column}' of '{metric.source}' is {kind}",
            )
    if metric.time_column is not None and source.column_kind(metric.time_column) != TIME:
        problem(
            "time_column",
            f"'{metric.time_column}' is not a date or time column of '{metric.source}'",
        )
    for column in metric.filter:
        if source.column_kind(column) is None:
            problem(
                f"filter.{column}",
                f"source '{metric.source}' has no column '{column}'; "
                f"it has: {', '.join(source.columns)}",
            )


def _resolve_period(period: Period, settings: Settings, where: str, problems: list[str]):
    if isinstance(period, PeriodRange):
        return period.start, period.end
    try:
        quarter = quarter_from_label(period, settings.fiscal_year_start_month)
    except ValueError as error:
        problems.append(f"{where}: {error}, or {{start: YYYY-MM-DD, end: YYYY-MM-DD}}")
        return None
    return quarter.start, quarter.end


def _check_hierarchy(objectives: dict[str, Objective], problems: list[str]) -> None:
    for objective in objectives.values():
        if objective.parent is not None and objective.parent not in objectives:
            problems.append(
                f"okrs.yaml: objective '{objective.id}', field 'parent': "
                f"unknown objective '{objective.parent}'"
            )
    reported: set[str] = set()
    for objective in objectives.values():
        chain, current = [objective.id], objective.parent
        while current in objectives and current not in chain:
            chain.append(current)
            current = objectives[current].parent
        if current in chain and current not in reported:
            cycle = chain[chain.index(current) :] + [current]
            reported.update(cycle)
            problems.append(
                f"okrs.yaml: objective '{current}', field 'parent': the hierarchy has "
                f"a cycle: {' -> '.join(cycle)}"
            )


def _resolve_kr(kr, objective, objective_window, metrics, settings, problems):
    def problem(field: str, message: str) -> None:
        problems.append(
            f"okrs.yaml: key result '{kr.id}' (objective '{objective.id}'), "
            f"field '{field}': {message}"
        )

    metric = metrics.get(kr.metric)
    if metric is None:
        problem("metric", f"unknown metric '{kr.metric}'")
    window = objective_window
    if kr.period is not None:
        window = _resolve_period(
            kr.period, settings, f"okrs.yaml: key result '{kr.id}', field 'period'", problems
        )
    target = parse_target(kr.target)
    if kr.type == "within_range":
        if kr.range is None:
            problem("range", "within_range needs range: [low, high]")
        elif kr.range[0] >= kr.range[1]:
            problem("range", f"low {kr.range[0]} must be below high {kr.range[1]}")
        if kr.target is not None:
            problem("target", "within_range uses range: [low, high], not target")
    elif target is None:
        problem("target", f"is required for type '{kr.type}'")
    elif kr.range is not None:
        problem("range", "only within_range takes a range")
    if kr.type in ("increase", "decrease"):
        _check_direction(kr, target, problem)
    if metric is not None and metric.is_cumulative and kr.type == "decrease":
        problem(
            "type",
            f"metric '{metric.id}' accumulates over the KR window ({metric.aggregation} "
            "with window: period), so it cannot decrease; use a trailing window or maintain_below",
        )
    if metric is None or window is None:
        return None
    return ResolvedKeyResult(kr, objective, metric, window[0], window[1], target)


def _check_direction(kr: KeyResult, target, problem) -> None:
    goes_up = kr.type == "increase"
    if isinstance(target, RelativeTarget):
        if target.amount == 0:
            problem("target", f"'{kr.target}' equals the baseline; the target must differ from it")
        elif (target.amount > 0) != goes_up:
            problem(
                "target",
                f"'{kr.target}' moves the wrong way for an {kr.type} KR; "
                f"use '{'+' if goes_up else '-'}...'",
            )
    elif isinstance(kr.baseline, float | int):
        if target == kr.baseline:
            problem("target", f"target equals the baseline ({kr.baseline}); it must differ")
        elif (target > kr.baseline) != goes_up:
            relation = "above" if goes_up else "below"
            problem(
                "target",
                f"a{'n' if goes_up else ''} {kr.type} KR needs a target {relation} the baseline "
                f"({kr.baseline}), got {target}",
            )
