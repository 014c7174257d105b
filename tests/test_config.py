"""Config loading (docs/configuration.md): what loads, and every rejection, each with a message that
names the file and line, the entry id and the field, and says what is allowed. Exact line numbers
are checked on hand-written files in test_config_lines.py; here `file:N:` stands for any line."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
import yaml

from connectors.registry import METRIC_SOURCES
from transforms.config import (
    METRIC_FIELDS,
    ConfigError,
    RatioMetric,
    RelativeTarget,
    SourceMetric,
    load_config,
    parse_target,
)

DROP = ...  # a field value meaning "leave this field out"

METRICS = [
    {"id": "nps", "name": "NPS", "source": "csv_observations", "aggregation": "avg",
     "column": "value", "filter": {"metric_id": "nps"}},
    {"id": "signups", "name": "Signups", "source": "csv_observations", "aggregation": "sum",
     "column": "value", "filter": {"metric_id": "signups"}},
    {"id": "visits", "name": "Visits", "source": "analytics_events", "aggregation": "count",
     "filter": {"event": "page_view"}},
    {"id": "active_users_30d", "name": "Active users", "source": "analytics_events",
     "aggregation": "count_distinct", "column": "user_id", "window": "30d",
     "filter": {"event": ["session_start", "page_view"]}},
    {"id": "revenue_30d", "name": "Revenue (30 days)", "source": "crm_deals",
     "aggregation": "sum", "column": "amount", "window": "30d"},
]  # fmt: skip


def _fields(defaults: dict, fields: dict) -> dict:
    return {k: v for k, v in (defaults | fields).items() if v is not DROP}


def metric(metric_id: str = "m", **fields) -> dict:
    defaults = {"id": metric_id, "name": "A metric", "source": "csv_observations",
                "aggregation": "avg", "column": "value"}  # fmt: skip
    return _fields(defaults, fields)


def kr(kr_id: str = "kr-x", **fields) -> dict:
    defaults = {"id": kr_id, "title": "A key result", "metric": "nps", "type": "increase",
                "baseline": 30, "target": 40}  # fmt: skip
    return _fields(defaults, fields)


def objective(objective_id: str = "o1", *key_results: dict, **fields) -> dict:
    defaults = {"id": objective_id, "title": "An objective", "team": "product",
                "period": "2025-Q1", "key_results": list(key_results)}  # fmt: skip
    return _fields(defaults, fields)


def write(folder: Path, metrics=None, objectives=None, settings=None) -> Path:
    """metrics.yaml and okrs.yaml from dicts (METRICS and one objective with one KR by default),
    or from text when given a str."""
    metrics_doc = (
        metrics
        if isinstance(metrics, str)
        else {
            "settings": settings or {"timezone": "UTC"},
            "metrics": METRICS if metrics is None else metrics,
        }
    )
    okrs_doc = (
        objectives
        if isinstance(objectives, str)
        else {"objectives": [objective("o1", kr())] if objectives is None else objectives}
    )
    for name, doc in (("metrics.yaml", metrics_doc), ("okrs.yaml", okrs_doc)):
        text = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def problems_of(folder: Path, **config) -> list[str]:
    write(folder, **config)
    with pytest.raises(ConfigError) as caught:
        load_config(folder)
    assert all(p in str(caught.value) for p in caught.value.problems)
    return caught.value.problems


LOCATION = re.compile(r"^(metrics\.yaml|okrs\.yaml):([1-9][0-9]*): ")


def unlocated(problem: str) -> str:
    """The problem with its line number replaced by N: `okrs.yaml:12: ...` -> `okrs.yaml:N: ...`."""
    return LOCATION.sub(r"\1:N: ", problem)


def only_problem(folder: Path, where: str, *substance: str, **config) -> str:
    """The config has exactly one problem; it starts with `where` (`file:N: entry, field 'f'`)
    at a line of the file that holds that field, or the entry when the field is missing, and
    says each of `substance`."""
    problems = problems_of(folder, **config)
    assert len(problems) == 1, problems
    assert unlocated(problems[0]).startswith(f"{where}: "), problems[0]
    file, line = LOCATION.match(problems[0]).groups()
    text = (folder / file).read_text().splitlines()[int(line) - 1]
    leaf = where.rpartition("field '")[2].rstrip("'").split(".")[-1]
    assert f"{leaf}:" in text or text.lstrip().startswith("- "), (problems[0], text)
    for text in substance:
        assert text in problems[0], (text, problems[0])
    return problems[0]


def case_id(value) -> str:
    """Readable test ids: the fields a case sets, and the field it blames."""
    if isinstance(value, dict):
        return ",".join(f"{k}={'drop' if v is DROP else v}" for k, v in value.items())
    return "" if isinstance(value, list) else str(value)


def kr_where(field: str, kr_id: str = "kr-x", objective_id: str = "o1") -> str:
    return f"okrs.yaml:N: objective '{objective_id}', key result '{kr_id}', field '{field}'"


def metric_where(field: str, metric_id: str = "m") -> str:
    return f"metrics.yaml:N: metric '{metric_id}', field '{field}'"


def objective_where(field: str, objective_id: str = "o1") -> str:
    return f"okrs.yaml:N: objective '{objective_id}', field '{field}'"


# -- what loads -----------------------------------------------------------------------------------


def test_valid_config_loads_with_resolved_periods_targets_and_success_levels(tmp_path):
    objectives = [
        objective("company-2025", period={"start": "2025-01-01", "end": "2025-12-31"}),
        objective(
            "engagement-2025q1",
            kr("kr-users", metric="active_users_30d", baseline="auto", target="+20%"),
            kr("kr-revenue", metric="revenue_30d", type="decrease", baseline=DROP,
               target="-15%", period={"start": "2025-01-01", "end": "2025-06-30"}),
            kr("kr-nps", target="+5", weight=2),
            kr("kr-signups", metric="signups", type="maintain_below", baseline=DROP, target=0),
            parent="company-2025",
            related_metrics=["visits"],
        ),
        objective("moonshot", kr("kr-moon", type="milestone", target=90), type="aspirational",
                  parent="company-2025"),
    ]  # fmt: skip
    config = load_config(write(tmp_path, objectives=objectives))

    assert config.settings.timezone == "UTC"
    assert set(config.metrics) == {m["id"] for m in METRICS}
    assert config.objective_windows == {
        "company-2025": (date(2025, 1, 1), date(2025, 12, 31)),
        "engagement-2025q1": (date(2025, 1, 1), date(2025, 3, 31)),
        "moonshot": (date(2025, 1, 1), date(2025, 3, 31)),
    }
    krs = config.key_results
    assert (krs["kr-users"].start, krs["kr-users"].end) == (date(2025, 1, 1), date(2025, 3, 31))
    assert (krs["kr-revenue"].start, krs["kr-revenue"].end) == (date(2025, 1, 1), date(2025, 6, 30))
    assert krs["kr-users"].target == RelativeTarget(20.0, percent=True)
    assert krs["kr-revenue"].target == RelativeTarget(-15.0, percent=True)
    assert krs["kr-nps"].target == RelativeTarget(5.0, percent=False)
    assert krs["kr-revenue"].kr.baseline == "auto"
    assert krs["kr-nps"].kr.weight == 2
    assert krs["kr-users"].metric is config.metrics["active_users_30d"]
    assert krs["kr-users"].objective.id == "engagement-2025q1"
    assert config.objectives["engagement-2025q1"].success_level == 1.0
    assert config.objectives["moonshot"].success_level == 0.7
    assert [o.id for o in config.children("company-2025")] == ["engagement-2025q1", "moonshot"]


@pytest.mark.parametrize(
    ("fiscal_start", "label", "start", "end"),
    [
        (1, "2025-Q1", date(2025, 1, 1), date(2025, 3, 31)),
        (1, "2025-Q4", date(2025, 10, 1), date(2025, 12, 31)),
        (4, "2026-Q1", date(2025, 4, 1), date(2025, 6, 30)),
        (4, "2026-Q4", date(2026, 1, 1), date(2026, 3, 31)),
        (10, "2025-Q2", date(2025, 1, 1), date(2025, 3, 31)),
    ],
)
def test_quarter_labels_follow_the_fiscal_year(tmp_path, fiscal_start, label, start, end):
    settings = {"timezone": "Europe/Berlin", "fiscal_year_start_month": fiscal_start}
    objectives = [objective("o1", kr(), period=label)]
    config = load_config(write(tmp_path, objectives=objectives, settings=settings))
    assert config.objective_windows["o1"] == (start, end)
    assert (config.key_results["kr-x"].start, config.key_results["kr-x"].end) == (start, end)


def test_the_same_files_load_once_per_process_and_an_edit_loads_anew(tmp_path):
    """Every step of a run loads the config: the second load of unchanged files is the config
    already built; any change to a file's bytes, or another folder, builds it again."""
    write(tmp_path)
    first = load_config(tmp_path)
    assert load_config(tmp_path) is first
    okrs = tmp_path / "okrs.yaml"
    okrs.write_text(okrs.read_text().replace("target: 40", "target: 41"))
    edited = load_config(tmp_path)
    assert edited is not first and edited.key_results["kr-x"].target == 41
    (tmp_path / "other").mkdir()
    assert load_config(write(tmp_path / "other")) is not edited
    assert load_config(tmp_path) is not edited  # one config is kept: the folder loads anew
    assert load_config(tmp_path).key_results["kr-x"].target == 41


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("+20%", RelativeTarget(20.0, percent=True)),
        ("-15%", RelativeTarget(-15.0, percent=True)),
        ("+5", RelativeTarget(5.0, percent=False)),
        ("-2.5", RelativeTarget(-2.5, percent=False)),
        (120.0, 120.0),
        (None, None),
    ],
)
def test_parse_target(text, parsed):
    assert parse_target(text) == parsed


