"""The data dictionary page is generated from the table definitions and kept up to date."""

from bi.dictionary import all_tables, render
from pipelines.settings import PROJECT_ROOT


def test_the_committed_data_dictionary_is_current():
    page = (PROJECT_ROOT / "docs" / "data_dictionary.md").read_text()
    assert page == render(), "run: .venv/bin/python -m bi.dictionary > docs/data_dictionary.md"


def test_every_mart_is_documented_column_by_column():
    marts = [t for t in all_tables() if t.schema == "marts"]
    assert {"key_result_attainment", "objective_attainment", "okr_lint"} <= {t.name for t in marts}
    for table in marts:
        assert table.description
        assert all(column.description for column in table.columns), table.fqn
