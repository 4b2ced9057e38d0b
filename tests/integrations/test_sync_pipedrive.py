import datetime as dt
import logging
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from activity.models import Account, Activity, Contact, Deal, DealStageChange
from integrations import sync
from integrations.connectors.base import AuthenticationFailed
from integrations.connectors.pipedrive import PipedriveConnector
from integrations.connectors.ratelimit import RollingWindowLimiter
from integrations.models import CrmConnection, OwnerMapping, StageMapping, SyncRun
from measurement.selectors import MetricScope, bookings_by_member
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.integrations.fake_hubspot import SimulatedClock
from tests.integrations.fake_pipedrive import FakePipedrive, pd_time

API_TOKEN = "pd-test-api-token-4f1c9e"
UTC = ZoneInfo("UTC")
SEEDED_AT = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)
LIMIT = (20, 2.0)


@pytest.fixture(autouse=True)
def _credentials_key(monkeypatch):
    monkeypatch.setenv("ATTAIN_CREDENTIALS_KEY", "integration-tests-credentials-key")


@pytest.fixture
def clock():
    return SimulatedClock()


@pytest.fixture
def pipedrive(clock):
    fake = FakePipedrive(limit=LIMIT).start()
    fake.add_token(API_TOKEN, clock)
    yield fake
    fake.stop()


@pytest.fixture
def connection(personas, pipedrive, in_org, loopback_allowed):
    return sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="pipedrive",
        name="Pipedrive",
        base_url=pipedrive.url,
        credentials={"api_token": API_TOKEN},
    )


def make_connector(fake, clock, token=API_TOKEN, page_size=500):
    connector = PipedriveConnector(
        base_url=fake.url,
        api_token=token,
        clock=clock,
        limiter=RollingWindowLimiter(*LIMIT, clock),
    )
    connector.page_size = page_size
    return connector


def run_sync(connection, connector, kind=SyncRun.Kind.FULL) -> SyncRun:
    with tenant_context(connection.organization):
        run = sync.sync_run_create(connection=connection, kind=kind)
        return sync.sync_run_execute(run=run, connector=connector)


def seed_company(fake) -> None:
    """Fill the fake with a small company whose values the tests check by hand.

    Users 1 and 2 are Rita (rep1) and Rob (rep2) of the ``personas`` org,
    Rita's email in capitals. User 3 has no member in Attain.
    """
    fake.add_user(1, "RITA.REP@ACME.TEST", "Rita Rep")
    fake.add_user(2, "rob.rep@acme.test", "Rob Rep")
    fake.add_user(3, "ghost@elsewhere.test", "Gus Ghost")
    fake.add_user(4, "former@acme.test", "Fay Former", active=False)
    fake.add_pipeline(
        1,
        "Sales",
        [(11, "Qualified", 20), (12, "Proposal", 60), (13, "Negotiation", 90)],
    )
    at = SEEDED_AT
    fake.add(
        "organization", 101, at=at, name="Globex Ltd", address_country="DE", owner_id=1
    )
    fake.add(
        "organization", 102, at=at, name="Initech", address_country="US", owner_id=2
    )
    fake.add("organization", 103, at=at, name="Umbrella", owner_id=3)
    fake.add(
        "person",
        201,
        at=dt.datetime(2024, 1, 15, 8, tzinfo=dt.UTC),
        name="Hank Hill",
        first_name="Hank",
        last_name="Hill",
        email=[
            {"label": "work", "value": "h.hill@old.test", "primary": False},
            {"label": "work", "value": "hank@globex.test", "primary": True},
        ],
        phone=[{"label": "work", "value": "+49 30 1234", "primary": True}],
        org_id=101,
        owner_id=1,
    )
    fake.update("person", 201, at=at)
    fake.add(
        "person",
        202,
        at=at,
        name="Peggy Gibbons",
        first_name="Peggy",
        last_name="Gibbons",
        email=[{"label": "work", "value": "peggy@initech.test", "primary": True}],
        phone=[{"label": "", "value": "", "primary": True}],
        org_id=102,
        owner_id=2,
    )
    deals = [
        (301, "Globex renewal", 10000, "won", 13, "2024-03-10 14:00:00", 1, 101),
        (302, "Initech pilot", 2500.5, "open", 12, None, 2, 102),
        (303, "Umbrella lost", 4000, "lost", 11, "2024-03-05 09:00:00", 2, None),
        (304, "Ghost deal", 700, "open", 11, None, 3, None),
        (305, "Globex add-on", 1200, "won", 13, "2024-03-28 23:30:00", 1, 101),
    ]
    for deal_id, title, value, status, stage, closed, user, org in deals:
        fake.add(
            "deal",
            deal_id,
            at=at,
            title=title,
            value=value,
            currency="EUR",
            status=status,
            pipeline_id=1,
            stage_id=stage,
            won_time=closed if status == "won" else None,
            lost_time=closed if status == "lost" else None,
            close_time=closed,
            expected_close_date="2024-04-20" if deal_id == 302 else None,
            user_id=user,
            org_id=org,
            person_id=None,
        )
    activities = [
        (401, "call", "Discovery call", "2024-03-01", "10:00", 1, 301),
        (402, "email", "Proposal", "2024-03-03", "", 2, 302),
        (403, "meeting", "Onsite demo", "2024-03-04", "10:00", 2, 305),
        (404, "task", "Send contract", "2024-03-05", "", 2, 302),
        (405, "lunch", "Team lunch", "2024-03-06", "12:00", 1, None),
    ]
    for activity_id, kind, subject, due_date, due_time, user, deal in activities:
        fake.add(
            "activity",
            activity_id,
            at=at,
            type=kind,
            subject=subject,
            due_date=due_date,
            due_time=due_time,
            user_id=user,
            deal_id=deal,
            done=True,
        )


