"""The descriptor of the CSV drop folder: what the pipeline builds its assets, checks and sensor
from (see connectors.source)."""

from connectors.csv_drop.extract import load_csv_folder
from connectors.csv_drop.staging import stage_csv_observations
from connectors.csv_drop.tables import RAW_CSV_OBSERVATIONS, STAGING_CSV_OBSERVATIONS
from connectors.source import FileSource, RawTable, StagedTable
from warehouse.staging import RawInput

SOURCE = FileSource(
    name="csv",
    folder="csv",
    folder_description="CSV drop folder",
    load=load_csv_folder,
    file_kind=lambda path: "csv" if path.name.endswith(".csv") else None,
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
