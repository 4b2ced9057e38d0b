import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from activity.models import Account, Activity, Contact, Deal, DealStageChange, Stage
from integrations import sync, webhooks
from integrations.connectors.base import AuthenticationFailed, ConnectorError
from integrations.connectors.ratelimit import RollingWindowLimiter
from integrations.connectors.salesforce import SalesforceConnector
from integrations.models import (
    CrmConnection,
    OwnerMapping,
    StageMapping,
    SyncRun,
    WebhookEvent,
)
from measurement.selectors import MetricScope, bookings_by_member, scorecards_by_member
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.integrations.fake_hubspot import SimulatedClock
from tests.integrations.fake_salesforce import FakeSalesforce

CLIENT_ID = "3MVG9-test-consumer-key"
CLIENT_SECRET = "sf-test-consumer-secret"
REFRESH_TOKEN = "5Aep861-test-refresh-token"
UTC = ZoneInfo("UTC")
SEEDED_AT = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)
REQUESTS_PER_SECOND = 20


@pytest.fixture(autouse=True)
def _credentials_key(monkeypatch):
    monkeypatch.setenv("ATTAIN_CREDENTIALS_KEY", "integration-tests-credentials-key")


@pytest.fixture
def clock():
    return SimulatedClock()


@pytest.fixture
def salesforce(clock):
    fake = FakeSalesforce(clock=clock).start()
    fake.add_client(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN)
    yield fake
    fake.stop()


@pytest.fixture
def connection(personas, salesforce, in_org):
    return sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="salesforce",
        name="Salesforce",
        base_url=salesforce.url,
        credentials={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
        },
    )


def make_connector(fake, refresh_token=REFRESH_TOKEN, **kwargs) -> SalesforceConnector:
    """Return a connector whose limiter and retries wait on the fake's clock."""
    return SalesforceConnector(
        login_url=fake.url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token=refresh_token,
        clock=fake.clock,
        limiter=RollingWindowLimiter(REQUESTS_PER_SECOND, 1.0, fake.clock),
        **kwargs,
    )


def run_sync(connection, connector, kind=SyncRun.Kind.FULL) -> SyncRun:
    with tenant_context(connection.organization):
        run = sync.sync_run_create(connection=connection, kind=kind)
        return sync.sync_run_execute(run=run, connector=connector)


