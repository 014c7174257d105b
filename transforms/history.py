"""How far back the OKR marts read, and which staging quarters must be (re)built before they do.

A KR measured in a quarter can read the days before its window (auto baselines, trailing
windows); a KPI summary reads a year of periods and, for red streaks and `last` values, as far
back as the data goes. So a run keeps every staging quarter holding raw data, up to the quarters
it reports, current with the raw layer: quarters never built, or whose raw rows changed since they
were built (told by a fingerprint of the raw rows, `meta.staging_inputs`), are rebuilt in the same
run. Quarters before the first raw data are never built: nothing can be read there.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

from transforms.calendar import Quarter, quarter_of, quarters_between
from transforms.config import OkrConfig, ResolvedKeyResult
from warehouse.meta import META_RAW_BATCH_DAYS, META_STAGING_INPUTS
from warehouse.staging import RawInput
from warehouse.tables import Table
from warehouse.writes import table_exists, transaction, written_partitions


def history_start(kr: ResolvedKeyResult) -> date:
    """First day a KR's own numbers read: a trailing window reaches N-1 days before each day it
    values; `baseline: auto` adds the value as of S-1 (the same-length window before S for
    period windows). A numeric baseline reads nothing before S. `last` values look further back
    through the reader, which finds each metric's latest value before any bound."""
    trailing = kr.metric.trailing_days
    if kr.kr.baseline != "auto":
        return kr.start - timedelta(days=(trailing or 1) - 1)
    if trailing:
        return kr.start - timedelta(days=trailing)
    return kr.start - (kr.end - kr.start + timedelta(days=1))


def krs_touching(config: OkrConfig, quarters: list[Quarter]) -> list[ResolvedKeyResult]:
    """The KRs whose window overlaps one of `quarters`: the only ones with rows there."""
    return [
        kr
        for kr in config.key_results.values()
        if any(kr.start <= q.end and kr.end >= q.start for q in quarters)
    ]


def earliest_needed(config: OkrConfig, quarters: list[Quarter] | None = None) -> date | None:
    """Earliest day any KR reported in `quarters` (default: every KR) depends on."""
    krs = config.key_results.values() if quarters is None else krs_touching(config, quarters)
    return min((history_start(kr) for kr in krs), default=None)


def first_reported_day(config: OkrConfig) -> date | None:
    """First day of any objective's period or KR window: the marts report nothing before it."""
    starts = [start for start, _ in config.objective_windows.values()]
    starts += [kr.start for kr in config.key_results.values()]
    return min(starts, default=None)


def kpi_lookback_start(first_reported: date) -> date:
    """A KPI summary measures from a year and a week before its first reported period: that
    covers previous_value, rolling_avg_3 and yoy_value of every grain; only a red streak reaches
    further, and only those metrics are measured further back (see kpi.success_metric_summary)."""
    month = first_reported.replace(day=1)
    return month.replace(year=month.year - 1) - timedelta(days=7)


def kpi_first_day(config: OkrConfig, quarters: list[Quarter]) -> date | None:
    """The first day of data both KPI marts of `quarters` read, unless a red streak reaches
    further: the start of the fiscal quarter holding the lookback from the first reported week
    (the longest period measured from there), less the longest trailing window."""
    if not quarters or not config.metrics:
        return None
    first_week = min(q.start for q in quarters) - timedelta(days=6)
    lookback = kpi_lookback_start(first_week)
    first_period = quarter_of(lookback, config.settings.fiscal_year_start_month).start
    longest = max(m.trailing_days or 1 for m in config.metrics.values())
    return first_period - timedelta(days=longest)


def lookback_quarters(config: OkrConfig) -> int:
    """How many quarters before a mart quarter a KR's numbers can read (baselines, trailing
    windows): how far back the marts' partitions depend on staging."""
    fiscal_month = config.settings.fiscal_year_start_month
    spans = [
        len(quarters_between(history_start(kr), kr.end, fiscal_month)) - 1
        for kr in config.key_results.values()
    ]
    return max(spans, default=0)


# -- staging history ------------------------------------------------------------------------------


def raw_fingerprints(
    con: duckdb.DuckDBPyConnection, raw: RawInput, fiscal_month: int
) -> dict[date, tuple[int, int]]:
    """Per quarter start: (rows, XOR of the hashes of the distinct batch ids) of the raw rows
    dated in it. A file version's rows share a batch id and any change to a file loads a new
    one, so any load, replacement or removal of raw rows changes its quarters' pairs."""
    return {start: (n, int(h)) for start, n, h in _raw_quarters(con, raw, fiscal_month, True)}


