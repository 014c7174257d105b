"""Writing warehouse tables: every replacement is one explicit transaction, so a failure
half-way leaves the table as it was and readers never see a partial partition."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from transforms.schema import META_PARTITIONS, Table, quote_ident


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def insert_frame(
    con: duckdb.DuckDBPyConnection, table: Table, frame: pl.DataFrame | pa.Table
) -> int:
    """Append `frame` to `table`, casting its columns to the table's declared types."""
    arrow = frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame
    if arrow.num_rows == 0:
        return 0
    con.register("_insert_frame", arrow)
    try:
        con.execute(
            f"INSERT INTO {table.fqn} ({', '.join(map(quote_ident, table.column_names))}) "
            f"SELECT {table.select_list()} FROM _insert_frame"
        )
    finally:
        con.unregister("_insert_frame")
    return arrow.num_rows


def replace_rows(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    frame: pl.DataFrame | pa.Table,
    where: str,
    params: list[Any] | None = None,
) -> int:
    """Delete the rows matching `where` and insert `frame`, atomically; returns rows inserted."""
    table.create(con)
    with transaction(con):
        con.execute(f"DELETE FROM {table.fqn} WHERE {where}", params or [])
        return insert_frame(con, table, frame)


def replace_partition(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    frame: pl.DataFrame | pa.Table,
    partition_values: list[date],
) -> int:
    """Replace the given partitions (values of `table.partition_column`) with `frame` and record
    them in `meta.partitions`, all in one transaction."""
    return replace_partitions(con, {table: frame}, partition_values)[table.fqn]


def replace_partitions(
    con: duckdb.DuckDBPyConnection,
    frames: dict[Table, pl.DataFrame | pa.Table],
    partition_values: list[date],
) -> dict[str, int]:
    """Replace the same partitions of several tables in ONE transaction, so tables computed
    together (the OKR marts of a run) are never seen, or left, half from one run and half from
    another. Returns rows inserted per table."""
    if not partition_values:
        return {table.fqn: 0 for table in frames}
    META_PARTITIONS.create(con)
    for table in frames:
        assert table.partition_column, f"{table.fqn} is not partitioned"
        table.create(con)
    placeholders = ", ".join("?" for _ in partition_values)
    inserted = {}
    with transaction(con):
        for table, frame in frames.items():
            arrow = frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame
            column = table.partition_column
            counts = pl.from_arrow(arrow.select([column])).group_by(column).len()
            written = {value: n for value, n in counts.iter_rows()}
            con.execute(
                f"DELETE FROM {table.fqn} WHERE {column} IN ({placeholders})", partition_values
            )
            inserted[table.fqn] = insert_frame(con, table, arrow)
            con.execute(
                f"DELETE FROM {META_PARTITIONS.fqn} WHERE table_name = ? "
                f"AND partition_value IN ({placeholders})",
                [table.fqn, *[v.isoformat() for v in partition_values]],
            )
            con.executemany(
                f"INSERT INTO {META_PARTITIONS.fqn} VALUES (?, ?, ?, now())",
                [[table.fqn, v.isoformat(), written.get(v, 0)] for v in partition_values],
            )
    return inserted


def written_partitions(con: duckdb.DuckDBPyConnection, table: Table) -> set[date]:
    """Partitions of `table` that have been written (possibly with zero rows)."""
    META_PARTITIONS.create(con)
    rows = con.execute(
        f"SELECT partition_value FROM {META_PARTITIONS.fqn} WHERE table_name = ?", [table.fqn]
    ).fetchall()
    return {date.fromisoformat(value) for (value,) in rows}
