"""The sources, in one place: every metric source (`SourceSpec`) a metric may name, every
table the sources write, and the sources' descriptors the pipeline builds its raw and staging
assets, checks and file sensor from. The order (CSV, analytics, check-ins, CRM) is the order of
`allowed:` messages, assets and checks; the SQL-engine source (`sql_events`, aggregated in its
engine, see connectors.sql_engine) comes last."""

from __future__ import annotations

import connectors.analytics.tables as analytics
import connectors.checkins.tables as checkins
import connectors.crm.tables as crm
import connectors.csv_drop.tables as csv_drop
import connectors.sql_engine.tables as sql_engine
from connectors.analytics.source import SOURCE as ANALYTICS
from connectors.checkins.source import SOURCE as CHECKINS
from connectors.crm.source import SOURCE as CRM
from connectors.csv_drop.source import SOURCE as CSV_DROP
from connectors.source import ApiSource, FileSource, Source
from connectors.spec import SourceSpec
from connectors.tables import SHARED_TABLES
from warehouse.tables import Table

SOURCE_TABLES = (csv_drop, analytics, checkins, crm, sql_engine)
"""Each source's `tables` module: its `TABLES` and its `METRIC_SOURCES`."""

METRIC_SOURCES: dict[str, SourceSpec] = {
    spec.name: spec for module in SOURCE_TABLES for spec in module.METRIC_SOURCES
}
"""The staging tables metrics can read (docs/sources.md), by the name metrics.yaml uses."""

FILE_SOURCES: tuple[FileSource, ...] = (CSV_DROP, ANALYTICS, CHECKINS)
"""The sources read from folders of files under OKR_DATA_DIR."""
API_SOURCES: tuple[ApiSource, ...] = (CRM,)
"""The sources read from HTTP APIs (their assets exist when their base URL is set)."""
SOURCES: tuple[Source, ...] = (*FILE_SOURCES, *API_SOURCES)


def all_tables() -> tuple[Table, ...]:
    """Every table the sources write: the shared ones, then each source's."""
    return (*SHARED_TABLES, *(table for module in SOURCE_TABLES for table in module.TABLES))