def assert_mirrors(fake, personas) -> None:
    """Compare every live organization, deal and activity with Attain's rows."""
    members = {1: personas.rep1, 2: personas.rep2}
    accounts = {
        a.external_id: (a.name, a.owner)
        for a in Account.objects.filter(external_source="pipedrive")
    }
    expected_accounts = {
        str(row["id"]): (row["name"], members.get(row["owner_id"]))
        for row in fake.items["organization"].values()
        if row["active_flag"]
    }
    assert accounts == expected_accounts
    deals = {
        d.external_id: (
            d.name,
            d.amount,
            d.stage.external_id,
            d.owner,
            d.account.external_id if d.account else None,
            d.archived_at is not None,
        )
        for d in Deal.objects.select_related("stage", "account")
    }
    expected_deals = {}
    for row in fake.items["deal"].values():
        status = row["status"]
        stage = str(row["stage_id"]) if status == "open" else f"1:{status}"
        if status == "deleted":
            # A deleted deal keeps the stage it had when last synced.
            stage = deals.get(str(row["id"]), (None, None, stage))[2]
        expected_deals[str(row["id"])] = (
            row["title"],
            Decimal(str(row["value"])).quantize(Decimal("0.01")),
            stage,
            members.get(row["user_id"]),
            str(row["org_id"]) if row["org_id"] else None,
            status == "deleted",
        )
    assert deals == expected_deals
    activities = dict(Activity.objects.values_list("external_id", "type"))
    expected_activities = {
        str(row["id"]): row["type"]
        for row in fake.items["activity"].values()
        if row["type"] in ("call", "email", "meeting") and row["active_flag"]
    }
    assert activities == expected_activities


# Full sync