def test_an_unquoted_plus_target_stays_relative(tmp_path):
    write(tmp_path)
    okrs = (tmp_path / "okrs.yaml").read_text().replace("target: 40", "target: +5")
    assert "target: +5\n" in okrs
    (tmp_path / "okrs.yaml").write_text(okrs)
    assert load_config(tmp_path).key_results["kr-x"].target == RelativeTarget(5.0, percent=False)


def test_relative_target_applies_to_the_magnitude_of_the_baseline():
    assert RelativeTarget(20.0, percent=True).apply(-50.0) == -40.0
    assert RelativeTarget(5.0, percent=False).apply(10.0) == 15.0
    assert RelativeTarget(5.0, percent=False).apply(None) is None


@pytest.mark.parametrize(
    "accepted",
    [
        kr(metric="revenue_30d", type="decrease", target=20),  # a trailing-window sum may decrease
        kr(metric="signups", type="maintain_below", baseline=DROP, target=0),
        kr(type="within_range", baseline=DROP, target=DROP, range=[20, 50]),
        kr(metric="signups", baseline="auto", target="+20%"),  # cumulative, relative to baseline
    ],
    ids=["decrease-trailing-sum", "maintain-below-cumulative", "within-range", "cumulative-up"],
)
def test_accepted_key_results(tmp_path, accepted):
    config = load_config(write(tmp_path, objectives=[objective("o1", accepted)]))
    assert list(config.key_results) == ["kr-x"]


