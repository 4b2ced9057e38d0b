"""CRM webhooks in: verification, deduplication, ordering and the targeted fetch."""

import base64
import datetime as dt
import json
import logging
import time

import pytest
from django.test import TestCase
from django.urls import reverse

from activity.models import Deal, DealStageChange, Stage
from followups.models import Enrollment, Sequence
from integrations import sync, webhooks
from integrations.connectors.pipedrive import PipedriveConnector
from integrations.connectors.ratelimit import RollingWindowLimiter
from integrations.models import WebhookEvent
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.followups.conftest import make_sequence
from tests.integrations.conftest import SEEDED_AT, make_connector, run_sync, seed_portal
from tests.integrations.fake_pipedrive import FakePipedrive
from tests.integrations.fake_salesforce import FakeSalesforce

WEBHOOK_SECRET = "hubspot-client-secret-for-tests"
PORTAL_ID = 62515
C30_DAY = dt.datetime(2024, 3, 5, tzinfo=dt.UTC)
AT_10_00_01 = C30_DAY.replace(hour=10, second=1)
AT_10_00_05 = C30_DAY.replace(hour=10, second=5)


def millis(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def stage_event(event_id, occurred_at, value, attempt, object_id=42) -> dict:
    return {
        "eventId": event_id,
        "subscriptionId": 9,
        "portalId": PORTAL_ID,
        "appId": 7,
        "occurredAt": millis(occurred_at),
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": attempt,
        "objectId": object_id,
        "propertyName": "dealstage",
        "propertyValue": value,
        "changeSource": "CRM_UI",
    }


def hubspot_url(connection, organization=None) -> str:
    organization = organization or connection.organization
    return reverse(
        "integrations-webhooks:hubspot",
        kwargs={
            "organization_id": organization.public_id,
            "connection_id": connection.public_id,
        },
    )


def post_hubspot(
    client, url, events, *, secret=WEBHOOK_SECRET, sent_at_ms=None, apply=True
):
    """Post ``events`` signed the way HubSpot signs v3 webhook requests.

    With ``apply`` the apply tasks queued on commit run eagerly, as a worker
    would run them after the commit. Without it they are left for the caller.
    """
    body = json.dumps(events).encode()
    timestamp = str(sent_at_ms if sent_at_ms is not None else int(time.time() * 1000))
    signature = webhooks.hubspot_signature(
        secret, "POST", "http://testserver" + url, body, timestamp
    )
    headers = {
        "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": timestamp,
    }
    if not apply:
        return client.post(
            url, data=body, content_type="application/json", headers=headers
        )
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            url, data=body, content_type="application/json", headers=headers
        )


@pytest.fixture
def hubspot_hooks(connection):
    webhooks.webhook_settings_set(
        connection=connection, actor=None, secret=WEBHOOK_SECRET
    )
    return connection


@pytest.fixture
def synced_deal_42(personas, hubspot, clock, hubspot_hooks):
    """Deal 42 of Rita in Appointment Scheduled, synced at SEEDED_AT."""
    seed_portal(hubspot)
    hubspot.add(
        "deals",
        "42",
        modified_at=SEEDED_AT,
        dealname="Acme expansion",
        amount="8000",
        deal_currency_code="EUR",
        pipeline="default",
        dealstage="appointmentscheduled",
        closedate="2024-03-05T00:00:00.000Z",
        createdate="2024-02-01T10:00:00.000Z",
        hubspot_owner_id="1",
    )
    run_sync(hubspot_hooks, make_connector(hubspot, clock))
    return Deal.objects.get(external_source="hubspot", external_id="42")


def stage_changes(deal) -> list[tuple]:
    return list(
        DealStageChange.objects.filter(deal=deal)
        .order_by("changed_at", "id")
        .values_list("from_stage__external_id", "to_stage__external_id", "changed_at")
    )


# Hard case: duplicates and out-of-order delivery


