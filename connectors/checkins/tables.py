"""The check-ins source's tables (each a `warehouse.tables.Table`), the confidence scale, and how
metrics read `staging.checkins` (a KR with `metric: manual` reads its `value`)."""

from __future__ import annotations

from connectors.spec import NUMERIC, TEXT, TIME, SourceSpec
from connectors.tables import lineage_columns, staged_lineage_columns
from warehouse.tables import Column, Table

CONFIDENCE_WORDS = {"low": 2.0, "medium": 5.0, "high": 8.0}
"""Words a check-in may give instead of a number on the 0-10 scale (docs/checkins.md)."""
CONFIDENCE_LEVELS = (("low", 4.0), ("medium", 7.0), ("high", None))
"""Each level and the confidence it reaches up to (exclusive): 0 <= low < 4 <= medium < 7 <=
high <= 10."""
MAX_CONFIDENCE = 10.0
_LOW, _MEDIUM = (f"{limit:g}" for _, limit in CONFIDENCE_LEVELS[:2])
CONFIDENCE_LEVEL_TEXT = f"low (< {_LOW}), medium ({_LOW} to < {_MEDIUM}) or high (>= {_MEDIUM})"
"""The levels as the column comments state them."""

_CHECKIN_COLUMNS = (
    Column("date", "DATE", "Day of the check-in (ISO in the file).", False),
    Column("kr_id", "VARCHAR", "Key result the check-in is about (its id in okrs.yaml).", False),
    Column(
        "confidence",
        "DOUBLE",
        "Owner's confidence that the KR will be achieved, 0-10 (low = 2, medium = 5, high = 8 "
        "when given as a word); null when the check-in gives only a value.",
    ),
    Column("value", "DOUBLE", "The KR's value as the owner reports it (manual KRs read it)."),
    Column("comment", "VARCHAR", "What the owner says about the KR."),
    Column("author", "VARCHAR", "Who checked in."),
)

RAW_CHECKINS = Table(
    "raw",
    "checkins",
    "Check-ins from the check-ins folder (CSV and YAML files), as landed.",
    (
        *_CHECKIN_COLUMNS[:3],
        Column("confidence_text", "VARCHAR", "Confidence as written in the file."),
        *_CHECKIN_COLUMNS[3:],
        *lineage_columns(),
    ),
)

STAGING_CHECKINS = Table(
    "staging",
    "checkins",
    "Typed check-ins, one row per (date, kr_id, author): a later file's row replaces an "
    "earlier file's. Partitioned by quarter.",
    (
        *_CHECKIN_COLUMNS,
        Column(
            "confidence_level",
            "VARCHAR",
            f"{CONFIDENCE_LEVEL_TEXT}; null without a confidence.",
        ),
        *staged_lineage_columns("date"),
    ),
    primary_key=("date", "kr_id", "author"),
    partition_column="quarter_start",
)

TABLES = (RAW_CHECKINS, STAGING_CHECKINS)

METRIC_SOURCES = (
    SourceSpec(
        "checkins",
        STAGING_CHECKINS.fqn,
        "date",
        {
            "date": TIME,
            "kr_id": TEXT,
            "confidence": NUMERIC,
            "value": NUMERIC,
            "comment": TEXT,
            "author": TEXT,
            "confidence_level": TEXT,
        },
    ),
)
