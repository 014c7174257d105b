"""Absent source folders and unreadable source files through the real Dagster graph: a data root
may lack `csv/` or `analytics/` (no files), a file that cannot be read is quarantined and warned
about while the others load, and OKR_STRICT_FILES turns that into a failed raw step."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.cli import backfill
from pipelines.settings import Settings

WARN = dg.AssetCheckSeverity.WARN
CSV_ASSETS = ("raw/csv_observations",)
ANALYTICS_ASSETS = ("raw/analytics_events", "raw/analytics_report")
MARTS = {"marts/key_result_attainment", "marts/objective_attainment"}

METRICS = """
settings: {timezone: America/New_York}
metrics:
  - {id: visits, name: Visits, source: csv_observations, aggregation: sum, column: value,
     filter: {metric_id: visits}}
  - {id: acme_arr, name: ACME ARR, source: csv_observations, aggregation: last, column: value,
     filter: {metric_id: arr, customer: acme}}
  - {id: sessions, name: Sessions, source: analytics_events, aggregation: count,
     filter: {event: session_start}}
"""
OKRS = """
objectives:
  - id: grow
    title: Grow
    team: growth
    period: 2025-Q2
    key_results:
      - {id: kr-visits, title: Visits, metric: visits, type: increase, baseline: 0, target: 100}
      - {id: kr-acme, title: ACME ARR, metric: acme_arr, type: increase, baseline: 0,
         target: 200}
      - {id: kr-sessions, title: Sessions, metric: sessions, type: increase, baseline: 0,
         target: 4}
