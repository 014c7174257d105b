"""The page's HTML: the header with the quarter selector and the team and owner filters, then one
`<section class="quarter">` per published quarter (see bi/page/__init__.py for the layout).

Every text from the data goes through `esc` (element text and attribute values alike); ids are
made here (quarter slugs, `<slug>-o<n>`, `<slug>-kr-<n>`), never taken from the data.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from bi.page import assets, charts
from bi.page.data import KPI_MONTHS, PageData, Quarter, ScorePoint, read_page_data
from transforms.kr_types import KR_TYPES
from transforms.units import format_value

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
GRADES = ("green", "yellow", "red")


# -- formatting -----------------------------------------------------------------------------------


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def num(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 1e6 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def status_class(status: str | None) -> str:
    return f"status-{status}" if status in STATUSES else "status-other"


def badge(status: str | None) -> str:
    label = (status or "unknown").replace("_", " ")
    return f'<span class="badge {status_class(status)}">{esc(label)}</span>'


def shown(row: dict[str, Any]) -> str:
    """The status as shown (display_status; status in marts that predate it)."""
    return row.get("display_status") or row["status"]


CONFIDENCE_FLAGS = {
    "high_confidence_off_track": "the owner is confident, but the data says off track",
    "low_confidence_on_track": "the data says on track, but the owner's confidence is low",
}
"""What the page says about a KR whose owner's confidence disagrees with its status."""


def checkin(kr: dict[str, Any]) -> str:
    """The KR's latest check-in in the quarter (confidence, who, when, comment), and a flag when
    the confidence disagrees with the status; empty without one (or in marts that predate it)."""
    if kr.get("checkin_date") is None:
        return ""
    level = kr.get("confidence_level")
    parts = [
        f'<span class="confidence confidence-{esc(level)}">confidence '
        f"<b>{esc(num(kr['confidence']))}/10</b> {esc(level)}</span>"
        if kr.get("confidence") is not None
        else "no confidence given"
    ]
    parts.append(f"{esc(kr.get('checkin_author') or 'check-in')} on {esc(kr['checkin_date'])}")
    comment = kr.get("checkin_comment")
    quote = f' <q class="checkin-comment">{esc(comment)}</q>' if comment else ""
    flag = kr.get("confidence_flag")
    warning = (
        f'<div class="note confidence-flag">⚑ {esc(CONFIDENCE_FLAGS.get(flag, flag))}</div>'
        if flag
        else ""
    )
    return (
        f'<div class="kr-meta checkin" data-confidence-flag="{esc(flag or "")}">'
        f"{' · '.join(parts)}{quote}</div>{warning}"
    )


def grade_badge(grade: str | None, final: bool | None) -> str:
    """The grade, marked provisional while its quarter is still running."""
    if grade is None:
        return ""
    if final is False:
        return (
            f'<span class="grade grade-{esc(grade)} provisional" title="provisional: the quarter '
            f'is still running; grades are final once it closes">{esc(grade)} (provisional)</span>'
        )
    return f'<span class="grade grade-{esc(grade)}" title="final grade">{esc(grade)}</span>'


def restated_badge(row: dict[str, Any] | None) -> str:
    """Marks a closed quarter's grade that the current numbers restate (marts.grade_restatements)."""
    if row is None:
        return ""
    text = (
        f"reported {row['reported_grade']} ({pct(row['reported_progress'])}) at "
        f"{row['reported_at']:%Y-%m-%d}; now {row['restated_grade']} "
        f"({pct(row['restated_progress'])})"
    )
    return f'<span class="restated" title="{esc(text)}">restated: {esc(text)}</span>'


def bar(progress: float | None, expected: float | None, status: str | None) -> str:
    """A CSS progress bar filled to `progress`, with a marker where expected progress stands."""

    def clamp(x: float) -> float:
        return max(0.0, min(1.0, x)) * 100

    parts = []
    if progress is not None:
        parts.append(
            f'<div class="fill {status_class(status)}" style="width:{clamp(progress):.1f}%"></div>'
        )
    if expected is not None:
        parts.append(
            f'<div class="expected" style="left:{clamp(expected):.1f}%" '
            f'title="expected {pct(expected)}"></div>'
        )
    label = f"progress {pct(progress)}, expected {pct(expected)}"
    numbers = f"<b>{pct(progress)}</b> &nbsp;expected {pct(expected)}"
    return (
        f'<div class="progress"><div class="bar" role="img" aria-label="{esc(label)}">'
        f'{"".join(parts)}</div><span class="numbers">{numbers}</span></div>'
    )


