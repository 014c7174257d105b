"""Schedules and sensors: what keeps the warehouse current without anyone typing `okr backfill`.

- `refresh_running_quarter` (daily, 06:00 in the config timezone): every asset -- sources,
  staging, marts, the BI snapshot -- for the quarter running at the scheduled time.
- `finalize_closed_quarter` (05:00 on the first day of each fiscal quarter): every asset for the
  quarter that just ended, so its marts hold their final, as-of-after-the-end numbers.
- `source_files_sensor` (every 30 s): one run per new or changed file version in the CSV drop
  folder and the analytics export folder, over the file assets and everything downstream of
  them, for the quarters the file's dates touch up to the running quarter.

Each run request carries a run key (the day, the closed quarter, `relpath@sha256[:16]`), so a
repeat is a no-op for the daemon. All three start stopped: switch them on in the UI (or with
`dagster schedule start` / `dagster sensor start`) where the daemon runs.

Notes:
- Schedules follow the clock (their scheduled time), within the partitions, which end with the
  quarter of OKR_AS_OF when it is set; the sensor's running quarter is the last partition.
- A file's quarters come from the dates in it (`file_dates`); when they cannot be told the
  sensor refreshes the running quarter only, and the older quarters wait for a backfill.
- Every run, scheduled or sensed, also builds the staging history its marts read (quarters never
  built, or whose raw data changed), so none fails on a warehouse that was never backfilled.
- A file reverted to an earlier version gets that version's run key, which the daemon treats
  as a repeat: the next daily refresh reloads it into raw and the running quarter (raw assets
  reload every changed file); older quarters it touches need `okr backfill`.

Why hand-written triggers rather than declarative automation: each one needs a specific
partition (the running quarter, the one before it, a range derived from a file's dates) and a
run key; `AutomationCondition.on_cron` only ever targets the latest time partition and cannot
see files outside Dagster.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb

from connectors.files import sha256
from connectors.registry import FILE_SOURCES
from connectors.source import FileSource
from pipelines.settings import Settings
from transforms.calendar import quarter_start_months

REFRESH_JOB = "okr_refresh_quarter"
SOURCE_FILES_JOB = "okr_source_files"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
SENSOR_INTERVAL_SECONDS = 30
TICK_BUDGET_SECONDS = 30.0
"""Once a tick has spent this long hashing and scanning files (Dagster times a sensor
evaluation out after 60 s), it looks at no further file; the rest are picked up on the next tick.
At least one file is looked at per tick."""
CURSOR_VERSION = 1


def build_automation(
    partitions: dg.TimeWindowPartitionsDefinition,
    settings: Settings,
    fiscal_month: int,
    sources: Sequence[FileSource] = FILE_SOURCES,
) -> tuple[list[dg.ScheduleDefinition], list[dg.SensorDefinition]]:
    refresh_job = dg.define_asset_job(
        REFRESH_JOB,
        selection=dg.AssetSelection.all(),
        description="Every asset (sources, staging, marts, BI snapshot) for one quarter.",
    )
    files_job = dg.define_asset_job(
        SOURCE_FILES_JOB,
        selection=dg.AssetSelection.assets(
            *(dg.AssetKey([raw.table.schema, raw.table.name]) for s in sources for raw in s.raw)
        ).downstream(),
        description=(
            "The CSV drop folder and analytics exports, and everything downstream of them, for "
            "a range of quarters."
        ),
    )
    schedules = [
        _refresh_running_quarter(refresh_job, partitions),
        _finalize_closed_quarter(refresh_job, partitions, fiscal_month),
    ]
    return schedules, [_source_files_sensor(files_job, partitions, settings, sources)]


# -- partitions ---------------------------------------------------------------------------------


def running_partition(partitions: dg.TimeWindowPartitionsDefinition, at: datetime) -> str | None:
    """The key of the quarter running at `at` (partitions end with the running quarter)."""
    keys = partitions.get_partition_keys(current_time=at)
    return keys[-1] if keys else None


def _local(at: datetime, timezone: str) -> datetime:
    zone = ZoneInfo(timezone)
    return at.replace(tzinfo=zone) if at.tzinfo is None else at.astimezone(zone)


def _partition_of_day(partitions: dg.TimeWindowPartitionsDefinition, day: date) -> str:
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(partitions.timezone))
    return partitions.get_partition_key_for_timestamp(noon.timestamp())


# -- schedules ----------------------------------------------------------------------------------


def _refresh_running_quarter(
    job: dg.UnresolvedAssetJobDefinition, partitions: dg.TimeWindowPartitionsDefinition
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="refresh_running_quarter",
        job=job,
        cron_schedule="0 6 * * *",
        execution_timezone=partitions.timezone,
        description=(
            "Daily: loads new source data and rebuilds staging, marts and the BI snapshot for the "
            "running quarter."
        ),
    )
    def refresh_running_quarter(context: dg.ScheduleEvaluationContext):
        at = _local(context.scheduled_execution_time, partitions.timezone)
        key = running_partition(partitions, at)
        if key is None:
            return dg.SkipReason(f"no quarter is running at {at.isoformat()}")
        return dg.RunRequest(
            run_key=f"refresh-{at.date().isoformat()}",
            partition_key=key,
            tags={"okr/trigger": "daily_refresh"},
        )

    return refresh_running_quarter


def _finalize_closed_quarter(
    job: dg.UnresolvedAssetJobDefinition,
    partitions: dg.TimeWindowPartitionsDefinition,
    fiscal_month: int,
) -> dg.ScheduleDefinition:
    months = ",".join(str(m) for m in quarter_start_months(fiscal_month))

    @dg.schedule(
        name="finalize_closed_quarter",
        job=job,
        cron_schedule=f"0 5 1 {months} *",
        execution_timezone=partitions.timezone,
        description=(
            "On the first day of each fiscal quarter: rebuilds every asset for the quarter that "
            "just ended, so its marts hold the final numbers."
        ),
    )
    def finalize_closed_quarter(context: dg.ScheduleEvaluationContext):
        at = _local(context.scheduled_execution_time, partitions.timezone)
        keys = partitions.get_partition_keys(current_time=at)
        if len(keys) < 2:
            return dg.SkipReason(f"no quarter has closed yet at {at.isoformat()}")
        return dg.RunRequest(
            run_key=f"finalize-{keys[-2]}",
            partition_key=keys[-2],
            tags={"okr/trigger": "quarter_close"},
        )

    return finalize_closed_quarter


# -- source files sensor ------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFile:
    rel: str
    """Path relative to $OKR_DATA_DIR, e.g. `csv/visits.csv` or `analytics/events.jsonl.gz`."""
    path: Path
    kind: str
    """'csv' (drop folder), 'events' or 'report' (analytics exports)."""
    source: FileSource


def source_files(
    data_dir: Path, sources: Sequence[FileSource] = FILE_SOURCES
) -> Iterator[SourceFile]:
    """The files the raw assets load, in a stable order."""
    found = [
        (path, kind, source)
        for source in sources
        if (data_dir / source.folder).is_dir()
        for path in (data_dir / source.folder).rglob("*")
        if path.is_file() and (kind := source.file_kind(path))
    ]
    for path, kind, source in sorted(found, key=lambda item: item[0]):
        yield SourceFile(path.relative_to(data_dir).as_posix(), path, kind, source)


def _source_files_sensor(
    job: dg.UnresolvedAssetJobDefinition,
    partitions: dg.TimeWindowPartitionsDefinition,
    settings: Settings,
    sources: Sequence[FileSource],
) -> dg.SensorDefinition:
    data_dir = Path(settings.data_dir)
    folders = " and ".join(f"$OKR_DATA_DIR/{source.folder}" for source in sources)

    @dg.sensor(
        name="source_files_sensor",
        job=job,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        description=(
            f"One run per new or changed file version in {folders} (run key "
            "`relpath@sha256`), for the quarters its dates touch up to the running one."
        ),
    )
    def source_files_sensor(context: dg.SensorEvaluationContext):
        known = _read_cursor(context.cursor)
        # The last partition now: that of OKR_AS_OF when it is set (the partitions end there).
        running = running_partition(partitions, datetime.now(ZoneInfo(partitions.timezone)))
        if running is None:
            return dg.SkipReason("no partition exists yet")
        first_key = partitions.get_first_partition_key()
        files, seen, requests = known.copy(), set(), []
        started, hashed = time.monotonic(), 0
        for source in source_files(data_dir, sources):
            seen.add(source.rel)
            if hashed and time.monotonic() - started > TICK_BUDGET_SECONDS:
                continue  # looked at next tick; already-known files keep their entry
            before = known.get(source.rel)
            try:
                stat = source.path.stat()
                if before and [before.get("size"), before.get("mtime_ns")] == [
                    stat.st_size,
                    stat.st_mtime_ns,
                ]:
                    continue  # cheap pre-filter: not rehashed
                digest, size = sha256(source.path)
            except FileNotFoundError:
                seen.discard(source.rel)  # removed while we looked
                continue
            hashed += 1
            entry = {"size": size, "mtime_ns": stat.st_mtime_ns, "sha256": digest, "first": None}
            if before and before.get("sha256") == digest:
                files[source.rel] = {**entry, "first": before.get("first")}
                continue  # touched, not changed
            covered = file_dates(source, partitions.timezone)
            if covered:
                entry["first"] = covered[0].isoformat()
            files[source.rel] = entry
            # A changed file replaces what its previous version loaded: refresh both versions'
            # quarters, from the earliest either touched to the running one.
            firsts = [
                date.fromisoformat(first)
                for first in (entry["first"], (before or {}).get("first"))
                if first
            ]
            start = running
            if firsts:
                start = min(max(_partition_of_day(partitions, min(firsts)), first_key), running)
            tags = {
                "okr/trigger": "source_file",
                "okr/source_file": source.rel,
                "okr/source_sha256": digest,
            }
            run_key = f"{source.rel}@{digest[:16]}"
            if start == running:
                requests.append(dg.RunRequest(run_key=run_key, partition_key=running, tags=tags))
            else:
                tags |= {RANGE_START: start, RANGE_END: running}
                requests.append(dg.RunRequest(run_key=run_key, tags=tags))
            context.log.info(
                f"{source.rel} ({'changed' if before else 'new'}, sha256 {digest[:16]}): "
                f"quarters {start}..{running}"
            )
        for gone in set(files) - seen:
            del files[gone]  # a removed file keeps its rows; forgetting it costs nothing
        context.update_cursor(json.dumps({"v": CURSOR_VERSION, "files": files}, sort_keys=True))
        if not requests:
            return dg.SkipReason(f"no new or changed file among {len(seen)} source files")
        return requests

    return source_files_sensor


def _read_cursor(cursor: str | None) -> dict[str, dict]:
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
    except json.JSONDecodeError:
        return {}
    if not isinstance(state, dict) or state.get("v") != CURSOR_VERSION:
        return {}
    return state.get("files", {})


# -- which days a file covers -------------------------------------------------------------------


def file_dates(source: SourceFile, timezone: str) -> tuple[date, date] | None:
    """(first, last) day the file has data for, as its source reads them (`FileSource.file_dates`:
    the date column of a CSV file or report export, event timestamps as local days in
    `timezone`). None when that cannot be told (no header, no date column, an unreadable or
    damaged file); the sensor then refreshes the running quarter only."""
    try:
        return source.source.file_dates(source.path, source.kind, timezone)
    except (duckdb.Error, OSError, EOFError, UnicodeDecodeError):
        return None
