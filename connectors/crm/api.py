"""CRM REST API (HubSpot v3 shape) -> `raw.crm_<object>` (docs/sources.md).

The client (`CrmClient`) is a `requests.Session` whose `HTTPAdapter` carries a urllib3 `Retry`:
429 (honouring `Retry-After`), 500/502/503/504, connection resets and read timeouts are retried
by urllib3 with exponential backoff, for GET and for the search POST (a read-only query, so
safe to repeat). On top of that the client retries a page whose body is not valid JSON (or not
the expected shape) a bounded number of times, then fails naming the URL and page cursor.
401/403 fail at once with `CrmAuthError` ("check CRM_API_TOKEN"); the token itself never
appears in an exception or a log record (it only travels in the Authorization header).

`sync_crm` keeps `raw.crm_<object>` in step with the CRM, one object at a time:
- **Full** (the first run of an object, or `full=True`): the list endpoint, `archived=false`
  then `archived=true`; archived records are flagged, never deleted.
- **Incremental** (later runs): the search endpoint, `hs_lastmodifieddate GTE <watermark>`
  sorted ascending. Search stops at 10,000 results per query, so before paging past the cap
  (or when the server refuses with 400) the search restarts with the window moved up to the
  last hs_lastmodifieddate seen; the overlap is deduplicated on id. Should more records than
  the cap share one modification time, the window cannot move and the object falls back to a
  full listing (mode `full_fallback`). Search never returns archived records, so every
  incremental run also lists `archived=true` (HubSpot purges archived records after 90 days, so
  that list stays short); only records that changed are written.
- **Upsert** by id: a fetched version replaces the stored one only if its `updatedAt` is later
  (or equal with a different archived flag), so a stale or repeated version never overwrites;
  unchanged records are not rewritten (their lineage keeps the batch that loaded them).
- **Atomic per object**: pages are collected in temp tables; the upsert, the rejected rows and
  the new watermark (the latest hs_lastmodifieddate seen, never moving backwards) commit in
  one transaction. A failure leaves the previous state and watermark; the rerun starts from
  there and, by the upsert rule, lands every record exactly once.
- **Typed check**: properties are converted to their staging types
  (`connectors.crm.properties.convert_properties`). A record that does not convert goes to
  `raw.rejected_rows` (source 'crm', source_ref the object, location '<object> <id>', the
  field, the reason, the record as JSON) and is not upserted; the rest of the page loads. A
  rejection already recorded for the same record version is not recorded again.
- Only the properties staging needs are requested (and kept): contacts' personal data (email,
  names, phone) is never fetched.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from connectors.crm.properties import (
    CRM_PROPERTY_TYPES,
    ConversionError,
    convert_properties,
    parse_timestamp,
    to_epoch_ms,
)
from connectors.crm.source import BASE_URL_ENV, TOKEN_ENV
from connectors.crm.tables import CRM_OBJECTS, RAW_CRM_SYNC_STATE, RAW_CRM_TABLES
from connectors.tables import RAW_REJECTED_ROWS
from warehouse.tables import Table
from warehouse.writes import transaction

log = logging.getLogger(__name__)

SOURCE = "crm"
MAX_PAGE_SIZE = 100
SEARCH_CAP = 10_000
RETRY_STATUSES = (429, 500, 502, 503, 504)
_INCOMING, _REJECTS, _WINNERS = "_crm_incoming", "_crm_rejects", "_crm_winners"


class CrmError(Exception):
    """Base class of CRM connector errors."""


class CrmAuthError(CrmError):
    """The API refused the token (401/403). The message never contains the token."""


class CrmApiError(CrmError):
    """The API could not be read (retries exhausted, malformed pages, unexpected status)."""


class CrmSearchCapError(CrmApiError):
    """More records than the search cap share one hs_lastmodifieddate: search cannot page on."""


class CrmSyncError(CrmError):
    """One or more objects failed to sync (the others committed); `.report` has the details."""

    def __init__(self, message: str, report: CrmSyncReport) -> None:
        super().__init__(message)
        self.report = report


def default_retry(total: int = 6, backoff_factor: float = 0.5, backoff_max: float = 30.0) -> Retry:
    """The urllib3 retry policy: 429 (Retry-After honoured, capped at 5 minutes), 5xx,
    connection errors and read timeouts, for GET and the search POST."""
    return Retry(
        total=total,
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "POST"}),
        respect_retry_after_header=True,
        retry_after_max=300,
        raise_on_status=False,
    )


@dataclass(frozen=True)
class CrmPage:
    """One page of records; `source_ref` is the URL path plus the page cursor (lineage)."""

    results: list[dict[str, Any]]
    next_after: str | None
    source_ref: str
    window: int = 0  # search only: how many times the search window had moved (cap restarts)


class _SearchCapReached(Exception):
    pass


class CrmClient:
    """A CRM API session: bearer auth, urllib3 retries, JSON pages."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        retry: Retry | None = None,
        page_size: int = MAX_PAGE_SIZE,
        search_cap: int = SEARCH_CAP,
        malformed_retries: int = 2,
    ) -> None:
        if not token:
            raise CrmAuthError(f"no CRM API token: set {TOKEN_ENV}")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry if retry is not None else default_retry()
        self.page_size = page_size
        self.search_cap = search_cap
        self.malformed_retries = malformed_retries
        self._token = token
        self._session = requests.Session()
        adapter = HTTPAdapter(max_retries=self.retry)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update(
            {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        )
        if urlsplit(self.base_url).hostname in ("127.0.0.1", "localhost", "::1"):
            self._session.trust_env = False  # never route the local simulator through a proxy

    @classmethod
    def from_env(cls, **kwargs: Any) -> CrmClient:
        """A client for `$CRM_API_BASE_URL` with the token from `$CRM_API_TOKEN`."""
        base_url = os.environ.get(BASE_URL_ENV)
        if not base_url:
            raise CrmApiError(f"no CRM API URL: set {BASE_URL_ENV}")
        return cls(base_url, os.environ.get(TOKEN_ENV, ""), **kwargs)

    def __repr__(self) -> str:
        return f"CrmClient({self.base_url!r}, token=***)"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> CrmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pages -------------------------------------------------------------------------------

    def list_page(
        self,
        crm_object: str,
        *,
        properties: Sequence[str],
        archived: bool = False,
        after: str | None = None,
    ) -> CrmPage:
        path = f"/crm/v3/objects/{crm_object}"
        params = {
            "limit": str(self.page_size),
            "archived": "true" if archived else "false",
            "properties": ",".join(properties),
        }
        ref = f"{path}?archived={params['archived']}"
        if after:
            params["after"] = after
            ref += f"&after={after}"
        body = self._request("GET", path, ref, params=params)
        return CrmPage(body["results"], _next_after(body), ref)

    def search_page(
        self,
        crm_object: str,
        *,
        properties: Sequence[str],
        since: datetime | None,
        after: str | None = None,
    ) -> CrmPage:
        """One page of records with hs_lastmodifieddate >= `since`, oldest first."""
        path = f"/crm/v3/objects/{crm_object}/search"
        request: dict[str, Any] = {
            "filterGroups": [],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": list(properties),
            "limit": self.page_size,
        }
        ref = path
        if since is not None:
            since_ms = to_epoch_ms(since)
            request["filterGroups"] = [
                {
                    "filters": [
                        {
                            "propertyName": "hs_lastmodifieddate",
                            "operator": "GTE",
                            "value": str(since_ms),
                        }
                    ]
                }
            ]
            ref += f"?hs_lastmodifieddate>={since_ms}"
        if after:
            request["after"] = after
            ref += f"{'&' if since is not None else '?'}after={after}"
        body = self._request("POST", path, ref, json_body=request, cap_check=after is not None)
        return CrmPage(body["results"], _next_after(body), ref)

    def iter_list(
        self, crm_object: str, *, properties: Sequence[str], archived: bool = False
    ) -> Iterator[CrmPage]:
        after: str | None = None
        while True:
            page = self.list_page(crm_object, properties=properties, archived=archived, after=after)
            yield page
            if not page.next_after:
                return
            after = page.next_after

    def iter_search(
        self, crm_object: str, *, properties: Sequence[str], since: datetime | None
    ) -> Iterator[CrmPage]:
        """Every live record modified at or after `since`, oldest first, across the search cap:
        before paging past `search_cap` results (or when the server refuses to), the query
        restarts from the latest hs_lastmodifieddate seen. Records at that instant come again;
        callers dedupe on id. Raises CrmSearchCapError when the window cannot move."""
        window, after, restarts = since, None, 0
        latest: datetime | None = None
        while True:
            try:
                page = self.search_page(
                    crm_object, properties=properties, since=window, after=after
                )
            except _SearchCapReached:
                page = None
            if page is not None:
                yield CrmPage(page.results, page.next_after, page.source_ref, restarts)
                for record in page.results:
                    stamp = record_modified_at(record)
                    if stamp is not None and (latest is None or stamp > latest):
                        latest = stamp
                if not page.next_after:
                    return
                if not (page.next_after.isdigit() and int(page.next_after) >= self.search_cap):
                    after = page.next_after
                    continue
            if latest is None or (
                window is not None and to_epoch_ms(latest) <= to_epoch_ms(window)
            ):
                raise CrmSearchCapError(
                    f"more than {self.search_cap} {crm_object} share hs_lastmodifieddate "
                    f"{window.isoformat() if window else '(none)'}: the search window cannot move"
                )
            restarts += 1
            log.info(
                "CRM %s search reached the %d-result cap; restarting from %s",
                crm_object,
                self.search_cap,
                latest.isoformat(),
            )
            window, after = latest, None

    # -- transport ---------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        ref: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        cap_check: bool = False,
    ) -> dict[str, Any]:
        url = self.base_url + path
        where = f"{self.base_url}{ref} ({_cursor(ref)})"
        problem = ""
        for attempt in range(self.malformed_retries + 1):
            if attempt:
                time.sleep(
                    min(self.retry.backoff_factor * 2 ** (attempt - 1), self.retry.backoff_max)
                )
            try:
                response = self._session.request(
                    method, url, params=params, json=json_body, timeout=self.timeout
                )
            except requests.RequestException as exc:
                raise CrmApiError(
                    f"CRM API {method} {where} failed after retries: "
                    f"{self._scrub(f'{type(exc).__name__}: {exc}')}"
                ) from None
            status = response.status_code
            if status in (401, 403):
                what = (
                    "was not accepted (HTTP 401: missing, invalid or expired token)"
                    if status == 401
                    else "lacks the permission (HTTP 403) to read this object; grant the token "
                    "the CRM read scopes"
                )
                raise CrmAuthError(f"CRM API token {what} for {method} {url}: check {TOKEN_ENV}")
            if status == 400 and cap_check:
                log.info(
                    "CRM API refused %s %s with HTTP 400; treating it as the search cap",
                    method,
                    where,
                )
                raise _SearchCapReached()
            if status != 200:
                raise CrmApiError(
                    f"CRM API {method} {where} answered HTTP {status}"
                    f"{' after retries' if status in RETRY_STATUSES else ''}: "
                    f"{self._scrub(response.text[:300])}"
                )
            try:
                body = response.json()
            except ValueError as exc:
                problem = f"body is not valid JSON ({exc})"
            else:
                if (
                    isinstance(body, dict)
                    and isinstance(body.get("results"), list)
                    and all(isinstance(r, dict) for r in body["results"])
                ):
                    return body
                problem = "body has no 'results' list of records"
            log.warning(
                "CRM API %s %s: malformed page, attempt %d of %d: %s",
                method,
                where,
                attempt + 1,
                self.malformed_retries + 1,
                problem,
            )
        raise CrmApiError(
            f"CRM API {method} {where} returned a malformed page "
            f"{self.malformed_retries + 1} times: {problem}"
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***")


def _cursor(ref: str) -> str:
    after = ref.rsplit("after=", 1)[1] if "after=" in ref else None
    return f"page cursor after={after}" if after else "first page"


def _next_after(body: dict[str, Any]) -> str | None:
    paging = body.get("paging")
    if isinstance(paging, dict) and isinstance(paging.get("next"), dict):
        after = paging["next"].get("after")
        return str(after) if after not in (None, "") else None
    return None


def record_modified_at(record: dict[str, Any]) -> datetime | None:
    """hs_lastmodifieddate of a record (updatedAt when it is missing or unreadable)."""
    properties = record.get("properties")
    for value in (
        properties.get("hs_lastmodifieddate") if isinstance(properties, dict) else None,
        record.get("updatedAt"),
    ):
        try:
            stamp = parse_timestamp(value)
        except ValueError:
            continue
        if stamp is not None:
            return stamp
    return None


# ------------------------------------------------------------------------------------ sync


@dataclass
class CrmObjectSync:
    object: str
    mode: str  # full | incremental | full_fallback
    batch_id: str
    pages_fetched: int = 0
    records_fetched: int = 0
    records_upserted: int = 0
    records_rejected: int = 0
    watermark: datetime | None = None
    search_restarts: int = 0


@dataclass
class CrmSyncReport:
    objects: dict[str, CrmObjectSync] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def pages_fetched(self) -> int:
        return sum(o.pages_fetched for o in self.objects.values())

    @property
    def records_upserted(self) -> int:
        return sum(o.records_upserted for o in self.objects.values())

    @property
    def records_rejected(self) -> int:
        return sum(o.records_rejected for o in self.objects.values())

    @property
    def watermarks(self) -> dict[str, datetime | None]:
        return {name: o.watermark for name, o in self.objects.items()}

    @property
    def summary(self) -> str:
        return (
            f"CRM sync: {self.pages_fetched} pages, {self.records_upserted} records upserted, "
            f"{self.records_rejected} rejected"
        )

    def metadata(self, table: Table) -> dict[str, Any]:
        """What the sync did to one raw table (`raw.crm_<object>`)."""
        sync = next(o for name, o in self.objects.items() if RAW_CRM_TABLES[name].fqn == table.fqn)
        return {
            "sync_mode": sync.mode,
            "pages_fetched": sync.pages_fetched,
            "records_upserted": sync.records_upserted,
            "records_rejected": sync.records_rejected,
            "watermark": sync.watermark.isoformat() if sync.watermark else "",
        }


def sync_crm(
    con: duckdb.DuckDBPyConnection,
    client: CrmClient,
    objects: Sequence[str] = CRM_OBJECTS,
    *,
    full: bool = False,
    now: datetime | None = None,
    lookback: timedelta = timedelta(0),
) -> CrmSyncReport:
    """Sync `objects` into `raw.crm_<object>`; see the module docstring.

    Each object commits on its own. An auth error stops at once; any other API error fails
    only its object (state and watermark unchanged), the others still sync, and a
    CrmSyncError at the end lists the failures. `lookback` widens each incremental search
    window backwards (e.g. for a search index that lags behind writes); the overlap is
    deduplicated.
    """
    unknown = [name for name in objects if name not in CRM_OBJECTS]
    if unknown:
        raise ValueError(f"unknown CRM objects {unknown}; expected some of {CRM_OBJECTS}")
    loaded_at = now or datetime.now(UTC)
    if loaded_at.tzinfo is None:
        loaded_at = loaded_at.replace(tzinfo=UTC)
    for table in (
        *(RAW_CRM_TABLES[name] for name in objects),
        RAW_CRM_SYNC_STATE,
        RAW_REJECTED_ROWS,
    ):
        table.create(con)
    report = CrmSyncReport()
    for name in objects:
        try:
            report.objects[name] = _sync_object(con, client, name, full, loaded_at, lookback)
        except CrmAuthError:
            raise
        except CrmError as exc:
            log.error("CRM sync of %s failed; its previous state is kept: %s", name, exc)
            report.errors[name] = str(exc)
    if report.errors:
        listing = "\n".join(f"- {name}: {error}" for name, error in report.errors.items())
        raise CrmSyncError(
            f"{len(report.errors)} of {len(objects)} CRM objects failed to sync (their previous "
            f"state and watermark are kept; the others committed):\n{listing}",
            report,
        )
    return report


def _state(con: duckdb.DuckDBPyConnection, crm_object: str) -> tuple[bool, datetime | None]:
    rows = con.execute(
        f"SELECT epoch_us(watermark) FROM {RAW_CRM_SYNC_STATE.fqn} WHERE object = ?",
        [crm_object],
    ).fetchall()
    if not rows:
        return False, None
    micros = rows[0][0]
    return True, None if micros is None else datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        microseconds=micros
    )


