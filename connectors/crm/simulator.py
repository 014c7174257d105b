"""A local simulator of the CRM REST API (HubSpot v3 shape), for the demo and the tests.

A real HTTP server (`ThreadingHTTPServer` in a background thread) on 127.0.0.1, so the connector
is exercised through `requests`, urllib3 retries and real sockets, never through mocks.

    with CrmSimulator(token="t") as sim:          # deterministic data from a seed
        client = CrmClient(sim.base_url, "t")
        sim.faults.rate_limit = 2                 # the next two requests get 429
        sim.touch("deals", ["1", "2"])            # modified now: an incremental sync sees them
        sim.requests                              # [(method, path, status), ...]

Endpoints (JSON; every property value is a string, like HubSpot):
- `GET /crm/v3/objects/{object}?limit=&after=&properties=a,b&archived=true|false`: records in
  id order, `limit` at most 100, cursor paging through `paging.next.after`. `archived=true`
  lists only archived records (HubSpot semantics), `false` (default) only live ones.
- `POST /crm/v3/objects/{object}/search` with `filterGroups` (operators EQ, NEQ, GT, GTE, LT,
  LTE on any property; timestamp values as ms epoch or ISO), `sorts`, `properties`, `limit`,
  `after`. Live records only. At most `search_cap` (10,000) results per query: asking for a page
  at or past the cap is HTTP 400, as in HubSpot.
- `Authorization: Bearer <token>` is required: 401 without it or with another token, 403 for a
  token listed in `forbidden_tokens`.

Faults (`sim.faults`, switchable at runtime, each a count of requests it applies to, counted
down as they fire; `only` limits them to requests whose path contains a string, `skip` lets
that many of those through first): `rate_limit` (429, with
`Retry-After: <rate_limit_retry_after>` unless that is None), `server_errors` (HTTP
`server_error_status`), `slow` (sleep `slow_seconds` before answering), `reset` (close the
connection with a TCP reset, no response), `malformed` (200 with a truncated JSON body), and
`bad_values` ({(object, id): {property: value}}: served instead of the stored values until
removed).

`python -m connectors.crm.simulator --port 8765` serves the demo data until interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from connectors.crm.properties import parse_timestamp

DEFAULT_TOKEN = "okr-demo-token"
DEFAULT_SEED = 20240701
OBJECTS = ("companies", "contacts", "deals")
MAX_LIMIT = 100
SEARCH_CAP = 10_000
DATA_START = datetime(2024, 7, 1, tzinfo=UTC)
DATA_END = datetime(2026, 11, 20, tzinfo=UTC)

DEFAULT_PROPERTIES = {
    "companies": ("name", "domain", "createdate", "hs_lastmodifieddate"),
    "contacts": ("email", "firstname", "lastname", "createdate", "hs_lastmodifieddate"),
    "deals": (
        "dealname",
        "amount",
        "dealstage",
        "pipeline",
        "closedate",
        "createdate",
        "hs_lastmodifieddate",
    ),
}
"""What HubSpot returns when a request names no properties (contacts include personal data)."""

_INDUSTRIES = (
    "COMPUTER_SOFTWARE",
    "FINANCIAL_SERVICES",
    "HOSPITAL_HEALTH_CARE",
    "RETAIL",
    "MARKETING_AND_ADVERTISING",
    "LOGISTICS_AND_SUPPLY_CHAIN",
    "EDUCATION_MANAGEMENT",
)
_COUNTRIES = (
    "United States",
    "Germany",
    "United Kingdom",
    "France",
    "Netherlands",
    "Spain",
    "Canada",
    "Brazil",
    "Japan",
    "Australia",
)
_COMPANY_STAGES = (
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
)
_CONTACT_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
)
_DEAL_STAGES = (
    ("appointmentscheduled", 0.2),
    ("qualifiedtobuy", 0.2),
    ("closedwon", 0.35),
    ("closedlost", 0.25),
)
_PREFIXES = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Wonka",
    "Aperture",
    "Massive",
    "Pied Piper",
)
_SUFFIXES = ("Labs", "Systems", "Group", "Analytics", "Logistics", "Health", "Foods", "Works")
_FIRST = (
    "Ana",
    "Ben",
    "Chen",
    "Dara",
    "Eli",
    "Fatima",
    "Gus",
    "Hana",
    "Ivan",
    "Jo",
    "Kofi",
    "Lena",
    "Mateo",
    "Nia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
)
_LAST = (
    "Silva",
    "Novak",
    "Kim",
    "Okafor",
    "Berg",
    "Rossi",
    "Haddad",
    "Tanaka",
    "Meyer",
    "Garcia",
    "Dubois",
    "Jensen",
    "Patel",
    "Moreau",
    "Nakamura",
)
_PRODUCTS = ("Starter", "Pro plan", "Enterprise", "Add-on seats", "Renewal", "Services")


def iso_ms(value: datetime) -> str:
    """HubSpot's timestamp format: ISO-8601 UTC with milliseconds and a Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{value.microsecond // 1000:03d}Z"
    )


