"""Raw layer: sources landed as they are, plus lineage. Unpartitioned and incremental: each
run loads only new or changed input files."""

from typing import Any

import dagster as dg

from connectors.analytics.extract import load_analytics_exports
from connectors.analytics.tables import RAW_ANALYTICS_EVENTS, RAW_ANALYTICS_REPORT
from connectors.csv_drop.extract import load_csv_folder
from connectors.csv_drop.tables import RAW_CSV_OBSERVATIONS
from connectors.files import FileLoadReport
from connectors.tables import RAW_REJECTED_ROWS
from pipelines.metadata import definition_metadata, table_metadata
from pipelines.resources import WAREHOUSE_POOL, SourceFoldersResource, WarehouseResource

OWNERS = ["team:data-platform"]
QUARANTINE = (
    "A missing folder means no files. A file that cannot be read at all is quarantined (one "
    "raw.rejected_rows row at its path; check `quarantined_files`) and the other files load; "
    "OKR_STRICT_FILES makes it fail the step instead, after the other files have loaded."
)


def _folder_metadata(
    context: dg.AssetExecutionContext, report: FileLoadReport, folder_name: str
) -> dict[str, Any]:
    """Logs what a folder load did that needs a look, and records it in the metadata."""
    if report.folder_status == "missing":
        context.log.info(f"no {folder_name} at {report.folder}; no files to load")
    for rel, reason in report.files_quarantined.items():
        context.log.warning(f"{rel}: quarantined, not loaded: {reason}")
    for warning in report.warnings:
        context.log.warning(warning)
    return {
        "folder": report.folder,
        "folder_status": report.folder_status,
        "files_seen": report.files_seen,
        "files_loaded": dg.MetadataValue.json(report.files_loaded),
        "files_quarantined": dg.MetadataValue.json(
            [{"file": rel, "reason": why} for rel, why in report.files_quarantined.items()]
        ),
    }


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=["raw", "csv_observations"],
    group_name="raw",
    kinds={"duckdb", "csv"},
    owners=OWNERS,
    description=(
        "Metric observations from the CSV drop folder (`$OKR_DATA_DIR/csv`), long and wide files. "
        "New or changed files replace the rows they loaded before; unparseable rows go to "
        f"raw.rejected_rows with file and line. {QUARANTINE}"
    ),
    metadata=definition_metadata(RAW_CSV_OBSERVATIONS),
)
def raw_csv_observations(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    sources: SourceFoldersResource,
) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        report = load_csv_folder(con, sources.csv_dir, strict=sources.strict_files)
        metadata = table_metadata(con, RAW_CSV_OBSERVATIONS)
        rejected = con.execute(
            f"SELECT count(*) FROM {RAW_REJECTED_ROWS.fqn} WHERE source = 'csv'"
        ).fetchall()[0][0]
    if report.rows_rejected:
        context.log.warning(
            f"{report.rows_rejected} rows rejected; see raw.rejected_rows for file, line and reason"
        )
    return dg.MaterializeResult(
        metadata={
            **metadata,
            **_folder_metadata(context, report, "CSV drop folder"),
            "files_skipped": len(report.files_skipped),
            "rows_loaded": report.rows_loaded,
            "rows_rejected": report.rows_rejected,
            "rejected_rows_total": rejected,
        }
    )


@dg.multi_asset(
    pool=WAREHOUSE_POOL,
    name="raw_analytics_exports",
    specs=[
        dg.AssetSpec(
            key=[table.schema, table.name],
            group_name="raw",
            kinds={"duckdb", "json"} if table is RAW_ANALYTICS_EVENTS else {"duckdb", "csv"},
            owners=OWNERS,
            description=f"{description} {QUARANTINE}",
            metadata=definition_metadata(table),
        )
        for table, description in (
            (
                RAW_ANALYTICS_EVENTS,
                "Events from newline-delimited JSON exports (plain or .gz) in "
                "`$OKR_DATA_DIR/analytics`, streamed by DuckDB.",
            ),
            (
                RAW_ANALYTICS_REPORT,
                "Report CSVs as analytics tools export them (comment preamble, display-name "
                "header, YYYYMMDD dates), in a long shape: one row per date and column.",
            ),
        )
    ],
)
def raw_analytics_exports(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    sources: SourceFoldersResource,
):
    with warehouse.connect() as con:
        report = load_analytics_exports(con, sources.analytics_dir, strict=sources.strict_files)
        folder = _folder_metadata(context, report, "analytics exports folder")
        for table in (RAW_ANALYTICS_EVENTS, RAW_ANALYTICS_REPORT):
            yield dg.MaterializeResult(
                asset_key=[table.schema, table.name],
                metadata={
                    **table_metadata(con, table),
                    **folder,
                    "rows_loaded_this_run": report.rows_loaded,
                    "rows_rejected_this_run": report.rows_rejected,
                },
            )