# -- key results ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "substance"),
    [
        ({"baseline": 40, "target": 40}, "target", ["equals the baseline (40)", "must differ"]),
        ({"baseline": "auto", "target": "+0%"}, "target", ["'+0%' equals the baseline"]),
        ({"baseline": 0, "target": "+20%"}, "target", ["equals the baseline (0)"]),
        ({"baseline": 30, "target": 20}, "target", ["increase KR needs a target above the baseline (30), got 20"]),
        ({"type": "decrease", "baseline": 30, "target": 40}, "target", ["decrease KR needs a target below the baseline (30), got 40"]),
        ({"baseline": "auto", "target": "-15%"}, "target", ["'-15%' moves the wrong way", "use '+...'"]),
        ({"type": "decrease", "baseline": "auto", "target": "+5"}, "target", ["'+5' moves the wrong way", "use '-...'"]),
        ({"type": "increase", "target": DROP}, "target", ["is required for type 'increase'"]),
        ({"target": "20"}, "target", ["'20' is not a number or a relative change like '+20%'"]),
        ({"target": [1, 2]}, "target", ["must be a number or a relative change like '+20%', '-15%', '+5'"]),
        ({"baseline": "last year"}, "baseline", ["must be a number or 'auto'"]),
        ({"type": "within_range", "target": DROP}, "range", ["within_range needs range: [low, high]"]),
        ({"type": "within_range", "target": DROP, "range": [50, 20]}, "range", ["low 50 must be below high 20"]),
        ({"type": "within_range", "target": DROP, "range": [5, 5]}, "range", ["low 5 must be below high 5"]),
        ({"type": "within_range", "target": DROP, "range": [5]}, "range", ["must be [low, high], two numbers"]),
        ({"range": [1, 2]}, "range", ["only within_range takes a range"]),
        ({"type": "grow"}, "type", ["'increase'", "'within_range'", "'milestone'"]),
        ({"metric": "ghost"}, "metric", ["unknown metric 'ghost'", "defined: active_users_30d, nps"]),
        ({"weight": 0}, "weight", ["greater than 0"]),
        ({"weight": -1}, "weight", ["greater than 0"]),
        ({"period": "2025-Q5"}, "period", ["'2025-Q5' is not a quarter label", "YYYY-Qn", "{start: YYYY-MM-DD, end: YYYY-MM-DD}"]),
        ({"taget": 40}, "taget", ["unknown field", "did you mean 'target'?", "allowed: id, title, metric"]),
        ({"id": "KR-X"}, "id", ["'KR-X' is not a valid id", "lowercase letters, digits"]),
        ({"target": float("nan")}, "target", ["must be a number"]),
    ],
    ids=case_id,
)  # fmt: skip
def test_key_result_rejections(tmp_path, fields, field, substance):
    objectives = [objective("o1", kr(**fields))]
    kr_id = fields.get("id", "kr-x")
    only_problem(tmp_path, kr_where(field, kr_id), *substance, objectives=objectives)