def _record(
    record_id: str,
    properties: dict[str, str | None],
    created: datetime,
    modified: datetime,
    archived: bool,
) -> dict[str, Any]:
    record = {
        "id": record_id,
        "properties": {
            **properties,
            "hs_object_id": record_id,
            "createdate": iso_ms(created),
            "hs_lastmodifieddate": iso_ms(modified),
        },
        "createdAt": iso_ms(created),
        "updatedAt": iso_ms(modified),
        "archived": archived,
    }
    if archived:
        record["archivedAt"] = iso_ms(modified)
    return record


def generate_data(
    seed: int = DEFAULT_SEED,
    *,
    companies: int = 300,
    contacts: int = 2000,
    deals: int = 1500,
    archived_share: float = 0.03,
) -> dict[str, list[dict[str, Any]]]:
    """Deterministic CRM records for `seed`, created between 2024-07 and 2026-11; deals and
    companies follow SALES_STORY (the demo's sales KRs), see `_apply_sales_story`."""
    rng = random.Random(seed)
    span = (DATA_END - DATA_START).total_seconds()

    def between(start: datetime, end: datetime) -> datetime:
        seconds = max((end - start).total_seconds(), 0.0)
        return start + timedelta(
            seconds=int(seconds * rng.random()), milliseconds=rng.randrange(1000)
        )

    def created_at() -> datetime:
        # Growth: more records later in the range (the power skews toward the end).
        return DATA_START + timedelta(
            seconds=int(span * rng.random() ** 0.7), milliseconds=rng.randrange(1000)
        )

    def modified_after(created: datetime) -> datetime:
        return between(created, min(created + timedelta(days=90), DATA_END))

    data: dict[str, list[dict[str, Any]]] = {name: [] for name in OBJECTS}
    company_names: dict[str, str] = {}
    for i in range(1, companies + 1):
        name = f"{rng.choice(_PREFIXES)} {rng.choice(_SUFFIXES)} {i}"
        company_names[str(i)] = name
        created = created_at()
        domain = name.lower().replace(" ", "-") + rng.choice((".com", ".io", ".de", ".co.uk"))
        data["companies"].append(
            _record(
                str(i),
                {
                    "name": name,
                    "domain": domain,
                    "industry": rng.choice(_INDUSTRIES),
                    "lifecyclestage": rng.choice(_COMPANY_STAGES),
                    "annualrevenue": str(rng.randrange(50, 50_000) * 1000),
                    "country": rng.choice(_COUNTRIES),
                },
                created,
                modified_after(created),
                rng.random() < archived_share,
            )
        )
    for i in range(1, contacts + 1):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        created = created_at()
        data["contacts"].append(
            _record(
                str(i),
                {
                    "email": f"{first}.{last}.{i}@example.com".lower(),
                    "firstname": first,
                    "lastname": last,
                    "phone": f"+1-555-{rng.randrange(10**7):07d}",
                    "lifecyclestage": rng.choice(_CONTACT_STAGES),
                    "country": rng.choice(_COUNTRIES),
                },
                created,
                modified_after(created),
                rng.random() < archived_share,
            )
        )
    stages, weights = zip(*_DEAL_STAGES, strict=True)
    for i in range(1, deals + 1):
        company_id = str(rng.randrange(1, companies + 1)) if companies else None
        created = created_at()
        stage = rng.choices(stages, weights)[0]
        closed = stage in ("closedwon", "closedlost")
        if closed:  # closed in the past: between creation and the end of the data
            close = between(created, min(created + timedelta(days=120), DATA_END))
            modified = between(close, min(close + timedelta(days=2), DATA_END))
        else:  # an expected close date, possibly in the future
            close = created + timedelta(days=rng.randrange(5, 180))
            modified = modified_after(created)
        amount = round(rng.lognormvariate(9.0, 0.9), 2)
        data["deals"].append(
            _record(
                str(i),
                {
                    "dealname": f"{company_names.get(company_id, 'Prospect')} - {rng.choice(_PRODUCTS)}",
                    "amount": f"{amount:.2f}",
                    "dealstage": stage,
                    "pipeline": "default" if rng.random() < 0.8 else "enterprise",
                    "closedate": iso_ms(close.replace(hour=0, minute=0, second=0, microsecond=0)),
                    "hs_is_closed_won": "true" if stage == "closedwon" else "false",
                    "associated_company_id": company_id,
                },
                created,
                modified,
                rng.random() < archived_share,
            )
        )
    _apply_sales_story(data, random.Random(f"{seed}-sales-story"))
    return data


