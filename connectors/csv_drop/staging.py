"""CSV staging: `staging.csv_observations`, typed and deduplicated from the raw layer, one quarter
partition at a time."""

from __future__ import annotations

from datetime import date

import duckdb

from connectors.csv_drop.tables import RAW_CSV_OBSERVATIONS, STAGING_CSV_OBSERVATIONS
from warehouse.staging import one_row_per_key
from warehouse.writes import ensure_tables, replace_partition_from_query


def stage_csv_observations(
    con: duckdb.DuckDBPyConnection, quarter_start: date, quarter_end: date
) -> int:
    """Replace the `staging.csv_observations` partition `quarter_start` with the raw rows dated
    in [quarter_start, quarter_end], in one transaction with its `meta.partitions` row; returns
    the rows written.

    (date, metric_id, dimensions) is a key (docs/sources.md): the row of the most recently
    loaded file wins, ties broken by batch id, then by the later line of the file. Dimensions
    are canonical JSON text (sorted keys, no blanks), so equal dimensions compare equal as JSON
    (text) without a cast. No ORDER BY: nothing reads staging in physical order.
    """
    ensure_tables(con, RAW_CSV_OBSERVATIONS)
    rows = f"""
        SELECT date, metric_id, value, dimensions, ?::DATE AS quarter_start,
               _source_ref, _source_row, _batch_id, _loaded_at
        FROM {RAW_CSV_OBSERVATIONS.fqn}
        WHERE date BETWEEN ? AND ?
    """
    return replace_partition_from_query(
        con,
        STAGING_CSV_OBSERVATIONS,
        one_row_per_key(
            rows,
            "date, metric_id, dimensions",
            "_loaded_at DESC, _batch_id DESC, _source_row DESC",
        ),
        [quarter_start, quarter_start, quarter_end],
        [quarter_start],
    )
