"""A new source is one descriptor: small sources defined here (a folder of `date,value` text
files, and an HTTP API of readings served on 127.0.0.1) are handed to the pipeline next to the
shipped ones, and the raw and staging assets, their checks, the file sensor's listing and its
job, and the API's endpoint resource come out of each descriptor alone."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import pytest
import requests

from connectors.files import FileLoadReport, column_date_range
from connectors.registry import FILE_SOURCES, SOURCES
from connectors.source import ApiSource, FileSource, RawTable, RefreshedTable, StagedTable
from connectors.tables import lineage_columns
from pipelines.automation import SOURCE_FILES_JOB, file_dates, source_files
from pipelines.build import build_definitions, enabled_sources
from pipelines.settings import Settings
from warehouse.staging import RawInput
from warehouse.tables import Column, Table
from warehouse.writes import ensure_tables, replace_partition_from_query, replace_rows

RAW_NOTES = Table(
    "raw",
    "notes",
    "Values noted by hand in text files, as landed.",
    (
        Column("date", "DATE", "Day of the value."),
        Column("value", "DOUBLE", "The value."),
        *lineage_columns(),
    ),
)
STAGING_NOTES = Table(
    "staging",
    "notes",
    "Noted values, one per day.",
    (
        Column("date", "DATE", "Day of the value.", nullable=False),
        Column("value", "DOUBLE", "The value."),
        Column("quarter_start", "DATE", "Fiscal quarter partition.", nullable=False),
    ),
    primary_key=("date",),
    partition_column="quarter_start",
)


def load_notes(
    con: duckdb.DuckDBPyConnection, folder: Path, *, strict: bool = False
) -> FileLoadReport:
    """Every `*.txt` file of `date,value` lines, replacing what was loaded before."""
    report = FileLoadReport(folder=str(folder))
    rows = []
    now = datetime.now(UTC)
    for path in sorted(folder.glob("*.txt")) if folder.is_dir() else []:
        report.files_seen += 1
        report.files_loaded.append(path.name)
        batch = f"{path.name}@{path.stat().st_mtime_ns}"
        for line_no, line in enumerate(path.read_text().splitlines(), 1):
            day, value = line.split(",")
            rows.append(
                (date.fromisoformat(day), float(value), "notes", path.name, line_no, batch, now)
            )
    ensure_tables(con, RAW_NOTES)
    frame = pl.DataFrame(rows, schema=RAW_NOTES.polars_schema(), orient="row")
    replace_rows(con, RAW_NOTES, frame, "TRUE")
    report.rows_loaded = len(rows)
    return report


def stage_notes(con: duckdb.DuckDBPyConnection, start: date, end: date, timezone: str) -> int:
    ensure_tables(con, RAW_NOTES)
    return replace_partition_from_query(
        con,
        STAGING_NOTES,
        f"SELECT date, max(value) AS value, ?::DATE AS quarter_start FROM {RAW_NOTES.fqn} "
        "WHERE date BETWEEN ? AND ? GROUP BY date",
        [start, start, end],
        [start],
    )


NOTES = FileSource(
    name="notes",
    folder="notes",
    folder_description="notes folder",
    load=load_notes,
    file_kind=lambda path: "csv" if path.suffix == ".txt" else None,
    file_dates=lambda path, kind, timezone: column_date_range(path, ",", 0),
    raw=(
        RawTable(
            table=RAW_NOTES,
            kinds=frozenset({"text"}),
            description="Hand-noted values.",
            metric_source="notes",
            time_column="date",
        ),
    ),
    staged=(
        StagedTable(
            table=STAGING_NOTES,
            raw=RAW_NOTES,
            stage=stage_notes,
            raw_days=lambda timezone: RawInput(RAW_NOTES, "date"),
            future_column="date",
        ),
    ),
)

CONFIG = {
    "metrics.yaml": """
        settings: {timezone: UTC}
        metrics:
          - {id: visits, name: Visits, source: csv_observations, aggregation: sum,
             column: value, filter: {metric_id: visits}}
    """,
    "okrs.yaml": """
        objectives:
          - id: grow
            title: Grow
            team: web
            period: 2025-Q2
            key_results:
              - {id: kr-visits, title: Visits, metric: visits, type: increase, baseline: 0,
                 target: 100}
    """,
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "config").mkdir()
    for name, text in CONFIG.items():
        (tmp_path / "config" / name).write_text(textwrap.dedent(text))
    notes = tmp_path / "data" / "notes"
    notes.mkdir(parents=True)
    (notes / "may.txt").write_text("2025-05-01,3\n2025-05-02,4\n2025-05-02,6\n")
    return Settings(
        config_dir=tmp_path / "config",
        data_dir=tmp_path / "data",
        warehouse=tmp_path / "warehouse.duckdb",
        bi_snapshot=tmp_path / "bi" / "okr_bi.duckdb",
        as_of="2025-06-30",
    )


def test_a_source_registered_by_its_descriptor_is_built_loaded_staged_and_checked(settings):
    defs = build_definitions(settings, sources=(*FILE_SOURCES, NOTES))
    graph = defs.resolve_asset_graph()
    raw, staging = dg.AssetKey(["raw", "notes"]), dg.AssetKey(["staging", "notes"])
    assert {raw, staging} <= set(graph.get_all_asset_keys())
    assert graph.get(staging).parent_keys == {raw}
    assert set(graph.get(raw).kinds) == {"duckdb", "text"}
    checks = {key.name for key in graph.asset_check_keys if key.asset_key in (raw, staging)}
    assert checks == {
        "freshness",
        "reject_rate",
        "quarantined_files",
        "unique_key",
        "non_null_ids",
        "no_future_observations",
    }
    # the file sensor lists its files and its job starts from its raw table
    [listed] = source_files(settings.data_dir, (NOTES,))
    assert (listed.rel, listed.kind) == ("notes/may.txt", "csv")
    assert file_dates(listed, "UTC") == (date(2025, 5, 1), date(2025, 5, 2))
    files_job = defs.resolve_job_def(SOURCE_FILES_JOB)
    assert raw in files_job.asset_layer.selected_asset_keys

    with dg.instance_for_test() as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance,
            partition_key="2025-04-01",
            asset_selection=[raw, staging],
            raise_on_error=False,
        )
        assert result.success
        evaluations = {
            (e.asset_key.path[0], e.check_name): e.passed
            for e in (
                event.asset_check_evaluation_data
                for event in result.all_events
                if event.event_type_value == "ASSET_CHECK_EVALUATION"
            )
        }
    assert evaluations[("staging", "no_future_observations")]
    assert evaluations[("staging", "unique_key")]
    assert evaluations[("raw", "reject_rate")]
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.notes").fetchone() == (3,)
        assert con.execute("SELECT date, value FROM staging.notes ORDER BY date").fetchall() == [
            (date(2025, 5, 1), 3.0),
            (date(2025, 5, 2), 6.0),
        ]


# -- an API source ------------------------------------------------------------------------------

RAW_READINGS = Table(
    "raw",
    "readings",
    "Meter readings as the readings API returned them.",
    (
        Column("id", "VARCHAR", "Reading id.", nullable=False),
        Column("day", "DATE", "Day of the reading."),
        Column("value", "DOUBLE", "The reading."),
        Column("updated_at", "TIMESTAMPTZ", "When the API last changed the reading."),
        *lineage_columns(),
    ),
    primary_key=("id",),
)
STAGING_READINGS = Table(
    "staging",
    "readings",
    "Meter readings, current state.",
    (
        Column("id", "VARCHAR", "Reading id.", nullable=False),
        Column("day", "DATE", "Day of the reading."),
        Column("value", "DOUBLE", "The reading."),
    ),
    primary_key=("id",),
)
TOKEN = "s3cret-readings-token"
READINGS = [
    {"id": "r1", "day": "2025-05-01", "value": 3, "updated_at": "2025-05-01T08:00:00+00:00"},
    {"id": "r2", "day": "2025-06-29", "value": 4, "updated_at": "2025-06-29T08:00:00+00:00"},
]


class ReadingsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        authorized = self.headers.get("Authorization") == f"Bearer {TOKEN}"
        body = json.dumps(READINGS if authorized else {"error": "unauthorized"}).encode()
        self.send_response(200 if authorized else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class ReadingsClient(requests.Session):
    def __init__(self, base_url: str, token: str, read_timeout: float):
        super().__init__()
        self.base_url, self.read_timeout = base_url, read_timeout
        self.headers["Authorization"] = f"Bearer {token}"

    def readings(self) -> list[dict[str, Any]]:
        response = self.get(f"{self.base_url}/readings", timeout=(5.0, self.read_timeout))
        response.raise_for_status()
        return response.json()


class ReadingsReport:
    def __init__(self, fetched: int):
        self.fetched = fetched

    @property
    def summary(self) -> str:
        return f"{self.fetched} readings"

    def metadata(self, table: Table) -> dict[str, Any]:
        return {"records_fetched": self.fetched}


def sync_readings(con: duckdb.DuckDBPyConnection, client: ReadingsClient) -> ReadingsReport:
    rows = client.readings()
    url, now = f"{client.base_url}/readings", datetime.now(UTC)
    frame = pl.DataFrame(
        [
            (
                r["id"],
                date.fromisoformat(r["day"]),
                float(r["value"]),
                datetime.fromisoformat(r["updated_at"]),
                "readings",
                url,
                index,
                f"sync@{now.isoformat()}",
                now,
            )
            for index, r in enumerate(rows)
        ],
        schema=RAW_READINGS.polars_schema(),
        orient="row",
    )
    ensure_tables(con, RAW_READINGS)
    replace_rows(con, RAW_READINGS, frame, "TRUE")
    return ReadingsReport(len(rows))


READINGS_API = ApiSource(
    name="readings",
    description="the readings API",
    base_url_env="READINGS_API_BASE_URL",
    token_env="READINGS_API_TOKEN",
    client=ReadingsClient,
    sync=sync_readings,
    raw=(
        RawTable(
            table=RAW_READINGS,
            kinds=frozenset({"api"}),
            description=RAW_READINGS.description,
            metric_source="readings",
            time_column="updated_at",
        ),
    ),
    staged=(
        RefreshedTable(
            table=STAGING_READINGS,
            raw=RAW_READINGS,
            build=lambda con: con.sql(
                f"SELECT id, day, value FROM {RAW_READINGS.fqn}"
            ).to_arrow_table(),
            future_column="day",
        ),
    ),
)


@pytest.fixture
def readings_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ReadingsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_api_source_registered_by_its_descriptor_is_synced_staged_and_checked(
    settings, readings_api, monkeypatch
):
    sources = (*SOURCES, READINGS_API)
    raw, staging = dg.AssetKey(["raw", "readings"]), dg.AssetKey(["staging", "readings"])
    # Not configured: no assets (the shipped CRM is not configured either).
    unconfigured = build_definitions(settings, sources=sources).resolve_asset_graph()
    assert raw not in unconfigured.get_all_asset_keys()
    assert not any(key.path[-1].startswith("crm_") for key in unconfigured.get_all_asset_keys())

    monkeypatch.setenv("READINGS_API_BASE_URL", readings_api)
    monkeypatch.setenv("READINGS_API_TOKEN", TOKEN)
    configured = Settings(**{**settings.__dict__, "api_sources": frozenset({"readings"})})
    assert [s.name for s in enabled_sources(configured, sources)] == [
        "csv",
        "analytics",
        "checkins",
        "readings",
    ]
    defs = build_definitions(configured, sources=sources)
    graph = defs.resolve_asset_graph()
    assert graph.get(staging).parent_keys == {raw}
    assert set(graph.get(raw).kinds) == {"duckdb", "api"}
    checks = {(key.asset_key, key.name) for key in graph.asset_check_keys}
    assert {
        (raw, "freshness"),
        (raw, "unique_key"),
        (staging, "unique_key"),
        (staging, "no_future_observations"),
    } <= checks
    assert (raw, "reject_rate") not in checks  # an API has no files to reject

    with dg.instance_for_test() as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance,
            partition_key="2025-04-01",
            asset_selection=[raw, staging],
            raise_on_error=False,
        )
        assert result.success
        events = [str(event) for event in result.all_events]
        passed = {
            (e.asset_key.path[0], e.check_name): e.passed
            for e in (
                event.asset_check_evaluation_data
                for event in result.all_events
                if event.event_type_value == "ASSET_CHECK_EVALUATION"
            )
        }
    assert passed[("staging", "no_future_observations")] and passed[("raw", "freshness")]
    assert not any(TOKEN in text for text in events)  # the token never reaches events or logs
    [materialized] = result.asset_materializations_for_node("raw_readings")
    assert materialized.metadata["records_fetched"].value == 2
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        assert con.execute("SELECT id, value FROM staging.readings ORDER BY id").fetchall() == [
            ("r1", 3.0),
            ("r2", 4.0),
        ]