def _raw_quarters(
    con: duckdb.DuckDBPyConnection, raw: RawInput, fiscal_month: int, hashed: bool
) -> list[tuple[date, int, int | None]]:
    """(quarter start, rows, batch fingerprint or None) of the quarters raw has rows in."""
    if not table_exists(con, raw.table):
        return []
    salt = "|".join(map(str, raw.params))
    day_key = f"{raw.day_sql}|{salt}"
    _count_batch_days(con, raw, day_key)
    shift = fiscal_month - 1
    fingerprint = "bit_xor(DISTINCT hash(batch_id, ?::VARCHAR))" if hashed else "NULL"
    return con.execute(
        f"""
        SELECT CAST(date_trunc('quarter', day - to_months(?::INTEGER)) + to_months(?::INTEGER)
                    AS DATE),
               sum(raw_rows)::BIGINT, {fingerprint}
        FROM {META_RAW_BATCH_DAYS.fqn}
        WHERE table_name = ? AND day_key = ? AND day IS NOT NULL
        GROUP BY 1
        """,
        # in the order of the ?s
        [shift, shift, *([salt] if hashed else []), raw.table.fqn, day_key],
    ).fetchall()


def _count_batch_days(con: duckdb.DuckDBPyConnection, raw: RawInput, day_key: str) -> None:
    """Bring `meta.raw_batch_days` up to date for `raw` and `day_key`: count the rows per day of
    the batches it lacks, or whose row count in raw differs from its own (a file replaced, rows
    removed), and drop the batches raw no longer has. Costs one pass over raw's batch column
    plus a pass over the new batches' rows, so a refresh does not re-read the history."""
    META_RAW_BATCH_DAYS.create(con)
    in_raw = dict(
        con.execute(f"SELECT _batch_id, count(*) FROM {raw.table.fqn} GROUP BY 1").fetchall()
    )
    counted = dict(
        con.execute(
            f"SELECT batch_id, sum(raw_rows)::BIGINT FROM {META_RAW_BATCH_DAYS.fqn} "
            "WHERE table_name = ? AND day_key = ? GROUP BY 1",
            [raw.table.fqn, day_key],
        ).fetchall()
    )
    stale = [batch for batch, n in counted.items() if in_raw.get(batch) != n]
    new = [batch for batch, n in in_raw.items() if counted.get(batch) != n]
    if not stale and not new:
        return
    with transaction(con):
        con.execute(
            f"DELETE FROM {META_RAW_BATCH_DAYS.fqn} WHERE table_name = ? AND day_key = ? "
            "AND batch_id IN (SELECT unnest(?::VARCHAR[]))",
            [raw.table.fqn, day_key, stale],
        )
        con.execute(
            f"""
            INSERT INTO {META_RAW_BATCH_DAYS.fqn}
            SELECT ?, ?, _batch_id, {raw.day_sql} AS day, count(*)
            FROM {raw.table.fqn}
            WHERE _batch_id IN (SELECT unnest(?::VARCHAR[]))
            GROUP BY ALL
            """,
            # in the order of the ?s
            [raw.table.fqn, day_key, *raw.params, new],
        )


def stored_fingerprints(
    con: duckdb.DuckDBPyConnection, table: Table
) -> dict[date, tuple[int, int]]:
    META_STAGING_INPUTS.create(con)
    rows = con.execute(
        f"SELECT quarter_start, raw_rows, raw_hash FROM {META_STAGING_INPUTS.fqn} "
        "WHERE table_name = ?",
        [table.fqn],
    ).fetchall()
    return {start: (n, int(h)) for start, n, h in rows}


def record_fingerprints(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    quarters: list[Quarter],
    current: dict[date, tuple[int, int]],
) -> None:
    """Remember what raw held for `quarters` when `table` was built from it."""
    META_STAGING_INPUTS.create(con)
    starts = [q.start for q in quarters]
    with transaction(con):
        con.execute(
            f"DELETE FROM {META_STAGING_INPUTS.fqn} WHERE table_name = ? "
            f"AND quarter_start IN ({', '.join('?' for _ in starts)})",
            [table.fqn, *starts],
        )
        con.executemany(
            f"INSERT INTO {META_STAGING_INPUTS.fqn} VALUES (?, ?, ?, ?, now())",
            [[table.fqn, s, *current.get(s, (0, 0))] for s in starts],
        )


def stale_history(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    current: dict[date, tuple[int, int]],
    before: date,
    fiscal_month: int,
) -> list[Quarter]:
    """Quarters before `before` that `table` must (re)build to match raw: those whose raw
    fingerprint differs from the one recorded when they were last built (never built counts as
    empty). A quarter that is empty in raw and was never built has nothing to stage."""
    stored = stored_fingerprints(con, table)
    starts = {*current, *stored}
    return [
        quarter_of(start, fiscal_month)
        for start in sorted(starts)
        if start < before and stored.get(start, (0, 0)) != current.get(start, (0, 0))
    ]


def unstaged_quarters(
    con: duckdb.DuckDBPyConnection, table: Table, raw: RawInput, last: date, fiscal_month: int
) -> list[Quarter]:
    """Quarters up to the one holding `last` whose raw data `table` has never staged."""
    written = written_partitions(con, table)
    return [
        quarter_of(start, fiscal_month)
        for start, n, _ in sorted(_raw_quarters(con, raw, fiscal_month, False))
        if n and start <= last and start not in written
    ]
