"""The descriptor of the CSV drop folder: what the pipeline builds its assets, checks and sensor
from (see connectors.source)."""

import csv
from datetime import date
from pathlib import Path

from connectors.csv_drop.extract import load_csv_folder
from connectors.csv_drop.staging import stage_csv_observations
from connectors.csv_drop.tables import RAW_CSV_OBSERVATIONS, STAGING_CSV_OBSERVATIONS
from connectors.files import column_date_range, first_line
from connectors.source import FileSource, RawTable, StagedTable
from warehouse.staging import RawInput


def file_dates(path: Path, kind: str, timezone: str) -> tuple[date, date] | None:
    """The range of the file's `date` column (found in its header, `;` or `,` separated)."""
    header = first_line(path)
    if header is None:
        return None
    delim = ";" if header.count(";") > header.count(",") else ","
    names = [name.strip() for name in next(csv.reader([header], delimiter=delim))]
    return column_date_range(path, delim, names.index("date")) if "date" in names else None


SOURCE = FileSource(
    name="csv",
    folder="csv",
    folder_description="CSV drop folder",
    load=load_csv_folder,
    file_kind=lambda path: "csv" if path.name.endswith(".csv") else None,
    file_dates=file_dates,
    raw=(
        RawTable(
            table=RAW_CSV_OBSERVATIONS,
            kinds=frozenset({"csv"}),
            description=(
                "Metric observations from the CSV drop folder (`$OKR_DATA_DIR/csv`), long and "
                "wide files. New or changed files replace the rows they loaded before; "
                "unparseable rows go to raw.rejected_rows with file and line."
            ),
            metric_source="csv_observations",
            time_column="date",
        ),
    ),
    staged=(
        StagedTable(
            table=STAGING_CSV_OBSERVATIONS,
            raw=RAW_CSV_OBSERVATIONS,
            stage=lambda con, start, end, timezone: stage_csv_observations(con, start, end),
            raw_days=lambda timezone: RawInput(RAW_CSV_OBSERVATIONS, "date"),
            future_column="date",
        ),
    ),
)
