"""Priority mode for Salesforce: the budget is the usage Sforce-Limit-Info reports.

The fake org reports ``api-usage=used/limit`` on every API response, and
``used`` counts this sync's requests as well as the ones set on the fake
for other integrations. With less than 20% of the limit left, a run syncs
owners and the changed opportunities and leads only.
"""

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from activity.models import Activity, Deal
from integrations import api_usage, selectors, sync
from integrations.models import SyncCursor, SyncRun
from tests.conftest import login
from tests.integrations.fake_hubspot import SimulatedClock
from tests.integrations.fake_salesforce import FakeSalesforce
from tests.integrations.test_sync_salesforce import (
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    assert_mirrors,
    make_connector,
    run_sync,
    seed_org,
)

DEFERRED_ALL = [
    "companies",
    "contacts",
    "calls",
    "emails",
    "meetings",
    "archived deals",
    "deleted leads",
    "deleted companies",
    "deleted contacts",
    "deleted calls",
    "deleted emails",
    "deleted meetings",
]


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
def synced(personas, salesforce, in_org):
    """The seeded org after one full sync with plenty of budget."""
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
    run = run_sync(connection, make_connector(salesforce))
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.priority_mode is False
    return connection


def change_deal_and_add_task(salesforce) -> None:
    changed_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(
        minutes=1
    )
    # Rob takes over Initech pilot from Rita and wins it.
    salesforce.update(
        "Opportunity",
        "006B",
        modstamp=changed_at,
        OwnerId="005R1",
        StageName="Closed Won",
    )
    salesforce.add(
        "Task",
        "00TN",
        modstamp=changed_at,
        Subject="Kick-off call",
        TaskSubtype="Call",
        CompletedDateTime=changed_at,
        OwnerId="005R1",
    )


def low_budget(salesforce) -> None:
    # Other integrations used 80 of 100. Users (81) and stages (82) leave 18,
    # under 20 of 100, before the run's first object type.
    salesforce.api_limit = 100
    salesforce.api_used = 80


def cursor_keysets(connection) -> dict:
    return {
        c.object_type: (c.modified_at, c.record_id)
        for c in SyncCursor.objects.filter(connection=connection)
    }


def test_low_budget_defers_task(personas, salesforce, synced):
    change_deal_and_add_task(salesforce)
    low_budget(salesforce)
    before = cursor_keysets(synced)

    run = run_sync(synced, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.priority_mode is True
    assert run.deferred_object_types == DEFERRED_ALL
    deal = Deal.objects.select_related("stage").get(external_id="006B")
    assert deal.owner == personas.rep1
    assert deal.stage.external_id == "Closed Won"
    assert not Activity.objects.filter(external_id="00TN").exists()
    # Opportunities (83) with their history (84), and leads (85); no listing
    # of tasks, events, contacts, accounts or deleted records.
    assert salesforce.api_used == 85
    queried = " ".join(salesforce.queries()[-5:])
    for sobject in ("FROM Task", "FROM Event", "FROM Contact", "FROM Account"):
        assert sobject not in queried
    after = cursor_keysets(synced)
    for object_type in ("companies", "contacts", "calls", "emails", "meetings"):
        assert after[object_type] == before[object_type]
    assert after["deals"] != before["deals"]
    assert selectors.daily_budget(synced) == api_usage.DailyBudget(
        used=85, limit=100, stop_share=0.9
    )

    # Budget restored: the next run lists the deferred types from their
    # cursors, and the task arrives.
    salesforce.api_limit = 15_000
    run = run_sync(synced, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.priority_mode is False
    assert run.deferred_object_types == []
    assert Activity.objects.get(external_id="00TN").subject == "Kick-off call"
    assert_mirrors(salesforce, personas)


def test_enough_budget_is_not_priority_mode(salesforce, synced):
    change_deal_and_add_task(salesforce)
    # The run's own requests count too: it ends at 77 of 100, leaving 23.
    salesforce.api_limit = 100
    salesforce.api_used = 60

    run = run_sync(synced, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)

    assert salesforce.api_used == 77
    assert run.priority_mode is False
    assert Activity.objects.filter(external_id="00TN").exists()


def test_page_shows_deferred_types_and_reported_usage(
    personas, salesforce, synced, django_assert_max_num_queries
):
    change_deal_and_add_task(salesforce)
    low_budget(salesforce)
    run_sync(synced, make_connector(salesforce), SyncRun.Kind.INCREMENTAL)
    reported = api_usage.reported_usage(synced.pk)
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
        "calls, emails, meetings, archived deals, deleted leads, deleted "
        "companies, deleted contacts, deleted calls, deleted emails, deleted "
        "meetings."
    )
    assert html.count(message) == 2
    assert (reported.used, reported.limit) == (85, 100)
    row = html[html.index('id="budget-reported"') :]
    row = row[: row.index("</tr>")]
    assert "<td>85</td><td>100</td>" in row
    assert "85%" in row
    assert "(as of " in row
