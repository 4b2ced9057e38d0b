"""Deal field mappings applied to deals that a webhook event fetches.

Each provider's deal is synced first, with the mappings already stored, then
changed in the fake CRM and announced by a webhook. The mapped values must
arrive with the webhook, as they would with the next sync.
"""

import base64
import datetime as dt
import json
from decimal import Decimal

import pytest
from django.test import TestCase
from django.urls import reverse

from activity.models import Deal, DealProduct
from integrations import sync, webhooks
from integrations.models import WebhookEvent
from tests.integrations import fake_salesforce
from tests.integrations.conftest import SEEDED_AT, make_connector, run_sync, seed_portal
from tests.integrations.fake_pipedrive import FakePipedrive
from tests.integrations.fake_salesforce import FakeSalesforce
from tests.integrations.test_field_mappings_sync import map_fields, mapped_columns
from tests.integrations.test_webhooks_in import (
    PORTAL_ID,
    WEBHOOK_SECRET,
    hubspot_url,
    millis,
    post_hubspot,
)

CHANGED_AT = dt.datetime(2024, 3, 5, 10, 0, 5, tzinfo=dt.UTC)


def unfit_score_message(deal_id: str, crm_property: str) -> str:
    return (
        f"Deal {deal_id}: the value 'high' of CRM property {crm_property!r} is "
        "not a whole number, so the deal's lead score was left unchanged. "
        "Correct the value in the CRM or map another property."
    )


def only_event() -> WebhookEvent:
    return WebhookEvent.objects.get()


# HubSpot

HUBSPOT_MAPPINGS = {
    "dealtype": "deal_type",
    "customer_segment": "segment",
    "lead_rating": "lead_score",
    "product_name": "product",
}


def hubspot_event(event_id: int, name: str, value: str) -> dict:
    return {
        "eventId": event_id,
        "subscriptionId": 9,
        "portalId": PORTAL_ID,
        "appId": 7,
        "occurredAt": millis(CHANGED_AT),
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": 0,
        "objectId": 302,
        "propertyName": name,
        "propertyValue": value,
        "changeSource": "CRM_UI",
    }


@pytest.fixture
def hubspot_mapped(hubspot, clock, connection):
    """The seeded portal synced with the mappings, deal 302 scored 87."""
    seed_portal(hubspot)
    hubspot.update("deals", "302", modified_at=SEEDED_AT, lead_rating="87")
    map_fields(connection, HUBSPOT_MAPPINGS)
    run_sync(connection, make_connector(hubspot, clock))
    webhooks.webhook_settings_set(
        connection=connection, actor=None, secret=WEBHOOK_SECRET
    )
    return connection


def test_hubspot_webhook_sets_mapped_fields(client, hubspot, hubspot_mapped):
    hubspot.update(
        "deals",
        "302",
        modified_at=CHANGED_AT,
        dealtype="newbusiness",
        customer_segment="Mid-market",
        lead_rating="64",
        product_name="GTX Pro",
    )

    response = post_hubspot(
        client,
        hubspot_url(hubspot_mapped),
        [hubspot_event(1001, "dealtype", "newbusiness")],
    )

    assert response.status_code == 200
    event = only_event()
    assert event.status == WebhookEvent.Status.APPLIED
    assert event.message == ""
    assert mapped_columns()["302"] == ("newbusiness", "Mid-market", 64, None)
    line = DealProduct.objects.select_related("product").get(deal__external_id="302")
    assert line.product.name == "GTX Pro"
    assert line.amount == Decimal("2500.50")


def test_hubspot_webhook_unfit_value_reported(client, hubspot, hubspot_mapped):
    # The stage change makes the webhook replay the stage history, which
    # writes the deal twice, so the error must still be reported once.
    hubspot.update(
        "deals",
        "302",
        modified_at=CHANGED_AT,
        dealname="Initech rollout",
        dealstage="closedwon",
        customer_segment="SMB",
        lead_rating="high",
    )

    post_hubspot(
        client,
        hubspot_url(hubspot_mapped),
        [hubspot_event(1002, "dealstage", "closedwon")],
    )

    event = only_event()
    assert event.status == WebhookEvent.Status.APPLIED
    assert event.message == unfit_score_message("302", "lead_rating")
    assert mapped_columns()["302"] == ("", "SMB", 87, None)
    deal = Deal.objects.get(external_id="302")
    assert deal.name == "Initech rollout"
    assert deal.stage.external_id == "closedwon"