class SalesQuarter(NamedTuple):
    bookings: float  # closed-won amount of the quarter's live deals (to DATA_END if running)
    win_rate: float  # closedwon / (closedwon + closedlost) among the quarter's live deals
    customer_share: float  # share of the companies created in the quarter that became customers
    churn_per_month: float  # monthly churn hazard of those customers, until DATA_END


SALES_STORY = {
    # Quarter of the close date (deals) or of the creation date (companies). 2024-Q3 has only
    # the first few closings of the data, so its amounts are left as drawn.
    "2024-Q3": SalesQuarter(0, 0.45, 0.30, 0.014),
    "2024-Q4": SalesQuarter(420_000, 0.50, 0.32, 0.013),
    "2025-Q1": SalesQuarter(505_000, 0.56, 0.34, 0.012),
    "2025-Q2": SalesQuarter(560_000, 0.54, 0.36, 0.012),
    "2025-Q3": SalesQuarter(660_000, 0.59, 0.38, 0.011),
    "2025-Q4": SalesQuarter(700_000, 0.61, 0.40, 0.011),
    "2026-Q1": SalesQuarter(790_000, 0.59, 0.42, 0.010),
    "2026-Q2": SalesQuarter(960_000, 0.625, 0.44, 0.010),
    "2026-Q3": SalesQuarter(1_080_000, 0.637, 0.46, 0.009),
    "2026-Q4": SalesQuarter(500_000, 0.635, 0.48, 0.009),  # to 2026-11-20
}
"""The demo's sales story (examples/acme/okrs.yaml measures it): bookings grow in steps,
alternating strong and weak quarters; the win rate climbs from 45% to the low 60s; more of the
new companies become customers and fewer of them churn."""

_OPEN_DEAL_STAGES = ("appointmentscheduled", "qualifiedtobuy")
_PRE_CUSTOMER_STAGES = ("lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity")


def _quarter_label(value: datetime) -> str:
    return f"{value.year}-Q{(value.month - 1) // 3 + 1}"


