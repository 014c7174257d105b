"""The warehouse's own bookkeeping tables (schema `meta`): which partitions were written, and what
the raw layer held when each staging quarter was built."""

from __future__ import annotations

from warehouse.tables import Column, Table

META_PARTITIONS = Table(
    "meta",
    "partitions",
    "Which partition of which table was last written, and when: written in the same transaction "
    "as the partition itself, so it never disagrees with the data.",
    (
        Column("table_name", "VARCHAR", "Schema-qualified table name.", False),
        Column(
            "partition_value", "VARCHAR", "Value of the table's partition column (ISO date).", False
        ),
        Column("row_count", "BIGINT", "Rows written to the partition.", False),
        Column("written_at", "TIMESTAMPTZ", "When the partition was written.", False),
    ),
    primary_key=("table_name", "partition_value"),
)

META_STAGING_INPUTS = Table(
    "meta",
    "staging_inputs",
    "What the raw layer held for each staging quarter when that quarter was built: a run rebuilds "
    "the history quarters whose raw rows changed since, so its marts read staging that matches raw.",
    (
        Column("table_name", "VARCHAR", "Schema-qualified staging table name.", False),
        Column("quarter_start", "DATE", "The staging partition (first day of the quarter).", False),
        Column("raw_rows", "BIGINT", "Raw rows dated in the quarter when it was built.", False),
        Column(
            "raw_hash",
            "UBIGINT",
            "XOR of the hashes of those rows' load batches (one per file version): changes with "
            "any load, replacement or removal.",
            False,
        ),
        Column("recorded_at", "TIMESTAMPTZ", "When the quarter was built.", False),
    ),
    primary_key=("table_name", "quarter_start"),
)

META_RAW_BATCH_DAYS = Table(
    "meta",
    "raw_batch_days",
    "Raw rows per load batch and day, the day being the one a staging table files a raw row "
    "under: the staging fingerprints and the marts' history check add these up instead of "
    "scanning raw. A batch's counts are made once, when a step first sees it, and made again "
    "if its row count in raw changes; a batch gone from raw is dropped.",
    (
        Column("table_name", "VARCHAR", "Schema-qualified raw table name.", False),
        Column(
            "day_key",
            "VARCHAR",
            "The SQL of a raw row's day and its parameters (e.g. the timezone), `|`-joined.",
            False,
        ),
        Column("batch_id", "VARCHAR", "The raw rows' `_batch_id`.", False),
        Column("day", "DATE", "The rows' day; null for rows without one (never staged)."),
        Column("raw_rows", "BIGINT", "Raw rows of the batch on that day.", False),
    ),
    primary_key=("table_name", "day_key", "batch_id", "day"),
)

META_TABLES = (META_PARTITIONS, META_STAGING_INPUTS, META_RAW_BATCH_DAYS)
