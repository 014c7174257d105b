"""`okr` and `make backfill` as a new user types them, on a fresh warehouse: a backfill of any
range builds the history it reads in the same run and gives the numbers of a backfill from the
first quarter; every mistake is one line and exit status 2 before any run starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from test_operations import MARTS
from test_pipeline import export, write_project

import pipelines.cli as cli
from pipelines.cli import main
from pipelines.instance import prepare_dagster_home
from pipelines.settings import DEFAULT_DAGSTER_HOME, INSTANCE_TEMPLATE, PROJECT_ROOT, Settings

HISTORY_TAG = "okr/history_quarters"


@pytest.fixture
def env(tmp_path: Path, monkeypatch) -> Settings:
    """The small project of test_pipeline (objectives from 2025-Q1, visits from 2024-10-01,
    CSAT on Jan 1 and Apr 1) as the environment `okr` reads, with its own empty instance."""
    settings = write_project(tmp_path)
    export(settings, monkeypatch)
    monkeypatch.setenv("OKR_AS_OF", str(settings.as_of))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return settings


def runs() -> list[dg.DagsterRun]:
    if not Path(os.environ["DAGSTER_HOME"]).exists():
        return []
    with dg.DagsterInstance.get() as instance:
        return list(instance.get_runs())


def marts(warehouse: Path, quarters: tuple[str, ...] | None = None) -> dict[str, list[tuple]]:
    """Every mart's rows (of `quarters` only, when given), in a stable order."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        where = ""
        if quarters:
            where = f" WHERE quarter IN ({', '.join(repr(q) for q in quarters)})"
        return {
            table: con.execute(f"SELECT * FROM marts.{table}{where} ORDER BY ALL").fetchall()
            for table in MARTS
        }


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("okr: "), captured.err
    return lines[0]


# -- backfills build their own history ----------------------------------------------------------


def test_a_backfill_of_a_later_quarter_on_an_empty_warehouse_builds_its_history(
    env: Settings, tmp_path: Path, capsys
):
    # 2025-Q2 reads 2025-Q1 (the CSAT KR's first value) and 2024-Q4 (the visits KR's auto
    # baseline): one run builds their staging, says so, and writes the marts of 2025-Q2 only.
    assert main(["backfill", "2025-Q2"]) == 0
    out = capsys.readouterr().out
    assert "2025-Q2..2025-Q2" in out
    assert "also built staging for 2024-Q4, 2025-Q1 as history" in out
    [run] = runs()
    assert run.tags[HISTORY_TAG] == "2024-Q4,2025-Q1"
    with duckdb.connect(str(env.warehouse), read_only=True) as con:
        assert con.execute(
            "SELECT DISTINCT quarter FROM marts.key_result_attainment ORDER BY 1"
        ).fetchall() == [("2025-Q2",)]
        assert con.execute(
            "SELECT DISTINCT quarter_start::VARCHAR FROM staging.csv_observations ORDER BY 1"
        ).fetchall() == [("2024-10-01",), ("2025-01-01",), ("2025-04-01",)]

    # The same numbers as a backfill that started from the first quarter.
    (tmp_path / "full").mkdir()
    full = write_project(tmp_path / "full")
    os.environ["OKR_WAREHOUSE"] = str(full.warehouse)
    assert main(["backfill"]) == 0
    later = marts(env.warehouse)
    assert later["key_result_attainment"]  # not vacuous
    assert marts(full.warehouse, ("2025-Q2",)) == later


def test_a_rerun_rebuilds_history_whose_raw_data_changed(env: Settings, capsys):
    assert main(["backfill", "2025-Q2"]) == 0
    capsys.readouterr()
    assert main(["backfill", "2025-Q2"]) == 0  # nothing changed: no history rebuilt
    assert "as history" not in capsys.readouterr().out
    # A late file for December changes the visits KR's auto baseline (its window Oct 3..Dec 31).
    (env.data_dir / "csv" / "late.csv").write_text("date,metric_id,value\n2024-12-31,visits,90\n")
    assert main(["backfill", "2025-Q2"]) == 0
    assert "also built staging for 2024-Q4 as history" in capsys.readouterr().out
    assert main(["backfill", "2025-Q1"]) == 0
    with duckdb.connect(str(env.warehouse), read_only=True) as con:
        [(baseline,)] = con.execute(
            "SELECT baseline FROM marts.key_result_attainment WHERE kr_id = 'kr-visits-q1'"
        ).fetchall()
    assert baseline == 900 - 10 + 90  # the later file's Dec 31 replaces the 10 of visits.csv


