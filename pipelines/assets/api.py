"""API sources (the CRM): an incremental sync into their raw tables (upsert by id, watermark per
object), and the current state of each object, typed, in staging. Built from each source's
descriptor (`connectors.source.ApiSource`); the source's endpoint is the resource named after it."""

from collections.abc import Sequence

import dagster as dg

from connectors.source import ApiSource
from pipelines.checks import AssetChecks, check_specs, checks_of, run_checks
from pipelines.metadata import definition_metadata, table_metadata
from pipelines.resources import WAREHOUSE_POOL, ApiResource
from warehouse.tables import Table
from warehouse.writes import replace_rows

OWNERS = ["team:data-platform"]


def _spec(table: Table, group: str, deps: list, kinds: set[str]) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=[table.schema, table.name],
        deps=deps,
        group_name=group,
        kinds=kinds,
        owners=OWNERS,
        description=table.description,
        metadata=definition_metadata(table),
    )


def api_resource(source: ApiSource) -> ApiResource:
    return ApiResource(base_url=dg.EnvVar(source.base_url_env), token=dg.EnvVar(source.token_env))


def _raw_asset(source: ApiSource, checks: AssetChecks) -> dg.AssetsDefinition:
    own_checks = checks_of(checks, [raw.table for raw in source.raw])

    @dg.multi_asset(
        pool=WAREHOUSE_POOL,
        name=f"raw_{source.name}",
        specs=[_spec(raw.table, "raw", [], {"duckdb", *raw.kinds}) for raw in source.raw],
        check_specs=check_specs(own_checks),
        required_resource_keys={"warehouse", "okr_config", source.name},
        description=f"Syncs {source.description} into its raw tables.",
    )
    def _asset(context: dg.AssetExecutionContext):
        endpoint: ApiResource = getattr(context.resources, source.name)
        client = source.client(endpoint.base_url, endpoint.token, endpoint.timeout_seconds)
        with context.resources.warehouse.connect() as con, client:
            report = source.sync(con, client)
            for raw in source.raw:
                yield dg.MaterializeResult(
                    asset_key=[raw.table.schema, raw.table.name],
                    metadata={**table_metadata(con, raw.table), **report.metadata(raw.table)},
                )
            context.log.info(report.summary)
            yield from run_checks(context, con, context.resources.okr_config, own_checks)

    return _asset


def _staging_asset(source: ApiSource, checks: AssetChecks) -> dg.AssetsDefinition:
    """Current state, replaced whole: records change after the fact, so quarters of staging
    would go stale; a full refresh of a few hundred thousand rows takes seconds."""
    own_checks = checks_of(checks, [staged.table for staged in source.staged])

    @dg.multi_asset(
        pool=WAREHOUSE_POOL,
        name=f"staging_{source.name}",
        specs=[
            _spec(
                staged.table,
                "staging",
                [dg.AssetKey([staged.raw.schema, staged.raw.name])],
                {"duckdb"},
            )
            for staged in source.staged
        ],
        check_specs=check_specs(own_checks),
        required_resource_keys={"warehouse", "okr_config"},
    )
    def _asset(context: dg.AssetExecutionContext):
        with context.resources.warehouse.connect() as con:
            for staged in source.staged:
                replace_rows(con, staged.table, staged.build(con), "TRUE")
                yield dg.MaterializeResult(
                    asset_key=[staged.table.schema, staged.table.name],
                    metadata=table_metadata(con, staged.table),
                )
            yield from run_checks(context, con, context.resources.okr_config, own_checks)

    return _asset


def build_api_assets(
    sources: Sequence[ApiSource], checks: AssetChecks | None = None
) -> list[dg.AssetsDefinition]:
    checks = checks or {}
    return [
        asset
        for source in sources
        for asset in (_raw_asset(source, checks), _staging_asset(source, checks))
    ]


def api_staging_keys(sources: Sequence[ApiSource]) -> list[dg.AssetKey]:
    """The API sources' staging tables: unpartitioned inputs of the marts."""
    return [dg.AssetKey([s.table.schema, s.table.name]) for src in sources for s in src.staged]
