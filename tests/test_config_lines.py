"""Config problems name the line they are about (`okrs.yaml:12: ...`), checked by hand on files
written out line by line, and they are the same when the parse comes from the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from transforms import config as config_module
from transforms.config import ConfigError, load_config

METRICS = """\
settings:
  timezone: Mars/Olympus
metrics:
  - id: nps
    name: NPS
    source: csv_observations
    aggregation: avg
    column: value
    filter: {metric_id: nps}
  - id: signups
    name: Signups
    source: csv_observations
    aggregation: sum
    column: value
    unti: users
  - id: visits
    source: analytics_events
    aggregation: count
  - id: revenue
    name: Revenue
    source: crm_deals
    aggregation: sum
    column: amount
    filter:
      dealstage: won
      colour: red
  - id: revenue
    name: Revenue again
    source: crm_deals
    aggregation: sum
    column: amount
"""

OKRS = """\
objectives:
  - id: o1
    title: Engagement
    team: product
    period: 2025-Q1
    related_metrics: [nps, ghost]
    key_results:
      - id: kr-a
        title: A
        metric: nps
        type: increase
        baseline: 30
        target: 40
      - id: kr-b
        title: B
        metric: ghost
        type: increase
        baseline: 30
        target: 40
  - id: o2
    title: Sales
    team: sales
    period: 2025-Q1
    weight: heavy
    key_results:
      - id: kr-d
        metric: nps
        type: increase
        baseline: 30
        target: 40
  - id: o3
    title: Support
    team: support
    period: 2025-Q5
    parent: nobody
    key_results:
      - id: kr-c
        title: C
        metric: nps
        type: increase
        baseline: 30
        target: 20
"""

# Worked out by reading the files above: each problem's line is the line of the field it names,
# or of its entry when the field is missing.
EXPECTED = [
    "metrics.yaml:2: settings, field 'timezone': unknown timezone 'Mars/Olympus'",
    "metrics.yaml:15: metric 'signups', field 'unti': unknown field; did you mean 'unit'?",
    "metrics.yaml:16: metric 'visits', field 'name': is required",
    "okrs.yaml:24: objective 'o2', field 'weight': Input should be a valid number",
    "okrs.yaml:26: objective 'o2', key result 'kr-d', field 'title': is required",
    "metrics.yaml:27: metric 'revenue', field 'id': duplicate id, also used by metric 'revenue'"
    " (line 19); ids must be unique among metrics",
    "metrics.yaml:26: metric 'revenue', field 'filter.colour': source 'crm_deals' has no column"
    " 'colour'",
    "okrs.yaml:34: objective 'o3', field 'period': '2025-Q5' is not a quarter label",
    "okrs.yaml:35: objective 'o3', field 'parent': unknown objective 'nobody'; defined: o1, o3",
    "okrs.yaml:6: objective 'o1', field 'related_metrics': unknown metric 'ghost'; defined: nps,"
    " revenue",
    "okrs.yaml:16: objective 'o1', key result 'kr-b', field 'metric': unknown metric 'ghost'",
    "okrs.yaml:42: objective 'o3', key result 'kr-c', field 'target': an increase KR needs a"
    " target above the baseline (30), got 20",
]


def write(folder: Path, metrics: str, okrs: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.yaml").write_text(metrics, encoding="utf-8")
    (folder / "okrs.yaml").write_text(okrs, encoding="utf-8")
    return folder


def problems(folder: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(folder)
    return caught.value.problems


def assert_problems(found: list[str], expected: list[str]) -> None:
    """Each problem starts with its expected text, in the order found, and there are no others."""
    assert len(found) == len(expected), found
    for problem, start in zip(found, expected, strict=True):
        assert problem.startswith(start), (problem, start)
        assert "\n" not in problem


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("OKR_CACHE_DIR", str(folder))
    return folder


def test_every_problem_names_its_line(tmp_path, cache_dir):
    folder = write(tmp_path / "config", METRICS, OKRS)
    assert_problems(problems(folder), EXPECTED)


def test_the_same_lines_come_back_from_the_cache(tmp_path, cache_dir, monkeypatch):
    folder = write(tmp_path / "config", METRICS, OKRS)
    first = problems(folder)
    assert len(list(cache_dir.glob("config-*.json"))) == 2

    def no_parsing(text):
        raise AssertionError("parsed the YAML again instead of reading the cache")

    monkeypatch.setattr(config_module, "_parse_yaml", no_parsing)
    assert problems(folder) == first
    assert_problems(first, EXPECTED)


GOOD_METRICS = """\
metrics:
  - id: nps
    name: NPS
    source: csv_observations
    aggregation: avg
    column: value
