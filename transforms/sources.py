"""The staging tables metrics can read (docs/sources.md), each a `connectors.spec.SourceSpec`."""

from __future__ import annotations

from connectors.analytics.tables import METRIC_SOURCES as ANALYTICS_METRIC_SOURCES
from connectors.crm.tables import METRIC_SOURCES as CRM_METRIC_SOURCES
from connectors.csv_drop.tables import METRIC_SOURCE
from connectors.spec import SourceSpec

SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in (
        METRIC_SOURCE,
        *ANALYTICS_METRIC_SOURCES,
        *CRM_METRIC_SOURCES,
    )
}