def test_out_of_order_and_duplicate_stage_events(
    client, personas, hubspot, hubspot_hooks, synced_deal_42
):
    closed_won = Stage.objects.get(external_source="hubspot", external_id="closedwon")
    won_sequence = make_sequence(
        personas.org,
        [(1, "days", "task")],
        name="Deal won hand-off",
        trigger=Sequence.Trigger.DEAL_ENTERS_STAGE,
        trigger_stage=closed_won,
    )
    hubspot.update("deals", "42", modified_at=AT_10_00_01, dealstage="contractsent")
    hubspot.update("deals", "42", modified_at=AT_10_00_05, dealstage="closedwon")
    url = hubspot_url(hubspot_hooks)

    first = post_hubspot(client, url, [stage_event(501, AT_10_00_05, "closedwon", 0)])
    second = post_hubspot(
        client, url, [stage_event(500, AT_10_00_01, "contractsent", 0)]
    )
    third = post_hubspot(client, url, [stage_event(501, AT_10_00_05, "closedwon", 1)])

    assert first.status_code == 200
    assert first.json() == {"received": 1, "duplicate": 0}
    assert second.status_code == 200
    assert second.json() == {"received": 1, "duplicate": 0}
    assert third.status_code == 200
    assert third.json()["duplicate"] == 1
    deal = Deal.objects.get(pk=synced_deal_42.pk)
    assert deal.stage.external_id == "closedwon"
    assert stage_changes(deal) == [
        (None, "appointmentscheduled", SEEDED_AT),
        ("appointmentscheduled", "contractsent", AT_10_00_01),
        ("contractsent", "closedwon", AT_10_00_05),
    ]
    assert deal.stage_changed_at == AT_10_00_05
    won_enrollments = Enrollment.objects.filter(sequence=won_sequence, deal=deal)
    assert won_enrollments.count() == 1
    events = dict(WebhookEvent.objects.values_list("event_id", "status").order_by("id"))
    assert events == {"501": "applied", "500": "stale"}


# HubSpot signature


def test_hubspot_valid_signature_writes_record(
    client, hubspot, hubspot_hooks, synced_deal_42
):
    hubspot.update("deals", "42", modified_at=AT_10_00_05, dealstage="closedlost")

    response = post_hubspot(
        client,
        hubspot_url(hubspot_hooks),
        [stage_event(700, AT_10_00_05, "closedlost", 0)],
    )

    assert response.status_code == 200
    assert response.json() == {"received": 1, "duplicate": 0}
    assert WebhookEvent.objects.get().status == "applied"
    deal = Deal.objects.get(pk=synced_deal_42.pk)
    assert deal.stage.external_id == "closedlost"
    assert stage_changes(deal)[-1] == (
        "appointmentscheduled",
        "closedlost",
        AT_10_00_05,
    )


def test_hubspot_invalid_signature_rejected(
    client,
    caplog,
    hubspot,
    hubspot_hooks,
    synced_deal_42,
    django_assert_max_num_queries,
):
    hubspot.update("deals", "42", modified_at=AT_10_00_05, dealstage="closedlost")
    caplog.set_level(logging.WARNING, logger="integrations.views_webhooks")

    with django_assert_max_num_queries(3):
        response = post_hubspot(
            client,
            hubspot_url(hubspot_hooks),
            [stage_event(700, AT_10_00_05, "closedlost", 0)],
            secret="not-the-client-secret",
        )

    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0
    deal = Deal.objects.get(pk=synced_deal_42.pk)
    assert deal.stage.external_id == "appointmentscheduled"
    assert "invalid X-HubSpot-Signature-v3" in caplog.text
    assert WEBHOOK_SECRET not in caplog.text


