"""A lead whose email belongs to an existing contact goes to that contact's owner."""

from __future__ import annotations

import pytest

from activity.models import Account, Contact
from routing.engine.preview import lead_preview
from routing.models import Assignment, LeadQualification
from routing.qualification import known_contact
from routing.qualification_services import qualification_settings_update
from spm.services import api_key_create
from tests.routing.conftest import make_pool, make_rep, publish_pool

URL = "/api/v1/leads/"


@pytest.fixture
def api_key(personas):
    _, key = api_key_create(organization=personas.org, name="intake")
    return key


@pytest.fixture
def routed(personas, in_org):
    """One rep in one pool takes every lead that the rules route."""
    rep = make_rep(personas.org, "Solo")
    publish_pool(personas.org, make_pool(personas.org, "round_robin", [rep]))
    return rep


def _post(client, key, body, capture):
    with capture(execute=True):
        response = client.post(
            URL,
            body,
            content_type="application/json",
            headers={"authorization": f"Bearer {key}"},
        )
    assert response.status_code == 201, response.content
    return Assignment.objects.select_related("member").get(
        lead__public_id=response.json()["id"]
    )


def test_contact_owner_gets_lead(
    client, personas, api_key, routed, django_capture_on_commit_callbacks
):
    owner = make_rep(personas.org, "Cora")
    contact = Contact.objects.create(
        organization=personas.org,
        first_name="Kim",
        last_name="Lee",
        email="Kim.Lee@Example.com",
        owner=owner,
    )

    assignment = _post(
        client,
        api_key,
        {"email": "kim.lee@example.com"},
        django_capture_on_commit_callbacks,
    )

    assert assignment.member == owner
    assert assignment.method == "contact_owner"
    assert assignment.reason == "known contact: owner of contact Kim Lee"
    assert LeadQualification.objects.get(lead=assignment.lead).known_contact == contact


def test_contact_account_owner_when_no_owner(
    client, personas, api_key, routed, django_capture_on_commit_callbacks
):
    owner = make_rep(personas.org, "Acco")
    account = Account.objects.create(
        organization=personas.org, name="Initech", owner=owner
    )
    Contact.objects.create(
        organization=personas.org, email="pat@initech.example", account=account
    )

    assignment = _post(
        client,
        api_key,
        {"email": "pat@initech.example"},
        django_capture_on_commit_callbacks,
    )

    assert assignment.member == owner


def test_unavailable_contact_owner_leaves_rules(
    client, personas, api_key, routed, django_capture_on_commit_callbacks
):
    gone = make_rep(personas.org, "Gone", is_active=False)
    Contact.objects.create(
        organization=personas.org, email="kim@example.com", first_name="Kim", owner=gone
    )

    assignment = _post(
        client,
        api_key,
        {"email": "kim@example.com"},
        django_capture_on_commit_callbacks,
    )

    assert assignment.member == routed
    assert assignment.trace[0] == {
        "order": 0,
        "rule": "Known contact",
        "result": "passed",
        "detail": "contact Kim: owner Gone is no longer an active member",
    }


def test_disqualified_lead_matches_no_contact(
    client, personas, api_key, routed, django_capture_on_commit_callbacks
):
    qualification_settings_update(
        organization=personas.org, actor=None, competitor_domains=["rival.example"]
    )
    Contact.objects.create(
        organization=personas.org, email="spy@rival.example", owner=routed
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            URL,
            {"email": "spy@rival.example"},
            content_type="application/json",
            headers={"authorization": f"Bearer {api_key}"},
        )

    qualification = LeadQualification.objects.get(lead__public_id=response.json()["id"])
    assert qualification.status == "disqualified"
    assert qualification.known_contact is None


def test_contact_without_any_owner_ignored(personas, in_org):
    Contact.objects.create(organization=personas.org, email="nobody@example.com")

    assert known_contact("nobody@example.com") is None
    assert known_contact("") is None


def test_preview_names_contact_owner(personas, in_org, routed):
    owner = make_rep(personas.org, "Cora")
    Contact.objects.create(
        organization=personas.org, email="kim@example.com", owner=owner
    )

    preview = lead_preview(
        organization=personas.org, fields={"email": "kim@example.com"}
    )

    assert preview.decision.member == owner