# Pipedrive

PIPEDRIVE_TOKEN = "pd-webhook-fields-token"
PIPEDRIVE_HOOK_USER = "attain"
PIPEDRIVE_HOOK_PASSWORD = "pipedrive-fields-hook-password"


@pytest.fixture
def pipedrive_mapped(personas, clock, in_org, loopback_allowed):
    """Deal 42 synced with its segment and lead rating fields mapped."""
    fake = FakePipedrive().start()
    fake.add_token(PIPEDRIVE_TOKEN, clock)
    fake.add_user(1, "rita.rep@acme.test", "Rita Rep")
    fake.add_pipeline(1, "Sales", [(11, "Qualified", 20), (12, "Proposal", 60)])
    segment = fake.add_deal_field("Customer segment")
    rating = fake.add_deal_field("Lead rating")
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
        **{segment["key"]: None, rating["key"]: "87"},
    )

    connection = sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="pipedrive",
        name="Pipedrive",
        base_url=fake.url,
        credentials={"api_token": PIPEDRIVE_TOKEN},
    )
    map_fields(connection, {segment["key"]: "segment", rating["key"]: "lead_score"})
    run_sync(connection, sync.connector_for(connection))

    webhooks.webhook_settings_set(
        connection=connection,
        actor=None,
        secret=PIPEDRIVE_HOOK_PASSWORD,
        username=PIPEDRIVE_HOOK_USER,
    )
    yield fake, connection, segment["key"], rating["key"]
    fake.stop()


def post_pipedrive_change(client, connection, event_id: str):
    meta = {
        "action": "change",
        "entity": "deal",
        "entity_id": "42",
        "id": event_id,
        "timestamp": "2024-03-05T10:00:05Z",
        "version": "2.0",
    }
    body = json.dumps({"meta": meta, "data": {"id": 42}})
    credentials = f"{PIPEDRIVE_HOOK_USER}:{PIPEDRIVE_HOOK_PASSWORD}".encode()
    url = reverse(
        "integrations-webhooks:pipedrive",
        kwargs={
            "organization_id": connection.organization.public_id,
            "connection_id": connection.public_id,
        },
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            url,
            data=body,
            content_type="application/json",
            headers={
                "Authorization": f"Basic {base64.b64encode(credentials).decode()}"
            },
        )


def test_pipedrive_webhook_sets_mapped_fields(client, pipedrive_mapped):
    fake, connection, segment_key, rating_key = pipedrive_mapped
    assert mapped_columns()["42"] == ("", "", 87, None)
    fake.update(
        "deal", 42, at=CHANGED_AT, **{segment_key: "Enterprise", rating_key: "64"}
    )

    response = post_pipedrive_change(client, connection, "pd-evt-1")

    assert response.status_code == 200
    event = only_event()
    assert event.status == WebhookEvent.Status.APPLIED
    assert event.message == ""
    assert mapped_columns()["42"] == ("", "Enterprise", 64, None)


def test_pipedrive_webhook_unfit_value_reported(client, pipedrive_mapped):
    fake, connection, segment_key, rating_key = pipedrive_mapped
    fake.update(
        "deal",
        42,
        at=CHANGED_AT,
        title="Acme expansion phase 2",
        stage_id=12,
        **{segment_key: "SMB", rating_key: "high"},
    )

    post_pipedrive_change(client, connection, "pd-evt-2")

    event = only_event()
    assert event.status == WebhookEvent.Status.APPLIED
    assert event.message == unfit_score_message("42", rating_key)
    assert mapped_columns()["42"] == ("", "SMB", 87, None)
    deal = Deal.objects.get(external_source="pipedrive", external_id="42")
    assert deal.name == "Acme expansion phase 2"
    assert deal.stage.external_id == "12"


# Salesforce

SF_CLIENT = ("sf-fields-hook-client", "sf-fields-hook-secret", "sf-fields-refresh")
SF_ORG_ID = "00D5g000004XyZaEAK"
SF_PATH_TOKEN = "salesforce-fields-path-token"
OPPORTUNITY_ID = "0065g00000XyZ12AAB"


