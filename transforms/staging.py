"""Staging: typed, deduplicated views of the raw layer, one quarter partition at a time."""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa

from transforms.schema import RAW_CSV_OBSERVATIONS, STAGING_CSV_OBSERVATIONS


def stage_csv_observations(
    con: duckdb.DuckDBPyConnection, quarter_start: date, quarter_end: date
) -> pa.Table:
    """`staging.csv_observations` rows for raw dates in [quarter_start, quarter_end].

    (date, metric_id, dimensions) is a key (CONTRACT section 2): the row of the most recently
    loaded file wins, ties broken by batch id, then by the later line of the file. Dimensions
    are canonical JSON text (sorted keys, no blanks), so equal dimensions compare equal.
    """
    RAW_CSV_OBSERVATIONS.create(con)
    return con.sql(
        f"""
        SELECT {STAGING_CSV_OBSERVATIONS.select_list()}
        FROM (
            SELECT date, metric_id, value, dimensions, ?::DATE AS quarter_start,
                   _source_ref, _source_row, _batch_id
            FROM {RAW_CSV_OBSERVATIONS.fqn}
            WHERE date BETWEEN ? AND ?
            QUALIFY row_number() OVER (
                PARTITION BY date, metric_id, dimensions::VARCHAR
                ORDER BY _loaded_at DESC, _batch_id DESC, _source_row DESC
            ) = 1
        )
        ORDER BY date, metric_id, dimensions::VARCHAR
        """,
        params=[quarter_start, quarter_start, quarter_end],
    ).to_arrow_table()
