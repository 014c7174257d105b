"""The analytics and CRM sources through the real Dagster graph: a CRM simulator on 127.0.0.1,
an export folder with gzipped events, metrics over both, and numbers checked by hand."""

from __future__ import annotations

import gzip
import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from connectors.crm.simulator import CrmSimulator
from pipelines.build import build_definitions
from pipelines.cli import backfill
from pipelines.settings import Settings

METRICS = """
settings: {timezone: America/New_York}
metrics:
  - {id: active_users, name: Active users, source: analytics_events,
     aggregation: count_distinct, column: user_id, filter: {event: [session_start, page_view]},
     window: 7d}
  - {id: won_revenue, name: Closed-won revenue, source: crm_deals, aggregation: sum,
     column: amount, filter: {dealstage: closedwon}}
"""
OKRS = """
objectives:
  - id: grow
    title: Grow
    team: sales
    period: 2025-Q2
    key_results:
      - {id: kr-users, title: 5 weekly users, metric: active_users, type: increase,
         baseline: 1, target: 5}
      - {id: kr-revenue, title: Win 1000, metric: won_revenue, type: increase,
         baseline: 0, target: 1000}
"""

DEAL = {
    "dealname": "d",
    "pipeline": "default",
    "dealstage": "closedwon",
    "createdate": "2025-03-01T00:00:00Z",
}


def event(name: str, when: str, user: str) -> str:
    return json.dumps({"event": name, "timestamp": when, "user_id": user, "properties": {}})


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> tuple[Settings, CrmSimulator]:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "metrics.yaml").write_text(textwrap.dedent(METRICS))
    (tmp_path / "config" / "okrs.yaml").write_text(textwrap.dedent(OKRS))
    (tmp_path / "data" / "csv").mkdir(parents=True)
    analytics = tmp_path / "data" / "analytics"
    analytics.mkdir()
    lines = [
        event("session_start", "2025-06-24T10:00:00+00:00", "u1"),
        event("page_view", "2025-06-25T10:00:00+00:00", "u1"),  # same user: counted once
        event("session_start", "2025-06-26T12:00:00+00:00", "u2"),
        # 23:30 in New York on June 30 is July 1 in UTC: still June 30 here.
        event("page_view", "2025-06-30T23:30:00-04:00", "u3"),
        event("signup", "2025-06-29T10:00:00+00:00", "u4"),  # not a session event
        event("page_view", "2025-06-10T10:00:00+00:00", "u5"),  # outside the 7 days
    ]
    with gzip.open(analytics / "events.jsonl.gz", "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    simulator = CrmSimulator(data={"companies": [], "contacts": [], "deals": []})
    simulator.start()
    simulator.add(
        "deals",
        {**DEAL, "amount": "400", "closedate": "2025-04-10T00:00:00Z"},
        when=datetime(2025, 4, 10, tzinfo=UTC),
    )
    simulator.add(
        "deals",
        {**DEAL, "amount": "350", "closedate": "2025-05-20T00:00:00Z"},
        when=datetime(2025, 5, 20, tzinfo=UTC),
    )
    simulator.add(
        "deals",
        {**DEAL, "amount": "999", "dealstage": "closedlost", "closedate": "2025-05-21T00:00:00Z"},
        when=datetime(2025, 5, 21, tzinfo=UTC),
    )
    monkeypatch.setenv("CRM_API_BASE_URL", simulator.base_url)
    monkeypatch.setenv("CRM_API_TOKEN", simulator.token)
    settings = Settings(
        config_dir=tmp_path / "config",
        data_dir=tmp_path / "data",
        warehouse=tmp_path / "warehouse.duckdb",
        bi_snapshot=tmp_path / "bi.duckdb",
        as_of="2025-06-30",
        api_sources=frozenset({"crm"}),
    )
    yield settings, simulator
    simulator.stop()


def values(settings: Settings) -> dict[str, tuple]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        rows = con.execute(
            "SELECT kr_id, current_value, progress, status FROM marts.key_result_attainment"
        ).fetchall()
    return {kr_id: tuple(rest) for kr_id, *rest in rows}


def test_analytics_and_crm_metrics_through_the_graph(project):
    settings, simulator = project
    instance = dg.DagsterInstance.ephemeral()
    keys = build_definitions(settings).resolve_asset_graph().get_all_asset_keys()
    assert dg.AssetKey(["raw", "crm_deals"]) in keys
    assert dg.AssetKey(["staging", "analytics_events"]) in keys

    first = backfill(settings, None, None, instance)
    assert first.success
    # Trailing 7 days ending Jun 30 (New York dates): u1, u2, u3 -> 3 distinct session users.
    # Baseline 1, target 5: r = (3 - 1) / 4 = 0.5. Revenue: closed-won 400 + 350 = 750 of 1000.
    result = values(settings)
    assert result["kr-users"][:2] == (3.0, 0.5)
    assert result["kr-revenue"][:2] == (750.0, 0.75)

    # A second run with nothing new: the CRM sync upserts nothing and the numbers stand.
    requests_before = len(simulator.requests)
    second = backfill(settings, None, None, instance)
    assert second.success
    deals = [
        event.materialization.metadata
        for event in second.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey(["raw", "crm_deals"])
    ]
    assert deals[0]["records_upserted"].value == 0
    assert deals[0]["sync_mode"].text == "incremental"
    assert len(simulator.requests) > requests_before
    assert values(settings) == result


def test_the_token_never_reaches_run_config_or_metadata(project):
    settings, simulator = project
    result = backfill(settings, None, None, dg.DagsterInstance.ephemeral())
    assert result.success
    text = json.dumps(result.dagster_run.run_config, default=str) + "".join(
        str(event.materialization.metadata) for event in result.get_asset_materialization_events()
    )
    assert simulator.token not in text
