"""`metrics.yaml` and `okrs.yaml` (docs/configuration.md): parsed and validated at load, so a bad
config stops before any number is computed, with an error naming the file, the id and the field."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import zoneinfo
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connectors.registry import METRIC_SOURCES
from connectors.spec import NUMERIC, TIME
from transforms import cache
from transforms.calendar import quarter_from_label
from transforms.kr_types import KR_TYPES, RELATIVE_TARGET, RelativeTarget, parse_target

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
Id = Annotated[str, Field(pattern=ID_PATTERN)]
SourceAggregation = Literal["sum", "avg", "min", "max", "last", "count", "count_distinct"]
Aggregation = Literal[SourceAggregation, "ratio"]
KrType = Literal[*KR_TYPES]  # type: ignore[valid-type]
CUMULATIVE_AGGREGATIONS = ("sum", "count", "count_distinct")
DAYS = re.compile(r"^([1-9][0-9]*)d$")
FilterValue = str | int | float | bool
MAX_ALIAS_NODES = 100_000
"""How many nodes YAML aliases may add to a config file in all (each `*name` adds a copy of what
`&name` marks). A few shared mappings add tens; a "billion laughs" file adds billions."""
MANUAL = "manual"
"""`metric: manual` on a KR: its values come from check-ins (docs/checkins.md)."""
MANUAL_PREFIX = "manual."
"""The id of a manual KR's own metric is this prefix and the KR's id."""
JSON_KEY = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_ -]*[A-Za-z0-9_-])?$")
"""A key inside a JSON column (`dimensions.<key>`, `properties.<key>`) that a metric may name."""
JSON_KEY_ALLOWED = (
    "letters A-Z and a-z, digits, '_', '-' and spaces, starting with a letter, digit or '_' "
    "and not ending in a space"
)


class ConfigError(ValueError):
    """Every problem found in a config folder, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid OKR config:\n" + "\n".join(f"  - {p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown timezone '{value}'; use an IANA name such as UTC") from None
        return value

    @field_validator("at_risk_gap")
    @classmethod
    def _ordered_gaps(cls, value: float, info: ValidationInfo) -> float:
        on_track = info.data.get("on_track_gap")
        if on_track is not None and value < on_track:
            raise ValueError(f"must be >= on_track_gap ({on_track}), got {value}")
        return value


class MetricTarget(_Strict):
    value: float
    tolerance: float = Field(0.0, ge=0)
    grain: Literal["week", "month", "quarter"] = "quarter"


class _MetricBase(_Strict):
    """What every metric has. A field only one kind of metric has may be written empty on the
    other kind (`numerator: null` on a sum, `filter: {}` on a ratio), and null on its own kind:
    either is as if left out, as it always was. Any other value on the other kind is a problem
    (`_NOT_TAKEN`)."""

    id: Id
    name: str
    description: str | None = None
    aggregation: Aggregation
    window: str = "period"
    unit: str | None = None
    direction: Literal["higher_is_better", "lower_is_better"] = "higher_is_better"
    kind: Literal["leading", "lagging"] = "lagging"
    owner: str | None = None
    target: MetricTarget | None = None
    freshness: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_empty_fields(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        return {
            key: value
            for key, value in raw.items()
            # on its own kind, '' and {} stay: `column: ''` is no column of the source
            if value not in _EMPTY_VALUES.get(key, ())
            or (key in cls.model_fields and value is not None)
        }

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

    @property
    def trailing_days(self) -> int | None:
        match = DAYS.match(self.window)
        return int(match[1]) if match else None

    @property
    def freshness_days(self) -> int | None:
        return int(self.freshness[:-1]) if self.freshness else None

    @property
    def is_cumulative(self) -> bool:
        """Accumulates from zero over a KR window, so progress runs from zero (docs/computation.md)."""
        return self.window == "period" and self.aggregation in CUMULATIVE_AGGREGATIONS


class SourceMetric(_MetricBase):
    """Aggregates the rows of one source table that its filter selects."""

    source: str
    aggregation: SourceAggregation
    column: str | None = Field(None, validate_default=True)
    filter: dict[str, FilterValue | list[FilterValue]] = Field(default_factory=dict)
    time_column: str | None = None

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if value not in METRIC_SOURCES:
            raise ValueError(f"unknown source '{value}'; allowed: {', '.join(METRIC_SOURCES)}")
        return value

    @field_validator("column")
    @classmethod
    def _column_for_aggregation(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Whether the column exists is checked against the source once the config is read."""
        aggregation = info.data.get("aggregation")
        if aggregation == "count" and value:
            raise ValueError("count counts the rows the filter selects; remove 'column'")
        if aggregation not in (None, "count") and value is None:
            raise ValueError(f"is required for aggregation '{aggregation}'")
        return value

    @property
    def time_column_or_default(self) -> str:
        return self.time_column or METRIC_SOURCES[self.source].time_column


class RatioMetric(_MetricBase):
    """Divides the values of two cumulative metrics, each measured over the ratio's window."""

    aggregation: Literal["ratio"]
    numerator: str
    denominator: str
    min_denominator: float | None = Field(None, ge=0)
    """Below this denominator a KR on the ratio is shown too few to judge (2 of 2 deals)."""

    @property
    def parts(self) -> tuple[str, str]:
        """The ids of the numerator and denominator metrics."""
        return self.numerator, self.denominator


Metric = Annotated[SourceMetric | RatioMetric, Field(discriminator="aggregation")]
"""A metric of `metrics.yaml`: its `aggregation` says which kind."""
METRIC_KINDS: dict[str, type[SourceMetric | RatioMetric]] = {
    aggregation: kind
    for kind in (SourceMetric, RatioMetric)
    for aggregation in get_args(kind.model_fields["aggregation"].annotation)
}
METRIC_FIELDS = (
    *("id", "name", "description", "source", "aggregation", "column", "filter", "time_column"),
    *("window", "numerator", "denominator", "min_denominator", "unit", "direction", "kind"),
    *("owner", "target"),
    "freshness",
)
"""The fields a metric entry may hold, of either kind, in the order docs/configuration.md lists
them (an unknown field's problem lists them all)."""
_EMPTY_VALUES: dict[str, tuple[Any, ...]] = {
    "source": (None,),
    "column": (None, ""),
    "time_column": (None, ""),
    "filter": ({},),
    "numerator": (None,),
    "denominator": (None,),
}
"""Per field of one kind of metric, the values that say nothing on the other kind."""


class PeriodRange(_Strict):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> PeriodRange:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


Period = Annotated[
    Annotated[str, Tag("Label")] | Annotated[PeriodRange, Tag("PeriodRange")],
    Discriminator(
        lambda value: "PeriodRange" if isinstance(value, dict | PeriodRange) else "Label"
    ),
]


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

    def depth(self, objective_id: str) -> int:
        """0 for a top-level objective, 1 for its children, ... (the hierarchy is acyclic)."""
        parent = self.objectives[objective_id].parent
        return 0 if parent is None else 1 + self.depth(parent)


CONFIG_FILES = ("metrics.yaml", "okrs.yaml")


def load_config(folder: Path | str) -> OkrConfig:
    """Read and validate `metrics.yaml` and `okrs.yaml`; raise ConfigError listing every problem,
    each starting with the file and line it is about, so it reads on its own.

    Loading the same files again in one process (every step of a run does) returns the config
    already built: a config of ten thousand metrics takes seconds and hundreds of MB to build."""
    folder = Path(folder)
    fingerprint = _fingerprint(folder)
    if fingerprint is not None and fingerprint in _LOADED:
        return _LOADED[fingerprint]
    config = _build_config(folder)
    if fingerprint is not None:
        _LOADED.clear()  # one config per process: a long-lived code server must not pile them up
        _LOADED[fingerprint] = config
    return config


_LOADED: dict[tuple[str, ...], OkrConfig] = {}


def _fingerprint(folder: Path) -> tuple[str, ...] | None:
    """The folder (as given and resolved) and the digest of each config file's bytes; None if
    one is unreadable (the full load then reports why)."""
    try:
        return (
            str(folder),
            str(folder.resolve()),
            *(hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in CONFIG_FILES),
        )
    except OSError:
        return None


def _build_config(folder: Path) -> OkrConfig:
    problems: list[str] = []
    metrics_file, okrs_file = (_read_yaml(folder / name, problems) for name in CONFIG_FILES)
    if problems:
        raise ConfigError(problems)

    for file, allowed in ((metrics_file, ("settings", "metrics")), (okrs_file, ("objectives",))):
        for key in sorted(map(str, file.document.keys() - set(allowed))):
            problems.append(
                f"{file.at((key,))}: unknown top-level key '{key}'; allowed: {', '.join(allowed)}"
            )
    parsed_settings = _parse_one(
        Settings,
        metrics_file.document.get("settings") or {},
        _Entry(metrics_file, ("settings",), "settings"),
        problems,
    )
    settings = parsed_settings or Settings()  # keep checking the rest against the defaults
    metrics, broken_metrics = _parse_list(Metric, metrics_file, "metrics", "metric", problems)
    objectives, broken_objectives = _parse_list(
        Objective, okrs_file, "objectives", "objective", problems
    )
    # Entries that failed to parse are reported already: references to them are not "unknown".
    _unique_ids([(entry, m.id) for entry, m in metrics], "among metrics", problems)
    metric_refs = _References("metric", _first_by_id(metrics), broken_metrics)
    _unique_ids(_okr_ids(objectives), "across objectives and key results", problems)
    objective_refs = _References("objective", _first_by_id(objectives), broken_objectives)

    for entry, metric in metrics:
        _check_metric(metric, entry, metric_refs, problems)
        if metric.id == MANUAL or metric.id.startswith(MANUAL_PREFIX):
            problems.append(
                entry.problem(
                    "id",
                    f"'{MANUAL}' and ids starting '{MANUAL_PREFIX}' are reserved for key results "
                    "with `metric: manual`, whose values come from check-ins; rename this metric",
                )
            )
    windows = {
        o.id: _resolve_period(o.period, settings, entry, problems) for entry, o in objectives
    }
    _check_hierarchy(objective_refs, objectives, problems)
    key_results: dict[str, ResolvedKeyResult] = {}
    for entry, objective in objectives:
        for index, metric_id in enumerate(objective.related_metrics):
            if unknown := metric_refs.unknown(metric_id):
                problems.append(entry.problem("related_metrics", unknown, at=(index,)))
        for index, kr in enumerate(objective.key_results):
            resolved = _resolve_kr(
                kr,
                entry.key_result(index, kr.id),
                objective,
                windows[objective.id],
                metric_refs,
                settings,
                problems,
            )
            if resolved:
                key_results.setdefault(kr.id, resolved)
    manual = {r.metric.id: r.metric for r in key_results.values() if r.kr.metric == MANUAL}
    if problems:
        raise ConfigError(problems)
    return OkrConfig(
        folder,
        settings,
        {**metric_refs.by_id, **manual},
        objective_refs.by_id,
        windows,
        key_results,
    )


@dataclass(frozen=True)
class _File:
    """A parsed config file: its document, and the line of every key and list item in it by
    path (keys as written, list indexes), so each problem can name its line."""

    name: str
    document: dict[str, Any]
    lines: dict[tuple, int]

    def line(self, path: tuple) -> int:
        """The line of the node at `path`, or of the nearest node holding it (a missing field:
        its entry)."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def at(self, path: tuple) -> str:
        return f"{self.name}:{self.line(path)}"


@dataclass(frozen=True)
class _Entry:
    """An entry of a config file (a metric, an objective, a KR, the settings) and where it is."""

    file: _File
    path: tuple
    name: str
    """How problems name it: "metric 'nps'", "objective 'o1', key result 'kr-x'"."""

    def problem(self, field: str | tuple, message: str, at: tuple = ()) -> str:
        """`file:line: entry, field 'a.b': message`, the line of the field (or of item `at`
        of it)."""
        field = (field,) if isinstance(field, str) else field
        label = ".".join(map(str, field)) or "(entry)"
        return f"{self.file.at((*self.path, *field, *at))}: {self.name}, field '{label}': {message}"

    def key_result(self, index: int, kr_id: str) -> _Entry:
        return _Entry(
            self.file, (*self.path, "key_results", index), f"{self.name}, key result '{kr_id}'"
        )

    @property
    def line(self) -> int:
        return self.file.line(self.path)


@dataclass
class _References:
    """The ids one kind of entry can be referred to by."""

    kind: str
    by_id: dict[str, Any]
    broken: set[str] = field(default_factory=set)

    def unknown(self, ref: str) -> str | None:
        """Why `ref` is not a valid reference, or None if it is (or its entry is broken)."""
        if ref in self.by_id or ref in self.broken:
            return None
        known = sorted(self.by_id)
        listed = ", ".join(known[:30]) + (", ..." if len(known) > 30 else "")
        return f"unknown {self.kind} '{ref}'; defined: {listed or '(none)'}"


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """A YAML loader that rejects a key given twice in one mapping (YAML keeps the last).
    libyaml's parser when pyyaml has it: four times faster on configs of thousands of KRs."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if isinstance(key, Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key '{key}'; each key may appear once",
                key_node.start_mark,
            )
        if isinstance(key, Hashable):
            seen.add(key)
    mapping = loader.construct_mapping(node, deep=True)
    for key_node, value_node in node.value:
        # YAML reads an unquoted `target: +5` as the number 5; the '+' means a relative change.
        plain = isinstance(value_node, yaml.ScalarNode) and not value_node.style  # None or ""
        if key_node.value == "target" and plain and value_node.value.startswith("+"):
            mapping["target"] = value_node.value
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _AliasLimitError(Exception):
    """Aliases that would expand the document past `MAX_ALIAS_NODES`, or that contain
    themselves."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


def _check_aliases(root: yaml.Node) -> None:
    """Refuse a node graph whose aliases expand it too far, before anything (the constructor,
    the cache, validation) walks the expansion. Aliases share their anchor's node, so one pass
    in document order, keeping each node's expanded size, sees every alias without expanding
    it: a node met a second time is an alias, and adds its whole expanded size. (Scalars are
    counted as their parent is entered, slightly ahead of document order: each adds 1 either
    way.)"""
    size: dict[int, int] = {}
    added = 0
    on_path: set[int] = set()

    def met(node: yaml.Node, line: int) -> bool:
        """Count `node` met at `line`; True if it is new (not an alias)."""
        nonlocal added
        key = id(node)
        if key in on_path:
            raise _AliasLimitError(
                line,
                "an alias refers to a part of the file from inside that part (a recursive "
                "document); an alias may only repeat a part that ends before it",
            )
        if key not in size:
            return True
        added += size[key]
        if added > MAX_ALIAS_NODES:
            raise _AliasLimitError(
                line,
                f"aliases (*name) expand the file by more than {MAX_ALIAS_NODES:,} nodes (the "
                "limit for all aliases of a file, reached here); write the repeated parts out, "
                "or use fewer aliases",
            )
        return False

    # (collection node, the line it is written at: its key's for a mapping value, done)
    stack: list[tuple[yaml.Node, int, bool]] = [(root, root.start_mark.line + 1, False)]
    while stack:
        node, line, done = stack.pop()
        if done:
            on_path.discard(id(node))
            size[id(node)] = 1 + sum(size[id(child)] for child, _ in _child_nodes(node))
            continue
        if not met(node, line):
            continue
        on_path.add(id(node))
        stack.append((node, line, True))
        collections = []
        for child, at in _child_nodes(node):
            if not isinstance(child, yaml.ScalarNode):
                collections.append((child, at or line, False))
            elif met(child, at or line):
                size[id(child)] = 1
        stack.extend(reversed(collections))


def _child_nodes(node: yaml.Node) -> list[tuple[yaml.Node, int | None]]:
    """The nodes directly inside `node`, each with the line of its key (mapping values)."""
    if isinstance(node, yaml.MappingNode):
        return [
            (child, key.start_mark.line + 1) for key, value in node.value for child in (key, value)
        ]
    if isinstance(node, yaml.SequenceNode):
        return [(item, None) for item in node.value]
    return []


def _read_yaml(path: Path, problems: list[str]) -> _File:
    empty = _File(path.name, {}, {})
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        problems.append(f"{path.name}: file not found in {path.parent}")
        return empty
    except OSError as error:
        problems.append(f"{path.name}: cannot be read: {error}")
        return empty
    if cached := _cached_file(path.name, data):
        return cached
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        problems.append(
            f"{path.name}:{line}: cannot be read as UTF-8 text: {error}; save it as UTF-8"
        )
        return empty
    try:
        document, lines = _parse_yaml(text)
    except _AliasLimitError as error:
        problems.append(f"{path.name}:{error.line}: {error}")
        return empty
    except yaml.YAMLError as error:
        # pyyaml's text spans lines and calls the file "<unicode string>": one line, no name.
        what = re.sub(r'\n\s*in "<unicode string>",', " at", str(error)).replace("\n", ": ")
        problems.append(f"{path.name}:{_error_line(error, text)}: not valid YAML: {what}")
        return empty
    parsed = _File(path.name, document or {}, lines)
    if document is not None and not isinstance(document, dict):
        problems.append(
            f"{parsed.at(())}: the top level must be a mapping, found {type(document).__name__}"
        )
        return empty
    _cache_file(data, parsed)
    return parsed


def _parse_yaml(text: str) -> tuple[Any, dict[tuple, int]]:
    """The document, and the line of each of its keys and list items (see `_File`)."""
    loader = _UniqueKeyLoader(text)
    try:
        root = loader.get_single_node()
        if root is not None:
            _check_aliases(root)
        document = None if root is None else loader.construct_document(root)
    finally:
        loader.dispose()
    if root is None:
        return None, {}
    lines: dict[tuple, int] = {(): root.start_mark.line + 1}
    visited: set[int] = set()
    stack = [((), root)]
    while stack:
        path, node = stack.pop()
        if id(node) in visited:  # an alias: its anchor's insides are placed once
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            children = [(k.value, k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]
        elif isinstance(node, yaml.SequenceNode):
            children = [(i, item, item) for i, item in enumerate(node.value)]
        else:
            continue
        for key, marked, child in children:
            lines[(*path, key)] = marked.start_mark.line + 1
            stack.append(((*path, key), child))
    return document, lines


def _error_line(error: yaml.YAMLError, text: str) -> int:
    """Where the parser stopped; a reader error (a control character) has a position only."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    if mark is not None:
        return mark.line + 1
    return text[: getattr(error, "position", 0)].count("\n") + 1


# Parsing YAML is most of loading a config of thousands of KRs (0.4 s even with libyaml), and
# every Dagster step process and code-location reload loads it. The parsed document and its
# lines are kept as JSON (dates tagged) under the SHA-256 of the file's bytes, so an edited file
# is parsed anew.
_CACHE_FORMAT = b"okr-config-cache 2\n"  # change when the loader reads YAML differently
_DATE_TAG = "__okr_date__"
_DATETIME_TAG = "__okr_datetime__"


def _cache_name(data: bytes) -> str:
    return f"config-{hashlib.sha256(_CACHE_FORMAT + data).hexdigest()}.json"


def _cached_file(name: str, data: bytes) -> _File | None:
    text = cache.read_text(_cache_name(data))
    if text is None:
        return None
    try:
        cached = json.loads(text, object_hook=_untag)
        return _File(name, cached["document"], {tuple(p): line for p, line in cached["lines"]})
    except (ValueError, TypeError, KeyError):  # a torn or foreign file: parse the YAML instead
        return None


def _cache_file(data: bytes, parsed: _File) -> None:
    """Documents JSON cannot give back as they are (non-text keys, NaN) are not cached."""
    try:
        document = json.dumps(parsed.document, default=_tag)
        if json.loads(document, object_hook=_untag) != parsed.document:
            return
    except (TypeError, ValueError):
        return
    lines = json.dumps([[path, line] for path, line in parsed.lines.items()])
    cache.write_text(_cache_name(data), f'{{"document": {document}, "lines": {lines}}}')


def _tag(value: Any) -> dict[str, str]:
    if isinstance(value, datetime):
        return {_DATETIME_TAG: value.isoformat()}
    if isinstance(value, date):
        return {_DATE_TAG: value.isoformat()}
    raise TypeError(f"{type(value).__name__} is not cached")


def _untag(mapping: dict[str, Any]) -> Any:
    if len(mapping) == 1:
        if _DATE_TAG in mapping:
            return date.fromisoformat(mapping[_DATE_TAG])
        if _DATETIME_TAG in mapping:
            return datetime.fromisoformat(mapping[_DATETIME_TAG])
    return mapping


def _parse_one(model, raw, entry: _Entry, problems: list[str]):
    if not isinstance(raw, dict):
        problems.append(
            f"{entry.file.at(entry.path)}: {entry.name}: must be a mapping of fields, "
            f"found {type(raw).__name__}"
        )
        return None
    try:
        return _METRIC.validate_python(raw) if model is Metric else model.model_validate(raw)
    except ValidationError as error:
        for detail in error.errors():
            about_model, loc = _metric_kind(detail) if model is Metric else (model, detail["loc"])
            loc = tuple(p for p in loc if not _is_union_tag(p))
            about, field_loc = entry, loc
            if len(loc) >= 2 and loc[0] == "key_results" and isinstance(loc[1], int):
                krs = raw.get("key_results")
                kr = krs[loc[1]] if isinstance(krs, list) and loc[1] < len(krs) else None
                kr_id = kr.get("id") if isinstance(kr, dict) else None
                about = entry.key_result(loc[1], str(kr_id or f"#{loc[1] + 1}"))
                about_model, field_loc = KeyResult, loc[2:]
            message = _message(detail, about_model, field_loc)
            if (
                message in _SHAPES.values()
            ):  # about the whole field: [5] is a bad range, not range.1
                field_loc = field_loc[:1]
            line = about.problem(field_loc, message)
            if line not in problems:  # union members report the same problem more than once
                problems.append(line)
        return None


_METRIC = TypeAdapter(Metric)


def _metric_kind(detail: Any) -> tuple[type[BaseModel], tuple[Any, ...]]:
    """The kind of metric a pydantic error is about, and where in it: the location starts with
    the aggregation that chose the kind, or is the entry when no aggregation chose one."""
    if detail["type"] in ("union_tag_not_found", "union_tag_invalid"):
        return _MetricBase, ("aggregation",)
    return METRIC_KINDS[detail["loc"][0]], detail["loc"][1:]


def _is_union_tag(part: Any) -> bool:
    """Pydantic adds the union member it tried ('float', 'PeriodRange', "literal['auto']") to the
    location; field names are lowercase identifiers."""
    return isinstance(part, str) and (part[:1].isupper() or "[" in part or part in _UNION_TAGS)


_UNION_TAGS = {"float", "str", "int", "bool"}
_PERIOD_SHAPE = "must be a quarter label like 2025-Q1, or {start: YYYY-MM-DD, end: YYYY-MM-DD}"
_SHAPES = {
    (KeyResult, "baseline"): "must be a number or 'auto'",
    (KeyResult, "target"): "must be a number or a relative change like '+20%', '-15%', '+5'",
    (KeyResult, "range"): "must be [low, high], two numbers",
    (KeyResult, "period"): _PERIOD_SHAPE,
    (Objective, "period"): _PERIOD_SHAPE,
}
"""What a field with several accepted forms allows, replacing pydantic's one message per form."""
_REQUIRED = {
    (SourceMetric, "source"): f"is required; allowed: {', '.join(METRIC_SOURCES)}",
    (RatioMetric, "numerator"): "is required for aggregation 'ratio' (a metric id)",
    (RatioMetric, "denominator"): "is required for aggregation 'ratio' (a metric id)",
}
"""What a missing field needs, where 'is required' alone would not say."""
_NOT_TAKEN = {
    **{
        (SourceMetric, field): "only a ratio metric takes numerator and denominator"
        for field in ("numerator", "denominator")
    },
    **{
        (SourceMetric, "min_denominator"): "only a ratio metric has a denominator to set a "
        "minimum for"
    },
    **{
        (RatioMetric, field): "a ratio divides its numerator and denominator metrics and takes "
        f"no '{field}'; set it on those metrics"
        for field in ("source", "column", "time_column", "filter")
    },
}
"""Why a field of the other kind of metric is refused, instead of 'unknown field'."""


def _message(detail: dict[str, Any], model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    kind = detail["type"]
    if kind == "extra_forbidden":
        if not_taken := _NOT_TAKEN.get((model, *loc)):
            return not_taken
        allowed = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return f"unknown field; {hint}allowed: {', '.join(allowed)}"
    shape = _SHAPES.get((model, loc[0] if loc else None))
    if shape and kind != "value_error" and not (kind == "missing" and isinstance(loc[-1], str)):
        return shape
    if kind in ("missing", "union_tag_not_found"):
        return _REQUIRED.get((model, *loc), "is required")
    if kind == "union_tag_invalid":  # as for any other literal
        allowed = [f"'{aggregation}'" for aggregation in METRIC_KINDS]
        return f"Input should be {', '.join(allowed[:-1])} or {allowed[-1]}"
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "id":
        return (
            f"'{detail['input']}' is not a valid id; ids use lowercase letters, digits, '_', '.' "
            "and '-', and start with a letter or digit"
        )
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping of fields, found {type(detail['input']).__name__}"
    return detail["msg"].removeprefix("Value error, ")


def _fields_at(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The field names of the model found by following `path` from `model`."""
    for part in path:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        nested = _nested_model(info.annotation) if info else None
        if nested is None:
            return []
        model = nested
    return list(METRIC_FIELDS if issubclass(model, _MetricBase) else model.model_fields)


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if found := _nested_model(arg):
            return found
    return None


def _parse_list(
    model, file: _File, key: str, kind: str, problems: list[str]
) -> tuple[list[tuple[_Entry, Any]], set[str]]:
    """The entries that parse, each with where it is, and the ids of those that do not."""
    entries = file.document.get(key) or []
    if not isinstance(entries, list):
        problems.append(f"{file.at((key,))}: '{key}' must be a list of {kind} entries")
        return [], set()
    parsed, broken = [], set()
    for index, raw in enumerate(entries):
        entry_id = raw.get("id") if isinstance(raw, dict) else None
        entry = _Entry(file, (key, index), f"{kind} '{entry_id or f'#{index + 1}'}'")
        item = _parse_one(model, raw, entry, problems)
        if item is not None:
            parsed.append((entry, item))
        elif entry_id is not None:
            broken.add(str(entry_id))
    return parsed, broken


def _first_by_id(entries: list[tuple[_Entry, Any]]) -> dict[str, Any]:
    """Items by id; a repeated id (a problem reported on its own) keeps the first."""
    by_id: dict[str, Any] = {}
    for _, item in entries:
        by_id.setdefault(item.id, item)
    return by_id


def _unique_ids(entries: list[tuple[_Entry, str]], scope: str, problems: list[str]) -> None:
    """Each later use of an id is reported with the entry that has it first, and its line."""
    first: dict[str, _Entry] = {}
    for entry, entry_id in entries:
        if other := first.get(entry_id):
            problems.append(
                entry.problem(
                    "id",
                    f"duplicate id, also used by {other.name} (line {other.line}); "
                    f"ids must be unique {scope}",
                )
            )
        first.setdefault(entry_id, entry)


def _okr_ids(objectives: list[tuple[_Entry, Objective]]) -> list[tuple[_Entry, str]]:
    """Objectives and their KRs in file order: their ids are unique together, as BI tools
    join the marts on them."""
    return [
        item
        for entry, o in objectives
        for item in [
            (entry, o.id),
            *((entry.key_result(i, kr.id), kr.id) for i, kr in enumerate(o.key_results)),
        ]
    ]


SNAKE_CASE = re.compile(r"^[a-z_][a-z0-9_]*$")


def _column_problem(source_name: str, column: str) -> str | None:
    """Why `column` is not a column of the source, or None."""
    source = METRIC_SOURCES[source_name]
    if (
        source.open_columns
        and source.column_kind(column) != TIME
        and source.json_key(column) is None
        and not SNAKE_CASE.match(column)
    ):
        return (
            f"'{column}' cannot be a column of '{source_name}': report columns are the snake_case "
            "of their display name ('Active users' -> 'active_users')"
        )
    if (json_key := source.json_key(column)) and not JSON_KEY.match(json_key[1]):
        return (
            f"'{json_key[1]}' cannot be a key of '{json_key[0]}': a key a metric names uses "
            f"{JSON_KEY_ALLOWED}"
        )
    if source.column_kind(column) is None:
        prefixes = [f"{p}<key>" for p in source.open_prefixes]
        bare = (
            f"; a key of {source.bare_keys_of} is named bare ('region') when it is letters, "
            f"digits and '_', else in full: '{source.bare_keys_of}.{column}'"
            if source.bare_keys_of
            else ""
        )
        return (
            f"source '{source_name}' has no column '{column}'; "
            f"it has: {', '.join([*source.columns, *prefixes])}{bare}"
        )
    return None


def _check_metric(metric: Metric, entry: _Entry, metrics: _References, problems: list[str]) -> None:
    """What a metric's model cannot check on its own: a ratio's parts against the other metrics,
    a source metric's columns against its source."""

    def problem(field: str | tuple, message: str) -> None:
        problems.append(entry.problem(field, message))

    if isinstance(metric, RatioMetric):
        for field, ref in zip(("numerator", "denominator"), metric.parts, strict=True):
            if unknown := metrics.unknown(ref):
                problem(field, unknown)
            elif (part := metrics.by_id.get(ref)) and part.aggregation not in (
                CUMULATIVE_AGGREGATIONS
            ):
                problem(
                    field,
                    f"'{ref}' aggregates with '{part.aggregation}'; a ratio is a ratio of sums, "
                    f"so its parts use {', '.join(CUMULATIVE_AGGREGATIONS)}",
                )
        return
    source = METRIC_SOURCES[metric.source]
    if metric.aggregation != "count" and metric.column is not None:  # count reads no column
        if unknown := _column_problem(metric.source, metric.column):
            problem("column", unknown)
        elif (
            metric.aggregation != "count_distinct"
            and (kind := source.column_kind(metric.column)) != NUMERIC
        ):
            problem(
                "column",
                f"aggregation '{metric.aggregation}' needs a numeric column; "
                f"'{metric.column}' of '{metric.source}' is {kind} (count_distinct works on any)",
            )
    if metric.time_column is not None and source.column_kind(metric.time_column) != TIME:
        times = [c for c, kind in source.columns.items() if kind == TIME]
        problem(
            "time_column",
            f"'{metric.time_column}' is not a date or time column of '{metric.source}'; "
            f"allowed: {', '.join(times)}",
        )
    for column in metric.filter:
        if unknown := _column_problem(metric.source, column):
            problem(("filter", column), unknown)
    if source.pushdown and len(metric.filter) > 1:
        problem(
            "filter",
            f"a metric of '{metric.source}' filters on at most one column (the engine computes "
            "its partials per filter column); use one column, or a ratio of metrics",
        )


def _resolve_period(period: Period, settings: Settings, entry: _Entry, problems: list[str]):
    """The window of the objective or KR `entry`, or None (a problem) for a bad label."""
    if isinstance(period, PeriodRange):
        return period.start, period.end
    try:
        quarter = quarter_from_label(period, settings.fiscal_year_start_month)
    except ValueError as error:
        problems.append(
            entry.problem("period", f"{error}, or {{start: YYYY-MM-DD, end: YYYY-MM-DD}}")
        )
        return None
    return quarter.start, quarter.end


def _check_hierarchy(
    refs: _References, entries: list[tuple[_Entry, Objective]], problems: list[str]
) -> None:
    for entry, objective in entries:
        if objective.parent is not None and (unknown := refs.unknown(objective.parent)):
            problems.append(entry.problem("parent", unknown))
    objectives: dict[str, Objective] = refs.by_id
    entry_of = {o.id: entry for entry, o in reversed(entries)}  # the first of a repeated id
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
                entry_of[current].problem(
                    "parent",
                    f"the hierarchy has a cycle: {' -> '.join(cycle)}; parents must form a tree",
                )
            )


def _resolve_kr(
    kr, entry: _Entry, objective, objective_window, metrics: _References, settings, problems
):
    def problem(field: str, message: str) -> None:
        problems.append(entry.problem(field, message))

    if kr.metric == MANUAL:
        metric = manual_metric(kr, objective)
    else:
        metric = metrics.by_id.get(kr.metric)
        if unknown := metrics.unknown(kr.metric):
            problem("metric", unknown)
    window = objective_window
    if kr.period is not None:
        window = _resolve_period(kr.period, settings, entry, problems)
    KR_TYPES[kr.type].check(kr, metric, problem)
    if metric is None or window is None:
        return None
    return ResolvedKeyResult(kr, objective, metric, window[0], window[1], parse_target(kr.target))


def manual_metric(kr: KeyResult, objective: Objective) -> SourceMetric:
    """The metric of a KR with `metric: manual`: the last value checked in for it, carried
    forward (a `last` metric over `staging.checkins`), so every KR type, status and grade applies
    unchanged. Lower is better for the types that aim down."""
    return SourceMetric(
        id=f"{MANUAL_PREFIX}{kr.id}",  # no metric of metrics.yaml may start so
        name=kr.title,
        description=f"Values checked in for key result {kr.id} (metric: manual).",
        source="checkins",
        aggregation="last",
        column="value",
        filter={"kr_id": kr.id},
        direction="lower_is_better"
        if kr.type in ("decrease", "maintain_below")
        else "higher_is_better",
        kind="lagging",
        owner=kr.owner or objective.owner,
    )
