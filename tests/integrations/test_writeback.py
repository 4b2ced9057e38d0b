"""Write-back of routing assignments to HubSpot, against the fake on 127.0.0.1."""

import datetime as dt
import logging

import pytest

from activity.models import Lead
from integrations import writeback
from integrations.models import CrmConnection, OwnerMapping
from routing import services as routing_services
from routing.models import Assignment
from spm.models import AuditLog
from tests.integrations.conftest import TOKEN, make_connector
from tests.routing.conftest import make_pool, pending_lead, publish_pool

ROUTED_AT = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
EMAIL = "dana@initech.test"


@pytest.fixture
def mapped(personas, connection):
    """Map HubSpot owner 1 to Rita (rep1) and owner 2 to Rob (rep2)."""
    OwnerMapping.objects.create(
        connection=connection, owner_id="1", name="Rita Rep", membership=personas.rep1
    )
    OwnerMapping.objects.create(
        connection=connection, owner_id="2", name="Rob Rep", membership=personas.rep2
    )
    OwnerMapping.objects.create(connection=connection, owner_id="3", name="Gus Ghost")
    return connection


@pytest.fixture
def connector(hubspot, clock):
    return make_connector(hubspot, clock)


def assign(member, email=EMAIL) -> Assignment:
    lead = Lead.objects.create(
        first_name="Dana",
        last_name="Diaz",
        email=email,
        company="Initech",
        received_at=ROUTED_AT,
        created_at=ROUTED_AT,
        routing_status=Lead.RoutingStatus.ASSIGNED,
        owner=member,
        assigned_at=ROUTED_AT,
    )
    return Assignment.objects.create(
        lead=lead,
        outcome=Assignment.Outcome.ASSIGNED,
        member=member,
        received_at=ROUTED_AT,
        routed_at=ROUTED_AT,
    )


def audit_entry(action: str) -> AuditLog:
    return AuditLog.objects.get(action=action)


def sent(hubspot) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in hubspot.requests(TOKEN)]


def test_writeback_creates_missing_contact(personas, hubspot, mapped, connector):
    assignment = assign(personas.rep1)

    action = writeback.assignment_writeback(
        assignment_id=assignment.pk, connector=connector
    )

    assert action == writeback.CREATED
    assert sent(hubspot) == [
        ("POST", "/crm/v3/objects/contacts/search"),
        ("POST", "/crm/v3/objects/contacts"),
    ]
    [contact] = hubspot.objects["contacts"].values()
    assert contact.properties == {
        "email": EMAIL,
        "firstname": "Dana",
        "lastname": "Diaz",
        "company": "Initech",
        "hubspot_owner_id": "1",
    }
    entry = audit_entry(writeback.CREATED)
    assert entry.new["contact_id"] == contact.id
    assert entry.new["owner_id"] == "1"
    assert entry.new["member"] == "Rita Rep"
    assert entry.new["api_calls"] == 2
    assert entry.object_id == str(assignment.lead.public_id)


def test_writeback_patches_existing_contact(personas, hubspot, mapped, connector):
    contact_id = hubspot.add(
        "contacts",
        modified_at=ROUTED_AT - dt.timedelta(days=1),
        email="DANA@initech.test",
        firstname="Dana",
        hubspot_owner_id="2",
    )
    assignment = assign(personas.rep1)

    action = writeback.assignment_writeback(
        assignment_id=assignment.pk, connector=connector
    )

    assert action == writeback.UPDATED
    # Last modified before the routing time: no history request is needed.
    assert sent(hubspot) == [
        ("POST", "/crm/v3/objects/contacts/search"),
        ("PATCH", f"/crm/v3/objects/contacts/{contact_id}"),
    ]
    contact = hubspot.objects["contacts"][contact_id]
    assert contact.properties["hubspot_owner_id"] == "1"
    assert contact.properties["firstname"] == "Dana"
    assert len(hubspot.objects["contacts"]) == 1
    entry = audit_entry(writeback.UPDATED)
    assert entry.old["owner_id"] == "2"
    assert entry.new["owner_id"] == "1"
    assert entry.new["api_calls"] == 2


def test_writeback_newer_crm_owner_wins(personas, hubspot, mapped, connector):
    contact_id = hubspot.add(
        "contacts",
        modified_at=ROUTED_AT - dt.timedelta(days=1),
        email=EMAIL,
        hubspot_owner_id="2",
    )
    changed_at = ROUTED_AT + dt.timedelta(minutes=5)
    hubspot.update("contacts", contact_id, modified_at=changed_at, hubspot_owner_id="3")
    assignment = assign(personas.rep1)

    action = writeback.assignment_writeback(
        assignment_id=assignment.pk, connector=connector
    )

    assert action == writeback.CRM_NEWER
    assert sent(hubspot) == [
        ("POST", "/crm/v3/objects/contacts/search"),
        ("GET", f"/crm/v3/objects/contacts/{contact_id}"),
    ]
    assert hubspot.objects["contacts"][contact_id].properties["hubspot_owner_id"] == "3"
    entry = audit_entry(writeback.CRM_NEWER)
    assert entry.old["owner_id"] == "3"
    assert entry.old["owner_name"] == "Gus Ghost"
    assert entry.old["changed_at"] == "2024-05-01T12:05:00+00:00"
    assert entry.new["owner_id"] == "1"
    assert entry.new["owner_name"] == "Rita Rep"
    assert entry.new["routed_at"] == "2024-05-01T12:00:00+00:00"


