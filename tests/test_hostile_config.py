"""Hostile config files (issue 11, items 3 and 6), written to real files and loaded: a YAML alias
bomb is refused before anything expands it, with bounded memory and time, and a filter key or
column that names a JSON key outside the documented character set is refused at load, naming
the file, the line and what is allowed. Seeded and bounded, so loaders added later can run the
same inputs."""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from transforms.config import JSON_KEY, MAX_ALIAS_NODES, ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = "letters A-Z and a-z, digits, '_', '-' and spaces"

METRICS_HEAD = """\
metrics:
  - id: visits
    name: Visits
    source: csv_observations
    aggregation: sum
    column: value
    filter: {metric_id: visits}
"""


def write(folder: Path, metrics: str = METRICS_HEAD, okrs: str = "objectives: []\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.yaml").write_text(metrics)
    (folder / "okrs.yaml").write_text(okrs)
    return folder


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(folder)
    return raised.value.problems


def laughs(levels: int, top_key: str) -> str:
    """The billion-laughs document: `levels` anchored lists of 10 aliases to the one before."""
    lines = ["a: &a [" + ", ".join(['"lol"'] * 10) + "]"]
    names = "abcdefghijklmnop"
    for previous, name in zip(names[: levels - 1], names[1:levels], strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    lines.append(f"{top_key}: *{names[levels - 1]}")
    return "\n".join(lines) + "\n"


# -- item 6: alias bombs --------------------------------------------------------------------------

# Loads the config in a child process under an address-space limit, so a regression fails with a
# MemoryError there instead of taking the machine's memory; prints the outcome as JSON.
_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from transforms.config import ConfigError, load_config
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    try:
        load_config(sys.argv[1])
        problems = []
    except ConfigError as error:
        problems = error.problems
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"problems": problems, "grown_kb": grown_kb,
                      "seconds": time.monotonic() - start}))
    """
)


def _limit_memory() -> None:
    limit = 3 * 1024**3  # far above a healthy load (~100 MB), far below a bomb's expansion
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@pytest.mark.parametrize(
    ("file", "levels", "top_key", "line"),
    [("metrics.yaml", 10, "metrics", 5), ("okrs.yaml", 9, "objectives", 5)],
)
def test_billion_laughs_is_refused_quickly_with_bounded_memory(
    tmp_path, file, levels, top_key, line
):
    folder = write(tmp_path / "config")
    (folder / file).write_text(laughs(levels, top_key))
    assert (folder / file).stat().st_size < 700
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,  # a safety net only: the refusal takes milliseconds
        cwd=ROOT,
        preexec_fn=_limit_memory,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout)
    bomb = [p for p in outcome["problems"] if p.startswith(f"{file}:")]
    # the line where the expansion passes the limit: level e adds 10 x 11,111 nodes
    assert bomb == [
        f"{file}:{line}: aliases (*name) expand the file by more than {MAX_ALIAS_NODES:,} "
        "nodes (the limit for all aliases of a file, reached here); write the repeated parts "
        "out, or use fewer aliases"
    ]
    assert outcome["grown_kb"] < 200 * 1024
    assert outcome["seconds"] < 30


def test_a_bomb_is_refused_in_process_without_growing_memory(tmp_path):
    folder = write(tmp_path / "config", metrics=laughs(9, "metrics"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    problems = problems_of(folder)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024
    assert problems[0].startswith("metrics.yaml:5: aliases (*name) expand the file")


def test_a_recursive_alias_is_refused(tmp_path):
    folder = write(tmp_path / "config", okrs="objectives: &all\n  - *all\n")
    assert problems_of(folder) == [
        "okrs.yaml:1: an alias refers to a part of the file from inside that part (a recursive "
        "document); an alias may only repeat a part that ends before it"
    ]


def test_a_few_legit_aliases_still_load(tmp_path):
    metrics = METRICS_HEAD + (
        "  - id: nps\n"
        "    name: NPS\n"
        "    source: csv_observations\n"
        "    aggregation: avg\n"
        "    column: value\n"
        "    filter: &nps_rows {metric_id: nps, region: [emea, apac]}\n"
        "    target: &target {value: 40, tolerance: 2, grain: week}\n"
        "  - id: csat\n"
        "    name: CSAT\n"
        "    source: csv_observations\n"
        "    aggregation: avg\n"
        "    column: value\n"
        "    filter: *nps_rows\n"
        "    target: *target\n"
        "  - id: churn\n"
        "    name: &churn Churn\n"
        "    source: &csv csv_observations\n"
        "    aggregation: avg\n"
        "    column: value\n"
        "    filter: {metric_id: churn}\n"
        "  - id: churn_emea\n"
        "    name: *churn\n"
        "    source: *csv\n"
        "    aggregation: avg\n"
        "    column: value\n"
        "    filter: {metric_id: churn, region: emea}\n"
    )
    okrs = textwrap.dedent(
        """\
        objectives:
          - id: o1
            title: Engagement
            team: product
            period: 2025-Q1
            related_metrics: &shared [nps, csat]
            key_results:
              - {id: kr-a, title: A, metric: nps, type: increase, baseline: 30, target: 40}
          - id: o2
            title: Satisfaction
            team: product
            period: 2025-Q1
            related_metrics: *shared
            key_results:
              - {id: kr-b, title: B, metric: csat, type: increase, baseline: 30, target: 40}
        """
    )
    config = load_config(write(tmp_path / "config", metrics, okrs))
    assert config.metrics["csat"].filter == {"metric_id": "nps", "region": ["emea", "apac"]}
    assert config.metrics["csat"].target == config.metrics["nps"].target
    assert config.metrics["churn_emea"].name == "Churn"
    assert config.metrics["churn_emea"].filter == {"metric_id": "churn", "region": "emea"}
    assert config.objectives["o2"].related_metrics == ["nps", "csat"]


@pytest.mark.parametrize(("aliases", "refused"), [(99, False), (100, True)])
def test_the_alias_limit_counts_expanded_nodes(tmp_path, aliases, refused):
    """An anchored list of 1,000 values is 1,001 nodes: 99 aliases add 99,099, 100 add 100,100."""
    ids = ", ".join(f"m{i}" for i in range(1000))
    metrics = METRICS_HEAD + "".join(
        f"  - {{id: m{i}, name: M, source: csv_observations, aggregation: sum, column: value, "
        f"filter: {{metric_id: {f'&ids [{ids}]' if i == 0 else '*ids'}}}}}\n"
        for i in range(aliases + 1)
    )
    folder = write(tmp_path / "config", metrics)
    if not refused:
        assert len(load_config(folder).metrics) == aliases + 2
        return
    last_line = 7 + aliases + 1
    assert problems_of(folder)[0].startswith(f"metrics.yaml:{last_line}: aliases (*name)")


# -- item 3: keys inside JSON columns ---------------------------------------------------------


def metric_with(field: str, value: str) -> str:
    """METRICS_HEAD and a metric on line 8 whose `field` line (9) holds `value`."""
    quoted = json.dumps(value)
    source = "analytics_events" if value.startswith("properties.") else "csv_observations"
    body = (
        f"    filter: {{{quoted}: x}}\n"
        if field == "filter"
        else f"    column: {quoted}\n    filter: {{}}\n"
    )
    head = f"  - id: odd\n{body}    name: Odd\n    source: {source}\n"
    aggregation = "count" if field == "filter" else "count_distinct"
    return METRICS_HEAD + head + f"    aggregation: {aggregation}\n"


@pytest.mark.parametrize("field", ["filter", "column"])
@pytest.mark.parametrize(
    "name",
    [
        "dimensions.o'brien",
        "dimensions.x') OR read_text('/etc/passwd",
        'dimensions.x") OR 1=1 --',
        "properties.a'b",
        "properties.plan; DROP TABLE x",
        "dimensions.a/b",
        "dimensions.a.b",
        "dimensions.a\\b",
        "dimensions. leading",
        "dimensions.trailing ",
        "dimensions.-dash",
        "dimensions.régión",
    ],
)
def test_json_keys_outside_the_character_set_are_refused(tmp_path, field, name):
    prefix, key = name.split(".", 1)
    problems = problems_of(write(tmp_path / "config", metric_with(field, name)))
    label = f"filter.{name}" if field == "filter" else "column"
    assert problems == [
        f"metrics.yaml:9: metric 'odd', field '{label}': '{key}' cannot be a key of '{prefix}': "
        f"a key a metric names uses {ALLOWED}, starting with a letter, digit or '_' and not "
        "ending in a space"
    ]


@pytest.mark.parametrize("field", ["filter", "column"])
@pytest.mark.parametrize(
    "name",
    [
        "dimensions.region",
        "dimensions.customer tier",
        "dimensions.cost-center",
        "dimensions._x9",
        "dimensions.2025",
        "properties.plan",
        "properties.utm_source",
        "region",
    ],
)
def test_json_keys_in_the_character_set_still_load(tmp_path, field, name):
    config = load_config(write(tmp_path / "config", metric_with(field, name)))
    metric = config.metrics["odd"]
    assert (name in metric.filter) if field == "filter" else metric.column == name


def test_seeded_random_keys_are_refused_exactly_when_outside_the_set(tmp_path):
    """200 keys from a seeded mix of allowed and hostile characters, one metric each, in one
    file: exactly the metrics whose key is outside the set are reported, at their own line."""
    rng = random.Random(11)
    alphabet = "abcXYZ019_- " + "'\"\\;()=*/~.%$`,|&<>?!@#{}[]+é\t"
    keys = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(200)]
    entries = [
        {
            "id": f"k{i}",
            "name": "K",
            "source": "csv_observations",
            "aggregation": "count",
            "filter": {f"dimensions.{key}": "x"},
        }
        for i, key in enumerate(keys)
    ]
    text = yaml.safe_dump({"metrics": entries}, sort_keys=False, width=10_000)
    folder = write(tmp_path / "config", metrics=text)
    bad = {f"k{i}" for i, key in enumerate(keys) if not JSON_KEY.match(key)}
    assert 20 < len(bad) < 200  # the mix exercises both sides
    if not bad:
        load_config(folder)
        return
    problems = problems_of(folder)
    lines = text.splitlines()
    reported = {}
    for problem in problems:
        where, _, rest = problem.partition(": metric '")
        metric_id = rest.split("'", 1)[0]
        reported[metric_id] = int(where.rsplit(":", 1)[1])
        assert "cannot be a key of 'dimensions'" in problem and ALLOWED in problem
    assert set(reported) == bad
    for metric_id, line in reported.items():
        assert lines[line - 1].lstrip().startswith(("dimensions.", "'dimensions.", '"dimensions.'))
        assert lines[line - 2].strip() == "filter:"
        assert any(lines[n].strip() == f"- id: {metric_id}" for n in range(line - 8, line - 2))
