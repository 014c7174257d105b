"""Resources: the warehouse connection and the OKR config, swappable in tests."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import duckdb
from pydantic import Field

from transforms.config import OkrConfig, load_config

if TYPE_CHECKING:
    from connectors.crm_api import CrmClient

WAREHOUSE_POOL = "duckdb_warehouse"
"""Every step that opens the warehouse runs in this pool. DuckDB lets one process hold a file
read-write and then no other process may open it, so dagster.yaml limits the pool to 1 slot."""


class WarehouseResource(dg.ConfigurableResource):
    """The pipeline's DuckDB file. One connection per step; writes go through
    `transforms.warehouse`, each partition replaced in one transaction."""

    path: str = Field(description="DuckDB file of the warehouse (OKR_WAREHOUSE).")
    memory_limit: str = Field(
        "1GB", description="DuckDB memory_limit (OKR_DUCKDB_MEMORY_LIMIT); larger data spills to disk."
    )
    threads: int = Field(2, description="DuckDB worker threads.")

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(
            self.path, config={"memory_limit": self.memory_limit, "threads": self.threads}
        )
        con.execute("SET enable_progress_bar = false")  # step logs get events, not a bar
        try:
            yield con
        finally:
            con.close()


class OkrConfigResource(dg.ConfigurableResource):
    """The config folder (OKR_CONFIG_DIR) and the date treated as today (OKR_AS_OF)."""

    config_dir: str = Field(description="Folder holding metrics.yaml and okrs.yaml.")
    as_of: str | None = Field(None, description="ISO date treated as today; unset means today.")

    def load(self) -> OkrConfig:
        return load_config(self.config_dir)

    def today(self, config: OkrConfig) -> date:
        if self.as_of:
            return date.fromisoformat(self.as_of)
        return datetime.now(zoneinfo.ZoneInfo(config.settings.timezone)).date()


class SourceFoldersResource(dg.ConfigurableResource):
    """The input root (OKR_DATA_DIR): `csv/` is the drop folder, `analytics/` the exports."""

    data_dir: str = Field(description="Input root folder.")
    strict_files: bool = Field(
        False,
        description="A file that cannot be read fails the raw step once the other files have "
        "loaded, instead of only being quarantined (OKR_STRICT_FILES).",
    )

    @property
    def csv_dir(self) -> Path:
        return Path(self.data_dir) / "csv"

    @property
    def analytics_dir(self) -> Path:
        return Path(self.data_dir) / "analytics"


class BiOutputsResource(dg.ConfigurableResource):
    """Where the published files go: the snapshot (OKR_BI_SNAPSHOT) and the page beside it."""

    snapshot_path: str = Field(description="The published DuckDB file BI tools open.")


class CrmResource(dg.ConfigurableResource):
    """The CRM REST API (HubSpot v3 shape). Built from `EnvVar`s, so the token is resolved at run
    time and never shows in the UI, the run config or the logs."""

    base_url: str = Field(description="API root, e.g. https://api.hubapi.com (CRM_API_BASE_URL).")
    token: str = Field(description="Bearer token (CRM_API_TOKEN).")
    timeout_seconds: float = Field(30.0, description="Read timeout per request.")

    def client(self) -> CrmClient:
        from connectors.crm_api import CrmClient  # requests: only runs that sync pay its import

        return CrmClient(self.base_url, self.token, timeout=(5.0, self.timeout_seconds))
