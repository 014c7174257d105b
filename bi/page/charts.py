"""The page's charts as Vega-Lite specs (made with Altair, validated against the Vega-Lite schema)
and the inlined Vega bundle that draws them.

Data rows travel column-wise: a spec's data is one row of equal-length arrays and its first
transform is a `flatten` back to one row per point, so a field name is written once per chart
instead of once per point (the burn-ups of every quarter hold thousands of days).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import vl_convert

from transforms import cache
from transforms.units import CURRENCY, FRACTION, PERCENT_POINTS, format_value

if TYPE_CHECKING:
    import altair as alt

# Colours the charts draw with. None of them is used by the page's CSS, so a screenshot showing
# them proves that Vega rendered (the page tests rely on this).
BURNUP_COLOR = "#8e24aa"  # a KR's progress line
EXPECTED_COLOR = "#6b7280"  # the expected-progress line (dashed)
TEAM_COLOR = "#00838f"  # team roll-up bars (the KPI fallback)
HEALTH_COLORS = {
    "green": "#1a9850",
    "yellow": "#fee08b",
    "red": "#d73027",
    "no_target": "#9fb3c8",  # measured, nothing to compare with: solid blue-grey, value shown
    "no_data": "#ffffff",  # nothing measured: white, hatched with NO_DATA_STRIPE
}
NO_DATA_STRIPE = "#d3cbbf"  # warm grey: nothing in the CSS or its anti-aliasing comes near it
OTHER_HEALTH_COLOR = "#bdbdbd"
HEALTH_LABELS = {"no_target": "no target", "no_data": "no data"}
DARK_TEXT, LIGHT_TEXT = "#1f2933", "#ffffff"
HEATMAP_ROW = 36  # pixels per metric row: two lines of text fit
# Hatching of a no_data cell: stripes across its width. (Vertical, not diagonal: Vega's canvas
# renderer paints a diagonal gradient as a pattern anchored at the chart's corner, not the cell's.)
STRIPES = 20
DECIMALS = 4  # burn-up progress is drawn to 0.01 percentage points
FIXED = f".{DECIMALS}f"  # its format spec (made once: f"{v:.{DECIMALS}f}" makes it per value)


def finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: they become gaps, like nulls."""
    return value if value is None or math.isfinite(value) else None


def _utc(day: date) -> alt.DateTime:
    import altair as alt

    return alt.DateTime(year=day.year, month=day.month, date=day.day, utc=True)


def _utc_json(day: date) -> dict[str, Any]:
    return {"year": day.year, "month": day.month, "date": day.day, "utc": True}