def seed_org(fake) -> None:
    """Fill the fake with a small org whose values the tests check by hand.

    Users 005R1 and 005R2 are Rita (rep1) and Rob (rep2) of the ``personas``
    org, Rita's email in capitals. User 005GH has no member in Attain.
    """
    fake.add_user("005R1", "RITA.REP@ACME.TEST", "Rita", "Rep")
    fake.add_user("005R2", "rob.rep@acme.test", "Rob", "Rep")
    fake.add_user("005GH", "ghost@elsewhere.test", "Gus", "Ghost")
    fake.add_user("005OLD", "former@acme.test", "Fay", "Former", active=False)
    fake.add_stage("Prospecting", "Prospecting", probability=10)
    fake.add_stage("Negotiation/Review", "Negotiation/Review", probability=90)
    fake.add_stage("Closed Won", "Closed Won", closed=True, won=True, probability=100)
    fake.add_stage("Closed Lost", "Closed Lost", closed=True, probability=0)
    # Won although its default probability is 90: IsWon decides.
    fake.add_stage("Renewal Won", "Renewal Won", closed=True, won=True, probability=90)
    at = SEEDED_AT
    fake.add(
        "Account",
        "001A",
        modstamp=at,
        Name="Globex Ltd",
        Website="https://www.globex.test/en",
        Industry="Energy",
        BillingCountry="DE",
        OwnerId="005R1",
    )
    fake.add(
        "Account",
        "001B",
        modstamp=at,
        Name="Initech",
        Website="initech.test",
        Industry="Software",
        BillingCountry="US",
        OwnerId="005R2",
    )
    fake.add("Account", "001C", modstamp=at, Name="Umbrella", OwnerId="005GH")
    fake.add(
        "Contact",
        "003A",
        modstamp=at,
        FirstName="Hank",
        LastName="Hill",
        Email="hank@globex.test",
        Phone="+49 30 1234",
        Title="CFO",
        AccountId="001A",
        OwnerId="005R1",
        CreatedDate=dt.datetime(2024, 1, 15, 8, tzinfo=dt.UTC),
    )
    fake.add(
        "Contact",
        "003B",
        modstamp=at,
        FirstName="Peggy",
        LastName="Gibbons",
        Email="peggy@initech.test",
        AccountId="001B",
        OwnerId="005R2",
        CreatedDate=dt.datetime(2024, 2, 1, 8, tzinfo=dt.UTC),
    )
    deals = [
        (
            "006A",
            "Globex renewal",
            "10000",
            "Closed Won",
            (2024, 3, 10),
            "005R1",
            "001A",
        ),
        (
            "006B",
            "Initech pilot",
            "2500.50",
            "Negotiation/Review",
            (2024, 4, 20),
            "005R2",
            "001B",
        ),
        ("006C", "Umbrella lost", "4000", "Closed Lost", (2024, 3, 5), "005R2", None),
        ("006D", "Ghost deal", "700", "Prospecting", (2024, 6, 30), "005GH", None),
        (
            "006E",
            "Globex add-on",
            "1200",
            "Renewal Won",
            (2024, 3, 29),
            "005R1",
            "001A",
        ),
    ]
    for deal_id, name, amount, stage, close, owner, account in deals:
        fake.add(
            "Opportunity",
            deal_id,
            modstamp=at,
            Name=name,
            Amount=Decimal(amount),
            StageName=stage,
            CloseDate=dt.date(*close),
            OwnerId=owner,
            AccountId=account,
            CreatedDate=dt.datetime(2024, 2, 1, 10, tzinfo=dt.UTC),
        )
    fake.add(
        "Task",
        "00TA",
        modstamp=at,
        Subject="Discovery call",
        TaskSubtype="Call",
        CompletedDateTime=dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC),
        OwnerId="005R1",
        WhoId="003A",
    )
    fake.add(
        "Task",
        "00TB",
        modstamp=at,
        Subject="Proposal",
        TaskSubtype="Email",
        ActivityDate=dt.date(2024, 3, 3),
        OwnerId="005R2",
        WhoId="003B",
    )
    fake.add(
        "Task",
        "00TC",
        modstamp=at,
        Subject="Plain to-do",
        TaskSubtype="Task",
        OwnerId="005R2",
    )
    fake.add(
        "Event",
        "00UA",
        modstamp=at,
        Subject="Onsite demo",
        StartDateTime=dt.datetime(2024, 3, 4, 10, tzinfo=dt.UTC),
        OwnerId="005R2",
        WhoId="003B",
    )


def assert_mirrors(fake, personas) -> None:
    """Compare every live account, deal and activity of the fake with Attain's."""
    members = {"005R1": personas.rep1, "005R2": personas.rep2}
    accounts = {
        a.external_id: (a.name, a.owner)
        for a in Account.objects.filter(external_source="salesforce")
    }
    expected_accounts = {
        row["Id"]: (row["Name"], members.get(row["OwnerId"]))
        for row in fake.objects["Account"].values()
        if not row["IsDeleted"]
    }
    deleted = {r["Id"] for r in fake.objects["Account"].values() if r["IsDeleted"]}
    live = {key: value for key, value in accounts.items() if key not in deleted}
    assert live == expected_accounts
    deals = {
        d.external_id: (
            d.name,
            d.amount,
            d.stage.external_id,
            d.close_date,
            d.owner,
            d.account.external_id if d.account else None,
            d.archived_at is not None,
        )
        for d in Deal.objects.select_related("stage", "account")
    }
    expected_deals = {
        row["Id"]: (
            row["Name"],
            row["Amount"].quantize(Decimal("0.01")),
            row["StageName"],
            row["CloseDate"],
            members.get(row["OwnerId"]),
            row["AccountId"],
            row["IsDeleted"],
        )
        for row in fake.objects["Opportunity"].values()
    }
    assert deals == expected_deals
    activities = dict(Activity.objects.values_list("external_id", "subject"))
    expected_activities = {
        row["Id"]: row["Subject"]
        for sobject in ("Task", "Event")
        for row in fake.objects[sobject].values()
        if row.get("TaskSubtype", "Event") in ("Call", "Email", "ListEmail", "Event")
    }
    assert activities == expected_activities


