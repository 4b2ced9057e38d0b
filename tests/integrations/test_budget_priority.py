"""Priority mode: a sync with little daily API budget left syncs owners and deals only.

The tests shrink the Free and Starter daily limit to 50 requests, so a run
switches to priority mode once fewer than 10 (20%) are left. Every request
to the fake HubSpot adds one to the day's counter, and ``spend`` adds the
requests other runs of the day would have sent.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from activity.models import Activity, Contact, Deal, DealStageChange
from integrations import api_usage, selectors, sync
from integrations.connectors.base import ENGAGEMENT_TYPES
from integrations.models import ApiTier, CrmConnection, SyncCursor, SyncRun
from tests.conftest import login
from tests.integrations import test_sync_pipedrive as pipedrive_sync
from tests.integrations.conftest import TOKEN, make_connector, run_sync, seed_portal
from tests.integrations.fake_pipedrive import FakePipedrive

DAILY_LIMIT = 50
# A full sync of seed_portal: owners, pipelines, one page per object type
# (seven types, notes included), the archived deals and the deleted
# companies, contacts, calls, emails, meetings and notes: 2 + 7 + 1 + 6.
FULL_SYNC_REQUESTS = 16
DELETED_LISTINGS = [
    "deleted companies",
    "deleted contacts",
    "deleted calls",
    "deleted emails",
    "deleted meetings",
    "deleted notes",
]
DEFERRED_ALL = [
    "companies",
    "contacts",
    "calls",
    "emails",
    "meetings",
    "notes",
    "archived deals",
    *DELETED_LISTINGS,
]


@pytest.fixture
def small_daily_limit(monkeypatch):
    monkeypatch.setitem(selectors.API_LIMITS, ApiTier.STARTER, (100, DAILY_LIMIT))


@pytest.fixture
def synced(personas, hubspot, clock, connection):
    """The seeded portal after one full sync, with 16 requests counted today."""
    seed_portal(hubspot)
    run = run_sync(connection, make_connector(hubspot, clock))
    assert run.status == SyncRun.Status.SUCCEEDED
    return connection


def spend(connection: CrmConnection, requests: int) -> None:
    for _ in range(requests):
        api_usage.record_call(connection.pk, connection.organization.time_zone)


def used_today(connection: CrmConnection) -> int:
    return selectors.daily_budget(connection).used


def cursor_positions() -> dict[str, tuple]:
    return {
        c.object_type: (c.modified_at, c.record_id, c.page_after, c.full_sync_done_at)
        for c in SyncCursor.objects.all()
    }


def changes_after_full_sync(hubspot) -> dt.datetime:
    """Move deal 302 to Rita and Closed Won, and add call 403 and contact 203."""
    changed_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(
        minutes=1
    )
    hubspot.update(
        "deals",
        "302",
        modified_at=changed_at,
        dealstage="closedwon",
        hubspot_owner_id="1",
    )
    hubspot.add(
        "calls",
        "403",
        modified_at=changed_at,
        hs_call_title="Pricing call",
        hs_timestamp="2024-03-05T10:00:00.000Z",
        hubspot_owner_id="2",
    )
    hubspot.add(
        "contacts",
        "203",
        modified_at=changed_at,
        firstname="Dale",
        lastname="Gribble",
        email="dale@initech.test",
        hubspot_owner_id="2",
    )
    return changed_at


def assert_activities_mirror(hubspot) -> None:
    """Check every fake engagement against its one activity row."""
    titles = {
        "calls": "hs_call_title",
        "emails": "hs_email_subject",
        "meetings": "hs_meeting_title",
        "notes": "hs_note_body",
    }
    expected = {}
    for object_type in ENGAGEMENT_TYPES:
        for record_id, record in hubspot.objects[object_type].items():
            expected[record_id] = record.properties[titles[object_type]]
    rows = list(Activity.objects.values_list("external_id", "subject"))
    assert len(rows) == len(expected)
    assert dict(rows) == expected


# Priority mode


def test_low_budget_syncs_deals_only(
    personas, hubspot, clock, synced, small_daily_limit
):
    changed_at = changes_after_full_sync(hubspot)
    # 16 + 25 = 41 of 50 used, so 9 are left, under 20% of 50.
    spend(synced, 25)
    before = cursor_positions()
    sent_before = len(hubspot.requests(TOKEN))

    run = run_sync(synced, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.priority_mode is True
    assert run.deferred_object_types == DEFERRED_ALL
    deal = Deal.objects.get(external_id="302")
    assert deal.owner == personas.rep1
    assert deal.stage.external_id == "closedwon"
    move = DealStageChange.objects.get(deal=deal, from_stage__isnull=False)
    assert move.from_stage.external_id == "contractsent"
    assert move.to_stage.external_id == "closedwon"
    assert not Activity.objects.filter(external_id="403").exists()
    assert not Contact.objects.filter(external_id="203").exists()
    # Owners, pipelines, one deal search and its deals' company associations.
    sent = [r.path for r in hubspot.requests(TOKEN)[sent_before:]]
    assert sent == [
        "/crm/v3/owners",
        "/crm/v3/pipelines/deals",
        "/crm/v3/objects/deals/search",
        "/crm/v4/associations/deals/companies/batch/read",
    ]
    assert used_today(synced) == 41 + 4
    after = cursor_positions()
    assert after["deals"][:2] == (changed_at, "302")
    for object_type in ("companies", "contacts", *ENGAGEMENT_TYPES):
        assert after[object_type] == before[object_type], object_type


def test_deferred_records_arrive_later(
    personas, hubspot, clock, synced, small_daily_limit, monkeypatch
):
    changes_after_full_sync(hubspot)
    # 16 + 25 = 41 of 50 used, as in test_low_budget_syncs_deals_only.
    spend(synced, 25)
    run_sync(synced, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)
    assert not Activity.objects.filter(external_id="403").exists()
    # The next day's budget, or a higher tier.
    monkeypatch.setitem(selectors.API_LIMITS, ApiTier.STARTER, (100, 250_000))

    run = run_sync(synced, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)

    assert run.priority_mode is False
    assert run.deferred_object_types == []
    changed = {
        kind: (c["created"], c["updated"], c["unchanged"])
        for kind, c in run.counts.items()
        if any(c.values())
    }
    # The deal change came with the first run and is not listed again.
    assert changed == {"contacts": (1, 0, 0), "calls": (1, 0, 0)}
    assert Activity.objects.get(external_id="403").subject == "Pricing call"
    assert Contact.objects.get(external_id="203").owner == personas.rep2
    assert_activities_mirror(hubspot)
    assert Contact.objects.count() == 3


def test_low_budget_mid_listing_stops(
    personas, hubspot, clock, synced, small_daily_limit, monkeypatch
):
    first_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)
    for number in range(10):
        hubspot.add(
            "calls",
            str(410 + number),
            modified_at=first_at + dt.timedelta(seconds=number),
            hs_call_title=f"Call {number}",
            hs_timestamp="2024-04-01T10:00:00.000Z",
            hubspot_owner_id="1",
        )
    # 16 + 16 = 32 used. Owners, pipelines and the company, contact and deal
    # searches bring it to 37 (13 left) before the calls. Their first page is
    # a search and three association reads, so 41 are used and 9 are left.
    # The fetch-ahead thread may read two more pages (8 requests), which
    # stays under the limit of 50.
    spend(synced, 16)
    connector = make_connector(hubspot, clock)
    connector.search_page_size = 1

    run = run_sync(synced, connector, SyncRun.Kind.INCREMENTAL)

    assert run.priority_mode is True
    assert run.deferred_object_types == [
        "calls",
        "emails",
        "meetings",
        "notes",
        "archived deals",
        *DELETED_LISTINGS,
    ]
    synced_calls = sorted(
        Activity.objects.filter(external_id__startswith="41").values_list(
            "external_id", flat=True
        )
    )
    # The fetch-ahead thread may have requested a page or two more, but the
    # run stopped after the page that crossed the threshold.
    assert synced_calls == ["410"]
    cursor = SyncCursor.objects.get(object_type="calls")
    assert cursor.record_id == "410"
    assert cursor.modified_at == first_at

    monkeypatch.setitem(selectors.API_LIMITS, ApiTier.STARTER, (100, 250_000))
    run = run_sync(synced, connector, SyncRun.Kind.INCREMENTAL)

    assert run.priority_mode is False
    assert run.counts["calls"]["created"] == 9
    assert run.counts["calls"]["updated"] == 0
    assert_activities_mirror(hubspot)


def test_full_run_defers_full_listings(
    personas, hubspot, clock, synced, small_daily_limit, monkeypatch
):
    changes_after_full_sync(hubspot)
    # 16 + 25 = 41 of 50 used, as in test_low_budget_syncs_deals_only.
    spend(synced, 25)

    run = run_sync(synced, make_connector(hubspot, clock), SyncRun.Kind.FULL)

    assert run.priority_mode is True
    assert run.deferred_object_types == [
        "companies",
        "contacts",
        "deals (full listing)",
        "calls",
        "emails",
        "meetings",
        "notes",
        "archived deals",
        *DELETED_LISTINGS,
    ]
    deal = Deal.objects.get(external_id="302")
    assert deal.owner == personas.rep1
    assert deal.stage.external_id == "closedwon"
    deals_cursor = SyncCursor.objects.get(object_type="deals")
    assert deals_cursor.full_sync_done_at is None
    assert deals_cursor.page_after == ""

    monkeypatch.setitem(selectors.API_LIMITS, ApiTier.STARTER, (100, 250_000))
    run = run_sync(synced, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)

    assert run.priority_mode is False
    assert SyncCursor.objects.filter(full_sync_done_at__isnull=True).count() == 0
    assert Deal.objects.count() == 5
    assert_activities_mirror(hubspot)


def test_exhausted_budget_sends_nothing(hubspot, clock, synced, small_daily_limit):
    changes_after_full_sync(hubspot)
    spend(synced, DAILY_LIMIT - FULL_SYNC_REQUESTS)
    before = cursor_positions()
    sent_before = len(hubspot.requests(TOKEN))

    with pytest.raises(sync.ApiBudgetExhausted, match="sent 50 of its 50 API"):
        run_sync(synced, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)

    run = SyncRun.objects.latest("created_at")
    assert run.status == SyncRun.Status.FAILED
    assert "stopped after its last committed page" in run.failure
    assert len(hubspot.requests(TOKEN)) == sent_before
    assert cursor_positions() == before
    assert Deal.objects.get(external_id="302").stage.external_id == "contractsent"


def test_exhausted_mid_listing_stops_after_page(
    hubspot, clock, synced, small_daily_limit, monkeypatch
):
    # 16 + 26 = 42 used, so the run is in priority mode from the start.
    # Owners, pipelines and the first deal page bring it to 45, and this test
    # then lowers the limit to 45, which the check after the page finds.
    first_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)
    for number in range(3):
        hubspot.update(
            "deals",
            f"30{number + 1}",
            modified_at=first_at + dt.timedelta(seconds=number),
            amount=str(5000 + number),
        )
    spend(synced, 26)
    connector = make_connector(hubspot, clock)
    connector.search_page_size = 1
    original_check = sync._budget_check

    def lower_limit_after_first_page(ctx):
        if ctx.run.pages_done == 1:
            selectors.API_LIMITS[ApiTier.STARTER] = (100, 45)
        original_check(ctx)

    monkeypatch.setattr(sync, "_budget_check", lower_limit_after_first_page)
    with pytest.raises(sync.ApiBudgetExhausted):
        run_sync(synced, connector, SyncRun.Kind.INCREMENTAL)

    run = SyncRun.objects.latest("created_at")
    assert run.status == SyncRun.Status.FAILED
    assert run.pages_done == 1
    cursor = SyncCursor.objects.get(object_type="deals")
    assert cursor.record_id == "301"
    assert Deal.objects.get(external_id="301").amount == 5000
    assert Deal.objects.get(external_id="302").amount == Decimal("2500.50")


# Connection page


def test_page_names_deferred_types(
    personas, hubspot, clock, synced, small_daily_limit, django_assert_max_num_queries
):
    # 16 + 25 = 41 of 50 used, as in test_low_budget_syncs_deals_only.
    spend(synced, 25)
    run_sync(synced, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)
    admin = login(Client(), personas.admin)
    url = reverse(
        "integrations:connection",
        kwargs={"org_slug": "acme", "connection_id": synced.public_id},
    )

    with django_assert_max_num_queries(10):
        html = admin.get(url).content.decode()

    message = (
        "API budget low: this run synced owners and the changed deals with their "
        "owners and stages only. Deferred to a later run: companies, contacts, "
        "calls, emails, meetings, notes, archived deals, deleted companies, "
        "deleted contacts, deleted calls, deleted emails, deleted meetings, "
        "deleted notes."
    )
    # Once in the latest run's progress and once in its row of the last runs.
    assert html.count(message) == 2


# Providers without a daily limit


def test_pipedrive_never_defers(
    personas, in_org, loopback_allowed, clock, small_daily_limit
):
    fake = FakePipedrive(limit=pipedrive_sync.LIMIT).start()
    try:
        fake.add_token(pipedrive_sync.API_TOKEN, clock)
        pipedrive_sync.seed_company(fake)
        connection = sync.connection_create(
            organization=personas.org,
            actor=None,
            provider="pipedrive",
            name="Pipedrive",
            base_url=fake.url,
            credentials={"api_token": pipedrive_sync.API_TOKEN},
        )
        # 20 times the daily limit these tests give HubSpot connections.
        spend(connection, 1_000)

        run = run_sync(connection, pipedrive_sync.make_connector(fake, clock))
    finally:
        fake.stop()

    assert selectors.daily_budget(connection) is None
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.priority_mode is False
    assert run.deferred_object_types == []
    assert Activity.objects.filter(external_source="pipedrive").exists()
