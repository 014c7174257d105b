"""Check-ins staging: `staging.checkins`, typed and deduplicated from the raw layer, one quarter
partition at a time."""

from __future__ import annotations

from datetime import date

import duckdb

from connectors.checkins.tables import CONFIDENCE_LEVELS, RAW_CHECKINS, STAGING_CHECKINS
from warehouse.staging import one_row_per_key
from warehouse.writes import ensure_tables, replace_partition_from_query

_LEVEL = (
    "CASE "
    + " ".join(
        f"WHEN confidence < {upper!r} THEN '{name}'" for name, upper in CONFIDENCE_LEVELS if upper
    )
    + f" WHEN confidence IS NOT NULL THEN '{CONFIDENCE_LEVELS[-1][0]}' END"
)


def stage_checkins(con: duckdb.DuckDBPyConnection, quarter_start: date, quarter_end: date) -> int:
    """Replace the `staging.checkins` partition `quarter_start` with the raw check-ins dated in
    [quarter_start, quarter_end], in one transaction with its `meta.partitions` row; returns
    the rows written. (date, kr_id, author) is a key: the row of the most recently loaded file
    wins, ties broken by batch id, then by the later line of the file."""
    ensure_tables(con, RAW_CHECKINS)
    rows = f"""
        SELECT date, kr_id, confidence, value, comment, author, {_LEVEL} AS confidence_level,
               ?::DATE AS quarter_start, _source_ref, _source_row, _batch_id, _loaded_at
        FROM {RAW_CHECKINS.fqn}
        WHERE date BETWEEN ? AND ?
    """
    return replace_partition_from_query(
        con,
        STAGING_CHECKINS,
        one_row_per_key(
            rows,
            "date, kr_id, author",
            "_loaded_at DESC, _batch_id DESC, _source_row DESC",
        ),
        [quarter_start, quarter_start, quarter_end],
        [quarter_start],
    )
