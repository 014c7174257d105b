"""The descriptor of the CRM: what the pipeline builds its assets and checks from (see
connectors.source). The API client is imported when a sync runs, so loading the definitions does
not pay for `requests`."""

from __future__ import annotations

from typing import Any

from connectors.crm.staging import stage_crm
from connectors.crm.tables import CRM_OBJECTS, RAW_CRM_TABLES, STAGING_CRM_TABLES
from connectors.source import ApiSource, Connection, RawTable, RefreshedTable, SyncReport

BASE_URL_ENV = "CRM_API_BASE_URL"
TOKEN_ENV = "CRM_API_TOKEN"


def _client(base_url: str, token: str, read_timeout: float) -> Any:
    from connectors.crm.api import CrmClient

    return CrmClient(base_url, token, timeout=(5.0, read_timeout))


def _sync(con: Connection, client: Any) -> SyncReport:
    from connectors.crm.api import sync_crm

    return sync_crm(con, client)


SOURCE = ApiSource(
    name="crm",
    description="The CRM REST API (HubSpot v3 shape)",
    base_url_env=BASE_URL_ENV,
    token_env=TOKEN_ENV,
    client=_client,
    sync=_sync,
    raw=tuple(
        RawTable(
            table=RAW_CRM_TABLES[name],
            kinds=frozenset({"api"}),
            description=RAW_CRM_TABLES[name].description,
            metric_source=f"crm_{name}",
            time_column="updated_at",
        )
        for name in CRM_OBJECTS
    ),
    staged=tuple(
        RefreshedTable(
            table=STAGING_CRM_TABLES[name],
            raw=RAW_CRM_TABLES[name],
            build=lambda con, name=name: stage_crm(con, name),
            # createdate, not closedate: an open deal's expected close date may well be ahead.
            future_column="createdate",
        )
        for name in CRM_OBJECTS
    ),
)
