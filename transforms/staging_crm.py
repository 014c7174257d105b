"""CRM tables (docs/sources.md): the raw landing tables the API connector upserts into, its sync
state, and the typed staging tables metrics read.

Raw keeps each record as the API sent it: `properties` is the JSON object of strings, exactly
as received. The typed conversion of those strings lives here, in `convert_properties`, and is
used twice: by the connector to reject a record that does not convert (so raw only ever holds
records that do), and by `stage_crm` to build the staging rows. One function, so the two can
never disagree about what a valid `amount` or `closedate` is.

Property types (HubSpot sends every property value as a string):
- number: a plain decimal (`12`, `-3.5`, `1e6`); anything else (`12,3x`, `NaN`) is rejected.
- timestamp: milliseconds since the epoch (`1735689600000`), or ISO-8601 (`2025-01-01`,
  `2025-01-01T10:00:00Z`, `...+02:00`); a value without an offset is UTC.
- boolean: `true` / `false` (any case).
- text: as sent.
An empty string or a missing property is null for every type.

Contacts carry personal data in the CRM (email, names, phone). The connector never requests
those properties, and staging lists its columns explicitly, so personal data reaches neither
raw nor staging (and therefore never the marts or the BI snapshot).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from connectors.tables import lineage_columns
from warehouse.tables import Column, Table

CRM_OBJECTS = ("companies", "contacts", "deals")

NUMBER, TIMESTAMP, BOOLEAN, TEXT = "number", "timestamp", "boolean", "text"

_COMMON = {"createdate": TIMESTAMP, "hs_lastmodifieddate": TIMESTAMP}

CRM_PROPERTY_TYPES: dict[str, dict[str, str]] = {
    "companies": {
        "name": TEXT,
        "domain": TEXT,
        "industry": TEXT,
        "lifecyclestage": TEXT,
        "annualrevenue": NUMBER,
        "country": TEXT,
        **_COMMON,
    },
    "contacts": {"lifecyclestage": TEXT, "country": TEXT, **_COMMON},
    "deals": {
        "dealname": TEXT,
        "amount": NUMBER,
        "dealstage": TEXT,
        "pipeline": TEXT,
        "closedate": TIMESTAMP,
        "hs_is_closed_won": BOOLEAN,
        "associated_company_id": TEXT,
        **_COMMON,
    },
}
"""Per object, the properties the connector requests and staging carries, with their type.
Contacts' personal properties (email, firstname, lastname, phone) are deliberately absent."""

PERSONAL_PROPERTIES = {"contacts": ("email", "firstname", "lastname", "phone")}

_NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_EPOCH_MS_RE = re.compile(r"-?\d{1,15}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ConversionError(ValueError):
    """A property value that does not convert to its type; `field` names the property."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_timestamp(value: Any) -> datetime | None:
    """A CRM timestamp (ms epoch or ISO-8601, UTC when no offset) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a timestamp")
    if isinstance(value, int | float):
        text = str(int(value)) if float(value).is_integer() else ""
    else:
        text = str(value).strip()
    if text == "":
        return None
    if _EPOCH_MS_RE.fullmatch(text):
        try:
            return _EPOCH + timedelta(milliseconds=int(text))
        except OverflowError:
            raise ValueError(f"{text!r} is out of range for a timestamp") from None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a timestamp; expected milliseconds since the epoch or ISO-8601 "
            "such as 2025-01-31 or 2025-01-31T10:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def to_epoch_ms(value: datetime) -> int:
    """Milliseconds since the epoch, rounded down (so a GTE filter stays inclusive)."""
    delta = value.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def convert_value(kind: str, value: Any) -> Any:
    """One property value (a string, as the API sends it) converted to `kind`; raises
    ValueError with a readable reason."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if kind == TEXT:
        return value if isinstance(value, str) else json.dumps(value)
    if kind == NUMBER:
        text = str(value).strip()
        number = float(text) if _NUMBER_RE.fullmatch(text) else math.nan
        if not math.isfinite(number):
            raise ValueError(
                f"{text!r} is not a number; expected a plain decimal such as 12, -3.5 or 1e6"
            )
        return number
    if kind == BOOLEAN:
        text = str(value).strip().lower()
        if text not in ("true", "false"):
            raise ValueError(f"{value!r} is not a boolean; expected true or false")
        return text == "true"
    if kind == TIMESTAMP:
        return parse_timestamp(value)
    raise AssertionError(f"unknown property type {kind}")


def convert_properties(crm_object: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The object's typed properties (every property of `CRM_PROPERTY_TYPES`, null when absent).
    Raises ConversionError for the first property that does not convert; its message lists
    every failing property."""
    typed: dict[str, Any] = {}
    errors: list[tuple[str, str]] = []
    for name, kind in CRM_PROPERTY_TYPES[crm_object].items():
        try:
            typed[name] = convert_value(kind, properties.get(name))
        except ValueError as exc:
            errors.append((name, f"{name} {exc}"))
    if errors:
        raise ConversionError(errors[0][0], "; ".join(message for _, message in errors))
    return typed


# ----------------------------------------------------------------------------------- tables


def _raw_table(crm_object: str) -> Table:
    return Table(
        "raw",
        f"crm_{crm_object}",
        f"CRM {crm_object} as the API returned them, one row per record id (upserted: a record "
        "is replaced only by a version with a later updatedAt). Archived records are flagged, "
        "never deleted. Records whose properties do not convert are in raw.rejected_rows.",
        (
            Column("id", "VARCHAR", "CRM record id (HubSpot hs_object_id).", False),
            Column(
                "properties",
                "JSON",
                "The requested properties as a JSON object of strings, exactly as received.",
                False,
            ),
            Column("created_at", "TIMESTAMPTZ", "Record createdAt."),
            Column(
                "updated_at",
                "TIMESTAMPTZ",
                "Record updatedAt: the version of the row (newer versions replace older).",
                False,
            ),
            Column(
                "archived",
                "BOOLEAN",
                "True when the record is archived (deleted) in the CRM.",
                False,
            ),
            Column("archived_at", "TIMESTAMPTZ", "Record archivedAt, for archived records."),
            Column(
                "hs_lastmodifieddate",
                "TIMESTAMPTZ",
                "Last modification time: what incremental syncs filter on (the watermark).",
            ),
            *lineage_columns(),
        ),
        primary_key=("id",),
    )


RAW_CRM_TABLES: dict[str, Table] = {name: _raw_table(name) for name in CRM_OBJECTS}
RAW_CRM_COMPANIES = RAW_CRM_TABLES["companies"]
RAW_CRM_CONTACTS = RAW_CRM_TABLES["contacts"]
RAW_CRM_DEALS = RAW_CRM_TABLES["deals"]

RAW_CRM_SYNC_STATE = Table(
    "raw",
    "crm_sync_state",
    "One row per CRM object: the incremental-sync watermark, written in the same transaction as "
    "the records it covers, so it never runs ahead of the data.",
    (
        Column("object", "VARCHAR", "CRM object (companies, contacts, deals).", False),
        Column(
            "watermark",
            "TIMESTAMPTZ",
            "Latest hs_lastmodifieddate synced; the next incremental sync searches from it (GTE).",
        ),
        Column("last_sync_at", "TIMESTAMPTZ", "When the last successful sync committed.", False),
        Column(
            "mode",
            "VARCHAR",
            "full (list endpoint), incremental (search endpoint) or full_fallback (incremental "
            "that had to list everything because more records than the search cap share one "
            "modification time).",
            False,
        ),
        Column("batch_id", "VARCHAR", "Batch id of the last successful sync.", False),
        Column("pages_fetched", "BIGINT", "Pages fetched by the last sync.", False),
        Column(
            "records_upserted", "BIGINT", "Records inserted or updated by the last sync.", False
        ),
        Column("records_rejected", "BIGINT", "Records rejected by the last sync.", False),
    ),
    primary_key=("object",),
)

_SQL_TYPES = {NUMBER: "DOUBLE", TIMESTAMP: "TIMESTAMPTZ", BOOLEAN: "BOOLEAN", TEXT: "VARCHAR"}

_DESCRIPTIONS = {
    "name": "Company name.",
    "domain": "Company web domain.",
    "industry": "Industry (HubSpot industry property).",
    "lifecyclestage": "Lifecycle stage (subscriber, lead, ..., customer).",
    "annualrevenue": "Annual revenue.",
    "country": "Country.",
    "createdate": "When the record was created in the CRM (the default time column).",
    "hs_lastmodifieddate": "When the record was last modified in the CRM.",
    "dealname": "Deal name.",
    "amount": "Deal amount.",
    "dealstage": "Deal stage (appointmentscheduled, qualifiedtobuy, closedwon, closedlost, ...).",
    "pipeline": "Sales pipeline of the deal.",
    "closedate": "Close date (expected close date for open deals; the default time column).",
    "hs_is_closed_won": "True when the deal is closed won.",
    "associated_company_id": "Id of the company the deal is associated with.",
}

_TIME_COLUMN = {"companies": "createdate", "contacts": "createdate", "deals": "closedate"}


def _staging_table(crm_object: str) -> Table:
    properties = CRM_PROPERTY_TYPES[crm_object]
    personal = PERSONAL_PROPERTIES.get(crm_object)
    note = f" Personal data ({', '.join(personal)}) is not carried." if personal else ""
    return Table(
        "staging",
        f"crm_{crm_object}",
        f"Typed CRM {crm_object}, one row per record id: the whole current state (unpartitioned), "
        f"archived records included and flagged. Columns are the HubSpot property names. Default "
        f"time column: {_TIME_COLUMN[crm_object]}.{note}",
        (
            Column("id", "VARCHAR", "CRM record id.", False),
            *(
                Column(name, _SQL_TYPES[kind], _DESCRIPTIONS.get(name, name))
                for name, kind in properties.items()
            ),
            Column(
                "archived",
                "BOOLEAN",
                "True when the record is archived (deleted) in the CRM; metrics exclude these.",
                False,
            ),
            Column("_source_ref", "VARCHAR", "API path and page cursor the row came from.", False),
            Column("_batch_id", "VARCHAR", "Sync batch that loaded the row.", False),
        ),
        primary_key=("id",),
    )


STAGING_CRM_TABLES: dict[str, Table] = {name: _staging_table(name) for name in CRM_OBJECTS}
STAGING_CRM_COMPANIES = STAGING_CRM_TABLES["companies"]
STAGING_CRM_CONTACTS = STAGING_CRM_TABLES["contacts"]
STAGING_CRM_DEALS = STAGING_CRM_TABLES["deals"]


def stage_crm(con: duckdb.DuckDBPyConnection, crm_object: str) -> pa.Table:
    """`staging.crm_<object>`: every record of `raw.crm_<object>` (the current state), typed.

    Raw only holds records whose properties converted when they were loaded; should one not
    convert now (e.g. loaded by an older version), its unconvertible fields are null.
    """
    if crm_object not in CRM_OBJECTS:
        raise ValueError(f"unknown CRM object {crm_object!r}; expected one of {CRM_OBJECTS}")
    raw, staging = RAW_CRM_TABLES[crm_object], STAGING_CRM_TABLES[crm_object]
    raw.create(con)
    rows = con.execute(
        f"SELECT id, properties::VARCHAR, archived, _source_ref, _batch_id FROM {raw.fqn} "
        "ORDER BY TRY_CAST(id AS HUGEINT) NULLS LAST, id"
    ).fetchall()
    kinds = CRM_PROPERTY_TYPES[crm_object]
    columns: dict[str, list[Any]] = {name: [] for name in staging.column_names}
    for record_id, properties_json, archived, source_ref, batch_id in rows:
        properties = json.loads(properties_json)
        try:
            typed = convert_properties(crm_object, properties)
        except ConversionError:
            typed = {}
            for name, kind in kinds.items():
                try:
                    typed[name] = convert_value(kind, properties.get(name))
                except ValueError:
                    typed[name] = None
        columns["id"].append(record_id)
        for name in kinds:
            columns[name].append(typed[name])
        columns["archived"].append(bool(archived))
        columns["_source_ref"].append(source_ref)
        columns["_batch_id"].append(batch_id)
    return pa.table(columns, schema=staging.arrow_schema())
