import datetime as dt

import pytest

from integrations import sync
from integrations.connectors.hubspot import HubSpotConnector
from integrations.connectors.ratelimit import RollingWindowLimiter
from integrations.models import SyncRun
from notifications.models import OutboundSettings
from spm.tenancy import tenant_context
from tests.integrations.fake_hubspot import FakeHubSpot, SimulatedClock

TOKEN = "pat-na1-0f3c9a1e-test-secret-token"
SEEDED_AT = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _credentials_key(monkeypatch):
    monkeypatch.setenv("ATTAIN_CREDENTIALS_KEY", "integration-tests-credentials-key")


@pytest.fixture
def loopback_allowed(settings, personas):
    """Let the organisation reach the fake CRM servers on http://127.0.0.1.

    A self-hosted install does the same with the admin setting for private
    addresses; http needs DEBUG.
    """
    settings.DEBUG = True
    with tenant_context(personas.org):
        OutboundSettings.objects.update_or_create(
            organization=personas.org, defaults={"allow_private_addresses": True}
        )


@pytest.fixture
def hubspot():
    fake = FakeHubSpot().start()
    yield fake
    fake.stop()


@pytest.fixture
def clock():
    return SimulatedClock()


@pytest.fixture
def connection(personas, hubspot, clock, in_org, loopback_allowed):
    hubspot.add_token(TOKEN, clock)
    return sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="hubspot",
        name="HubSpot",
        base_url=hubspot.url,
        credentials={"access_token": TOKEN},
    )


def make_connector(fake, clock, token=TOKEN, burst=(100, 10.0), search=(5, 1.0)):
    """Return a connector whose limiters and retries wait on the simulated clock."""
    return HubSpotConnector(
        base_url=fake.url,
        token=token,
        clock=clock,
        limiter=RollingWindowLimiter(*burst, clock),
        search_limiter=RollingWindowLimiter(*search, clock),
    )


def run_sync(connection, connector, kind=SyncRun.Kind.FULL) -> SyncRun:
    with tenant_context(connection.organization):
        run = sync.sync_run_create(connection=connection, kind=kind)
        return sync.sync_run_execute(run=run, connector=connector)


def seed_portal(fake) -> None:
    """Fill the fake with a small portal whose values the tests check by hand.

    Owners 1 and 2 are Rita (rep1) and Rob (rep2) of the ``personas`` org,
    owner 1 with her email in capitals. Owner 3 has no member in Attain.
    """
    fake.add_owner("1", "RITA.REP@ACME.TEST", "Rita", "Rep")
    fake.add_owner("2", "rob.rep@acme.test", "Rob", "Rep")
    fake.add_owner("3", "ghost@elsewhere.test", "Gus", "Ghost")
    fake.add_pipeline(
        "default",
        "Sales Pipeline",
        [
            ("appointmentscheduled", "Appointment Scheduled", False, "0.2"),
            ("contractsent", "Contract Sent", False, "0.9"),
            ("closedwon", "Closed Won", True, "1.0"),
            ("closedlost", "Closed Lost", True, "0.0"),
            ("renewal_won", "Renewal Won", True, "1.0"),
        ],
    )
    at = SEEDED_AT
    fake.add(
        "companies",
        "101",
        modified_at=at,
        name="Globex Ltd",
        domain="globex.test",
        industry="Energy",
        country="DE",
        hubspot_owner_id="1",
    )
    fake.add(
        "companies",
        "102",
        modified_at=at,
        name="Initech",
        domain="initech.test",
        industry="Software",
        country="US",
        hubspot_owner_id="2",
    )
    fake.add(
        "companies",
        "103",
        modified_at=at,
        name="",
        domain="umbrella.test",
        hubspot_owner_id="3",
    )
    fake.add(
        "contacts",
        "201",
        modified_at=at,
        firstname="Hank",
        lastname="Hill",
        email="hank@globex.test",
        phone="+49 30 1234",
        jobtitle="CFO",
        associatedcompanyid="101",
        hubspot_owner_id="1",
        createdate="2024-01-15T08:00:00.000Z",
    )
    fake.add(
        "contacts",
        "202",
        modified_at=at,
        firstname="Peggy",
        lastname="Gibbons",
        email="peggy@initech.test",
        associatedcompanyid="102",
        hubspot_owner_id="2",
        createdate="2024-02-01T08:00:00.000Z",
    )
    deals = [
        (
            "301",
            "Globex renewal",
            "10000",
            "closedwon",
            "2024-03-10T00:00:00.000Z",
            "1",
            "101",
        ),
        (
            "302",
            "Initech pilot",
            "2500.50",
            "contractsent",
            "2024-04-20T00:00:00.000Z",
            "2",
            "102",
        ),
        (
            "303",
            "Umbrella lost",
            "4000",
            "closedlost",
            "2024-03-05T00:00:00.000Z",
            "2",
            None,
        ),
        (
            "304",
            "Globex add-on",
            "1200",
            "renewal_won",
            "2024-03-28T23:30:00.000Z",
            "1",
            "101",
        ),
        ("305", "Ghost deal", "700", "appointmentscheduled", None, "3", None),
    ]
    for deal_id, name, amount, stage, close, owner, company in deals:
        fake.add(
            "deals",
            deal_id,
            modified_at=at,
            dealname=name,
            amount=amount,
            deal_currency_code="EUR",
            pipeline="default",
            dealstage=stage,
            closedate=close,
            createdate="2024-02-01T10:00:00.000Z",
            hubspot_owner_id=owner,
            associations={"companies": [company]} if company else None,
        )
    fake.add(
        "calls",
        "401",
        modified_at=at,
        hs_call_title="Discovery call",
        hs_timestamp="2024-03-01T10:00:00.000Z",
        hubspot_owner_id="1",
    )
    fake.add(
        "calls",
        "402",
        modified_at=at,
        hs_call_title="Follow-up",
        hs_timestamp="2024-03-02T10:00:00.000Z",
        hubspot_owner_id="2",
    )
    fake.add(
        "emails",
        "501",
        modified_at=at,
        hs_email_subject="Proposal",
        hs_timestamp="2024-03-03T10:00:00.000Z",
        hubspot_owner_id="1",
    )
    fake.add(
        "meetings",
        "601",
        modified_at=at,
        hs_meeting_title="Onsite demo",
        hs_timestamp="2024-03-04T10:00:00.000Z",
        hubspot_owner_id="2",
    )