# Full sync


def test_full_sync_mirrors_every_record(personas, salesforce, connection):
    personas.org.time_zone = "America/Los_Angeles"
    personas.org.save()
    seed_org(salesforce)
    connector = make_connector(salesforce)
    connector.batch_size = 200
    salesforce.max_batch_size = 2

    run = run_sync(connection, connector)

    assert run.status == SyncRun.Status.SUCCEEDED
    accounts = {
        a.external_id: (a.name, a.domain, a.industry, a.country, a.owner)
        for a in Account.objects.filter(external_source="salesforce")
    }
    assert accounts == {
        "001A": ("Globex Ltd", "globex.test", "Energy", "DE", personas.rep1),
        "001B": ("Initech", "initech.test", "Software", "US", personas.rep2),
        "001C": ("Umbrella", "", "", "", None),
    }
    contacts = {
        c.external_id: (c.first_name, c.email, c.title, c.account.external_id, c.owner)
        for c in Contact.objects.select_related("account")
    }
    assert contacts == {
        "003A": ("Hank", "hank@globex.test", "CFO", "001A", personas.rep1),
        "003B": ("Peggy", "peggy@initech.test", "", "001B", personas.rep2),
    }
    deals = sorted(
        Deal.objects.values_list(
            "external_id",
            "amount",
            "stage__external_id",
            "owner__display_name",
            "account__external_id",
            "close_date",
        )
    )
    # CloseDate is a date: it stays 2024-03-10 in Los Angeles, never shifted.
    assert deals == [
        (
            "006A",
            Decimal("10000.00"),
            "Closed Won",
            "Rita Rep",
            "001A",
            dt.date(2024, 3, 10),
        ),
        (
            "006B",
            Decimal("2500.50"),
            "Negotiation/Review",
            "Rob Rep",
            "001B",
            dt.date(2024, 4, 20),
        ),
        (
            "006C",
            Decimal("4000.00"),
            "Closed Lost",
            "Rob Rep",
            None,
            dt.date(2024, 3, 5),
        ),
        ("006D", Decimal("700.00"), "Prospecting", None, None, dt.date(2024, 6, 30)),
        (
            "006E",
            Decimal("1200.00"),
            "Renewal Won",
            "Rita Rep",
            "001A",
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
            "00TA",
            "call",
            "Discovery call",
            dt.datetime(2024, 3, 1, 10, tzinfo=UTC),
            "Rita Rep",
        ),
        ("00TB", "email", "Proposal", dt.datetime(2024, 3, 3, tzinfo=UTC), "Rob Rep"),
        (
            "00UA",
            "meeting",
            "Onsite demo",
            dt.datetime(2024, 3, 4, 10, tzinfo=UTC),
            "Rob Rep",
        ),
    ]
    assert DealStageChange.objects.count() == 5
    assert_mirrors(salesforce, personas)


def test_full_sync_follows_next_records_url(salesforce, connection):
    seed_org(salesforce)
    salesforce.max_batch_size = 2
    connector = make_connector(salesforce)

    run = run_sync(connection, connector)

    created = {kind: counts["created"] for kind, counts in run.counts.items()}
    assert created == {
        "companies": 3,
        "contacts": 2,
        "deals": 5,
        "calls": 1,
        "emails": 1,
        "meetings": 1,
        "notes": 0,
        "leads": 0,
        "stage_history": 5,
    }
    listings = [q for q in salesforce.queries() if "FROM Opportunity ORDER BY" in q]
    assert listings == [
        "SELECT Id, SystemModstamp, Name, Amount, CloseDate, StageName, IsWon, "
        "IsClosed, OwnerId, AccountId, CreatedDate FROM Opportunity ORDER BY Id"
    ]
    # Batches of 2 take these nextRecordsUrl requests: 3 active users 1,
    # 5 stages 2, 3 accounts 1, 2 contacts 0, 5 opportunities 2, and 0 for
    # each single-record activity listing and the empty queryAll.
    follow_ups = [r for r in salesforce.requests() if "/query/" in r.path]
    assert len(follow_ups) == 6
    assert run.records_done == 13


