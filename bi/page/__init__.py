"""The scorecard as one self-contained HTML page covering every published quarter: a quarter
selector, team and owner filters, the alignment tree of objectives, each objective's progress
against expected progress and its score across quarters, a burn-up chart per key result and the
KPI health heatmap, read from the marts.

The charts are Vega-Lite specs made with Altair and drawn in the browser by Vega. The Vega,
Vega-Lite and vega-embed libraries come from vl-convert's JavaScript bundle, inlined once, so the
page needs no network: it opens from a file, a mail attachment or an air-gapped share alike.
Every text that comes from the data is HTML-escaped; chart specs travel as JSON in a
`<script type="application/json">` block per quarter with `<` escaped, so no title can close a
tag.

Layout of the page (what to hook into when adding to it):

    <header class="page-head">            title, #quarter-select, #team-filter, #owner-filter,
                                          .quarter-links (without JavaScript), legend
    <main>
      <section class="quarter" id="q-2025-Q1" data-quarter="2025-Q1" [data-default]>
        .quarter-head                     label, as-of date, counts
        nav.alignment > ul.tree           li.node per objective, children in a nested <ul>
        .objectives                       div.node per objective: section.objective (the card:
                                          .obj-head, .meta, .progress, .history = score per
                                          quarter, .krs > .kr rows with their burn-up .chart),
                                          then .children holding the child objectives' nodes
        .no-match                         shown when the filters leave nothing
        section.kpi                       the KPI heatmap (.chart.wide) or the team roll-up
        script.okr-chart-specs            {chart element id: Vega-Lite spec} of this quarter
      </section> ... one per quarter, latest first
    </main>
    <script id="vega-bundle">, then the page script (bi/page/assets.py APP)

Ids are made from the quarter's slug (`q-` and its label): objective cards `<slug>-o<n>`, KR
burn-ups `<slug>-kr-<n>`, `<slug>-kpi` (the KPI section), `<slug>-kpi-health` or
`<slug>-team-attainment` (its chart), `<slug>-specs` (the spec block). Every `.node` carries
data-objective-id, data-team, data-owner and data-kr-owners (JSON list), every `.kr` its
data-kr-id, data-team and data-owner: the filters read those. A quarter's charts are drawn the
first time the quarter is shown. Without JavaScript every quarter is shown, one after the other.

Where to add to it: a badge on a KR or an objective (units, stale, provisional) goes in
`render.QuarterView._kr` / `_card` (with `render.badge` for the look; `data.read_page_data`
reads the marts, one query per table, for every quarter); in the heatmap each cell's row is built
in `charts.kpi_health_spec` (`label` is the first line, `word` the second, e.g. "no target").

Modules: `data` reads the marts (one query per mart, split by quarter), `charts` makes the specs
and the bundle, `render` writes the HTML, `assets` holds the CSS and the script.
"""

import importlib
from typing import Any

# Exported names and the module holding each: imported on first use, so a command that only
# reads the marts (`okr scorecard` through `bi.page.data`) does not load Altair.
_EXPORTS = {
    "BURNUP_COLOR": "charts",
    "EXPECTED_COLOR": "charts",
    "HEALTH_COLORS": "charts",
    "NO_DATA_STRIPE": "charts",
    "TEAM_COLOR": "charts",
    "rows_of": "charts",
    "_vega_bundle": "charts",
    "render_scorecard_page": "render",
    "write_scorecard_page": "render",
}
_RENAMED = {"_vega_bundle": "vega_bundle"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, _RENAMED.get(name, name))