@pytest.mark.parametrize("metric_id", ["signups", "visits", "active_users_period"])
def test_decrease_on_a_cumulative_metric_is_rejected(tmp_path, metric_id):
    metrics = [*METRICS, {**METRICS[3], "id": "active_users_period", "window": "period"}]
    objectives = [objective("o1", kr(metric=metric_id, type="decrease", target=20))]
    only_problem(
        tmp_path,
        kr_where("type"),
        f"metric '{metric_id}' accumulates over the KR window",
        "cannot decrease; use a trailing window or maintain_below",
        metrics=metrics,
        objectives=objectives,
    )


def test_increase_on_a_cumulative_metric_needs_a_positive_target(tmp_path):
    objectives = [objective("o1", kr(metric="signups", baseline=-10, target=0))]
    only_problem(tmp_path, kr_where("target"), "must be above 0, got 0", objectives=objectives)


def test_key_result_ids_are_unique_across_objectives(tmp_path):
    objectives = [objective("o1", kr("kr-x")), objective("o2", kr("kr-x"))]
    only_problem(
        tmp_path,
        kr_where("id", "kr-x", "o2"),
        "duplicate id, also used by objective 'o1', key result 'kr-x' (line ",
        "ids must be unique across objectives and key results",
        objectives=objectives,
    )