def test_hubspot_expired_timestamp_rejected(client, caplog, hubspot_hooks):
    caplog.set_level(logging.WARNING, logger="integrations.views_webhooks")
    six_minutes_ago = int(time.time() * 1000) - 6 * 60 * 1000

    response = post_hubspot(
        client,
        hubspot_url(hubspot_hooks),
        [stage_event(700, AT_10_00_05, "closedlost", 0)],
        sent_at_ms=six_minutes_ago,
    )

    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0
    assert "is too old" in caplog.text


def test_hubspot_missing_signature_rejected(client, hubspot_hooks):
    response = client.post(
        hubspot_url(hubspot_hooks),
        data=json.dumps([stage_event(700, AT_10_00_05, "closedlost", 0)]),
        content_type="application/json",
    )

    assert response.status_code == 401


def test_hubspot_get_not_allowed(client, hubspot_hooks):
    assert client.get(hubspot_url(hubspot_hooks)).status_code == 405


# Deduplication


def test_duplicate_delivery_changes_nothing(
    client, hubspot, hubspot_hooks, synced_deal_42
):
    hubspot.update("deals", "42", modified_at=AT_10_00_05, dealstage="contractsent")
    url = hubspot_url(hubspot_hooks)
    event = stage_event(800, AT_10_00_05, "contractsent", 0)
    post_hubspot(client, url, [event])
    deal_before = Deal.objects.values().get(pk=synced_deal_42.pk)
    changes_before = stage_changes(synced_deal_42)
    events_before = list(WebhookEvent.objects.values())
    fetches_before = len(hubspot.requests())

    again = post_hubspot(client, url, [{**event, "attemptNumber": 1}])

    assert again.status_code == 200
    assert again.json() == {"received": 0, "duplicate": 1}
    assert Deal.objects.values().get(pk=synced_deal_42.pk) == deal_before
    assert stage_changes(synced_deal_42) == changes_before
    assert list(WebhookEvent.objects.values()) == events_before
    assert len(hubspot.requests()) == fetches_before


# Tenancy


def test_other_organisations_connection_is_404(client, personas, hubspot_hooks):
    with tenant_context(personas.other_org):
        other = sync.connection_create(
            organization=personas.other_org,
            actor=None,
            provider="hubspot",
            name="Globex HubSpot",
            base_url="http://127.0.0.1:9/",
            credentials={"access_token": "globex-token"},
        )
        webhooks.webhook_settings_set(
            connection=other, actor=None, secret=WEBHOOK_SECRET
        )
    url = hubspot_url(other, organization=personas.org)

    response = post_hubspot(
        client, url, [stage_event(900, AT_10_00_05, "closedwon", 0)]
    )

    assert response.status_code == 404
    assert WebhookEvent.unscoped.count() == 0


def test_provider_mismatch_is_404(client, personas, hubspot_hooks):
    url = reverse(
        "integrations-webhooks:pipedrive",
        kwargs={
            "organization_id": personas.org.public_id,
            "connection_id": hubspot_hooks.public_id,
        },
    )

    assert (
        client.post(url, data="{}", content_type="application/json").status_code == 404
    )


# Settings


def test_webhook_settings_audited_without_secret(personas, hubspot_hooks):
    entry = AuditLog.objects.filter(action="crm.webhook_settings_changed").get()

    assert entry.new == {"changed": ["webhook_secret"]}
    assert WEBHOOK_SECRET not in json.dumps([entry.old, entry.new])
    assert hubspot_hooks.credentials["webhook_secret"] == WEBHOOK_SECRET
    assert WEBHOOK_SECRET not in hubspot_hooks.credentials_encrypted


def test_generated_secret_is_long_and_random(hubspot_hooks):
    first = webhooks.webhook_settings_set(connection=hubspot_hooks, actor=None)
    second = webhooks.webhook_settings_set(connection=hubspot_hooks, actor=None)

    assert len(first) >= 40
    assert first != second
    hubspot_hooks.refresh_from_db()
    assert hubspot_hooks.credentials["webhook_secret"] == second


# Pipedrive