def test_full_sync_sends_no_notes_request(salesforce, connection):
    seed_org(salesforce)

    run = run_sync(connection, make_connector(salesforce))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.counts["notes"]["created"] == 0
    # One token refresh, then one query per object: users, stages, accounts,
    # contacts, opportunities, their history, leads, call tasks, email tasks
    # and events, and the queryAll of each deleted type but the history.
    sent = [
        (r.path.rsplit("/", 1)[-1], r.query.split(" FROM ")[1].split(" ")[0])
        for r in salesforce.requests()
        if r.query
    ]
    assert sent == [
        ("query", "User"),
        ("query", "OpportunityStage"),
        ("query", "Account"),
        ("query", "Contact"),
        ("query", "Opportunity"),
        ("query", "OpportunityHistory"),
        ("query", "Lead"),
        ("query", "Task"),
        ("query", "Task"),
        ("query", "Event"),
        ("queryAll", "Opportunity"),
        ("queryAll", "Lead"),
        ("queryAll", "Account"),
        ("queryAll", "Contact"),
        ("queryAll", "Task"),
        ("queryAll", "Task"),
        ("queryAll", "Event"),
    ]
    assert len(salesforce.requests()) == 1 + len(sent)
    assert not Activity.objects.filter(type=Activity.Type.NOTE).exists()


def test_stage_outcome_comes_from_is_won(personas, salesforce, connection):
    seed_org(salesforce)
    close = dt.date(2024, 5, 15)
    stages = ["Closed Won"] * 3 + ["Renewal Won"] + ["Closed Lost"] * 6
    for number, stage in enumerate(stages):
        salesforce.add(
            "Opportunity",
            f"006Q{number}",
            modstamp=SEEDED_AT,
            Name=f"Q2 deal {number}",
            Amount=Decimal(1000),
            StageName=stage,
            CloseDate=close,
            OwnerId="005R2",
        )

    run_sync(connection, make_connector(salesforce))

    outcomes = dict(StageMapping.objects.values_list("crm_stage_id", "outcome"))
    assert outcomes == {
        "Prospecting": "open",
        "Negotiation/Review": "open",
        "Closed Won": "won",
        "Closed Lost": "lost",
        "Renewal Won": "won",
    }
    renewal = Stage.objects.get(external_id="Renewal Won")
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


# Incremental sync


def test_incremental_sync_picks_up_changes(personas, salesforce, connection):
    seed_org(salesforce)
    connector = make_connector(salesforce)
    run_sync(connection, connector)
    changed_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(
        minutes=1
    )
    salesforce.update(
        "Opportunity",
        "006B",
        modstamp=changed_at,
        Amount=Decimal(3100),
        StageName="Closed Won",
    )
    salesforce.add(
        "Contact",
        "003C",
        modstamp=changed_at,
        FirstName="Dale",
        LastName="Gribble",
        AccountId="001B",
        OwnerId="005R2",
    )

    run = run_sync(connection, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)

    changed = {
        kind: (c["created"], c["updated"], c["unchanged"])
        for kind, c in run.counts.items()
        if any(c.values())
    }
    # 006B's OpportunityHistory has its first entry, unchanged, and a new one.
    assert changed == {
        "contacts": (1, 0, 0),
        "deals": (0, 1, 0),
        "stage_history": (1, 0, 1),
    }
    deal = Deal.objects.get(external_id="006B")
    assert deal.amount == Decimal("3100.00")
    move = DealStageChange.objects.get(deal=deal, from_stage__isnull=False)
    assert move.from_stage.external_id == "Negotiation/Review"
    assert move.to_stage.external_id == "Closed Won"
    assert move.changed_at == changed_at
    assert Contact.objects.get(external_id="003C").owner == personas.rep2
    assert_mirrors(salesforce, personas)
    soql = [q for q in salesforce.queries() if "FROM Opportunity WHERE" in q][-2]
    assert "WHERE (SystemModstamp >= 20" in soql
    assert soql.endswith("ORDER BY SystemModstamp, Id")


