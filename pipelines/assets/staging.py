"""Staging layer: typed, cleaned, one canonical shape; partitioned by fiscal quarter."""

import dagster as dg

from pipelines.metadata import definition_metadata, table_metadata
from pipelines.partitions import quarters_in_window
from pipelines.resources import OkrConfigResource, WarehouseResource
from transforms.schema import STAGING_CSV_OBSERVATIONS
from transforms.staging import stage_csv_observations
from transforms.warehouse import replace_partition

OWNERS = ["team:data-platform"]


def build_staging_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=["staging", "csv_observations"],
        deps=[dg.AssetKey(["raw", "csv_observations"])],
        group_name="staging",
        kinds={"duckdb", "polars"},
        owners=OWNERS,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=(
            "Typed CSV observations, one row per (date, metric_id, dimensions); a later file's row "
            "replaces an earlier file's. Each quarter is replaced in one transaction."
        ),
        metadata=definition_metadata(STAGING_CSV_OBSERVATIONS),
    )
    def staging_csv_observations(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        okr_config: OkrConfigResource,
    ) -> dg.MaterializeResult:
        fiscal_month = okr_config.load().settings.fiscal_year_start_month
        quarters = quarters_in_window(context.partition_time_window, fiscal_month)
        starts = [q.start for q in quarters]
        with warehouse.connect() as con:
            for quarter in quarters:
                rows = stage_csv_observations(con, quarter.start, quarter.end)
                replace_partition(con, STAGING_CSV_OBSERVATIONS, rows, [quarter.start])
                context.log.info(f"{quarter.label}: {rows.num_rows} rows staged")
            placeholders = ", ".join("?" for _ in starts)
            metadata = table_metadata(
                con, STAGING_CSV_OBSERVATIONS, f"quarter_start IN ({placeholders})", starts
            )
        return dg.MaterializeResult(
            metadata={**metadata, "quarters": ", ".join(q.label for q in quarters)}
        )

    return [staging_csv_observations]