@pytest.fixture
def salesforce_mapped(monkeypatch, personas, clock, in_org, loopback_allowed):
    """One opportunity synced with Segment__c and Lead_Rating__c mapped."""
    opportunity = fake_salesforce.SCHEMA["Opportunity"] | {
        "Segment__c",
        "Lead_Rating__c",
    }
    monkeypatch.setitem(fake_salesforce.SCHEMA, "Opportunity", opportunity)

    fake = FakeSalesforce(clock=clock).start()
    fake.add_client(*SF_CLIENT)
    fake.add_user("005R1", "rita.rep@acme.test", "Rita", "Rep")
    fake.add_stage("Prospecting", "Prospecting", probability=10)
    fake.add_stage("Closed Won", "Closed Won", closed=True, won=True, probability=100)
    fake.add(
        "Opportunity",
        OPPORTUNITY_ID,
        modstamp=SEEDED_AT,
        Name="Acme expansion",
        Amount=8000,
        StageName="Prospecting",
        CloseDate=dt.date(2024, 3, 5),
        OwnerId="005R1",
        Lead_Rating__c="87",
    )

    client_id, client_secret, refresh_token = SF_CLIENT
    connection = sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="salesforce",
        name="Salesforce",
        base_url=fake.url,
        credentials={
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        },
    )
    map_fields(connection, {"Segment__c": "segment", "Lead_Rating__c": "lead_score"})
    run_sync(connection, sync.connector_for(connection))

    webhooks.webhook_settings_set(
        connection=connection,
        actor=None,
        secret=SF_PATH_TOKEN,
        salesforce_organization_id=SF_ORG_ID,
    )
    yield fake, connection
    fake.stop()


def post_outbound_message(client, connection, notification_id: str):
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{SF_ORG_ID}</OrganizationId>
   <Notification>
    <Id>{notification_id}</Id>
    <sObject xsi:type="sf:Opportunity"
     xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{OPPORTUNITY_ID}</sf:Id>
     <sf:SystemModstamp>2024-03-05T10:00:05.000Z</sf:SystemModstamp>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"""
    url = reverse(
        "integrations-webhooks:salesforce",
        kwargs={
            "organization_id": connection.organization.public_id,
            "connection_id": connection.public_id,
            "token": SF_PATH_TOKEN,
        },
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(url, data=body.encode(), content_type="text/xml")


def test_salesforce_webhook_sets_mapped_fields(client, salesforce_mapped):
    fake, connection = salesforce_mapped
    assert mapped_columns()[OPPORTUNITY_ID] == ("", "", 87, None)
    fake.update(
        "Opportunity",
        OPPORTUNITY_ID,
        modstamp=CHANGED_AT,
        Segment__c="Enterprise",
        Lead_Rating__c="64",
    )

    response = post_outbound_message(client, connection, "04l5g00000FLD01AAA")

    assert response.status_code == 200
    event = only_event()
    assert event.status == WebhookEvent.Status.APPLIED
    assert event.message == ""
    assert mapped_columns()[OPPORTUNITY_ID] == ("", "Enterprise", 64, None)
    fetch = [q for q in fake.queries() if f"Id = '{OPPORTUNITY_ID}'" in q][-1]
    selected = fetch.split(" FROM ")[0].removeprefix("SELECT ").split(", ")
    assert "Segment__c" in selected
    assert "Lead_Rating__c" in selected


def test_salesforce_webhook_unfit_value_reported(client, salesforce_mapped):
    fake, connection = salesforce_mapped
    fake.update(
        "Opportunity",
        OPPORTUNITY_ID,
        modstamp=CHANGED_AT,
        Name="Acme expansion phase 2",
        StageName="Closed Won",
        Segment__c="SMB",
        Lead_Rating__c="high",
    )

    post_outbound_message(client, connection, "04l5g00000FLD02AAA")

    event = only_event()
    assert event.status == WebhookEvent.Status.APPLIED
    assert event.message == unfit_score_message(OPPORTUNITY_ID, "Lead_Rating__c")
    assert mapped_columns()[OPPORTUNITY_ID] == ("", "SMB", 87, None)
    deal = Deal.objects.get(external_source="salesforce")
    assert deal.name == "Acme expansion phase 2"
    assert deal.stage.external_id == "Closed Won"
