"""Salesforce leads and OpportunityHistory through the sync engine and the fake org."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from activity.models import Deal, DealStageChange, Lead, Stage
from compensation.models import DealLeadLink
from integrations import sync
from integrations.models import SyncRun
from routing.models import Assignment
from spm.models import AuditLog
from tests.integrations.fake_hubspot import SimulatedClock
from tests.integrations.fake_salesforce import FakeSalesforce
from tests.integrations.test_sync_salesforce import (
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    SEEDED_AT,
    make_connector,
    run_sync,
    seed_org,
)

UTC = ZoneInfo("UTC")
# The lead status each Salesforce Status value of the seeded leads maps to.
STATUS_OF = {
    "Open - Not Contacted": "new",
    "Working - Contacted": "working",
    "Closed - Converted": "converted",
    "Closed - Not Converted": "disqualified",
    "Qualified": "qualified",
    "Nurture": "new",
}


@pytest.fixture(autouse=True)
def _credentials_key(monkeypatch):
    monkeypatch.setenv("ATTAIN_CREDENTIALS_KEY", "integration-tests-credentials-key")


@pytest.fixture
def salesforce():
    fake = FakeSalesforce(clock=SimulatedClock()).start()
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


def later() -> dt.datetime:
    """Return a SystemModstamp later than the cursor a full sync just stored."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)


def seed_leads(fake) -> None:
    """Add six leads: Rita's, Rob's, a ghost's, a queue's, a deleted one and 00QW.

    00QW is converted into opportunity 006W, which has its own history.
    """
    at = SEEDED_AT
    created = dt.datetime(2024, 2, 10, 15, 30, tzinfo=dt.UTC)
    common = {"modstamp": at, "CreatedDate": created}
    fake.add(
        "Lead",
        "00QA",
        FirstName="Ada",
        LastName="Lovelace",
        Email="ada@analytical.test",
        Phone="+44 20 7946 0000",
        Company="Analytical Engines",
        Country="United Kingdom",
        State="London",
        Industry="Computing",
        NumberOfEmployees=250,
        LeadSource="Web",
        Status="Working - Contacted",
        OwnerId="005R1",
        **common,
    )
    fake.add(
        "Lead",
        "00QB",
        FirstName="Bob",
        LastName="Builder",
        Email="bob@gmail.com",
        Company="Bob's Yard",
        Status="Open - Not Contacted",
        OwnerId="005R2",
        **common,
    )
    fake.add(
        "Lead",
        "00QC",
        LastName="Ghost",
        Company="Haunted Inc",
        Status="Qualified",
        OwnerId="005GH",
        **common,
    )
    # A lead in a queue: its OwnerId is a Group, not a User.
    fake.add(
        "Lead",
        "00QQ",
        LastName="Queued",
        Company="Queue Corp",
        Status="Nurture",
        OwnerId="00G5g000000QUEUE",
        **common,
    )
    fake.add(
        "Lead",
        "00QX",
        LastName="Gone",
        Company="Deleted Ltd",
        Status="Closed - Not Converted",
        OwnerId="005R1",
        **common,
    )
    fake.delete("Lead", "00QX", at)
    fake.add(
        "Lead",
        "00QW",
        FirstName="Wanda",
        LastName="Winner",
        Email="wanda@winner.test",
        Company="Winner GmbH",
        Status="Open - Not Contacted",
        OwnerId="005R1",
        **common,
    )
    fake.convert_lead(
        "00QW",
        dt.datetime(2024, 2, 20, 23, 30, tzinfo=dt.UTC),
        "006W",
        Name="Winner GmbH - new business",
        Amount=Decimal(5000),
        StageName="Prospecting",
        CloseDate=dt.date(2024, 5, 31),
    )


def synced_leads() -> dict:
    return {
        lead.external_id: (
            lead.first_name,
            lead.last_name,
            lead.email,
            lead.company,
            lead.country,
            lead.region,
            lead.industry,
            lead.company_size,
            lead.source,
            lead.status,
            lead.owner,
            lead.created_at,
            lead.converted_at,
        )
        for lead in Lead.objects.filter(external_source="salesforce")
    }