def test_a_corrected_wide_file_rebuilds_the_history_it_changes(env: Settings, capsys):
    # Every cell of a wide line shares the line's lineage: a fingerprint must still see a value
    # change that keeps every row count (here, two cells per line).
    visits = env.data_dir / "csv" / "visits.csv"
    lines = visits.read_text().splitlines()
    visits.write_text("\n".join(["date,visits,signups", *(f"{x},1" for x in lines[1:])]) + "\n")
    assert main(["backfill", "2025-Q1"]) == 0
    assert "also built staging for 2024-Q4 as history" in capsys.readouterr().out
    corrected = [line.replace(",10,", ",20,") for line in visits.read_text().splitlines()]
    visits.write_text("\n".join(corrected) + "\n")
    assert main(["backfill", "2025-Q1"]) == 0
    assert "also built staging for 2024-Q4 as history" in capsys.readouterr().out
    with duckdb.connect(str(env.warehouse), read_only=True) as con:
        [(baseline,)] = con.execute(
            "SELECT baseline FROM marts.key_result_attainment WHERE kr_id = 'kr-visits-q1'"
        ).fetchall()
    assert baseline == 90 * 20  # the 90 days before S, now at 20 a day


def test_a_range_starting_before_the_first_reported_quarter_starts_there(env: Settings, capsys):
    assert main(["backfill", "2024-Q3", "2025-Q1"]) == 0
    out = capsys.readouterr().out
    assert "starting at 2025-Q1, the first quarter an objective or key result reports in" in out
    assert "2025-Q1..2025-Q1" in out


