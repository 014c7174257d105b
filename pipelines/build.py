"""Builds the Definitions from settings; `pipelines.definitions` is what the tools load."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import dagster as dg

from connectors.registry import FILE_SOURCES
from connectors.source import FileSource
from pipelines.assets.bi import build_bi_assets
from pipelines.assets.crm import CRM_STAGING_KEYS, raw_crm, staging_crm
from pipelines.assets.marts import build_mart_assets
from pipelines.assets.raw import build_raw_assets
from pipelines.assets.staging import build_staging_assets, staged_tables
from pipelines.automation import build_automation
from pipelines.checks import build_asset_checks
from pipelines.partitions import quarterly_partitions
from pipelines.resources import (
    BiOutputsResource,
    CrmResource,
    OkrConfigResource,
    SourceFoldersResource,
    WarehouseResource,
)
from pipelines.settings import Settings

# Single-run backfill policies are deliberate (one run per backfill); Dagster labels them beta.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)


def build_definitions(
    settings: Settings, sources: Sequence[FileSource] = FILE_SOURCES
) -> dg.Definitions:
    """Everything is built from `settings`, so tests point a whole graph at a temporary folder,
    and from the file sources' descriptors (`connectors.registry`). The CRM assets exist only
    when a CRM is configured (CRM_API_BASE_URL)."""
    okr_config = OkrConfigResource(config_dir=str(settings.config_dir), as_of=settings.as_of)
    config = okr_config.load()
    partitions = quarterly_partitions(config, okr_config.today(config), bool(settings.as_of))
    resources = {
        "warehouse": WarehouseResource(
            path=str(settings.warehouse),
            memory_limit=settings.duckdb_memory_limit,
            lock_timeout_seconds=settings.warehouse_lock_timeout,
            allowed_directories=[str(settings.data_dir), str(settings.bi_snapshot.parent)],
        ),
        "okr_config": okr_config,
        "sources": SourceFoldersResource(
            data_dir=str(settings.data_dir), strict_files=settings.strict_files
        ),
        "bi_outputs": BiOutputsResource(snapshot_path=str(settings.bi_snapshot)),
    }
    crm_assets: list[dg.AssetsDefinition] = []
    if settings.crm_enabled:
        crm_assets = [raw_crm, staging_crm]
        resources["crm"] = CrmResource(
            base_url=dg.EnvVar("CRM_API_BASE_URL"), token=dg.EnvVar("CRM_API_TOKEN")
        )
    mart_assets = build_mart_assets(
        partitions, config, CRM_STAGING_KEYS if crm_assets else [], staged_tables(sources)
    )
    schedules, sensors = build_automation(
        partitions, settings, config.settings.fiscal_year_start_month, sources
    )
    return dg.Definitions(
        assets=[
            *build_raw_assets(sources),
            *crm_assets,
            *build_staging_assets(partitions, sources),
            *mart_assets,
            *build_bi_assets([key for a in mart_assets for key in a.keys]),
        ],
        asset_checks=build_asset_checks(
            config, crm_enabled=settings.crm_enabled, settings=settings.checks, sources=sources
        ),
        schedules=schedules,
        sensors=sensors,
        resources=resources,
    )
