"""Measured values a(d) from daily partials (docs/computation.md), in Polars alone: period,
trailing and `last` windows, distinct counts from their daily deltas, ratios from their parts, and
values as of a window's end. The series and windows of every request are computed in a few
frame-wide expressions. What they are computed from is read by `transforms.scan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from transforms.config import Metric, RatioMetric, SourceMetric

SERIES_SCHEMA = {"date": pl.Date, "value": pl.Float64, "latest_date": pl.Date}
WINDOW_VALUES_SCHEMA = {"_i": pl.UInt32, "value": pl.Float64}
WINDOW_DAYS_PER_SLICE = 1_000_000
"""Days of windows summed at once (a few tens of MB of rows)."""
_PART = "\x1f"
"""Separates a ratio request's id from its part's side in the parts' request ids."""
_SIDES = ("num", "den")


@dataclass(frozen=True)
class SeriesRequest:
    """a(d) of `metric` for every d in [first, last]; period windows accumulate from
    `period_start` (KR windows start there; success periods measure [period_start, last])."""

    id: str
    metric: Metric
    first: date
    last: date
    period_start: date


def first_day_read(request: SeriesRequest) -> date:
    """The first day whose rows a(d) for d in the request reads (`last` values look back through
    the carried day, see `Scanner.since`)."""
    metric = request.metric
    if metric.aggregation == "last":
        return request.first
    if metric.trailing_days:
        return request.first - timedelta(days=metric.trailing_days - 1)
    return min(request.first, request.period_start)


def valued_as_of_end(metric: Metric) -> bool:
    """Trailing and `last` metrics take their value over a window as of its end."""
    return isinstance(metric, SourceMetric) and (
        metric.window != "period" or metric.aggregation == "last"
    )


# -- period, trailing and `last` windows over daily partials ------------------------------------


def partial_series(
    requests: list[SeriesRequest], codes: pl.Series, partials: pl.DataFrame
) -> pl.DataFrame:
    """a(d) (`id`, `date`, `value`) of requests of period, trailing and `last` metrics, the
    metric of request i having the daily partials of `pkey` codes[i] in `partials`."""
    first_partial = (
        dict(partials.group_by("pkey").agg(pl.col("date").min()).iter_rows())
        if any(r.metric.aggregation == "last" for r in requests)
        else {}
    )
    frame = pl.DataFrame(
        [
            {
                "id": r.id,
                "pkey": code,
                "aggregation": r.metric.aggregation,
                "trailing": r.metric.trailing_days,
                "first": r.first,
                "last": r.last,
                "period_start": r.period_start,
                "read_from": _history_start(r, first_partial.get(code)),
            }
            for r, code in zip(requests, codes.to_list(), strict=True)
        ],
        schema={
            "id": pl.String,
            "pkey": pl.UInt32,
            "aggregation": pl.String,
            "trailing": pl.Int64,
            "first": pl.Date,
            "last": pl.Date,
            "period_start": pl.Date,
            "read_from": pl.Date,
        },
    )
    days = (
        frame.with_columns(date=pl.date_ranges("read_from", "last"))
        .explode("date")
        .join(partials, on=["pkey", "date"], how="left", maintain_order="left")
        .with_columns(pl.col("matched_rows", "value_sum", "source_rows").fill_null(0))
    )
    outputs = []
    for (aggregation, trailing), group in days.partition_by(
        "aggregation", "trailing", as_dict=True, maintain_order=True
    ).items():
        outputs.append(_windowed(group, aggregation, trailing))
    values = pl.concat(outputs) if outputs else days.select("id", "date", value=pl.lit(0.0))
    return (
        calendar_of(requests)
        .join(values, on=["id", "date"], how="left", maintain_order="left")
        .select("id", "date", pl.col("value").cast(pl.Float64))
    )


def _history_start(request: SeriesRequest, first_partial: date | None) -> date:
    """The first day whose data a(first) can depend on; a `last` value looks back to the
    metric's first daily partial."""
    metric = request.metric
    start = request.first - timedelta(days=(metric.trailing_days or 1) - 1)
    if metric.trailing_days is None:
        start = min(start, request.period_start)
    if metric.aggregation == "last":
        start = min(start, first_partial or start)
    return start