def _columns(fields: list[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows as one row of columns (the specs' `flatten` transform turns it back)."""
    return {"values": [{f: [row[f] for row in rows] for f in fields}]}


def rows_of(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The data rows of a spec made here: its columns flattened back, as Vega does."""
    [columns] = spec["data"]["values"]
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


@functools.cache
def _template(name: str, build: Callable[..., str], *args: Any) -> str:
    """A chart's spec without its data, as JSON: built and validated by Altair once, then kept
    in the user's cache (named by the chart, its arguments, this module's source and Altair's
    version, which determine it), so a run that finds it neither imports Altair nor builds it."""
    key = repr((name, args, _SOURCE_DIGEST, version("altair")))
    entry = f"chart-{name}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"
    if (spec := cache.read_text(entry)) is None:
        spec = build(*args)
        cache.write_text(entry, spec)
    return spec


_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def _spec(chart: alt.TopLevelMixin, data: dict[str, Any]) -> dict[str, Any]:
    """The chart's Vega-Lite spec with `data` attached. Altair validates the spec against the
    Vega-Lite schema; the data is attached after that, since validating thousands of plain rows
    takes seconds and they are ours."""
    spec = chart.to_dict()
    spec.pop("$schema", None)  # the page says mode: vega-lite; no URL in the page
    spec["data"] = data
    return spec


# -- burn-up --------------------------------------------------------------------------------------

BURNUP_FIELDS = ["as_of_date", "progress", "expected_progress"]
COMPACT = (",", ":")  # JSON separators, as the page writes the specs


def finite_or_null(column: str) -> pl.Expr:
    """The column with NaN and infinity as nulls (see `finite`)."""
    return pl.when(pl.col(column).is_finite()).then(pl.col(column)).alias(column)


def rounded_json(value: float | None) -> str:
    """The JSON of `round(value, DECIMALS)`, made in one step: the burn-ups' points are the bulk
    of the page. Below 1e10 the value with DECIMALS places (correctly rounded, as `round` does)
    has at most 15 significant digits, so without its trailing zeros it is the shortest text of
    the rounded float: the one `repr`, and so `json`, writes."""
    if value is None:
        return "null"
    if abs(value) < 1e10:
        text = format(value, FIXED).rstrip("0")
        return text + "0" if text.endswith(".") else text
    return repr(round(value, DECIMALS))


def rounded_jsons(values: list[float | None]) -> list[str]:
    """`rounded_json` of each value, each distinct value formatted once: a quarter's days repeat
    values (its expected progress takes a few hundred over thousands of days)."""
    texts: dict[float | str, str] = {}
    written = []
    for value in values:
        key = value if value else repr(value)  # 0.0 and -0.0 are equal keys but written apart
        if key not in texts:
            texts[key] = rounded_json(value)
        written.append(texts[key])
    return written


def burnup_columns(daily: pl.DataFrame) -> dict[str, list[str]]:
    """The burn-up columns of `daily` as JSON texts, one per day: the ISO day, progress and
    expected progress rounded to DECIMALS, NaN and infinity as gaps."""
    frame = daily.select(
        pl.format('"{}"', pl.col("as_of_date").dt.to_string("%Y-%m-%d")).alias("as_of_date"),
        finite_or_null("progress"),
        finite_or_null("expected_progress"),
    )
    rounded = {field: rounded_jsons(frame[field].to_list()) for field in BURNUP_FIELDS[1:]}
    return {"as_of_date": frame["as_of_date"].to_list(), **rounded}


def burnup_columns_by_kr(daily: pl.DataFrame) -> dict[str, dict[str, list[str]]]:
    """Each KR's burn-up columns, from the days of many KRs: one Polars pass for all of them,
    then a slice per KR (a Polars call per KR costs more than the KR's own work)."""
    daily = daily.sort("kr_id", maintain_order=True)  # each KR's days together, in their order
    columns = burnup_columns(daily)
    by_kr, offset = {}, 0
    for kr_id, days in daily.group_by("kr_id", maintain_order=True).len().iter_rows():
        by_kr[kr_id] = {field: values[offset : offset + days] for field, values in columns.items()}
        offset += days
    return by_kr


def burnup_json(columns: dict[str, list[str]], start: date, end: date) -> str:
    """One KR's burn-up spec as compact JSON, from its columns (`burnup_columns`) and window
    `start`-`end`: the template's JSON, written once, with the two put in."""
    before, between, after = _burnup_template_json()
    domain = json.dumps([_utc_json(start), _utc_json(end)], separators=COMPACT)
    data = ",".join(f'"{field}":[{",".join(columns[field])}]' for field in BURNUP_FIELDS)
    return f'{before}{{"values":[{{{data}}}]}}{between}{domain}{after}'


@functools.cache
def _burnup_template_json() -> tuple[str, str, str]:
    """The burn-up template as compact JSON, cut where its data and its x domain go (in that
    order in the spec)."""
    spec = json.loads(_template("burnup", _burnup_template))
    spec["data"] = "@data@"
    spec["encoding"]["x"]["scale"]["domain"] = "@domain@"
    before, rest = json.dumps(spec, separators=COMPACT, allow_nan=False).split('"@data@"')
    between, after = rest.split('"@domain@"')
    return before, between, after


def _burnup_template() -> str:
    """Every KR's burn-up has the same spec but for its data and days (each KR gets its own
    copy of the JSON)."""
    import altair as alt

    x = alt.X(
        "day:T",
        title=None,
        scale=alt.Scale(type="utc", domain=[_utc(date(2000, 1, 1)), _utc(date(2000, 1, 2))]),
        axis=alt.Axis(format="%b %d", tickCount=4, labelOverlap=True, grid=False),
    )
    y_scale = alt.Scale(domain=[0, 1], clamp=True)
    expected = alt.Chart().mark_line(color=EXPECTED_COLOR, strokeDash=[5, 4], strokeWidth=1.5)
    expected = expected.encode(y=alt.Y("expected_progress:Q", scale=y_scale, title=None))
    progress = alt.Chart().mark_line(color=BURNUP_COLOR, strokeWidth=3)
    progress = progress.encode(
        y=alt.Y("progress:Q", scale=y_scale, title=None, axis=alt.Axis(format="%", tickCount=3)),
        tooltip=[
            alt.Tooltip("day:T", format="%Y-%m-%d", formatType="utc"),
            alt.Tooltip("progress:Q", format=".0%"),
            alt.Tooltip("expected_progress:Q", title="expected", format=".0%"),
        ],
    )
    chart = (
        alt.layer(expected, progress, data=alt.Data(values=[]))
        .encode(x=x)
        .transform_flatten(BURNUP_FIELDS)
        # The ISO day as a date after the flatten (Vega-Lite would parse the column before it).
        .transform_calculate(day="toDate(datum.as_of_date)")
        .properties(width=400, height=100)
        .configure_view(stroke=None)
        .configure_axis(labelFontSize=10)
    )
    return json.dumps(_spec(chart, {"values": []}))


# -- KPI health heatmap ---------------------------------------------------------------------------

HEATMAP_FIELDS = ["metric", "metric_id", "period", "health", "value", "target", "complete"]
HEATMAP_FIELDS += ["label", "word"]  # the cell's text: its value (or "no data"), a second word
DARK_CELLS = "datum.health === 'green' || datum.health === 'red'"  # written on in white


SHORT_SCALES = ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k"))  # from, divided by, suffix


def cell_numbers(cells: pl.DataFrame, units: dict[str, str | None]) -> list[str]:
    """Each cell's `value` as written in the heatmap, in its metric's unit: percentages as such,
    a currency code before the short number (4 significant digits, k/M/B for large numbers),
    other units left to the row label. The scale of each value is chosen in Polars; the
    division stays in Python (Polars multiplies by the inverse, which can round differently)."""
    magnitude = pl.col("value").abs()
    divisor, suffix = pl.lit(1.0), pl.lit("")
    for limit, by, text in reversed(SHORT_SCALES):  # the largest scale that fits wins
        divisor = pl.when(magnitude >= limit).then(pl.lit(by)).otherwise(divisor)
        suffix = pl.when(magnitude >= limit).then(pl.lit(text)).otherwise(suffix)
    short = cells.select("metric_id", "value", divisor.alias("divisor"), suffix.alias("suffix"))
    currencies = {u for u in set(units.values()) if u and CURRENCY.match(u)}
    texts = []
    for metric_id, number, number_divisor, number_suffix in zip(
        *(short[c].to_list() for c in short.columns), strict=True
    ):
        unit = units.get(metric_id)
        if number is None:
            texts.append("–")
        elif unit in (PERCENT_POINTS, FRACTION):
            texts.append(format_value(number, unit))
        else:
            text = f"{number / number_divisor:,.4g}{number_suffix}"
            texts.append(f"{unit} {text}" if unit in currencies else text)
    return texts


def metric_labels(metric_ids: list[str], names: dict[str, str]) -> dict[str, str]:
    """Each metric's row label: its display name, with its id added where two share a name."""
    label = {m: names.get(m) or m for m in metric_ids}
    counts: dict[str, int] = {}
    for text in label.values():
        counts[text] = counts.get(text, 0) + 1
    return {m: text if counts[text] == 1 else f"{text} ({m})" for m, text in label.items()}


def kpi_health_spec(
    summary: pl.DataFrame, names: dict[str, str], units: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """Heatmap of health per metric (rows, by display name) and month (columns), the value
    written in each cell; `no_target` (measured, no target: solid blue-grey, value and "no
    target" written) and `no_data` (nothing measured: white hatched, "no data" written) read
    apart at a glance. The chart takes the width of its container (the page)."""
    periods = summary.select("period_start", "period_label").unique().sort("period_start")
    healths = sorted({h for h in summary["health"].to_list() if h is not None})
    domain = list(HEALTH_COLORS) + [h for h in healths if h not in HEALTH_COLORS]
    colors = [HEALTH_COLORS.get(h, OTHER_HEALTH_COLOR) for h in domain]
    metric_ids = summary["metric_id"].unique().to_list()
    labels = metric_labels(metric_ids, names)
    health = pl.col("health").fill_null("no_data")
    value = finite_or_null("value")
    # Nothing measured: "no data" on one line. Else the value over the health's word, if any.
    empty = (health == "no_data") & value.is_null()
    words = HEALTH_LABELS | {h: "" for h in HEALTH_COLORS if h not in HEALTH_LABELS}
    cells = summary.select(
        pl.col("metric_id").replace_strict(labels, return_dtype=pl.String).alias("metric"),
        "metric_id",
        pl.col("period_label").alias("period"),
        health,
        value,
        finite_or_null("target_value").alias("target"),
        pl.col("is_complete").cast(pl.Boolean).fill_null(False).alias("complete")
        if "is_complete" in summary.columns
        else pl.lit(True).alias("complete"),
        pl.when(empty)
        .then(pl.lit(""))
        .otherwise(health.replace_strict(words, default=health, return_dtype=pl.String))
        .alias("word"),
        empty.alias("empty"),
    )
    columns = {field: cells[field].to_list() for field in cells.columns}
    columns["label"] = [
        HEALTH_LABELS["no_data"] if is_empty else number
        for is_empty, number in zip(columns["empty"], cell_numbers(cells, units or {}), strict=True)
    ]
    spec = json.loads(_template("kpi-health", _kpi_health_template, tuple(domain), tuple(colors)))
    spec["encoding"]["x"]["sort"] = periods["period_label"].to_list()
    spec["encoding"]["y"]["sort"] = sorted(labels.values(), key=str.casefold)
    spec["data"] = {"values": [{field: columns[field] for field in HEATMAP_FIELDS}]}
    return spec


def _kpi_health_template(domain: tuple[str, ...], colors: tuple[str, ...]) -> str:
    """The heatmap's spec but for its data and the order of its rows and columns (one per set
    of health colours)."""
    import altair as alt

    x = alt.X(
        "period:O",
        sort=[],
        title=None,
        axis=alt.Axis(labelAngle=0, orient="top", labelFontSize=12, domain=False, ticks=False),
    )
    y = alt.Y(
        "metric:N",
        sort=[],
        title=None,
        axis=alt.Axis(labelLimit=360, labelFontSize=12, domain=False, ticks=False),
    )
    tooltip = [
        alt.Tooltip("metric:N"),
        alt.Tooltip("metric_id:N", title="metric id"),
        alt.Tooltip("period:O"),
        alt.Tooltip("health_text:N", title="health"),
        alt.Tooltip("value:Q", format=",.4~g"),
        alt.Tooltip("target:Q", format=",.4~g"),
        alt.Tooltip("complete:N", title="period complete"),
    ]
    cells = alt.Chart().mark_rect(stroke="#ffffff", strokeWidth=2)
    cells = cells.encode(
        color=alt.Color(
            "health:N",
            scale=alt.Scale(domain=list(domain), range=list(colors)),
            legend=alt.Legend(
                title="health",
                orient="bottom",
                direction="horizontal",
                symbolType="square",
                symbolStrokeColor="#6b7280",
                symbolStrokeWidth=1,
                labelExpr="replace(datum.label, '_', ' ')",
            ),
        ),
        opacity=alt.condition("datum.complete", alt.value(1.0), alt.value(0.55)),
    )
    stripes = [
        alt.GradientStop(color=color, offset=offset)
        for i in range(STRIPES)
        for color, offset in (
            (NO_DATA_STRIPE, i / STRIPES),
            (NO_DATA_STRIPE, (i + 0.4) / STRIPES),
            (HEALTH_COLORS["no_data"], (i + 0.4) / STRIPES),
            (HEALTH_COLORS["no_data"], (i + 1) / STRIPES),
        )
    ]
    hatch = (
        alt.Chart()
        .transform_filter("datum.health === 'no_data'")
        .mark_rect(
            stroke="#ffffff",
            strokeWidth=2,
            fill=alt.LinearGradient(gradient="linear", x1=0, y1=0, x2=1, y2=0, stops=stripes),
        )
    )
    ink = alt.condition(DARK_CELLS, alt.value(LIGHT_TEXT), alt.value(DARK_TEXT))
    one_line, two_lines = "datum.word === ''", "datum.word !== ''"

    def text(field: str, test: str, **mark: Any) -> alt.Chart:
        return (
            alt.Chart()
            .transform_filter(test)
            .mark_text(baseline="middle", **mark)
            .encode(text=alt.Text(f"{field}:N"), color=ink)
        )

    texts = [
        text("label", one_line, fontSize=11),
        text("label", two_lines, fontSize=11, dy=-7),
        text("word", two_lines, fontSize=10, fontStyle="italic", dy=7),
    ]
    chart = (
        alt.layer(cells, hatch, *texts, data=alt.Data(values=[]))
        .encode(x=x, y=y, tooltip=tooltip)
        .transform_flatten(HEATMAP_FIELDS)
        .transform_calculate(health_text="replace(datum.health, '_', ' ')")
        .properties(width="container", height=alt.Step(HEATMAP_ROW))
        .configure_view(stroke=None)
    )
    return json.dumps(_spec(chart, {"values": []}))


# -- team roll-up ---------------------------------------------------------------------------------


TEAM_FIELDS = ["team", "score", "expected", "objectives"]


def team_spec(teams: pl.DataFrame) -> dict[str, Any]:
    """Team roll-up: weighted score per team with a tick at expected progress."""
    rows = [
        {
            "team": row["team"],
            "score": finite(row["score_weighted"]),
            "expected": finite(row["expected_progress"]),
            "objectives": row["objective_count"],
        }
        for row in teams.iter_rows(named=True)
    ]
    spec = json.loads(_template("team", _team_template))
    spec["encoding"]["y"]["sort"] = teams["team"].to_list()
    spec["height"] = 32 * teams.height
    spec["data"] = _columns(TEAM_FIELDS, rows)
    return spec


def _team_template() -> str:
    """The team chart's spec but for its data, rows and height."""
    import altair as alt

    y = alt.Y("team:N", title=None, sort=[])
    x_scale = alt.Scale(domain=[0, 1], clamp=True)
    bars = alt.Chart().mark_bar(color=TEAM_COLOR, height=16)
    bars = bars.encode(
        x=alt.X("score:Q", scale=x_scale, title="score (weighted)", axis=alt.Axis(format="%")),
        tooltip=[
            alt.Tooltip("team:N"),
            alt.Tooltip("score:Q", format=".0%"),
            alt.Tooltip("expected:Q", format=".0%"),
            alt.Tooltip("objectives:Q"),
        ],
    )
    ticks = alt.Chart().mark_tick(color="#111827", thickness=3, size=24)
    ticks = ticks.encode(x=alt.X("expected:Q", scale=x_scale))
    chart = (
        alt.layer(bars, ticks, data=alt.Data(values=[]))
        .encode(y=y)
        .transform_flatten(TEAM_FIELDS)
        .properties(width=520, height=0)
        .configure_view(stroke=None)
    )
    return json.dumps(_spec(chart, {"values": []}))


# -- the libraries --------------------------------------------------------------------------------


@functools.cache
def vega_bundle() -> str:
    """Vega, Vega-Lite (the version Altair writes) and vega-embed as one script; they set
    `window.vegaEmbed`. Building it takes a second or two, so it is kept in the user's cache,
    named by the vl-convert and Altair versions that determine it."""
    name = f"vega-bundle-{vl_convert.__version__}-altair-{version('altair')}.js"
    if (bundle := cache.read_text(name)) is None:
        import altair as alt

        wanted = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
        known = wanted in vl_convert.get_vegalite_versions()
        bundle = vl_convert.javascript_bundle(vl_version=wanted if known else None)
        cache.write_text(name, bundle)
    return bundle.replace("</script", "<\\/script")
