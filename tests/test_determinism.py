"""Same input, same output, to the last bit (issue 11, item 9).

Floating-point addition is not associative, so a sum over rows depends on the order it adds them
in. The marts must not: a warehouse holding the same rows in another physical order, DuckDB with
more or fewer threads, or a run covering more or fewer quarters gives every mart the very same
bits. The data is made of decimals that do not add exactly (0.1 * k + 1e-3 * noise), several rows
per day and key, so any order-dependent sum shows in the last bits."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from okr_fixtures import STAGING_DDL, csv_metric, key_result, objective, ratio_metric, write_config

from connectors.checkins.extract import load_checkins_folder
from connectors.checkins.staging import stage_checkins
from transforms.attainment import compute_okr_results
from transforms.calendar import quarters_between
from transforms.config import OkrConfig
from transforms.marts import okr_mart_frames
from transforms.okr import objective_attainment, objective_parameters, team_attainment

FIRST_DAY, LAST_DAY = date(2024, 7, 1), date(2025, 12, 31)
AS_OF = date(2025, 11, 20)
REGIONS = ["emea", "apac", "amer", "latam", "anz", "india"]
CHANNELS = ["web", "app", "partner", "direct"]


def observations(seed: int = 11) -> pl.DataFrame:
    """Many non-integer rows: per day, a row per region and channel of `revenue` (and a second
    row for some keys, as duplicates across files would leave before staging), a few of
    `latency`, `visits` and `signups`, and a wide `clicks` spread over many rows per day."""
    rng = random.Random(seed)

    def decimal() -> float:
        return 0.1 * rng.randrange(1, 5000) + 1e-3 * rng.random()

    rows: list[tuple[date, str, float, str | None]] = []
    day = FIRST_DAY
    while day <= LAST_DAY:
        for region in REGIONS:
            for channel in CHANNELS:
                dims = json.dumps({"channel": channel, "region": region}, separators=(",", ":"))
                for _ in range(1 + (rng.random() < 0.3)):
                    rows.append((day, "revenue", decimal(), dims))
        for channel in CHANNELS:
            dims = json.dumps({"channel": channel}, separators=(",", ":"))
            rows.append((day, "latency", decimal() / 7, dims))
            rows.append((day, "visits", decimal() * 3, dims))
        for _ in range(rng.randrange(0, 4)):
            rows.append((day, "signups", decimal() / 3, None))
        for _ in range(250):
            rows.append((day, "clicks", decimal() / 11, None))
        day += timedelta(days=1)
    return pl.DataFrame(
        rows,
        schema={
            "date": pl.Date,
            "metric_id": pl.String,
            "value": pl.Float64,
            "dimensions": pl.String,
        },
        orient="row",
    )


def checkins(seed: int = 3) -> pl.DataFrame:
    """Weekly check-ins of two authors on a data KR and a manual one through 2025: decimal
    confidences, the manual KR's values (with gaps), some without a value."""
    rng = random.Random(seed)
    rows = []
    for week in range(47):
        day = date(2025, 1, 3) + timedelta(days=7 * week)
        for kr_id, author in (("engaged-2025", "ana"), ("hires-2025", "bo"), ("hires-2025", "cy")):
            value = None if kr_id == "engaged-2025" or rng.random() < 0.3 else week / 4.7
            rows.append(
                {
                    "date": day,
                    "kr_id": kr_id,
                    "confidence": round(rng.uniform(0, 10), 3),
                    "value": value,
                    "author": author,
                    "comment": f"week {week}",
                }
            )
    return pl.DataFrame(rows).with_row_index("line", offset=2)