"""
CSV_FILES = {
    "visits.csv": "date,visits\n2025-05-01,10\n2025-05-02,20\n",
    # A long file whose `customer` column is a dimension: the metric reads ACME's row only.
    "arr.csv": "date,metric_id,value,customer\n2025-05-01,arr,100,acme\n2025-05-01,arr,999,globex\n",
}
EVENTS = [
    {"event": "session_start", "timestamp": "2025-05-03T12:00:00Z", "user_id": "u1"},
    {"event": "session_start", "timestamp": "2025-05-04T12:00:00Z", "user_id": "u2"},
]
NOT_UTF8 = "date,visits\n2025-05-03,5\n2025-05-04,caf\xe9\n".encode("latin-1")


def write_project(root: Path, folders: tuple[str, ...] = ("csv", "analytics")) -> Settings:
    """Config and a data root holding only the given source folders."""
    (root / "config").mkdir()
    (root / "config" / "metrics.yaml").write_text(textwrap.dedent(METRICS))
    (root / "config" / "okrs.yaml").write_text(textwrap.dedent(OKRS))
    data = root / "data"
    data.mkdir()
    if "csv" in folders:
        (data / "csv").mkdir()
        for name, text in CSV_FILES.items():
            (data / "csv" / name).write_text(text)
    if "analytics" in folders:
        (data / "analytics").mkdir()
        (data / "analytics" / "events.jsonl").write_text(
            "".join(json.dumps(e) + "\n" for e in EVENTS)
        )
    return Settings(
        config_dir=root / "config",
        data_dir=data,
        warehouse=root / "warehouse.duckdb",
        bi_snapshot=root / "bi.duckdb",
        as_of="2025-05-15",
    )


def run(settings: Settings, instance: dg.DagsterInstance | None = None):
    return backfill(settings, None, None, instance or dg.DagsterInstance.ephemeral())


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        e.asset_key.to_user_string(): {
            key: getattr(value, "value", value) for key, value in e.materialization.metadata.items()
        }
        for e in result.get_asset_materialization_events()
    }


def evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], object]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def failure_messages(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """Step key -> the error message of the user code that failed it."""
    messages = {}
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error.cause is not None and "DagsterExecutionStepExecutionError" in error.cls_name:
            error = error.cause
        messages[event.step_key] = error.message
    return messages


def query(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def current_values(settings: Settings) -> dict[str, float | None]:
    return dict(query(settings, "SELECT kr_id, current_value FROM marts.key_result_attainment"))


def quarantine_rows(settings: Settings) -> list[tuple]:
    return query(
        settings,
        "SELECT source, source_ref, reason, batch_id FROM raw.rejected_rows "
        "WHERE location = source_ref ORDER BY source_ref",
    )


# -- absent folders --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "folders", [("analytics",), ("csv",), ()], ids=["no-csv", "no-analytics", "neither"]
)
def test_an_absent_source_folder_means_no_files(tmp_path, folders):
    settings = write_project(tmp_path, folders)
    result = run(settings)
    assert result.success
    done = materializations(result)
    assert set(done) >= MARTS
    for folder, assets, files in (("csv", CSV_ASSETS, 2), ("analytics", ANALYTICS_ASSETS, 1)):
        present = folder in folders
        for asset in assets:
            metadata = done[asset]
            assert metadata["folder"] == str(settings.data_dir / folder)
            assert metadata["folder_status"] == ("present" if present else "missing")
            assert metadata["files_seen"] == (files if present else 0)
            assert metadata["files_quarantined"] == []
    values = current_values(settings)
    # ACME's row only (not globex's 999): the long file's `customer` column is a dimension.
    assert (values["kr-visits"], values["kr-acme"]) == (
        (30.0, 100.0) if "csv" in folders else (None, None)
    )
    assert values["kr-sessions"] == (2.0 if "analytics" in folders else None)


def test_a_csv_path_that_is_a_file_fails_the_csv_step_with_one_clear_error(tmp_path):
    settings = write_project(tmp_path, ("analytics",))
    (settings.data_dir / "csv").write_text("date,visits\n")
    result = run(settings)
    assert not result.success
    [(step, message)] = failure_messages(result).items()
    assert step == "raw__csv_observations"
    assert message.startswith(
        f"connectors.csv_drop.extract.CsvSourceError: the CSV drop folder {settings.data_dir / 'csv'} is "
        "a file, not a folder; move the file away (the folder may be absent, which means no "
        "files) or point OKR_DATA_DIR elsewhere"
    )
    done = materializations(result)
    assert set(ANALYTICS_ASSETS) <= set(done) and "raw/csv_observations" not in done


# -- unreadable files ------------------------------------------------------------------------------


def test_unreadable_files_are_quarantined_warned_about_and_lifted_once_fixed(tmp_path):
    settings = write_project(tmp_path)
    csv_dir = settings.data_dir / "csv"
    (csv_dir / "exports").mkdir()
    (csv_dir / "exports" / "broken.csv").write_bytes(NOT_UTF8)
    (csv_dir / "dims.csv").write_text("date,metric_id,value,dimensions\n2025-05-05,visits,7,x\n")
    instance = dg.DagsterInstance.ephemeral()

    first = run(settings, instance)
    assert first.success  # a warning: the other files load and the marts are built
    assert set(materializations(first)) >= MARTS
    check = evaluations(first)[("raw/csv_observations", "quarantined_files")]
    assert not check.passed and check.severity == WARN
    assert check.metadata["quarantined_files"].value == 2
    dims_reason = (
        "dimension column 'dimensions' is ambiguous: staging.csv_observations has a built-in "
        "column of that name; rename it in the header, e.g. to 'dimensions_dim'"
    )
    assert f"dims.csv: {dims_reason}; exports/broken.csv: not UTF-8 text" in check.description
    assert "| exports/broken.csv | not UTF-8 text" in check.metadata["files"].value
    assert evaluations(first)[("raw/analytics_events", "quarantined_files")].passed
    raw = materializations(first)["raw/csv_observations"]
    assert raw["files_loaded"] == ["arr.csv", "visits.csv"]
    assert [item["file"] for item in raw["files_quarantined"]] == ["dims.csv", "exports/broken.csv"]
    quarantined = quarantine_rows(settings)
    assert [row[:3] for row in quarantined] == [
        ("csv", "dims.csv", dims_reason),
        ("csv", "exports/broken.csv", raw["files_quarantined"][1]["reason"]),
    ]
    assert query(settings, "SELECT count(*) FROM raw.rejected_rows") == [(2,)]
    assert current_values(settings)["kr-visits"] == 30.0

    # Unchanged: not read again, the same quarantine rows (no duplicates), the same warning.
    second = run(settings, instance)
    assert second.success
    assert quarantine_rows(settings) == quarantined
    assert query(settings, "SELECT count(*) FROM raw.rejected_rows") == [(2,)]
    assert not evaluations(second)[("raw/csv_observations", "quarantined_files")].passed

    # Fixed: it loads and its quarantine row goes; removed: its quarantine row goes too.
    (csv_dir / "exports" / "broken.csv").write_text("date,visits\n2025-05-03,5\n2025-05-04,6\n")
    third = run(settings, instance)
    check = evaluations(third)[("raw/csv_observations", "quarantined_files")]
    assert not check.passed and "exports/broken.csv" not in check.description
    assert [row[1] for row in quarantine_rows(settings)] == ["dims.csv"]
    assert current_values(settings)["kr-visits"] == 41.0
    (csv_dir / "dims.csv").unlink()
    fourth = run(settings, instance)
    assert evaluations(fourth)[("raw/csv_observations", "quarantined_files")].passed
    assert query(settings, "SELECT count(*) FROM raw.rejected_rows") == [(0,)]


def test_strict_files_fails_the_raw_step_naming_the_file_once_the_others_loaded(
    tmp_path, monkeypatch
):
    written = write_project(tmp_path)
    (written.data_dir / "csv" / "broken.csv").write_bytes(NOT_UTF8)
    for name, path in (
        ("OKR_CONFIG_DIR", written.config_dir),
        ("OKR_DATA_DIR", written.data_dir),
        ("OKR_WAREHOUSE", written.warehouse),
        ("OKR_BI_SNAPSHOT", written.bi_snapshot),
    ):
        monkeypatch.setenv(name, str(path))
    monkeypatch.setenv("OKR_AS_OF", written.as_of)
    monkeypatch.delenv("CRM_API_BASE_URL", raising=False)
    monkeypatch.setenv("OKR_STRICT_FILES", "1")
    settings = Settings.from_env()
    assert settings.strict_files

    result = run(settings)
    assert not result.success
    [(step, message)] = failure_messages(result).items()
    assert step == "raw__csv_observations"
    assert f"1 of 3 files in the CSV drop folder {settings.data_dir / 'csv'} cannot be read" in (
        message
    )
    assert "OKR_STRICT_FILES is set" in message
    assert "\n- broken.csv: not UTF-8 text" in message
    # The good files loaded before the step failed; nothing downstream of it ran.
    assert query(settings, "SELECT DISTINCT _source_ref FROM raw.csv_observations ORDER BY 1") == [
        ("arr.csv",),
        ("visits.csv",),
    ]
    assert [row[1] for row in quarantine_rows(settings)] == ["broken.csv"]
    done = set(materializations(result))
    assert set(ANALYTICS_ASSETS) <= done
    assert "staging/csv_observations" not in done and not MARTS & done


@pytest.mark.parametrize(("text", "strict"), [("", False), ("0", False), ("yes", True)])
def test_okr_strict_files_is_a_yes_or_no(monkeypatch, text, strict):
    monkeypatch.setenv("OKR_STRICT_FILES", text)
    assert Settings.from_env().strict_files is strict


def test_okr_strict_files_rejects_anything_else(monkeypatch):
    monkeypatch.setenv("OKR_STRICT_FILES", "sometimes")
    with pytest.raises(ValueError, match="OKR_STRICT_FILES='sometimes'"):
        Settings.from_env()