def expected_leads(fake, personas) -> dict:
    """Return the fake's live leads as synced_leads() should store them."""
    members = {"005R1": personas.rep1, "005R2": personas.rep2}
    time_zone = ZoneInfo(personas.org.time_zone)
    expected = {}
    for row in fake.objects["Lead"].values():
        if row["IsDeleted"]:
            continue
        converted = row["ConvertedDate"]
        expected[row["Id"]] = (
            row["FirstName"] or "",
            row["LastName"] or "",
            row["Email"] or "",
            row["Company"] or "",
            row["Country"] or "",
            row["State"] or "",
            row["Industry"] or "",
            row["NumberOfEmployees"],
            row["LeadSource"] or "",
            STATUS_OF[row["Status"]],
            members.get(row["OwnerId"]),
            row["CreatedDate"],
            dt.datetime.combine(converted, dt.time(), time_zone) if converted else None,
        )
    return expected


def synced_history() -> dict:
    """Return the imported stage changes of live deals by OpportunityHistory Id."""
    changes = DealStageChange.objects.filter(deal__archived_at__isnull=True)
    return {
        change.external_id: (
            change.deal.external_id,
            change.from_stage.external_id if change.from_stage else None,
            change.to_stage.external_id,
            change.changed_at,
        )
        for change in changes.select_related("deal", "from_stage", "to_stage")
    }


def expected_history(fake) -> dict:
    """Return the stage entries of the fake's live OpportunityHistory rows.

    A row whose StageName equals the row before it records an Amount or
    CloseDate change and enters no stage.
    """
    rows = [
        r for r in fake.objects["OpportunityHistory"].values() if not r["IsDeleted"]
    ]
    rows.sort(key=lambda r: (r["OpportunityId"], r["CreatedDate"], r["Id"]))
    current = {}
    expected = {}
    for row in rows:
        deal = row["OpportunityId"]
        if current.get(deal) == row["StageName"]:
            continue
        expected[row["Id"]] = (
            deal,
            current.get(deal),
            row["StageName"],
            row["CreatedDate"],
        )
        current[deal] = row["StageName"]
    return expected


def stage_conversion(stage_name: str) -> Decimal | None:
    """Return the percentage of deals that entered a stage and later progressed.

    A deal progressed when, after entering the stage, it entered an open
    stage later in the pipeline or a won stage. Rounded half up to 0.1.
    """
    stage = Stage.objects.get(external_id=stage_name)
    entered = {}
    progressed = set()
    changes = DealStageChange.objects.select_related("to_stage").order_by(
        "changed_at", "id"
    )
    for change in changes:
        if change.to_stage_id == stage.pk:
            entered.setdefault(change.deal_id, change.changed_at)
            continue
        since = entered.get(change.deal_id)
        target = change.to_stage
        later_open = not target.is_closed and target.order > stage.order
        if since is not None and (target.is_won or later_open):
            progressed.add(change.deal_id)
    if not entered:
        return None
    share = Decimal(100) * len(progressed) / len(entered)
    return share.quantize(Decimal("0.1"))


# Full sync


def test_full_sync_mirrors_leads(personas, salesforce, connection):
    seed_org(salesforce)
    seed_leads(salesforce)
    salesforce.max_batch_size = 2

    run = run_sync(connection, make_connector(salesforce))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert synced_leads() == expected_leads(salesforce, personas)
    ada = Lead.objects.get(external_id="00QA")
    assert (ada.email, ada.region, ada.company_size) == (
        "ada@analytical.test",
        "London",
        250,
    )
    assert ada.status == "working"
    assert ada.owner == personas.rep1
    assert ada.domain == "analytical.test"
    assert ada.phone == "+44 20 7946 0000"
    assert ada.custom == {"Status": "Working - Contacted"}
    # A free-mail address gives no company domain.
    assert Lead.objects.get(external_id="00QB").domain == ""
    # The ghost and the queue have no member, so their leads have no owner.
    assert Lead.objects.get(external_id="00QC").owner is None
    assert Lead.objects.get(external_id="00QQ").owner is None
    assert not Lead.objects.filter(external_id="00QX").exists()
    assert run.counts["leads"]["created"] == 5