def _apply_sales_story(data: dict[str, list[dict[str, Any]]], rng: random.Random) -> None:
    """Reshape the drawn records to follow SALES_STORY, with a generator of its own (so the
    records' ids, dates and archived flags stay those drawn above):
    - a deal drawn as closed but whose close (at most 120 days after creation) would fall after
      DATA_END is still open, with that expected close date;
    - per close quarter, round(win_rate * n) of the n live closed deals are won, the others
      lost (archived deals draw their stage at that rate);
    - the won amounts of a quarter are scaled so that its live bookings match the story;
    - a company becomes a customer with its creation quarter's share; a customer has churned
      by DATA_END with the quarter's monthly hazard, else is an evangelist one time in six."""
    by_quarter: dict[str, list[dict[str, Any]]] = {}
    for deal in data["deals"]:
        props = deal["properties"]
        if props["dealstage"] not in ("closedwon", "closedlost"):
            continue
        created = parse_timestamp(deal["createdAt"])
        assert created is not None
        if created > DATA_END - timedelta(days=120):
            close = created + timedelta(seconds=int(120 * 86_400 * rng.random()))
            if close > DATA_END:
                props["dealstage"] = rng.choice(_OPEN_DEAL_STAGES)
                props["closedate"] = iso_ms(
                    close.replace(hour=0, minute=0, second=0, microsecond=0)
                )
                props["hs_is_closed_won"] = "false"
                continue
        closedate = parse_timestamp(props["closedate"])
        assert closedate is not None
        label = _quarter_label(closedate)
        if deal["archived"] or label not in SALES_STORY:
            won = rng.random() < SALES_STORY.get(label, SALES_STORY["2024-Q3"]).win_rate
            _set_won(props, won)
        else:
            by_quarter.setdefault(label, []).append(deal)
    for label, deals in by_quarter.items():
        story = SALES_STORY[label]
        won_ids = {d["id"] for d in rng.sample(deals, round(story.win_rate * len(deals)))}
        for deal in deals:
            _set_won(deal["properties"], deal["id"] in won_ids)
        won = [d["properties"] for d in deals if d["id"] in won_ids]
        total = sum(float(p["amount"]) for p in won)
        if story.bookings and total:
            for props in won:
                props["amount"] = f"{float(props['amount']) * story.bookings / total:.2f}"
    for company in data["companies"]:
        created = parse_timestamp(company["createdAt"])
        assert created is not None
        story = SALES_STORY.get(_quarter_label(created), SALES_STORY["2024-Q3"])
        if rng.random() >= story.customer_share:
            stage = rng.choice(_PRE_CUSTOMER_STAGES)
        else:
            months = (DATA_END - created).days / 30.44
            if rng.random() < 1 - math.exp(-story.churn_per_month * months):
                stage = "churned"
            else:
                stage = "evangelist" if rng.random() < 1 / 6 else "customer"
        company["properties"]["lifecyclestage"] = stage


def _set_won(props: dict[str, Any], won: bool) -> None:
    props["dealstage"] = "closedwon" if won else "closedlost"
    props["hs_is_closed_won"] = "true" if won else "false"


class SimRequest(NamedTuple):
    method: str
    path: str  # with the query string
    status: int  # 0 when the connection was reset without a response


@dataclass
class Faults:
    """Switchable faults; each count is the number of (non-skipped) requests it hits."""

    only: str = ""  # faults hit only requests whose path (with query) contains this
    skip: int = 0
    rate_limit: int = 0
    rate_limit_retry_after: str | None = "1"
    server_errors: int = 0
    server_error_status: int = 503
    slow: int = 0
    slow_seconds: float = 2.0
    reset: int = 0
    malformed: int = 0
    bad_values: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def clear(self) -> None:
        """Switch every fault off."""
        fresh = Faults()
        for name in fresh.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))