# Sessions and limits


def test_expired_session_is_refreshed_once(personas, salesforce, connection):
    seed_org(salesforce)
    connector = make_connector(
        salesforce, access_token="00Dstale!token", instance_url=salesforce.url
    )

    run = run_sync(connection, connector)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert len(salesforce.token_requests()) == 1
    assert len(salesforce.requests(status=401)) == 1

    # The session expires between runs; the same connector refreshes again.
    salesforce.expire_sessions()
    run = run_sync(connection, connector, SyncRun.Kind.INCREMENTAL)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert len(salesforce.token_requests()) == 2
    assert len(salesforce.requests(status=401)) == 2
    assert_mirrors(salesforce, personas)


def test_revoked_refresh_token_marks_connection(salesforce, connection, caplog):
    seed_org(salesforce)
    salesforce.revoke(REFRESH_TOKEN)

    with pytest.raises(AuthenticationFailed, match="invalid_grant"):
        run_sync(connection, make_connector(salesforce))

    connection.refresh_from_db()
    assert connection.status == CrmConnection.Status.ERROR
    assert "invalid_grant" in connection.status_message
    assert REFRESH_TOKEN not in caplog.text
    assert REFRESH_TOKEN not in SyncRun.objects.get().failure


def test_rate_limit_storm_completes_within_limit(personas, salesforce, connection):
    seed_org(salesforce)
    salesforce.inject(429, count=6, retry_after=2)

    run = run_sync(connection, make_connector(salesforce))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert len(salesforce.requests(status=429)) == 6
    assert salesforce.max_in_window(1.0) <= REQUESTS_PER_SECOND
    assert salesforce.clock.now() >= 12.0
    assert_mirrors(salesforce, personas)


def test_api_budget_stops_sync_then_resumes(personas, salesforce, connection):
    seed_org(salesforce)
    run_sync(connection, make_connector(salesforce))
    changed_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(
        minutes=1
    )
    for deal_id in ("006A", "006B", "006C", "006D", "006E"):
        salesforce.update(
            "Opportunity", deal_id, modstamp=changed_at, Name=f"Renamed {deal_id}"
        )
    salesforce.max_batch_size = 1
    # Other integrations used 75 of the org's 100 daily requests.
    salesforce.api_limit = 100
    salesforce.api_used = 75

    # The connector raises before request 91, or the run stops at a committed
    # page once usage reaches 90 (sync.ApiBudgetExhausted), whichever is first.
    with pytest.raises(ConnectorError, match=r"90 of (its )?100"):
        run_sync(connection, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)

    # With one record per batch, three users (76 to 78) and five stages (79 to
    # 83) leave 17 requests, under 20 % of 100, so the run is in priority mode.
    # Each opportunity takes a batch and its history: 84 to 89 for three of
    # them. The fourth batch is request 90, 90 % of 100, so no history request
    # follows it. The next page is fetched while one is written, so the run may
    # see 90 after the second page already and stop there.
    assert salesforce.api_used == 90
    assert len(salesforce.requests(status=403)) == 0
    renamed = Deal.objects.filter(name__startswith="Renamed").order_by("external_id")
    assert [d.external_id for d in renamed] in (
        ["006A", "006B"],
        ["006A", "006B", "006C"],
    )
    run = SyncRun.objects.filter(kind=SyncRun.Kind.INCREMENTAL).get()
    assert run.priority_mode
    # Deals come third, so the run stopped before it reached the activities.
    assert run.deferred_object_types == ["companies", "contacts"]
    # The kept reading is still 90 of 100, so the resumed run checks its
    # budget only after its first request reports 91 of 1000.
    salesforce.api_limit = 1000
    sync.sync_run_execute(run=run, connector=make_connector(salesforce))
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED
    assert not run.priority_mode
    assert_mirrors(salesforce, personas)