def spec_json(spec: dict[str, Any]) -> str:
    return json.dumps(spec, separators=charts.COMPACT, allow_nan=False)


def specs_json(specs: dict[str, str]) -> str:
    """Chart specs (each as JSON) as one JSON object for a `<script type="application/json">`:
    no `<`, so no text in them can close the element."""
    members = ",".join(f"{json.dumps(chart_id)}:{spec}" for chart_id, spec in specs.items())
    return f"{{{members}}}".replace("<", "\\u003c")


# -- one quarter ----------------------------------------------------------------------------------


class QuarterView:
    """The section of one quarter; collects its chart specs while its HTML is built."""

    def __init__(self, quarter: Quarter, data: PageData, anchors: dict[tuple[str, str], str]):
        self.q = quarter
        self.data = data
        self.anchors = anchors
        self.specs: dict[str, str] = {}  # chart id -> its spec as JSON
        self.kr_count = 0
        # Each objective's KRs (as rows) and each KR's burn-up columns, in their order: one pass
        # each, not a Polars call per objective and per KR.
        self.krs_by_objective: dict[str, list[dict[str, Any]]] = {}
        for kr in quarter.krs.iter_rows(named=True):
            self.krs_by_objective.setdefault(kr["objective_id"], []).append(kr)
        self.burnups = charts.burnup_columns_by_kr(quarter.daily)
        objectives = quarter.objectives
        self.rows = {o["objective_id"]: o for o in objectives.iter_rows(named=True)}
        self.children: dict[str, list[str]] = {}
        for o in objectives.iter_rows(named=True):
            parent = o["parent_id"]
            if parent in self.rows and parent != o["objective_id"]:
                self.children.setdefault(parent, []).append(o["objective_id"])
        # Roots first (no parent in this quarter), then anything a cycle left unreached.
        self.order = [i for i, o in self.rows.items() if o["parent_id"] not in self.rows]
        reachable = self._reachable()
        self.order += [i for i in self.rows if i not in reachable]

    def krs_of(self, objective_id: str) -> list[dict[str, Any]]:
        return self.krs_by_objective.get(objective_id, [])

    def _reachable(self) -> set[str]:
        seen: set[str] = set()
        stack = [i for i, o in self.rows.items() if o["parent_id"] not in self.rows]
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.children.get(current, []))
        return seen

    def _walk(self, render, objective_id: str, seen: set[str]) -> str:
        """`render(objective_id, children_html)` over the tree below `objective_id`."""
        seen.add(objective_id)
        below = "".join(
            self._walk(render, child, seen)
            for child in self.children.get(objective_id, [])
            if child not in seen
        )
        return render(objective_id, below)

    def _node_attributes(self, objective_id: str) -> str:
        o = self.rows[objective_id]
        kr_owners = sorted({kr["owner"] for kr in self.krs_of(objective_id)} - {None})
        return (
            f'data-objective-id="{esc(objective_id)}" data-team="{esc(o["team"])}" '
            f'data-owner="{esc(o["owner"])}" data-kr-owners="{esc(json.dumps(kr_owners))}"'
        )

    # -- the alignment tree (outline) --

    def alignment(self) -> str:
        def entry(objective_id: str, below: str) -> str:
            o = self.rows[objective_id]
            meta = " · ".join(esc(m) for m in (o["team"], o["owner"]) if m)
            return (
                f'<li class="node" {self._node_attributes(objective_id)}>'
                f'<div class="tree-row"><a href="#{self.anchors[(self.q.label, objective_id)]}">'
                f"{esc(o['title'])}</a>{badge(shown(o))}"
                f'<span class="tree-score">{pct(_score(o))}</span>'
                f'<span class="tree-meta">{meta}</span></div>'
                + (f"<ul>{below}</ul>" if below else "")
                + "</li>"
            )

        seen: set[str] = set()
        items = "".join(self._walk(entry, i, seen) for i in self.order if i not in seen)
        return (
            '<nav class="alignment" aria-label="alignment tree"><h3>Alignment</h3>'
            '<div class="note">Objectives under the objective they contribute to; score is '
            "the objective's own, or its roll-up when it has no key results.</div>"
            f'<ul class="tree">{items}</ul></nav>'
        )

    # -- objective cards, nested the same way --

    def objectives(self) -> str:
        seen: set[str] = set()
        cards = "".join(self._walk(self._card, i, seen) for i in self.order if i not in seen)
        known = self.q.objectives["objective_id"].implode()
        continuing = self.q.krs.filter(~pl.col("objective_id").is_in(known))
        if continuing.height:
            # KRs whose window runs past their objective's period (e.g. six months in a quarter).
            cards += (
                '<div class="node" data-kind="krs"><section class="objective">'
                '<div class="obj-head"><h3>Key results continuing past their objective\'s '
                'period</h3></div><div class="krs">'
                + "".join(self._kr(k) for k in continuing.iter_rows(named=True))
                + "</div></section></div>"
            )
        return f'<div class="objectives">{cards}</div>'

    def _card(self, objective_id: str, below: str) -> str:
        o = self.rows[objective_id]
        has_krs = o["kr_count"] > 0
        expected = o["expected_progress"] if has_krs else o["rollup_expected_progress"]
        meta = [f"team {o['team']}"]
        if o["owner"]:
            meta.append(f"owner {o['owner']}")
        meta.append(
            f"{o['type']} (achieved at "
            f"{'100%' if o['type'] == 'committed' else '70%: 0.7 counts as achieved'})"
        )
        if o["parent_id"]:
            meta.append(f"part of: {self.data.titles.get(o['parent_id'], o['parent_id'])}")
        if not has_krs:
            meta.append("roll-up of child objectives")
        krs = self.krs_of(objective_id)
        return (
            f'<div class="node" {self._node_attributes(objective_id)}>'
            f'<section class="objective" id="{self.anchors[(self.q.label, objective_id)]}">'
            f'<div class="obj-head"><h3>{esc(o["title"])}</h3>{badge(shown(o))}'
            f"{grade_badge(o.get('grade'), o.get('grade_is_final'))}"
            f"{restated_badge(self.data.restated.get(('objective', objective_id, self.q.label)))}"
            "</div>"
            f'<div class="meta">{" · ".join(esc(m) for m in meta)}</div>'
            f"{bar(_score(o), expected, shown(o))}"
            f"{self._history(objective_id)}"
            + ('<div class="krs">' + "".join(self._kr(k) for k in krs) + "</div>" if krs else "")
            + "</section>"
            + (f'<div class="children">{below}</div>' if below else "")
            + "</div>"
        )

    def _history(self, objective_id: str) -> str:
        """The objective's score in every quarter it has a row in, oldest first; each entry
        links to the objective in that quarter."""
        points: list[ScorePoint] = self.data.history.get(objective_id, [])
        entries = []
        for point in points:
            grade = point.grade if point.grade in GRADES else "none"
            current = point.quarter == self.q.label
            height = 0.0 if point.score is None else max(0.0, min(1.0, point.score)) * 100
            status = (point.status or "unknown").replace("_", " ")
            entries.append(
                f'<a class="q-score grade-{grade}{" current" if current else ""}" '
                f'href="#{self.anchors[(point.quarter, objective_id)]}" '
                f'data-quarter="{esc(point.quarter)}"'
                + (' aria-current="true"' if current else "")
                + f' title="{esc(f"{point.quarter}: {pct(point.score)}, {status}")}">'
                f'<span class="q-bar"><span class="q-fill" style="height:{height:.0f}%">'
                f'</span></span><span class="q-label">{esc(point.quarter)}</span>'
                f'<span class="q-value">{pct(point.score)}</span></a>'
            )
        return (
            f'<div class="history" aria-label="score per quarter">'
            f'<span class="history-label">score per quarter</span>{"".join(entries)}</div>'
        )

    def _kr(self, kr: dict[str, Any]) -> str:
        self.kr_count += 1
        chart_id = f"{self.q.slug}-kr-{self.kr_count}"
        start = max(kr["period_start"], self.q.start)
        end = min(kr["period_end"], self.q.end)
        if (burnup := self.burnups.get(kr["kr_id"])) is not None:
            self.specs[chart_id] = charts.burnup_json(burnup, start, end)
            chart = (
                f'<div class="chart burnup" id="{chart_id}" data-kr-id="{esc(kr["kr_id"])}"></div>'
            )
        else:
            chart = '<div class="chart note">no daily history</div>'
        status = shown(kr)
        unit = self.data.units.get(kr["metric_id"])

        def number(value: float | None) -> str:
            return format_value(value, unit, with_unit=False)

        meta = [
            self.data.metric_names.get(kr["metric_id"], kr["metric_id"]),
            kr["kr_type"].replace("_", " "),
        ]
        if kr["owner"]:
            meta.append(kr["owner"])
        if kr["data_through"] is not None:
            meta.append(f"data through {kr['data_through']}")
        note = f'<div class="note">{esc(kr["note"])}</div>' if kr.get("note") else ""
        if status == "stale":
            note += (
                f'<div class="note stale-note">stale: no data since {esc(kr["data_through"])}, '
                f"more than {esc(kr.get('stale_after_days'))} days before "
                f"{esc(kr['as_of_date'])}</div>"
            )
        target = KR_TYPES[kr["kr_type"]].target_text(kr, number)
        value = kr.get("display_value", kr["current_value"])
        values = [f"current <b>{esc(format_value(value, unit))}</b>"]
        if kr.get("denominator_value") is not None:
            values[0] += f" (n = {esc(format_value(kr['denominator_value'], None))})"
        if (kr.get("display_value_date") or kr["as_of_date"]) < kr["as_of_date"]:
            values.append(f"as of {esc(kr['display_value_date'])}, the last day with data")
        values.append(f"target <b>{esc(target)}</b>")
        if kr["kr_type"] == "milestone" and kr.get("best_value") is not None:
            values.append(f"best so far <b>{esc(number(kr['best_value']))}</b> of {esc(target)}")
        if kr["baseline"] is not None and kr["kr_type"] != "milestone":
            values.append(f"baseline {esc(number(kr['baseline']))}")
        restated = self.data.restated.get(("key_result", kr["kr_id"], self.q.label))
        return (
            f'<div class="kr" data-kr-id="{esc(kr["kr_id"])}" data-team="{esc(kr["team"])}" '
            f'data-owner="{esc(kr["owner"])}" data-status="{esc(status)}"><div class="kr-info">'
            f'<div class="kr-title">{esc(kr["kr_title"])} {badge(status)} '
            f"{grade_badge(kr.get('grade'), kr.get('grade_is_final'))} "
            f"{restated_badge(restated)}</div>"
            f'<div class="kr-meta">{" · ".join(esc(m) for m in meta)}</div>'
            f"{bar(kr['progress'], kr['expected_progress'], status)}"
            f'<div class="kr-meta values">{" · ".join(values)}</div>'
            f"{checkin(kr)}{note}</div>{chart}</div>"
        )

    # -- KPI health, or the team roll-up --

    def kpi(self) -> str:
        """KPI health of the last months up to the quarter's as-of date when the KPI mart has
        them; else the team roll-up of the quarter."""
        q = self.q
        if q.kpi is not None and q.kpi.height:
            chart_id = f"{q.slug}-kpi-health"
            self.specs[chart_id] = spec_json(
                charts.kpi_health_spec(q.kpi, self.data.metric_names, self.data.units)
            )
            return (
                f'<section class="kpi" id="{q.slug}-kpi"><h3>KPI health</h3>'
                f'<div class="note">Success metrics per month, last {KPI_MONTHS} months up '
                f"to {esc(q.as_of.isoformat())}; each cell shows the month's value; faded cells "
                "are months still running. Team and owner filters do not apply here.</div>"
                f'<div class="chart wide kpi-heatmap" id="{chart_id}"></div>'
                '<div class="kpi-key"><span><span class="cell no-target">1,234 no target'
                "</span>measured, but the metric has no target to judge it by</span>"
                '<span><span class="cell no-data">no data</span>nothing measured in the month'
                "</span></div></section>"
            )
        if q.teams is None or q.teams.is_empty():
            return (
                f'<section class="kpi" id="{q.slug}-kpi"><h3>KPI health</h3>'
                '<div class="note">No KPI health or team roll-up for this quarter.</div></section>'
            )
        chart_id = f"{q.slug}-team-attainment"
        self.specs[chart_id] = spec_json(charts.team_spec(q.teams))
        return (
            f'<section class="kpi" id="{q.slug}-kpi"><h3>Team roll-up</h3>'
            '<div class="note">No KPI health in this warehouse yet: weighted score per team, '
            "the black tick marks expected progress.</div>"
            f'<div class="chart" id="{chart_id}"></div></section>'
        )

    def html(self) -> str:
        q = self.q
        alignment, cards = self.alignment(), self.objectives()
        kpi = self.kpi()
        running = " (running)" if q.running and q is self.data.quarters[0] else ""
        default = q is self.data.default
        # One join, not a chain of `+`: each `+` would copy everything before it again.
        return "".join(
            [
                f'<section class="quarter{" active" if default else ""}" id="{q.slug}" '
                f'data-quarter="{esc(q.label)}"{" data-default" if default else ""}>'
                f'<div class="quarter-head"><h2>{esc(q.label)}{esc(running)}</h2>'
                f'<span class="subtitle">as of {esc(q.as_of.isoformat())} · '
                f"{q.objectives.height} objectives · {q.krs.height} key results · quarter "
                f"{esc(q.start.isoformat())} to {esc(q.end.isoformat())} · ",
                "grades are provisional until the quarter closes"
                if q.running
                else "closed: grades are final",
                "</span></div>",
                alignment,
                cards,
                '<div class="no-match" hidden>'
                "No objective of this quarter matches the filters.</div>",
                kpi,
                f'<script type="application/json" class="okr-chart-specs" id="{q.slug}-specs">',
                specs_json(self.specs),
                "</script></section>",
            ]
        )