class CrmSimulator:
    """The simulated CRM API server; see the module docstring."""

    def __init__(
        self,
        data: dict[str, list[dict[str, Any]]] | None = None,
        token: str = DEFAULT_TOKEN,
        *,
        seed: int = DEFAULT_SEED,
        forbidden_tokens: Iterable[str] = (),
        search_cap: int = SEARCH_CAP,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        source = data if data is not None else generate_data(seed)
        self._records: dict[str, dict[str, dict[str, Any]]] = {
            name: {r["id"]: json.loads(json.dumps(r)) for r in source.get(name, [])}
            for name in OBJECTS
        }
        self.token = token
        self.forbidden_tokens = set(forbidden_tokens)
        self.search_cap = search_cap
        self.faults = Faults()
        self.requests: list[SimRequest] = []
        self._lock = threading.RLock()
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> CrmSimulator:
        server = _Server((self._host, self._port), _Handler)
        server.sim = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="crm-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> CrmSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the simulator is not running; use start() or `with`"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # -- data --------------------------------------------------------------------------------

    def records(self, crm_object: str, *, archived: bool | None = None) -> list[dict[str, Any]]:
        """A copy of the stored records (all, or only archived / live ones), in id order."""
        with self._lock:
            rows = [
                json.loads(json.dumps(r))
                for r in self._records[crm_object].values()
                if archived is None or r["archived"] == archived
            ]
        return sorted(rows, key=lambda r: _id_key(r["id"]))

    def ids(self, crm_object: str, *, archived: bool | None = None) -> list[str]:
        return [r["id"] for r in self.records(crm_object, archived=archived)]

    def _when(self, crm_object: str, when: datetime | None) -> datetime:
        """`when`, or now, but never before the object's latest modification (so a default
        touch is always seen by the next incremental sync)."""
        if when is not None:
            return when if when.tzinfo else when.replace(tzinfo=UTC)
        latest = max(
            (parse_timestamp(r["updatedAt"]) for r in self._records[crm_object].values()),
            default=DATA_START,
        )
        return max(datetime.now(UTC), latest + timedelta(seconds=1))

    def touch(
        self,
        crm_object: str,
        ids: Iterable[str],
        when: datetime | None = None,
        step: timedelta = timedelta(0),
        **properties: str | None,
    ) -> datetime:
        """Modify records: set `properties` (if any) and hs_lastmodifieddate/updatedAt to `when`
        (+ i * `step` for the i-th id). Returns the first modification time."""
        with self._lock:
            start = self._when(crm_object, when)
            for i, record_id in enumerate(ids):
                record = self._records[crm_object][str(record_id)]
                stamp = iso_ms(start + i * step)
                record["properties"].update(properties)
                record["properties"]["hs_lastmodifieddate"] = stamp
                record["updatedAt"] = stamp
        return start

    def add(
        self,
        crm_object: str,
        properties: dict[str, str | None] | None = None,
        *,
        record_id: str | None = None,
        when: datetime | None = None,
    ) -> str:
        """Create a record (created and modified at `when`); returns its id."""
        with self._lock:
            stamp = self._when(crm_object, when)
            if record_id is None:
                record_id = str(
                    max((_id_key(i)[0] for i in self._records[crm_object]), default=0) + 1
                )
            self._records[crm_object][record_id] = _record(
                record_id, dict(properties or {}), stamp, stamp, False
            )
        return record_id

    def archive(self, crm_object: str, ids: Iterable[str], when: datetime | None = None) -> None:
        """Archive records: archived=true, archivedAt and updatedAt = `when`. Like HubSpot,
        hs_lastmodifieddate is not changed and search no longer returns them."""
        with self._lock:
            stamp = iso_ms(self._when(crm_object, when))
            for record_id in ids:
                record = self._records[crm_object][str(record_id)]
                record.update(archived=True, archivedAt=stamp, updatedAt=stamp)

    def restore(self, crm_object: str, ids: Iterable[str], when: datetime | None = None) -> None:
        """Un-archive records (modified at `when`)."""
        with self._lock:
            stamp = iso_ms(self._when(crm_object, when))
            for record_id in ids:
                record = self._records[crm_object][str(record_id)]
                record.pop("archivedAt", None)
                record.update(archived=False, updatedAt=stamp)
                record["properties"]["hs_lastmodifieddate"] = stamp

    def count(self, method: str | None = None, path_contains: str = "") -> int:
        """Requests logged so far, optionally by method and a substring of the path."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method) and path_contains in r.path
            )

    # -- serving (called from handler threads) -----------------------------------------------

    def _take_fault(self, path: str) -> str | None:
        with self._lock:
            f = self.faults
            if f.only not in path:
                return None
            if f.skip > 0:
                f.skip -= 1
                return None
            for name in ("reset", "slow", "rate_limit", "server_errors", "malformed"):
                if getattr(f, name) > 0:
                    setattr(f, name, getattr(f, name) - 1)
                    return name
            return None

    def _log(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append(SimRequest(method, path, status))

    def _serve(
        self, record: dict[str, Any], properties: list[str] | None, crm_object: str
    ) -> dict[str, Any]:
        names = properties or list(DEFAULT_PROPERTIES[crm_object])
        props = dict(record["properties"])
        props.update(self.faults.bad_values.get((crm_object, record["id"]), {}))
        served = {name: props.get(name) for name in names}
        for always in ("hs_object_id", "createdate", "hs_lastmodifieddate"):
            served[always] = props.get(always)
        result = {
            "id": record["id"],
            "properties": served,
            "createdAt": record["createdAt"],
            "updatedAt": record["updatedAt"],
            "archived": record["archived"],
        }
        if record.get("archivedAt"):
            result["archivedAt"] = record["archivedAt"]
        return result

    def handle_list(self, crm_object: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        first = {key: values[-1] for key, values in query.items()}
        limit, error = _limit(first.get("limit"))
        if error:
            return 400, error
        archived = first.get("archived", "false").lower() == "true"
        properties = [p for p in first.get("properties", "").split(",") if p] or None
        after = first.get("after")
        with self._lock:
            rows = sorted(
                (r for r in self._records[crm_object].values() if r["archived"] == archived),
                key=lambda r: _id_key(r["id"]),
            )
            if after:
                rows = [r for r in rows if _id_key(r["id"]) > _id_key(after)]
            page = [self._serve(r, properties, crm_object) for r in rows[:limit]]
        body: dict[str, Any] = {"results": page}
        if len(rows) > limit:
            body["paging"] = {"next": {"after": page[-1]["id"], "link": f"?after={page[-1]['id']}"}}
        return 200, body

    def handle_search(self, crm_object: str, request: Any) -> tuple[int, Any]:
        if not isinstance(request, dict):
            return 400, _error("VALIDATION_ERROR", "the request body must be a JSON object")
        limit, error = _limit(request.get("limit"))
        if error:
            return 400, error
        try:
            after = int(request.get("after") or 0)
        except (TypeError, ValueError):
            return 400, _error(
                "VALIDATION_ERROR", f"after must be an integer offset, got {request.get('after')!r}"
            )
        if after >= self.search_cap:
            return 400, _error(
                "VALIDATION_ERROR",
                f"There was a problem with the request: the search endpoint returns at most "
                f"{self.search_cap} results per query (after={after}).",
            )
        properties = request.get("properties") or None
        try:
            groups = [
                [_compile_filter(f) for f in group.get("filters", [])]
                for group in request.get("filterGroups") or []
            ]
            sorts = request.get("sorts") or []
        except ValueError as exc:
            return 400, _error("VALIDATION_ERROR", str(exc))
        with self._lock:
            rows = [
                r
                for r in self._records[crm_object].values()
                if not r["archived"] and (not groups or any(all(f(r) for f in g) for g in groups))
            ]
            rows.sort(key=lambda r: _id_key(r["id"]))
            for sort in reversed(sorts):
                name = sort.get("propertyName") if isinstance(sort, dict) else sort
                descending = isinstance(sort, dict) and sort.get("direction") == "DESCENDING"
                rows.sort(
                    key=lambda r, n=name: _value_key(n, r["properties"].get(n)), reverse=descending
                )
            end = min(after + limit, self.search_cap)
            page = [self._serve(r, properties, crm_object) for r in rows[after:end]]
        body: dict[str, Any] = {"total": len(rows), "results": page}
        if after + limit < len(rows):
            body["paging"] = {"next": {"after": str(after + limit)}}
        return 200, body


def _error(category: str, message: str) -> dict[str, str]:
    return {"status": "error", "message": message, "category": category}


def _limit(value: Any) -> tuple[int, dict[str, str] | None]:
    if value in (None, ""):
        return 10, None
    try:
        limit = int(value)
    except (TypeError, ValueError):
        return 0, _error("VALIDATION_ERROR", f"limit must be an integer, got {value!r}")
    if limit < 1:
        return 0, _error("VALIDATION_ERROR", "limit must be at least 1")
    return min(limit, MAX_LIMIT), None


def _id_key(record_id: str) -> tuple[int, str]:
    return (int(record_id), "") if record_id.isdigit() else (0, record_id)


_TIME_PROPERTIES = {"hs_lastmodifieddate", "createdate", "closedate"}


def _value_key(name: str, value: Any) -> tuple[int, Any]:
    """Comparable key of a property value: timestamps as instants, numbers as numbers, else
    text; nulls (and unparseable timestamps) sort last."""
    if value is None or value == "":
        return (3, "")
    if name in _TIME_PROPERTIES:
        try:
            stamp = parse_timestamp(value)
        except ValueError:
            return (2, str(value))
        return (0, stamp.timestamp()) if stamp else (3, "")
    try:
        return (0, float(value))
    except (TypeError, ValueError):
        return (1, str(value))


_OPERATORS = {
    "EQ": lambda a, b: a == b,
    "NEQ": lambda a, b: a != b,
    "GT": lambda a, b: a > b,
    "GTE": lambda a, b: a >= b,
    "LT": lambda a, b: a < b,
    "LTE": lambda a, b: a <= b,
}


def _compile_filter(spec: Any):
    if not isinstance(spec, dict) or "propertyName" not in spec:
        raise ValueError(f"a filter needs propertyName, operator and value: {spec!r}")
    name, operator = spec["propertyName"], spec.get("operator", "EQ")
    if operator not in _OPERATORS:
        raise ValueError(f"unsupported operator {operator!r}; use one of {sorted(_OPERATORS)}")
    wanted = _value_key(name, spec.get("value"))
    if name in _TIME_PROPERTIES and wanted[0] == 2:
        raise ValueError(f"{name} filter value {spec.get('value')!r} is not a timestamp")
    compare = _OPERATORS[operator]

    def matches(record: dict[str, Any]) -> bool:
        have = _value_key(name, record["properties"].get(name))
        if operator == "NEQ":
            return have != wanted
        return have[0] == wanted[0] and compare(have, wanted)

    return matches


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sim: CrmSimulator

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reset_sockets: set[int] = set()

    def shutdown_request(self, request: Any) -> None:
        if id(request) in self.reset_sockets:
            # SO_LINGER 0 + close (no shutdown/FIN first): the peer gets a TCP reset.
            self.reset_sockets.discard(id(request))
            request.close()
            return
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out or go away are expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: _Server
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def _dispatch(self, method: str) -> None:
        sim = self.server.sim
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        fault = sim._take_fault(self.path)
        if fault == "reset":
            sim._log(method, self.path, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.server.reset_sockets.add(id(self.request))
            self.close_connection = True
            return
        if fault == "slow":  # logged on arrival; the client has given up by the answer
            sim._log(method, self.path, 200)
            time.sleep(sim.faults.slow_seconds)
            self._json(*self._route(method, raw_body))
            return
        if fault == "rate_limit":
            retry_after = sim.faults.rate_limit_retry_after
            sim._log(method, self.path, 429)
            self._json(
                429,
                _error("RATE_LIMITS", "You have reached your secondly limit."),
                {"Retry-After": retry_after} if retry_after is not None else None,
            )
            return
        if fault == "server_errors":
            status = sim.faults.server_error_status
            sim._log(method, self.path, status)
            self._json(status, _error("INTERNAL_ERROR", f"simulated HTTP {status}"))
            return
        status, payload = self._route(method, raw_body)
        sim._log(method, self.path, status)
        if fault == "malformed" and status == 200:
            text = json.dumps(payload)
            self._send(200, text[: max(1, len(text) // 2)].encode())
            return
        self._json(status, payload)

    def _route(self, method: str, raw_body: bytes) -> tuple[int, Any]:
        sim = self.server.sim
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        if token is not None and token in sim.forbidden_tokens:
            return 403, _error("MISSING_SCOPES", "This token does not have the required scopes.")
        if token != sim.token:
            return 401, _error(
                "INVALID_AUTHENTICATION", "Authentication credentials not found or invalid."
            )
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        if len(parts) < 4 or parts[:3] != ["crm", "v3", "objects"] or parts[3] not in OBJECTS:
            return 404, _error("OBJECT_NOT_FOUND", f"no such endpoint: {url.path}")
        crm_object = parts[3]
        if method == "GET" and len(parts) == 4:
            return sim.handle_list(crm_object, parse_qs(url.query))
        if method == "POST" and len(parts) == 5 and parts[4] == "search":
            try:
                request = json.loads(raw_body or b"{}")
            except ValueError:
                return 400, _error("VALIDATION_ERROR", "the request body is not valid JSON")
            return sim.handle_search(crm_object, request)
        return 405, _error("METHOD_NOT_ALLOWED", f"{method} {url.path} is not supported")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the simulated CRM API until interrupted.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument(
        "--token",
        default=os.environ.get("CRM_API_TOKEN", DEFAULT_TOKEN),
        help="accepted bearer token (default: $CRM_API_TOKEN or the demo token)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    sim = CrmSimulator(token=args.token, seed=args.seed, host=args.host, port=args.port)
    with sim:
        print(f"CRM simulator serving on {sim.base_url} (Ctrl+C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", flush=True)


if __name__ == "__main__":
    main()