def test_make_backfill_without_from_runs_from_the_first_quarter(env: Settings):
    result = subprocess.run(
        ["make", "--no-print-directory", "backfill", "TO=2025-Q2"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "for 2025-Q1..2025-Q2" in result.stdout
    with duckdb.connect(str(env.warehouse), read_only=True) as con:
        assert con.execute(
            "SELECT DISTINCT quarter FROM marts.objective_attainment ORDER BY 1"
        ).fetchall() == [("2025-Q1",), ("2025-Q2",)]


def test_okr_and_make_share_one_default_instance():
    environment = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "dev"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"mkdir -p {DEFAULT_DAGSTER_HOME}\n" in dry_run


def test_okr_without_dagster_home_runs_in_the_default_instance(
    env: Settings, tmp_path: Path, monkeypatch
):
    home = tmp_path / "default_home"  # stands in for var/dagster_home, which tests leave alone
    monkeypatch.setattr(cli, "DEFAULT_DAGSTER_HOME", home)
    monkeypatch.delenv("DAGSTER_HOME")
    assert main(["backfill", "2025-Q1"]) == 0
    written = yaml.safe_load((home / "dagster.yaml").read_text())
    assert written["storage"]["custom"]["config"]["base_dir"] == str(home.resolve())
    assert {**written, "storage": None} == {**yaml.safe_load(INSTANCE_TEMPLATE.read_text()), "storage": None}
    assert os.environ["DAGSTER_HOME"] == str(home)
    assert len(runs()) == 1


def test_a_kr_not_started_on_the_as_of_day_passes_the_checks_and_is_published(
    env: Settings, capsys
):
    (env.config_dir / "okrs.yaml").write_text(
        "objectives:\n"
        "  - id: care-q2\n    title: Care\n    team: support\n    period: 2025-Q2\n"
        "    key_results:\n"
        "      - {id: kr-csat-june, title: CSAT to 90 in June, metric: csat, type: increase,\n"
        "         baseline: 70, target: 90, period: {start: 2025-06-01, end: 2025-06-30}}\n"
        "      - {id: kr-visits-june, title: Visits held, metric: visits, type: maintain_above,\n"
        "         target: 10, period: {start: 2025-06-01, end: 2025-06-30}}\n"
    )
    assert main(["backfill", "2025-Q2"]) == 0  # the blocking checks pass
    query = (
        "SELECT kr_id, progress, expected_progress, status FROM marts.key_result_attainment "
        "ORDER BY kr_id"
    )
    expected = [
        ("kr-csat-june", None, 0.0, "not_started"),
        ("kr-visits-june", None, 0.0, "not_started"),
    ]
    for path in (env.warehouse, env.bi_snapshot):  # and the BI snapshot was published
        with duckdb.connect(str(path), read_only=True) as con:
            assert con.execute(query).fetchall() == expected


def test_okr_as_of_later_than_the_real_running_quarter_is_today_for_the_partitions(
    env: Settings, monkeypatch, capsys
):
    monkeypatch.setenv("OKR_AS_OF", "2099-08-20")
    assert main(["backfill", "2099-Q3"]) == 0
    assert "2099-Q3..2099-Q3" in capsys.readouterr().out
    with duckdb.connect(str(env.warehouse), read_only=True) as con:
        assert con.execute(
            "SELECT DISTINCT quarter, max(as_of_date)::VARCHAR FROM marts.success_metric_summary "
            "GROUP BY quarter"
        ).fetchall() == [("2099-Q3", "2099-08-20")]


def test_last_reads_a_value_older_than_the_first_partition(env: Settings, capsys):
    # The KR starts in 2025-Q3, so partitions start there; its only CSAT value is of 2024-11.
    okrs = env.config_dir / "okrs.yaml"
    okrs.write_text(
        "objectives:\n"
        "  - id: care-q3\n    title: Care\n    team: support\n    period: 2025-Q3\n"
        "    key_results:\n"
        "      - {id: kr-csat-q3, title: CSAT to 90, metric: csat, type: increase,\n"
        "         baseline: auto, target: 90}\n"
    )
    (env.data_dir / "csv" / "csat.csv").write_text("date,metric_id,value\n2024-11-15,csat,72\n")
    os.environ["OKR_AS_OF"] = "2025-08-01"
    assert main(["backfill", "2025-Q3"]) == 0
    assert "also built staging for 2024-Q4, 2025-Q1, 2025-Q2 as history" in capsys.readouterr().out
    with duckdb.connect(str(env.warehouse), read_only=True) as con:
        assert con.execute(
            "SELECT baseline, current_value, progress, status FROM marts.key_result_attainment"
        ).fetchall() == [(72.0, 72.0, 0.0, "off_track")]


# -- mistakes: one line, status 2, no run ----------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backfill", "2025-Q2", "2025-Q1"], "the range 2025-Q2..2025-Q1 ends before it starts"),
        (["backfill", "--from", "2025-Q2", "--to", "2025-Q1"], "okr backfill 2025-Q1 2025-Q2"),
        (["backfill", "2025-Q5"], "'2025-Q5' is not a quarter"),
        (["backfill", "2025-Quarter1"], "e.g. 2025-Q1"),
        (["backfill", "2024-Q2"], "2024-Q2 is before 2025-Q1, the first quarter"),
        (["backfill", "2025-Q3"], "2025-Q3 is after the running quarter 2025-Q2"),
        (["backfill", "2025-Q1", "--to", "2025-Q2"], "not both"),
        (["scorecard", "2025-Q1"], "no warehouse at"),
        (["scorecard", "2025-Q9"], "'2025-Q9' is not a quarter"),
    ],
)
def test_a_mistake_is_one_line_with_status_2_and_no_run(
    env: Settings, capsys, argv: list[str], message: str
):
    assert main(argv) == 2
    assert message in one_error_line(capsys)
    assert runs() == []
    assert not env.warehouse.exists()


def test_typed_quarter_labels_are_accepted_in_any_case(env: Settings, capsys):
    assert main(["backfill", "2025q1", "2025-q1"]) == 0
    assert "for 2025-Q1..2025-Q1" in capsys.readouterr().out
    assert main(["scorecard", "2025Q1"]) == 0
    assert "== 2025-Q1" in capsys.readouterr().out


def test_scorecard_of_a_quarter_the_warehouse_lacks_names_those_it_has(env: Settings, capsys):
    assert main(["backfill", "2025-Q1"]) == 0
    capsys.readouterr()
    assert main(["scorecard", "2025-Q2"]) == 2
    line = one_error_line(capsys)
    assert "no rows for 2025-Q2; it has 2025-Q1 (`okr backfill QUARTER` builds one)" in line