@pytest.fixture
def pipedrive_hooks(personas, in_org, loopback_allowed):
    connection = sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="pipedrive",
        name="Pipedrive",
        base_url="http://127.0.0.1:9/api",
        credentials={"api_token": "pipedrive-api-token"},
    )
    webhooks.webhook_settings_set(
        connection=connection,
        actor=None,
        secret="pipedrive-hook-password",
        username="attain",
    )
    return connection


def pipedrive_url(connection) -> str:
    return reverse(
        "integrations-webhooks:pipedrive",
        kwargs={
            "organization_id": connection.organization.public_id,
            "connection_id": connection.public_id,
        },
    )


PIPEDRIVE_BODY = json.dumps(
    {
        "meta": {
            "action": "change",
            "entity": "deal",
            "entity_id": "42",
            "id": "2f7c6c1e-0a35-4d7b-9a43-5b0f6f0f1a11",
            "timestamp": "2024-03-05T10:00:05Z",
            "version": "2.0",
        },
        "data": {"id": 42, "stage_id": 3},
    }
)


@pytest.mark.parametrize(
    "credentials",
    ["attain:wrong-password", "intruder:pipedrive-hook-password", "attain:"],
)
def test_pipedrive_bad_basic_auth_rejected(
    client, caplog, pipedrive_hooks, credentials
):
    caplog.set_level(logging.WARNING, logger="integrations.views_webhooks")
    encoded = base64.b64encode(credentials.encode()).decode()

    response = client.post(
        pipedrive_url(pipedrive_hooks),
        data=PIPEDRIVE_BODY,
        content_type="application/json",
        headers={"Authorization": f"Basic {encoded}"},
    )

    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0
    assert "invalid HTTP Basic credentials" in caplog.text
    assert "pipedrive-hook-password" not in caplog.text


PIPEDRIVE_TOKEN = "pd-webhook-test-api-token"


@pytest.fixture
def pipedrive_synced(personas, clock, in_org, loopback_allowed):
    """A Pipedrive connection with webhook credentials, deal 42 synced in Qualified."""
    fake = FakePipedrive().start()
    fake.add_token(PIPEDRIVE_TOKEN, clock)
    fake.add_user(1, "rita.rep@acme.test", "Rita Rep")
    fake.add_pipeline(1, "Sales", [(11, "Qualified", 20), (12, "Proposal", 60)])
    fake.add(
        "deal",
        42,
        at=SEEDED_AT,
        title="Acme expansion",
        value=8000,
        status="open",
        pipeline_id=1,
        stage_id=11,
        user_id=1,
        org_id=None,
    )

    connection = sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="pipedrive",
        name="Pipedrive",
        base_url=fake.url,
        credentials={"api_token": PIPEDRIVE_TOKEN},
    )
    webhooks.webhook_settings_set(
        connection=connection,
        actor=None,
        secret="pipedrive-hook-password",
        username="attain",
    )

    connector = PipedriveConnector(
        base_url=fake.url,
        api_token=PIPEDRIVE_TOKEN,
        clock=clock,
        limiter=RollingWindowLimiter(20, 2.0, clock),
    )
    run_sync(connection, connector)
    yield fake, connection
    fake.stop()


def pipedrive_change(event_id: str, timestamp: str) -> str:
    meta = {
        "action": "change",
        "entity": "deal",
        "entity_id": "42",
        "id": event_id,
        "timestamp": timestamp,
        "version": "2.0",
    }
    return json.dumps({"meta": meta, "data": {"id": 42}})


def post_pipedrive(client, connection, body: str):
    encoded = base64.b64encode(b"attain:pipedrive-hook-password").decode()
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            pipedrive_url(connection),
            data=body,
            content_type="application/json",
            headers={"Authorization": f"Basic {encoded}"},
        )


