"""Staging layer: typed, cleaned, one canonical shape; partitioned by fiscal quarter, each
quarter replaced in one transaction."""

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import duckdb

from pipelines.metadata import definition_metadata, table_metadata
from pipelines.partitions import quarters_in_window
from pipelines.resources import WAREHOUSE_POOL, OkrConfigResource, WarehouseResource
from transforms.calendar import Quarter
from transforms.config import OkrConfig
from transforms.schema import STAGING_CSV_OBSERVATIONS, Table
from transforms.staging import stage_csv_observations
from transforms.staging_analytics import (
    STAGING_ANALYTICS_EVENTS,
    STAGING_ANALYTICS_REPORT_LONG,
    refresh_analytics_report_view,
    stage_analytics_events,
    stage_analytics_report,
)

OWNERS = ["team:data-platform"]


@dataclass(frozen=True)
class StagedTable:
    table: Table
    upstream: list[str]
    # Replaces the quarter's partition inside DuckDB (and meta.partitions); returns its rows.
    stage: Callable[[duckdb.DuckDBPyConnection, Quarter, OkrConfig], int]
    after_write: Callable[[duckdb.DuckDBPyConnection], object] | None = None


STAGED_TABLES = [
    StagedTable(
        STAGING_CSV_OBSERVATIONS,
        ["raw", "csv_observations"],
        lambda con, q, config: stage_csv_observations(con, q.start, q.end),
    ),
    StagedTable(
        STAGING_ANALYTICS_EVENTS,
        ["raw", "analytics_events"],
        lambda con, q, config: stage_analytics_events(
            con, q.start, q.end, config.settings.timezone
        ),
    ),
    StagedTable(
        STAGING_ANALYTICS_REPORT_LONG,
        ["raw", "analytics_report"],
        lambda con, q, config: stage_analytics_report(con, q.start, q.end),
        # Metrics read the pivoted view staging.analytics_report, whose columns follow the data.
        after_write=refresh_analytics_report_view,
    ),
]


def _staging_asset(staged: StagedTable, partitions: dg.PartitionsDefinition):
    table = staged.table

    @dg.asset(
        pool=WAREHOUSE_POOL,
        key=[table.schema, table.name],
        deps=[dg.AssetKey(staged.upstream)],
        group_name="staging",
        kinds={"duckdb"},
        owners=OWNERS,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=table.description,
        metadata=definition_metadata(table),
    )
    def _asset(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        okr_config: OkrConfigResource,
    ) -> dg.MaterializeResult:
        config = okr_config.load()
        quarters = quarters_in_window(
            context.partition_time_window, config.settings.fiscal_year_start_month
        )
        starts = [q.start for q in quarters]
        with warehouse.connect() as con:
            for quarter in quarters:
                rows = staged.stage(con, quarter, config)
                context.log.info(f"{table.fqn} {quarter.label}: {rows} rows")
            if staged.after_write:
                staged.after_write(con)
            metadata = table_metadata(
                con, table, f"quarter_start IN ({', '.join('?' for _ in starts)})", starts
            )
        return dg.MaterializeResult(
            metadata={**metadata, "quarters": ", ".join(q.label for q in quarters)}
        )

    return _asset


def build_staging_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [_staging_asset(staged, partitions) for staged in STAGED_TABLES]