# -- metrics --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "substance"),
    [
        ({"source": "analytics_events", "aggregation": "sum", "column": "event"}, "column", ["aggregation 'sum' needs a numeric column", "'event' of 'analytics_events' is text"]),
        ({"source": "crm_deals", "aggregation": "max", "column": "amout"}, "column", ["source 'crm_deals' has no column 'amout'", "it has: id,", "amount"]),
        ({"source": "analytics_report", "column": "Active users"}, "column", ["snake_case", "'Active users' -> 'active_users'"]),
        ({"aggregation": "sum", "column": DROP}, "column", ["is required for aggregation 'sum'"]),
        ({"aggregation": "count"}, "column", ["count counts the rows the filter selects; remove 'column'"]),
        ({"source": "crm_deals", "column": "amount", "filter": {"colour": "red"}}, "filter.colour", ["source 'crm_deals' has no column 'colour'", "it has: id,"]),
        ({"filter": {"col our": "red"}}, "filter.col our", ["source 'csv_observations' has no column 'col our'", "it has: date, metric_id, value, dimensions, dimensions.<key>", "named bare ('region')", "else in full: 'dimensions.col our'"]),
        ({"time_column": "value"}, "time_column", ["'value' is not a date or time column", "allowed: date"]),
        ({"window": "30days"}, "window", ["window '30days' is not allowed; use 'period' or a trailing 'Nd'"]),
        ({"window": "0d"}, "window", ["use 'period' or a trailing 'Nd'"]),
        ({"freshness": "2 days"}, "freshness", ["use 'Nd'"]),
        ({"source": "hubspot"}, "source", ["unknown source 'hubspot'", f"allowed: {', '.join(METRIC_SOURCES)}"]),
        ({"source": DROP}, "source", [f"is required; allowed: {', '.join(METRIC_SOURCES)}"]),
        ({"aggregation": "median"}, "aggregation", ["'sum'", "'count_distinct'", "'ratio'"]),
        ({"aggregation": "ratio", "source": DROP, "column": DROP, "denominator": "visits"}, "numerator", ["is required for aggregation 'ratio'"]),
        ({"aggregation": "ratio", "source": DROP, "column": DROP, "numerator": "ghost", "denominator": "visits"}, "numerator", ["unknown metric 'ghost'", "defined: "]),
        ({"aggregation": "ratio", "source": DROP, "column": DROP, "numerator": "nps", "denominator": "visits"}, "numerator", ["'nps' aggregates with 'avg'", "ratio of sums"]),
        ({"aggregation": "ratio", "source": DROP, "column": "value", "numerator": "signups", "denominator": "visits"}, "column", ["takes no 'column'"]),
        ({"aggregation": "ratio", "source": DROP, "column": DROP, "filter": {"event": "x"}, "numerator": "signups", "denominator": "visits"}, "filter", ["takes no 'filter'"]),
        ({"numerator": "signups"}, "numerator", ["only a ratio metric takes numerator and denominator"]),
        ({"direction": "up"}, "direction", ["'higher_is_better' or 'lower_is_better'"]),
        ({"unti": "users"}, "unti", ["unknown field", "did you mean 'unit'?", "allowed: id, name"]),
        ({"target": {"value": 10, "tolerence": 0.1}}, "target.tolerence", ["did you mean 'tolerance'?", "allowed: value, tolerance, grain"]),
    ],
    ids=case_id,
)  # fmt: skip
def test_metric_rejections(tmp_path, fields, field, substance):
    only_problem(tmp_path, metric_where(field), *substance, metrics=[*METRICS, metric(**fields)])


@pytest.mark.parametrize("bad_id", ["Signups", "_signups", "sign ups", "-x"])
def test_invalid_metric_ids(tmp_path, bad_id):
    only_problem(
        tmp_path,
        metric_where("id", bad_id),
        f"'{bad_id}' is not a valid id",
        "start with a letter or digit",
        metrics=[*METRICS, metric(bad_id)],
    )


