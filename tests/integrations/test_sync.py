import datetime as dt
import logging
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection as db_connection

from activity.models import Account, Activity, Contact, Deal, DealStageChange, Stage
from integrations import sync, webhooks
from integrations.connectors.base import ConnectorError
from integrations.models import (
    CrmConnection,
    OwnerMapping,
    StageMapping,
    SyncCursor,
    SyncRun,
    WebhookEvent,
)
from measurement.selectors import MetricScope, bookings_by_member, scorecards_by_member
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.integrations.conftest import (
    SEEDED_AT,
    TOKEN,
    make_connector,
    run_sync,
    seed_portal,
)

UTC = ZoneInfo("UTC")


def deal_snapshot():
    return sorted(
        Deal.objects.values_list(
            "external_id",
            "name",
            "amount",
            "currency",
            "stage__external_id",
            "owner__display_name",
            "account__external_id",
            "close_date",
            "archived_at",
        )
    )


# Full sync


def test_full_sync_mirrors_every_record(personas, hubspot, clock, connection):
    personas.org.time_zone = "Europe/Berlin"
    personas.org.save()
    seed_portal(hubspot)
    connector = make_connector(hubspot, clock)
    connector.list_page_size = 2

    run = run_sync(connection, connector)

    assert run.status == SyncRun.Status.SUCCEEDED
    accounts = {
        a.external_id: (a.name, a.domain, a.industry, a.country, a.owner)
        for a in Account.objects.filter(external_source="hubspot")
    }
    assert accounts == {
        "101": ("Globex Ltd", "globex.test", "Energy", "DE", personas.rep1),
        "102": ("Initech", "initech.test", "Software", "US", personas.rep2),
        "103": ("umbrella.test", "umbrella.test", "", "", None),
    }
    contacts = {
        c.external_id: (
            c.first_name,
            c.last_name,
            c.email,
            c.phone,
            c.title,
            c.account.external_id,
            c.owner,
            c.created_at,
        )
        for c in Contact.objects.select_related("account")
    }
    assert contacts == {
        "201": (
            "Hank",
            "Hill",
            "hank@globex.test",
            "+49 30 1234",
            "CFO",
            "101",
            personas.rep1,
            dt.datetime(2024, 1, 15, 8, tzinfo=dt.UTC),
        ),
        "202": (
            "Peggy",
            "Gibbons",
            "peggy@initech.test",
            "",
            "",
            "102",
            personas.rep2,
            dt.datetime(2024, 2, 1, 8, tzinfo=dt.UTC),
        ),
    }
    assert deal_snapshot() == [
        (
            "301",
            "Globex renewal",
            Decimal("10000.00"),
            "EUR",
            "closedwon",
            "Rita Rep",
            "101",
            dt.date(2024, 3, 10),
            None,
        ),
        (
            "302",
            "Initech pilot",
            Decimal("2500.50"),
            "EUR",
            "contractsent",
            "Rob Rep",
            "102",
            dt.date(2024, 4, 20),
            None,
        ),
        (
            "303",
            "Umbrella lost",
            Decimal("4000.00"),
            "EUR",
            "closedlost",
            "Rob Rep",
            None,
            dt.date(2024, 3, 5),
            None,
        ),
        # 23:30 UTC on 28 March is 00:30 on the 29th in Berlin.
        (
            "304",
            "Globex add-on",
            Decimal("1200.00"),
            "EUR",
            "renewal_won",
            "Rita Rep",
            "101",
            dt.date(2024, 3, 29),
            None,
        ),
        (
            "305",
            "Ghost deal",
            Decimal("700.00"),
            "EUR",
            "appointmentscheduled",
            None,
            None,
            None,
            None,
        ),
    ]
    activities = sorted(
        Activity.objects.values_list(
            "external_id", "type", "subject", "occurred_at", "owner__display_name"
        )
    )
    assert activities == [
        (
            "401",
            "call",
            "Discovery call",
            dt.datetime(2024, 3, 1, 10, tzinfo=UTC),
            "Rita Rep",
        ),
        (
            "402",
            "call",
            "Follow-up",
            dt.datetime(2024, 3, 2, 10, tzinfo=UTC),
            "Rob Rep",
        ),
        (
            "501",
            "email",
            "Proposal",
            dt.datetime(2024, 3, 3, 10, tzinfo=UTC),
            "Rita Rep",
        ),
        (
            "601",
            "meeting",
            "Onsite demo",
            dt.datetime(2024, 3, 4, 10, tzinfo=UTC),
            "Rob Rep",
        ),
    ]


