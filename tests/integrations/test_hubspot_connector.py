import datetime as dt
import threading
from decimal import Decimal

import pytest

from integrations.connectors.base import ConnectorError, Keyset
from integrations.connectors.ratelimit import RollingWindowLimiter, limiter_for
from tests.integrations.conftest import TOKEN, make_connector
from tests.integrations.fake_hubspot import SimulatedClock

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def test_search_splits_windows_under_result_ceiling(hubspot, clock):
    # 25,000 deals modified in [T0, T1), three per second, so ties also
    # straddle the points where a new search starts.
    hubspot.add_token(TOKEN, clock)
    for number in range(25_000):
        hubspot.add(
            "deals",
            str(100_000 + number),
            modified_at=T0 + dt.timedelta(seconds=number // 3),
            dealname=f"Deal {number}",
        )
    connector = make_connector(hubspot, clock, search=(5, 1.0))

    ids = [
        r.id for page in connector.changed_pages("deals", None) for r in page.records
    ]

    assert len(ids) == 25_000
    assert len(set(ids)) == 25_000
    searches = hubspot.requests()
    assert len([r for r in searches if r.status == 400]) == 0
    assert len([r for r in searches if r.status == 429]) == 0
    assert len(searches) >= 125
    assert clock.now() >= 25.0
    assert hubspot.max_in_window(TOKEN, 1.0, search_only=True) <= 5


def test_search_since_keyset_skips_seen_ties(hubspot, clock):
    hubspot.add_token(TOKEN, clock)
    at = dt.datetime(2024, 5, 1, 10, 0, 5, tzinfo=dt.UTC)
    for deal_id in ("11", "12", "13"):
        hubspot.add("deals", deal_id, modified_at=at, dealname=deal_id)
    connector = make_connector(hubspot, clock)

    pages = list(connector.changed_pages("deals", Keyset(at, "12")))

    assert [r.id for page in pages for r in page.records] == ["13"]


def test_search_fails_when_one_time_exceeds_ceiling(hubspot, clock):
    hubspot.add_token(TOKEN, clock)
    for number in range(10_050):
        hubspot.add("deals", str(100_000 + number), modified_at=T0, dealname="x")
    connector = make_connector(hubspot, clock, search=(50, 1.0))

    with pytest.raises(ConnectorError, match="share the modified time"):
        for _page in connector.changed_pages("deals", Keyset(T0, "")):
            pass
    assert len(hubspot.requests(status=400)) == 0


def test_tenants_have_separate_rate_limits(hubspot):
    # A lists 250 companies and B 20 contacts, one per request, at once, each
    # on its own token against 100 requests per rolling 10 s. Each token has
    # its own simulated clock.
    jobs = {"pat-tenant-a": ("companies", 250), "pat-tenant-b": ("contacts", 20)}
    clocks = {token: SimulatedClock() for token in jobs}
    for token, (object_type, size) in jobs.items():
        hubspot.add_token(token, clocks[token])
        for number in range(size):
            hubspot.add(object_type, modified_at=T0, name=f"{token} {number}")
    results = {}

    def list_records(token):
        connector = make_connector(hubspot, clocks[token], token=token)
        connector.list_page_size = 1
        object_type = jobs[token][0]
        pages = connector.list_pages(object_type)
        results[token] = [r.id for page in pages for r in page.records]

    threads = [threading.Thread(target=list_records, args=(t,)) for t in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(results["pat-tenant-a"])) == 250
    assert len(hubspot.requests("pat-tenant-a", status=200)) == 250
    assert len(hubspot.requests("pat-tenant-a", status=429)) == 0
    assert hubspot.max_in_window("pat-tenant-a", 10.0) == 100
    assert clocks["pat-tenant-a"].now() >= 20.0
    assert len(set(results["pat-tenant-b"])) == 20
    assert len(hubspot.requests("pat-tenant-b", status=429)) == 0
    assert clocks["pat-tenant-b"].now() < 10.0


def test_limiter_registry_is_per_token():
    first = limiter_for("pat-token-one", "burst", 100, 10.0)

    assert limiter_for("pat-token-one", "burst", 100, 10.0) is first
    assert limiter_for("pat-token-two", "burst", 100, 10.0) is not first
    assert limiter_for("pat-token-one", "search", 4, 1.0) is not first


def test_limiter_waits_for_oldest_request():
    clock = SimulatedClock()
    limiter = RollingWindowLimiter(3, 10.0, clock)

    waits = [limiter.acquire() for _ in range(7)]

    assert waits == [0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 10.0]
    assert clock.now() == 20.0


def test_rate_limit_without_retry_after_waits_a_window(hubspot, clock):
    hubspot.add_token(TOKEN, clock)
    hubspot.add_owner("1", "rita.rep@acme.test")
    hubspot.inject(429)
    connector = make_connector(hubspot, clock)

    owners = connector.owners()

    assert [o.id for o in owners] == ["1"]
    assert clock.now() == 10.0


def test_rate_limit_storm_gives_up_after_retries(hubspot, clock):
    hubspot.add_token(TOKEN, clock)
    hubspot.inject(429, count=11, retry_after=1)
    connector = make_connector(hubspot, clock)

    with pytest.raises(ConnectorError, match="still returned 429"):
        connector.owners()
    assert len(hubspot.requests(status=429)) == 11


def test_pipelines_read_stage_metadata(hubspot, clock):
    hubspot.add_token(TOKEN, clock)
    hubspot.add_pipeline(
        "default",
        "Sales",
        [
            ("closedwon", "Closed Won", True, "1.0"),
            ("closedlost", "Closed Lost", True, "0.0"),
            ("qualified", "Qualified", False, "0.4"),
        ],
    )

    (pipeline,) = make_connector(hubspot, clock).pipelines()

    stages = [(s.id, s.is_closed, s.probability) for s in pipeline.stages]
    assert stages == [
        ("closedwon", True, Decimal("1.0")),
        ("closedlost", True, Decimal("0.0")),
        ("qualified", False, Decimal("0.4")),
    ]