def _score(o: dict[str, Any]) -> float | None:
    return o["score"] if o["kr_count"] > 0 else o["rollup_score"]


# -- the page -------------------------------------------------------------------------------------


def _options(values: list[str], everything: str) -> str:
    return f'<option value="">{esc(everything)}</option>' + "".join(
        f'<option value="{esc(v)}">{esc(v)}</option>' for v in values
    )


def render_scorecard_page(con: duckdb.DuckDBPyConnection, quarter: str | None = None) -> str:
    """Every published quarter (rows in marts.objective_attainment) as one self-contained HTML
    page; `quarter` (default: the latest) is the one shown when the page opens."""
    data = read_page_data(con, quarter)
    anchors = {
        (q.label, objective_id): f"{q.slug}-o{n}"
        for q in data.quarters
        for n, objective_id in enumerate(q.objectives["objective_id"], start=1)
    }
    sections = [QuarterView(q, data, anchors).html() for q in data.quarters]
    latest = data.quarters[0]
    quarter_options = "".join(
        f'<option value="{q.slug}"{" selected" if q is data.default else ""}>'
        f"{esc(q.label)}{' (running)' if q.running and q is latest else ''}</option>"
        for q in data.quarters
    )
    links = " ".join(f'<a href="#{q.slug}">{esc(q.label)}</a>' for q in data.quarters)
    oldest = data.quarters[-1]
    # No swatch in the chart colours here: only the charts draw them (see charts.BURNUP_COLOR).
    legend = (
        '<div class="legend">'
        '<span><span class="swatch" style="background:#4caf6a"></span>progress</span>'
        '<span><span class="marker-swatch"></span>expected progress today</span>'
        "<span>burn-up charts: solid line = progress per day, dashed line = expected</span>"
        '<span><span class="grade grade-yellow provisional">yellow (provisional)</span> '
        "a running quarter's grade; final once the quarter closes</span>"
        "<span>committed objectives are achieved at 100%; aspirational ones at 70% (0.7 counts "
        "as achieved, their KRs are on track against 0.7 of the expected progress)</span>"
        '<span><span class="badge status-stale">stale</span> no data for longer than the '
        "metric's freshness (else its trailing window, else 31 days)</span>"
        '<span><span class="restated">restated</span> a closed quarter\'s reported grade that '
        "later data changed</span>"
        "</div>"
    )
    span = (
        f"{esc(oldest.label)} to {esc(latest.label)}" if oldest is not latest else esc(latest.label)
    )
    head = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(f'OKR scorecard {data.default.label}')}</title>"
        f"<style>{assets.CSS}</style></head><body>"
        f"<script>{assets.JS_FLAG}</script>"
        '<header class="page-head"><h1>OKR scorecard</h1>'
        f'<div class="subtitle">{len(data.quarters)} published quarters, {span}</div>'
        '<form class="controls" id="controls" onsubmit="return false">'
        f'<label>Quarter<select id="quarter-select">{quarter_options}</select></label>'
        f'<label>Team<select id="team-filter">{_options(data.teams, "all teams")}</select></label>'
        f'<label>Owner<select id="owner-filter">{_options(data.owners, "all owners")}</select>'
        '</label><span class="filter-status" id="filter-status" aria-live="polite"></span></form>'
        f'<nav class="quarter-links" aria-label="quarters">Quarters: {links}</nav>'
        '<noscript><div class="note">JavaScript is off: every quarter follows, latest first; '
        "the charts, the quarter selector and the filters need JavaScript.</div></noscript>"
        f"{legend}</header><main>"
    )
    # One join, not a chain of `+`: each `+` would copy the page so far again.
    return "".join(
        [
            head,
            *sections,
            "</main>",
            f'<script id="vega-bundle">{charts.vega_bundle()}</script>',
            f"<script>{assets.APP}</script>",
            "</body></html>\n",
        ]
    )


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