"""


def key_result(kr_id: str) -> str:
    """Six lines: a valid KR in an objective's `key_results`."""
    fields = ["title: T", "metric: nps", "type: increase", "baseline: 30", "target: 40"]
    return f"      - id: {kr_id}\n" + "".join(f"        {f}\n" for f in fields)


def test_an_id_shared_by_an_objective_and_a_key_result_is_rejected(tmp_path, cache_dir):
    okrs = (
        "objectives:\n"  # 1
        "  - id: growth\n"  # 2
        "    title: Growth\n"  # 3
        "    team: product\n"  # 4
        "    period: 2025-Q1\n"  # 5
        "    key_results:\n"  # 6
        + key_result("kr-users")  # 7-12
        + "  - id: retention\n"  # 13
        "    title: Retention\n"  # 14
        "    team: product\n"  # 15
        "    period: 2025-Q1\n"  # 16
        "    key_results:\n"  # 17
        + key_result("growth")  # 18-23: the id of the first objective
        + key_result("kr-users")  # 24-29: the id of a KR of the first objective
    )
    folder = write(tmp_path / "config", GOOD_METRICS, okrs)
    for _ in range(2):  # parsed, then from the cache
        assert problems(folder) == [
            "okrs.yaml:18: objective 'retention', key result 'growth', field 'id': duplicate id, "
            "also used by objective 'growth' (line 2); ids must be unique across objectives and "
            "key results",
            "okrs.yaml:24: objective 'retention', key result 'kr-users', field 'id': duplicate "
            "id, also used by objective 'growth', key result 'kr-users' (line 7); ids must be "
            "unique across objectives and key results",
        ]


def test_an_objective_may_not_reuse_the_id_of_a_key_result_listed_before_it(tmp_path, cache_dir):
    okrs = (
        "objectives:\n"
        "  - id: a\n    title: A\n    team: t\n    period: 2025-Q1\n    key_results:\n"  # 2-6
        + key_result("b")  # 7-12
        + "  - id: b\n    title: B\n    team: t\n    period: 2025-Q1\n"  # 13-16
    )
    folder = write(tmp_path / "config", GOOD_METRICS, okrs)
    assert problems(folder) == [
        "okrs.yaml:13: objective 'b', field 'id': duplicate id, also used by objective 'a', "
        "key result 'b' (line 7); ids must be unique across objectives and key results"
    ]


@pytest.mark.parametrize(
    ("okrs", "expected"),
    [
        (  # the key on line 4 is indented one space short of its mapping
            "objectives:\n  - id: o1\n    title: A\n   team: product\n    period: 2025-Q1\n",
            "okrs.yaml:4: not valid YAML: while parsing a block collection at line 2, column 3: "
            "did not find expected '-' indicator at line 4, column 4",
        ),
        (
            "objectives:\n  - id: o1\n    title: A\n    team: x\n    title: B\n    period: x\n",
            "okrs.yaml:5: not valid YAML: while constructing a mapping at line 2, column 5: "
            "found duplicate key 'title'; each key may appear once at line 5, column 5",
        ),
        (
            "objectives:\n  - id: o1\n    related_metrics: [nps, ]]\n    team: x\n",
            "okrs.yaml:3: not valid YAML: while parsing a block mapping at line 2, column 5: "
            "did not find expected key at line 3, column 29",
        ),
        (
            "objectives:\n  - id: o1\n    title: a\x07b\n",
            "okrs.yaml:3: not valid YAML: unacceptable character #x0007: control characters are "
            "not allowed",
        ),
        (
            "objectives:\n  - id: o1\n    title: A\n    team: t\n    period: 2025-Q1\n"
            "  - just text\n",
            "okrs.yaml:6: objective '#2': must be a mapping of fields, found str",
        ),
        (
            "objectives:\n  - id: o1\n    title: A\n    team: t\n    period: 2025-Q1\n"
            "objectivs: []\n",
            "okrs.yaml:6: unknown top-level key 'objectivs'; allowed: objectives",
        ),
    ],
    ids=["indentation", "duplicate-key", "flow-sequence", "control-character", "not-a-mapping",
         "top-level-key"],
)  # fmt: skip
def test_file_level_problems_name_their_line(tmp_path, cache_dir, okrs, expected):
    folder = write(tmp_path / "config", GOOD_METRICS, okrs)
    for _ in range(2):  # the same whether or not a first load cached anything
        [problem] = problems(folder)
        assert problem.startswith(expected), problem
        assert "\n" not in problem


def test_bytes_that_are_not_utf8_name_their_line(tmp_path, cache_dir):
    folder = write(tmp_path / "config", GOOD_METRICS, "")
    (folder / "okrs.yaml").write_bytes(b"objectives:\n  - id: o1\n    title: caf\xe9\n")
    [problem] = problems(folder)
    assert problem.startswith("okrs.yaml:3: cannot be read as UTF-8 text: ")
    assert problem.endswith("save it as UTF-8")
