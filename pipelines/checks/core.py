"""What every check is made of: the inputs it reads, its outcome, and the helpers that show
offending rows in its metadata."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb

from transforms.config import OkrConfig
from transforms.measure import MetricReader
from warehouse.sql import quote_ident
from warehouse.tables import Table
from warehouse.writes import relation_names

EXAMPLES = 5
"""Offending rows shown in a failed check's metadata."""
ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


@dataclass(frozen=True)
class CheckInputs:
    """What a check reads: the warehouse, the config, the date treated as today (OKR_AS_OF)
    and the real date, which no data may lie after; and the step's metric reader, when the
    step measured metrics (checks ask it instead of scanning staging again)."""

    con: duckdb.DuckDBPyConnection
    config: OkrConfig
    today: date
    real_today: date
    reader: MetricReader | None = None

    def metric_reader(self) -> MetricReader:
        return self.reader or MetricReader(self.con, self.config)

    @cached_property
    def relations(self) -> frozenset[str]:
        """The warehouse's tables and views, read once for all of a step's checks (they run
        after the step's writes, so none appears in between)."""
        return relation_names(self.con)


def real_today(timezone: str) -> date:
    """Today by the clock in `timezone`, whatever OKR_AS_OF says."""
    return datetime.now(ZoneInfo(timezone)).date()


@dataclass(frozen=True)
class Outcome:
    passed: bool
    summary: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QualityCheck:
    """One check of one table's asset: its spec and the function that evaluates it."""

    name: str
    table: Table
    description: str
    severity: dg.AssetCheckSeverity
    blocking: bool
    run: Callable[[CheckInputs], Outcome]
    spec_metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey([self.table.schema, self.table.name])

    @property
    def key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(self.asset_key, self.name)

    def spec(self) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(
            self.name,
            asset=self.asset_key,
            description=self.description,
            blocking=self.blocking,
            metadata={
                "severity": self.severity.value,
                "blocking": self.blocking,
                **self.spec_metadata,
            },
        )

    def evaluate(self, inputs: CheckInputs) -> dg.AssetCheckResult:
        if self.table.fqn not in inputs.relations:
            outcome = Outcome(False, f"{self.table.fqn} does not exist")
        else:
            outcome = self.run(inputs)
        return dg.AssetCheckResult(
            asset_key=self.asset_key,
            check_name=self.name,
            passed=outcome.passed,
            severity=self.severity,
            description=outcome.summary,
            metadata={"table": self.table.fqn, **outcome.metadata},
        )


def fetch(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> list[tuple]:
    return con.execute(sql, list(params or [])).fetchall()


def row_count(con: duckdb.DuckDBPyConnection, table: Table) -> int:
    return fetch(con, f"SELECT count(*) FROM {table.fqn}")[0][0]


def rejected_share(loaded: int, rejected: int) -> float:
    total = loaded + rejected
    return rejected / total if total else 0.0


def example_columns(table: Table, first: Sequence[str]) -> str:
    """The columns that identify an offending row: `first`, then lineage (file and line) when
    the table has it, else a few more of its columns."""
    names = table.column_names
    lineage = [c for c in ("_source_ref", "_source_row") if c in names and c not in first]
    rest = lineage or [c for c in names if c not in first][:4]
    return ", ".join(quote_ident(c) for c in [*first, *rest])


def offending_rows(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> dg.MetadataValue:
    result = con.execute(sql, list(params or []))
    columns = [d[0] for d in result.description]
    return dg.MetadataValue.md(markdown(columns, result.fetchall()))


def markdown(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        text = text if len(text) <= 120 else text[:117] + "..."
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
        *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows),
    ]
    return "\n".join(lines)