def build_warehouse(path: Path, rows: pl.DataFrame, chunks: int = 1) -> Path:
    """A warehouse file holding `rows` and the check-ins in their order, each inserted in
    `chunks` statements, and staged."""
    with duckdb.connect(str(path)) as con:
        con.execute(STAGING_DDL)
        size = -(-rows.height // chunks)
        for offset in range(0, rows.height, size):
            chunk = rows.slice(offset, size).to_arrow()  # noqa: F841 (read by the SQL below)
            con.execute(
                "INSERT INTO staging.csv_observations "
                "SELECT date, metric_id, value, dimensions::JSON FROM chunk"
            )
        load_checkins_folder(con, path.parent / "none")  # the raw tables, empty
        marks = checkins().sample(fraction=1.0, shuffle=chunks > 1, seed=chunks)
        step = -(-marks.height // chunks)
        for offset in range(0, marks.height, step):
            part = marks.slice(offset, step).to_arrow()  # noqa: F841 (read by the SQL below)
            con.execute(
                "INSERT INTO raw.checkins (date, kr_id, confidence, value, comment, author, "
                "_source, _source_ref, _source_row, _batch_id, _loaded_at) "
                "SELECT date, kr_id, confidence, value, comment, author, 'checkins', 'c.csv', "
                "line, 'b', TIMESTAMPTZ '2025-11-20 00:00:00+00' FROM part"
            )
        for quarter in quarters_between(date(2025, 1, 1), AS_OF):
            stage_checkins(con, quarter.start, quarter.end)
    return path


def config(folder: Path) -> OkrConfig:
    metrics = [
        csv_metric("revenue", target={"value": 2e6, "tolerance": 0.1}),
        csv_metric(
            "region_revenue",
            filter={"metric_id": "revenue", "dimensions.region": ["emea", "apac"]},
            target={"value": 7e5, "tolerance": 0.1},
        ),
        csv_metric("web_revenue", filter={"dimensions.channel": ["web", "app"]}),
        csv_metric("engaged", filter={"metric_id": ["clicks", "signups", "visits"]}),
        csv_metric("revenue_7d", filter={"metric_id": "revenue"}, window="7d"),
        csv_metric("latency", "avg", target={"value": 300, "tolerance": 0.05}),
        csv_metric("latency_28d", "avg", filter={"metric_id": "latency"}, window="28d"),
        csv_metric("latency_max", "max", filter={"metric_id": "latency"}),
        csv_metric("latency_last", "last", filter={"metric_id": "latency"}),
        csv_metric("visits"),
        csv_metric("signups"),
        csv_metric("clicks", "avg", target={"value": 22.5, "tolerance": 0.1}),
        ratio_metric("revenue_per_visit", "revenue", "visits"),
        ratio_metric("signup_rate", "signups", "visits", window="28d"),
    ]
    quarterly = []
    for number in range(1, 5):
        label = f"2025-Q{number}"
        quarterly.append(
            objective(
                f"growth-q{number}",
                [
                    key_result(f"rev-q{number}", "revenue", baseline="auto", target="+10%"),
                    key_result(
                        f"region-q{number}",
                        "region_revenue",
                        baseline="auto",
                        target="+7%",
                        weight=1.7,
                    ),
                    key_result(
                        f"rpv-q{number}",
                        "revenue_per_visit",
                        baseline="auto",
                        target="+3%",
                        weight=0.3,
                    ),
                    key_result(
                        f"signup-q{number}",
                        "signup_rate",
                        baseline="auto",
                        target="+5%",
                        weight=2.2,
                    ),
                ],
                period=label,
                team="growth",
                parent="company",
                weight=1.3,
            )
        )
        quarterly.append(
            objective(
                f"quality-q{number}",
                [
                    key_result(
                        f"latency-q{number}",
                        "latency_28d",
                        "maintain_below",
                        target=305.5,
                    ),
                    key_result(f"rev7-q{number}", "revenue_7d", baseline="auto", target="+2%"),
                    key_result(
                        f"web-q{number}",
                        "web_revenue",
                        baseline="auto",
                        target="+4%",
                        weight=0.7,
                    ),
                ],
                period=label,
                team="platform",
                parent=f"growth-q{number}",
                weight=0.9,
            )
        )
    company = objective(
        "company",
        [
            key_result("engaged-2025", "engaged", baseline="auto", target="+12%", weight=0.4),
            key_result("hires-2025", "manual", baseline=0.5, target=9.3, weight=0.3),
        ],
        period={"start": "2025-01-01", "end": "2025-12-31"},
        team="exec",
        type="aspirational",
    )
    return write_config(folder, metrics, [company, *quarterly])


@pytest.fixture(scope="module")
def setting(tmp_path_factory) -> tuple[OkrConfig, Path, Path, Path]:
    """The config and three warehouses of the same rows: in generated order, shuffled, and
    shuffled otherwise and inserted in many statements (other row groups, other order)."""
    root = tmp_path_factory.mktemp("determinism")
    rows = observations()
    assert rows.height > 122_880  # more than one DuckDB row group, so scans run in parallel
    ordered = build_warehouse(root / "ordered.duckdb", rows)
    shuffled = build_warehouse(
        root / "shuffled.duckdb", rows.sample(fraction=1.0, shuffle=True, seed=1)
    )
    chunked = build_warehouse(
        root / "chunked.duckdb", rows.sample(fraction=1.0, shuffle=True, seed=2), chunks=7
    )
    return config(root / "config"), ordered, shuffled, chunked


def marts(path: Path, okr_config: OkrConfig, threads: int, quarter_labels: list[str] | None = None):
    quarters = quarters_between(
        date(2025, 1, 1), AS_OF, okr_config.settings.fiscal_year_start_month
    )
    if quarter_labels is not None:
        quarters = [q for q in quarters if q.label in quarter_labels]
    with duckdb.connect(str(path), read_only=True, config={"threads": threads}) as con:
        return okr_mart_frames(con, okr_config, quarters, AS_OF)


def differences(expected: dict[str, pl.DataFrame], actual: dict[str, pl.DataFrame]) -> list[str]:
    """`mart.column` of every column of `actual` not equal to the bit to that of `expected`."""
    assert expected.keys() == actual.keys()
    found = []
    for name, frame in expected.items():
        other = actual[name]
        if "quarter" in frame.columns and other.height < frame.height:  # a run of fewer quarters
            frame = frame.filter(pl.col("quarter").is_in(other["quarter"].unique().implode()))
            frame, other = frame.sort(frame.columns), other.sort(frame.columns)
        assert frame.height > 0, name
        found += [
            f"{name}.{column}"
            for column in frame.columns
            if not frame[column].equals(other[column], check_dtypes=True)
        ]
    return found


def test_marts_have_the_same_bits_whatever_the_row_order_threads_and_quarters(setting):
    okr_config, ordered, shuffled, chunked = setting
    expected = marts(ordered, okr_config, threads=1)
    floats = [
        column
        for frame in expected.values()
        for column, dtype in frame.schema.items()
        if dtype == pl.Float64 and frame[column].drop_nulls().len() > 0
    ]
    assert len(floats) > 20  # not vacuous: many measured decimals
    runs = {
        "4 threads": (ordered, 4, None),
        "2 threads, rows shuffled": (shuffled, 2, None),
        "4 threads, rows shuffled": (shuffled, 4, None),
        "1 thread, rows shuffled": (shuffled, 1, None),
        "4 threads, shuffled, many row groups": (chunked, 4, None),
        "2 threads, shuffled, many row groups": (chunked, 2, None),
        "quarters 2 and 3 alone, shuffled": (shuffled, 4, ["2025-Q2", "2025-Q3"]),
        "quarter 4 alone, many row groups": (chunked, 3, ["2025-Q4"]),
        "quarter 1 alone": (ordered, 1, ["2025-Q1"]),
    }
    differing = {
        how: found
        for how, (path, threads, labels) in runs.items()
        if (found := differences(expected, marts(path, okr_config, threads, labels)))
    }
    assert not differing, "\n".join(f"{how}: {', '.join(c)}" for how, c in differing.items())


def test_objective_and_team_scores_do_not_depend_on_the_order_of_their_rows(setting):
    """Weighted sums over an objective's KRs and a team's objectives add in one order, whatever
    order the KR rows reach them in."""
    okr_config, ordered, _, _ = setting
    quarters = quarters_between(
        date(2025, 1, 1), AS_OF, okr_config.settings.fiscal_year_start_month
    )
    with duckdb.connect(str(ordered), read_only=True) as con:
        kr_rows = compute_okr_results(con, okr_config, quarters, AS_OF).key_result_attainment
    rng = random.Random(5)  # decimals that do not add up exactly, several KRs per objective
    kr_rows = kr_rows.with_columns(
        progress=pl.Series([rng.random() for _ in range(kr_rows.height)]),
        expected_progress=pl.Series([rng.random() for _ in range(kr_rows.height)]),
        weight=pl.Series([0.1 + 3 * rng.random() for _ in range(kr_rows.height)]),
    )
    objectives = objective_parameters(okr_config)

    def scores(rows: pl.DataFrame) -> dict[str, pl.DataFrame]:
        objective_rows = objective_attainment(
            objectives, rows, quarters, AS_OF, okr_config.settings
        )
        return {"objective": objective_rows, "team": team_attainment(objective_rows)}

    expected = scores(kr_rows)
    for seed in range(8):
        shuffled = kr_rows.sample(fraction=1.0, shuffle=True, seed=seed)
        assert not differences(expected, scores(shuffled)), seed