def test_writeback_later_edit_of_other_property(personas, hubspot, mapped, connector):
    """A contact edited after routing, but with an older owner, gets the new owner."""
    contact_id = hubspot.add(
        "contacts",
        modified_at=ROUTED_AT - dt.timedelta(days=1),
        email=EMAIL,
        hubspot_owner_id="2",
    )
    hubspot.update(
        "contacts",
        contact_id,
        modified_at=ROUTED_AT + dt.timedelta(minutes=5),
        phone="+1 555 0100",
    )
    assignment = assign(personas.rep1)

    action = writeback.assignment_writeback(
        assignment_id=assignment.pk, connector=connector
    )

    assert action == writeback.UPDATED
    assert [method for method, _ in sent(hubspot)] == ["POST", "GET", "PATCH"]
    assert hubspot.objects["contacts"][contact_id].properties["hubspot_owner_id"] == "1"


def test_writeback_same_owner_sends_no_patch(personas, hubspot, mapped, connector):
    hubspot.add(
        "contacts",
        modified_at=ROUTED_AT + dt.timedelta(hours=1),
        email=EMAIL,
        hubspot_owner_id="1",
    )
    assignment = assign(personas.rep1)

    action = writeback.assignment_writeback(
        assignment_id=assignment.pk, connector=connector
    )

    assert action == writeback.UNCHANGED
    assert sent(hubspot) == [("POST", "/crm/v3/objects/contacts/search")]


def test_writeback_without_mapping_sends_nothing(
    personas, hubspot, mapped, connector, caplog
):
    assignment = assign(personas.rep3)

    with caplog.at_level(logging.WARNING, logger="integrations.writeback"):
        action = writeback.assignment_writeback(
            assignment_id=assignment.pk, connector=connector
        )

    assert action == writeback.FAILED
    assert sent(hubspot) == []
    entry = audit_entry(writeback.FAILED)
    assert "Member Remy Rep has no HubSpot owner" in entry.new["error"]
    assert "Member Remy Rep has no HubSpot owner" in caplog.text


def test_writeback_without_email_sends_nothing(personas, hubspot, mapped, connector):
    assignment = assign(personas.rep1, email="")

    action = writeback.assignment_writeback(
        assignment_id=assignment.pk, connector=connector
    )

    assert action == writeback.FAILED
    assert sent(hubspot) == []
    assert "has no email" in audit_entry(writeback.FAILED).new["error"]


def test_writeback_retries_server_errors(personas, hubspot, mapped, connector, clock):
    hubspot.inject(503, count=2)
    assignment = assign(personas.rep1)

    action = writeback.assignment_writeback(
        assignment_id=assignment.pk, connector=connector
    )

    assert action == writeback.CREATED
    # Two 503 responses, retried after 1 s and 2 s, then search and create.
    assert len(hubspot.requests(TOKEN, status=503)) == 2
    assert clock.now() == 3.0
    assert len(hubspot.objects["contacts"]) == 1
    assert audit_entry(writeback.CREATED).new["api_calls"] == 4


def test_writeback_skipped_when_connection_paused(personas, hubspot, mapped):
    mapped.status = CrmConnection.Status.PAUSED
    mapped.save()
    assignment = assign(personas.rep1)

    assert writeback.assignment_writeback(assignment_id=assignment.pk) is None
    assert sent(hubspot) == []


def test_routing_commits_when_hubspot_down(
    personas,
    hubspot,
    mapped,
    connector,
    clock,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    # Every attempt fails: the first try and five retries.
    hubspot.inject(500, count=6)
    monkeypatch.setattr(writeback, "connector_for", lambda connection: connector)
    publish_pool(personas.org, make_pool(personas.org, "round_robin", [personas.rep1]))
    lead = pending_lead(personas.org, email=EMAIL)

    with django_capture_on_commit_callbacks(execute=True):
        assignment = routing_services.lead_route(lead_id=lead.pk)

    lead.refresh_from_db()
    assert lead.routing_status == Lead.RoutingStatus.ASSIGNED
    assert lead.owner == personas.rep1
    assert Assignment.objects.get(lead=lead).member == personas.rep1
    assert len(hubspot.requests(TOKEN, status=500)) == 6
    assert hubspot.objects["contacts"] == {}
    entry = audit_entry(writeback.FAILED)
    assert "failed 6 times, last with HTTP 500" in entry.new["error"]
    assert entry.object_id == str(assignment.lead.public_id)


def test_routing_queues_nothing_without_connection(
    personas, hubspot, in_org, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(
        writeback,
        "assignment_writeback",
        lambda **kwargs: queued.append(kwargs),
    )
    publish_pool(personas.org, make_pool(personas.org, "round_robin", [personas.rep1]))
    lead = pending_lead(personas.org, email=EMAIL)

    with django_capture_on_commit_callbacks(execute=True):
        routing_services.lead_route(lead_id=lead.pk)

    assert queued == []