def test_request_limit_exceeded_stops_sync(salesforce, connection):
    seed_org(salesforce)
    salesforce.api_limit = 0

    with pytest.raises(ConnectorError, match="REQUEST_LIMIT_EXCEEDED"):
        run_sync(connection, make_connector(salesforce))

    assert len(salesforce.requests(status=403)) == 1
    connection.refresh_from_db()
    assert connection.status == CrmConnection.Status.ACTIVE


# Owners, deletions and merges


def test_unmatched_owner_is_a_mapping_error(personas, salesforce, connection):
    seed_org(salesforce)

    run = run_sync(connection, make_connector(salesforce))

    owner_errors = [e for e in run.errors if e["object_type"] == "owners"]
    assert [e["record_id"] for e in owner_errors] == ["005GH"]
    assert "ghost@elsewhere.test" in owner_errors[0]["message"]
    assert OwnerMapping.objects.get(owner_id="005GH").membership is None
    assert OwnerMapping.objects.get(owner_id="005R1").membership == personas.rep1
    assert not OwnerMapping.objects.filter(owner_id="005OLD").exists()
    # The ghost's deal is synced, with no owner.
    assert Deal.objects.get(external_id="006D").owner is None


def test_deleted_deal_leaves_metrics(personas, salesforce, connection):
    seed_org(salesforce)
    run_sync(connection, make_connector(salesforce))
    march = MetricScope(
        member_ids=[personas.rep1.pk],
        start=dt.date(2024, 3, 1),
        end=dt.date(2024, 4, 1),
        time_zone=UTC,
    )
    # 006A (10,000) and 006E (1,200) closed won in March.
    assert bookings_by_member(march)[personas.rep1.pk] == Decimal("11200.00")
    deleted_at = dt.datetime(2024, 4, 5, 9, 30, tzinfo=dt.UTC)
    salesforce.delete("Opportunity", "006A", deleted_at)

    run = run_sync(connection, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)

    assert Deal.objects.get(external_id="006A").archived_at == deleted_at
    assert run.counts["deals"]["deleted"] == 1
    assert bookings_by_member(march)[personas.rep1.pk] == Decimal("1200.00")
    assert AuditLog.objects.filter(action="crm.deal_archived").count() == 1
    assert any("queryAll" in r.path for r in salesforce.requests())

    run = run_sync(connection, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)
    assert run.counts["deals"]["deleted"] == 0
    assert AuditLog.objects.filter(action="crm.deal_archived").count() == 1


