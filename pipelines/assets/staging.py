"""Staging layer: typed, cleaned, one canonical shape; partitioned by fiscal quarter, each
quarter replaced in one transaction. A run also rebuilds the earlier quarters its marts may read
that are missing or behind the raw layer (`transforms.history`), and says which."""

from collections.abc import Sequence

import dagster as dg

from connectors.registry import FILE_SOURCES
from connectors.source import FileSource, StagedTable
from pipelines.checks import AssetChecks, check_specs, checks_of, run_checks
from pipelines.metadata import definition_metadata, table_metadata
from pipelines.partitions import quarters_in_window
from pipelines.resources import WAREHOUSE_POOL, OkrConfigResource, WarehouseResource
from transforms.calendar import Quarter
from transforms.history import raw_fingerprints, record_fingerprints, stale_history

OWNERS = ["team:data-platform"]
HISTORY_TAG = "okr/history_quarters"
"""Run tag: the staging quarters a run built for history, beyond the quarters it was asked for."""


def staged_tables(sources: Sequence[FileSource] = FILE_SOURCES) -> list[StagedTable]:
    """The partitioned staging tables, from the sources' descriptors."""
    return [staged for source in sources for staged in source.staged]


def _staging_asset(staged: StagedTable, partitions: dg.PartitionsDefinition, checks: AssetChecks):
    table = staged.table
    own_checks = checks_of(checks, [table])

    @dg.asset(
        pool=WAREHOUSE_POOL,
        key=[table.schema, table.name],
        deps=[dg.AssetKey([staged.raw.schema, staged.raw.name])],
        group_name="staging",
        kinds={"duckdb"},
        owners=OWNERS,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=table.description,
        metadata=definition_metadata(table),
        check_specs=check_specs(own_checks),
    )
    def _asset(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        okr_config: OkrConfigResource,
    ):
        config = okr_config.load()
        fiscal_month = config.settings.fiscal_year_start_month
        timezone = config.settings.timezone
        quarters = quarters_in_window(context.partition_time_window, fiscal_month)
        with warehouse.connect() as con:
            current = raw_fingerprints(con, staged.raw_days(timezone), fiscal_month)
            history = stale_history(con, table, current, quarters[0].start, fiscal_month)
            written = [
                f"{quarter.label} {staged.stage(con, quarter.start, quarter.end, timezone)}"
                for quarter in [*history, *quarters]
            ]
            context.log.info(f"{table.fqn} rows per quarter: {', '.join(written)}")
            record_fingerprints(con, table, [*history, *quarters], current)
            if staged.after_write:
                staged.after_write(con)
            starts = [q.start for q in quarters]
            metadata = table_metadata(
                con, table, f"quarter_start IN ({', '.join('?' for _ in starts)})", starts
            )
            if history:
                labels = ", ".join(q.label for q in history)
                context.log.info(
                    f"{table.fqn}: also built {labels} for history (read by the marts)"
                )
                _tag_history(context, history)
            yield dg.MaterializeResult(
                metadata={
                    **metadata,
                    "quarters": ", ".join(q.label for q in quarters),
                    "history_quarters_built": ", ".join(q.label for q in history) or "none",
                }
            )
            yield from run_checks(context, con, okr_config, own_checks)

    return _asset


def _tag_history(context: dg.AssetExecutionContext, history: list[Quarter]) -> None:
    """Add `history` to the run's HISTORY_TAG (the union over the run's staging steps), so the
    run itself says which extra quarters it built."""
    run = context.instance.get_run_by_id(context.run.run_id)
    before = run.tags.get(HISTORY_TAG, "") if run else ""
    labels = {label for label in before.split(",") if label} | {q.label for q in history}
    context.instance.add_run_tags(context.run.run_id, {HISTORY_TAG: ",".join(sorted(labels))})


def build_staging_assets(
    partitions: dg.PartitionsDefinition,
    sources: Sequence[FileSource] = FILE_SOURCES,
    checks: AssetChecks | None = None,
) -> list[dg.AssetsDefinition]:
    return [_staging_asset(staged, partitions, checks or {}) for staged in staged_tables(sources)]
