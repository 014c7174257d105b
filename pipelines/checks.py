"""Asset checks: the data-quality gates of the graph.

Generated from the table definitions (`warehouse.tables.Table`, one source of truth), one
`multi_asset_check` step per checked asset (so a run adds one step per asset, not per check):

| check | assets | on failure |
| --- | --- | --- |
| `unique_key` | every raw/staging/marts table with a `primary_key` | ERROR, blocking |
| `non_null_ids` | the same tables: the key columns declared NOT NULL | as `unique_key` |
| `reject_rate` | raw/csv_observations, raw/analytics_events, raw/analytics_report | ERROR, blocking |
| `quarantined_files` | the same raw file assets | WARN |
| `freshness` | every raw source asset (CSV, analytics, CRM when configured) | WARN |
| `no_future_observations` | every staging asset | ERROR, blocking |
| `progress_in_range` | marts/key_result_attainment, marts/key_result_progress_daily | ERROR, blocking |
| `finite_values` | every marts table with a DOUBLE column (metric_daily, success_metric_summary, key_result_attainment, ...) | ERROR, blocking |
| `every_kr_metric_has_data` | marts/key_result_attainment | WARN |

`finite_values` fails when any DOUBLE column of the mart holds `inf`, `-inf` or `NaN`, naming
the column(s) and example rows: the sources reject non-finite and out-of-range numbers
(docs/sources.md), so one here means a computation overflowed or divided by zero; it is never
published.

`no_future_observations` fails on rows dated after the real date (today by the clock in
settings.timezone); rows after `OKR_AS_OF` but not after the real date are beyond the as-of day,
which the marts ignore, so a rerun as of a past date passes (they are counted in its metadata).

A blocking check that fails stops the assets downstream of its asset in the same run: bad raw
rows never reach staging, bad staging rows never reach the marts, and bad marts are never
published: BI readers keep the last good snapshot. Checks read whole tables
(partitioned ones too), so bad rows written by an earlier run keep failing until they are fixed.

Settings, from the environment when the Definitions load (like `pipelines.settings`):
- `OKR_MAX_REJECT_RATE` (default 0.05): `reject_rate` fails when a source file's latest loaded
  version has rejected / (loaded + rejected) above it.
- `OKR_SOURCE_MAX_AGE_DAYS` (default 2): `freshness` warns when today (`OKR_AS_OF`) minus the
  date of a source's newest data exceeds it; one number for every source, or per source family,
  e.g. `csv=2,analytics=1,crm=7`.
"""

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb

from connectors.analytics.extract import file_kind
from connectors.analytics.tables import RAW_ANALYTICS_EVENTS, RAW_ANALYTICS_REPORT
from connectors.crm.tables import RAW_CRM_TABLES, STAGING_CRM_TABLES
from connectors.csv_drop.tables import RAW_CSV_OBSERVATIONS
from connectors.tables import RAW_LOADED_FILES, RAW_REJECTED_ROWS
from pipelines.assets.staging import STAGED_TABLES
from pipelines.resources import WAREHOUSE_POOL, OkrConfigResource, WarehouseResource
from transforms.config import OkrConfig
from transforms.marts import MART_TABLES
from transforms.measure import MetricReader
from transforms.tables import MARTS_KEY_RESULT_ATTAINMENT, MARTS_KEY_RESULT_PROGRESS_DAILY
from warehouse.sql import quote_ident
from warehouse.tables import Table
from warehouse.writes import table_exists

MAX_REJECT_RATE_ENV = "OKR_MAX_REJECT_RATE"
SOURCE_MAX_AGE_ENV = "OKR_SOURCE_MAX_AGE_DAYS"
SOURCE_FAMILIES = ("csv", "analytics", "crm")
EXAMPLES = 5
"""Offending rows shown in a failed check's metadata."""
FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")
"""Column types `finite_values` checks for inf and NaN."""

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


