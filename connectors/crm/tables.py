"""CRM tables (docs/sources.md): the raw landing tables the API connector upserts into, its sync
state, the typed staging tables metrics read, and how metrics read them."""

from __future__ import annotations

from connectors.crm.properties import (
    BOOLEAN,
    CRM_PROPERTY_TYPES,
    NUMBER,
    PERSONAL_PROPERTIES,
    TIMESTAMP,
)
from connectors.crm.properties import TEXT as TEXT_PROPERTY
from connectors.spec import BOOL, NUMERIC, TEXT, TIME, SourceSpec
from connectors.tables import lineage_columns
from warehouse.tables import Column, Table

CRM_OBJECTS = ("companies", "contacts", "deals")


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

_SQL_TYPES = {
    NUMBER: "DOUBLE",
    TIMESTAMP: "TIMESTAMPTZ",
    BOOLEAN: "BOOLEAN",
    TEXT_PROPERTY: "VARCHAR",
}

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

TABLES = (*RAW_CRM_TABLES.values(), RAW_CRM_SYNC_STATE, *STAGING_CRM_TABLES.values())

_CRM_COMMON = {
    "id": TEXT,
    "createdate": TIME,
    "hs_lastmodifieddate": TIME,
    "archived": BOOL,
}
_ACTIVE = "NOT coalesce(archived, FALSE)"
"""Archived CRM records count nowhere."""

METRIC_SOURCES = (
    SourceSpec(
        "crm_deals",
        "staging.crm_deals",
        "closedate",
        {
            **_CRM_COMMON,
            "dealname": TEXT,
            "amount": NUMERIC,
            "dealstage": TEXT,
            "pipeline": TEXT,
            "closedate": TIME,
            "hs_is_closed_won": BOOL,
            "associated_company_id": TEXT,
        },
        row_filter=_ACTIVE,
    ),
    SourceSpec(
        "crm_companies",
        "staging.crm_companies",
        "createdate",
        {
            **_CRM_COMMON,
            "name": TEXT,
            "domain": TEXT,
            "industry": TEXT,
            "lifecyclestage": TEXT,
            "annualrevenue": NUMERIC,
            "country": TEXT,
        },
        row_filter=_ACTIVE,
    ),
    SourceSpec(
        "crm_contacts",
        "staging.crm_contacts",
        "createdate",
        {**_CRM_COMMON, "lifecyclestage": TEXT, "country": TEXT},
        row_filter=_ACTIVE,
    ),
)
