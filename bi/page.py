"""The scorecard as one self-contained HTML page: objectives with progress bars against expected
progress, a burn-up chart per key result and KPI health, read from the marts.

The charts are Vega-Lite specs made with Altair and drawn in the browser by Vega. The Vega,
Vega-Lite and vega-embed libraries come from vl-convert's JavaScript bundle, inlined once, so the
page needs no network: it opens from a file, a mail attachment or an air-gapped share alike.
Every text that comes from the data is HTML-escaped; chart specs travel as JSON in a
`<script type="application/json">` block with `<` escaped, so no title can close a tag.
"""

from __future__ import annotations

import functools
import html
import json
import math
import os
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import altair as alt
import duckdb
import polars as pl
import vl_convert

from transforms import cache
from transforms.kr_types import KR_TYPES

# Colours the charts draw with. None of them is used by the page's CSS, so a screenshot showing
# them proves that Vega rendered (the page test relies on this).
BURNUP_COLOR = "#8e24aa"  # a KR's progress line
EXPECTED_COLOR = "#6b7280"  # the expected-progress line (dashed)
TEAM_COLOR = "#00838f"  # team roll-up bars (the KPI fallback)
HEALTH_COLORS = {
    "green": "#1a9850",
    "yellow": "#fee08b",
    "red": "#d73027",
    "no_target": "#d9d9d9",
    "no_data": "#f2f2f2",
}
OTHER_HEALTH_COLOR = "#bdbdbd"
KPI_MONTHS = 6

STATUSES = (
    "achieved",
    "on_track",
    "at_risk",
    "off_track",
    "missed",
    "stale",
    "no_data",
    "not_started",
)

_CSS = """
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; background: #f5f6f8; color: #1f2933;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { margin-bottom: 20px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0; }
h3 { font-size: 16px; margin: 0 0 8px; }
.subtitle, .meta, .kr-meta, .note { color: #52606d; }
.legend { display: flex; gap: 18px; flex-wrap: wrap; margin-top: 8px; font-size: 12px; color: #52606d; }
.legend .swatch { display: inline-block; width: 18px; height: 10px; vertical-align: middle;
  margin-right: 4px; border-radius: 2px; }
.legend .marker-swatch { display: inline-block; width: 3px; height: 14px; background: #111827;
  vertical-align: middle; margin-right: 4px; }
.objective, .kpi { background: #ffffff; border: 1px solid #dde1e6; border-radius: 8px;
  padding: 16px 20px; margin-bottom: 16px; max-width: 1180px; }
.obj-head { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
.meta { margin: 4px 0 10px; font-size: 13px; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 10px; font-size: 12px;
  font-weight: 600; white-space: nowrap; background: #e4e7eb; color: #323f4b; }
.badge.status-achieved { background: #d3f2dc; color: #0b4d22; }
.badge.status-on_track { background: #e3f6e8; color: #135c2c; }
.badge.status-at_risk { background: #fdf0d2; color: #7a4b00; }
.badge.status-off_track { background: #fbe0e0; color: #8a1414; }
.badge.status-missed { background: #f6d0d0; color: #6e0f0f; }
.progress { display: flex; align-items: center; gap: 10px; }
.bar { position: relative; flex: 0 0 320px; height: 14px; background: #e4e7eb; border-radius: 7px; }
.bar .fill { position: absolute; left: 0; top: 0; bottom: 0; border-radius: 7px; background: #3e4c59; }
.bar .fill.status-achieved { background: #2f8f4e; }
.bar .fill.status-on_track { background: #4caf6a; }
.bar .fill.status-at_risk { background: #e8a317; }
.bar .fill.status-off_track { background: #e05353; }
.bar .fill.status-missed { background: #b23a3a; }
.bar .fill.status-stale, .bar .fill.status-no_data, .bar .fill.status-not_started { background: #9aa5b1; }
.bar .expected { position: absolute; top: -4px; bottom: -4px; width: 3px; margin-left: -1px;
  background: #111827; border-radius: 1px; }
.numbers { font-size: 13px; white-space: nowrap; }
.krs { margin-top: 12px; border-top: 1px solid #eef0f2; }
.kr { display: flex; gap: 20px; align-items: center; padding: 10px 0;
  border-bottom: 1px solid #eef0f2; }
.kr:last-child { border-bottom: none; }
.kr-info { flex: 1 1 0; min-width: 0; }
.kr-title { font-weight: 600; margin-bottom: 2px; }
.kr-meta { font-size: 12px; margin-bottom: 6px; }
.chart { flex: 0 0 auto; min-width: 200px; min-height: 60px; }
.chart-error { color: #8a1414; font-size: 12px; }
.note { font-size: 13px; margin: 4px 0 10px; }
"""