def with_latest(
    values: pl.DataFrame, requests: list[SeriesRequest], codes: pl.Series, partials: pl.DataFrame
) -> pl.DataFrame:
    """Adds `latest_date` to `values` (`id`, `date`, ...): the latest day <= date on which the
    request's metric (with the daily partials of `pkey` codes[i]) has data."""
    keys = pl.DataFrame(
        {"id": [r.id for r in requests], "pkey": codes},
        schema={"id": pl.String, "pkey": pl.UInt32},
    ).unique("id")
    data_days = (
        partials.filter(pl.col("matched_rows") > 0)
        .select("pkey", "date", latest_date=pl.col("date"))
        .sort("date")
    )
    return (
        values.with_row_index("_row")
        .join(keys, on="id", how="left")
        .sort("date")
        .join_asof(data_days, on="date", by="pkey", strategy="backward", check_sortedness=False)
        .sort("_row")
        .drop("_row", "pkey")
    )


# -- windows (success-metric periods, days, baselines) ------------------------------------------


def window_values(
    windows: pl.DataFrame, partials: pl.DataFrame, distinct_n: pl.DataFrame
) -> pl.DataFrame:
    """Period metrics over each window's own days (`_i`, `pkey`, `aggregation`, `start`, `end`):
    `_i`, `value`, from the daily partials and, for distinct counts, the distinct ids counted per
    window (`_i`, `distinct_n`)."""
    if (windows["start"] == windows["end"]).all():  # single days (metric_daily): no sums
        totals = windows.select("_i", "pkey", date="start").join(
            partials, on=["pkey", "date"], how="inner"
        )
    else:
        # A window is one row per day while it is summed: in slices of about
        # WINDOW_DAYS_PER_SLICE days, so memory stays flat however many metrics there are.
        days = (pl.col("end") - pl.col("start")).dt.total_days() + 1
        slices = windows.with_columns(
            _slice=(days.cum_sum() // WINDOW_DAYS_PER_SLICE).cast(pl.UInt32)
        ).partition_by("_slice", maintain_order=True)
        totals = pl.concat(
            [
                part.select("_i", "pkey", date=pl.date_ranges("start", "end"))
                .explode("date")
                .join(partials, on=["pkey", "date"], how="inner")
                .group_by("_i")
                .agg(  # summed in date order, whatever order the join left: the same bits
                    pl.col("matched_rows", "value_sum", "source_rows").sort_by("date").sum(),
                    pl.col("value_min").min(),
                    pl.col("value_max").max(),
                )
                for part in slices
            ]
        )
    totals = totals.select(
        "_i", "matched_rows", "value_sum", "value_min", "value_max", "source_rows"
    )
    frame = (
        windows.join(totals, on="_i", how="left")
        .with_columns(pl.col("matched_rows", "source_rows").fill_null(0))
        .join(distinct_n, on="_i", how="left")
    )
    n, source_n, aggregation = (
        pl.col("matched_rows"),
        pl.col("source_rows"),
        pl.col("aggregation"),
    )
    value = (
        pl.when(n == 0)
        # zero when the source has rows in the window but none match, null when it has none
        .then(
            pl.when(aggregation.is_in(["sum", "count", "count_distinct"]) & (source_n > 0)).then(
                0.0
            )
        )
        .when(aggregation == "count_distinct")
        .then(pl.col("distinct_n").fill_null(0.0))
        .when(aggregation == "min")
        .then(pl.col("value_min"))
        .when(aggregation == "max")
        .then(pl.col("value_max"))
        .when(aggregation == "avg")
        .then(pl.col("value_sum") / n)
        .when(aggregation == "count")
        .then(n)
        .otherwise(pl.col("value_sum"))
    )
    return frame.select("_i", value=value.cast(pl.Float64))


def values_at_end(windows: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
    """Trailing and `last` metrics over windows (`_i`, `metric_id`, `end`): `_i`, `value`, the
    value a(end) of the metric's `series` (`id`: the metric id)."""
    return windows.join(
        series.select(pl.col("id").alias("metric_id"), pl.col("date").alias("end"), "value"),
        on=["metric_id", "end"],
        how="left",
    ).select("_i", "value")


# -- distinct counts ----------------------------------------------------------------------------


def distinct_first_day(request: SeriesRequest) -> date:
    """The first day a distinct count of the request counts ids from."""
    trailing = request.metric.trailing_days
    return request.first - timedelta(days=trailing - 1) if trailing else request.period_start


def distinct_series(
    request: SeriesRequest, daily: pl.DataFrame, deltas: pl.DataFrame
) -> pl.DataFrame:
    """a(d) (`id`, `date`, `value`) of a distinct count, from its metric's daily partials and the
    daily change in distinct ids counted from `distinct_first_day` (`date`, `delta`)."""
    window = _window_sums(request.metric.trailing_days)
    return (
        _calendar(distinct_first_day(request), request.last)
        .join(daily, on="date", how="left")
        .join(deltas, on="date", how="left")
        .with_columns(pl.col("matched_rows", "source_rows", "delta").fill_null(0))
        .select(
            pl.lit(request.id, pl.String).alias("id"),
            "date",
            value=pl.when(window("matched_rows") > 0)
            .then(pl.col("delta").cum_sum())
            .when(window("source_rows") > 0)
            .then(0.0),
        )
        .filter(pl.col("date") >= request.first)
    )


# -- ratios -------------------------------------------------------------------------------------


def ratio_parts(ratio: RatioMetric, metrics: Mapping[str, Metric]) -> list[SourceMetric]:
    """A ratio's numerator and denominator, each measured over the ratio's own window (the
    config checked that both are source metrics)."""
    return [
        metrics[metric_id].model_copy(update={"window": ratio.window}) for metric_id in ratio.parts
    ]


def part_requests(
    ratios: list[SeriesRequest], metrics: Mapping[str, Metric]
) -> list[SeriesRequest]:
    """The requests of the ratios' numerators and denominators; `ratio_series` and
    `ratio_latest` put their results together."""
    return [
        SeriesRequest(f"{r.id}{_PART}{side}", part, r.first, r.last, r.period_start)
        for r in ratios
        for side, part in zip(_SIDES, ratio_parts(r.metric, metrics), strict=True)
    ]


def ratio_series(parts: pl.DataFrame) -> pl.DataFrame:
    """The series of ratios from the series of their `part_requests`."""
    parts = parts.with_columns(
        pl.col("id").str.split_exact(_PART, 1).struct.rename_fields(["ratio", "side"])
    ).unnest("id")
    numerator = parts.filter(pl.col("side") == "num").drop("side")
    denominator = parts.filter(pl.col("side") == "den").drop("side")
    return numerator.join(
        denominator, on=["ratio", "date"], suffix="_den", maintain_order="left"
    ).select(
        pl.col("ratio").alias("id"),
        "date",
        value=pl.when(pl.col("value_den") != 0).then(pl.col("value") / pl.col("value_den")),
        # The ratio is only as fresh as the older of its two parts.
        latest_date=pl.min_horizontal("latest_date", "latest_date_den"),
    )


def ratio_latest(parts: pl.DataFrame) -> pl.DataFrame:
    """`id`, `date`, `latest_date` of ratios from those of their `part_requests`: a ratio is as
    fresh as its older part."""
    return (
        parts.with_columns(
            pl.col("id").str.split_exact(_PART, 1).struct.field("field_0").alias("id")
        )
        .group_by("id", "date")
        .agg(pl.col("latest_date").min())
        .sort("id", "date")
    )


def part_windows(
    windows: pl.DataFrame, ratios: Mapping[str, Metric], metrics: Mapping[str, Metric]
) -> tuple[dict[str, Metric], list[pl.DataFrame]]:
    """For windows of ratios (`metric_id`, `start`, `end`, by the ratios in `ratios`): the
    windows of their numerators and of their denominators, and the part metrics by the ids
    those windows give them; `ratio_values` divides their values."""
    parts: dict[str, Metric] = {}
    for metric_id in windows["metric_id"].unique().to_list():
        for side, part in zip(_SIDES, ratio_parts(ratios[metric_id], metrics), strict=True):
            parts[f"{metric_id}{_PART}{side}"] = part
    sides = [
        windows.select("start", "end", metric_id=pl.col("metric_id") + f"{_PART}{side}")
        for side in _SIDES
    ]
    return parts, sides


def ratio_values(
    windows: pl.DataFrame, numerator: pl.Series, denominator: pl.Series
) -> pl.DataFrame:
    """`_i`, `value` of windows of ratios, from the values of their `part_windows`."""
    return windows.select("_i", value=pl.when(denominator != 0).then(numerator / denominator))


# -- window sums -----------------------------------------------------------------------------


def _windowed(days: pl.DataFrame, aggregation: str, trailing: int | None) -> pl.DataFrame:
    """a(d) of requests of one aggregation and window from their days' partials (`id`, `date`,
    `matched_rows`, `value_sum`, `value_min`, `value_max`, `source_rows`, `first`,
    `period_start`), days in order per id."""
    if aggregation == "last":
        daily_mean = pl.when(pl.col("matched_rows") > 0).then(
            pl.col("value_sum") / pl.col("matched_rows")
        )
        values = days.select("id", "date", "first", value=daily_mean.forward_fill().over("id"))
        return values.filter(pl.col("date") >= pl.col("first")).drop("first")
    if trailing is None:
        days = days.filter(pl.col("date") >= pl.col("period_start"))
    else:  # counts add up exactly in any order; sums of decimals only in a fixed one
        days = days.with_columns(_s=_trailing_sums(days, "value_sum", trailing))

    def window(column: str) -> pl.Expr:
        return _window_sums(trailing)(column).over("id")

    n, source_n = window("matched_rows"), window("source_rows")
    s = window("value_sum") if trailing is None else pl.col("_s")
    if aggregation in ("min", "max"):
        extreme = pl.col("value_min" if aggregation == "min" else "value_max")
        if trailing is None:
            extreme = extreme.cum_min() if aggregation == "min" else extreme.cum_max()
            extreme = extreme.forward_fill()
        else:
            roll = extreme.rolling_min if aggregation == "min" else extreme.rolling_max
            extreme = roll(trailing, min_samples=1)
        value = pl.when(n > 0).then(extreme.over("id"))
    elif aggregation == "avg":
        value = pl.when(n > 0).then(s / n)
    else:  # sum, count: zero when the source has rows but none match, null when it has none
        total = n if aggregation == "count" else s
        value = pl.when(n > 0).then(total).when(source_n > 0).then(0.0)
    values = days.select("id", "date", "first", value=value.cast(pl.Float64))
    return values.filter(pl.col("date") >= pl.col("first")).drop("first")


def _window_sums(trailing: int | None):
    """Sum of a daily column over the window ending on each day: cumulative for period windows
    (the frame already starts at the period start), fixed-width for trailing windows."""

    def window(column: str) -> pl.Expr:
        if trailing is None:
            return pl.col(column).cum_sum()
        return pl.col(column).rolling_sum(trailing, min_samples=1)

    return window


def _trailing_sums(days: pl.DataFrame, column: str, trailing: int) -> pl.Series:
    """For each row of `days` (days in order per `id`), the sum of `column` over its day and the
    `trailing - 1` days before it in its series (days before the series' first count 0).

    Each sum is added up in one order fixed relative to its own day, so it depends on its
    window's values only. (`rolling_sum` adds the entering day and subtracts the leaving one,
    carrying rounding from every earlier day of the frame: a series read from another first day
    got other bits.) Sums of 1, 2, 4, ... days ending at each day are built by doubling; a
    window adds those of the binary digits of its length: about log2(trailing) passes."""
    frame = days.select(
        blocks=pl.col(column).cast(pl.Float64),  # sums of `width` days ending at each day
        total=pl.lit(0.0, pl.Float64),
        position=pl.int_range(pl.len()).over(pl.col("id").rle_id()),
    )

    def back(name: str, count: int) -> pl.Expr:
        """`name` of the day `count` days before (0 before the series' first day)."""
        return pl.when(pl.col("position") >= count).then(pl.col(name).shift(count)).otherwise(0.0)

    width, offset = 1, 0
    while width <= trailing:
        if trailing & width:
            frame = frame.with_columns(total=pl.col("total") + back("blocks", offset))
            offset += width
        if width * 2 <= trailing:
            frame = frame.with_columns(blocks=pl.col("blocks") + back("blocks", width))
        width *= 2
    return frame["total"]


def _calendar(first: date, last: date) -> pl.DataFrame:
    return (
        pl.DataFrame({"date": pl.date_range(first, last, "1d", eager=True)})
        if last >= first
        else pl.DataFrame(schema={"date": pl.Date})
    )


def calendar_of(requests: list[SeriesRequest]) -> pl.DataFrame:
    """`id`, `date` for every day in [first, last] of each request."""
    return (
        pl.DataFrame(
            {
                "id": [r.id for r in requests],
                "first": [r.first for r in requests],
                "last": [r.last for r in requests],
            },
            schema={"id": pl.String, "first": pl.Date, "last": pl.Date},
        )
        .select("id", date=pl.date_ranges("first", "last"))
        .explode("date")
    )
