"""The CRM source: an incremental API sync into `raw.crm_*` (upsert by id, watermark per
object) and the current state of each object, typed, in `staging.crm_*`."""

import dagster as dg

from connectors.crm.staging import stage_crm
from connectors.crm.tables import CRM_OBJECTS, RAW_CRM_TABLES, STAGING_CRM_TABLES
from pipelines.metadata import definition_metadata, table_metadata
from pipelines.resources import WAREHOUSE_POOL, CrmResource, WarehouseResource
from warehouse.writes import replace_rows

OWNERS = ["team:data-platform"]


def _spec(table, group: str, deps: list, kinds: set[str]) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=[table.schema, table.name],
        deps=deps,
        group_name=group,
        kinds=kinds,
        owners=OWNERS,
        description=table.description,
        metadata=definition_metadata(table),
    )


@dg.multi_asset(
    pool=WAREHOUSE_POOL,
    name="raw_crm",
    specs=[_spec(RAW_CRM_TABLES[o], "raw", [], {"duckdb", "api"}) for o in CRM_OBJECTS],
)
def raw_crm(context: dg.AssetExecutionContext, warehouse: WarehouseResource, crm: CrmResource):
    from connectors.crm.api import sync_crm  # requests: only runs that sync pay its import

    with warehouse.connect() as con, crm.client() as client:
        report = sync_crm(con, client)
        for name, sync in report.objects.items():
            table = RAW_CRM_TABLES[name]
            yield dg.MaterializeResult(
                asset_key=[table.schema, table.name],
                metadata={
                    **table_metadata(con, table),
                    "sync_mode": sync.mode,
                    "pages_fetched": sync.pages_fetched,
                    "records_upserted": sync.records_upserted,
                    "records_rejected": sync.records_rejected,
                    "watermark": sync.watermark.isoformat() if sync.watermark else "",
                },
            )
    context.log.info(
        f"CRM sync: {report.pages_fetched} pages, {report.records_upserted} records upserted, "
        f"{report.records_rejected} rejected"
    )


@dg.multi_asset(
    pool=WAREHOUSE_POOL,
    name="staging_crm",
    specs=[
        _spec(
            STAGING_CRM_TABLES[o],
            "staging",
            [dg.AssetKey([RAW_CRM_TABLES[o].schema, RAW_CRM_TABLES[o].name])],
            {"duckdb"},
        )
        for o in CRM_OBJECTS
    ],
)
def staging_crm(warehouse: WarehouseResource):
    """Current state, replaced whole: CRM records change after the fact, so quarters of
    staging would go stale; a full refresh of a few hundred thousand rows takes seconds."""
    with warehouse.connect() as con:
        for name in CRM_OBJECTS:
            table = STAGING_CRM_TABLES[name]
            replace_rows(con, table, stage_crm(con, name), "TRUE")
            yield dg.MaterializeResult(
                asset_key=[table.schema, table.name], metadata=table_metadata(con, table)
            )


CRM_STAGING_KEYS = [dg.AssetKey([t.schema, t.name]) for t in STAGING_CRM_TABLES.values()]
