"""The CRM API source, against the shipped simulator: a real HTTP server on 127.0.0.1, real
sockets, `requests` and urllib3 retries (nothing is patched), a real DuckDB file."""

from __future__ import annotations

import json
import logging
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import requests

from connectors.crm.api import CrmAuthError, CrmClient, CrmSyncError, default_retry, sync_crm
from connectors.crm.properties import parse_timestamp
from connectors.crm.simulator import CrmSimulator, generate_data
from connectors.crm.staging import stage_crm
from connectors.crm.tables import CRM_OBJECTS, STAGING_CRM_CONTACTS, STAGING_CRM_DEALS
from warehouse.writes import replace_rows

TOKEN = "sim-secret-token-9f3c2e"
FORBIDDEN = "forbidden-token-77ab01"
T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


@pytest.fixture
def data() -> dict:
    data = generate_data(3, companies=12, contacts=25, deals=40, archived_share=0.1)
    assert all(any(r["archived"] for r in data[name]) for name in CRM_OBJECTS)
    return data


@pytest.fixture
def sim(data: dict):
    with CrmSimulator(data, token=TOKEN, forbidden_tokens=[FORBIDDEN]) as simulator:
        yield simulator


@pytest.fixture
def con(tmp_path: Path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def client(sim: CrmSimulator, token: str = TOKEN, **kwargs) -> CrmClient:
    options = {
        "retry": default_retry(total=6, backoff_factor=0.01, backoff_max=0.05),
        "timeout": (2.0, 2.0),
        "page_size": 7,
        **kwargs,
    }
    return CrmClient(sim.base_url, token, **options)


def sync(con, sim: CrmSimulator, **kwargs):
    client_options = {
        k: kwargs.pop(k)
        for k in ("timeout", "search_cap", "page_size", "malformed_retries")
        if k in kwargs
    }
    with client(sim, **client_options) as c:
        return sync_crm(con, c, **kwargs)


def raw_rows(con, crm_object: str) -> dict[str, tuple]:
    rows = con.execute(
        f"SELECT id, epoch_ms(updated_at), archived, properties::VARCHAR, _batch_id "
        f"FROM raw.crm_{crm_object}"
    ).fetchall()
    return {row[0]: row[1:] for row in rows}


def assert_mirrors(
    con,
    sim: CrmSimulator,
    *,
    missing: dict[str, set[str]] | None = None,
    objects: tuple[str, ...] = CRM_OBJECTS,
):
    """raw.crm_* holds every simulator record exactly once, at its current version."""
    for name in objects:
        [(count, distinct)] = con.execute(
            f"SELECT count(*), count(DISTINCT id) FROM raw.crm_{name}"
        ).fetchall()
        assert count == distinct, f"{name}: duplicate ids"
        rows = raw_rows(con, name)
        expected = {
            r["id"]: r for r in sim.records(name) if r["id"] not in (missing or {}).get(name, set())
        }
        assert set(rows) == set(expected), name
        for record_id, record in expected.items():
            updated_ms = int(parse_timestamp(record["updatedAt"]).timestamp() * 1000)
            assert rows[record_id][0] == updated_ms, (name, record_id)
            assert rows[record_id][1] == record["archived"], (name, record_id)


def rejected(con) -> list[tuple]:
    return con.execute(
        "SELECT source_ref, location, field, reason, raw_record FROM raw.rejected_rows "
        "WHERE source = 'crm' ORDER BY location"
    ).fetchall()


# ------------------------------------------------------------------------ syncing


def test_full_sync_lands_every_record_once_with_lineage(con, sim):
    report = sync(con, sim)
    assert_mirrors(con, sim)
    assert {o.mode for o in report.objects.values()} == {"full"}
    assert report.records_upserted == sum(len(sim.ids(n)) for n in CRM_OBJECTS)
    assert report.records_rejected == 0
    # 7 per page: live and archived listings, e.g. deals: 40 records -> ceil(n/7) pages each.
    assert report.pages_fetched == sim.count("GET")
    assert sim.count("POST") == 0
    assert {r.status for r in sim.requests} == {200}
    lineage = con.execute("SELECT DISTINCT _source, _batch_id FROM raw.crm_deals").fetchall()
    assert lineage == [("crm", report.objects["deals"].batch_id)]
    refs = con.execute(
        "SELECT _source_ref, min(_source_row), max(_source_row), count(*) FROM raw.crm_deals "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert refs[0][0] == "/crm/v3/objects/deals?archived=false"
    assert any(ref.startswith("/crm/v3/objects/deals?archived=false&after=") for ref, *_ in refs)
    assert any(ref.startswith("/crm/v3/objects/deals?archived=true") for ref, *_ in refs)
    assert all(lo == 0 and hi < 7 for _, lo, hi, _ in refs)
    # Archived records are flagged, not dropped.
    archived = {r["id"] for r in sim.records("deals", archived=True)}
    flagged = {
        row[0]
        for row in con.execute(
            "SELECT id FROM raw.crm_deals WHERE archived AND archived_at IS NOT NULL"
        ).fetchall()
    }
    assert flagged == archived and archived
    # The watermark is the latest hs_lastmodifieddate seen, committed with the rows.
    latest = max(
        parse_timestamp(r["properties"]["hs_lastmodifieddate"]) for r in sim.records("deals")
    )
    assert report.watermarks["deals"] == latest
    state = con.execute(
        "SELECT object, watermark, mode, batch_id, records_upserted FROM raw.crm_sync_state "
        "ORDER BY object"
    ).fetchall()
    assert [row[0] for row in state] == sorted(CRM_OBJECTS)
    assert state[2][1] == latest and state[2][2] == "full"
    assert state[2][3] == report.objects["deals"].batch_id and state[2][4] == 40


def test_second_sync_without_changes_loads_nothing(con, sim):
    first = sync(con, sim)
    before = {name: raw_rows(con, name) for name in CRM_OBJECTS}
    rejected_before = rejected(con)
    for options in ({}, {"lookback": timedelta(days=3650)}):  # a wide overlap changes nothing
        sim.requests.clear()
        report = sync(con, sim, **options)
        if not options:  # one search page per object, then the (short) archived listings
            assert [r.method for r in sim.requests if "/search" in r.path] == ["POST"] * 3
            assert report.pages_fetched == len(sim.requests)
        assert {o.mode for o in report.objects.values()} == {"incremental"}
        assert report.records_upserted == 0 and report.records_rejected == 0
        assert report.watermarks == first.watermarks
        assert {name: raw_rows(con, name) for name in CRM_OBJECTS} == before
        assert rejected(con) == rejected_before


def test_incremental_picks_exactly_the_touched_records(con, sim):
    sync(con, sim)
    before = raw_rows(con, "deals")
    touched = ["3", "7", "21"]
    when = sim.touch("deals", touched, dealstage="closedwon", hs_is_closed_won="true")
    sim.touch("contacts", ["5"])
    sim.requests.clear()
    report = sync(con, sim)
    assert {n: o.records_upserted for n, o in report.objects.items()} == {
        "companies": 0,
        "contacts": 1,
        "deals": 3,
    }
    assert report.watermarks["deals"] == when.replace(microsecond=when.microsecond // 1000 * 1000)
    # The search asked from the stored watermark, sorted ascending.
    assert sim.count("POST", "/crm/v3/objects/deals/search") == 1
    after = raw_rows(con, "deals")
    batch = report.objects["deals"].batch_id
    assert {i for i, row in after.items() if row[3] == batch} == set(touched)
    assert {i: r for i, r in after.items() if i not in touched} == {
        i: r for i, r in before.items() if i not in touched
    }
    assert json.loads(after["7"][2])["dealstage"] == "closedwon"
    assert_mirrors(con, sim)


def test_incremental_adds_new_and_flags_archived_records_never_deleting(con, sim):
    sync(con, sim)
    new_id = sim.add(
        "deals",
        {
            "dealname": "New deal",
            "amount": "1200.50",
            "dealstage": "qualifiedtobuy",
            "pipeline": "default",
            "closedate": "1798761600000",
            "hs_is_closed_won": "false",
        },
    )
    assert datetime.fromtimestamp(1798761600, UTC) == datetime(2027, 1, 1, tzinfo=UTC)
    live = sim.ids("deals", archived=False)
    sim.archive("deals", [live[0], live[1]])
    report = sync(con, sim)
    assert report.objects["deals"].records_upserted == 3
    assert_mirrors(con, sim)
    rows = raw_rows(con, "deals")
    assert rows[live[0]][1] is True and rows[live[1]][1] is True
    assert len(rows) == 41
    staged = stage_crm(con, "deals").to_pylist()
    new = next(r for r in staged if r["id"] == new_id)
    assert new["closedate"] == datetime(2027, 1, 1, tzinfo=UTC)  # ms epoch converted
    assert new["amount"] == 1200.5


def test_full_resync_never_overwrites_with_a_stale_version(con, sim):
    sync(con, sim)
    before = raw_rows(con, "deals")
    sim.touch("deals", ["4"], when=datetime(2024, 1, 1, tzinfo=UTC), dealname="stale")
    report = sync(con, sim, objects=["deals"], full=True)
    assert report.objects["deals"].mode == "full"
    assert report.objects["deals"].records_upserted == 0
    assert raw_rows(con, "deals") == before


def test_search_cap_moves_the_window_and_loses_nothing(con, sim):
    sim.search_cap = 10
    sync(con, sim)
    ids = sim.ids("deals", archived=False)
    assert len(ids) > 25
    sim.touch("deals", ids, when=T0, step=timedelta(seconds=1))
    report = sync(con, sim, search_cap=10)
    deals = report.objects["deals"]
    assert deals.mode == "incremental"
    assert deals.search_restarts >= 3
    assert deals.records_upserted == len(ids)
    assert all(r.status == 200 for r in sim.requests)  # the client never paged past the cap
    assert deals.watermark == T0 + (len(ids) - 1) * timedelta(seconds=1)
    assert_mirrors(con, sim)


def test_search_cap_refused_by_the_server_restarts_the_window(con, sim):
    sim.search_cap = 10  # the client still assumes 10,000: the server answers 400 at 10
    sync(con, sim)
    ids = sim.ids("deals", archived=False)
    sim.touch("deals", ids, when=T0, step=timedelta(seconds=1))
    report = sync(con, sim)
    assert report.objects["deals"].records_upserted == len(ids)
    assert report.objects["deals"].search_restarts >= 3
    assert any(r.status == 400 for r in sim.requests)
    assert_mirrors(con, sim)


def test_search_cap_with_one_shared_timestamp_falls_back_to_a_full_listing(con, sim):
    sim.search_cap = 10
    sync(con, sim)
    ids = sim.ids("deals", archived=False)[:15]
    sim.touch("deals", ids, when=T0)  # 15 records, one instant: search cannot page past 10
    report = sync(con, sim, search_cap=10)
    assert report.objects["deals"].mode == "full_fallback"
    assert report.objects["deals"].records_upserted == 15
    assert report.watermarks["deals"] == T0
    assert_mirrors(con, sim)
    [(mode,)] = con.execute("SELECT mode FROM raw.crm_sync_state WHERE object = 'deals'").fetchall()
    assert mode == "full_fallback"


# ------------------------------------------------------------------------ faults

FAULTS = {  # name: (fault settings, status logged for each hit, hits, client options)
    "429-retry-after": ({"rate_limit": 1, "rate_limit_retry_after": "1"}, 429, 1, {}),
    "429-no-retry-after": ({"rate_limit": 3, "rate_limit_retry_after": None}, 429, 3, {}),
    "500": ({"server_errors": 2, "server_error_status": 500}, 500, 2, {}),
    "502": ({"server_errors": 2, "server_error_status": 502}, 502, 2, {}),
    "503": ({"server_errors": 2, "server_error_status": 503}, 503, 2, {}),
    "504": ({"server_errors": 2, "server_error_status": 504}, 504, 2, {}),
    "slow": ({"slow": 2, "slow_seconds": 0.5}, 200, 2, {"timeout": (2.0, 0.15)}),
    "reset": ({"reset": 2}, 0, 2, {}),
    "malformed": ({"malformed": 2}, 200, 2, {}),
}


@pytest.mark.parametrize("kind", list(FAULTS))
def test_transient_fault_is_retried_and_every_record_lands_once(con, sim, kind):
    faults, status, hits, options = FAULTS[kind]

    def arm(only: str, skip: int) -> None:
        sim.faults.clear()
        for name, value in {**faults, "only": only, "skip": skip}.items():
            setattr(sim.faults, name, value)
        sim.requests.clear()

    arm("/objects/deals", skip=2)  # the third page of deals in the full sync (a GET)
    started = time.monotonic()
    report = sync(con, sim, **options)
    if faults.get("rate_limit_retry_after"):
        assert time.monotonic() - started >= 0.95  # Retry-After: 1 was honoured
    assert_mirrors(con, sim)
    assert report.records_upserted == sum(len(sim.ids(n)) for n in CRM_OBJECTS)
    assert report.pages_fetched == len(sim.requests) - hits  # every page counted once
    attempts = [r for r in sim.requests if "/objects/deals" in r.path][2 : 2 + hits + 1]
    assert [r.status for r in attempts] == [status] * hits + [200]
    assert len({r.path for r in attempts}) == 1  # the same page, asked again
    assert getattr(sim.faults, kind_field(faults)) == 0

    # The same fault on the incremental search (a POST) is retried too.
    sim.touch("deals", ["2", "9", "30"])
    arm("/objects/deals/search", skip=0)
    report = sync(con, sim, **options)
    assert {n: o.records_upserted for n, o in report.objects.items()} == {
        "companies": 0,
        "contacts": 0,
        "deals": 3,
    }
    attempts = [r for r in sim.requests if r.path.endswith("/objects/deals/search")]
    assert [r.status for r in attempts] == [status] * hits + [200]
    assert {r.method for r in attempts} == {"POST"}
    assert_mirrors(con, sim)


def kind_field(faults: dict) -> str:
    return next(
        k for k in ("rate_limit", "server_errors", "slow", "reset", "malformed") if k in faults
    )


def test_a_failed_object_keeps_its_previous_state_and_the_rerun_loads_once(con, sim):
    sync(con, sim)
    state = con.execute("SELECT * FROM raw.crm_sync_state ORDER BY object").fetchall()
    contacts_before = raw_rows(con, "contacts")
    sim.touch("deals", ["1", "2", "3"])
    sim.touch("contacts", ["5"])
    sim.faults.only = "/objects/contacts"  # retries exhausted: HTTP 503 for every attempt
    sim.faults.server_errors = 1000
    with pytest.raises(CrmSyncError) as caught:
        sync(con, sim)
    message = str(caught.value)
    assert "1 of 3 CRM objects failed" in message and "contacts" in message
    assert "HTTP 503 after retries" in message and "previous state" in message
    assert set(caught.value.report.errors) == {"contacts"}
    assert caught.value.report.objects["deals"].records_upserted == 3  # the others committed
    after_state = con.execute("SELECT * FROM raw.crm_sync_state ORDER BY object").fetchall()
    assert after_state[1] == state[1]  # contacts: watermark and all unchanged
    assert raw_rows(con, "contacts") == contacts_before

    sim.faults.clear()
    report = sync(con, sim)
    assert {n: o.records_upserted for n, o in report.objects.items()} == {
        "companies": 0,
        "contacts": 1,
        "deals": 0,
    }
    assert_mirrors(con, sim)


def test_a_first_sync_failing_half_way_leaves_nothing_and_the_rerun_loads_once(con, sim):
    sim.faults.only = "/objects/deals"
    sim.faults.skip = 2  # two deal pages load, then every request fails
    sim.faults.server_errors = 1000
    with pytest.raises(CrmSyncError):
        sync(con, sim, objects=["deals"])
    assert con.execute("SELECT count(*) FROM raw.crm_deals").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM raw.crm_sync_state").fetchall() == [(0,)]
    sim.faults.clear()
    report = sync(con, sim, objects=["deals"])
    assert report.objects["deals"].mode == "full"
    assert report.objects["deals"].records_upserted == 40
    assert_mirrors(con, sim, objects=("deals",))


def test_a_page_that_stays_malformed_fails_naming_url_and_cursor(con, sim):
    sim.faults.skip = 1
    sim.faults.malformed = 10
    with pytest.raises(CrmSyncError) as caught:
        sync(con, sim, objects=["deals"], malformed_retries=2)
    message = str(caught.value)
    cursor = sim.ids("deals", archived=False)[6]  # the last id of the first page of 7
    assert f"{sim.base_url}/crm/v3/objects/deals?archived=false&after={cursor}" in message
    assert f"page cursor after={cursor}" in message
    assert "malformed page 3 times" in message
    assert sim.faults.malformed == 7
    assert con.execute("SELECT count(*) FROM raw.crm_deals").fetchall() == [(0,)]


def test_a_bad_value_record_is_quarantined_and_the_rest_loads(con, sim):
    sim.faults.bad_values = {
        ("deals", "12"): {"amount": "12,3x"},
        ("deals", "13"): {"closedate": "not-a-date"},
        ("companies", "4"): {"annualrevenue": "lots"},
    }
    report = sync(con, sim)
    assert report.objects["deals"].records_rejected == 2
    assert report.records_rejected == 3
    missing = {"deals": {"12", "13"}, "companies": {"4"}}
    assert_mirrors(con, sim, missing=missing)
    rows = rejected(con)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("companies", "companies 4", "annualrevenue"),
        ("deals", "deals 12", "amount"),
        ("deals", "deals 13", "closedate"),
    ]
    assert "'12,3x' is not a number" in rows[1][3]
    assert "'not-a-date' is not a timestamp" in rows[2][3]
    record = json.loads(rows[1][4])
    assert record["id"] == "12" and record["properties"]["amount"] == "12,3x"
    [(batch,)] = con.execute(
        "SELECT DISTINCT batch_id FROM raw.rejected_rows WHERE location LIKE 'deals %'"
    ).fetchall()
    assert batch == report.objects["deals"].batch_id

    # Seen again (same version, e.g. a full resync): not quarantined twice.
    sync(con, sim, full=True)
    assert len(rejected(con)) == 3

    # Fixed at the source: the next incremental sync loads them.
    sim.faults.bad_values = {}
    sim.touch("deals", ["12", "13"])
    sim.touch("companies", ["4"])
    report = sync(con, sim)
    assert report.records_upserted == 3 and report.records_rejected == 0
    assert_mirrors(con, sim)
    assert len(rejected(con)) == 3  # the history of what was rejected stays


@pytest.mark.parametrize(("token", "status"), [("wrong-token-5d1e", 401), (FORBIDDEN, 403)])
def test_auth_errors_fail_at_once_without_leaking_the_token(con, sim, caplog, token, status):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(CrmAuthError) as caught, client(sim, token=token) as c:
        sync_crm(con, c)
    assert [(r.method, r.status) for r in sim.requests] == [("GET", status)]
    text = "".join(traceback.format_exception(caught.value)) + repr(c)
    assert "CRM_API_TOKEN" in str(caught.value)
    assert f"HTTP {status}" in str(caught.value)
    for secret in (token, TOKEN):
        assert secret not in text
        for record in caplog.records:
            assert secret not in record.getMessage()
    assert con.execute("SELECT count(*) FROM raw.crm_sync_state").fetchall() == [(0,)]


def test_missing_token_is_an_auth_error():
    with pytest.raises(CrmAuthError, match="CRM_API_TOKEN"):
        CrmClient("http://127.0.0.1:9", "")


# ------------------------------------------------------------------------ staging


def test_staging_is_typed_and_carries_no_personal_data(con):
    with CrmSimulator(token=TOKEN) as sim:  # the shipped demo data set
        assert (len(sim.ids("companies")), len(sim.ids("contacts")), len(sim.ids("deals"))) == (
            300,
            2000,
            1500,
        )
        with CrmClient(sim.base_url, TOKEN) as c:
            report = sync_crm(con, c)
        assert report.records_upserted == 3800
        source = {r["id"]: r for r in sim.records("deals")}
        contact_personal = sim.records("contacts")[0]["properties"]["email"]

    deals = stage_crm(con, "deals")
    assert deals.column_names == STAGING_CRM_DEALS.column_names
    assert str(deals.schema.field("amount").type) == "double"
    assert str(deals.schema.field("closedate").type) == "timestamp[us, tz=UTC]"
    assert str(deals.schema.field("hs_is_closed_won").type) == "bool"
    assert deals.num_rows == 1500
    row = next(r for r in deals.to_pylist() if r["id"] == "100")
    props = source["100"]["properties"]
    assert row["amount"] == float(props["amount"])
    assert row["closedate"] == parse_timestamp(props["closedate"])
    assert row["hs_is_closed_won"] == (props["dealstage"] == "closedwon")
    assert row["archived"] == source["100"]["archived"]
    stages = {r["dealstage"] for r in deals.to_pylist()}
    assert stages == {"appointmentscheduled", "qualifiedtobuy", "closedwon", "closedlost"}
    assert sum(r["archived"] for r in deals.to_pylist()) > 0

    contacts = stage_crm(con, "contacts")
    assert contacts.column_names == [
        "id",
        "lifecyclestage",
        "country",
        "createdate",
        "hs_lastmodifieddate",
        "archived",
        "_source_ref",
        "_batch_id",
    ]
    # Personal data was never requested, so it is not in raw either.
    [(leaks,)] = con.execute(
        "SELECT count(*) FROM raw.crm_contacts WHERE properties::VARCHAR LIKE '%@%' "
        "OR json_exists(properties, '$.email') OR json_exists(properties, '$.phone')"
    ).fetchall()
    assert leaks == 0
    assert contact_personal.endswith("@example.com")

    # The frames write into the declared staging tables (whole table, unpartitioned).
    assert replace_rows(con, STAGING_CRM_DEALS, deals, "true") == 1500
    assert replace_rows(con, STAGING_CRM_CONTACTS, contacts, "true") == 2000
    [(won,)] = con.execute(
        "SELECT count(*) FROM staging.crm_deals WHERE hs_is_closed_won AND NOT archived"
    ).fetchall()
    assert won > 0


# ------------------------------------------------------------------------ the simulator


def test_simulator_speaks_the_hubspot_v3_shape(sim):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    url = f"{sim.base_url}/crm/v3/objects/deals"
    assert requests.get(url, timeout=5).status_code == 401
    page = requests.get(
        url, params={"limit": 500, "properties": "amount,dealstage"}, headers=auth, timeout=5
    ).json()
    assert len(page["results"]) == min(100, len(sim.ids("deals", archived=False)))
    first = page["results"][0]
    assert set(first) >= {"id", "properties", "createdAt", "updatedAt", "archived"}
    assert all(isinstance(v, str) for v in first["properties"].values())
    assert "amount" in first["properties"] and "dealname" not in first["properties"]
    paged = requests.get(url, params={"limit": 5}, headers=auth, timeout=5).json()
    assert paged["paging"]["next"]["after"] == paged["results"][-1]["id"]

    search = f"{url}/search"
    body = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "hs_lastmodifieddate",
                        "operator": "GTE",
                        "value": "2026-01-01T00:00:00Z",
                    }
                ]
            }
        ],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "limit": 100,
    }
    found = requests.post(search, json=body, headers=auth, timeout=5).json()
    stamps = [parse_timestamp(r["properties"]["hs_lastmodifieddate"]) for r in found["results"]]
    assert stamps == sorted(stamps) and all(s >= datetime(2026, 1, 1, tzinfo=UTC) for s in stamps)
    assert not any(r["archived"] for r in found["results"])
    sim.search_cap = 5
    refused = requests.post(search, json={**body, "after": "5"}, headers=auth, timeout=5)
    assert refused.status_code == 400 and "5 results" in refused.json()["message"]
