"""Pipedrive persons and organizations that the CRM deleted or merged.

Pipedrive's v1 API lists no deleted persons, organizations or activities, so
a sync removes none of them. Deletion webhooks of persons and organizations
do, and a merge moves the merged person's activities to the survivor.
"""

import datetime as dt
import json

import pytest

from activity.models import Account, Activity, Contact, Deal, Lead
from integrations import sync, webhooks
from integrations.models import SyncRun
from routing.engine.accounts import account_for_lead
from spm.models import AuditLog
from tests.integrations.fake_hubspot import SimulatedClock
from tests.integrations.fake_pipedrive import FakePipedrive
from tests.integrations.test_sync_pipedrive import (
    API_TOKEN,
    LIMIT,
    make_connector,
    run_sync,
    seed_company,
)


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


def later() -> dt.datetime:
    """Return an update time after the cursor a full sync just stored."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)


def deletion(request_id: str, kind: str, object_id: int) -> bytes:
    """Return a v1 ``deleted.<kind>`` webhook body, which has only the previous data."""
    meta = {
        "action": "deleted",
        "object": kind,
        "id": object_id,
        "request_id": request_id,
        "timestamp": int(later().timestamp()),
        "v": 1,
    }
    return json.dumps(
        {"meta": meta, "current": None, "previous": {"id": object_id}}
    ).encode()


def apply(connection, body: bytes) -> str:
    event = webhooks.parse_pipedrive(body)
    stored, _ = webhooks.events_store(connection=connection, events=[event])
    return webhooks.webhook_event_apply(event_pk=stored[0].pk)


def test_merged_person_activities_point_at_survivor(pipedrive, clock, connection):
    seed_company(pipedrive)
    pipedrive.add(
        "activity",
        406,
        type="call",
        subject="Intro call",
        due_date="2024-03-07",
        user_id=1,
        person_id=201,
    )
    run_sync(connection, make_connector(pipedrive, clock))
    assert Activity.objects.get(external_id="406").contact.external_id == "201"

    pipedrive.merge("person", 201, 202, later())
    run = run_sync(
        connection, make_connector(pipedrive, clock), SyncRun.Kind.INCREMENTAL
    )

    survivor = Contact.objects.get(external_id="202")
    assert Activity.objects.get(external_id="406").contact == survivor
    assert run.counts["calls"]["updated"] == 1
    # The v1 API lists no deleted persons, so the merged one stays.
    assert run.counts["contacts"]["deleted"] == 0


def test_deletion_webhooks_remove_person_and_organization(pipedrive, clock, connection):
    seed_company(pipedrive)
    run_sync(connection, make_connector(pipedrive, clock))
    lead = Lead(company="Globex Ltd")
    assert account_for_lead(lead).account.external_id == "101"
    pipedrive.delete("person", 201, later())
    pipedrive.delete("organization", 101, later())

    statuses = [
        apply(connection, deletion("req-1", "person", 201)),
        apply(connection, deletion("req-2", "organization", 101)),
        apply(connection, deletion("req-3", "activity", 401)),
    ]

    assert statuses == ["applied", "applied", "ignored"]
    assert not Contact.objects.filter(external_id="201").exists()
    assert not Account.objects.filter(external_id="101").exists()
    assert account_for_lead(lead) is None
    assert Deal.objects.get(external_id="301").account is None
    # Activities have no webhook mapping yet.
    assert Activity.objects.filter(external_id="401").exists()
    assert AuditLog.objects.filter(action="crm.contact_deleted").count() == 1
    assert AuditLog.objects.filter(action="crm.company_deleted").count() == 1