def _sync_object(
    con: duckdb.DuckDBPyConnection,
    client: CrmClient,
    crm_object: str,
    full: bool,
    loaded_at: datetime,
    lookback: timedelta,
) -> CrmObjectSync:
    synced_before, watermark = _state(con, crm_object)
    mode = "full" if full or not synced_before else "incremental"
    batch_id = f"crm-{crm_object}-{loaded_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    result = CrmObjectSync(crm_object, mode, batch_id)
    properties = list(CRM_PROPERTY_TYPES[crm_object])
    collector = _Collector(con, crm_object, properties)

    def listing() -> Iterator[CrmPage]:
        yield from client.iter_list(crm_object, properties=properties, archived=False)
        yield from client.iter_list(crm_object, properties=properties, archived=True)

    try:
        if mode == "full":
            pages: Iterator[CrmPage] = listing()
        else:
            since = watermark - lookback if watermark is not None else None
            pages = client.iter_search(crm_object, properties=properties, since=since)
        try:
            for page in pages:
                collector.add(page)
                result.search_restarts = max(result.search_restarts, page.window)
        except CrmSearchCapError as exc:
            log.warning("CRM %s: %s; falling back to a full listing", crm_object, exc)
            result.mode = "full_fallback"
            for page in listing():
                collector.add(page)
        if result.mode == "incremental":
            # Search never returns archived records: list them to catch new archivals.
            for page in client.iter_list(crm_object, properties=properties, archived=True):
                collector.add(page)
        result.pages_fetched = collector.pages
        result.records_fetched = collector.records
        new_watermark = max(
            (w for w in (watermark, collector.latest) if w is not None), default=None
        )
        result.records_upserted, result.records_rejected = collector.commit(
            batch_id, loaded_at, new_watermark, result
        )
        result.watermark = new_watermark
    finally:
        collector.drop()
    log.info(
        "CRM %s %s sync: %d pages, %d records fetched, %d upserted, %d rejected, watermark %s",
        crm_object,
        result.mode,
        result.pages_fetched,
        result.records_fetched,
        result.records_upserted,
        result.records_rejected,
        result.watermark.isoformat() if result.watermark else None,
    )
    return result


