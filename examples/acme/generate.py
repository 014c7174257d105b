"""Generate the Acme demo's input files: the CSV drop folder (`examples/acme/data/csv/`) and the
analytics exports (`examples/acme/data/analytics/`).

Deterministic: the same seed writes byte-identical files, so the shipped data can be regenerated
and diffed. Daily observations run from 2024-07-01 (one quarter of history before the first
OKR quarter, for auto baselines) through 2026-11-20, the demo's as-of date.

The files show every shape the CSV source accepts (docs/sources.md):

    product_metrics_<year>.csv    long `date,metric_id,value`         active users, churn, retention
    revenue_by_region_<year>.csv  long `date,metric_id,value,region`  revenue per day and region
    customers_<year>.csv          long `date,metric_id,value`         new and major new clients
    csat_survey.csv               long, `;`-delimited                 weekly CSAT (Mondays)
    web_analytics_<year>.csv      wide, UTF-8 with BOM                `date,website_visits,...`

The trends are scripted per quarter (TRENDS below) so that, as of 2026-11-20, the OKRs in
`okrs.yaml` show a realistic mix: some KRs achieved, some missed, and in the running quarter
2026-Q4 KRs on track, at risk and off track. The CSAT survey export stops after 2026-11-02 (the
vendor changed its API), so CSAT is stale on the as-of date, and it has a three-week gap in
August 2025 (survey tool migration).

The analytics exports (docs/sources.md) come from Acme's self-serve tier: the product
analytics tool's raw event export of the self-serve web app, and the web analytics tool's
traffic report of the public website where visitors start trials:

    analytics/events_<yyyy>q<n>.jsonl.gz  NDJSON events of the quarter (UTC dates), gzipped
    analytics/traffic_report_<year>.csv   `#` preamble, `Date,Sessions,Active users,Conversions`,
                                          YYYYMMDD dates, "1,234" numbers, a totals row

Events are `session_start`, `page_view`, `signup` and `purchase`. Registered users send a
`user_id`; anonymous visitors only an `anonymous_id` (a signup carries both). Timestamps carry
the visitor's local offset (`+00:00`, `-05:00`/`-04:00` New York, `+01:00`/`+02:00` Berlin), so
an evening session in New York falls on the next UTC day. Every instant lies within the UTC days
2024-07-01 .. 2026-11-20. The engaged user pool follows APP_TRENDS (its growth per quarter), and
the website's conversion rate dips in August 2025 (a broken signup form) and after the pricing
change of 2026-10-15. The CRM data of the demo comes from `connectors/crm/simulator.py`.

Usage: python examples/acme/generate.py [--out DIR] [--seed N]   (DIR: the data root)
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import math
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

FIRST_DAY = date(2024, 7, 1)
LAST_DAY = date(2026, 11, 20)
DEFAULT_OUT = Path(__file__).resolve().parent / "data"
DEFAULT_SEED = 2026

# The story, one row per quarter. Levels (CSAT, churn, retention) are the values on the quarter's
# first day, interpolated linearly in between; active users compound the quarter's growth; revenue
# is the quarter's average per day and region; major clients (contracts >= EUR 100k a year) are
# the quarter's count. The 2027-Q1 row only closes the last interpolation.
#
# - Active users: the product KR asks for +20% a quarter; the mobile-app launch (2025-Q1), the
#   year-end push (2025-Q4) and the collaboration release (2026-Q2) beat it.
# - CSAT climbs from 74% to 91%; churn falls from 3.3% to 1.8% a month, but stalls in 2026-H2.
# - Revenue in the target regions (EMEA, APAC) grows 10%+ in every other quarter.


class Trend(NamedTuple):
    active_users_growth: float
    csat: float
    churn: float
    retention: float
    major_clients: int
    revenue: tuple[int, int, int, int]  # na, emea, apac, latam


TRENDS = {
    "2024-Q3": Trend(0.05, 73.5, 3.25, 55.0, 4, (61_000, 36_000, 14_000, 7_000)),
    "2024-Q4": Trend(0.12, 74.8, 3.17, 55.6, 6, (62_500, 41_500, 16_200, 7_100)),
    "2025-Q1": Trend(0.23, 76.5, 3.05, 57.0, 3, (63_000, 41_600, 16_300, 7_300)),
    "2025-Q2": Trend(0.12, 78.5, 2.80, 60.4, 5, (64_500, 47_000, 18_600, 7_400)),
    "2025-Q3": Trend(0.06, 80.5, 2.49, 62.4, 4, (65_000, 48_500, 19_500, 7_600)),
    "2025-Q4": Trend(0.26, 83.0, 2.42, 64.2, 7, (67_000, 56_000, 22_600, 7_800)),
    "2026-Q1": Trend(0.15, 86.2, 2.30, 67.5, 2, (68_000, 56_500, 23_200, 8_000)),
    "2026-Q2": Trend(0.25, 86.6, 2.12, 71.0, 5, (69_500, 64_500, 26_800, 8_100)),
    "2026-Q3": Trend(0.09, 90.6, 1.87, 73.2, 6, (70_000, 68_000, 28_500, 8_300)),
    "2026-Q4": Trend(0.17, 91.0, 1.84, 75.0, 1, (71_500, 71_500, 29_800, 8_400)),  # to Nov 20
    "2027-Q1": Trend(0.00, 89.0, 1.80, 77.9, 0, (71_500, 71_500, 29_800, 8_400)),
}
QUARTERS = list(TRENDS)
QUARTER_STARTS = {label: date(int(label[:4]), 3 * int(label[-1]) - 2, 1) for label in QUARTERS}
ACTIVE_USERS_START = 24_000
REGIONS = ("na", "emea", "apac", "latam")
# Marketing campaigns: (start, days, uplift of visits, shares and campaign revenue).
CAMPAIGNS = [
    (date(2024, 11, 25), 10, 0.45),  # Black Friday
    (date(2025, 3, 10), 14, 0.35),  # spring launch (mobile app)
    (date(2025, 9, 15), 14, 0.25),  # autumn webinar series
    (date(2025, 11, 24), 10, 0.50),  # Black Friday
    (date(2026, 3, 2), 14, 0.40),  # collaboration release teaser
    (date(2026, 9, 14), 14, 0.30),  # conference season
]
WEEKDAY_TRAFFIC = (1.08, 1.10, 1.09, 1.06, 0.98, 0.82, 0.87)  # Monday first; mean 1.0
WEEKDAY_SALES = (1.15, 1.2, 1.2, 1.15, 1.1, 0.55, 0.65)


def days(first: date = FIRST_DAY, last: date = LAST_DAY) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def quarter_of(day: date) -> str:
    return [label for label, start in QUARTER_STARTS.items() if start <= day][-1]


def quarter_bounds(label: str) -> tuple[date, date]:
    """First day of the quarter and first day of the next one."""
    return QUARTER_STARTS[label], QUARTER_STARTS[QUARTERS[QUARTERS.index(label) + 1]]


def interpolate(field: str, day: date, table: dict[str, tuple] | None = None) -> float:
    """A level of TRENDS (or another table by quarter), linear between quarter starts."""
    table = TRENDS if table is None else table
    label = quarter_of(day)
    start, end = quarter_bounds(label)
    here, there = (
        getattr(table[label], field),
        getattr(table[QUARTERS[QUARTERS.index(label) + 1]], field),
    )
    return here + (day - start).days / (end - start).days * (there - here)


def active_users_level(day: date) -> float:
    """Exponential within each quarter, compounding the quarterly growth rates."""
    level = ACTIVE_USERS_START
    for label in QUARTERS[:-1]:
        start, end = quarter_bounds(label)
        growth = 1 + TRENDS[label].active_users_growth
        if day >= end:
            level *= growth
        else:
            return level * growth ** ((day - start).days / (end - start).days)
    return level


def holiday_factor(day: date) -> float:
    if (day.month, day.day) in ((12, 24), (12, 25), (12, 26), (1, 1)):
        return 0.75
    if (day.month == 12 and day.day >= 27) or (day.month == 1 and day.day == 2):
        return 0.92
    return 1.0


def campaign_uplift(day: date) -> float:
    for start, length, uplift in CAMPAIGNS:
        offset = (day - start).days
        if 0 <= offset < length:
            return uplift * (1 - offset / (2 * length))  # strongest on launch day
    return 0.0


def quarter_shape(day: date) -> float:
    """Sales close late in the quarter: the third month books ~20% more than the first."""
    month_in_quarter = (day.month - 1) % 3
    return (0.9, 1.0, 1.1)[month_in_quarter]


class Smooth:
    """AR(1) noise: rates computed over trailing windows move smoothly from day to day."""

    def __init__(self, rng: random.Random, sd: float, keep: float = 0.9):
        self.rng, self.sd, self.keep, self.value = rng, sd, keep, 0.0

    def next(self) -> float:
        self.value = self.keep * self.value + self.rng.gauss(
            0, self.sd * math.sqrt(1 - self.keep**2)
        )
        return self.value


def product_rows(rng: random.Random) -> Iterator[tuple]:
    churn_noise, retention_noise = Smooth(rng, 0.025), Smooth(rng, 0.2)
    for day in days():
        traffic = WEEKDAY_TRAFFIC[day.weekday()] * holiday_factor(day)
        users = active_users_level(day) * traffic * rng.gauss(1, 0.02)
        yield day, "active_users", round(users)
        yield day, "churn_rate", round(interpolate("churn", day) + churn_noise.next(), 2)
        retention = interpolate("retention", day) + retention_noise.next()
        yield day, "customer_retention_rate", round(retention, 1)


def revenue_rows(rng: random.Random) -> Iterator[tuple]:
    for day in days():
        levels = TRENDS[quarter_of(day)].revenue
        shape = quarter_shape(day) * WEEKDAY_SALES[day.weekday()] * holiday_factor(day)
        for region, level in zip(REGIONS, levels, strict=True):
            yield day, "revenue", round(level * shape * rng.gauss(1, 0.12), 2), region


def customer_rows(rng: random.Random) -> Iterator[tuple]:
    # Major clients sign on weekdays chosen at random within their quarter (before the as-of date).
    signing_days: dict[date, int] = {}
    for label in QUARTERS[:-1]:
        start, next_start = quarter_bounds(label)
        end = min(next_start - timedelta(days=1), LAST_DAY)
        weekdays = [d for d in days(start, end) if d.weekday() < 5]
        for day in rng.sample(weekdays, TRENDS[label].major_clients):
            signing_days[day] = signing_days.get(day, 0) + 1
    for day in days():
        growth = active_users_level(day) / ACTIVE_USERS_START
        expected = 21 * growth**0.6 * WEEKDAY_SALES[day.weekday()] * holiday_factor(day)
        yield day, "new_customers", _poisson(rng, expected)
        yield day, "major_new_clients", signing_days.get(day, 0)


def csat_rows(rng: random.Random) -> Iterator[tuple]:
    survey_gap = (date(2025, 8, 4), date(2025, 8, 24))  # survey tool migration
    last_export = date(2026, 11, 2)  # the vendor's export broke after this Monday
    for day in days(FIRST_DAY, last_export):
        if day.weekday() != 0 or survey_gap[0] <= day <= survey_gap[1]:
            continue
        yield day, "csat", round(min(99.0, interpolate("csat", day) + rng.gauss(0, 0.45)), 1)


def web_rows(rng: random.Random) -> Iterator[dict]:
    for day in days():
        months = (day - FIRST_DAY).days / 30.44
        uplift = campaign_uplift(day)
        traffic = WEEKDAY_TRAFFIC[day.weekday()] * holiday_factor(day)
        visits = 14_500 * 1.025**months * traffic * (1 + uplift) * rng.gauss(1, 0.05)
        conversion = (0.024 + 0.00025 * months) * (1 - 0.3 * uplift) * rng.gauss(1, 0.04)
        shares = 520 * 1.02**months * (1 + 3 * uplift) * traffic * rng.gauss(1, 0.15)
        campaign = 4_200 * 1.02**months * (1 + 4 * uplift) * rng.gauss(1, 0.2)
        sentiment = 62 + 0.3 * months + rng.gauss(0, 2.5) + (5 if uplift else 0)
        yield {
            "date": day.isoformat(),
            "website_visits": round(visits),
            "social_shares": round(shares),
            "signups": round(visits * conversion),
            "campaign_revenue": round(campaign, 2),
            # The social-listening vendor scores weekdays only: weekend cells are empty.
            "brand_sentiment": round(min(sentiment, 100), 1) if day.weekday() < 5 else "",
        }


# -- analytics exports: the self-serve tier ----------------------------------------------------


class AppTrend(NamedTuple):
    engaged_growth: float  # growth of the engaged self-serve user pool over the quarter
    web_conversion: float  # the website's conversion rate (trials per session) at quarter start


# The self-serve story, one row per quarter (the same quarters as TRENDS). The pool of engaged
# users (people who use the app every week or two) compounds each quarter's growth; the growth
# KRs ask active users (30 days) for +10% a quarter. The website converts 2.3% to 2.7% of its
# sessions into trials; less during campaigns (more low-intent traffic), during the two weeks of
# a broken signup form in August 2025 and after the pricing change of 2026-10-15.
APP_TRENDS = {
    "2024-Q3": AppTrend(0.06, 0.0232),
    "2024-Q4": AppTrend(0.08, 0.0236),
    "2025-Q1": AppTrend(0.15, 0.0241),
    "2025-Q2": AppTrend(0.06, 0.0246),
    "2025-Q3": AppTrend(0.15, 0.0249),
    "2025-Q4": AppTrend(0.05, 0.0253),
    "2026-Q1": AppTrend(0.14, 0.0258),
    "2026-Q2": AppTrend(0.13, 0.0262),
    "2026-Q3": AppTrend(0.06, 0.0266),
    "2026-Q4": AppTrend(0.12, 0.0268),  # to Nov 20
    "2027-Q1": AppTrend(0.00, 0.0270),
}
ENGAGED_START = 520  # engaged self-serve users on 2024-07-01 (signed up before the export)
ENGAGED_LIFETIME_DAYS = 180  # mean time a user stays engaged before drifting away
ANONYMOUS_SESSIONS_START = 12  # anonymous app sessions a day (shared links, docs), growing
WEBSITE_SESSIONS_START = 2_600
SIGNUP_FORM_BROKEN = (date(2025, 8, 11), date(2025, 8, 24))
PRICING_CHANGE = date(2026, 10, 15)
# Visitors' time zones (the SDK sends local time with its offset) and their shares.
ZONES: tuple[tzinfo, ...] = (UTC, ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin"))
ZONE_SHARES = (0.45, 0.40, 0.15)
# Local hour of a session start: office hours, quieter evenings, hardly any nights.
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 13, 11, 12, 13, 13, 12, 10, 8, 7, 6, 5, 3, 2)
APP_PATHS = ("/dashboard", "/reports", "/reports/new", "/goals", "/integrations", "/settings")
SITE_PATHS = ("/", "/features", "/pricing", "/customers", "/blog")
SIGNUP_SOURCES = ("organic", "ads", "referral", "partner")


def engaged_level(day: date) -> float:
    """The engaged pool's target size: exponential within each quarter, like active users."""
    level = float(ENGAGED_START)
    for label in QUARTERS[:-1]:
        start, end = quarter_bounds(label)
        growth = 1 + APP_TRENDS[label].engaged_growth
        if day >= end:
            level *= growth
        else:
            return level * growth ** ((day - start).days / (end - start).days)
    return level