# ----------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ChecksSettings:
    """Thresholds of the checks; `from_env` reads them from the environment."""

    max_reject_rate: float = 0.05
    source_max_age_days: Mapping[str, int] = field(
        default_factory=lambda: dict.fromkeys(SOURCE_FAMILIES, 2)
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "ChecksSettings":
        environ = os.environ if environ is None else environ
        defaults = cls()
        rate_text = (environ.get(MAX_REJECT_RATE_ENV) or "").strip()
        rate = defaults.max_reject_rate
        if rate_text:
            try:
                rate = float(rate_text)
            except ValueError:
                rate = -1.0
            if not 0 <= rate <= 1:
                raise ValueError(
                    f"{MAX_REJECT_RATE_ENV}={rate_text!r}: expected a fraction between 0 and 1, "
                    "e.g. 0.05 for 5%"
                )
        ages = dict(defaults.source_max_age_days)
        age_text = (environ.get(SOURCE_MAX_AGE_ENV) or "").strip()
        if age_text:
            ages |= _parse_ages(age_text)
        return cls(max_reject_rate=rate, source_max_age_days=ages)

    def max_age(self, family: str) -> int:
        return self.source_max_age_days[family]


def _parse_ages(text: str) -> dict[str, int]:
    hint = (
        f"{SOURCE_MAX_AGE_ENV}={text!r}: expected whole days, for every source ('2') or per "
        f"source family ('csv=2,analytics=1,crm=7'; families: {', '.join(SOURCE_FAMILIES)})"
    )
    items = [item.strip() for item in text.split(",") if item.strip()]
    if len(items) == 1 and "=" not in items[0]:
        items = [f"{family}={items[0]}" for family in SOURCE_FAMILIES]
    ages: dict[str, int] = {}
    for item in items:
        family, _, days = (part.strip() for part in item.partition("="))
        if family not in SOURCE_FAMILIES or not days.isdigit():
            raise ValueError(hint)
        ages[family] = int(days)
    return ages


# ------------------------------------------------------------------------------ check plumbing


@dataclass(frozen=True)
class CheckInputs:
    """What a check reads: the warehouse, the config, the date treated as today (OKR_AS_OF)
    and the real date, which no data may lie after."""

    con: duckdb.DuckDBPyConnection
    config: OkrConfig
    today: date
    real_today: date


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
        if not table_exists(inputs.con, self.table):
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


# ----------------------------------------------------------------------- the checked tables

RAW_SOURCE_TABLES = (RAW_CSV_OBSERVATIONS, RAW_ANALYTICS_EVENTS, RAW_ANALYTICS_REPORT)
STAGING_TABLES = tuple(staged.table for staged in STAGED_TABLES)


def checked_tables(crm_enabled: bool) -> dict[str, tuple[Table, ...]]:
    """Per layer, the tables that are assets of the graph (CRM ones only with a CRM)."""
    crm_raw = tuple(RAW_CRM_TABLES.values()) if crm_enabled else ()
    crm_staging = tuple(STAGING_CRM_TABLES.values()) if crm_enabled else ()
    return {
        "raw": (*RAW_SOURCE_TABLES, *crm_raw),
        "staging": (*STAGING_TABLES, *crm_staging),
        "marts": MART_TABLES,
    }


@dataclass(frozen=True)
class SourceTable:
    """How a raw source asset's data is dated, and what `raw.loaded_files` calls it."""

    family: str
    metric_source: str
    time_column: str
    file_kind: str | None = None
    """For the analytics family: which of its files feed this table (events or report)."""


RAW_SOURCES: dict[str, SourceTable] = {
    RAW_CSV_OBSERVATIONS.fqn: SourceTable("csv", "csv_observations", "date"),
    RAW_ANALYTICS_EVENTS.fqn: SourceTable("analytics", "analytics_events", "timestamp", "events"),
    RAW_ANALYTICS_REPORT.fqn: SourceTable("analytics", "analytics_report", "date", "report"),
    **{
        table.fqn: SourceTable("crm", f"crm_{name}", "updated_at")
        for name, table in RAW_CRM_TABLES.items()
    },
}

FUTURE_COLUMNS: dict[str, str] = {
    "staging.csv_observations": "date",
    "staging.analytics_events": "timestamp",
    "staging.analytics_report_long": "date",
    # createdate, not closedate: an open deal's expected close date may well be in the future.
    **{table.fqn: "createdate" for table in STAGING_CRM_TABLES.values()},
}
"""Per staging table, the column that must not lie after the real date."""


# ------------------------------------------------------------------------------- the checks


def unique_key(table: Table, inputs: CheckInputs) -> Outcome:
    keys = ", ".join(map(quote_ident, table.primary_key))
    [(duplicate_keys, duplicate_rows)] = _fetch(
        inputs.con,
        f"SELECT count(*), coalesce(sum(n - 1), 0) FROM "
        f"(SELECT count(*) AS n FROM {table.fqn} GROUP BY {keys} HAVING count(*) > 1)",
    )
    metadata: dict[str, Any] = {
        "primary_key": ", ".join(table.primary_key),
        "duplicate_keys": duplicate_keys,
        "duplicate_rows": int(duplicate_rows),
        "rows": _count(inputs.con, table),
    }
    if duplicate_keys:
        positions = ", ".join(str(i + 2) for i in range(len(table.primary_key)))
        metadata["examples"] = _examples(
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
    counts = _fetch(
        inputs.con,
        "SELECT "
        + ", ".join(f"count(*) FILTER (WHERE {quote_ident(c)} IS NULL)" for c in columns)
        + f" FROM {table.fqn}",
    )[0]
    nulls = dict(zip(columns, counts, strict=True))
    any_null = " OR ".join(f"{quote_ident(c)} IS NULL" for c in columns)
    [(rows,)] = _fetch(inputs.con, f"SELECT count(*) FROM {table.fqn} WHERE {any_null}")
    metadata: dict[str, Any] = {
        "id_columns": ", ".join(columns),
        "rows_with_null_ids": rows,
        **{f"nulls/{c}": n for c, n in nulls.items()},
    }
    if rows:
        metadata["examples"] = _examples(
            inputs.con,
            f"SELECT {_example_columns(table, columns)} FROM {table.fqn} "
            f"WHERE {any_null} LIMIT {EXAMPLES}",
        )
        named = ", ".join(f"{c} ({n})" for c, n in nulls.items() if n)
        return Outcome(False, f"{rows} rows have a null id: {named}", metadata)
    return Outcome(True, f"no null in {', '.join(columns)}", metadata)


def progress_in_range(table: Table, inputs: CheckInputs) -> Outcome:
    bad_progress = (
        "progress IS NOT NULL AND (isnan(progress) OR NOT round(progress, 9) BETWEEN 0 AND 1)"
    )
    bad_expected = (
        "expected_progress IS NULL OR isnan(expected_progress) "
        "OR NOT round(expected_progress, 9) BETWEEN 0 AND 1"
    )
    [(progress, expected)] = _fetch(
        inputs.con,
        f"SELECT count(*) FILTER (WHERE {bad_progress}), count(*) FILTER (WHERE {bad_expected}) "
        f"FROM {table.fqn}",
    )
    metadata: dict[str, Any] = {
        "progress_out_of_range": progress,
        "expected_progress_out_of_range": expected,
        "rows": _count(inputs.con, table),
    }
    if progress or expected:
        keys = ", ".join(map(quote_ident, table.primary_key))
        metadata["examples"] = _examples(
            inputs.con,
            f"SELECT {keys}, raw_progress, progress, expected_progress, status FROM {table.fqn} "
            f"WHERE ({bad_progress}) OR ({bad_expected}) ORDER BY {keys} LIMIT {EXAMPLES}",
        )
        return Outcome(
            False,
            f"{progress} rows with progress outside [0, 1], {expected} rows with "
            "expected_progress null or outside [0, 1]",
            metadata,
        )
    return Outcome(True, "progress is null or in [0, 1]; expected_progress in [0, 1]", metadata)


def double_columns(table: Table) -> list[str]:
    """The table's floating-point columns, which `finite_values` checks."""
    return [c.name for c in table.columns if c.type.upper() in FLOAT_TYPES]


def finite_values(table: Table, inputs: CheckInputs) -> Outcome:
    """Rows whose DOUBLE columns hold inf, -inf or NaN (NULL is fine: no value)."""
    columns = double_columns(table)
    bad = {c: f"NOT isfinite({quote_ident(c)})" for c in columns}  # NULL for NULL: passes
    counts = _fetch(
        inputs.con,
        "SELECT "
        + ", ".join(f"count(*) FILTER (WHERE {condition})" for condition in bad.values())
        + f" FROM {table.fqn}",
    )[0]
    per_column = dict(zip(columns, counts, strict=True))
    any_bad = " OR ".join(f"coalesce({condition}, false)" for condition in bad.values())
    [(rows,)] = _fetch(inputs.con, f"SELECT count(*) FROM {table.fqn} WHERE {any_bad}")
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
    examples = _fetch(
        inputs.con,
        f"SELECT {', '.join(map(quote_ident, shown))} FROM {table.fqn} WHERE {any_bad} "
        f"ORDER BY {order} LIMIT {EXAMPLES}",
    )
    metadata["examples"] = dg.MetadataValue.md(_markdown(shown, examples))
    example = ", ".join(f"{name}={value}" for name, value in zip(shown, examples[0], strict=True))
    listing = ", ".join(f"{c} ({per_column[c]})" for c in named)
    return Outcome(
        False,
        f"{rows} rows of {table.fqn} hold inf or NaN in {listing}; e.g. {example}. A "
        "computation overflowed or divided by zero: the mart is not published",
        metadata,
    )


def every_kr_metric_has_data(inputs: CheckInputs) -> Outcome:
    """KRs whose metric has no data on or before today in the staging tables it reads."""
    metrics = {kr.metric.id: kr.metric for kr in inputs.config.key_results.values()}
    latest = MetricReader(inputs.con, inputs.config).latest_data_dates(
        metrics.items(), inputs.today
    )
    missing = [
        (kr_id, kr.objective.id, kr.metric.id, kr.metric.source or "ratio", kr.start.isoformat())
        for kr_id, kr in sorted(inputs.config.key_results.items())
        if latest[kr.metric.id] is None
    ]
    metadata: dict[str, Any] = {
        "key_results": len(inputs.config.key_results),
        "key_results_without_data": len(missing),
        "metrics_without_data": dg.MetadataValue.json(
            sorted({metric for _, _, metric, _, _ in missing})
        ),
        "as_of": inputs.today.isoformat(),
    }
    if missing:
        metadata["krs_without_data"] = dg.MetadataValue.md(
            _markdown(["kr_id", "objective_id", "metric_id", "source", "period_start"], missing)
        )
        return Outcome(
            False,
            f"{len(missing)} KRs measure a metric with no data on or before {inputs.today}: "
            + ", ".join(kr_id for kr_id, *_ in missing),
            metadata,
        )
    return Outcome(True, "every KR's metric has data", metadata)


def no_future_observations(table: Table, column: str, inputs: CheckInputs) -> Outcome:
    """No row dated after the real date. Rows after OKR_AS_OF but not after the real date are
    beyond the as-of day, which the marts ignore: counted, not failed. Timestamps count by their
    day in settings.timezone."""
    kind = next(c.type for c in table.columns if c.name == column)
    tz = ZoneInfo(inputs.config.settings.timezone)

    def after(day: date) -> tuple[str, object]:
        if kind == "DATE":
            return f"{quote_ident(column)} > ?", day
        midnight = datetime.combine(day + timedelta(days=1), time(), tz)
        return f"epoch({quote_ident(column)}) >= ?", midnight.timestamp()

    future, future_at = after(inputs.real_today)
    beyond, beyond_at = after(inputs.today)
    either, either_at = after(min(inputs.today, inputs.real_today))
    [(n_future, latest, n_beyond)] = _fetch(
        inputs.con,
        f"SELECT count(*) FILTER (WHERE {future}), "
        f"(max({quote_ident(column)}) FILTER (WHERE {future}))::VARCHAR, "
        f"count(*) FILTER (WHERE {beyond} AND NOT {future}) FROM {table.fqn} WHERE {either}",
        [future_at, future_at, beyond_at, future_at, either_at],
    )
    metadata: dict[str, Any] = {
        "column": column,
        "as_of": inputs.today.isoformat(),
        "real_date": inputs.real_today.isoformat(),
        "future_rows": n_future,
        "rows_beyond_as_of": n_beyond,
    }
    if n_future:
        metadata["latest_future_value"] = latest
        metadata["examples"] = _examples(
            inputs.con,
            f"SELECT {_example_columns(table, [column])} FROM {table.fqn} WHERE {future} "
            f"ORDER BY {quote_ident(column)} DESC LIMIT {EXAMPLES}",
            [future_at],
        )
        return Outcome(
            False,
            f"{n_future} rows have {column} after the real date ({inputs.real_today}), up to "
            f"{latest}; correct their dates at the source",
            metadata,
        )
    summary = f"no {column} after the real date ({inputs.real_today})"
    if n_beyond:
        summary += (
            f"; {n_beyond} rows after the as-of day ({inputs.today}) are ignored by the marts"
        )
    return Outcome(True, summary, metadata)


def _file_rows(
    source: SourceTable, inputs: CheckInputs, table: Table, columns: str, condition: str = ""
) -> list[tuple]:
    """`columns` (the file first) of `table`'s rows about the source's files of its kind, by
    file; none before the table exists."""
    if not table_exists(inputs.con, table):
        return []
    rows = _fetch(
        inputs.con,
        f"SELECT {columns} FROM {table.fqn} WHERE source = ? {condition} ORDER BY source_ref",
        [source.family],
    )
    return [
        row
        for row in rows
        if source.file_kind is None or file_kind(Path(row[0])) == source.file_kind
    ]


def reject_rate(source: SourceTable, threshold: float, inputs: CheckInputs) -> Outcome:
    """Per source file, rejected / (loaded + rejected) of its latest loaded version."""
    files = _file_rows(
        source, inputs, RAW_LOADED_FILES, "source_ref, rows_loaded, rows_rejected, batch_id"
    )
    loaded = sum(row[1] for row in files)
    rejected = sum(row[2] for row in files)
    over = [
        (ref, n_loaded, n_rejected, round(_rate(n_loaded, n_rejected), 4), batch)
        for ref, n_loaded, n_rejected, batch in files
        if round(_rate(n_loaded, n_rejected), 9) > threshold
    ]
    metadata: dict[str, Any] = {
        "files": len(files),
        "rows_loaded": loaded,
        "rows_rejected": rejected,
        "reject_rate": dg.MetadataValue.float(round(_rate(loaded, rejected), 6)),
        "max_reject_rate": dg.MetadataValue.float(threshold),
        "files_over_threshold": len(over),
    }
    if not over:
        return Outcome(
            True,
            f"no file rejects more than {threshold:.1%} of its rows "
            f"(overall {_rate(loaded, rejected):.2%})",
            metadata,
        )
    metadata["files_over_threshold_list"] = dg.MetadataValue.md(
        _markdown(
            ["file", "rows_loaded", "rows_rejected", "reject_rate"],
            [row[:4] for row in over[:20]],
        )
    )
    batches = [row[4] for row in over]
    metadata["examples"] = _examples(
        inputs.con,
        f"SELECT location, field, reason, raw_record FROM {RAW_REJECTED_ROWS.fqn} "
        f"WHERE batch_id IN ({', '.join('?' for _ in batches)}) ORDER BY location "
        f"LIMIT {EXAMPLES}",
        batches,
    )
    worst = max(over, key=lambda row: row[3])
    return Outcome(
        False,
        f"{len(over)} files reject more than {threshold:.1%} of their rows (worst: {worst[0]}, "
        f"{worst[3]:.1%}); see raw.rejected_rows",
        metadata,
    )


def quarantined_files(source: SourceTable, inputs: CheckInputs) -> Outcome:
    """The source's files that cannot be read at all: their one `raw.rejected_rows` row has the
    file itself as location. A warning, not a gate: the other files loaded."""
    files = _file_rows(
        source,
        inputs,
        RAW_REJECTED_ROWS,
        "source_ref, reason, rejected_at",
        "AND location = source_ref",
    )
    metadata: dict[str, Any] = {"quarantined_files": len(files)}
    if not files:
        return Outcome(True, "no file is quarantined", metadata)
    metadata["files"] = dg.MetadataValue.md(_markdown(["file", "reason", "since"], files))
    listing = "; ".join(f"{ref}: {reason}" for ref, reason, _ in files)
    return Outcome(
        False,
        f"{len(files)} files cannot be read, so their current version was not loaded (fix or "
        f"remove them): {listing}",
        metadata,
    )


def freshness(table: Table, source: SourceTable, max_age: int, inputs: CheckInputs) -> Outcome:
    """Age of the newest data of a source (days from its latest date to today)."""
    tz = ZoneInfo(inputs.config.settings.timezone)
    column = quote_ident(source.time_column)
    kind = next(c.type for c in table.columns if c.name == source.time_column)
    latest_expr = f"max({column})" if kind == "DATE" else f"epoch(max({column}))"
    [(latest_value, loaded_at, rows)] = _fetch(
        inputs.con, f"SELECT {latest_expr}, epoch(max(_loaded_at)), count(*) FROM {table.fqn}"
    )
    latest: date | None = (
        latest_value
        if latest_value is None or kind == "DATE"
        else datetime.fromtimestamp(latest_value, tz).date()
    )
    readers = sorted(
        metric_id
        for metric_id, metric in inputs.config.metrics.items()
        if metric.source == source.metric_source
    )
    metadata: dict[str, Any] = {
        "latest_data_date": latest.isoformat() if latest else "",
        "max_age_days": max_age,
        "today": inputs.today.isoformat(),
        "rows": rows,
        "last_loaded_at": (
            datetime.fromtimestamp(loaded_at, UTC).isoformat(timespec="seconds")
            if loaded_at is not None
            else ""
        ),
        "metrics_reading_source": dg.MetadataValue.json(readers),
    }
    if latest is None:
        if not readers:
            return Outcome(True, "no data, and no metric reads this source", metadata)
        return Outcome(False, f"no data yet; read by {', '.join(readers)}", metadata)
    age = (inputs.today - latest).days
    metadata["age_days"] = age
    if age > max_age:
        return Outcome(
            False,
            f"newest data is from {latest}, {age} days before today ({inputs.today}); "
            f"allowed: {max_age}",
            metadata,
        )
    return Outcome(True, f"newest data is from {latest} ({age} days old)", metadata)


# --------------------------------------------------------------------------- building checks


def quality_checks(crm_enabled: bool, settings: ChecksSettings | None = None) -> list[QualityCheck]:
    """Every check of the graph, in a stable order."""
    settings = settings or ChecksSettings()
    checks: list[QualityCheck] = []
    for tables in checked_tables(crm_enabled).values():
        for table in tables:
            # Blocking everywhere: bad raw or staging rows stop at their layer, bad marts are
            # not published (BI readers keep the last good snapshot).
            checks += _generic_checks(table, gate=True)
            if table.fqn in RAW_SOURCES:
                checks += _source_checks(table, RAW_SOURCES[table.fqn], settings)
            if table.fqn in FUTURE_COLUMNS:
                column = FUTURE_COLUMNS[table.fqn]
                checks.append(
                    QualityCheck(
                        "no_future_observations",
                        table,
                        f"No row with {column} after the real date (today by the clock in "
                        "settings.timezone); rows after OKR_AS_OF but not after it are beyond the "
                        "as-of day and pass (the marts ignore them). Blocking: future-dated data "
                        "does not reach the marts.",
                        ERROR,
                        True,
                        lambda inputs, t=table, c=column: no_future_observations(t, c, inputs),
                        {"column": column},
                    )
                )
    for table in (MARTS_KEY_RESULT_ATTAINMENT, MARTS_KEY_RESULT_PROGRESS_DAILY):
        checks.append(
            QualityCheck(
                "progress_in_range",
                table,
                "progress is null or within [0, 1]; expected_progress within [0, 1].",
                ERROR,
                True,
                lambda inputs, t=table: progress_in_range(t, inputs),
            )
        )
    for table in MART_TABLES:
        if double_columns(table):
            checks.append(
                QualityCheck(
                    "finite_values",
                    table,
                    f"No inf, -inf or NaN in the DOUBLE columns ({', '.join(double_columns(table))}). "
                    "Blocking: a mart with an overflowed or undefined number is not published.",
                    ERROR,
                    True,
                    lambda inputs, t=table: finite_values(t, inputs),
                    {"double_columns": ", ".join(double_columns(table))},
                )
            )
    checks.append(
        QualityCheck(
            "every_kr_metric_has_data",
            MARTS_KEY_RESULT_ATTAINMENT,
            "Every KR's metric has data on or before today in the staging tables; warns naming "
            "the KRs whose metric has none (a wrong filter, source or metric id upstream).",
            WARN,
            False,
            every_kr_metric_has_data,
        )
    )
    return checks


def _generic_checks(table: Table, gate: bool) -> list[QualityCheck]:
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


def _source_checks(
    table: Table, source: SourceTable, settings: ChecksSettings
) -> list[QualityCheck]:
    max_age = settings.max_age(source.family)
    checks = [
        QualityCheck(
            "freshness",
            table,
            f"The source's newest data ({source.time_column}) is at most {max_age} days older "
            f"than today ({SOURCE_MAX_AGE_ENV}); warns otherwise, or when a source that metrics "
            "read has no data.",
            WARN,
            False,
            lambda inputs: freshness(table, source, max_age, inputs),
            {"max_age_days": max_age, "time_column": source.time_column},
        )
    ]
    if source.family in ("csv", "analytics"):
        rate = settings.max_reject_rate
        checks.append(
            QualityCheck(
                "reject_rate",
                table,
                f"No source file's latest version rejects more than {rate:.1%} of its rows "
                f"(rejected / (loaded + rejected), from raw.loaded_files; {MAX_REJECT_RATE_ENV})."
                " Blocking: a badly broken file stops staging until it is fixed.",
                ERROR,
                True,
                lambda inputs: reject_rate(source, rate, inputs),
                {"max_reject_rate": rate},
            )
        )
        checks.append(
            QualityCheck(
                "quarantined_files",
                table,
                "No source file is quarantined (cannot be read at all: empty, unrecognised "
                "header, not UTF-8, ...); warns listing each with its reason. Such a file's "
                "current version is not loaded (an earlier version's rows stay) and the others "
                "load; fix or remove it (OKR_STRICT_FILES makes it fail the raw step instead).",
                WARN,
                False,
                lambda inputs: quarantined_files(source, inputs),
            )
        )
    return checks


def build_asset_checks(
    config: OkrConfig,
    *,
    crm_enabled: bool | None = None,
    settings: ChecksSettings | None = None,
) -> list[dg.AssetChecksDefinition]:
    """One multi-asset check (one step) per checked asset. `crm_enabled` defaults to whether
    CRM_API_BASE_URL is set, as in `Settings.from_env`; `settings` to `ChecksSettings.from_env`."""
    if crm_enabled is None:
        crm_enabled = bool(os.environ.get("CRM_API_BASE_URL"))
    checks = quality_checks(crm_enabled, settings or ChecksSettings.from_env())
    by_asset: dict[dg.AssetKey, list[QualityCheck]] = {}
    for item in checks:
        by_asset.setdefault(item.asset_key, []).append(item)
    return [_asset_checks(key, items) for key, items in by_asset.items()]


def _asset_checks(key: dg.AssetKey, checks: Sequence[QualityCheck]) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        name=f"{'__'.join(key.path)}__checks",
        specs=[item.spec() for item in checks],
        can_subset=True,
        pool=WAREHOUSE_POOL,
    )
    def _run(
        context: dg.AssetCheckExecutionContext,
        warehouse: WarehouseResource,
        okr_config: OkrConfigResource,
    ) -> Iterable[dg.AssetCheckResult]:
        config = okr_config.load()
        selected = context.selected_asset_check_keys
        with warehouse.connect() as con:
            inputs = CheckInputs(
                con,
                config,
                okr_config.today(config),
                real_today(config.settings.timezone),
            )
            for item in checks:
                if item.key in selected:
                    yield item.evaluate(inputs)

    return _run


# ------------------------------------------------------------------------------------ helpers


def _fetch(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> list[tuple]:
    return con.execute(sql, list(params or [])).fetchall()


def _count(con: duckdb.DuckDBPyConnection, table: Table) -> int:
    return _fetch(con, f"SELECT count(*) FROM {table.fqn}")[0][0]


def _rate(loaded: int, rejected: int) -> float:
    total = loaded + rejected
    return rejected / total if total else 0.0


def _example_columns(table: Table, first: Sequence[str]) -> str:
    """The columns that identify an offending row: `first`, then lineage (file and line) when
    the table has it, else a few more of its columns."""
    names = table.column_names
    lineage = [c for c in ("_source_ref", "_source_row") if c in names and c not in first]
    rest = lineage or [c for c in names if c not in first][:4]
    return ", ".join(quote_ident(c) for c in [*first, *rest])


def _examples(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> dg.MetadataValue:
    result = con.execute(sql, list(params or []))
    columns = [d[0] for d in result.description]
    return dg.MetadataValue.md(_markdown(columns, result.fetchall()))


def _markdown(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
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
