"""Incremental HubSpot runs read associations with the v4 batch read.

Search results carry no associations, so after each search page the
connector sends one POST /crm/v4/associations/{from}/{to}/batch/read per
associated type: deals read companies, and calls, emails and meetings read
deals, contacts and companies.
"""

from __future__ import annotations

import datetime as dt
import logging

from activity.models import Activity, Deal
from integrations.models import SyncRun
from tests.integrations.conftest import TOKEN, make_connector, run_sync, seed_portal

# After the full sync of each test, so its incremental run finds the change.
LATER = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
CALL_READS = [
    "/crm/v4/associations/calls/deals/batch/read",
    "/crm/v4/associations/calls/contacts/batch/read",
    "/crm/v4/associations/calls/companies/batch/read",
]
DEAL_READ = "/crm/v4/associations/deals/companies/batch/read"


def paths_since(hubspot, before: int) -> list[str]:
    return [r.path for r in hubspot.requests(TOKEN)[before:]]


# Incremental runs


def test_new_call_links_deal_and_contact(personas, hubspot, clock, connection):
    seed_portal(hubspot)
    run_sync(connection, make_connector(hubspot, clock))
    hubspot.add(
        "calls",
        "403",
        modified_at=LATER,
        hs_call_title="Pricing call",
        hs_timestamp="2025-04-05T10:00:00.000Z",
        hubspot_owner_id="2",
        associations={"deals": ["302"], "contacts": ["202"]},
    )
    before = len(hubspot.requests(TOKEN))

    run = run_sync(connection, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)

    assert run.status == SyncRun.Status.SUCCEEDED
    call = Activity.objects.get(external_id="403")
    assert call.deal.external_id == "302"
    assert call.contact.external_id == "202"
    assert call.account is None
    sent = paths_since(hubspot, before)
    # Only the calls search found a record, so only it is followed by reads.
    call_search = sent.index("/crm/v3/objects/calls/search")
    assert sent[call_search + 1 : call_search + 4] == CALL_READS
    assert len([p for p in sent if p.startswith("/crm/v4/")]) == 3
    assert run.api_calls == len(sent)