def web_conversion(day: date) -> float:
    """The website's conversion rate on `day`, before noise."""
    rate = interpolate("web_conversion", day, APP_TRENDS)
    rate *= 1 - 0.3 * campaign_uplift(day)
    if SIGNUP_FORM_BROKEN[0] <= day <= SIGNUP_FORM_BROKEN[1]:
        rate *= 0.55  # the signup form failed on Safari for two weeks
    if day >= PRICING_CHANGE:
        rate *= 0.86  # the new pricing page scares off part of the trial starts
    return rate


class AppUser(NamedTuple):
    user_id: str
    zone: tzinfo
    session_chance: float  # chance of a session on an average day while engaged
    leaves: date  # the first day without sessions


def _event(name: str, at: datetime, zone: tzinfo, ids: dict, props: dict) -> dict:
    timestamp = at.astimezone(zone).isoformat(timespec="seconds")
    return {"event": name, "timestamp": timestamp, **ids, "properties": props}


def _session_start(rng: random.Random, day: date, zone: tzinfo) -> datetime:
    """A session start on the local `day` in `zone`, as a UTC instant."""
    hour = rng.choices(range(24), HOUR_WEIGHTS)[0]
    local = datetime.combine(day, time(hour), tzinfo=zone)
    return (local + timedelta(seconds=rng.randrange(3600))).astimezone(UTC)