def test_account_merge_keeps_survivor_history(personas, salesforce, connection):
    seed_org(salesforce)
    run_sync(connection, make_connector(salesforce))
    survivor = Account.objects.get(external_id="001A")
    history_before = sorted(
        DealStageChange.objects.values_list(
            "deal__external_id", "to_stage__external_id", "changed_at"
        )
    )
    merged_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)
    salesforce.merge("Account", "001A", "001B", merged_at)

    run = run_sync(connection, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert Account.objects.get(external_id="001A").pk == survivor.pk
    assert Deal.objects.get(external_id="006B").account_id == survivor.pk
    assert Deal.objects.get(external_id="006A").account_id == survivor.pk
    assert Contact.objects.get(external_id="003B").account_id == survivor.pk
    history_after = sorted(
        DealStageChange.objects.values_list(
            "deal__external_id", "to_stage__external_id", "changed_at"
        )
    )
    assert history_after == history_before
    assert run.counts["deals"]["updated"] == 1
    assert run.counts["contacts"]["updated"] == 1


def test_sync_counts_salesforce_api_calls(personas, salesforce, connection):
    seed_org(salesforce)
    connector = make_connector(salesforce)

    run = run_sync(connection, connector)

    # The fake logs every request it served, the token request included. The
    # run counts every response its connector's HTTP client received.
    assert run.api_calls == len(salesforce.requests())
    assert run.api_calls > 0


# Activity links


def activity_links() -> dict[str, tuple]:
    """Return each activity's (deal, contact, lead, account) by their Salesforce Ids."""
    rows = Activity.objects.values_list(
        "external_id",
        "deal__external_id",
        "contact__external_id",
        "lead__external_id",
        "account__external_id",
    )
    return {external_id: tuple(links) for external_id, *links in rows}


def later() -> dt.datetime:
    """Return a SystemModstamp later than the cursor a full sync just stored."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)


def add_call(fake, task_id: str, modstamp: dt.datetime, **links) -> None:
    fake.add(
        "Task",
        task_id,
        modstamp=modstamp,
        Subject=f"Call {task_id}",
        TaskSubtype="Call",
        CompletedDateTime=dt.datetime(2024, 3, 5, 10, tzinfo=dt.UTC),
        OwnerId="005R1",
        **links,
    )


def add_lead(fake) -> None:
    fake.add(
        "Lead",
        "00QL",
        modstamp=SEEDED_AT,
        LastName="Lovelace",
        Company="Analytical Engines",
        Status="Working - Contacted",
        OwnerId="005R1",
    )


def test_full_sync_links_activities(salesforce, connection):
    seed_org(salesforce)
    add_call(salesforce, "00TD", SEEDED_AT, WhoId="003A", WhatId="006A")
    add_call(salesforce, "00TE", SEEDED_AT, WhoId="003B", WhatId="001B")
    # Attain syncs no Cases, so this WhatId gives no link.
    add_call(salesforce, "00TF", SEEDED_AT, WhatId="500A0000000001")
    # Opportunity 006Z was never synced.
    add_call(salesforce, "00TG", SEEDED_AT, WhoId="003A", WhatId="006Z")
    salesforce.add(
        "Event",
        "00UB",
        modstamp=SEEDED_AT,
        Subject="Add-on kickoff",
        StartDateTime=dt.datetime(2024, 3, 6, 10, tzinfo=dt.UTC),
        OwnerId="005R1",
        WhoId="003A",
        WhatId="006E",
    )

    run = run_sync(connection, make_connector(salesforce))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.counts["calls"]["failed"] == 0
    assert activity_links() == {
        "00TA": (None, "003A", None, None),
        "00TB": (None, "003B", None, None),
        "00TD": ("006A", "003A", None, None),
        "00TE": (None, "003B", None, "001B"),
        "00TF": (None, None, None, None),
        "00TG": (None, "003A", None, None),
        "00UA": (None, "003B", None, None),
        "00UB": ("006E", "003A", None, None),
    }
    soql = [q for q in salesforce.queries() if "FROM Task" in q][0]
    assert "WhoId, WhatId" in soql


def test_task_on_synced_lead_links_lead(salesforce, connection):
    seed_org(salesforce)
    add_lead(salesforce)
    run_sync(connection, make_connector(salesforce))
    add_call(salesforce, "00TL", later(), WhoId="00QL", WhatId="001A")

    run_sync(connection, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)

    assert activity_links()["00TL"] == (None, None, "00QL", "001A")

    # The task moves from the lead to a contact, and its account link goes.
    moved_at = later() + dt.timedelta(seconds=1)
    salesforce.update("Task", "00TL", modstamp=moved_at, WhoId="003A", WhatId=None)
    run_sync(connection, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)

    assert activity_links()["00TL"] == (None, "003A", None, None)


def test_first_sync_links_task_to_lead(salesforce, connection):
    seed_org(salesforce)
    add_lead(salesforce)
    add_call(salesforce, "00TL", SEEDED_AT, WhoId="00QL")

    run_sync(connection, make_connector(salesforce))

    assert activity_links()["00TL"] == (None, None, "00QL", None)


def test_webhook_fetch_links_activity(personas, salesforce, connection):
    seed_org(salesforce)
    run_sync(connection, make_connector(salesforce))
    add_call(salesforce, "00TD", SEEDED_AT, WhoId="003B", WhatId="006B")
    event = WebhookEvent.objects.create(
        organization=personas.org,
        connection=connection,
        key="task-00TD-created",
        object_type="calls",
        object_id="00TD",
        occurred_at=SEEDED_AT,
    )

    status = webhooks.webhook_event_apply(
        event_pk=event.pk, connector=make_connector(salesforce)
    )

    assert status == WebhookEvent.Status.APPLIED
    assert activity_links()["00TD"] == ("006B", "003B", None, None)