def test_full_sync_counts_and_follows_every_page(hubspot, clock, connection):
    seed_portal(hubspot)
    connector = make_connector(hubspot, clock)
    connector.list_page_size = 2

    run = run_sync(connection, connector)

    created = {kind: counts["created"] for kind, counts in run.counts.items()}
    assert created == {
        "companies": 3,
        "contacts": 2,
        "deals": 5,
        "calls": 2,
        "emails": 1,
        "meetings": 1,
        "notes": 0,
    }
    # 5 deals at 2 per page take 3 listing requests.
    deal_pages = [r for r in hubspot.requests() if r.path == "/crm/v3/objects/deals"]
    assert len(deal_pages) == 3 + 1  # and one listing of archived deals
    assert run.records_done == 14
    assert DealStageChange.objects.count() == 5


def test_second_full_sync_changes_nothing(hubspot, clock, connection):
    seed_portal(hubspot)
    run_sync(connection, make_connector(hubspot, clock))

    run = run_sync(connection, make_connector(hubspot, clock))

    assert run.counts["deals"] == {
        "created": 0,
        "updated": 0,
        "unchanged": 5,
        "deleted": 0,
        "failed": 0,
    }
    assert Deal.objects.count() == 5
    assert DealStageChange.objects.count() == 5


# Incremental sync


def test_incremental_sync_picks_up_changes_only(personas, hubspot, clock, connection):
    seed_portal(hubspot)
    run_sync(connection, make_connector(hubspot, clock))
    changed_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(
        minutes=1
    )
    hubspot.update(
        "deals", "302", modified_at=changed_at, amount="3100", dealstage="closedwon"
    )
    hubspot.add(
        "contacts",
        "203",
        firstname="Dale",
        lastname="Gribble",
        email="dale@initech.test",
        hubspot_owner_id="2",
    )

    run = run_sync(connection, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)

    changed = {
        kind: (c["created"], c["updated"], c["unchanged"])
        for kind, c in run.counts.items()
        if any(c.values())
    }
    assert changed == {"contacts": (1, 0, 0), "deals": (0, 1, 0)}
    deal = Deal.objects.get(external_id="302")
    assert deal.amount == Decimal("3100.00")
    assert deal.stage.external_id == "closedwon"
    move = DealStageChange.objects.get(deal=deal, from_stage__isnull=False)
    assert move.from_stage.external_id == "contractsent"
    assert move.to_stage.external_id == "closedwon"
    assert Contact.objects.get(external_id="203").owner == personas.rep2
    cursor = SyncCursor.objects.get(object_type="deals")
    assert cursor.record_id == "302"
    assert cursor.modified_at == changed_at


def test_incremental_cursor_is_a_keyset(hubspot, clock, connection):
    # Five deals, three of them modified in the same second, paged two by two.
    seed_portal(hubspot)
    run_sync(connection, make_connector(hubspot, clock))
    base = dt.datetime(2030, 1, 1, 10, 0, 0, tzinfo=dt.UTC)
    times = {"901": 0, "902": 5, "903": 5, "904": 5, "905": 9}
    for deal_id, second in times.items():
        hubspot.add(
            "deals",
            deal_id,
            modified_at=base + dt.timedelta(seconds=second),
            dealname=f"Deal {deal_id}",
            pipeline="default",
            dealstage="appointmentscheduled",
        )
    connector = make_connector(hubspot, clock)
    connector.search_page_size = 2
    searches_before = len([r for r in hubspot.requests() if r.path.endswith("/search")])

    with_pages = []
    original = connector.changed_pages

    def recording(object_type, since):
        for page in original(object_type, since):
            if object_type == "deals":
                with_pages.append([r.id for r in page.records])
            yield page

    connector.changed_pages = recording
    run = run_sync(connection, connector, SyncRun.Kind.INCREMENTAL)

    assert with_pages == [["901", "902"], ["903", "904"], ["905"]]
    assert run.counts["deals"]["created"] == 5
    cursor = SyncCursor.objects.get(object_type="deals")
    assert (cursor.modified_at, cursor.record_id) == (
        base + dt.timedelta(seconds=9),
        "905",
    )
    deal_searches = [
        r
        for r in hubspot.requests()[searches_before:]
        if r.path == "/crm/v3/objects/deals/search"
    ]
    assert len(deal_searches) == 3


# Crash and resume


class CrashAfterPages:
    """Wrap a connector so the deal listing raises after yielding ``pages`` pages."""

    def __init__(self, connector, pages):
        self.connector = connector
        self.pages = pages

    def __getattr__(self, name):
        return getattr(self.connector, name)

    def list_pages(self, object_type, after=None):
        for number, page in enumerate(self.connector.list_pages(object_type, after), 1):
            yield page
            if object_type == "deals" and number == self.pages:
                raise RuntimeError("worker died")