def test_a_config_error_prints_its_problems_with_file_and_line_and_no_traceback(
    env: Settings, capsys
):
    okrs = env.config_dir / "okrs.yaml"
    okrs.write_text(okrs.read_text().replace("target: 90,", "target: ninety,"))
    assert main(["backfill", "2025-Q1"]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.out == ""
    first, *problems = captured.err.strip().splitlines()
    assert first == "okr: the config has 1 problem(s):"
    [problem] = problems
    line = next(i for i, text in enumerate(okrs.read_text().splitlines(), 1) if "ninety" in text)
    assert problem.strip().startswith(f"okrs.yaml:{line}: ")
    assert "kr-csat-h1" in problem and "'target'" in problem
    assert runs() == []


@pytest.mark.parametrize(
    "name, value, said",
    [
        ("OKR_AS_OF", "2025-02-30", "OKR_AS_OF='2025-02-30': expected a day YYYY-MM-DD"),
        ("OKR_MAX_REJECT_RATE", "5%", "OKR_MAX_REJECT_RATE='5%': expected a fraction"),
        ("OKR_SOURCE_MAX_AGE_DAYS", "web=2", "OKR_SOURCE_MAX_AGE_DAYS='web=2': expected whole"),
    ],
)
def test_a_bad_environment_setting_is_one_line(
    env: Settings, monkeypatch, capsys, name, value, said
):
    monkeypatch.setenv(name, value)
    assert main(["backfill"]) == 2
    assert said in one_error_line(capsys)


def test_the_example_config_on_an_empty_data_folder_runs_as_the_okr_command(tmp_path: Path):
    """The first command on a fresh machine before any file arrives: the `okr` console script
    (its own process, its own instance) exits 0, every KR reads no data, and the report
    columns no file has had yet are no data, not an error; a mistake still exits 2."""
    data = tmp_path / "data"
    (data / "csv").mkdir(parents=True)  # analytics/ is missing altogether
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OKR_", "CRM_"))},
        "OKR_CONFIG_DIR": str(PROJECT_ROOT / "examples" / "acme"),
        "OKR_DATA_DIR": str(data),
        "OKR_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "OKR_BI_SNAPSHOT": str(tmp_path / "bi" / "okr_bi.duckdb"),
        "OKR_AS_OF": "2026-02-15",
        "DAGSTER_HOME": str(tmp_path / "home"),
    }
    okr = str(Path(sys.executable).parent / "okr")
    done = subprocess.run([okr, "backfill"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "okr: run " in done.stdout
    with duckdb.connect(env["OKR_WAREHOUSE"], read_only=True) as con:
        rows = con.execute(
            "SELECT count(*), count(current_value), count(*) FILTER (WHERE status = 'no_data') "
            "FROM marts.key_result_attainment"
        ).fetchone()
    assert rows[0] > 0 and rows[1] == 0 and rows[2] == rows[0]
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:  # DAGSTER_HOME unset
        [run] = instance.get_runs()
        assert run.is_success
        assert type(instance.event_log_storage).__name__ == "KeptSqliteEventLogStorage"
    moved = tmp_path / "moved_home"
    shutil.copytree(env["DAGSTER_HOME"], moved)
    refused = subprocess.run(
        [okr, "backfill"], env={**env, "DAGSTER_HOME": str(moved)}, capture_output=True, text=True
    )
    assert refused.returncode == 2 and "moved or copied" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    wrong = subprocess.run([okr, "backfill", "1999-Q1"], env=env, capture_output=True, text=True)
    assert wrong.returncode == 2 and wrong.stderr.startswith("okr: "), wrong.stderr


def test_an_instance_file_copied_by_hand_from_the_template_gets_its_folder(
    tmp_path: Path, monkeypatch
):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(INSTANCE_TEMPLATE, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("OKR_DAGSTER_PG_URL", raising=False)
    assert prepare_dagster_home() == home
    written = yaml.safe_load((home / "dagster.yaml").read_text())
    assert written["storage"]["custom"]["config"]["base_dir"] == str(home.resolve())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_runs() == []
