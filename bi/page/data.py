"""What the page reads from the marts, for every published quarter at once: one query per mart,
split by quarter here. A published quarter is one with rows in marts.objective_attainment."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import polars as pl

from transforms.calendar import add_months

KPI_MONTHS = 6  # months of success metrics the page shows per quarter


@dataclass(frozen=True)
class ScorePoint:
    """An objective's score in one quarter (its roll-up score when it has no KRs)."""

    quarter: str
    score: float | None
    grade: str | None
    status: str | None


@dataclass(frozen=True)
class Quarter:
    label: str  # e.g. 2025-Q1, as the marts write it
    slug: str  # the label made safe for ids and URL fragments: the section's id
    start: date
    end: date
    as_of: date
    objectives: pl.DataFrame  # marts.objective_attainment, ordered by team, objective_id
    krs: pl.DataFrame  # marts.key_result_attainment, ordered by kr_id
    daily: pl.DataFrame  # marts.key_result_progress_daily: kr_id, as_of_date, progress, expected
    kpi: pl.DataFrame | None  # success_metric_summary months: the last KPI_MONTHS up to as_of
    teams: pl.DataFrame | None  # marts.team_attainment

    @property
    def running(self) -> bool:
        return self.as_of < self.end


@dataclass(frozen=True)
class PageData:
    quarters: list[Quarter]  # latest first
    default: Quarter  # shown when the page opens
    history: dict[str, list[ScorePoint]]  # objective id -> its score per quarter, oldest first
    metric_names: dict[str, str]  # metric id -> display name
    titles: dict[str, str]  # objective id -> title (its latest), for parents of other quarters
    teams: list[str] = field(default_factory=list)  # every team and owner of an objective or KR
    owners: list[str] = field(default_factory=list)
    units: dict[str, str | None] = field(default_factory=dict)  # metric id -> unit
    restated: dict[tuple[str, str, str], dict] = field(default_factory=dict)
    """(object_type, object_id, quarter) -> its marts.grade_restatements row."""


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    [(count,)] = con.sql(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?",
        params=[schema, name],
    ).fetchall()
    return count > 0


def _slugs(labels: list[str]) -> dict[str, str]:
    """`q-` and the label with anything but letters, digits, '-' and '_' replaced; unique."""
    found: dict[str, str] = {}
    for label in labels:
        slug = "q-" + re.sub(r"[^A-Za-z0-9_-]+", "-", label)
        while slug in found.values():
            slug += "-"
        found[label] = slug
    return found