def test_full_sync_mirrors_every_record(personas, pipedrive, clock, connection):
    personas.org.time_zone = "Europe/Berlin"
    personas.org.save()
    seed_company(pipedrive)

    run = run_sync(connection, make_connector(pipedrive, clock, page_size=2))

    assert run.status == SyncRun.Status.SUCCEEDED
    accounts = {
        a.external_id: (a.name, a.country, a.owner)
        for a in Account.objects.filter(external_source="pipedrive")
    }
    assert accounts == {
        "101": ("Globex Ltd", "DE", personas.rep1),
        "102": ("Initech", "US", personas.rep2),
        "103": ("Umbrella", "", None),
    }
    contacts = {
        c.external_id: (
            c.first_name,
            c.email,
            c.phone,
            c.account.external_id,
            c.owner,
            c.created_at,
        )
        for c in Contact.objects.select_related("account")
    }
    assert contacts == {
        "201": (
            "Hank",
            "hank@globex.test",
            "+49 30 1234",
            "101",
            personas.rep1,
            dt.datetime(2024, 1, 15, 8, tzinfo=dt.UTC),
        ),
        "202": ("Peggy", "peggy@initech.test", "", "102", personas.rep2, SEEDED_AT),
    }
    deals = sorted(
        Deal.objects.values_list(
            "external_id",
            "amount",
            "currency",
            "stage__external_id",
            "owner__display_name",
            "account__external_id",
            "close_date",
        )
    )
    assert deals == [
        (
            "301",
            Decimal("10000.00"),
            "EUR",
            "1:won",
            "Rita Rep",
            "101",
            dt.date(2024, 3, 10),
        ),
        (
            "302",
            Decimal("2500.50"),
            "EUR",
            "12",
            "Rob Rep",
            "102",
            dt.date(2024, 4, 20),
        ),
        (
            "303",
            Decimal("4000.00"),
            "EUR",
            "1:lost",
            "Rob Rep",
            None,
            dt.date(2024, 3, 5),
        ),
        ("304", Decimal("700.00"), "EUR", "11", None, None, None),
        # 23:30 UTC on 28 March is 00:30 on the 29th in Berlin.
        (
            "305",
            Decimal("1200.00"),
            "EUR",
            "1:won",
            "Rita Rep",
            "101",
            dt.date(2024, 3, 29),
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
        ("402", "email", "Proposal", dt.datetime(2024, 3, 3, tzinfo=UTC), "Rob Rep"),
        (
            "403",
            "meeting",
            "Onsite demo",
            dt.datetime(2024, 3, 4, 10, tzinfo=UTC),
            "Rob Rep",
        ),
    ]
    outcomes = dict(StageMapping.objects.values_list("crm_stage_id", "outcome"))
    assert outcomes == {
        "11": "open",
        "12": "open",
        "13": "open",
        "1:won": "won",
        "1:lost": "lost",
    }
    assert_mirrors(pipedrive, personas)


def test_full_sync_follows_every_page(pipedrive, clock, connection):
    seed_company(pipedrive)

    run = run_sync(connection, make_connector(pipedrive, clock, page_size=2))

    created = {kind: counts["created"] for kind, counts in run.counts.items()}
    assert created == {
        "companies": 3,
        "contacts": 2,
        "deals": 5,
        "calls": 1,
        "emails": 1,
        "meetings": 1,
        "notes": 0,
    }
    # 5 deals at 2 per page take 3 requests, plus one for the deleted deals.
    deal_requests = [r for r in pipedrive.requests() if r.path == "/v1/deals"]
    assert len(deal_requests) == 3 + 1
    assert run.records_done == 13


def test_full_sync_sends_no_notes_request(pipedrive, clock, connection):
    seed_company(pipedrive)

    run = run_sync(connection, make_connector(pipedrive, clock))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.counts["notes"] == {
        "created": 0,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "failed": 0,
    }
    # Users, pipelines, stages, one page each of organizations, persons and
    # deals, the activities of the three types, and the deleted deals.
    assert [r.path for r in pipedrive.requests()] == [
        "/v1/users",
        "/v1/pipelines",
        "/v1/stages",
        "/v1/organizations",
        "/v1/persons",
        "/v1/deals",
        "/v1/activities",
        "/v1/activities",
        "/v1/activities",
        "/v1/deals",
    ]
    assert not Activity.objects.filter(type=Activity.Type.NOTE).exists()


# Incremental sync


def test_incremental_sync_reads_recents(personas, pipedrive, clock, connection):
    seed_company(pipedrive)
    run_sync(connection, make_connector(pipedrive, clock))
    changed_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(
        minutes=1
    )
    pipedrive.update(
        "deal",
        302,
        at=changed_at,
        value=3100,
        status="won",
        won_time=pd_time(changed_at),
        close_time=pd_time(changed_at),
    )
    pipedrive.add(
        "person",
        203,
        at=changed_at,
        name="Dale Gribble",
        first_name="Dale",
        last_name="Gribble",
        org_id=102,
        owner_id=2,
    )

    run = run_sync(
        connection, make_connector(pipedrive, clock), SyncRun.Kind.INCREMENTAL
    )

    changed = {
        kind: (c["created"], c["updated"], c["unchanged"])
        for kind, c in run.counts.items()
        if any(c.values())
    }
    assert changed == {"contacts": (1, 0, 0), "deals": (0, 1, 0)}
    deal = Deal.objects.get(external_id="302")
    assert deal.amount == Decimal("3100.00")
    move = DealStageChange.objects.get(deal=deal, from_stage__isnull=False)
    assert move.from_stage.external_id == "12"
    assert move.to_stage.external_id == "1:won"
    assert move.changed_at == changed_at
    assert Contact.objects.get(external_id="203").owner == personas.rep2
    assert [r.path for r in pipedrive.requests()].count("/v1/recents") == 6
    assert_mirrors(pipedrive, personas)


# Limits and tokens


def test_rate_limit_storm_completes_within_limit(
    personas, pipedrive, clock, connection
):
    seed_company(pipedrive)
    pipedrive.inject(429, count=6, retry_after=2)

    run = run_sync(connection, make_connector(pipedrive, clock, page_size=1))

    assert run.status == SyncRun.Status.SUCCEEDED
    rate_limited = pipedrive.requests(status=429)
    assert len(rate_limited) == 6
    assert all(r.injected for r in rate_limited)
    assert pipedrive.max_in_window(API_TOKEN, 2.0) <= LIMIT[0]
    assert clock.now() >= 12.0
    assert_mirrors(pipedrive, personas)


def test_rejected_token_marks_connection(pipedrive, clock, connection, caplog):
    caplog.set_level(logging.DEBUG)

    with pytest.raises(AuthenticationFailed, match="HTTP 401"):
        run_sync(connection, make_connector(pipedrive, clock, token="pd-wrong-token"))

    connection.refresh_from_db()
    assert connection.status == CrmConnection.Status.ERROR
    assert "pd-wrong-token" not in caplog.text
    assert "pd-wrong-token" not in SyncRun.objects.get().failure


def test_api_token_stays_out_of_logs(pipedrive, connection, caplog):
    seed_company(pipedrive)
    pipedrive.add_token(API_TOKEN, SimulatedClock())
    caplog.set_level(logging.DEBUG)
    pipedrive.inject(503)
    pipedrive.inject(429, retry_after=0)

    with tenant_context(connection.organization):
        run = sync.sync_run_create(connection=connection, kind=SyncRun.Kind.FULL)
        sync.sync_run_execute(run=run)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert "Pipedrive rate limit" in caplog.text
    assert API_TOKEN not in caplog.text


# Owners, deletions and merges


def test_unmatched_owner_is_a_mapping_error(personas, pipedrive, clock, connection):
    seed_company(pipedrive)

    run = run_sync(connection, make_connector(pipedrive, clock))

    owner_errors = [e for e in run.errors if e["object_type"] == "owners"]
    assert [e["record_id"] for e in owner_errors] == ["3"]
    assert "ghost@elsewhere.test" in owner_errors[0]["message"]
    assert OwnerMapping.objects.get(owner_id="3").membership is None
    assert OwnerMapping.objects.get(owner_id="1").membership == personas.rep1
    assert not OwnerMapping.objects.filter(owner_id="4").exists()
    assert Deal.objects.get(external_id="304").owner is None


def test_deleted_deal_leaves_metrics(personas, pipedrive, clock, connection):
    seed_company(pipedrive)
    run_sync(connection, make_connector(pipedrive, clock))
    march = MetricScope(
        member_ids=[personas.rep1.pk],
        start=dt.date(2024, 3, 1),
        end=dt.date(2024, 4, 1),
        time_zone=UTC,
    )
    # 301 (10,000) and 305 (1,200) were won in March (UTC).
    assert bookings_by_member(march)[personas.rep1.pk] == Decimal("11200.00")
    deleted_at = dt.datetime(2024, 4, 5, 9, 30, tzinfo=dt.UTC)
    pipedrive.delete("deal", 301, deleted_at)

    run = run_sync(
        connection, make_connector(pipedrive, clock), SyncRun.Kind.INCREMENTAL
    )

    assert Deal.objects.get(external_id="301").archived_at == deleted_at
    assert run.counts["deals"]["deleted"] == 1
    assert bookings_by_member(march)[personas.rep1.pk] == Decimal("1200.00")
    assert AuditLog.objects.filter(action="crm.deal_archived").count() == 1

    run = run_sync(
        connection, make_connector(pipedrive, clock), SyncRun.Kind.INCREMENTAL
    )
    assert run.counts["deals"]["deleted"] == 0
    assert AuditLog.objects.filter(action="crm.deal_archived").count() == 1


def test_deal_merge_keeps_survivor_history(personas, pipedrive, clock, connection):
    seed_company(pipedrive)
    run_sync(connection, make_connector(pipedrive, clock))
    survivor = Deal.objects.get(external_id="301")
    survivor_history = list(
        DealStageChange.objects.filter(deal=survivor).values_list(
            "pk", "to_stage__external_id", "changed_at"
        )
    )
    meeting = Activity.objects.get(external_id="403")
    merged_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)

    response = pipedrive.merge("deal", 305, 301, merged_at)
    run = run_sync(
        connection, make_connector(pipedrive, clock), SyncRun.Kind.INCREMENTAL
    )

    assert response["merge_what_id"] == 305
    assert run.status == SyncRun.Status.SUCCEEDED
    assert Deal.objects.get(external_id="301").pk == survivor.pk
    assert Deal.objects.get(external_id="305").archived_at == merged_at
    history = list(
        DealStageChange.objects.filter(deal=survivor).values_list(
            "pk", "to_stage__external_id", "changed_at"
        )
    )
    assert history == survivor_history
    assert Activity.objects.get(external_id="403").pk == meeting.pk
    march = MetricScope(
        member_ids=[personas.rep1.pk],
        start=dt.date(2024, 3, 1),
        end=dt.date(2024, 4, 1),
        time_zone=UTC,
    )
    assert bookings_by_member(march)[personas.rep1.pk] == Decimal("10000.00")
    assert_mirrors(pipedrive, personas)


