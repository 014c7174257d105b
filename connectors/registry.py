"""The sources, in one place."""

from __future__ import annotations

from connectors.analytics.source import SOURCE as ANALYTICS
from connectors.csv_drop.source import SOURCE as CSV_DROP
from connectors.source import FileSource

FILE_SOURCES: tuple[FileSource, ...] = (CSV_DROP, ANALYTICS)
"""The file sources, in the order their assets, checks and files are listed."""