def read_page_data(con: duckdb.DuckDBPyConnection, quarter: str | None = None) -> PageData:
    """Every published quarter; `quarter` (default: the latest) is the one shown first."""
    objectives = con.sql(
        "SELECT * FROM marts.objective_attainment ORDER BY quarter_start DESC, team, objective_id"
    ).pl()
    if objectives.is_empty():
        raise ValueError("marts.objective_attainment is empty: there is no quarter to report")
    krs = con.sql("SELECT * FROM marts.key_result_attainment ORDER BY quarter_start, kr_id").pl()
    daily = con.sql(
        "SELECT quarter, kr_id, as_of_date, progress, expected_progress "
        "FROM marts.key_result_progress_daily ORDER BY quarter_start, kr_id, as_of_date"
    ).pl()
    teams = (
        con.sql("SELECT * FROM marts.team_attainment ORDER BY quarter_start, team").pl()
        if table_exists(con, "marts", "team_attainment")
        else None
    )
    months = (
        con.sql(
            "SELECT * FROM marts.success_metric_summary WHERE grain = 'month' "
            "ORDER BY metric_id, period_start"
        ).pl()
        if table_exists(con, "marts", "success_metric_summary")
        else None
    )
    labels = objectives["quarter"].unique(maintain_order=True).to_list()
    if quarter is not None and quarter not in labels:
        raise ValueError(f"quarter {quarter!r} has no rows in marts.objective_attainment")
    slugs = _slugs(labels)
    objectives_of, krs_of, daily_of = _by_quarter(objectives), _by_quarter(krs), _by_quarter(daily)
    teams_of = None if teams is None else _by_quarter(teams)
    quarters = []
    for label in labels:
        own = objectives_of[label]
        start: date = own["quarter_start"][0]
        as_of: date = own["as_of_date"].max()
        quarters.append(
            Quarter(
                label=label,
                slug=slugs[label],
                start=start,
                end=add_months(start, 3) - timedelta(days=1),
                as_of=as_of,
                objectives=own,
                krs=krs_of.get(label, krs.clear()),
                daily=daily_of.get(label, daily.clear()),
                kpi=_kpi_months(months, as_of),
                teams=None if teams is None else teams_of.get(label, teams.clear()),
            )
        )
    default = next(q for q in quarters if q.label == (quarter or labels[0]))
    owners = {*objectives["owner"].drop_nulls().to_list(), *krs["owner"].drop_nulls().to_list()}
    return PageData(
        quarters=quarters,
        default=default,
        history=_history(objectives),
        metric_names=_metric_names(con, months),
        titles=dict(zip(objectives["objective_id"][::-1], objectives["title"][::-1], strict=True)),
        teams=sorted({*objectives["team"].drop_nulls().to_list()}, key=str.casefold),
        owners=sorted(owners, key=str.casefold),
        units=metric_units(con),
        restated=_restated(con),
    )


def _by_quarter(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The frame's rows of each quarter, in their order: one pass, not a filter per quarter."""
    return {q: rows for (q,), rows in frame.partition_by("quarter", as_dict=True).items()}


def metric_units(con: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    """Each metric's unit, from marts.dim_metrics (none before the dimensions are built)."""
    if not table_exists(con, "marts", "dim_metrics"):
        return {}
    return dict(con.sql("SELECT metric_id, unit FROM marts.dim_metrics").fetchall())


def _restated(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str, str], dict]:
    """The reported grades of closed quarters that the current numbers restate."""
    if not table_exists(con, "marts", "grade_restatements"):
        return {}
    rows = con.sql("SELECT * FROM marts.grade_restatements").pl()
    return {(r["object_type"], r["object_id"], r["quarter"]): r for r in rows.iter_rows(named=True)}


def _kpi_months(months: pl.DataFrame | None, as_of: date) -> pl.DataFrame | None:
    """The monthly KPI rows of the last KPI_MONTHS months starting on or before `as_of`."""
    if months is None:
        return None
    starts = (
        months.filter(pl.col("period_start") <= as_of)["period_start"]
        .unique()
        .sort(descending=True)
        .head(KPI_MONTHS)
    )
    return months.filter(pl.col("period_start").is_in(starts.implode()))


def _history(objectives: pl.DataFrame) -> dict[str, list[ScorePoint]]:
    history: dict[str, list[ScorePoint]] = {}
    for o in objectives.sort("quarter_start").iter_rows(named=True):
        score = o["score"] if o["kr_count"] > 0 else o["rollup_score"]
        history.setdefault(o["objective_id"], []).append(
            ScorePoint(o["quarter"], score, o.get("grade"), o["status"])
        )
    return history


def _metric_names(con: duckdb.DuckDBPyConnection, months: pl.DataFrame | None) -> dict[str, str]:
    """Display names: marts.dim_metrics' where it exists, the KPI mart's own metric_name over
    them (the same text, as of the last run)."""
    names: dict[str, str] = {}
    if table_exists(con, "marts", "dim_metrics"):
        names |= dict(con.sql("SELECT metric_id, name FROM marts.dim_metrics").fetchall())
    if months is not None and "metric_name" in months.columns:
        pairs = months.select("metric_id", "metric_name").unique().drop_nulls()
        names |= dict(pairs.iter_rows())
    return names
