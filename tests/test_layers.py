"""The layers import only downward (README.md, "Layout"), checked on the source text:
`warehouse/` is the core and imports no other folder of the project; `connectors/` builds on it
alone; `transforms/` (the OKR engine) on both; `bi/` on all three; none of them imports Dagster
(`pipelines/` wires them into it). And the CRM API connector (which imports `requests`) is
imported only where a sync runs: never at module level outside its own package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "warehouse": {"transforms", "connectors", "pipelines", "bi", "dagster"},
    "connectors": {"transforms", "pipelines", "bi", "dagster"},
    "transforms": {"pipelines", "bi", "dagster"},
    "bi": {"pipelines", "dagster"},
}
CODE_FOLDERS = ("warehouse", "connectors", "transforms", "bi", "pipelines", "benchmarks")
CRM_API = "connectors.crm.api"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, is_package: bool) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every import statement of `source`, the source
    of `module`. `from a import b` counts as importing `a` and `a.b` (b may be a module);
    relative imports are resolved; imports under `if TYPE_CHECKING:` are not at module level."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, top) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, *([base] if base else [])])
            found.append((base, top))
            found.extend((f"{base}.{alias.name}", top) for alias in node.names)
        nested = top and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, nested)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, nested)

    visit(ast.parse(source), True)
    return found


def files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def imports_of(path: Path) -> list[tuple[str, bool]]:
    return imports(path.read_text(encoding="utf-8"), module_name(path), path.stem == "__init__")


def test_the_scan_finds_imports_in_every_form():
    source = """
import dagster as dg
import pipelines.build
from transforms import config
from .tables import Table
from . import sql
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from connectors.crm.api import CrmClient
def sync():
    from connectors.crm.api import sync_crm
class Resource:
    from bi.page import write_scorecard_page
"""
    found = imports(source, "warehouse.writes", False)
    top = {name for name, at_top in found if at_top}
    assert {
        "dagster",
        "pipelines.build",
        "transforms",
        "transforms.config",
        "warehouse.tables",
        "warehouse.tables.Table",
        "warehouse.sql",
        "bi.page",
    } <= top
    assert ("connectors.crm.api", False) in found and "connectors.crm.api" not in top
    assert imports("from .. import tables", "connectors.crm", True)[0] == ("connectors", True)


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_each_layer_imports_only_the_layers_below_it(folder):
    assert files(folder), f"no Python files under {folder}/"
    wrong = [
        f"{path.relative_to(ROOT).as_posix()} imports {name}"
        for path in files(folder)
        for name, _ in imports_of(path)
        if name.split(".")[0] in FORBIDDEN[folder]
    ]
    assert not wrong, "\n".join(wrong)


def test_the_crm_api_is_imported_at_module_level_only_inside_its_package():
    wrong = [
        f"{path.relative_to(ROOT).as_posix()} imports {name} at module level"
        for folder in CODE_FOLDERS
        for path in files(folder)
        if not path.is_relative_to(ROOT / "connectors" / "crm")
        for name, top in imports_of(path)
        if top and (name == CRM_API or name.startswith(CRM_API + "."))
    ]
    assert not wrong, "\n".join(wrong)


def test_importing_the_pipeline_does_not_load_the_crm_api():
    modules = ", ".join(
        module_name(path) for path in files("pipelines") if path.stem != "definitions"
    )
    code = f"import sys, {modules}, bi.dictionary; sys.exit({CRM_API!r} in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