def app_events(rng: random.Random) -> Iterator[tuple[datetime, dict]]:
    """The app's events as (UTC instant, event), session by session, not sorted.

    A user is engaged from signup until `leaves` (an exponential lifetime). Each day anonymous
    visitors browse a page or two, and as many of them sign up as it takes to bring the pool
    back to `engaged_level`. Engaged users start a session with their own daily chance (weekday
    and holiday adjusted) from the day after their signup; free users sometimes upgrade. Days
    are the visitors' local days; events outside the UTC days FIRST_DAY..LAST_DAY are dropped."""
    first_instant = datetime.combine(FIRST_DAY, time(0), tzinfo=UTC)
    end_instant = datetime.combine(LAST_DAY + timedelta(days=1), time(0), tzinfo=UTC)
    plans: dict[str, str] = {}

    def new_user(number: int, day: date, zone: tzinfo) -> AppUser:
        user_id = f"u{number:05d}"
        plans[user_id] = "free" if rng.random() < 0.8 else "pro"
        lifetime = int(rng.expovariate(1 / ENGAGED_LIFETIME_DAYS))
        return AppUser(user_id, zone, rng.uniform(0.05, 0.16), day + timedelta(days=1 + lifetime))

    engaged = [
        new_user(n, FIRST_DAY - timedelta(days=1), rng.choices(ZONES, ZONE_SHARES)[0])
        for n in range(1, ENGAGED_START + 1)
    ]
    for day in days():
        traffic = WEEKDAY_TRAFFIC[day.weekday()] * holiday_factor(day)
        engaged = [user for user in engaged if user.leaves > day]
        regulars = list(engaged)
        sessions: list[list[dict]] = []
        level = engaged_level(day)
        browsing = _poisson(rng, ANONYMOUS_SESSIONS_START * traffic * level / ENGAGED_START)
        signups = max(0, round(level) - len(engaged))
        for visitor in range(browsing + signups):
            zone = rng.choices(ZONES, ZONE_SHARES)[0]
            ids = {"anonymous_id": f"anon-{rng.getrandbits(40):010x}"}
            at = _session_start(rng, day, zone)
            events = [_event("session_start", at, zone, ids, {})]
            signs_up = visitor >= browsing
            pages = (
                ["/pricing", "/signup"] if signs_up else rng.sample(SITE_PATHS, rng.randint(1, 2))
            )
            for path in pages:
                at += timedelta(seconds=rng.randrange(5, 240))
                events.append(_event("page_view", at, zone, ids, {"path": path}))
            if signs_up:
                user = new_user(len(plans) + 1, day, zone)
                at += timedelta(seconds=rng.randrange(30, 300))
                props = {"plan": plans[user.user_id], "source": rng.choice(SIGNUP_SOURCES)}
                events.append(_event("signup", at, zone, {"user_id": user.user_id, **ids}, props))
                engaged.append(user)
            sessions.append(events)
        for user in regulars:
            if rng.random() >= user.session_chance * traffic:
                continue
            ids, zone, plan = {"user_id": user.user_id}, user.zone, plans[user.user_id]
            at = _session_start(rng, day, zone)
            events = [_event("session_start", at, zone, ids, {"plan": plan})]
            for _ in range(rng.choice((1, 1, 1, 1, 2, 3))):
                at += timedelta(seconds=rng.randrange(5, 300))
                events.append(_event("page_view", at, zone, ids, {"path": rng.choice(APP_PATHS)}))
            if plan == "free" and rng.random() < 0.012:
                plan = plans[user.user_id] = "team" if rng.random() < 0.25 else "pro"
                at += timedelta(seconds=rng.randrange(20, 200))
                billing = rng.choice(("monthly", "annual"))
                events.append(_event("purchase", at, zone, ids, {"plan": plan, "billing": billing}))
            sessions.append(events)
        for events in sessions:
            for event in events:
                instant = datetime.fromisoformat(event["timestamp"]).astimezone(UTC)
                if first_instant <= instant < end_instant:
                    yield instant, event