def test_duplicate_metric_ids(tmp_path):
    only_problem(
        tmp_path,
        metric_where("id", "nps"),
        "duplicate id, also used by metric 'nps' (line ",
        "ids must be unique among metrics",
        metrics=[*METRICS, metric("nps")],
    )


def test_ratio_of_sums_loads(tmp_path):
    ratio = metric("conversion", aggregation="ratio", source=DROP, column=DROP,
                   numerator="signups", denominator="visits", window="30d")  # fmt: skip
    config = load_config(write(tmp_path, metrics=[*METRICS, ratio]))
    assert config.metrics["conversion"].numerator == "signups"
    assert isinstance(config.metrics["conversion"], RatioMetric)
    assert isinstance(config.metrics["signups"], SourceMetric)


@pytest.mark.parametrize(
    ("fields", "field", "substance"),
    [
        ({"aggregation": DROP}, "aggregation", ["is required"]),
        ({"aggregation": None}, "aggregation", ["'sum'", "'count_distinct'", "'ratio'"]),
        ({"source": None}, "source", [f"is required; allowed: {', '.join(METRIC_SOURCES)}"]),
        ({"aggregation": "ratio", "source": DROP, "column": DROP, "numerator": None, "denominator": "visits"}, "numerator", ["is required for aggregation 'ratio' (a metric id)"]),
        ({"aggregation": "ratio", "source": "crm_deals", "column": DROP, "numerator": "signups", "denominator": "visits"}, "source", ["takes no 'source'"]),
        ({"aggregation": "ratio", "source": DROP, "column": DROP, "time_column": "date", "numerator": "signups", "denominator": "visits"}, "time_column", ["takes no 'time_column'"]),
        ({"aggregation": "ratio", "source": DROP, "column": DROP, "numerator": "signups", "denominator": "visits", "colum": "x"}, "colum", ["did you mean 'column'?", "allowed: id, name, description, source, aggregation, column, filter, time_column, window, numerator, denominator, min_denominator, unit"]),
        ({"denominator": "visits"}, "denominator", ["only a ratio metric takes numerator and denominator"]),
    ],
    ids=case_id,
)  # fmt: skip
def test_what_each_kind_of_metric_takes(tmp_path, fields, field, substance):
    """A metric's aggregation makes it a source metric or a ratio; each is told about the fields
    of the other kind, and a missing or unknown aggregation is told like any other field's."""
    only_problem(tmp_path, metric_where(field), *substance, metrics=[*METRICS, metric(**fields)])


def test_empty_fields_of_the_other_kind_of_metric_are_as_if_left_out(tmp_path):
    ratio = metric("conversion", aggregation="ratio", source=None, column="", filter={},
                   time_column=None, numerator="signups", denominator="visits")  # fmt: skip
    plain = metric("plain", numerator=None, denominator=None)
    config = load_config(write(tmp_path, metrics=[*METRICS, ratio, plain]))
    assert config.metrics["conversion"].parts == ("signups", "visits")
    assert config.metrics["plain"].column == "value"


def test_an_unknown_metric_field_is_told_every_field_of_either_kind():
    assert set(METRIC_FIELDS) == set(SourceMetric.model_fields) | set(RatioMetric.model_fields)


# -- objectives and the hierarchy -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "substance"),
    [
        ({"parent": "ghost"}, "parent", ["unknown objective 'ghost'", "defined: o1"]),
        ({"parent": "o1"}, "parent", ["the hierarchy has a cycle: o1 -> o1"]),
        ({"weight": 0}, "weight", ["greater than 0"]),
        ({"period": "2025-Q5"}, "period", ["'2025-Q5' is not a quarter label", "YYYY-Qn such as 2025-Q1"]),
        ({"period": 2025}, "period", ["must be a quarter label like 2025-Q1, or {start: YYYY-MM-DD, end: YYYY-MM-DD}"]),
        ({"period": {"start": "2025-03-01", "end": "2025-01-01"}}, "period", ["end 2025-01-01 is before start 2025-03-01"]),
        ({"period": DROP}, "period", ["is required"]),
        ({"related_metrics": ["nps", "ghost"]}, "related_metrics", ["unknown metric 'ghost'"]),
        ({"type": "stretch"}, "type", ["'committed' or 'aspirational'"]),
        ({"team": DROP}, "team", ["is required"]),
    ],
    ids=case_id,
)  # fmt: skip
def test_objective_rejections(tmp_path, fields, field, substance):
    only_problem(
        tmp_path, objective_where(field), *substance, objectives=[objective("o1", kr(), **fields)]
    )


