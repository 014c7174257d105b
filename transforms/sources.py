"""The staging tables metrics can read (docs/sources.md), each a `connectors.spec.SourceSpec`."""

from __future__ import annotations

from connectors.analytics.tables import METRIC_SOURCES as ANALYTICS_METRIC_SOURCES
from connectors.csv_drop.tables import METRIC_SOURCE
from connectors.spec import BOOL, NUMERIC, TEXT, TIME, SourceSpec

_CRM_COMMON = {
    "id": TEXT,
    "createdate": TIME,
    "hs_lastmodifieddate": TIME,
    "archived": BOOL,
}

SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in (
        METRIC_SOURCE,
        *ANALYTICS_METRIC_SOURCES,
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
        ),
        SourceSpec(
            "crm_contacts",
            "staging.crm_contacts",
            "createdate",
            {**_CRM_COMMON, "lifecyclestage": TEXT, "country": TEXT},
        ),
    )
}