def test_synced_leads_are_not_routed(personas, salesforce, connection):
    seed_org(salesforce)
    seed_leads(salesforce)

    run_sync(connection, make_connector(salesforce))

    statuses = set(
        Lead.objects.values_list("routing_status", "received_at", "assigned_at")
    )
    assert statuses == {("", None, None)}
    assert Assignment.objects.count() == 0


def test_full_sync_mirrors_stage_history(personas, salesforce, connection):
    seed_org(salesforce)
    seed_leads(salesforce)
    salesforce.max_batch_size = 2
    moved_at = SEEDED_AT + dt.timedelta(days=1)
    salesforce.update(
        "Opportunity", "006D", modstamp=moved_at, StageName="Negotiation/Review"
    )
    back_at = SEEDED_AT + dt.timedelta(days=2)
    salesforce.update("Opportunity", "006D", modstamp=back_at, StageName="Prospecting")
    # An Amount change adds a history row but enters no stage.
    amount_at = SEEDED_AT + dt.timedelta(days=3)
    salesforce.update("Opportunity", "006D", modstamp=amount_at, Amount=Decimal(800))

    run = run_sync(connection, make_connector(salesforce))

    assert synced_history() == expected_history(salesforce)
    moves = list(
        DealStageChange.objects.filter(deal__external_id="006D").values_list(
            "from_stage__external_id", "to_stage__external_id", "changed_at"
        )
    )
    assert moves == [
        (None, "Prospecting", SEEDED_AT),
        ("Prospecting", "Negotiation/Review", moved_at),
        ("Negotiation/Review", "Prospecting", back_at),
    ]
    # Five seeded deals with one entry each, 006W with one, 006D with two more.
    assert run.counts["stage_history"]["created"] == 8
    assert Deal.objects.get(external_id="006D").stage_changed_at == back_at
    # The deal writer's own entries were replaced, none is left beside them.
    assert not DealStageChange.objects.filter(external_id="").exists()


# Incremental sync