def website_rows(rng: random.Random) -> Iterator[dict]:
    """The website's daily traffic report (UTC days): sessions, active users, trial starts."""
    for day in days():
        months = (day - FIRST_DAY).days / 30.44
        traffic = WEEKDAY_TRAFFIC[day.weekday()] * holiday_factor(day)
        sessions = round(
            WEBSITE_SESSIONS_START
            * 1.02**months
            * traffic
            * (1 + campaign_uplift(day))
            * rng.gauss(1, 0.04)
        )
        yield {
            "date": day,
            "sessions": sessions,
            "active_users": round(sessions * rng.gauss(0.81, 0.012)),
            "conversions": _poisson(rng, sessions * web_conversion(day)),
        }


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; the means here are small."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _write(path: Path, header: list[str], rows, delimiter: str = ",", bom: bool = False) -> int:
    encoding = "utf-8-sig" if bom else "utf-8"
    count = 0
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            if isinstance(row, dict):
                row = [row[column] for column in header]
            writer.writerow(
                [value.isoformat() if isinstance(value, date) else value for value in row]
            )
            count += 1
    return count


def _by_year(rows) -> dict[int, list]:
    years: dict[int, list] = {}
    for row in rows:
        day = row["date"] if isinstance(row, dict) else row[0]
        year = int(day[:4]) if isinstance(day, str) else day.year
        years.setdefault(year, []).append(row)
    return years