def test_period_range_fields(tmp_path):
    period = {"start": "2025-03-01", "ends": "2025-06-30"}
    problems = problems_of(tmp_path, objectives=[objective("o1", kr(), period=period)])
    assert list(map(unlocated, problems)) == [
        f"{objective_where('period.end')}: is required",
        f"{objective_where('period.ends')}: unknown field; did you mean 'end'? allowed: start, end",
    ]


def test_a_two_cycle_is_reported_once(tmp_path):
    objectives = [
        objective("o1", kr("kr-a"), parent="o2"),
        objective("o2", kr("kr-b"), parent="o1"),
        objective("o3", kr("kr-c"), parent="o1"),  # hangs off the cycle; not a cycle itself
    ]
    only_problem(
        tmp_path, objective_where("parent"), "a cycle: o1 -> o2 -> o1", objectives=objectives
    )


@pytest.mark.parametrize("bad_id", ["_o1", "O1"])
def test_invalid_objective_ids(tmp_path, bad_id):
    only_problem(
        tmp_path,
        objective_where("id", bad_id),
        f"'{bad_id}' is not a valid id",
        objectives=[objective(bad_id, kr())],
    )


def test_duplicate_objective_ids(tmp_path):
    objectives = [objective("o1", kr("kr-a")), objective("o1", kr("kr-b"))]
    only_problem(tmp_path, objective_where("id"), "duplicate id", objectives=objectives)


# -- settings and files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "field", "substance"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", ["unknown timezone 'Mars/Olympus'", "IANA name"]),
        ({"timezone": "America"}, "timezone", ["unknown timezone 'America'"]),
        ({"fiscal_year_start_month": 13}, "fiscal_year_start_month", ["less than or equal to 12"]),
        ({"week_start": "mon"}, "week_start", ["'monday'", "'sunday'"]),
        ({"on_track_gap": 0.3, "at_risk_gap": 0.2}, "at_risk_gap", ["must be >= on_track_gap (0.3)"]),
        ({"timezon": "UTC"}, "timezon", ["did you mean 'timezone'?"]),
    ],
    ids=case_id,
)  # fmt: skip
def test_settings_rejections(tmp_path, settings, field, substance):
    where = f"metrics.yaml:N: settings, field '{field}'"
    only_problem(tmp_path, where, *substance, settings=settings)


def test_missing_metrics_file(tmp_path):
    write(tmp_path)
    (tmp_path / "metrics.yaml").unlink()
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.problems == [f"metrics.yaml: file not found in {tmp_path}"]


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    okrs = "objectives:\n  - id: o1\n    title: [unclosed\n"
    [problem] = problems_of(tmp_path, objectives=okrs)
    assert problem.startswith("okrs.yaml:4: not valid YAML: ")
    assert "line 4" in problem


def test_a_key_given_twice_is_rejected(tmp_path):
    okrs = "objectives:\n  - id: o1\n    title: A\n    title: B\n"
    [problem] = problems_of(tmp_path, objectives=okrs)
    assert problem.startswith("okrs.yaml:4: not valid YAML: ")
    assert "found duplicate key 'title'" in problem
    assert "line 4" in problem