def test_crash_mid_sync_resumes_without_duplicates(hubspot, clock, connection):
    seed_portal(hubspot)
    for number in range(6, 10):
        hubspot.add(
            "deals",
            f"30{number}",
            modified_at=SEEDED_AT,
            dealname=f"Extra {number}",
            amount="100",
            pipeline="default",
            dealstage="contractsent",
            hubspot_owner_id="2",
        )
    connector = make_connector(hubspot, clock)
    connector.list_page_size = 2

    with pytest.raises(RuntimeError, match="worker died"):
        run_sync(connection, CrashAfterPages(connector, pages=2))

    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.FAILED
    assert run.counts["deals"]["created"] == 4
    assert SyncCursor.objects.get(object_type="deals").page_after == "305"
    assert Deal.objects.count() == 4

    sync.sync_run_execute(run=run, connector=connector)

    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.counts["deals"]["created"] == 9
    assert Deal.objects.count() == 9
    assert DealStageChange.objects.count() == 9
    # 9 deals at 2 per page take 5 listing requests, crash or not.
    listings = [r for r in hubspot.requests() if r.path == "/crm/v3/objects/deals"]
    assert len(listings) == 5 + 1

    # The same portal synced without a crash into a fresh connection gives
    # the same deals.
    resumed = deal_snapshot()
    Deal.objects.all().delete()
    SyncCursor.objects.all().delete()
    run_sync(connection, make_connector(hubspot, clock))
    assert deal_snapshot() == resumed


# Owners and stages


def test_unmatched_owner_is_a_mapping_error(personas, hubspot, clock, connection):
    seed_portal(hubspot)

    run = run_sync(connection, make_connector(hubspot, clock))

    owner_errors = [e for e in run.errors if e["object_type"] == "owners"]
    assert [e["record_id"] for e in owner_errors] == ["3"]
    assert "ghost@elsewhere.test" in owner_errors[0]["message"]
    ghost = OwnerMapping.objects.get(owner_id="3")
    assert ghost.membership is None
    assert ghost.email == "ghost@elsewhere.test"
    # The ghost's deal is synced, with no owner.
    assert Deal.objects.get(external_id="305").owner is None


def test_owner_email_matches_ignoring_case(personas, hubspot, clock, connection):
    seed_portal(hubspot)
    run_sync(connection, make_connector(hubspot, clock))
    assert OwnerMapping.objects.get(owner_id="1").membership == personas.rep1

    # Once matched, the mapping stays by owner id even if the email changes.
    hubspot.owners[0]["email"] = "rita@new-domain.test"
    run_sync(connection, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)

    mapping = OwnerMapping.objects.get(owner_id="1")
    assert mapping.membership == personas.rep1
    assert mapping.email == "rita@new-domain.test"


def test_won_comes_from_stage_metadata(personas, hubspot, clock, connection):
    seed_portal(hubspot)
    close = "2024-05-15T12:00:00.000Z"
    stages = ["closedwon"] * 3 + ["renewal_won"] + ["closedlost"] * 6
    for number, stage in enumerate(stages):
        hubspot.add(
            "deals",
            str(700 + number),
            modified_at=SEEDED_AT,
            dealname=f"Q2 deal {number}",
            amount="1000",
            pipeline="default",
            dealstage=stage,
            closedate=close,
            hubspot_owner_id="2",
        )

    run_sync(connection, make_connector(hubspot, clock))

    outcomes = dict(StageMapping.objects.values_list("crm_stage_id", "outcome"))
    assert outcomes == {
        "appointmentscheduled": "open",
        "contractsent": "open",
        "closedwon": "won",
        "closedlost": "lost",
        "renewal_won": "won",
    }
    renewal = Stage.objects.get(external_id="renewal_won")
    assert (renewal.is_closed, renewal.is_won) == (True, True)
    scope = MetricScope(
        member_ids=[personas.rep2.pk],
        start=dt.date(2024, 4, 1),
        end=dt.date(2024, 7, 1),
        time_zone=UTC,
    )
    card = scorecards_by_member(scope)[personas.rep2.pk]
    assert card.won == 4
    assert card.lost == 6
    assert card.win_rate == Decimal("40.0")


# Archived deals