def test_pipedrive_change_applied_once(client, pipedrive_synced):
    fake, connection = pipedrive_synced
    fake.update("deal", 42, at=AT_10_00_05, stage_id=12)
    change = pipedrive_change("evt-2", "2024-03-05T10:00:05Z")
    older = pipedrive_change("evt-1", "2024-03-05T10:00:01Z")

    first = post_pipedrive(client, connection, change)
    repeated = post_pipedrive(client, connection, change)
    late = post_pipedrive(client, connection, older)

    assert first.status_code == 200
    assert first.json() == {"received": 1, "duplicate": 0}
    assert repeated.json() == {"received": 0, "duplicate": 1}
    assert late.json() == {"received": 1, "duplicate": 0}
    statuses = dict(WebhookEvent.objects.values_list("event_id", "status"))
    assert statuses == {"evt-2": "applied", "evt-1": "stale"}
    deal = Deal.objects.get(external_source="pipedrive", external_id="42")
    assert deal.stage.external_id == "12"
    assert stage_changes(deal) == [
        (None, "11", SEEDED_AT),
        ("11", "12", AT_10_00_05),
    ]


def test_pipedrive_missing_auth_rejected(client, pipedrive_hooks):
    response = client.post(
        pipedrive_url(pipedrive_hooks),
        data=PIPEDRIVE_BODY,
        content_type="application/json",
    )

    assert response.status_code == 401


def test_pipedrive_payload_parsed():
    event = webhooks.parse_pipedrive(PIPEDRIVE_BODY.encode())

    assert event.object_type == "deals"
    assert event.object_id == "42"
    assert event.event_id == "2f7c6c1e-0a35-4d7b-9a43-5b0f6f0f1a11"
    assert event.occurred_at == AT_10_00_05


# Salesforce

SALESFORCE_ORG_ID = "00D5g000004XyZaEAK"


