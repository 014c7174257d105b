"""Checks every table with a primary key gets, in every layer (raw, staging, marts), and the
finite-values check of the marts' DOUBLE columns."""

from typing import Any

import dagster as dg

from pipelines.checks.core import (
    ERROR,
    EXAMPLES,
    CheckInputs,
    Outcome,
    QualityCheck,
    example_columns,
    fetch,
    markdown,
    offending_rows,
    row_count,
)
from warehouse.sql import quote_ident
from warehouse.tables import Table

FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")
"""Column types `finite_values` checks for inf and NaN."""


def unique_key(table: Table, inputs: CheckInputs) -> Outcome:
    keys = ", ".join(map(quote_ident, table.primary_key))
    # Grouping on a 64-bit hash of the key is far cheaper than on the key; only the rows of
    # repeated hashes (repeated keys, or a rare collision) are then grouped on the key itself.
    [(duplicate_keys, duplicate_rows)] = fetch(
        inputs.con,
        f"""
        WITH repeated AS MATERIALIZED (
            SELECT hash({keys}) AS key_hash FROM {table.fqn} GROUP BY 1 HAVING count(*) > 1
        )
        SELECT count(*), coalesce(sum(n - 1), 0) FROM (
            SELECT count(*) AS n FROM {table.fqn} SEMI JOIN repeated ON hash({keys}) = key_hash
            GROUP BY {keys} HAVING count(*) > 1
        )""",
    )
    metadata: dict[str, Any] = {
        "primary_key": ", ".join(table.primary_key),
        "duplicate_keys": duplicate_keys,
        "duplicate_rows": int(duplicate_rows),
        "rows": row_count(inputs.con, table),
    }
    if duplicate_keys:
        positions = ", ".join(str(i + 2) for i in range(len(table.primary_key)))
        metadata["examples"] = offending_rows(
            inputs.con,
            f"SELECT count(*) AS rows, {keys} FROM {table.fqn} GROUP BY {keys} "
            f"HAVING count(*) > 1 ORDER BY 1 DESC, {positions} LIMIT {EXAMPLES}",
        )
        return Outcome(
            False,
            f"{duplicate_keys} ({', '.join(table.primary_key)}) keys occur more than once "
            f"({duplicate_rows} extra rows)",
            metadata,
        )
    return Outcome(True, f"({', '.join(table.primary_key)}) is unique", metadata)


def id_columns(table: Table) -> list[str]:
    """The key columns that must hold a value: the primary key's NOT NULL columns (a nullable key
    column, like okr_lint.quarter, is null by design for findings about no quarter)."""
    nullable = {c.name for c in table.columns if c.nullable}
    return [name for name in table.primary_key if name not in nullable]


def non_null_ids(table: Table, inputs: CheckInputs) -> Outcome:
    columns = id_columns(table)
    counts = fetch(
        inputs.con,
        "SELECT "
        + ", ".join(f"count(*) FILTER (WHERE {quote_ident(c)} IS NULL)" for c in columns)
        + f" FROM {table.fqn}",
    )[0]
    nulls = dict(zip(columns, counts, strict=True))
    any_null = " OR ".join(f"{quote_ident(c)} IS NULL" for c in columns)
    [(rows,)] = fetch(inputs.con, f"SELECT count(*) FROM {table.fqn} WHERE {any_null}")
    metadata: dict[str, Any] = {
        "id_columns": ", ".join(columns),
        "rows_with_null_ids": rows,
        **{f"nulls/{c}": n for c, n in nulls.items()},
    }
    if rows:
        metadata["examples"] = offending_rows(
            inputs.con,
            f"SELECT {example_columns(table, columns)} FROM {table.fqn} "
            f"WHERE {any_null} LIMIT {EXAMPLES}",
        )
        named = ", ".join(f"{c} ({n})" for c, n in nulls.items() if n)
        return Outcome(False, f"{rows} rows have a null id: {named}", metadata)
    return Outcome(True, f"no null in {', '.join(columns)}", metadata)


def double_columns(table: Table) -> list[str]:
    """The table's floating-point columns, which `finite_values` checks."""
    return [c.name for c in table.columns if c.type.upper() in FLOAT_TYPES]


def finite_values(table: Table, inputs: CheckInputs) -> Outcome:
    """Rows whose DOUBLE columns hold inf, -inf or NaN (NULL is fine: no value)."""
    columns = double_columns(table)
    bad = {c: f"NOT isfinite({quote_ident(c)})" for c in columns}  # NULL for NULL: passes
    counts = fetch(
        inputs.con,
        "SELECT "
        + ", ".join(f"count(*) FILTER (WHERE {condition})" for condition in bad.values())
        + f" FROM {table.fqn}",
    )[0]
    per_column = dict(zip(columns, counts, strict=True))
    any_bad = " OR ".join(f"coalesce({condition}, false)" for condition in bad.values())
    [(rows,)] = fetch(inputs.con, f"SELECT count(*) FROM {table.fqn} WHERE {any_bad}")
    metadata: dict[str, Any] = {
        "double_columns": ", ".join(columns),
        "rows_with_non_finite_values": rows,
        **{f"non_finite/{c}": n for c, n in per_column.items()},
    }
    if not rows:
        return Outcome(True, f"no inf or NaN in {', '.join(columns)}", metadata)
    named = [c for c, n in per_column.items() if n]
    shown = [*table.primary_key, *(c for c in named if c not in table.primary_key)]
    order = ", ".join(map(quote_ident, table.primary_key)) or "1"
    examples = fetch(
        inputs.con,
        f"SELECT {', '.join(map(quote_ident, shown))} FROM {table.fqn} WHERE {any_bad} "
        f"ORDER BY {order} LIMIT {EXAMPLES}",
    )
    metadata["examples"] = dg.MetadataValue.md(markdown(shown, examples))
    example = ", ".join(f"{name}={value}" for name, value in zip(shown, examples[0], strict=True))
    listing = ", ".join(f"{c} ({per_column[c]})" for c in named)
    return Outcome(
        False,
        f"{rows} rows of {table.fqn} hold inf or NaN in {listing}; e.g. {example}. A "
        "computation overflowed or divided by zero: the mart is not published",
        metadata,
    )


def key_checks(table: Table, gate: bool) -> list[QualityCheck]:
    if not table.primary_key:
        return []
    where = "Blocking: stops the assets downstream." if gate else "ERROR severity."
    keys = ", ".join(table.primary_key)
    checks = [
        QualityCheck(
            "unique_key",
            table,
            f"No two rows share the primary key ({keys}). {where}",
            ERROR,
            gate,
            lambda inputs: unique_key(table, inputs),
            {"primary_key": keys},
        )
    ]
    if id_columns(table):
        checks.append(
            QualityCheck(
                "non_null_ids",
                table,
                f"The key columns {', '.join(id_columns(table))} are never null. {where}",
                ERROR,
                gate,
                lambda inputs: non_null_ids(table, inputs),
                {"id_columns": ", ".join(id_columns(table))},
            )
        )
    return checks


def finite_check(table: Table) -> QualityCheck:
    columns = ", ".join(double_columns(table))
    return QualityCheck(
        "finite_values",
        table,
        f"No inf, -inf or NaN in the DOUBLE columns ({columns}). "
        "Blocking: a mart with an overflowed or undefined number is not published.",
        ERROR,
        True,
        lambda inputs: finite_values(table, inputs),
        {"double_columns": columns},
    )