def test_archived_deal_leaves_team_metrics(personas, hubspot, clock, connection):
    seed_portal(hubspot)
    hubspot.add(
        "deals",
        "42",
        modified_at=SEEDED_AT,
        dealname="Deal 42",
        amount="10000",
        pipeline="default",
        dealstage="closedwon",
        closedate="2024-03-10T00:00:00.000Z",
        hubspot_owner_id="1",
    )
    for deal_id in ("17", "18"):
        hubspot.add(
            "deals",
            deal_id,
            modified_at=SEEDED_AT,
            dealname=f"Deal {deal_id}",
            amount="500",
            pipeline="default",
            dealstage="closedwon",
            closedate="2024-03-12T00:00:00.000Z",
            hubspot_owner_id="1",
        )
    run_sync(connection, make_connector(hubspot, clock))
    march = MetricScope(
        member_ids=[personas.rep1.pk],
        start=dt.date(2024, 3, 1),
        end=dt.date(2024, 4, 1),
        time_zone=UTC,
    )
    # Deals 301 (10,000), 304 (1,200), 42 (10,000), 17 and 18 (500 each).
    assert bookings_by_member(march)[personas.rep1.pk] == Decimal("22200.00")

    # 17 and 18 were archived before; the March sync marked them.
    hubspot.archive("deals", "17", dt.datetime(2024, 3, 20, tzinfo=dt.UTC))
    hubspot.archive("deals", "18", dt.datetime(2024, 3, 21, tzinfo=dt.UTC))
    run_sync(connection, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)
    assert bookings_by_member(march)[personas.rep1.pk] == Decimal("21200.00")

    # April: deal 42 is archived, and the archive lists 42, 17 and 18.
    archived_on = dt.datetime(2024, 4, 5, 9, 30, tzinfo=dt.UTC)
    hubspot.archive("deals", "42", archived_on)
    run = run_sync(connection, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)

    assert Deal.objects.get(external_id="42").archived_at == archived_on
    assert run.counts["deals"]["deleted"] == 1
    assert bookings_by_member(march)[personas.rep1.pk] == Decimal("11200.00")
    events = AuditLog.objects.filter(action="crm.deal_archived")
    by_deal = sorted(e.new["external_id"] for e in events)
    assert by_deal == ["17", "18", "42"]

    # Later polls list the same archive and record nothing new.
    run = run_sync(connection, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)
    assert run.counts["deals"]["deleted"] == 0
    assert AuditLog.objects.filter(action="crm.deal_archived").count() == 3


# Credentials


def test_credentials_are_encrypted_at_rest(connection):
    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT credentials_encrypted FROM integrations_crmconnection"
            " WHERE id = %s",
            [connection.pk],
        )
        (stored,) = cursor.fetchone()

    assert TOKEN not in stored
    assert "access_token" not in stored
    fresh = CrmConnection.objects.get(pk=connection.pk)
    assert fresh.credentials == {"access_token": TOKEN}
    assert TOKEN not in repr(fresh)
    audit = AuditLog.objects.get(action="crm.connection_created")
    assert TOKEN not in str(audit.new)


def test_credentials_stay_out_of_logs(hubspot, connection, caplog):
    seed_portal(hubspot)
    hubspot.add_token(TOKEN)  # the real clock, as production runs
    caplog.set_level(logging.DEBUG)
    hubspot.inject(503)
    hubspot.inject(429, retry_after=0)

    with tenant_context(connection.organization):
        run = sync.sync_run_create(connection=connection, kind=SyncRun.Kind.FULL)
        sync.sync_run_execute(run=run)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert "HubSpot rate limit" in caplog.text
    assert TOKEN not in caplog.text
    assert TOKEN[-12:] not in caplog.text


def test_rejected_token_marks_connection(hubspot, clock, connection, caplog):
    connection.credentials = {"access_token": "pat-wrong-token"}
    connection.save()
    caplog.set_level(logging.DEBUG)

    with pytest.raises(ConnectorError, match="HTTP 401"):
        run_sync(
            connection,
            make_connector(hubspot, clock, token="pat-wrong-token"),
        )

    connection.refresh_from_db()
    assert connection.status == CrmConnection.Status.ERROR
    assert "401" in connection.status_message
    assert SyncRun.objects.get().status == SyncRun.Status.FAILED
    assert "pat-wrong-token" not in caplog.text
    assert "pat-wrong-token" not in SyncRun.objects.get().failure


# Retries through the sync


def test_rate_limit_storm_completes_within_limit(hubspot, clock, connection):
    seed_portal(hubspot)
    hubspot.inject(429, count=6, retry_after=2)

    run = run_sync(connection, make_connector(hubspot, clock))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert Deal.objects.count() == 5
    assert len(hubspot.requests(status=429)) == 6
    assert all(r.injected for r in hubspot.requests(status=429))
    assert hubspot.max_in_window(TOKEN, 10.0) <= 100
    assert clock.now() >= 12.0


