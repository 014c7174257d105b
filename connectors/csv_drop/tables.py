"""The CSV source's tables (each a `warehouse.tables.Table`) and how metrics read its staging
table."""

from __future__ import annotations

from connectors.spec import NUMERIC, TEXT, TIME, SourceSpec
from connectors.tables import lineage_columns, staged_lineage_columns
from warehouse.tables import Column, Table

RAW_CSV_OBSERVATIONS = Table(
    "raw",
    "csv_observations",
    "Metric observations from the CSV drop folder, long and wide files alike, as landed.",
    (
        Column("date", "DATE", "Observation date (ISO in the file).", False),
        Column(
            "metric_id",
            "VARCHAR",
            "Metric id (long files: the metric_id column; wide: the header).",
            False,
        ),
        Column("value", "DOUBLE", "Observed value.", False),
        Column(
            "dimensions",
            "JSON",
            "Extra columns of a long file as a JSON object ('{}' if none).",
            False,
        ),
        *lineage_columns(),
    ),
)

STAGING_CSV_OBSERVATIONS = Table(
    "staging",
    "csv_observations",
    "Typed metric observations, one row per (date, metric_id, dimensions): a later file's row "
    "replaces an earlier file's. Partitioned by quarter.",
    (
        Column("date", "DATE", "Observation date.", False),
        Column("metric_id", "VARCHAR", "Metric id the value belongs to.", False),
        Column("value", "DOUBLE", "Observed value.", False),
        Column(
            "dimensions",
            "JSON",
            "Dimension columns of the row as a JSON object ('{}' if none).",
            False,
        ),
        *staged_lineage_columns("date"),
    ),
    primary_key=("date", "metric_id", "dimensions"),
    partition_column="quarter_start",
)

TABLES = (RAW_CSV_OBSERVATIONS, STAGING_CSV_OBSERVATIONS)

METRIC_SOURCES = (
    SourceSpec(
        "csv_observations",
        "staging.csv_observations",
        "date",
        {"date": TIME, "metric_id": TEXT, "value": NUMERIC, "dimensions": TEXT},
        open_prefixes=("dimensions.",),
        bare_keys_of="dimensions",
    ),
)