_INCOMING_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("id", pa.string()),
        ("properties", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("updated_at", pa.timestamp("us", tz="UTC")),
        ("archived", pa.bool_()),
        ("archived_at", pa.timestamp("us", tz="UTC")),
        ("hs_lastmodifieddate", pa.timestamp("us", tz="UTC")),
        ("source_ref", pa.string()),
        ("source_row", pa.int64()),
    ]
)
_REJECTS_SCHEMA = pa.schema(
    [
        ("location", pa.string()),
        ("field", pa.string()),
        ("reason", pa.string()),
        ("raw_record", pa.string()),
    ]
)


class _Collector:
    """Validates pages and stages them in temp tables until the object's sync commits."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, crm_object: str, properties: list[str]
    ) -> None:
        self.con, self.object, self.properties = con, crm_object, properties
        self.pages = self.records = 0
        self.latest: datetime | None = None
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_INCOMING} (seq BIGINT, id VARCHAR, properties "
            "VARCHAR, created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, archived BOOLEAN, "
            "archived_at TIMESTAMPTZ, hs_lastmodifieddate TIMESTAMPTZ, source_ref VARCHAR, "
            "source_row BIGINT)"
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_REJECTS} (location VARCHAR, field VARCHAR, "
            "reason VARCHAR, raw_record VARCHAR)"
        )

    def add(self, page: CrmPage) -> None:
        good: dict[str, list[Any]] = {name: [] for name in _INCOMING_SCHEMA.names}
        bad: dict[str, list[Any]] = {name: [] for name in _REJECTS_SCHEMA.names}
        for index, record in enumerate(page.results):
            record = self._minimal(record)
            stamp = record_modified_at(record)
            if stamp is not None and (self.latest is None or stamp > self.latest):
                self.latest = stamp
            try:
                row = self._check(record)
            except ConversionError as exc:
                record_id = record.get("id")
                bad["location"].append(f"{self.object} {record_id if record_id else '?'}")
                bad["field"].append(exc.field)
                bad["reason"].append(str(exc))
                bad["raw_record"].append(json.dumps(record, sort_keys=True, ensure_ascii=False))
                continue
            row.update(seq=self.records + index, source_ref=page.source_ref, source_row=index)
            for name in _INCOMING_SCHEMA.names:
                good[name].append(row[name])
        self.pages += 1
        self.records += len(page.results)
        for table, columns, schema in (
            (_INCOMING, good, _INCOMING_SCHEMA),
            (_REJECTS, bad, _REJECTS_SCHEMA),
        ):
            if columns[schema.names[0]]:
                frame = pa.table(columns, schema=schema)
                self.con.register("_crm_page", frame)
                try:
                    self.con.execute(f"INSERT INTO {table} SELECT * FROM _crm_page")
                finally:
                    self.con.unregister("_crm_page")

    def _minimal(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record with only the requested properties (and hs_object_id): whatever else
        the API sends (personal data above all) is dropped before it is stored anywhere."""
        properties = record.get("properties")
        if not isinstance(properties, dict):
            return record
        keep = {*self.properties, "hs_object_id"}
        return {**record, "properties": {k: v for k, v in properties.items() if k in keep}}

    def _check(self, record: dict[str, Any]) -> dict[str, Any]:
        record_id = record.get("id")
        if not isinstance(record_id, str | int) or str(record_id).strip() == "":
            raise ConversionError("id", "the record has no id")
        properties = record.get("properties")
        if not isinstance(properties, dict):
            raise ConversionError("properties", "properties is not a JSON object")
        stamps: dict[str, datetime | None] = {}
        for name in ("createdAt", "updatedAt", "archivedAt"):
            try:
                stamps[name] = parse_timestamp(record.get(name))
            except ValueError as exc:
                raise ConversionError(name, f"{name} {exc}") from None
        if stamps["updatedAt"] is None:
            raise ConversionError("updatedAt", "updatedAt is missing; it versions the record")
        archived = record.get("archived", False)
        if not isinstance(archived, bool):
            raise ConversionError("archived", f"archived {archived!r} is not true or false")
        typed = convert_properties(self.object, properties)
        return {
            "id": str(record_id),
            "properties": json.dumps(properties, ensure_ascii=False),
            "created_at": stamps["createdAt"],
            "updated_at": stamps["updatedAt"],
            "archived": archived,
            "archived_at": stamps["archivedAt"],
            "hs_lastmodifieddate": typed["hs_lastmodifieddate"] or stamps["updatedAt"],
        }

    def commit(
        self, batch_id: str, loaded_at: datetime, watermark: datetime | None, result: CrmObjectSync
    ) -> tuple[int, int]:
        """Upsert the newer versions, record new rejections and the watermark, atomically."""
        con, raw = self.con, RAW_CRM_TABLES[self.object]
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {_WINNERS} AS
            SELECT i.* FROM (
                SELECT * FROM {_INCOMING}
                QUALIFY row_number() OVER (
                    PARTITION BY id ORDER BY updated_at DESC, archived DESC, seq DESC) = 1
            ) AS i
            LEFT JOIN {raw.fqn} AS r ON r.id = i.id
            WHERE r.id IS NULL OR i.updated_at > r.updated_at
               OR (i.updated_at = r.updated_at AND i.archived <> r.archived)
            """
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {_REJECTS}_new AS
            SELECT DISTINCT location, field, reason, raw_record FROM {_REJECTS} AS x
            WHERE NOT EXISTS (
                SELECT 1 FROM {RAW_REJECTED_ROWS.fqn} AS r
                WHERE r.source = ? AND r.location = x.location AND r.raw_record = x.raw_record)
            """,
            [SOURCE],
        )
        [(upserted,)] = con.execute(f"SELECT count(*) FROM {_WINNERS}").fetchall()
        [(rejected,)] = con.execute(f"SELECT count(*) FROM {_REJECTS}_new").fetchall()
        with transaction(con):
            con.execute(f"DELETE FROM {raw.fqn} WHERE id IN (SELECT id FROM {_WINNERS})")
            con.execute(
                f"INSERT INTO {raw.fqn} (id, properties, created_at, updated_at, archived, "
                "archived_at, hs_lastmodifieddate, _source, _source_ref, _source_row, "
                "_batch_id, _loaded_at) "
                "SELECT id, properties::JSON, created_at, updated_at, archived, archived_at, "
                f"hs_lastmodifieddate, ?, source_ref, source_row, ?, ? FROM {_WINNERS}",
                [SOURCE, batch_id, loaded_at],
            )
            con.execute(
                f"INSERT INTO {RAW_REJECTED_ROWS.fqn} (source, source_ref, batch_id, location, "
                "field, reason, raw_record, rejected_at) "
                f"SELECT ?, ?, ?, location, field, reason, raw_record, ? FROM {_REJECTS}_new",
                [SOURCE, self.object, batch_id, loaded_at],
            )
            con.execute(f"DELETE FROM {RAW_CRM_SYNC_STATE.fqn} WHERE object = ?", [self.object])
            con.execute(
                f"INSERT INTO {RAW_CRM_SYNC_STATE.fqn} (object, watermark, last_sync_at, mode, "
                "batch_id, pages_fetched, records_upserted, records_rejected) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    self.object,
                    watermark,
                    loaded_at,
                    result.mode,
                    batch_id,
                    self.pages,
                    upserted,
                    rejected,
                ],
            )
        return upserted, rejected

    def drop(self) -> None:
        for table in (_INCOMING, _REJECTS, f"{_REJECTS}_new", _WINNERS):
            self.con.execute(f"DROP TABLE IF EXISTS {table}")
