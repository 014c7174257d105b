"""Asset checks: the data-quality gates of the graph.

Generated from the table definitions (`warehouse.tables.Table`, one source of truth) and run in
the step that wrote the table, on the same warehouse connection (check specs on the asset): a
run has no step of its own per check or per checked asset, and re-running a check
re-materializes its asset. One module per layer: `tables` (what every keyed table gets, and
finite marts values), `sources` (raw and staging), `marts`; `core` is what a check is made of.

| check | assets | on failure |
| --- | --- | --- |
| `unique_key` | every raw/staging/marts table with a `primary_key` | ERROR, blocking |
| `non_null_ids` | the same tables: the key columns declared NOT NULL | as `unique_key` |
| `reject_rate` | raw/csv_observations, raw/analytics_events, raw/analytics_report, raw/checkins | ERROR, blocking |
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

A blocking check that fails fails its asset's step once the asset is written (the check result
and the materialization are both recorded) and so stops the assets downstream of it in the same
run: bad raw rows never reach staging, bad staging rows never reach the marts, and bad marts are
never published: BI readers keep the last good snapshot. Checks read whole tables (partitioned
ones too), so bad rows written by an earlier run keep failing until they are fixed.

Thresholds, read with the other settings (`pipelines.settings.ChecksSettings`):
- `OKR_MAX_REJECT_RATE` (default 0.05): `reject_rate` fails when a source file's latest loaded
  version has rejected / (loaded + rejected) above it.
- `OKR_SOURCE_MAX_AGE_DAYS` (default 2): `freshness` warns when today (`OKR_AS_OF`) minus the
  date of a source's newest data exceeds it; one number for every source, or per source family,
  e.g. `csv=2,analytics=1,crm=7`.
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence

import dagster as dg
import duckdb

from connectors.registry import SOURCES
from connectors.source import Source
from pipelines.checks.core import CheckInputs, QualityCheck, real_today
from pipelines.checks.marts import kr_data_check, progress_checks
from pipelines.checks.sources import future_check, future_columns, raw_sources, source_checks
from pipelines.checks.tables import double_columns, finite_check, key_checks
from pipelines.resources import OkrConfigResource
from pipelines.settings import ChecksSettings
from transforms.marts import MART_TABLES
from transforms.measure import MetricReader
from warehouse.tables import Table


def checked_tables(sources: Sequence[Source] = SOURCES) -> dict[str, tuple[Table, ...]]:
    """Per layer, the tables that are assets of a graph reading `sources`."""
    return {
        "raw": tuple(raw.table for source in sources for raw in source.raw),
        "staging": tuple(staged.table for source in sources for staged in source.staged),
        "marts": MART_TABLES,
    }


def quality_checks(
    settings: ChecksSettings | None = None, sources: Sequence[Source] = SOURCES
) -> list[QualityCheck]:
    """Every check of a graph reading `sources`, in a stable order."""
    settings = settings or ChecksSettings()
    by_raw, future = raw_sources(sources), future_columns(sources)
    checks: list[QualityCheck] = []
    for tables in checked_tables(sources).values():
        for table in tables:
            # Blocking everywhere: bad raw or staging rows stop at their layer, bad marts are
            # not published (BI readers keep the last good snapshot).
            checks += key_checks(table, gate=True)
            if table.fqn in by_raw:
                checks += source_checks(table, by_raw[table.fqn], settings)
            if table.fqn in future:
                checks.append(future_check(table, future[table.fqn]))
    finite = [finite_check(table) for table in MART_TABLES if double_columns(table)]
    return checks + progress_checks() + finite + [kr_data_check()]


def checks_by_asset(
    settings: ChecksSettings, sources: Sequence[Source] = SOURCES
) -> dict[dg.AssetKey, list[QualityCheck]]:
    """Every check of a graph reading `sources`, by the asset whose step runs it."""
    by_asset: dict[dg.AssetKey, list[QualityCheck]] = {}
    for item in quality_checks(settings, sources):
        by_asset.setdefault(item.asset_key, []).append(item)
    return by_asset


AssetChecks = Mapping[dg.AssetKey, Sequence[QualityCheck]]
"""Checks by the asset whose step runs them (`checks_by_asset`)."""


def checks_of(checks: AssetChecks, tables: Iterable[Table]) -> list[QualityCheck]:
    """The checks of the assets of `tables`, in their order."""
    return [item for t in tables for item in checks.get(dg.AssetKey([t.schema, t.name]), ())]


def check_specs(checks: Sequence[QualityCheck]) -> list[dg.AssetCheckSpec]:
    return [item.spec() for item in checks]


def run_checks(
    context: dg.AssetExecutionContext,
    con: duckdb.DuckDBPyConnection,
    okr_config: OkrConfigResource,
    checks: Sequence[QualityCheck],
    reader: MetricReader | None = None,
) -> Iterator[dg.AssetCheckResult]:
    """Evaluate the step's selected checks on the connection that wrote their tables (and
    with the step's metric reader, when it measured metrics)."""
    selected = context.selected_asset_check_keys
    wanted = [item for item in checks if item.key in selected]
    if not wanted:
        return
    config = okr_config.load()
    inputs = CheckInputs(
        con, config, okr_config.today(config), real_today(config.settings.timezone), reader
    )
    for item in wanted:
        yield item.evaluate(inputs)
