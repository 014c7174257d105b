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

from warehouse.meta import META_PARTITIONS
from warehouse.sql import quote_ident
from warehouse.tables import Table


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


@contextmanager
def insertion_order(con: duckdb.DuckDBPyConnection, preserve: bool) -> Iterator[None]:
    """Run the block with DuckDB's `preserve_insertion_order` set to `preserve`, then restore it.
    Reading a file's lines needs it on (rowid is the line number); a bulk INSERT whose order
    does not matter runs faster with it off and fills whole row groups, where order-preserving
    batches leave partial ones that the next checkpoint rewrites to merge them. Enter it outside
    any transaction: an aborted transaction accepts no SET, so the setting could not be restored."""
    [(before,)] = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
    con.execute(f"SET preserve_insertion_order = {str(preserve).lower()}")
    try:
        yield
    finally:
        con.execute(f"SET preserve_insertion_order = {str(before).lower()}")


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
    keep_first: dict[Table, pl.DataFrame] | None = None,
) -> dict[str, int]:
    """Replace the same partitions of several tables in ONE transaction, so tables computed
    together (the OKR marts of a run) are never seen, or left, half from one run and half from
    another. `keep_first` tables are records written once: in the same transaction, only their
    rows with a primary key not yet in the table are added. Returns rows inserted per table."""
    if not partition_values:
        return {table.fqn: 0 for table in frames}
    for table in frames:
        assert table.partition_column, f"{table.fqn} is not partitioned"
    for table in keep_first or {}:
        assert table.primary_key, f"{table.fqn} has no key to keep the first rows by"
    ensure_tables(con, META_PARTITIONS, *frames, *(keep_first or {}))
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
            _record_partitions(con, table, partition_values, written)
        for table, frame in (keep_first or {}).items():
            inserted[table.fqn] = _insert_new_keys(con, table, frame)
    return inserted


def _insert_new_keys(con: duckdb.DuckDBPyConnection, table: Table, frame: pl.DataFrame) -> int:
    """Append the rows of `frame` whose primary key is not in `table` yet."""
    if frame.is_empty():
        return 0
    keys = list(table.primary_key)
    existing = con.sql(f"SELECT {', '.join(map(quote_ident, keys))} FROM {table.fqn}").pl()
    new = frame.join(existing.cast(frame.select(keys).schema), on=keys, how="anti")
    return insert_frame(con, table, new)


def replace_partition_from_query(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    query: str,
    params: list[Any],
    partition_values: list[date],
) -> int:
    """`replace_partitions` for rows computed by `query` (the table's columns, by name; every
    row in one of `partition_values`): one INSERT ... SELECT inside DuckDB, so no partition
    passes through Python memory. Returns rows inserted."""
    column = table.partition_column
    assert column, f"{table.fqn} is not partitioned"
    ensure_tables(con, META_PARTITIONS, table)
    placeholders = ", ".join("?" for _ in partition_values)
    # Set outside the transaction: a failure aborts it, and then no SET could restore the setting.
    with insertion_order(con, preserve=False), transaction(con):
        con.execute(f"DELETE FROM {table.fqn} WHERE {column} IN ({placeholders})", partition_values)
        [(inserted,)] = con.execute(
            f"INSERT INTO {table.fqn} ({', '.join(map(quote_ident, table.column_names))}) "
            f"SELECT {table.select_list()} FROM ({query})",
            params,
        ).fetchall()
        written = dict(
            con.execute(
                f"SELECT {column}, count(*) FROM {table.fqn} "
                f"WHERE {column} IN ({placeholders}) GROUP BY {column}",
                partition_values,
            ).fetchall()
        )
        assert sum(written.values()) == inserted, f"{table.fqn}: rows outside the partitions"
        _record_partitions(con, table, partition_values, written)
    return inserted


def _record_partitions(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    partition_values: list[date],
    written: dict[date, int],
) -> None:
    """Upsert the `meta.partitions` rows of `partition_values` (inside the caller's transaction)."""
    con.execute(
        f"DELETE FROM {META_PARTITIONS.fqn} WHERE table_name = ? "
        f"AND partition_value IN ({', '.join('?' for _ in partition_values)})",
        [table.fqn, *[v.isoformat() for v in partition_values]],
    )
    con.executemany(
        f"INSERT INTO {META_PARTITIONS.fqn} VALUES (?, ?, ?, now())",
        [[table.fqn, v.isoformat(), written.get(v, 0)] for v in partition_values],
    )


def ensure_tables(con: duckdb.DuckDBPyConnection, *tables: Table) -> None:
    """`Table.create` for each table that is missing or whose comments differ from its
    definition: one catalog query for all of them instead of one per table, which adds up for
    writes made once per partition."""
    stored = set(
        con.execute(
            "SELECT schema_name, table_name, NULL, comment FROM duckdb_tables() "
            "WHERE database_name = current_database() UNION ALL "
            "SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() "
            "WHERE database_name = current_database()"
        ).fetchall()
    )
    for table in tables:
        wanted = {(table.schema, table.name, None, table.description)}
        wanted |= {(table.schema, table.name, c.name, c.description) for c in table.columns}
        if not wanted <= stored:
            table.create(con)


def table_exists(con: duckdb.DuckDBPyConnection, table: Table) -> bool:
    """Whether `table` exists in the warehouse (a source never loaded has no raw table)."""
    [(count,)] = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ?",
        [table.schema, table.name],
    ).fetchall()
    return bool(count)


def relation_names(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Every table and view of the current database by its `fqn` (schema.name), from one
    catalog query: for code that asks about many relations at once."""
    return frozenset(
        f"{schema}.{name}"
        for schema, name in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE database_name = current_database() UNION ALL "
            "SELECT schema_name, view_name FROM duckdb_views() "
            "WHERE database_name = current_database()"
        ).fetchall()
    )


def written_partitions(con: duckdb.DuckDBPyConnection, table: Table) -> set[date]:
    """Partitions of `table` that have been written (possibly with zero rows)."""
    META_PARTITIONS.create(con)
    rows = con.execute(
        f"SELECT partition_value FROM {META_PARTITIONS.fqn} WHERE table_name = ?", [table.fqn]
    ).fetchall()
    return {date.fromisoformat(value) for (value,) in rows}
