"""Marts: what BI tools query. The four OKR marts come from one measurement pass per run, so
they are one multi-asset; each is still its own asset with its own metadata."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from connectors.source import StagedTable
from pipelines.checks import AssetChecks, check_specs, checks_of, run_checks
from pipelines.metadata import definition_metadata, table_metadata
from pipelines.partitions import quarters_in_window
from pipelines.resources import WAREHOUSE_POOL, OkrConfigResource, WarehouseResource
from transforms.calendar import Quarter
from transforms.checkins import checkin_kr_ids
from transforms.config import OkrConfig
from transforms.dimensions import dim_key_results, dim_metrics, dim_objectives
from transforms.history import lookback_quarters, unstaged_quarters
from transforms.lint import MARTS_OKR_LINT, LintInputs, latest_data_dates, okr_lint
from transforms.marts import MART_INPUTS, OKR_MARTS, RECORD_MARTS, mart_reader, okr_mart_frames
from transforms.measure import MetricReader
from transforms.reported import MARTS_REPORTED_GRADES, reported_grades
from transforms.tables import (
    MARTS_DIM_KEY_RESULTS,
    MARTS_DIM_METRICS,
    MARTS_DIM_OBJECTIVES,
    MARTS_KEY_RESULT_ATTAINMENT,
)
from transforms.views import create_views
from warehouse.tables import Table
from warehouse.writes import replace_partitions, replace_rows

OWNERS = ["team:analytics"]
DIMENSIONS = {
    "dim_metrics": (MARTS_DIM_METRICS, dim_metrics),
    "dim_objectives": (MARTS_DIM_OBJECTIVES, dim_objectives),
    "dim_key_results": (MARTS_DIM_KEY_RESULTS, dim_key_results),
}


def _spec(table: Table, deps: list, **kwargs) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=[table.schema, table.name],
        deps=deps,
        group_name="marts",
        kinds={"duckdb", "polars"},
        owners=OWNERS,
        description=table.description,
        metadata=definition_metadata(table),
        **kwargs,
    )


def _status_counts(frame: pl.DataFrame) -> dict[str, int]:
    counts = frame.group_by("status").len().sort("status").iter_rows()
    return {f"status/{status}": n for status, n in counts}


def _check_history(
    con, config: OkrConfig, quarters: list[Quarter], staged_tables: list[StagedTable]
) -> None:
    """Fail, naming the command that fixes it, rather than compute from missing history: the
    staging assets build it in the same run, so this fires only for marts run on their own."""
    fiscal_month = config.settings.fiscal_year_start_month
    for staged in staged_tables:
        missing = unstaged_quarters(
            con,
            staged.table,
            staged.raw_days(config.settings.timezone),
            quarters[-1].start,
            fiscal_month,
        )
        if missing:
            span = quarters[0].label
            if len(quarters) > 1:
                span = f"{quarters[0].label} {quarters[-1].label}"
            raise dg.Failure(
                f"{staged.table.fqn} has raw data for {', '.join(q.label for q in missing)} that "
                f"was never staged, which the marts of {span.replace(' ', '..')} read. Run: "
                f"okr backfill {span} (it builds the staging history it needs)"
            )


def build_mart_assets(
    partitions: dg.TimeWindowPartitionsDefinition,
    config: OkrConfig,
    unpartitioned_staging: list[dg.AssetKey],
    staged_tables: list[StagedTable],
    partitioned_inputs: list[dg.AssetKey] | None = None,
    checks: AssetChecks | None = None,
) -> list[dg.AssetsDefinition]:
    """`partitioned_inputs`: other quarterly tables metrics read (the SQL-engine partials)."""
    checks = checks or {}
    mart_checks = checks_of(checks, [*OKR_MARTS.values(), *RECORD_MARTS.values()])
    dimension_checks = checks_of(checks, [table for table, _ in DIMENSIONS.values()])
    lint_checks = checks_of(checks, [MARTS_OKR_LINT])
    history = dg.TimeWindowPartitionMapping(start_offset=-lookback_quarters(config))
    staging = [
        dg.AssetDep([t.schema, t.name], partition_mapping=history)
        for t in (staged.table for staged in staged_tables)
    ] + [dg.AssetDep(key, partition_mapping=history) for key in partitioned_inputs or []]
    staging += unpartitioned_staging
    specs = [
        _spec(
            table,
            [dg.AssetKey([OKR_MARTS[m].schema, OKR_MARTS[m].name]) for m in MART_INPUTS[name]]
            if name in MART_INPUTS
            else staging,
        )
        for name, table in {**OKR_MARTS, **RECORD_MARTS}.items()
    ]

    @dg.multi_asset(
        pool=WAREHOUSE_POOL,
        specs=specs,
        name="okr_marts",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=check_specs(mart_checks),
    )
    def okr_marts(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        okr_config: OkrConfigResource,
    ):
        config = okr_config.load()
        today = okr_config.today(config)
        quarters = quarters_in_window(
            context.partition_time_window, config.settings.fiscal_year_start_month
        )
        starts = [q.start for q in quarters]
        where = f"quarter_start IN ({', '.join('?' for _ in starts)})"
        with warehouse.connect() as con:
            _check_history(con, config, quarters, staged_tables)
            reader = mart_reader(con, config, quarters)
            frames = okr_mart_frames(con, config, quarters, today, reader)
            record = reported_grades(
                frames["key_result_attainment"],
                frames["objective_attainment"],
                datetime.now(UTC),
            )
            # All the OKR marts of these quarters change together or not at all, and the
            # grades of closed quarters are recorded in the same transaction.
            recorded = replace_partitions(
                con,
                {table: frames[name] for name, table in OKR_MARTS.items()},
                starts,
                keep_first={MARTS_REPORTED_GRADES: record},
            )
            create_views(con)
            for name, table in OKR_MARTS.items():
                frame = frames[name]
                metadata = table_metadata(con, table, where, starts)
                if "status" in frame.columns:
                    metadata |= _status_counts(frame)
                yield dg.MaterializeResult(
                    asset_key=[table.schema, table.name],
                    metadata={**metadata, "as_of": today.isoformat()},
                )
            yield dg.MaterializeResult(
                asset_key=[MARTS_REPORTED_GRADES.schema, MARTS_REPORTED_GRADES.name],
                metadata={
                    **table_metadata(con, MARTS_REPORTED_GRADES),
                    "recorded_this_run": recorded[MARTS_REPORTED_GRADES.fqn],
                },
            )
            context.log.info(
                f"{', '.join(q.label for q in quarters)} as of {today}: "
                f"{frames['key_result_attainment'].height} KR rows"
            )
            yield from run_checks(context, con, okr_config, mart_checks, reader)

    @dg.multi_asset(
        pool=WAREHOUSE_POOL,
        specs=[_spec(table, []) for table, _ in DIMENSIONS.values()],
        name="okr_dimensions",
        check_specs=check_specs(dimension_checks),
    )
    def okr_dimensions(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        okr_config: OkrConfigResource,
    ):
        config = okr_config.load()
        with warehouse.connect() as con:
            for table, build in DIMENSIONS.values():
                replace_rows(con, table, build(config), "TRUE")
                yield dg.MaterializeResult(
                    asset_key=[table.schema, table.name], metadata=table_metadata(con, table)
                )
            yield from run_checks(context, con, okr_config, dimension_checks)

    @dg.asset(
        pool=WAREHOUSE_POOL,
        key=[MARTS_OKR_LINT.schema, MARTS_OKR_LINT.name],
        deps=[dg.AssetKey(["marts", "key_result_attainment"])],
        group_name="marts",
        kinds={"duckdb", "polars"},
        owners=OWNERS,
        description=MARTS_OKR_LINT.description,
        metadata=definition_metadata(MARTS_OKR_LINT),
        check_specs=check_specs(lint_checks),
    )
    def okr_lint_asset(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        okr_config: OkrConfigResource,
    ):
        config = okr_config.load()
        today = okr_config.today(config)
        with warehouse.connect() as con:
            MARTS_KEY_RESULT_ATTAINMENT.create(con)
            attainment = con.sql(f"SELECT * FROM {MARTS_KEY_RESULT_ATTAINMENT.fqn}").pl()
            latest = latest_data_dates(MetricReader(con, config), config, today)
            findings = okr_lint(
                LintInputs(config, attainment, latest, today, checkin_kr_ids(con))
            )
            replace_rows(con, MARTS_OKR_LINT, findings, "TRUE")
            counts = findings.group_by("severity").len().iter_rows()
            yield dg.MaterializeResult(
                metadata={
                    **table_metadata(con, MARTS_OKR_LINT),
                    **{f"severity/{name}": n for name, n in counts},
                }
            )
            yield from run_checks(context, con, okr_config, lint_checks)

    return [okr_marts, okr_dimensions, okr_lint_asset]