def outbound_message(org_id: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org_id}</OrganizationId>
   <ActionId>04k5g000000AbcdAAC</ActionId>
   <Notification>
    <Id>04l5g00000ABCDEAA4</Id>
    <sObject xsi:type="sf:Opportunity"
     xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>0065g00000XyZ12AAB</sf:Id>
     <sf:StageName>Closed Won</sf:StageName>
     <sf:SystemModstamp>2024-03-05T10:00:05.000Z</sf:SystemModstamp>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>""".encode()


@pytest.fixture
def salesforce_hooks(personas, in_org, loopback_allowed):
    connection = sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="salesforce",
        name="Salesforce",
        base_url="http://127.0.0.1:9/",
        credentials={"client_id": "id", "client_secret": "s", "refresh_token": "r"},
    )
    webhooks.webhook_settings_set(
        connection=connection,
        actor=None,
        secret="salesforce-path-token",
        salesforce_organization_id=SALESFORCE_ORG_ID,
    )
    return connection


def salesforce_url(connection, token="salesforce-path-token") -> str:
    return reverse(
        "integrations-webhooks:salesforce",
        kwargs={
            "organization_id": connection.organization.public_id,
            "connection_id": connection.public_id,
            "token": token,
        },
    )


@pytest.fixture
def salesforce_synced(personas, clock, in_org, loopback_allowed):
    """A Salesforce connection with webhook settings and one synced opportunity."""
    fake = FakeSalesforce(clock=clock).start()
    fake.add_client("sf-client", "sf-client-secret", "sf-refresh-token")
    fake.add_user("005R1", "rita.rep@acme.test", "Rita", "Rep")
    fake.add_stage("Prospecting", "Prospecting", probability=10)
    fake.add_stage("Closed Won", "Closed Won", closed=True, won=True, probability=100)
    fake.add(
        "Opportunity",
        "0065g00000XyZ12AAB",
        modstamp=SEEDED_AT,
        Name="Acme expansion",
        Amount=8000,
        StageName="Prospecting",
        CloseDate=dt.date(2024, 3, 5),
        OwnerId="005R1",
        CreatedDate=SEEDED_AT,
    )

    connection = sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="salesforce",
        name="Salesforce",
        base_url=fake.url,
        credentials={
            "client_id": "sf-client",
            "client_secret": "sf-client-secret",
            "refresh_token": "sf-refresh-token",
        },
    )
    webhooks.webhook_settings_set(
        connection=connection,
        actor=None,
        secret="salesforce-path-token",
        salesforce_organization_id=SALESFORCE_ORG_ID,
    )

    run_sync(connection, sync.connector_for(connection))
    yield fake, connection
    fake.stop()


def test_salesforce_message_applied_and_acknowledged(client, salesforce_synced):
    fake, connection = salesforce_synced
    fake.update(
        "Opportunity",
        "0065g00000XyZ12AAB",
        modstamp=AT_10_00_05,
        StageName="Closed Won",
    )
    url = salesforce_url(connection)

    with TestCase.captureOnCommitCallbacks(execute=True):
        first = client.post(
            url, data=outbound_message(SALESFORCE_ORG_ID), content_type="text/xml"
        )
    with TestCase.captureOnCommitCallbacks(execute=True):
        repeated = client.post(
            url, data=outbound_message(SALESFORCE_ORG_ID), content_type="text/xml"
        )

    assert first.status_code == 200
    assert b"<Ack>true</Ack>" in first.content
    assert repeated.status_code == 200
    assert b"<Ack>true</Ack>" in repeated.content
    deal = Deal.objects.get(external_source="salesforce")
    assert deal.stage.external_id == "Closed Won"
    assert stage_changes(deal) == [
        (None, "Prospecting", SEEDED_AT),
        ("Prospecting", "Closed Won", AT_10_00_05),
    ]
    statuses = list(WebhookEvent.objects.values_list("event_id", "status"))
    assert statuses == [("04l5g00000ABCDEAA4", "applied")]


def test_salesforce_wrong_organization_id_rejected(client, caplog, salesforce_hooks):
    caplog.set_level(logging.WARNING, logger="integrations.views_webhooks")

    response = client.post(
        salesforce_url(salesforce_hooks),
        data=outbound_message("00D000000000001EAA"),
        content_type="text/xml",
    )

    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0
    assert "unexpected OrganizationId '00D000000000001EAA'" in caplog.text
    assert "salesforce-path-token" not in caplog.text


def test_salesforce_wrong_token_rejected(client, caplog, salesforce_hooks):
    caplog.set_level(logging.WARNING, logger="integrations.views_webhooks")

    response = client.post(
        salesforce_url(salesforce_hooks, token="guessed-token"),
        data=outbound_message(SALESFORCE_ORG_ID),
        content_type="text/xml",
    )

    assert response.status_code == 401
    assert "guessed-token" not in caplog.text
    assert "salesforce-path-token" not in caplog.text


def test_salesforce_message_parsed():
    org_id, events = webhooks.parse_salesforce(outbound_message(SALESFORCE_ORG_ID))

    assert org_id == SALESFORCE_ORG_ID
    assert len(events) == 1
    assert events[0].event_id == "04l5g00000ABCDEAA4"
    assert events[0].object_type == "deals"
    assert events[0].object_id == "0065g00000XyZ12AAB"
    assert events[0].occurred_at == AT_10_00_05


def test_salesforce_doctype_rejected():
    body = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'

    with pytest.raises(webhooks.InvalidPayload, match="DOCTYPE"):
        webhooks.parse_salesforce(body)


def test_salesforce_unknown_connection_path_not_logged(client, caplog, personas):
    caplog.set_level(logging.WARNING)
    url = reverse(
        "integrations-webhooks:salesforce",
        kwargs={
            "organization_id": personas.org.public_id,
            "connection_id": "00000000-0000-0000-0000-000000000000",
            "token": "salesforce-path-token",
        },
    )

    response = client.post(url, data=b"", content_type="text/xml")

    assert response.status_code == 404
    assert "salesforce-path-token" not in caplog.text
