"""What BI users open: the published DuckDB snapshot of the marts and the scorecard page."""

from pathlib import Path

import dagster as dg
import duckdb

from bi.snapshot import publish_snapshot
from pipelines.resources import (
    WAREHOUSE_POOL,
    BiOutputsResource,
    OkrConfigResource,
    WarehouseResource,
)

OWNERS = ["team:analytics"]


def build_bi_assets(mart_keys: list[dg.AssetKey]) -> list[dg.AssetsDefinition]:
    @dg.asset(
        pool=WAREHOUSE_POOL,
        key=["bi", "okr_snapshot"],
        # Declarative: whenever a mart changes (a UI materialization, a partial rerun), publish
        # again, without a hand-written trigger. Evaluated by the daemon's automation sensor.
        automation_condition=dg.AutomationCondition.eager(),
        deps=mart_keys,
        group_name="bi",
        kinds={"duckdb"},
        owners=OWNERS,
        description=(
            "The marts and dims copied into a new DuckDB file (storage version v1.4.0, readable "
            "by DuckDB 1.4+ drivers) and atomically renamed onto $OKR_BI_SNAPSHOT: readers of the "
            "previous snapshot keep working, new connections see the complete new one."
        ),
    )
    def okr_snapshot(
        warehouse: WarehouseResource, okr_config: OkrConfigResource, bi_outputs: BiOutputsResource
    ) -> dg.MaterializeResult:
        config = okr_config.load()
        with warehouse.connect() as con:
            report = publish_snapshot(
                con, Path(bi_outputs.snapshot_path), as_of=okr_config.today(config)
            )
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(report.path)),
                "snapshot_id": report.snapshot_id,
                "tables": len(report.tables),
                "views": len(report.views),
                "dagster/row_count": sum(report.rows.values()),
                "size_bytes": report.bytes,
                "seconds": round(report.seconds, 2),
            }
        )

    @dg.asset(
        key=["bi", "scorecard_page"],
        automation_condition=dg.AutomationCondition.eager(),
        deps=[dg.AssetKey(["bi", "okr_snapshot"])],
        group_name="bi",
        kinds={"html"},
        owners=OWNERS,
        description=(
            "One self-contained HTML page (scorecard.html beside the snapshot) of every "
            "published quarter (the latest first): objectives in their alignment tree, progress "
            "against expected, provisional or final grades, restated grades, burn-up charts, "
            "KPI health; values in their metric's unit."
        ),
    )
    def scorecard_page(
        context: dg.AssetExecutionContext, bi_outputs: BiOutputsResource
    ) -> dg.MaterializeResult:
        # Imported here: altair takes a quarter second, paid by every code-location load otherwise.
        from bi.page import write_scorecard_page

        snapshot = Path(bi_outputs.snapshot_path)
        page = snapshot.with_name("scorecard.html")
        with duckdb.connect(str(snapshot), read_only=True) as con:
            [(objectives,)] = con.sql("SELECT count(*) FROM marts.objective_attainment").fetchall()
            if objectives == 0:
                context.log.warning("no objective has a row yet: the page was not written")
                return dg.MaterializeResult(metadata={"written": False})
            write_scorecard_page(con, page)
        return dg.MaterializeResult(
            metadata={
                "written": True,
                "path": dg.MetadataValue.path(str(page)),
                "size_bytes": page.stat().st_size,
            }
        )

    return [okr_snapshot, scorecard_page]
