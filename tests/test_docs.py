"""The documentation stays true to the repository: every relative link in README.md and docs/*.md
resolves to a file of the checkout (and every `#anchor` to a heading), nothing links or points
outside the checkout, docs/settings.md names every environment variable the code reads, and
docs/configuration.md documents every field of the config models."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from transforms.config import (
    KeyResult,
    MetricTarget,
    Objective,
    RatioMetric,
    Settings,
    SourceMetric,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
CODE_FOLDERS = ("pipelines", "warehouse", "connectors", "transforms", "bi")

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(page: Path) -> list[str]:
    return LINK.findall(prose(page.read_text(encoding="utf-8")))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lowercased, punctuation dropped
    (letters, digits, '_', '-' and spaces kept), spaces turned into '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = text.replace("`", "").replace("**", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a Markdown page; a repeated heading gets -1, -2, ..."""
    seen: dict[str, int] = {}
    found = set()
    for _, heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def test_the_pages_exist_and_have_links():
    names = {page.name for page in DOCS}
    assert {
        "configuration.md",
        "computation.md",
        "sources.md",
        "settings.md",
        "data_dictionary.md",
    } <= names
    # The link pattern finds links at all: a broken pattern would make every check below pass.
    assert "docs/computation.md" in links(ROOT / "README.md")
    assert "#which-history-a-quarter-reads" in links(ROOT / "docs" / "computation.md")
    assert links(ROOT / "docs" / "configuration.md")


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_relative_link_resolves_inside_the_checkout(page):
    problems = []
    for target in links(page):
        if target.startswith(EXTERNAL):
            continue
        path_part, _, anchor = target.partition("#")
        if (
            path_part.startswith("/")
            or re.match(r"^[A-Za-z]:[\\/]", path_part)
            or "://" in path_part
        ):
            problems.append(f"{target}: an absolute path; link relative to the page")
            continue
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{target}: points outside the repository")
            continue
        if not resolved.exists():
            problems.append(f"{target}: no such file in the repository")
            continue
        if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{target}: no heading with anchor #{anchor} in {page_id(resolved)}")
    assert not problems, f"{page_id(page)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_no_page_names_a_path_outside_the_checkout(page):
    """Code blocks included: a reader of a clone has only the repository."""
    text = page.read_text(encoding="utf-8")
    for outside in ("../shared", "/work/", "CONTRACT.md"):
        assert outside not in text, f"{page_id(page)} mentions {outside!r}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_no_link_climbs_out_of_its_folder_or_starts_at_the_root(page):
    """`../x` from docs/ stays in the repository, but tools that check a page on its own (and
    readers of a page copied elsewhere) cannot tell: name such files as code, not as links."""
    bad = [target for target in links(page) if target.startswith(("../", "/"))]
    assert bad == [], f"{page_id(page)} links {bad}"


def test_readme_links_every_documentation_page():
    linked = {target.partition("#")[0] for target in links(ROOT / "README.md")}
    expected = {page_id(page) for page in DOCS} | {"docs/bi_queries.sql"}
    assert expected <= linked, sorted(expected - linked)


# -- settings ---------------------------------------------------------------------------------


def _string(node: ast.AST, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _reads_environ(node: ast.AST) -> bool:
    return "environ" in ast.unparse(node) or ast.unparse(node) == "os.getenv"


def env_vars_read(source: str) -> set[str]:
    """Names of the environment variables a module reads: `os.environ.get("X")`,
    `os.environ["X"]`, `os.getenv("X")`, `EnvVar("X")`, the same with a module constant
    (`X_ENV = "X"`), and literal names passed to a local helper that reads its parameter from
    the environment (`path("OKR_WAREHOUSE", default)`)."""
    tree = ast.parse(source)
    constants = {
        target.id: node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    helpers = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.args.args:
            first = node.args.args[0].arg
            for call in ast.walk(node):
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr in ("get", "pop")
                    and _reads_environ(call.func.value)
                    and call.args
                    and isinstance(call.args[0], ast.Name)
                    and call.args[0].id == first
                ):
                    helpers.add(node.name)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            reads = (
                isinstance(func, ast.Attribute)
                and func.attr in ("get", "pop", "setdefault")
                and _reads_environ(func.value)
            )
            reads |= ast.unparse(func) in ("os.getenv", "EnvVar", "dg.EnvVar", "dagster.EnvVar")
            reads |= isinstance(func, ast.Name) and func.id in helpers
            if reads and (name := _string(node.args[0], constants)):
                names.add(name)
        if (
            isinstance(node, ast.Subscript)
            and _reads_environ(node.value)
            and (name := _string(node.slice, constants))
        ):
            names.add(name)
    return {name for name in names if re.fullmatch(r"[A-Z][A-Z0-9_]*", name)}


def code_env_vars() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for folder in CODE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for name in env_vars_read(path.read_text(encoding="utf-8")):
                found.setdefault(name, []).append(path.relative_to(ROOT).as_posix())
    return found


def test_the_env_var_scan_finds_reads_in_every_form():
    source = """
import os
import dagster as dg
LIMIT_ENV = "A_LIMIT"
def settings():
    def path(name, default):
        return os.environ.get(name) or default
    return path("A_PATH", "."), os.environ["A_KEY"], os.getenv("A_GETENV"), os.environ.get(LIMIT_ENV)
token = dg.EnvVar("A_TOKEN")
message = "NOT_READ"
"""
    assert env_vars_read(source) == {"A_LIMIT", "A_PATH", "A_KEY", "A_GETENV", "A_TOKEN"}
    # and on the real code: the settings every run needs are found
    assert {
        "OKR_CONFIG_DIR",
        "OKR_WAREHOUSE",
        "OKR_AS_OF",
        "CRM_API_TOKEN",
        "DAGSTER_HOME",
        "OKR_MAX_REJECT_RATE",
    } <= set(code_env_vars())


def test_settings_page_documents_every_environment_variable_the_code_reads():
    text = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    missing = {name: where for name, where in code_env_vars().items() if f"`{name}`" not in text}
    assert not missing, f"not in docs/settings.md: {missing}"


# -- configuration -----------------------------------------------------------------------------


def sections(page: Path) -> dict[str, str]:
    """The text under each `## ` heading, by heading."""
    parts = re.split(r"^## +(.+)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {heading.strip(): body for heading, body in zip(parts[1::2], parts[2::2], strict=True)}


def documented_fields(text: str) -> set[str]:
    """Field names in the first cell of a table row: | `a` | ... or | `a`, `b` | ..."""
    return {
        name
        for first_cell in re.findall(r"^\|([^|\n]*)\|", text, flags=re.MULTILINE)
        for name in re.findall(r"`([a-z_]+)`", first_cell)
    }


@pytest.mark.parametrize(
    ("model", "section"),
    [
        (Settings, "The settings block"),
        (SourceMetric, "Metrics"),
        (RatioMetric, "Metrics"),
        (MetricTarget, "Metrics"),
        (Objective, "Objectives"),
        (KeyResult, "Key results"),
    ],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_configuration_page_documents_every_config_field(model, section):
    by_heading = sections(ROOT / "docs" / "configuration.md")
    assert section in by_heading, f"no '## {section}' in docs/configuration.md"
    missing = set(model.model_fields) - documented_fields(by_heading[section])
    assert not missing, (
        f"docs/configuration.md, section '{section}', has no table row for the "
        f"{model.__name__} fields {sorted(missing)}"
    )
