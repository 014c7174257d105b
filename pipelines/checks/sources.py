"""Checks of the source layers: freshness, reject rate and quarantined files of each raw source
asset, and no future-dated rows in each staging table. Thresholds come from the settings
(`pipelines.settings.ChecksSettings`)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg

from connectors.source import FileSource, Source
from connectors.tables import RAW_LOADED_FILES, RAW_REJECTED_ROWS
from pipelines.checks.core import (
    ERROR,
    EXAMPLES,
    WARN,
    CheckInputs,
    Outcome,
    QualityCheck,
    example_columns,
    fetch,
    markdown,
    offending_rows,
    rejected_share,
)
from pipelines.settings import MAX_REJECT_RATE_ENV, SOURCE_MAX_AGE_ENV, ChecksSettings
from transforms.config import SourceMetric
from warehouse.sql import quote_ident
from warehouse.tables import Table


@dataclass(frozen=True)
class SourceTable:
    """How a raw source asset's data is dated, and what `raw.loaded_files` calls it."""

    family: str
    metric_source: str
    time_column: str
    file_kind: str | None = None
    """Which of the source's files feed this table, when it lands several (analytics)."""
    kind_of: Callable[[Path], str | None] | None = None
    """A file source's `file_kind` (tells which files feed this table); None for an API."""


def raw_sources(sources: Sequence[Source]) -> dict[str, SourceTable]:
    """Per raw source table, how its data is dated and what its source is called."""
    return {
        raw.table.fqn: SourceTable(
            source.name,
            raw.metric_source,
            raw.time_column,
            raw.file_kind,
            source.file_kind if isinstance(source, FileSource) else None,
        )
        for source in sources
        for raw in source.raw
    }


def future_columns(sources: Sequence[Source]) -> dict[str, str]:
    """Per staging table, the column that must not lie after the real date."""
    return {
        staged.table.fqn: staged.future_column for source in sources for staged in source.staged
    }


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
    [(n_future, latest, n_beyond)] = fetch(
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
        metadata["examples"] = offending_rows(
            inputs.con,
            f"SELECT {example_columns(table, [column])} FROM {table.fqn} WHERE {future} "
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
    if table.fqn not in inputs.relations:
        return []
    rows = fetch(
        inputs.con,
        f"SELECT {columns} FROM {table.fqn} WHERE source = ? {condition} ORDER BY source_ref",
        [source.family],
    )
    return [
        row
        for row in rows
        if source.file_kind is None or source.kind_of(Path(row[0])) == source.file_kind
    ]


def reject_rate(source: SourceTable, threshold: float, inputs: CheckInputs) -> Outcome:
    """Per source file, rejected / (loaded + rejected) of its latest loaded version."""
    files = _file_rows(
        source, inputs, RAW_LOADED_FILES, "source_ref, rows_loaded, rows_rejected, batch_id"
    )
    loaded = sum(row[1] for row in files)
    rejected = sum(row[2] for row in files)
    over = [
        (ref, n_loaded, n_rejected, round(rejected_share(n_loaded, n_rejected), 4), batch)
        for ref, n_loaded, n_rejected, batch in files
        if round(rejected_share(n_loaded, n_rejected), 9) > threshold
    ]
    metadata: dict[str, Any] = {
        "files": len(files),
        "rows_loaded": loaded,
        "rows_rejected": rejected,
        "reject_rate": dg.MetadataValue.float(round(rejected_share(loaded, rejected), 6)),
        "max_reject_rate": dg.MetadataValue.float(threshold),
        "files_over_threshold": len(over),
    }
    if not over:
        return Outcome(
            True,
            f"no file rejects more than {threshold:.1%} of its rows "
            f"(overall {rejected_share(loaded, rejected):.2%})",
            metadata,
        )
    metadata["files_over_threshold_list"] = dg.MetadataValue.md(
        markdown(
            ["file", "rows_loaded", "rows_rejected", "reject_rate"],
            [row[:4] for row in over[:20]],
        )
    )
    batches = [row[4] for row in over]
    metadata["examples"] = offending_rows(
        inputs.con,
        f"SELECT location, field, reason, raw_record FROM {RAW_REJECTED_ROWS.fqn} "
        f"WHERE batch_id IN ({', '.join('?' for _ in batches)}) ORDER BY location "
        f"LIMIT {EXAMPLES}",
        batches,
    )
    worst = max(over, key=lambda row: row[3])
    [(location, reason)] = fetch(
        inputs.con,
        # One file's locations are `file:line`: the shortest is the lowest line number.
        f"SELECT location, reason FROM {RAW_REJECTED_ROWS.fqn} WHERE batch_id = ? "
        "ORDER BY length(location), location LIMIT 1",
        [worst[4]],
    ) or [(worst[0], "")]
    return Outcome(
        False,
        f"{len(over)} files reject more than {threshold:.1%} of their rows (worst: {worst[0]}, "
        f"{worst[3]:.1%}, e.g. {location}: {reason}); fix them (every rejected row is in "
        f"raw.rejected_rows) or raise {MAX_REJECT_RATE_ENV}",
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
    metadata["files"] = dg.MetadataValue.md(markdown(["file", "reason", "since"], files))
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
    [(latest_value, loaded_at, rows)] = fetch(
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
        if isinstance(metric, SourceMetric) and metric.source == source.metric_source
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


def source_checks(
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
    if source.kind_of is not None:  # a file source: files are loaded, rejected, quarantined
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


def future_check(table: Table, column: str) -> QualityCheck:
    return QualityCheck(
        "no_future_observations",
        table,
        f"No row with {column} after the real date (today by the clock in "
        "settings.timezone); rows after OKR_AS_OF but not after it are beyond the "
        "as-of day and pass (the marts ignore them). Blocking: future-dated data "
        "does not reach the marts.",
        ERROR,
        True,
        lambda inputs: no_future_observations(table, column, inputs),
        {"column": column},
    )
