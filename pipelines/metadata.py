"""Metadata every asset has: its column schema (from the table's one definition) in the asset's
definition, and for each materialization its row counts and a markdown preview."""

from __future__ import annotations

from typing import Any

import dagster as dg
import duckdb
import polars as pl

from warehouse.tables import Table


def column_schema(table: Table) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                c.type,
                description=c.description,
                constraints=dg.TableColumnConstraints(nullable=c.nullable),
            )
            for c in table.columns
        ]
    )


def definition_metadata(table: Table) -> dict[str, Any]:
    """Shown in the asset graph before anything runs."""
    return {
        "dagster/column_schema": column_schema(table),
        "dagster/table_name": table.fqn,
        "partition_column": table.partition_column or "",
    }


def table_metadata(
    con: duckdb.DuckDBPyConnection, table: Table, where: str = "TRUE", params: list | None = None
) -> dict[str, Any]:
    """Rows and a preview of the part of `table` a run wrote (`where`), plus the total. (The
    column schema is the definition's, `definition_metadata`: the same for every run.)"""
    params = params or []
    written = con.execute(f"SELECT count(*) FROM {table.fqn} WHERE {where}", params).fetchall()[0][
        0
    ]
    total = con.execute(f"SELECT count(*) FROM {table.fqn}").fetchall()[0][0]
    preview = con.sql(f"SELECT * FROM {table.fqn} WHERE {where} LIMIT 10", params=params).pl()
    return {
        "dagster/row_count": dg.MetadataValue.int(written),
        "table_row_count": dg.MetadataValue.int(total),
        "preview": dg.MetadataValue.md(_markdown(preview)),
    }


def _markdown(frame: pl.DataFrame) -> str:
    if frame.height == 0:
        return "_no rows_"
    with pl.Config(
        tbl_formatting="MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=10_000,
        fmt_str_lengths=80,
    ):
        return str(frame)