@pytest.mark.parametrize(
    ("okrs", "expected"),
    [
        ("- id: o1\n", "okrs.yaml:1: the top level must be a mapping, found list"),
        ("objectives: []\nobjectivs: []\n", "okrs.yaml:2: unknown top-level key 'objectivs'; allowed: objectives"),
        ("objectives: {id: o1}\n", "okrs.yaml:1: 'objectives' must be a list of objective entries"),
        ("objectives:\n  - just-a-string\n", "okrs.yaml:2: objective '#1': must be a mapping of fields, found str"),
    ],
)  # fmt: skip
def test_document_shape(tmp_path, okrs, expected):
    assert problems_of(tmp_path, objectives=okrs) == [expected]


def test_several_problems_are_reported_at_once(tmp_path):
    metrics = [*METRICS, metric("broken", window="30days")]
    objectives = [
        objective("o1", kr("kr-a", metric="ghost"), kr("kr-b", baseline=40, target=40)),
        objective("o2", kr("kr-c"), parent="nobody"),
        objective("o3", kr("kr-d"), weight=0),
    ]
    problems = problems_of(
        tmp_path, metrics=metrics, objectives=objectives, settings={"timezone": "Nowhere/City"}
    )
    assert sorted(": ".join(unlocated(p).split(": ")[:2]) for p in problems) == [
        "metrics.yaml:N: metric 'broken', field 'window'",
        "metrics.yaml:N: settings, field 'timezone'",
        "okrs.yaml:N: objective 'o1', key result 'kr-a', field 'metric'",
        "okrs.yaml:N: objective 'o1', key result 'kr-b', field 'target'",
        "okrs.yaml:N: objective 'o2', field 'parent'",
        "okrs.yaml:N: objective 'o3', field 'weight'",
    ]


def test_references_to_a_broken_entry_are_not_also_reported_as_unknown(tmp_path):
    metrics = [*METRICS, metric("broken", window="30days")]
    objectives = [
        objective("o1", kr("kr-a", metric="broken"), related_metrics=["broken"]),
        objective("o2", kr("kr-b"), parent="o3"),
        objective("o3", kr("kr-c", weight=0)),
    ]
    problems = problems_of(tmp_path, metrics=metrics, objectives=objectives)
    assert [p.split(": ")[1] for p in problems] == [
        "metric 'broken', field 'window'",
        "objective 'o3', key result 'kr-c', field 'weight'",
    ]


def test_parsed_config_is_cached_by_content_and_gives_the_same_config(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("OKR_CACHE_DIR", str(cache))
    folder = tmp_path / "config"
    folder.mkdir()
    objectives = [objective("o1", kr(period={"start": "2025-01-01", "end": "2025-06-30"}))]
    write(folder, objectives=objectives)
    # An unquoted date is a YAML date, which the cache must give back as a date.
    okrs = folder / "okrs.yaml"
    okrs.write_text(okrs.read_text().replace("'2025-01-01'", "2025-01-01"))
    assert "start: 2025-01-01\n" in okrs.read_text()

    parsed = load_config(folder)
    assert len(list(cache.glob("config-*.json"))) == 2  # one per file
    cached = load_config(folder)
    assert cached.key_results["kr-x"].start == date(2025, 1, 1)
    assert cached == parsed

    # A damaged cache entry is ignored; an edited file is parsed anew, not served stale.
    for entry in cache.glob("config-*.json"):
        entry.write_text("{not json")
    assert load_config(folder) == parsed
    okrs.write_text(okrs.read_text().replace("2025-06-30", "2025-09-30"))
    assert load_config(folder).key_results["kr-x"].end == date(2025, 9, 30)
    assert len(list(cache.glob("config-*.json"))) == 3


def test_a_document_json_cannot_hold_is_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("OKR_CACHE_DIR", str(tmp_path / "cache"))
    folder = write(tmp_path)
    okrs = folder / "okrs.yaml"
    okrs.write_text(okrs.read_text() + "1: numeric key\n")
    for _ in range(2):  # the second load parses the YAML again and finds the same problem
        with pytest.raises(ConfigError, match="unknown top-level key '1'"):
            load_config(folder)
    assert len(list((tmp_path / "cache").glob("config-*.json"))) == 1  # metrics.yaml only
