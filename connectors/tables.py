"""The tables every source shares: the lineage columns of each raw table, the rejected rows of
every source and the registry of loaded file versions."""

from __future__ import annotations

from warehouse.tables import Column, Table


def lineage_columns() -> tuple[Column, ...]:
    """The lineage every raw table carries (docs/sources.md)."""
    return (
        Column(
            "_source", "VARCHAR", "Source family the row came from (csv, analytics, crm).", False
        ),
        Column(
            "_source_ref",
            "VARCHAR",
            "File path relative to the source folder, or URL and page.",
            False,
        ),
        Column(
            "_source_row",
            "BIGINT",
            "Line number in the file (header is line 1), or index in the page.",
        ),
        Column(
            "_batch_id",
            "VARCHAR",
            "Load batch that wrote the row; one per file version or sync.",
            False,
        ),
        Column("_loaded_at", "TIMESTAMPTZ", "When the row was loaded.", False),
    )


def staged_lineage_columns(day_column: str) -> tuple[Column, ...]:
    """The partition key and the lineage of a staging table that keeps one row per key from
    its files (a later file's row wins)."""
    return (
        Column(
            "quarter_start",
            "DATE",
            f"First day of the fiscal quarter holding `{day_column}` (partition key).",
            False,
        ),
        Column("_source_ref", "VARCHAR", "File the winning row came from.", False),
        Column("_source_row", "BIGINT", "Line of the winning row in that file."),
        Column("_batch_id", "VARCHAR", "Batch that loaded the winning row.", False),
    )


RAW_REJECTED_ROWS = Table(
    "raw",
    "rejected_rows",
    "Input rows that could not be parsed, with where they were and why; the rest of their file loads.",
    (
        Column("source", "VARCHAR", "Source family (csv, analytics, crm).", False),
        Column(
            "source_ref",
            "VARCHAR",
            "File path relative to the source folder, or URL / object.",
            False,
        ),
        Column("batch_id", "VARCHAR", "Load batch that rejected the row.", False),
        Column(
            "location",
            "VARCHAR",
            "Where the row is: 'file:line' for files, the file's path alone for a quarantined "
            "file (one that cannot be read at all), 'object id' for the CRM.",
            False,
        ),
        Column("field", "VARCHAR", "The field that failed, when one did."),
        Column("reason", "VARCHAR", "Why the row was rejected, in words.", False),
        Column("raw_record", "VARCHAR", "The row as it arrived."),
        Column("rejected_at", "TIMESTAMPTZ", "When the row was rejected.", False),
    ),
)

RAW_LOADED_FILES = Table(
    "raw",
    "loaded_files",
    "One row per input file version loaded: what makes loading the same file twice a no-op.",
    (
        Column("source", "VARCHAR", "Source family (csv, analytics).", False),
        Column("source_ref", "VARCHAR", "File path relative to the source folder.", False),
        Column("content_hash", "VARCHAR", "SHA-256 of the file's bytes.", False),
        Column("size_bytes", "BIGINT", "File size in bytes.", False),
        Column("batch_id", "VARCHAR", "Batch that loaded this version.", False),
        Column("rows_loaded", "BIGINT", "Rows landed in the raw table.", False),
        Column("rows_rejected", "BIGINT", "Rows sent to raw.rejected_rows.", False),
        Column("loaded_at", "TIMESTAMPTZ", "When this version was loaded.", False),
    ),
    primary_key=("source", "source_ref"),
)

SHARED_TABLES = (RAW_REJECTED_ROWS, RAW_LOADED_FILES)
