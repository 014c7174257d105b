"""Every path-bearing setting points into one throwaway folder for the whole session, whatever
the shell exported (`make test` exports DAGSTER_HOME=var/dagster_home): no test writes to the
checkout's `var/`, the user's cache or their Dagster instance. Tests that need their own paths
set them on top. The checkout's `var/` is fingerprinted here, before any test runs, and
`test_checkout_untouched.py` (moved to the end of the run) compares it."""

import hashlib
import os
import tempfile
from pathlib import Path

import pytest

CHECKOUT_VAR = Path(__file__).resolve().parent.parent / "var"
_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="okr-test-session-"))
for name, relative in {
    "OKR_CACHE_DIR": "cache",
    "OKR_WAREHOUSE": "warehouse.duckdb",
    "OKR_BI_SNAPSHOT": "okr_bi.duckdb",
    "DAGSTER_HOME": "dagster_home",
}.items():
    os.environ[name] = str(_SESSION_ROOT / relative)
(_SESSION_ROOT / "dagster_home").mkdir()


def fingerprint(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under `folder` by relative path (empty if there is no folder)."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


VAR_BEFORE = fingerprint(CHECKOUT_VAR)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The checkout check runs after every other test."""
    items.sort(key=lambda item: item.module.__name__ == "test_checkout_untouched")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> tuple[Path, str]:
    """`okr demo` once for the session (defaults for config, data and as-of; warehouse,
    snapshot, page and Dagster instance in a temp folder): the folder, and what it printed.
    Tests only read what it wrote."""
    from contextlib import redirect_stdout
    from io import StringIO

    from pipelines.cli import main

    root = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("OKR_CONFIG_DIR", "OKR_DATA_DIR", "OKR_AS_OF"):
            patch.delenv(name, raising=False)
        patch.setenv("OKR_WAREHOUSE", str(root / "warehouse.duckdb"))
        patch.setenv("OKR_BI_SNAPSHOT", str(root / "okr_bi.duckdb"))
        patch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        out = StringIO()
        with redirect_stdout(out):
            assert main(["demo"]) == 0
    return root, out.getvalue()