def test_server_errors_are_retried(hubspot, clock, connection):
    seed_portal(hubspot)
    hubspot.inject(503, count=3)

    run = run_sync(connection, make_connector(hubspot, clock))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert Deal.objects.count() == 5
    assert len(hubspot.requests(status=503)) == 3
    # Backoff of 1, 2 and 4 seconds.
    assert clock.now() >= 7.0


def test_server_errors_give_up_after_retries(hubspot, clock, connection):
    seed_portal(hubspot)
    hubspot.inject(500, count=6)

    with pytest.raises(ConnectorError, match="failed 6 times"):
        run_sync(connection, make_connector(hubspot, clock))

    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.FAILED
    assert "HTTP 500" in run.failure
    connection.refresh_from_db()
    assert connection.status == CrmConnection.Status.ACTIVE


# Activity links


def activity_links() -> dict[str, tuple]:
    """Return each activity's (deal, contact, lead, account) by their CRM ids."""
    rows = Activity.objects.values_list(
        "external_id",
        "deal__external_id",
        "contact__external_id",
        "lead__external_id",
        "account__external_id",
    )
    return {external_id: tuple(links) for external_id, *links in rows}


def seed_linked_activities(fake) -> None:
    """Add call 410 and email 510 with associations.

    The call is on deal 302, contact 202 and company 102. The email is on
    contact 201 and deal 999, which the portal never lists.
    """
    fake.add(
        "calls",
        "410",
        modified_at=SEEDED_AT,
        hs_call_title="Pilot review",
        hs_timestamp="2024-03-05T10:00:00.000Z",
        hubspot_owner_id="2",
        associations={"deals": ["302"], "contacts": ["202"], "companies": ["102"]},
    )
    fake.add(
        "emails",
        "510",
        modified_at=SEEDED_AT,
        hs_email_subject="Pricing",
        hs_timestamp="2024-03-06T10:00:00.000Z",
        hubspot_owner_id="1",
        associations={"deals": ["999"], "contacts": ["201"]},
    )


def test_full_sync_links_activities(hubspot, clock, connection):
    seed_portal(hubspot)
    seed_linked_activities(hubspot)

    run = run_sync(connection, make_connector(hubspot, clock))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.counts["emails"]["failed"] == 0
    assert activity_links() == {
        "401": (None, None, None, None),
        "402": (None, None, None, None),
        "410": ("302", "202", None, "102"),
        # Deal 999 was never synced, so the email has no deal.
        "501": (None, None, None, None),
        "510": (None, "201", None, None),
        "601": (None, None, None, None),
    }


def test_incremental_search_keeps_activity_links(hubspot, clock, connection):
    seed_portal(hubspot)
    seed_linked_activities(hubspot)
    run_sync(connection, make_connector(hubspot, clock))
    changed_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(
        minutes=1
    )
    hubspot.update("calls", "410", modified_at=changed_at, hs_call_title="Renamed")

    run = run_sync(connection, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)

    assert run.counts["calls"]["updated"] == 1
    call = Activity.objects.get(external_id="410")
    assert call.subject == "Renamed"
    assert activity_links()["410"] == ("302", "202", None, "102")


def test_full_listing_clears_removed_links(hubspot, clock, connection):
    seed_portal(hubspot)
    seed_linked_activities(hubspot)
    run_sync(connection, make_connector(hubspot, clock))
    # HubSpot leaves association types without records out of a listing.
    hubspot.objects["calls"]["410"].associations = {"contacts": ["201"]}

    run = run_sync(connection, make_connector(hubspot, clock))

    assert run.counts["calls"]["updated"] == 1
    assert activity_links()["410"] == (None, "201", None, None)


def test_webhook_fetch_links_activity(personas, hubspot, clock, connection):
    seed_portal(hubspot)
    run_sync(connection, make_connector(hubspot, clock))
    seed_linked_activities(hubspot)
    event = WebhookEvent.objects.create(
        organization=personas.org,
        connection=connection,
        key="call-410-created",
        object_type="calls",
        object_id="410",
        occurred_at=SEEDED_AT,
    )

    status = webhooks.webhook_event_apply(
        event_pk=event.pk, connector=make_connector(hubspot, clock)
    )

    assert status == WebhookEvent.Status.APPLIED
    assert activity_links()["410"] == ("302", "202", None, "102")
