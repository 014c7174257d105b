"""The SQL-engine source's asset: per fiscal quarter, the engine computes the per-day partials
and distinct ids the metrics of `sql_events` need, and they replace the quarter's partitions of
`raw.sql_events_partials` and `raw.sql_events_sightings` in one transaction. The asset exists
when OKR_SQL_SOURCE_URL is set; the URL (with its password) is read at run time and never shows
in run config, logs or metadata."""

import os
from datetime import timedelta

import dagster as dg

from connectors.sql_engine.tables import (
    RAW_SQL_EVENTS_PARTIALS,
    RAW_SQL_EVENTS_SIGHTINGS,
    URL_ENV,
)
from pipelines.metadata import definition_metadata, table_metadata
from pipelines.partitions import quarters_in_window
from pipelines.resources import WAREHOUSE_POOL, OkrConfigResource, WarehouseResource
from transforms.calendar import Quarter, quarter_of
from transforms.history import lookback_quarters
from warehouse.writes import written_partitions

OWNERS = ["team:data-platform"]
TABLES = (RAW_SQL_EVENTS_PARTIALS, RAW_SQL_EVENTS_SIGHTINGS)


def sql_source_keys() -> list[dg.AssetKey]:
    return [dg.AssetKey([t.schema, t.name]) for t in TABLES]


def build_sql_source_assets(
    partitions: dg.PartitionsDefinition, table_name: str
) -> list[dg.AssetsDefinition]:
    specs = [
        dg.AssetSpec(
            key=[t.schema, t.name],
            group_name="raw",
            kinds={"duckdb", "sql"},
            owners=OWNERS,
            description=t.description,
            metadata=definition_metadata(t),
        )
        for t in TABLES
    ]

    @dg.multi_asset(
        name="raw_sql_events",
        specs=specs,
        pool=WAREHOUSE_POOL,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description="Per-day partials of the SQL-engine events table "
        f"(`{table_name}`), computed by the engine.",
    )
    def raw_sql_events(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        okr_config: OkrConfigResource,
    ):
        config = okr_config.load()
        url = os.environ.get(URL_ENV)
        if not url:
            raise dg.Failure(f"{URL_ENV} is not set: the SQL-engine source has no engine")
        # Imported here: SQLAlchemy and the pushdown are for runs that read an engine, not for
        # every process that loads the definitions.
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        from connectors.sql_engine.pushdown import land_quarter

        engine = sa.create_engine(url, poolclass=NullPool)
        quarters = quarters_in_window(
            context.partition_time_window, config.settings.fiscal_year_start_month
        )
        reports = []
        try:
            with warehouse.connect() as con:
                history = _missing_history(con, config, quarters[0])
                if history:
                    labels = ", ".join(q.label for q in history)
                    context.log.info(f"{table_name}: also landing {labels} for history")
                for quarter in [*history, *quarters]:
                    report = land_quarter(
                        con, engine, table_name, config, quarter.start, quarter.end
                    )
                    context.log.info(f"{table_name} {quarter.label}: {report.summary}")
                    reports.append(report)
                starts = [q.start for q in quarters]
                where = f"quarter_start IN ({', '.join('?' for _ in starts)})"
                metadata = {t: table_metadata(con, t, where, starts) for t in TABLES}
        finally:
            engine.dispose()
        source_rows = sum(r.source_rows for r in reports)
        fetched = sum(r.rows_fetched for r in reports)
        shared = {
            "quarters": ", ".join(q.label for q in quarters),
            "history_quarters_built": ", ".join(q.label for q in history) or "none",
            "engine": engine.dialect.name,
            "engine_table": table_name,
            "source_rows": dg.MetadataValue.int(source_rows),
            "rows_fetched": dg.MetadataValue.int(fetched),
            "fetched_per_source_row": dg.MetadataValue.float(fetched / source_rows)
            if source_rows
            else dg.MetadataValue.float(0.0),
            "query_fingerprints": ", ".join(sorted({d for r in reports for d in r.fingerprints})),
        }
        for table in TABLES:
            yield dg.MaterializeResult(
                asset_key=[table.schema, table.name], metadata={**metadata[table], **shared}
            )

    return [raw_sql_events]


def _missing_history(con, config, first: Quarter) -> list[Quarter]:
    """The quarters before `first` the marts read (baselines, trailing windows, KPI look-back)
    that were never landed: like staging, a run lands them too."""
    written = written_partitions(con, RAW_SQL_EVENTS_PARTIALS)
    quarters, quarter = [], first
    for _ in range(lookback_quarters(config)):
        quarter = quarter_of(
            quarter.start - timedelta(days=1), config.settings.fiscal_year_start_month
        )
        if quarter.start not in written:
            quarters.append(quarter)
    return sorted(quarters, key=lambda q: q.start)