def generate(out: Path, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Write the CSV drop folder `out/csv` and the analytics exports `out/analytics`; return the
    number of data rows (events, report days) per file, by path relative to `out`."""
    written = {f"csv/{name}": rows for name, rows in generate_csv(out / "csv", seed).items()}
    analytics = generate_analytics(out / "analytics", seed)
    written.update({f"analytics/{name}": rows for name, rows in analytics.items()})
    return written


def generate_csv(out: Path, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Write every CSV file into `out`; return the number of data rows per file."""
    out.mkdir(parents=True, exist_ok=True)
    # One generator per topic, so changing one topic's trend leaves the other files unchanged.
    rng = {
        topic: random.Random(f"{seed}-{topic}")
        for topic in ("product", "revenue", "customers", "csat", "web")
    }
    written: dict[str, int] = {}
    long_header = ["date", "metric_id", "value"]
    for year, rows in _by_year(product_rows(rng["product"])).items():
        written[f"product_metrics_{year}.csv"] = _write(
            out / f"product_metrics_{year}.csv", long_header, rows
        )
    for year, rows in _by_year(revenue_rows(rng["revenue"])).items():
        name = f"revenue_by_region_{year}.csv"
        written[name] = _write(out / name, [*long_header, "region"], rows)
    for year, rows in _by_year(customer_rows(rng["customers"])).items():
        written[f"customers_{year}.csv"] = _write(out / f"customers_{year}.csv", long_header, rows)
    written["csat_survey.csv"] = _write(
        out / "csat_survey.csv", long_header, csat_rows(rng["csat"]), delimiter=";"
    )
    web_header = [
        "date",
        "website_visits",
        "social_shares",
        "signups",
        "campaign_revenue",
        "brand_sentiment",
    ]
    for year, rows in _by_year(web_rows(rng["web"])).items():
        name = f"web_analytics_{year}.csv"
        written[name] = _write(out / name, web_header, rows, bom=True)
    return written


REPORT_HEADER = ("Date", "Sessions", "Active users", "Conversions")


def _write_events(path: Path, events: list[tuple[datetime, dict]]) -> int:
    """Gzipped NDJSON, one compact object a line; mtime 0 keeps the bytes deterministic."""
    events.sort(key=lambda pair: pair[0])  # stable: a session's events keep their order
    text = "".join(json.dumps(event, separators=(",", ":")) + "\n" for _, event in events)
    buffer = io.BytesIO()
    with gzip.GzipFile(path.name.removesuffix(".gz"), "wb", 9, buffer, mtime=0) as handle:
        handle.write(text.encode("utf-8"))
    path.write_bytes(buffer.getvalue())
    return len(events)


def _write_report(path: Path, year: int, rows: list[dict]) -> int:
    """The web analytics tool's CSV export: `#` preamble, display names, YYYYMMDD, "1,234"."""
    first, last = rows[0]["date"], rows[-1]["date"]
    columns = ("sessions", "active_users", "conversions")
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(
            "# ----------------------------------------\n"
            "# Acme website (www.acme.com)\n"
            "# Traffic overview: sessions, active users and conversions (trial starts) by date\n"
            f"# {first:%Y%m%d}-{last:%Y%m%d}\n"
            "# ----------------------------------------\n"
            "\n"
        )
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(REPORT_HEADER)
        for row in rows:
            writer.writerow([f"{row['date']:%Y%m%d}", *(f"{row[c]:,}" for c in columns)])
        writer.writerow(["Total", *(f"{sum(row[c] for row in rows):,}" for c in columns)])
    return len(rows)


def generate_analytics(out: Path, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Write the event exports (one gzipped NDJSON file per quarter, by UTC date) and the yearly
    traffic reports into `out`; return the number of events or report days per file."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    quarters: dict[str, list[tuple[datetime, dict]]] = {}
    for instant, event in app_events(random.Random(f"{seed}-app-events")):
        label = f"{instant.year}q{(instant.month - 1) // 3 + 1}"
        quarters.setdefault(label, []).append((instant, event))
    for label, events in sorted(quarters.items()):
        name = f"events_{label}.jsonl.gz"
        written[name] = _write_events(out / name, events)
    for year, rows in _by_year(website_rows(random.Random(f"{seed}-website"))).items():
        name = f"traffic_report_{year}.csv"
        written[name] = _write_report(out / name, year, rows)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"data root: writes csv/ and analytics/ under it (default {DEFAULT_OUT})",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    args = parser.parse_args()
    written = generate(args.out, args.seed)
    for name, count in sorted(written.items()):
        print(f"{args.out / name}: {count} rows")


if __name__ == "__main__":
    main()
