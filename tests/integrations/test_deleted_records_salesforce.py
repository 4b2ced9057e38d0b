"""Salesforce accounts, contacts, tasks and events in the Recycle Bin, and merges."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from activity.models import Account, Activity, Contact, Deal, Lead
from integrations import sync
from integrations.models import SyncRun
from measurement.selectors import MetricScope, scorecards_by_member
from routing.engine.accounts import account_for_lead, accounts_on_domain
from routing.models import LeadQualification
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.integrations.fake_hubspot import SimulatedClock
from tests.integrations.fake_salesforce import FakeSalesforce
from tests.integrations.test_sync_salesforce import (
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    make_connector,
    run_sync,
    seed_org,
)

UTC = ZoneInfo("UTC")


@pytest.fixture
def salesforce():
    fake = FakeSalesforce(clock=SimulatedClock()).start()
    fake.add_client(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN)
    yield fake
    fake.stop()


@pytest.fixture
def connection(personas, salesforce, in_org):
    seed_org(salesforce)
    connection = sync.connection_create(
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
    run_sync(connection, make_connector(salesforce))
    return connection


def later() -> dt.datetime:
    """Return a SystemModstamp after the cursor a full sync just stored."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)


def incremental(connection, salesforce) -> SyncRun:
    return run_sync(connection, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)


def march_calls(member) -> int:
    scope = MetricScope(
        member_ids=[member.pk],
        start=dt.date(2024, 3, 1),
        end=dt.date(2024, 4, 1),
        time_zone=UTC,
    )
    return scorecards_by_member(scope)[member.pk].activities["call"]


def test_deleted_call_and_contact_are_removed(personas, salesforce, connection):
    # Task 00TA (a call on 1 March) is Rita's only call.
    assert march_calls(personas.rep1) == 1
    deleted_at = later()
    salesforce.delete("Task", "00TA", deleted_at)
    salesforce.delete("Contact", "003B", deleted_at)

    run = incremental(connection, salesforce)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert not Activity.objects.filter(external_id="00TA").exists()
    assert not Contact.objects.filter(external_id="003B").exists()
    assert march_calls(personas.rep1) == 0
    assert run.counts["calls"]["deleted"] == 1
    assert run.counts["contacts"]["deleted"] == 1
    # The email and the meeting of contact 003B stay, without their contact.
    links = dict(Activity.objects.values_list("external_id", "contact_id"))
    assert links == {"00TB": None, "00UA": None}
    deleted_queries = [q for q in salesforce.queries() if "IsDeleted = true" in q]
    assert any(
        "FROM Task" in q and "TaskSubtype = 'Call'" in q for q in deleted_queries
    )
    assert any("FROM Event" in q for q in deleted_queries)

    run = incremental(connection, salesforce)

    assert run.counts["calls"]["deleted"] == 0
    assert run.counts["contacts"]["deleted"] == 0
    assert AuditLog.objects.filter(action="crm.activity_deleted").count() == 1
    assert AuditLog.objects.filter(action="crm.contact_deleted").count() == 1


def test_deleted_account_no_longer_matches_leads(personas, salesforce, connection):
    globex = Account.objects.get(external_id="001A")
    lead = Lead(domain="globex.test", company="Globex")
    assert accounts_on_domain("globex.test") == [globex]
    assert account_for_lead(lead).account == globex
    salesforce.delete("Account", "001A", later())

    run = incremental(connection, salesforce)

    assert run.counts["companies"]["deleted"] == 1
    assert accounts_on_domain("globex.test") == []
    assert account_for_lead(lead) is None
    assert Deal.objects.get(external_id="006A").account is None


def test_merged_contact_hands_history_to_master(personas, salesforce, connection):
    loser = Contact.objects.get(external_id="003B")
    lead = Lead.objects.create(organization=personas.org, email="peggy@initech.test")
    qualification = LeadQualification.objects.create(
        organization=personas.org, lead=lead, known_contact=loser
    )
    master = Contact.objects.get(external_id="003A")

    salesforce.merge("Contact", "003A", "003B", later())
    run = incremental(connection, salesforce)

    assert not Contact.objects.filter(external_id="003B").exists()
    links = dict(Activity.objects.values_list("external_id", "contact_id"))
    # Salesforce moved the email and the meeting of 003B to 003A.
    assert links == {"00TA": master.pk, "00TB": master.pk, "00UA": master.pk}
    qualification.refresh_from_db()
    assert qualification.known_contact_id == master.pk
    assert run.counts["contacts"]["deleted"] == 1
    entry = AuditLog.objects.get(action="crm.contact_deleted")
    assert entry.new["merged_into"] == "003A"

    run = incremental(connection, salesforce)

    assert run.counts["contacts"]["deleted"] == 0


def test_deletion_touches_only_this_connections_rows(personas, salesforce, connection):
    imported = Contact.objects.create(
        organization=personas.org, external_source="csv", external_id="003B"
    )
    with tenant_context(personas.other_org):
        elsewhere = Contact.objects.create(
            organization=personas.other_org,
            external_source="salesforce",
            external_id="003B",
        )
    salesforce.delete("Contact", "003B", later())

    run = incremental(connection, salesforce)

    assert run.counts["contacts"]["deleted"] == 1
    assert list(
        Contact.objects.filter(external_id="003B").values_list("pk", flat=True)
    ) == [imported.pk]
    with tenant_context(personas.other_org):
        assert Contact.objects.filter(pk=elsewhere.pk).exists()
