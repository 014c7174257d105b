"""Raw layer: sources landed as they are, plus lineage. Unpartitioned and incremental: each
run loads only new or changed input files."""

from collections.abc import Sequence
from typing import Any

import dagster as dg

from connectors.files import FileLoadReport
from connectors.registry import FILE_SOURCES
from connectors.source import FileSource
from connectors.tables import RAW_REJECTED_ROWS
from pipelines.checks import AssetChecks, check_specs, checks_of, run_checks
from pipelines.metadata import definition_metadata, table_metadata
from pipelines.resources import (
    WAREHOUSE_POOL,
    OkrConfigResource,
    SourceFoldersResource,
    WarehouseResource,
)
from warehouse.writes import ensure_tables

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


def _raw_asset(source: FileSource, checks: AssetChecks) -> dg.AssetsDefinition:
    """One step per source: it loads the source's folder into all of its raw tables, then
    checks them."""
    (first, *_) = source.raw
    own_checks = checks_of(checks, [raw.table for raw in source.raw])

    @dg.multi_asset(
        pool=WAREHOUSE_POOL,
        name=source.asset_name or f"{first.table.schema}__{first.table.name}",
        specs=[
            dg.AssetSpec(
                key=[raw.table.schema, raw.table.name],
                group_name="raw",
                kinds={"duckdb", *raw.kinds},
                owners=OWNERS,
                description=f"{raw.description} {QUARANTINE}",
                metadata=definition_metadata(raw.table),
            )
            for raw in source.raw
        ],
        check_specs=check_specs(own_checks),
    )
    def _asset(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        sources: SourceFoldersResource,
        okr_config: OkrConfigResource,
    ):
        with warehouse.connect() as con:
            report = source.load(con, sources.folder(source.folder), strict=sources.strict_files)
            folder = _folder_metadata(context, report, source.folder_description)
            ensure_tables(con, RAW_REJECTED_ROWS)  # a source may reject nothing, ever
            [(rejected,)] = con.execute(
                f"SELECT count(*) FROM {RAW_REJECTED_ROWS.fqn} WHERE source = ?", [source.name]
            ).fetchall()
            if report.rows_rejected:
                context.log.warning(
                    f"{report.rows_rejected} rows rejected; see raw.rejected_rows for file, line "
                    "and reason"
                )
            for raw in source.raw:
                yield dg.MaterializeResult(
                    asset_key=[raw.table.schema, raw.table.name],
                    metadata={
                        **table_metadata(con, raw.table),
                        **folder,
                        "files_skipped": len(report.files_skipped),
                        "rows_loaded_this_run": report.rows_loaded,
                        "rows_rejected_this_run": report.rows_rejected,
                        "rejected_rows_total": rejected,
                    },
                )
            yield from run_checks(context, con, okr_config, own_checks)

    return _asset


def build_raw_assets(
    sources: Sequence[FileSource] = FILE_SOURCES, checks: AssetChecks | None = None
) -> list[dg.AssetsDefinition]:
    return [_raw_asset(source, checks or {}) for source in sources]