_EMBED_SCRIPT = """
(function () {
  var specs = JSON.parse(document.getElementById("okr-chart-specs").textContent);
  var ids = Object.keys(specs);
  function fail(id, message) {
    var el = document.getElementById(id);
    el.textContent = "Chart not rendered: " + message;
    el.className += " chart-error";
  }
  if (typeof vegaEmbed !== "function") {
    ids.forEach(function (id) { fail(id, "the chart library did not load"); });
    return;
  }
  ids.forEach(function (id) {
    vegaEmbed("#" + id, specs[id], {actions: false, renderer: "canvas", mode: "vega-lite"})
      .catch(function (error) { fail(id, String(error)); });
  });
})();
"""


# -- data -----------------------------------------------------------------------------------------


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    [(count,)] = con.sql(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?",
        params=[schema, name],
    ).fetchall()
    return count > 0


def _latest_quarter(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.sql(
        "SELECT quarter FROM marts.objective_attainment ORDER BY quarter_start DESC LIMIT 1"
    ).fetchall()
    if not rows:
        raise ValueError("marts.objective_attainment is empty: there is no quarter to report")
    return rows[0][0]


# -- formatting -----------------------------------------------------------------------------------


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 1e6:
        return f"{value:,.0f}"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _status_class(status: str | None) -> str:
    return f"status-{status}" if status in STATUSES else "status-other"


def _badge(status: str | None) -> str:
    label = (status or "unknown").replace("_", " ")
    return f'<span class="badge {_status_class(status)}">{_esc(label)}</span>'


def _bar(progress: float | None, expected: float | None, status: str | None) -> str:
    """A CSS progress bar filled to `progress`, with a marker where expected progress stands."""

    def clamp(x: float) -> float:
        return max(0.0, min(1.0, x)) * 100

    parts = []
    if progress is not None:
        parts.append(
            f'<div class="fill {_status_class(status)}" style="width:{clamp(progress):.1f}%"></div>'
        )
    if expected is not None:
        parts.append(
            f'<div class="expected" style="left:{clamp(expected):.1f}%" '
            f'title="expected {_pct(expected)}"></div>'
        )
    label = f"progress {_pct(progress)}, expected {_pct(expected)}"
    numbers = f"<b>{_pct(progress)}</b> &nbsp;expected {_pct(expected)}"
    return (
        f'<div class="progress"><div class="bar" role="img" aria-label="{_esc(label)}">'
        f'{"".join(parts)}</div><span class="numbers">{numbers}</span></div>'
    )


def _target_text(kr: dict[str, Any]) -> str:
    return KR_TYPES[kr["kr_type"]].target_text(kr, _num)


# -- charts ---------------------------------------------------------------------------------------


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: they become gaps, like nulls."""
    return value if value is None or math.isfinite(value) else None


def _utc(day: date) -> alt.DateTime:
    return alt.DateTime(year=day.year, month=day.month, date=day.day, utc=True)


def _spec(chart: alt.TopLevelMixin, values: list[dict[str, Any]]) -> dict[str, Any]:
    """The chart's Vega-Lite spec with `values` as its data. Altair validates the spec against
    the Vega-Lite schema; the data rows are attached after that, since validating thousands of
    plain rows takes seconds and they are ours."""
    spec = chart.to_dict()
    spec.pop("$schema", None)  # the page says mode: vega-lite; no URL in the page
    spec["data"] = {"values": values}
    return spec


def _utc_json(day: date) -> dict[str, Any]:
    return {"year": day.year, "month": day.month, "date": day.day, "utc": True}


def _burnup_spec(daily: pl.DataFrame, start: date, end: date) -> dict[str, Any]:
    """Progress over the days of the KR window in this quarter, with the expected line."""
    values = [
        {
            "as_of_date": row["as_of_date"].isoformat(),
            "progress": _finite(row["progress"]),
            "expected_progress": _finite(row["expected_progress"]),
        }
        for row in daily.iter_rows(named=True)
    ]
    spec = json.loads(_burnup_template())
    for layer in spec["layer"]:
        layer["encoding"]["x"]["scale"]["domain"] = [_utc_json(start), _utc_json(end)]
    spec["data"] = {"values": values}
    return spec


@functools.cache
def _burnup_template() -> str:
    """Every KR's burn-up has the same spec but for its data and days: built and validated
    once (as JSON, so each KR gets its own copy)."""
    base = alt.Chart(alt.Data(values=[]))
    x = alt.X(
        "as_of_date:T",
        title=None,
        scale=alt.Scale(type="utc", domain=[_utc(date(2000, 1, 1)), _utc(date(2000, 1, 2))]),
        axis=alt.Axis(format="%b %d", tickCount=4, labelOverlap=True, grid=False),
    )
    y_scale = alt.Scale(domain=[0, 1], clamp=True)
    expected = base.mark_line(color=EXPECTED_COLOR, strokeDash=[5, 4], strokeWidth=1.5).encode(
        x=x, y=alt.Y("expected_progress:Q", scale=y_scale, title=None)
    )
    progress = base.mark_line(color=BURNUP_COLOR, strokeWidth=3).encode(
        x=x,
        y=alt.Y("progress:Q", scale=y_scale, title=None, axis=alt.Axis(format="%", tickCount=3)),
        tooltip=[
            alt.Tooltip("as_of_date:T", title="day", format="%Y-%m-%d", formatType="utc"),
            alt.Tooltip("progress:Q", format=".0%"),
            alt.Tooltip("expected_progress:Q", title="expected", format=".0%"),
        ],
    )
    chart = (
        alt.layer(expected, progress)
        .properties(width=400, height=100)
        .configure_view(stroke=None)
        .configure_axis(labelFontSize=10)
    )
    return json.dumps(_spec(chart, []))


def _kpi_health_spec(summary: pl.DataFrame) -> dict[str, Any]:
    """Heatmap of health per metric (rows) and month (columns)."""
    periods = summary.select("period_start", "period_label").unique().sort("period_start")
    healths = sorted({h for h in summary["health"].to_list() if h is not None})
    domain = list(HEALTH_COLORS) + [h for h in healths if h not in HEALTH_COLORS]
    colors = [HEALTH_COLORS.get(h, OTHER_HEALTH_COLOR) for h in domain]
    has_complete = "is_complete" in summary.columns
    values = [
        {
            "metric": row["metric_id"],
            "period": row["period_label"],
            "health": row["health"] or "no_data",
            "value": _finite(row["value"]),
            "target": _finite(row["target_value"]),
            "complete": bool(row["is_complete"]) if has_complete else True,
        }
        for row in summary.iter_rows(named=True)
    ]
    metrics = summary["metric_id"].unique().sort().to_list()
    chart = (
        alt.Chart(alt.Data(values=[]))
        .mark_rect(stroke="#ffffff", strokeWidth=2)
        .encode(
            x=alt.X(
                "period:O",
                sort=periods["period_label"].to_list(),
                title=None,
                axis=alt.Axis(labelAngle=0, orient="top"),
            ),
            y=alt.Y("metric:N", sort=metrics, title=None),
            color=alt.Color(
                "health:N",
                scale=alt.Scale(domain=domain, range=colors),
                legend=alt.Legend(title="health"),
            ),
            opacity=alt.condition("datum.complete", alt.value(1.0), alt.value(0.55)),
            tooltip=[
                alt.Tooltip("metric:N"),
                alt.Tooltip("period:O"),
                alt.Tooltip("health:N"),
                alt.Tooltip("value:Q", format=",.4~g"),
                alt.Tooltip("target:Q", format=",.4~g"),
                alt.Tooltip("complete:N", title="period complete"),
            ],
        )
        .properties(width=90 * periods.height, height=26 * len(metrics))
        .configure_view(stroke=None)
    )
    return _spec(chart, values)


def _team_spec(teams: pl.DataFrame) -> dict[str, Any]:
    """Team roll-up: weighted score per team with a tick at expected progress."""
    values = [
        {
            "team": row["team"],
            "score": _finite(row["score_weighted"]),
            "expected": _finite(row["expected_progress"]),
            "objectives": row["objective_count"],
        }
        for row in teams.iter_rows(named=True)
    ]
    base = alt.Chart(alt.Data(values=[]))
    y = alt.Y("team:N", title=None, sort=teams["team"].to_list())
    x_scale = alt.Scale(domain=[0, 1], clamp=True)
    bars = base.mark_bar(color=TEAM_COLOR, height=16).encode(
        x=alt.X("score:Q", scale=x_scale, title="score (weighted)", axis=alt.Axis(format="%")),
        y=y,
        tooltip=[
            alt.Tooltip("team:N"),
            alt.Tooltip("score:Q", format=".0%"),
            alt.Tooltip("expected:Q", format=".0%"),
            alt.Tooltip("objectives:Q"),
        ],
    )
    ticks = base.mark_tick(color="#111827", thickness=3, size=24).encode(
        x=alt.X("expected:Q", scale=x_scale), y=y
    )
    chart = (
        alt.layer(bars, ticks)
        .properties(width=520, height=32 * teams.height)
        .configure_view(stroke=None)
    )
    return _spec(chart, values)


@functools.cache
def _vega_bundle() -> str:
    """Vega, Vega-Lite (the version Altair writes) and vega-embed as one script; they set
    `window.vegaEmbed`. Building it takes a second or two, so it is kept in the user's cache,
    named by the vl-convert and Vega-Lite versions that determine it."""
    wanted = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    version = wanted if wanted in vl_convert.get_vegalite_versions() else None
    name = f"vega-bundle-{vl_convert.__version__}-{version or 'default'}.js"
    if (bundle := cache.read_text(name)) is None:
        bundle = vl_convert.javascript_bundle(vl_version=version)
        cache.write_text(name, bundle)
    return bundle.replace("</script", "<\\/script")


# -- page -----------------------------------------------------------------------------------------


def render_scorecard_page(con: duckdb.DuckDBPyConnection, quarter: str | None = None) -> str:
    """The scorecard of one quarter (default: the latest in marts.objective_attainment) as a
    self-contained HTML page."""
    quarter = quarter or _latest_quarter(con)
    objectives = con.sql(
        "SELECT * FROM marts.objective_attainment WHERE quarter = ? ORDER BY team, objective_id",
        params=[quarter],
    ).pl()
    if objectives.is_empty():
        raise ValueError(f"quarter {quarter!r} has no rows in marts.objective_attainment")
    krs = con.sql(
        "SELECT * FROM marts.key_result_attainment WHERE quarter = ? ORDER BY kr_id",
        params=[quarter],
    ).pl()
    daily = con.sql(
        "SELECT kr_id, as_of_date, progress, expected_progress "
        "FROM marts.key_result_progress_daily WHERE quarter = ? ORDER BY kr_id, as_of_date",
        params=[quarter],
    ).pl()
    quarter_start: date = objectives["quarter_start"][0]
    as_of: date = objectives["as_of_date"].max()
    quarter_end = _add_months(quarter_start, 3) - timedelta(days=1)
    titles = dict(zip(objectives["objective_id"], objectives["title"], strict=True))

    specs: dict[str, dict[str, Any]] = {}

    def kr_block(kr: dict[str, Any]) -> str:
        chart_id = f"chart-kr-{len(specs) + 1}"
        history = daily.filter(pl.col("kr_id") == kr["kr_id"])
        start = max(kr["period_start"], quarter_start)
        end = min(kr["period_end"], quarter_end)
        if history.height:
            specs[chart_id] = _burnup_spec(history, start, end)
            chart = (
                f'<div class="chart burnup" id="{chart_id}" data-kr-id="{_esc(kr["kr_id"])}"></div>'
            )
        else:
            chart = '<div class="chart note">no daily history</div>'
        meta = [kr["metric_id"], kr["kr_type"].replace("_", " ")]
        if kr["owner"]:
            meta.append(kr["owner"])
        if kr["data_through"] is not None:
            meta.append(f"data through {kr['data_through']}")
        note = f'<div class="note">{_esc(kr["note"])}</div>' if kr.get("note") else ""
        return (
            '<div class="kr"><div class="kr-info">'
            f'<div class="kr-title">{_esc(kr["kr_title"])} {_badge(kr["status"])}</div>'
            f'<div class="kr-meta">{" · ".join(_esc(m) for m in meta)}</div>'
            f"{_bar(kr['progress'], kr['expected_progress'], kr['status'])}"
            f'<div class="kr-meta">current <b>{_esc(_num(kr["current_value"]))}</b> / target '
            f"<b>{_esc(_target_text(kr))}</b> · baseline {_esc(_num(kr['baseline']))}</div>"
            f"{note}</div>{chart}</div>"
        )

    cards = []
    for o in objectives.iter_rows(named=True):
        own = krs.filter(pl.col("objective_id") == o["objective_id"])
        has_krs = o["kr_count"] > 0
        score = o["score"] if has_krs else o["rollup_score"]
        expected = o["expected_progress"] if has_krs else o["rollup_expected_progress"]
        meta = [f"team {o['team']}"]
        if o["owner"]:
            meta.append(f"owner {o['owner']}")
        meta.append(o["type"])
        if o["parent_id"]:
            meta.append(f"part of: {titles.get(o['parent_id'], o['parent_id'])}")
        if not has_krs:
            meta.append("roll-up of child objectives")
        cards.append(
            f'<section class="objective" data-objective-id="{_esc(o["objective_id"])}">'
            f'<div class="obj-head"><h2>{_esc(o["title"])}</h2>{_badge(o["status"])}</div>'
            f'<div class="meta">{" · ".join(_esc(m) for m in meta)}</div>'
            f"{_bar(score, expected, o['status'])}"
            + (
                '<div class="krs">'
                + "".join(kr_block(k) for k in own.iter_rows(named=True))
                + "</div>"
                if own.height
                else ""
            )
            + "</section>"
        )
    # KRs whose window runs past their objective's period (e.g. six months in a quarter).
    continuing = krs.filter(~pl.col("objective_id").is_in(objectives["objective_id"].implode()))
    if continuing.height:
        cards.append(
            '<section class="objective"><div class="obj-head"><h2>Key results continuing past '
            "their objective's period</h2></div>"
            '<div class="krs">'
            + "".join(kr_block(k) for k in continuing.iter_rows(named=True))
            + "</div></section>"
        )

    cards.append(_kpi_section(con, quarter, as_of, specs))

    specs_json = json.dumps(specs, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    kr_total = krs.height
    title = f"OKR scorecard {quarter}"
    # No swatch in the chart colours here: only the charts draw them (see BURNUP_COLOR).
    legend = (
        '<div class="legend">'
        '<span><span class="swatch" style="background:#4caf6a"></span>progress</span>'
        '<span><span class="marker-swatch"></span>expected progress today</span>'
        "<span>burn-up charts: solid line = progress per day, dashed line = expected</span>"
        "</div>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_esc(title)}</h1>"
        f'<div class="subtitle">as of {_esc(as_of.isoformat())} · {objectives.height} objectives'
        f" · {kr_total} key results · quarter {_esc(quarter_start.isoformat())} to "
        f"{_esc(quarter_end.isoformat())}</div>{legend}</header>"
        + "".join(cards)
        + f'<script type="application/json" id="okr-chart-specs">{specs_json}</script>'
        + f'<script id="vega-bundle">{_vega_bundle()}</script>'
        + f"<script>{_EMBED_SCRIPT}</script>"
        + "</body></html>\n"
    )


def _kpi_section(
    con: duckdb.DuckDBPyConnection, quarter: str, as_of: date, specs: dict[str, dict[str, Any]]
) -> str:
    """KPI health of the last months up to the as-of date, if marts.success_metric_summary
    exists and has them; else the team roll-up of the quarter."""
    if _table_exists(con, "marts", "success_metric_summary"):
        summary = con.sql(
            "WITH months AS (SELECT DISTINCT period_start FROM marts.success_metric_summary "
            "  WHERE grain = 'month' AND period_start <= ? "
            "  ORDER BY period_start DESC LIMIT ?) "
            "SELECT s.* FROM marts.success_metric_summary s JOIN months USING (period_start) "
            "WHERE s.grain = 'month' ORDER BY s.metric_id, s.period_start",
            params=[as_of, KPI_MONTHS],
        ).pl()
        if summary.height:
            specs["chart-kpi-health"] = _kpi_health_spec(summary)
            return (
                '<section class="kpi" id="kpi-health"><h3>KPI health</h3>'
                f'<div class="note">Success metrics per month, last {KPI_MONTHS} months up to '
                f"{_esc(as_of.isoformat())}; faded cells are months still running.</div>"
                '<div class="chart" id="chart-kpi-health"></div></section>'
            )
    teams = con.sql(
        "SELECT * FROM marts.team_attainment WHERE quarter = ? ORDER BY team", params=[quarter]
    ).pl()
    if teams.is_empty():
        return (
            '<section class="kpi" id="kpi-health"><h3>KPI health</h3>'
            '<div class="note">No KPI health or team roll-up for this quarter.</div></section>'
        )
    specs["chart-team-attainment"] = _team_spec(teams)
    return (
        '<section class="kpi" id="kpi-health"><h3>Team roll-up</h3>'
        '<div class="note">No KPI health in this warehouse yet: weighted score per team, '
        "the black tick marks expected progress.</div>"
        '<div class="chart" id="chart-team-attainment"></div></section>'
    )


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    return date(day.year + index // 12, index % 12 + 1, 1)


def write_scorecard_page(
    con: duckdb.DuckDBPyConnection, path: Path, quarter: str | None = None
) -> Path:
    """Write the page to `path` atomically (a reader never sees half a page); return the path."""
    page = render_scorecard_page(con, quarter)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the page is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
