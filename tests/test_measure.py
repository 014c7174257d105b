"""Measured values a(d) (docs/computation.md): windows, distinct counts, ratios, zero versus null,
filters, time zones and auto baselines, read from a real DuckDB file."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from okr_fixtures import (
    add_observations,
    csv_metric,
    event_metric,
    jan,
    key_result,
    measured,
    objective,
    ratio_metric,
    warehouse,
    write_config,
)

from transforms.attainment import auto_baseline, compute_okr_results
from transforms.calendar import quarter_from_label
from transforms.measure import MetricReader

Q1 = quarter_from_label("2025-Q1")
DEC = lambda dom: date(2024, 12, dom)  # noqa: E731


def reader_for(tmp_path, metrics, observations=(), events=(), settings=None, objectives=None):
    config = write_config(tmp_path / "config", metrics, objectives, settings)
    con = warehouse(tmp_path / "warehouse.duckdb", observations, events)
    return MetricReader(con, config)


# -- period, trailing and last windows --------------------------------------------------------


def test_period_sum_accumulates_from_the_period_start_and_never_reads_past_d(tmp_path):
    reader = reader_for(
        tmp_path,
        [csv_metric("signups")],
        [
            (DEC(31), "signups", 50),  # before S: outside the period
            (jan(1), "signups", 5),
            (jan(2), "signups", 3),
            (jan(4), "signups", 2),
            (jan(6), "signups", 100),  # after the last day asked for
            (jan(2), "other", 1000),  # another metric's rows are not selected
        ],
    )
    # Jan 1: 5; Jan 2: 5+3 = 8; Jan 3: 8; Jan 4: 8+2 = 10; Jan 5: 10
    assert measured(reader, "signups", jan(1), jan(5)) == [5, 8, 8, 10, 10]
    # later first day, same period start: still accumulated from Jan 1
    assert measured(reader, "signups", jan(3), jan(5), period_start=jan(1)) == [8, 10, 10]
    # value over [Jan 2, Jan 4] = 3 + 2
    assert reader.value_over(reader.config.metrics["signups"], jan(2), jan(4)) == 5


def test_trailing_sum_covers_the_n_days_ending_at_d(tmp_path):
    reader = reader_for(
        tmp_path,
        [csv_metric("signups", window="3d")],
        [
            (DEC(30), "signups", 1),
            (jan(1), "signups", 2),
            (jan(2), "signups", 4),
            (jan(4), "signups", 8),
            (jan(6), "signups", 16),
        ],
    )
    assert measured(reader, "signups", jan(1), jan(9)) == [
        3,  # [Dec 30, Jan 1] = 1 + 2 (data before the first day counts)
        6,  # [Dec 31, Jan 2] = 2 + 4
        6,  # [Jan 1, Jan 3] = 2 + 4
        12,  # [Jan 2, Jan 4] = 4 + 8
        8,  # [Jan 3, Jan 5] = 8 (Jan 6 is after d)
        24,  # [Jan 4, Jan 6] = 8 + 16
        16,  # [Jan 5, Jan 7]
        16,  # [Jan 6, Jan 8]
        None,  # [Jan 7, Jan 9]: the source has no rows at all -> null, not 0
    ]


def test_last_ignores_the_window_reaches_before_s_and_averages_the_latest_day(tmp_path):
    reader = reader_for(
        tmp_path,
        [csv_metric("headcount", "last", window="7d")],
        [
            (DEC(20), "headcount", 7),
            (jan(3), "headcount", 4, {"team": "a"}),
            (jan(3), "headcount", 6, {"team": "b"}),
            (jan(5), "headcount", 100),
        ],
    )
    # Jan 1, 2: Dec 20's 7 (12 days back, beyond the ignored 7d window);
    # Jan 3, 4: mean of the two rows of Jan 3 = (4 + 6) / 2 = 5; Jan 5 is after d
    assert measured(reader, "headcount", jan(1), jan(4)) == [7, 7, 5, 5]
    assert reader.value_over(reader.config.metrics["headcount"], jan(1), jan(2)) == 7
    assert measured(reader, "headcount", jan(5), jan(5)) == [100]
    assert measured(reader, "headcount", DEC(19), DEC(19)) == [None]


AVG_ROWS = [
    (jan(1), "latency", 4, {"host": "a"}),
    (jan(1), "latency", 2, {"host": "b"}),
    (jan(2), "latency", 9),
    (jan(4), "latency", 1),
    (jan(6), "other", 50),  # the source has rows on Jan 6, none of them latency
]


@pytest.mark.parametrize(
    ("aggregation", "window", "expected"),
    [
        # period avg over rows, not days: Jan 2 = (4+2+9)/3 = 5 (avg of daily avgs would be 6);
        # Jan 4 = (4+2+9+1)/4 = 4
        ("avg", "period", [3, 5, 5, 4, 4, 4]),
        ("min", "period", [2, 2, 2, 1, 1, 1]),
        ("max", "period", [4, 9, 9, 9, 9, 9]),
        # trailing 2d: Jan 3 = [Jan 2, 3] -> 9; Jan 4 = [Jan 3, 4] -> 1; Jan 6 = [Jan 5, 6] -> no
        # latency rows -> null even though the source has rows
        ("avg", "2d", [3, 5, 9, 1, 1, None]),
        ("min", "2d", [2, 2, 9, 1, 1, None]),
        ("max", "2d", [4, 9, 9, 1, 1, None]),
        # sum: Jan 6 is 0 because the source has (non-matching) rows in [Jan 5, 6]
        ("sum", "2d", [6, 15, 9, 1, 1, 0]),
        ("count", "2d", [2, 3, 1, 1, 1, 0]),
        ("last", "2d", [3, 9, 9, 1, 1, 1]),
    ],
)
def test_avg_min_max_work_on_the_filtered_rows(tmp_path, aggregation, window, expected):
    reader = reader_for(tmp_path, [csv_metric("latency", aggregation, window=window)], AVG_ROWS)
    assert measured(reader, "latency", jan(1), jan(6)) == pytest.approx(expected)


def test_sum_and_count_are_zero_with_source_rows_none_matching_and_null_without(tmp_path):
    reader = reader_for(
        tmp_path,
        [csv_metric("x"), csv_metric("x_count", "count", filter={"metric_id": "x"})]
        + [csv_metric("x_avg", "avg", filter={"metric_id": "x"})],
        [(jan(3), "y", 7), (jan(4), "x", 5)],
    )
    # Jan 1-2: the source has no rows -> null; Jan 3: only y's row -> 0; Jan 4: 5
    assert measured(reader, "x", jan(1), jan(4)) == [None, None, 0, 5]
    assert measured(reader, "x_count", jan(1), jan(4)) == [None, None, 0, 1]
    assert measured(reader, "x_avg", jan(1), jan(4)) == [None, None, None, 5]


def test_a_source_that_was_never_loaded_is_null(tmp_path):
    reader = reader_for(
        tmp_path,
        [
            {
                "id": "won",
                "name": "won",
                "source": "crm_deals",
                "aggregation": "sum",
                "column": "amount",
            }
        ],
    )
    assert measured(reader, "won", jan(1), jan(2)) == [None, None]


# -- distinct counts -------------------------------------------------------------------------

ACTIVE = {"event": ["session_start", "page_view"]}
EVENTS = [
    ("session_start", "2025-01-01T10:00:00+00:00", "u1"),
    ("page_view", "2025-01-02T10:00:00+00:00", "u1"),
    ("page_view", "2025-01-02T11:00:00+00:00", "u1", "a9"),  # same user, same day
    ("page_view", "2025-01-02T12:00:00+00:00", None, "a1"),  # no user id: not a user
    ("logout", "2025-01-03T09:00:00+00:00", "u3"),  # not selected by the filter
    ("page_view", "2025-01-05T09:00:00+00:00", "u2"),
    ("session_start", "2025-01-01T08:00:00+00:00", "u5"),
    ("session_start", "2025-01-09T08:00:00+00:00", "u5"),
    ("session_start", "2025-01-09T09:00:00+00:00", "u1"),
    ("logout", "2025-01-16T09:00:00+00:00", "u4"),
]


def distinct_reader(tmp_path):
    return reader_for(
        tmp_path,
        [
            event_metric("users", "count_distinct", column="user_id", filter=ACTIVE),
            event_metric("wau", "count_distinct", column="user_id", filter=ACTIVE, window="7d"),
            event_metric("visitors", "count_distinct", column="anonymous_id", filter=ACTIVE),
        ],
        events=EVENTS,
    )


def test_period_distinct_counts_do_not_add_up_over_days(tmp_path):
    reader = distinct_reader(tmp_path)
    # Jan 1: {u1, u5}; Jan 2: u1 again (daily counts 2 + 1, distinct still 2); Jan 5: + u2
    assert measured(reader, "users", jan(1), jan(9)) == [2, 2, 2, 2, 3, 3, 3, 3, 3]
    # a period starting Jan 2: u1 (Jan 2); Jan 3-4: u1 still; Jan 5: + u2
    assert measured(reader, "users", jan(2), jan(5)) == [1, 1, 1, 2]
    # a period starting Jan 3: Jan 3 has only u3's logout -> 0, not null; Jan 5: u2
    assert measured(reader, "users", jan(3), jan(5)) == [0, 0, 1]
    # anonymous ids a9 and a1 (Jan 2)
    assert measured(reader, "visitors", jan(1), jan(2)) == [0, 2]
    assert reader.value_over(reader.config.metrics["users"], jan(1), jan(9)) == 3


def test_trailing_distinct_counts_with_gaps(tmp_path):
    reader = distinct_reader(tmp_path)
    # sightings: u1 Jan 1, 2, 9; u5 Jan 1, 9; u2 Jan 5; each trailing window is [d-6, d]
    assert measured(reader, "wau", jan(1), jan(23)) == [
        2, 2, 2, 2,  # Jan 1-4: u1, u5
        3, 3, 3,  # Jan 5-7: + u2 (Jan 7 = [Jan 1, 7] still holds u5's Jan 1)
        2,  # Jan 8 = [Jan 2, 8]: u1 (Jan 2), u2 -- u5 has a one-day gap
        3, 3, 3,  # Jan 9-11 = [Jan 3..5, Jan 9..11]: u2, u1, u5
        2, 2, 2, 2,  # Jan 12-15: u1, u5 (from Jan 9)
        0, 0, 0, 0, 0, 0, 0,  # Jan 16-22: only u4's logout of Jan 16 -> 0
        None,  # Jan 23 = [Jan 17, 23]: the source has no rows -> null
    ]  # fmt: skip
    assert reader.value_over(reader.config.metrics["wau"], jan(1), jan(8)) == 2


# -- ratios -----------------------------------------------------------------------------------


def test_ratio_is_a_ratio_of_sums_not_an_average_of_daily_ratios(tmp_path):
    reader = reader_for(
        tmp_path,
        [
            csv_metric("conv"),
            csv_metric("visits"),
            ratio_metric("rate", "conv", "visits"),
            ratio_metric("rate_2d", "conv", "visits", window="2d"),
            ratio_metric("rate_1d", "conv", "visits", window="1d"),
        ],
        [
            (jan(1), "conv", 1), (jan(1), "visits", 2),
            (jan(2), "conv", 3), (jan(2), "visits", 18),
            (jan(3), "conv", 6), (jan(3), "visits", 20),
            (jan(4), "conv", 1), (jan(4), "visits", 0),
        ],
    )  # fmt: skip
    # Jan 1: 1/2 = 0.5; Jan 2: (1+3)/(2+18) = 0.2 (avg of daily ratios would be 0.333);
    # Jan 3: 10/40 = 0.25; Jan 4: 11/40 = 0.275
    assert measured(reader, "rate", jan(1), jan(4)) == pytest.approx([0.5, 0.2, 0.25, 0.275])
    # 2d: Jan 2 = 4/20; Jan 3 = (3+6)/(18+20) = 9/38; Jan 4 = (6+1)/(20+0) = 7/20
    assert measured(reader, "rate_2d", jan(2), jan(4)) == pytest.approx([0.2, 9 / 38, 0.35])
    # 1d on Jan 4: 1 / 0 -> null
    assert measured(reader, "rate_1d", jan(3), jan(4)) == pytest.approx([0.3, None])
    metric = reader.config.metrics["rate"]
    assert reader.value_over(metric, jan(2), jan(3)) == pytest.approx(9 / 38)


# -- filters and time zones ------------------------------------------------------------------


def test_filters_select_exactly_the_rows_they_name(tmp_path):
    rows = [
        (jan(1), "revenue", 10, {"region": "eu"}),
        (jan(1), "revenue", 20, {"region": "us"}),
        (jan(1), "revenue", 40, {"region": "apac"}),
        (jan(1), "revenue", 80),
    ]
    reader = reader_for(
        tmp_path,
        [
            csv_metric("revenue"),
            csv_metric("rev_eu", filter={"metric_id": "revenue", "dimensions.region": "eu"}),
            csv_metric(
                "rev_eu_us", filter={"metric_id": "revenue", "dimensions.region": ["eu", "us"]}
            ),
            csv_metric("rows_of_20", "count", filter={"metric_id": "revenue", "value": 20}),
            csv_metric("everything", filter={}),
        ],
        rows,
    )
    assert measured(reader, "revenue", jan(1), jan(1)) == [150]  # 10+20+40+80
    assert measured(reader, "rev_eu", jan(1), jan(1)) == [10]
    assert measured(reader, "rev_eu_us", jan(1), jan(1)) == [30]  # 10+20
    assert measured(reader, "rows_of_20", jan(1), jan(1)) == [1]  # a numeric filter value
    assert measured(reader, "everything", jan(1), jan(1)) == [150]  # no implicit filter


DIMENSION_ROWS = [
    (jan(1), "orders", 10, {"customer": "acme", "region": "EMEA", "channel": "web"}),
    (jan(1), "orders", 20, {"customer": "beta", "region": "EMEA"}),
    (jan(1), "orders", 40, {"customer": "acme", "region": "EMEA", "channel": "shop"}),
    (jan(1), "orders", 80, {"customer": "zeta", "region": "US"}),
    (jan(2), "orders", 1, {"customer": "acme", "region": "EMEA"}),
    (jan(2), "orders", 2, {"customer": "gamma", "region": "EMEA"}),
    (jan(2), "refunds", 4, {"customer": "omega", "region": "EMEA"}),
    (jan(3), "orders", 100, {"customer": "delta", "region": "APAC"}),
    (jan(3), "orders", 200, {"region": "EMEA"}),  # no customer: not an id to count
]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # orders in EMEA: Jan 1 {acme, beta}; Jan 2 + gamma; Jan 3 adds no id
        ({"aggregation": "count_distinct", "column": "customer",
          "filter": {"metric_id": "orders", "region": "EMEA"}}, [2, 3, 3]),
        # any metric in EMEA (one filter column: read in the batched scan): + omega on Jan 2
        ({"aggregation": "count_distinct", "column": "customer", "filter": {"region": "EMEA"}},
         [2, 4, 4]),
        # rows in EMEA: 3 on Jan 1, 3 on Jan 2, 1 on Jan 3, accumulated
        ({"aggregation": "count", "filter": {"region": "EMEA"}}, [3, 6, 7]),
        # 10+20+40 = 70; + 1+2+4 = 77; + 200 = 277
        ({"aggregation": "sum", "column": "value", "filter": {"region": ["EMEA"]}}, [70, 77, 277]),
        # without refunds: 70; 73; 273
        ({"aggregation": "sum", "column": "value",
          "filter": {"metric_id": "orders", "region": "EMEA"}}, [70, 73, 273]),
        # a built-in column named bare is the column: {orders}; + refunds
        ({"aggregation": "count_distinct", "column": "metric_id", "filter": {"region": "EMEA"}},
         [1, 2, 2]),
    ],
    ids=["distinct-two-filters", "distinct-one-filter", "count", "sum", "sum-two-filters",
         "builtin-column"],
)  # fmt: skip
def test_csv_dimensions_named_bare_read_the_same_as_with_their_prefix(tmp_path, fields, expected):
    def prefixed(name: str) -> str:
        return name if name in ("metric_id", "value") else f"dimensions.{name}"

    full = {
        **fields,
        "filter": {prefixed(k): v for k, v in fields["filter"].items()},
        **({"column": prefixed(fields["column"])} if "column" in fields else {}),
    }
    bare = {"id": "bare", "name": "bare", "source": "csv_observations", **fields}
    reader = reader_for(tmp_path, [bare, {**bare, **full, "id": "full"}], DIMENSION_ROWS)
    assert measured(reader, "bare", jan(1), jan(3)) == expected
    assert measured(reader, "full", jan(1), jan(3)) == expected
    # the same through a reader that has only one of them, so no scan is shared
    alone = MetricReader(reader.con, write_config(tmp_path / "alone", [bare]))
    assert measured(alone, "bare", jan(1), jan(3)) == expected


@pytest.mark.parametrize(
    ("column", "wanted", "expected", "distinct"),
    [
        ("dimensions.a'b", "x", 1, 1),
        ('dimensions.x") OR 1=1 --', "y", 2, 1),
        ("dimensions.a/b", "z", 4, 1),  # '/' and '~' are escaped in the JSON pointer
        ("dimensions.a~b", "w", 4, 1),
        ("dimensions.a~1b", "w", 0, 0),  # read as written, not as an escape
        ("dimensions.a.b", "v", 8, 1),  # the key is everything after the prefix
        ("dimensions.nope' OR '1'='1", "EMEA", 0, 0),  # a key that matches nothing
        ("region", "EMEA' OR '1'='1", 0, 1),  # a value that matches nothing
        ("region", "EMEA", 16, 1),
    ],
)
def test_odd_dimension_keys_and_values_are_read_exactly(
    tmp_path, column, wanted, expected, distinct
):
    """Sums of the rows the filter selects (values 1, 2, 4, 8, 16 tell which), and the key's
    distinct values over all rows (0 where no row has the key: rows exist, none has an id).
    Config load rejects most of these keys (tests/test_hostile_config.py); the SQL must still
    read them exactly, so they are put in after loading a config with a plain key."""
    rows = [
        (jan(1), "m", 1, {"a'b": "x"}),
        (jan(1), "m", 2, {'x") OR 1=1 --': "y"}),
        (jan(1), "m", 4, {"a/b": "z", "a~b": "w"}),
        (jan(1), "m", 8, {"a.b": "v"}),
        (jan(1), "m", 16, {"region": "EMEA"}),
    ]
    plain = "region"
    metrics = [
        csv_metric("alone", filter={plain: wanted}),  # one filter column: the batched scan
        csv_metric("with_id", filter={"metric_id": "m", plain: wanted}),
        csv_metric("ids", "count_distinct", column=plain, filter={"metric_id": "m"}),
    ]
    reader = reader_for(tmp_path, metrics, rows)
    for metric_id, metric in reader.config.metrics.items():
        reader.config.metrics[metric_id] = metric.model_copy(
            update={
                "filter": {column if k == plain else k: v for k, v in metric.filter.items()},
                "column": column if metric.column == plain else metric.column,
            }
        )
    assert measured(reader, "alone", jan(1), jan(1)) == [expected]
    assert measured(reader, "with_id", jan(1), jan(1)) == [expected]
    assert measured(reader, "ids", jan(1), jan(1)) == [distinct]


def test_event_filters_scalar_list_and_properties(tmp_path):
    events = [
        ("signup", "2025-01-01T10:00:00+00:00", "u1", None, {"plan": "pro"}),
        ("signup", "2025-01-01T11:00:00+00:00", "u2", None, {"plan": "free"}),
        ("login", "2025-01-01T12:00:00+00:00", "u1", None, {"plan": "pro"}),
        ("purchase", "2025-01-01T13:00:00+00:00", "u1", None, {"plan": "pro"}),
    ]
    reader = reader_for(
        tmp_path,
        [
            event_metric("signups", filter={"event": "signup"}),
            event_metric("signups_or_logins", filter={"event": ["signup", "login"]}),
            event_metric("pro_signups", filter={"event": "signup", "properties.plan": "pro"}),
        ],
        events=events,
    )
    assert measured(reader, "signups", jan(1), jan(1)) == [2]
    assert measured(reader, "signups_or_logins", jan(1), jan(1)) == [3]
    assert measured(reader, "pro_signups", jan(1), jan(1)) == [1]


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        # 23:30-05:00 on Jan 1 is 04:30 UTC on Jan 2; 00:30+00:00 on Jan 2 is 19:30 on Jan 1 in NY
        ("UTC", [None, 2]),
        ("America/New_York", [2, None]),
    ],
)
def test_timestamps_become_dates_in_the_settings_timezone(tmp_path, timezone, expected):
    events = [
        ("order", "2025-01-01T23:30:00-05:00", "u1"),
        ("order", "2025-01-02T00:30:00+00:00", "u2"),
    ]
    reader = reader_for(
        tmp_path,
        [event_metric("orders", window="1d")],
        events=events,
        settings={"timezone": timezone},
    )
    assert measured(reader, "orders", jan(1), jan(2)) == expected


# -- auto baselines ---------------------------------------------------------------------------

BASELINE_ROWS = [
    (DEC(31), "signups", 1000),  # outside the same-length window before S
    *[(jan(i), "signups", i) for i in range(1, 11)],  # Jan 1..10: 1..10
    *[(jan(i), "signups", 100) for i in range(11, 21)],  # in the KR window
]


@pytest.mark.parametrize(
    ("aggregation", "window", "expected"),
    [
        ("sum", "period", 55),  # [Jan 1, Jan 10] = 1+2+...+10 (same length as [Jan 11, 20])
        ("avg", "period", 5.5),  # 55 / 10
        ("max", "period", 10),
        ("count", "period", 10),
        ("sum", "3d", 27),  # as of Jan 10: 8 + 9 + 10
        ("last", "period", 10),  # the latest value on or before Jan 10
    ],
)
def test_auto_baseline_is_measured_as_of_the_day_before_s(tmp_path, aggregation, window, expected):
    metric = csv_metric("signups", aggregation, window=window)
    if aggregation == "count":
        metric.pop("column", None)
    kr = key_result("kr", "signups", target=5000 if aggregation != "last" else 50)
    reader = reader_for(
        tmp_path,
        [metric],
        BASELINE_ROWS,
        objectives=[objective("o", [kr], period=(jan(11), jan(20)))],
    )
    assert auto_baseline(reader, reader.config.key_results["kr"]) == pytest.approx(expected)


def test_auto_baseline_sets_a_relative_target_through_the_pipeline(tmp_path):
    kr = key_result("kr", "signups", target="+20%")
    config = write_config(
        tmp_path / "config",
        [csv_metric("signups")],
        [objective("o", [kr], period=(jan(11), jan(20)))],
    )
    con = warehouse(tmp_path / "w.duckdb", BASELINE_ROWS)
    row = compute_okr_results(con, config, [Q1], jan(15)).key_result_attainment.row(0, named=True)
    # b = 55 (Jan 1..10); t = 55 + 20% * 55 = 66; a(Jan 15) = 5 * 100 = 500;
    # cumulative: r = a / t = 500 / 66
    assert row["baseline"] == pytest.approx(55)
    assert row["target"] == pytest.approx(66)
    assert row["current_value"] == pytest.approx(500)
    assert row["raw_progress"] == pytest.approx(500 / 66)
    assert row["progress"] == 1.0
    assert row["status"] == "achieved"


# -- never data after d or after E -----------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "as_of", "value"),
    [
        (jan(3), jan(3), 8),  # as of today: 5 + 3 (Jan 4's 2 is in the future)
        (jan(31), jan(5), 10),  # as of E: 5 + 3 + 2 (Jan 6's 100 is after E)
    ],
)
def test_kr_values_never_include_data_after_today_or_after_e(tmp_path, today, as_of, value):
    kr = key_result("kr", "signups", baseline=0, target=20)
    config = write_config(
        tmp_path / "config",
        [csv_metric("signups")],
        [objective("o", [kr], period=(jan(1), jan(5)))],
    )
    con = warehouse(
        tmp_path / "w.duckdb",
        [
            (DEC(31), "signups", 50),
            (jan(1), "signups", 5),
            (jan(2), "signups", 3),
            (jan(4), "signups", 2),
            (jan(6), "signups", 100),
        ],
    )
    results = compute_okr_results(con, config, [Q1], today)
    row = results.key_result_attainment.row(0, named=True)
    assert row["as_of_date"] == as_of
    assert row["current_value"] == value
    daily = results.key_result_progress_daily
    assert daily["as_of_date"].max() == as_of


def test_last_kr_value_at_e_ignores_later_rows(tmp_path):
    kr = key_result("kr", "active", "maintain_above", target=1)
    config = write_config(
        tmp_path / "config",
        [csv_metric("active", "last")],
        [objective("o", [kr], period=(jan(1), jan(3)))],
    )
    con = warehouse(tmp_path / "w.duckdb", [(jan(2), "active", 4)])
    add_observations(con, [(jan(4), "active", 1000)])
    row = compute_okr_results(con, config, [Q1], jan(10)).key_result_attainment.row(0, named=True)
    # as of E = Jan 3 the latest value is Jan 2's 4; met on Jan 2 and 3 of 3 days -> p = 2/3
    assert row["as_of_date"] == jan(3)
    assert row["current_value"] == 4
    assert row["progress"] == pytest.approx(2 / 3)


def test_latest_data_dates_agree_with_the_daily_series(tmp_path):
    """The light max() per key gives what `latest_dates` gives: per aggregation, list filters,
    ratios (the older part), null values, rows after the as-of day and never-seen metrics."""
    metrics = [
        csv_metric("signups"),
        csv_metric("both", filter={"metric_id": ["signups", "visits"]}),
        csv_metric("rows", "count", column=None, filter={"metric_id": "signups"}),
        csv_metric("nothing", filter={"metric_id": "nothing"}),
        csv_metric("visits"),
        ratio_metric("rate", "signups", "visits"),
        event_metric("logins", "count", filter={"event": "login"}),
        event_metric("users", "count_distinct", column="user_id", filter={}),
    ]
    observations = [
        (jan(1), "signups", 1),
        (jan(3), "visits", 5),
        (jan(4), "signups", None),  # a row without a value: data for counts only
        (jan(9), "signups", 7),  # after the as-of day
    ]
    events = [
        ("login", "2025-01-02T10:00:00+00:00", "u1"),
        ("view", "2025-01-05T10:00:00+00:00", "u2"),
    ]
    reader = reader_for(tmp_path, metrics, observations, events)
    as_of = jan(6)
    light = reader.latest_data_dates(reader.config.metrics.items(), as_of)
    for metric_id, metric in reader.config.metrics.items():
        [expected] = reader.latest_dates(metric, as_of, as_of)["latest_date"].to_list()
        assert light[metric_id] == expected, metric_id
    assert light["signups"] == jan(1) and light["rows"] == jan(4) and light["nothing"] is None
    assert light["rate"] == jan(1) and light["logins"] == jan(2) and light["users"] == jan(5)


def test_a_reader_bounded_by_since_measures_exactly_what_an_unbounded_one_does(
    tmp_path, monkeypatch
):
    """`since` only skips rows nothing asks for: `last` values and staleness still look back
    past it, and a request reaching before it widens the reader to all days."""
    import random

    from transforms.measure import SeriesRequest

    rng = random.Random(7)
    metrics = [
        csv_metric("sales"),
        csv_metric("sales_7d", filter={"metric_id": "sales"}, window="7d"),
        csv_metric("level", "last"),
        csv_metric("low", "min"),
        csv_metric("mean", "avg", window="5d"),
        csv_metric("rows", "count", filter={"metric_id": ["sales", "level"]}),
        csv_metric("sparse", "last"),  # its only data is long before `since`
        ratio_metric("share", "logins", "sales"),
        event_metric("users", "count_distinct", column="user_id"),
        event_metric("users_3d", "count_distinct", column="user_id", window="3d"),
        event_metric("logins", "count", filter={"event": "login"}),
    ]
    observations = [(DEC(1), "sparse", 42.0)]
    events = []
    for offset in range(60):
        day = DEC(1) + timedelta(days=offset)
        for metric_id in ("sales", "level", "low", "mean"):
            if rng.random() < 0.7:
                observations.append((day, metric_id, rng.choice([None, rng.randint(0, 50)])))
        for _ in range(rng.randint(0, 3)):
            events.append(
                (rng.choice(["login", "view"]), f"{day}T10:00:00+00:00", f"u{rng.randint(1, 12)}")
            )
    config = write_config(tmp_path / "config", metrics)
    con = warehouse(tmp_path / "warehouse.duckdb", observations, events)
    since = jan(5)  # the 7-day window from Jan 15 reads Jan 9 on

    def everything(reader: MetricReader) -> list:
        requests = [
            SeriesRequest(m.id, m, jan(15), jan(25), jan(15)) for m in config.metrics.values()
        ]
        windows = pl.DataFrame(
            {
                "metric_id": list(config.metrics),
                "start": [jan(15)] * len(metrics),
                "end": [jan(22)] * len(metrics),
            }
        )
        return [
            reader.series_many(requests).to_dicts(),
            reader.values_many(windows).to_dicts(),
            reader.latest_many(config.metrics.items(), jan(15), jan(20)).to_dicts(),
            {m.id: reader.earliest_date(m) for m in config.metrics.values()},
        ]

    unbounded = everything(MetricReader(con, config))
    bounded = MetricReader(con, config, since=since)
    assert everything(bounded) == unbounded
    assert bounded.since == since  # nothing asked for earlier days
    assert {r["id"]: r["value"] for r in unbounded[0] if r["date"] == jan(15)}["sparse"] == 42
    # windows and series before `since`: those metrics are read again in full, the numbers
    # stay right, and everything measured before is still right
    early = pl.DataFrame(
        {"metric_id": ["sales", "users", "share"], "start": [DEC(20)] * 3, "end": [jan(5)] * 3}
    )
    early_series = [
        SeriesRequest(m, config.metrics[m], DEC(10), jan(3), DEC(10))
        for m in ("users_3d", "mean", "rows")
    ]
    fresh = MetricReader(con, config)
    assert bounded.values_many(early).to_dicts() == fresh.values_many(early).to_dicts()
    assert (
        bounded.series_many(early_series).to_dicts() == fresh.series_many(early_series).to_dicts()
    )
    assert everything(bounded) == unbounded
    # windows summed a few at a time (as for thousands of metrics) give the same bits
    monkeypatch.setattr("transforms.windows.WINDOW_DAYS_PER_SLICE", 10)
    assert everything(MetricReader(con, config)) == unbounded
    assert MetricReader(con, config).values_many(early).to_dicts() == fresh.values_many(
        early
    ).to_dicts()


def test_metrics_filtered_on_two_columns_share_a_scan_and_never_mix_their_values(tmp_path):
    """Metrics filtered on the same columns are read in one scan keyed by the combination of
    their values; values that would run together when joined with a separator (`a:1` + `x`
    against `a` + `1:x`), multi-byte text and rows without the dimension stay apart."""
    rows = [
        (jan(1), "a:1", 1, {"region": "x"}),
        (jan(1), "a", 2, {"region": "1:x"}),
        (jan(1), "é", 4, {"region": "ü"}),
        (jan(1), "é", 8),  # no region
        (jan(1), "a:1", 16, {"region": "y"}),
        (jan(2), "a", 32, {"region": "1:x"}),
    ]
    metrics = [
        csv_metric("one", filter={"metric_id": "a:1", "region": "x"}),
        csv_metric("two", filter={"metric_id": "a", "region": "1:x"}),
        csv_metric("accents", filter={"metric_id": "é", "region": ["ü", "x"]}),
        csv_metric("many", filter={"metric_id": ["a:1", "a"], "region": ["x", "y", "1:x"]}),
        csv_metric("rows", "count", filter={"metric_id": "é", "region": ["ü", ""]}),
    ]
    reader = reader_for(tmp_path, metrics, rows)
    assert measured(reader, "one", jan(1), jan(2)) == [1, 1]
    assert measured(reader, "two", jan(1), jan(2)) == [2, 34]
    assert measured(reader, "accents", jan(1), jan(2)) == [4, 4]
    assert measured(reader, "many", jan(1), jan(2)) == [19, 51]  # 1 + 2 + 16; + 32
    assert measured(reader, "rows", jan(1), jan(2)) == [1, 1]  # the row without a region is not ""
    con = reader.con
    # and each alone, in a scan of its own, reads the same
    for index, metric in enumerate(metrics):
        alone = MetricReader(con, write_config(tmp_path / f"alone{index}", [metric]))
        assert measured(alone, metric["id"], jan(1), jan(2)) == measured(
            reader, metric["id"], jan(1), jan(2)
        )


def test_distinct_ids_over_many_overlapping_windows_equal_a_count_of_the_raw_ids(tmp_path):
    """Windows of a distinct count (KPI periods, baselines, trailing days) are counted from the
    sightings; every window equals the number of ids seen on its days, counted directly."""
    import random

    rng = random.Random(15)
    events, seen = [], {}
    for offset in range(60):
        day = jan(1) + timedelta(days=offset)
        for _ in range(rng.randint(0, 6)):
            user = f"u{rng.randint(1, 25)}"
            events.append(("login", f"{day}T12:00:00+00:00", user))
            seen.setdefault(day, set()).add(user)
    reader = reader_for(
        tmp_path,
        [
            event_metric("users", "count_distinct", column="user_id"),
            event_metric("users_7d", "count_distinct", column="user_id", window="7d"),
        ],
        events=events,
    )
    starts = [jan(1) + timedelta(days=rng.randint(0, 59)) for _ in range(80)]
    ends = [start + timedelta(days=rng.randint(0, 40)) for start in starts]
    windows = pl.DataFrame({"metric_id": ["users"] * 80, "start": starts, "end": ends})

    def direct(start: date, end: date) -> float:
        ids = set()
        for offset in range((end - start).days + 1):
            ids |= seen.get(start + timedelta(days=offset), set())
        return float(len(ids))

    values = reader.values_many(windows)["value"].to_list()
    assert values == [direct(s, e) for s, e in zip(starts, ends, strict=True)]
    # a trailing count, day by day, is the distinct ids of the 7 days up to it
    series = measured(reader, "users_7d", jan(10), jan(28))
    expected = [
        direct(jan(10) + timedelta(days=i - 6), jan(10) + timedelta(days=i)) for i in range(19)
    ]
    assert series == expected
