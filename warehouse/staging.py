"""What every staging table shares: the SQL that keeps one row per key, and how a staging table
names the raw rows it is built from (for the fingerprints that tell when to rebuild it)."""

from __future__ import annotations

from dataclasses import dataclass

from warehouse.tables import Table


def one_row_per_key(rows: str, key: str, order: str) -> str:
    """SQL for the rows of query `rows` keeping, per `key`, the first by `order`.

    Keys are nearly always unique, so only the rows of repeated keys are ranked (ranking every
    row costs about three times as much). Repeated keys are found by grouping on a 64-bit hash
    of the key, far cheaper than grouping on the key itself; a collision only sends unique rows
    through the ranking, which partitions by the key. NULLs in the key compare equal, as in
    PARTITION BY. The result has an extra `key_hash` column.
    """
    return f"""
        WITH keyed AS NOT MATERIALIZED (SELECT *, hash({key}) AS key_hash FROM ({rows})),
        repeated AS MATERIALIZED (
            SELECT key_hash FROM keyed GROUP BY key_hash HAVING count(*) > 1
        )
        SELECT * FROM keyed ANTI JOIN repeated USING (key_hash)
        UNION ALL
        SELECT * FROM (
            SELECT * FROM keyed SEMI JOIN repeated USING (key_hash)
            QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1
        )
    """


@dataclass(frozen=True)
class RawInput:
    """The raw table a staging table is built from, and the SQL of a raw row's day (the day
    staging files it under), with its parameters: the fingerprint groups raw rows by it."""

    table: Table
    day_sql: str
    params: tuple = ()
