"""Builds the Definitions from settings; `pipelines.definitions` is what the tools load."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import dagster as dg

from connectors.registry import SOURCES
from connectors.source import ApiSource, FileSource, Source
from pipelines.alerts import AlertWebhookResource, build_alerts_sensor, okr_alert
from pipelines.assets.api import api_resource, api_staging_keys, build_api_assets
from pipelines.assets.bi import build_bi_assets
from pipelines.assets.marts import build_mart_assets
from pipelines.assets.raw import build_raw_assets
from pipelines.assets.sql_engine import build_sql_source_assets, sql_source_keys
from pipelines.assets.staging import build_staging_assets, staged_tables
from pipelines.automation import build_automation
from pipelines.checks import checks_by_asset
from pipelines.partitions import quarterly_partitions
from pipelines.resources import (
    BiOutputsResource,
    OkrConfigResource,
    SourceFoldersResource,
    WarehouseResource,
)
from pipelines.settings import Settings

# Single-run backfill policies are deliberate (one run per backfill); Dagster labels them beta.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)


def build_definitions(settings: Settings, sources: Sequence[Source] = SOURCES) -> dg.Definitions:
    """Everything is built from `settings`, so tests point a whole graph at a temporary folder,
    and from the sources' descriptors (`connectors.registry`). An API source's assets exist
    only when its base URL is set (`settings.api_sources`, e.g. CRM_API_BASE_URL)."""
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
        "alert_webhook": AlertWebhookResource(),
    }
    sources = enabled_sources(settings, sources)
    files = [source for source in sources if isinstance(source, FileSource)]
    apis = [source for source in sources if isinstance(source, ApiSource)]
    resources |= {source.name: api_resource(source) for source in apis}
    sql_assets = (
        build_sql_source_assets(partitions, settings.sql_source_table)
        if settings.sql_source_table
        else []
    )
    checks = checks_by_asset(settings.checks, sources)
    mart_assets = build_mart_assets(
        partitions,
        config,
        api_staging_keys(apis),
        staged_tables(files),
        sql_source_keys() if sql_assets else [],
        checks,
    )
    schedules, sensors = build_automation(
        partitions, settings, config.settings.fiscal_year_start_month, files
    )
    return dg.Definitions(
        assets=[
            *build_raw_assets(files, checks),
            *build_api_assets(apis, checks),
            *build_staging_assets(partitions, files, checks),
            *sql_assets,
            *mart_assets,
            *build_bi_assets([key for a in mart_assets for key in a.keys]),
        ],
        jobs=[okr_alert],
        schedules=schedules,
        sensors=[*sensors, build_alerts_sensor(settings, okr_config, config)],
        resources=resources,
    )


def enabled_sources(settings: Settings, sources: Sequence[Source] = SOURCES) -> list[Source]:
    """The sources the graph reads: every file source (a missing folder is no files), and the
    API sources that are configured."""
    return [
        source
        for source in sources
        if not isinstance(source, ApiSource) or source.name in settings.api_sources
    ]