def test_removed_company_clears_deal_account(personas, hubspot, clock, connection):
    seed_portal(hubspot)
    run_sync(connection, make_connector(hubspot, clock))
    assert Deal.objects.get(external_id="301").account.external_id == "101"
    hubspot.associate("deals", "301", "companies", [], modified_at=LATER)
    hubspot.associate("deals", "304", "companies", ["102"], modified_at=LATER)

    run = run_sync(connection, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.counts["deals"]["updated"] == 2
    assert Deal.objects.get(external_id="301").account is None
    assert Deal.objects.get(external_id="304").account.external_id == "102"
    # Deal 302 was not in the search results and keeps its account.
    assert Deal.objects.get(external_id="302").account.external_id == "102"


def test_page_without_associations_costs_one_read(personas, hubspot, clock, connection):
    seed_portal(hubspot)
    run_sync(connection, make_connector(hubspot, clock))
    # Deals 303 and 305 have no company. Both change, on one search page.
    hubspot.update("deals", "303", modified_at=LATER, amount="4100")
    hubspot.update("deals", "305", modified_at=LATER, amount="800")
    before = len(hubspot.requests(TOKEN))

    run = run_sync(connection, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)

    sent = paths_since(hubspot, before)
    # Owners, pipelines, seven searches, one read for the deal page, and the
    # listings of archived deals, companies, contacts, calls, emails,
    # meetings and notes: 2 + 7 + 1 + 7.
    assert len(sent) == 17
    assert sent.count(DEAL_READ) == 1
    assert sent[sent.index("/crm/v3/objects/deals/search") + 1] == DEAL_READ
    assert run.api_calls == 17
    assert run.counts["deals"]["updated"] == 2
    assert Deal.objects.get(external_id="303").account is None
    assert Deal.objects.get(external_id="305").account is None
    assert Deal.objects.get(external_id="301").account.external_id == "101"


# Connector


def test_search_page_gets_listing_associations(hubspot, clock):
    hubspot.add_token(TOKEN, clock)
    hubspot.add("calls", "401", modified_at=LATER, associations={"deals": ["9"]})
    hubspot.add("calls", "402", modified_at=LATER)
    connector = make_connector(hubspot, clock)

    (page,) = connector.changed_pages("calls", None)

    first, second = page.records
    assert first.associations == {"deals": ["9"], "contacts": [], "companies": []}
    assert second.associations == {"deals": [], "contacts": [], "companies": []}
    paths = [r.path for r in hubspot.requests()]
    assert paths == ["/crm/v3/objects/calls/search", *CALL_READS]
    assert [r.status for r in hubspot.requests()] == [200, 207, 207, 207]


def test_associations_match_listing(hubspot, clock):
    hubspot.add_token(TOKEN, clock)
    hubspot.add(
        "meetings",
        "601",
        modified_at=LATER,
        associations={"deals": ["7", "8"], "contacts": ["5"], "companies": []},
    )
    connector = make_connector(hubspot, clock)

    (searched,) = next(connector.changed_pages("meetings", None)).records
    (listed,) = next(connector.list_pages("meetings")).records

    assert searched.associations == listed.associations
    assert searched.associations["deals"] == ["7", "8"]


def test_batch_read_retries_rate_limit(hubspot, clock):
    hubspot.add_token(TOKEN, clock)
    hubspot.add("deals", "301", modified_at=LATER, associations={"companies": ["7"]})
    hubspot.inject(429, retry_after=2, path=DEAL_READ)
    connector = make_connector(hubspot, clock)

    (page,) = connector.changed_pages("deals", None)

    assert page.records[0].associations == {"companies": ["7"]}
    statuses = [(r.path, r.status) for r in hubspot.requests()]
    assert statuses == [
        ("/crm/v3/objects/deals/search", 200),
        (DEAL_READ, 429),
        (DEAL_READ, 200),
    ]
    assert clock.now() == 2.0


def test_batch_read_follows_paging(hubspot, clock):
    hubspot.add_token(TOKEN, clock)
    hubspot.association_page_max = 2
    contacts = ["51", "52", "53", "54", "55"]
    hubspot.add("emails", "501", modified_at=LATER, associations={"contacts": contacts})
    hubspot.add("emails", "502", modified_at=LATER, associations={"contacts": ["56"]})
    connector = make_connector(hubspot, clock)

    (page,) = connector.changed_pages("emails", None)

    first, second = page.records
    assert first.associations["contacts"] == contacts
    assert second.associations["contacts"] == ["56"]
    contact_reads = [
        r
        for r in hubspot.requests()
        if r.path == "/crm/v4/associations/emails/contacts/batch/read"
    ]
    # Pages of 2: 501 needs three requests, and the first also reads 502.
    assert len(contact_reads) == 3


def test_batch_read_error_keeps_links(hubspot, clock, caplog):
    hubspot.add_token(TOKEN, clock)
    hubspot.add("calls", "401", modified_at=LATER, associations={"deals": ["9"]})
    hubspot.add("calls", "402", modified_at=LATER, associations={"deals": ["8"]})
    hubspot.association_failures = {"402"}
    connector = make_connector(hubspot, clock)

    with caplog.at_level(logging.WARNING, "integrations.connectors.hubspot"):
        (page,) = connector.changed_pages("calls", None)

    first, second = page.records
    assert first.associations == {"deals": ["9"], "contacts": [], "companies": []}
    # No entry, so the writers leave 402's stored links as they are.
    assert second.associations == {}
    assert len(caplog.records) == 3
    assert "ids 402" in caplog.records[0].getMessage()


def test_batch_read_splits_at_limit(hubspot, clock):
    hubspot.add_token(TOKEN, clock)
    hubspot.add("deals", "1500", modified_at=LATER, associations={"companies": ["7"]})
    connector = make_connector(hubspot, clock)
    ids = [str(number) for number in range(1, 1501)]

    linked = connector._associated_ids("deals", "companies", ids)

    assert len(linked) == 1500
    assert linked["1500"] == ["7"]
    assert linked["1"] == []
    # 1,000 ids, then 500, each batch with ids that have no company.
    assert [r.status for r in hubspot.requests()] == [207, 207]