# Activity links


def activity_links() -> dict[str, tuple]:
    """Return each activity's (deal, contact, lead, account) by their Pipedrive ids."""
    rows = Activity.objects.values_list(
        "external_id",
        "deal__external_id",
        "contact__external_id",
        "lead__external_id",
        "account__external_id",
    )
    return {external_id: tuple(links) for external_id, *links in rows}


def add_linked_activities(fake) -> None:
    """Add call 406 and email 407 with links.

    The call is on deal 302, person 202 and organization 102. The email is on
    person 201 and deal 999, which the company never lists.
    """
    fake.add(
        "activity",
        406,
        at=SEEDED_AT,
        type="call",
        subject="Pilot review",
        due_date="2024-03-07",
        due_time="10:00",
        user_id=2,
        deal_id=302,
        person_id=202,
        org_id=102,
        done=True,
    )
    fake.add(
        "activity",
        407,
        at=SEEDED_AT,
        type="email",
        subject="Pricing",
        due_date="2024-03-08",
        due_time="",
        user_id=1,
        deal_id=999,
        person_id=201,
        org_id=None,
        done=True,
    )


def test_full_sync_links_activities(pipedrive, clock, connection):
    seed_company(pipedrive)
    add_linked_activities(pipedrive)

    run = run_sync(connection, make_connector(pipedrive, clock))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.counts["emails"]["failed"] == 0
    assert activity_links() == {
        "401": ("301", None, None, None),
        "402": ("302", None, None, None),
        "403": ("305", None, None, None),
        "406": ("302", "202", None, "102"),
        # Deal 999 was never synced, so the email has no deal.
        "407": (None, "201", None, None),
    }


def test_recents_clear_activity_links(pipedrive, clock, connection):
    seed_company(pipedrive)
    add_linked_activities(pipedrive)
    run_sync(connection, make_connector(pipedrive, clock))
    changed_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(
        minutes=1
    )
    pipedrive.update("activity", 406, at=changed_at, deal_id=None, org_id=None)

    run = run_sync(
        connection, make_connector(pipedrive, clock), SyncRun.Kind.INCREMENTAL
    )

    assert run.counts["calls"]["updated"] == 1
    assert activity_links()["406"] == (None, "202", None, None)
