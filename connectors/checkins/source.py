"""The descriptor of the check-ins folder: what the pipeline builds its assets, checks and sensor
from (see connectors.source)."""

from connectors.checkins.extract import file_dates, is_checkin_file, load_checkins_folder
from connectors.checkins.staging import stage_checkins
from connectors.checkins.tables import RAW_CHECKINS, STAGING_CHECKINS
from connectors.source import FileSource, RawTable, StagedTable
from warehouse.staging import RawInput

SOURCE = FileSource(
    name="checkins",
    folder="checkins",
    folder_description="check-ins folder",
    max_age_days=7,  # owners check in weekly
    load=load_checkins_folder,
    file_kind=lambda path: "checkins" if is_checkin_file(path) else None,
    file_dates=file_dates,
    raw=(
        RawTable(
            table=RAW_CHECKINS,
            kinds=frozenset({"csv", "yaml"}),
            description=(
                "KR owners' check-ins (confidence, comment, optional value) from the check-ins "
                "folder (`$OKR_DATA_DIR/checkins`), CSV and YAML files. New or changed files "
                "replace the rows they loaded before; invalid check-ins go to "
                "raw.rejected_rows with file, line and field."
            ),
            metric_source="checkins",
            time_column="date",
        ),
    ),
    staged=(
        StagedTable(
            table=STAGING_CHECKINS,
            raw=RAW_CHECKINS,
            stage=lambda con, start, end, timezone: stage_checkins(con, start, end),
            raw_days=lambda timezone: RawInput(RAW_CHECKINS, "date"),
            future_column="date",
        ),
    ),
)
