"""Table definitions: the one place a warehouse table's shape is written down.

Each `Table` produces its DDL, its `COMMENT ON` statements, an empty Polars frame (and an Arrow
schema) of the right types and (in `pipelines/`) the Dagster column metadata, so they can never
disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import polars as pl
import pyarrow as pa

from warehouse.sql import quote_ident, quote_literal


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    nullable: bool = True


@dataclass(frozen=True)
class _Relation:
    """What tables and views share: where they live, what they are, their columns."""

    schema: str
    name: str
    description: str
    columns: tuple[Column, ...]

    @property
    def fqn(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class Table(_Relation):
    primary_key: tuple[str, ...] = ()
    partition_column: str | None = field(default=None)

    def ddl(self) -> str:
        cols = ",\n  ".join(
            f"{quote_ident(c.name)} {c.type}{'' if c.nullable else ' NOT NULL'}"
            for c in self.columns
        )
        return f"CREATE TABLE IF NOT EXISTS {self.fqn} (\n  {cols}\n)"

    def comment_statements(self, current: dict[str | None, str | None] | None = None) -> list[str]:
        """COMMENT statements for the table (key None) and its columns, leaving out those whose
        comment is already as in `current`."""
        current = current or {}
        statements = []
        if current.get(None, "") != self.description:
            statements.append(f"COMMENT ON TABLE {self.fqn} IS {quote_literal(self.description)}")
        statements += [
            f"COMMENT ON COLUMN {self.fqn}.{quote_ident(c.name)} IS {quote_literal(c.description)}"
            for c in self.columns
            if current.get(c.name, "") != c.description
        ]
        return statements

    def create(self, con: duckdb.DuckDBPyConnection) -> None:
        """Create the schema and table if missing, add the columns a warehouse written by an
        earlier version lacks (null in its rows), and apply every comment that differs. A
        table already as defined costs one catalog query (this runs before every write)."""
        found = con.execute(
            "SELECT NULL, comment FROM duckdb_tables() WHERE database_name = current_database()"
            " AND schema_name = ? AND table_name = ? UNION ALL "
            "SELECT column_name, comment FROM duckdb_columns() WHERE database_name = "
            "current_database() AND schema_name = ? AND table_name = ?",
            [self.schema, self.name] * 2,
        ).fetchall()
        current: dict[str | None, str | None] = dict(found)
        if not found:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            con.execute(self.ddl())
        for c in self.columns:
            if found and c.name not in current:
                con.execute(f"ALTER TABLE {self.fqn} ADD COLUMN {quote_ident(c.name)} {c.type}")
        for statement in self.comment_statements(current):
            con.execute(statement)

    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c.name: _POLARS_TYPES[c.type] for c in self.columns}

    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, _ARROW_TYPES[c.type], nullable=c.nullable) for c in self.columns]
        )

    def frame(self, rows: list[dict]) -> pl.DataFrame:
        """Rows (dicts) as a frame of exactly this table's columns and types."""
        return pl.DataFrame(rows, schema=self.polars_schema())

    def select_list(self) -> str:
        """Column list casting a source relation to this table's types, in order."""
        return ", ".join(
            f"CAST({quote_ident(c.name)} AS {c.type}) AS {quote_ident(c.name)}"
            for c in self.columns
        )


_POLARS_TYPES = {
    "VARCHAR": pl.String,
    "JSON": pl.String,
    "DOUBLE": pl.Float64,
    "BIGINT": pl.Int64,
    "BOOLEAN": pl.Boolean,
    "DATE": pl.Date,
    "TIMESTAMPTZ": pl.Datetime("us", "UTC"),
    "VARCHAR[]": pl.List(pl.String),
}

_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "DOUBLE": pa.float64(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "BOOLEAN": pa.bool_(),
}


@dataclass(frozen=True)
class View(_Relation):
    """A view BI users query, defined once: its SQL, description and column comments (the
    columns' types are what the SQL gives; they document it)."""

    sql: str
    """The SELECT the view runs; it reads only tables of the published schemas."""
    example: str = ""
    """A query people run on it (shown in the data dictionary)."""

    def create(self, con: duckdb.DuckDBPyConnection) -> None:
        """Create or replace the view and apply its comments."""
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
        con.execute(f"CREATE OR REPLACE VIEW {self.fqn} AS {self.sql}")
        con.execute(f"COMMENT ON VIEW {self.fqn} IS {quote_literal(self.description)}")
        for c in self.columns:
            con.execute(
                f"COMMENT ON COLUMN {self.fqn}.{quote_ident(c.name)} IS "
                f"{quote_literal(c.description)}"
            )
