"""Check-ins beside the data (docs/checkins.md): each KR row carries its owner's latest
confidence and comment, and `marts.key_result_checkins` keeps every check-in with the status the
data gave the KR that day, so a KR whose owner's confidence disagrees with its computed status
(high confidence while off track, low while on track) is flagged where people look."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from connectors.checkins.tables import CONFIDENCE_LEVEL_TEXT, STAGING_CHECKINS
from transforms.calendar import Quarter
from transforms.config import OkrConfig
from transforms.tables import flag_description, quarter_columns
from warehouse.tables import Column, Table
from warehouse.writes import table_exists

FLAGS = {
    ("high", "off_track"): "high_confidence_off_track",
    ("low", "on_track"): "low_confidence_on_track",
}
"""(confidence level, status) pairs that disagree, and the flag each gets."""

MARTS_KEY_RESULT_CHECKINS = Table(
    "marts",
    "key_result_checkins",
    "Check-in history: one row per check-in (KR, day, author) in the quarters computed, with the "
    "status the data gave the KR that day.",
    (
        Column("kr_id", "VARCHAR", "Key result the check-in is about.", False),
        Column("checkin_date", "DATE", "Day of the check-in.", False),
        Column("author", "VARCHAR", "Who checked in."),
        *quarter_columns(),
        Column("objective_id", "VARCHAR", "The KR's objective; null for a KR id okrs.yaml lacks."),
        Column("kr_title", "VARCHAR", "The KR's title; null for a KR id okrs.yaml lacks."),
        Column("team", "VARCHAR", "Team of the KR's objective."),
        Column(
            "confidence", "DOUBLE", "Owner's confidence, 0-10; null when only a value was given."
        ),
        Column("confidence_level", "VARCHAR", f"{CONFIDENCE_LEVEL_TEXT}."),
        Column("comment", "VARCHAR", "What the owner said."),
        Column("value", "DOUBLE", "The value checked in (a manual KR's measured value)."),
        Column(
            "kr_status",
            "VARCHAR",
            "The KR's status computed from the data for that day (marts.key_result_progress_daily);"
            " null when the day is outside the KR's window.",
        ),
        Column("confidence_flag", "VARCHAR", flag_description("kr_status")),
        Column("_source_ref", "VARCHAR", "File the check-in came from.", False),
        Column("_source_row", "BIGINT", "Its line in that file."),
    ),
    primary_key=("kr_id", "checkin_date", "author"),
    partition_column="quarter_start",
)


def read_checkins(
    con: duckdb.DuckDBPyConnection, quarters: list[Quarter], today: date
) -> pl.DataFrame:
    """The staged check-ins dated in `quarters` up to `today`, with their quarter."""
    columns = [c for c in STAGING_CHECKINS.column_names if c != "_batch_id"]
    frame = STAGING_CHECKINS.frame([]).select(columns)
    if quarters and table_exists(con, STAGING_CHECKINS):
        frame = con.sql(
            f"SELECT {', '.join(columns)} FROM {STAGING_CHECKINS.fqn} "
            "WHERE quarter_start IN (SELECT unnest(?::DATE[])) AND date <= ?",
            params=[[q.start for q in quarters], today],
        ).pl()
    labels = {q.start: q.label for q in quarters}
    return frame.with_columns(
        quarter=pl.col("quarter_start").replace_strict(labels, return_dtype=pl.String)
    )


def checkin_kr_ids(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Every KR id the staged check-ins name (for `marts.okr_lint`)."""
    if not table_exists(con, STAGING_CHECKINS):
        return frozenset()
    rows = con.execute(f"SELECT DISTINCT kr_id FROM {STAGING_CHECKINS.fqn}").fetchall()
    return frozenset(kr_id for (kr_id,) in rows)


def _flag(level: str, status: str) -> pl.Expr:
    return pl.concat_str(pl.col(level), pl.col(status), separator="|").replace_strict(
        {f"{lv}|{st}": flag for (lv, st), flag in FLAGS.items()},
        default=None,
        return_dtype=pl.String,
    )


def with_latest_checkins(kr_rows: pl.DataFrame, checkins: pl.DataFrame) -> pl.DataFrame:
    """`kr_rows` (marts.key_result_attainment) with CHECKIN_COLUMNS: per KR and quarter, the
    latest check-in dated from the quarter's start to the row's as_of_date (the latest day, then
    the last author in alphabetical order), and its flag against display_status."""
    latest = (
        checkins.join(
            kr_rows.select("kr_id", "quarter_start", "as_of_date"),
            on=["kr_id", "quarter_start"],
        )
        .filter(pl.col("date") <= pl.col("as_of_date"))
        .sort("kr_id", "quarter_start", "date", "author", nulls_last=False)
        .group_by("kr_id", "quarter_start", maintain_order=True)
        .last()
        .select(
            "kr_id",
            "quarter_start",
            checkin_date="date",
            confidence="confidence",
            confidence_level="confidence_level",
            checkin_comment="comment",
            checkin_author="author",
        )
    )
    return kr_rows.join(latest, on=["kr_id", "quarter_start"], how="left").with_columns(
        confidence_flag=_flag("confidence_level", "display_status")
    )


def key_result_checkins(
    config: OkrConfig, checkins: pl.DataFrame, progress_daily: pl.DataFrame
) -> pl.DataFrame:
    """marts.key_result_checkins: every check-in with its KR's details and that day's status."""
    krs = pl.DataFrame(
        {
            "kr_id": list(config.key_results),
            "objective_id": [r.objective.id for r in config.key_results.values()],
            "kr_title": [r.kr.title for r in config.key_results.values()],
            "team": [r.objective.team for r in config.key_results.values()],
        },
        schema={
            "kr_id": pl.String,
            "objective_id": pl.String,
            "kr_title": pl.String,
            "team": pl.String,
        },
    )
    statuses = progress_daily.select("kr_id", date="as_of_date", kr_status="status")
    return (
        checkins.join(krs, on="kr_id", how="left")
        .join(statuses, on=["kr_id", "date"], how="left")
        .with_columns(confidence_flag=_flag("confidence_level", "kr_status"))
        .rename({"date": "checkin_date"})
        .sort("quarter_start", "kr_id", "checkin_date", "author", nulls_last=False)
        .select(MARTS_KEY_RESULT_CHECKINS.column_names)
    )