def test_incremental_sync_mirrors_changes(personas, salesforce, connection):
    seed_org(salesforce)
    seed_leads(salesforce)
    run_sync(connection, make_connector(salesforce))
    at = later()
    salesforce.update("Opportunity", "006B", modstamp=at, StageName="Closed Won")
    salesforce.update(
        "Opportunity", "006D", modstamp=at, CloseDate=dt.date(2024, 7, 31)
    )
    salesforce.add(
        "Opportunity",
        "006N",
        modstamp=at,
        Name="New deal",
        Amount=Decimal(900),
        StageName="Negotiation/Review",
        CloseDate=dt.date(2024, 8, 1),
        OwnerId="005R2",
    )
    salesforce.update("Lead", "00QB", modstamp=at, Status="Closed - Not Converted")
    salesforce.add(
        "Lead",
        "00QN",
        modstamp=at,
        LastName="Newman",
        Company="Newco",
        Status="Open - Not Contacted",
        OwnerId="005R2",
    )

    run = run_sync(connection, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert synced_leads() == expected_leads(salesforce, personas)
    assert synced_history() == expected_history(salesforce)
    assert Lead.objects.get(external_id="00QB").status == "disqualified"
    counts = run.counts["stage_history"]
    # 006B entered Closed Won and 006N its first stage. 006D only changed
    # its close date, so its stored entry is read again unchanged.
    assert (counts["created"], counts["updated"], counts["deleted"]) == (2, 0, 0)
    assert run.counts["leads"]["created"] == 1
    assert run.counts["leads"]["updated"] == 1
    move = DealStageChange.objects.get(
        deal__external_id="006B", to_stage__name="Closed Won"
    )
    assert move.from_stage.external_id == "Negotiation/Review"
    assert move.changed_at == at
    entered_won = [
        row["Id"]
        for row in salesforce.objects["OpportunityHistory"].values()
        if row["OpportunityId"] == "006B" and row["StageName"] == "Closed Won"
    ]
    assert [move.external_id] == entered_won

    stored = DealStageChange.objects.count()
    again = run_sync(connection, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)

    assert again.records_done == 0
    assert DealStageChange.objects.count() == stored
    assert synced_history() == expected_history(salesforce)


# Deletions and conversions


def test_deleted_lead_leaves(personas, salesforce, connection):
    seed_org(salesforce)
    seed_leads(salesforce)
    run_sync(connection, make_connector(salesforce))
    assert Lead.objects.filter(external_id="00QA").exists()
    salesforce.delete("Lead", "00QA", later())

    run = run_sync(connection, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)

    assert not Lead.objects.filter(external_id="00QA").exists()
    assert run.counts["leads"]["deleted"] == 1
    assert synced_leads() == expected_leads(salesforce, personas)
    entry = AuditLog.objects.get(action="crm.lead_deleted")
    assert entry.new["external_id"] == "00QA"
    assert entry.new["master_record_id"] is None

    # The Recycle Bin still lists it, but there is nothing left to delete.
    run = run_sync(connection, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)
    assert run.counts["leads"]["deleted"] == 0
    assert AuditLog.objects.filter(action="crm.lead_deleted").count() == 1


def test_merged_lead_leaves_survivor(personas, salesforce, connection):
    seed_org(salesforce)
    seed_leads(salesforce)
    run_sync(connection, make_connector(salesforce))
    survivor = Lead.objects.get(external_id="00QA")

    salesforce.merge("Lead", "00QA", "00QB", later())
    run_sync(connection, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)

    assert not Lead.objects.filter(external_id="00QB").exists()
    assert Lead.objects.get(external_id="00QA").pk == survivor.pk
    entry = AuditLog.objects.get(action="crm.lead_deleted")
    assert entry.new["master_record_id"] == "00QA"


def test_converted_lead_links_to_deal(personas, salesforce, connection):
    seed_org(salesforce)
    seed_leads(salesforce)

    run_sync(connection, make_connector(salesforce))

    lead = Lead.objects.get(external_id="00QW")
    assert lead.status == "converted"
    # ConvertedDate 2024-02-20 in the organisation's time zone (UTC).
    assert lead.converted_at == dt.datetime(2024, 2, 20, tzinfo=UTC)
    assert lead.custom["ConvertedOpportunityId"] == "006W"
    link = DealLeadLink.objects.get()
    assert link.deal == Deal.objects.get(external_id="006W")
    assert link.lead == lead


def test_lead_converted_later_links_on_incremental(personas, salesforce, connection):
    seed_org(salesforce)
    seed_leads(salesforce)
    run_sync(connection, make_connector(salesforce))
    salesforce.convert_lead(
        "00QA",
        later(),
        "006L",
        Amount=Decimal(1500),
        StageName="Prospecting",
        CloseDate=dt.date(2024, 9, 30),
    )

    run_sync(connection, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)

    links = dict(
        DealLeadLink.objects.values_list("deal__external_id", "lead__external_id")
    )
    assert links == {"006W": "00QW", "006L": "00QA"}


def test_lead_synced_before_its_deal_is_linked(personas, salesforce, connection):
    seed_org(salesforce)
    seed_leads(salesforce)
    run_sync(connection, make_connector(salesforce))
    # The opportunity fails to sync (its stage is unknown), so the converted
    # lead arrives first and finds no deal to link.
    converted_at = later()
    salesforce.convert_lead(
        "00QA",
        converted_at,
        "006L",
        StageName="Discovery",
        CloseDate=dt.date(2024, 9, 30),
    )
    run = run_sync(connection, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)
    assert run.counts["deals"]["failed"] == 1
    assert Lead.objects.get(external_id="00QA").status == "converted"
    assert not DealLeadLink.objects.filter(deal__external_id="006L").exists()

    salesforce.add_stage("Discovery", "Discovery", probability=20)
    salesforce.update(
        "Opportunity", "006L", modstamp=converted_at + dt.timedelta(minutes=1)
    )
    run_sync(connection, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)

    link = DealLeadLink.objects.get(deal__external_id="006L")
    assert link.lead.external_id == "00QA"


# Metrics


def test_stage_conversion_matches_crm_history(personas, salesforce, connection):
    """Three opportunities whose history a sync that reads only the current
    stage would lose.

    X: Prospecting, Negotiation/Review, Closed Won.
    Y: Prospecting, an Amount change (a second Prospecting row), Closed Lost.
    Z: Prospecting, Negotiation/Review, Closed Lost.

    Prospecting: X, Y and Z entered it. X and Z then entered the later open
    stage Negotiation/Review, Y only lost: 2 of 3 = 66.7 %.
    Negotiation/Review: X and Z entered it, X then won: 1 of 2 = 50.0 %.
    Closed Won is never followed by another stage: 0 of 1 = 0.0 %.
    """
    seed_org(salesforce)
    day = dt.timedelta(days=1)
    start = dt.datetime(2024, 1, 8, 9, tzinfo=dt.UTC)
    paths = {
        "006X": ["Prospecting", "Negotiation/Review", "Closed Won"],
        "006Y": ["Prospecting", "Prospecting", "Closed Lost"],
        "006Z": ["Prospecting", "Negotiation/Review", "Closed Lost"],
    }
    for deal_id, path in paths.items():
        salesforce.add(
            "Opportunity",
            deal_id,
            modstamp=start,
            Name=deal_id,
            Amount=Decimal(1000),
            StageName=path[0],
            CloseDate=dt.date(2024, 3, 29),
            OwnerId="005R1",
        )
        for step, stage in enumerate(path[1:], start=1):
            fields = {"StageName": stage}
            if stage == path[step - 1]:
                fields = {"Amount": Decimal(1200)}
            salesforce.update(
                "Opportunity", deal_id, modstamp=start + step * day, **fields
            )
    # Only the three opportunities above count.
    for row in salesforce.objects["Opportunity"].values():
        if row["Id"] not in paths:
            salesforce.delete("Opportunity", row["Id"], start)

    run_sync(connection, make_connector(salesforce))

    assert stage_conversion("Prospecting") == Decimal("66.7")
    assert stage_conversion("Negotiation/Review") == Decimal("50.0")
    assert stage_conversion("Closed Won") == Decimal("0.0")
    assert stage_conversion("Renewal Won") is None


# Bad input


def test_invalid_employee_count_is_listed(personas, salesforce, connection):
    seed_org(salesforce)
    salesforce.add(
        "Lead",
        "00QE",
        modstamp=SEEDED_AT,
        LastName="Negative",
        Company="Shrinking Ltd",
        NumberOfEmployees=-3,
        Status="Open - Not Contacted",
        OwnerId="005R1",
    )

    run = run_sync(connection, make_connector(salesforce))

    assert run.status == SyncRun.Status.SUCCEEDED
    errors = [e for e in run.errors if e["object_type"] == "leads"]
    assert [e["record_id"] for e in errors] == ["00QE"]
    assert "NumberOfEmployees" in errors[0]["message"]
    assert "'-3'" in errors[0]["message"]
    lead = Lead.objects.get(external_id="00QE")
    assert lead.company_size is None
    assert lead.company == "Shrinking Ltd"


def test_history_in_unknown_stage_fails_row(personas, salesforce, connection):
    seed_org(salesforce)
    moved_at = SEEDED_AT + dt.timedelta(days=1)
    salesforce.update("Opportunity", "006B", modstamp=moved_at, StageName="Closed Won")
    # A stage renamed since: the first history row names a stage no longer listed.
    first = min(
        (
            row
            for row in salesforce.objects["OpportunityHistory"].values()
            if row["OpportunityId"] == "006B"
        ),
        key=lambda row: row["CreatedDate"],
    )
    first["StageName"] = "Retired Stage"

    run = run_sync(connection, make_connector(salesforce))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.counts["stage_history"]["failed"] == 1
    errors = [e for e in run.errors if e["object_type"] == "stage_history"]
    assert [e["record_id"] for e in errors] == [first["Id"]]
    assert "'Retired Stage'" in errors[0]["message"]
    assert "006B" in errors[0]["message"]
    moves = list(
        DealStageChange.objects.filter(deal__external_id="006B").values_list(
            "from_stage", "to_stage__external_id", "changed_at"
        )
    )
    assert moves == [(None, "Closed Won", moved_at)]
