"""Builds the Definitions from settings; `pipelines.definitions` is what the tools load."""

from __future__ import annotations

import dagster as dg

from pipelines.assets.marts import build_mart_assets
from pipelines.assets.raw import raw_analytics_exports, raw_csv_observations
from pipelines.assets.staging import build_staging_assets
from pipelines.partitions import quarterly_partitions
from pipelines.resources import OkrConfigResource, SourceFoldersResource, WarehouseResource
from pipelines.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """Everything is built from `settings`, so tests point a whole graph at a temporary folder."""
    okr_config = OkrConfigResource(config_dir=str(settings.config_dir), as_of=settings.as_of)
    config = okr_config.load()
    partitions = quarterly_partitions(config, okr_config.today(config))
    return dg.Definitions(
        assets=[
            raw_csv_observations,
            raw_analytics_exports,
            *build_staging_assets(partitions),
            *build_mart_assets(partitions, config),
        ],
        resources={
            "warehouse": WarehouseResource(path=str(settings.warehouse)),
            "okr_config": okr_config,
            "sources": SourceFoldersResource(data_dir=str(settings.data_dir)),
        },
    )
