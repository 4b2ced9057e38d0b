"""POST /api/v1/leads/: validation, normalisation, idempotency, then routing."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection, connections

from activity.models import Lead
from routing.models import Assignment, IntakeRequest
from spm.services import api_key_create
from spm.tenancy import tenant_context
from tests.conftest import login
from tests.routing.conftest import make_pool, make_rep, publish_pool

URL = "/api/v1/leads/"
JANE = {
    "email": " Jane.Doe@Bosch.DE ",
    "first_name": "Jane",
    "last_name": "Doe",
    "phone": "  +49 711  400 ",
    "company": "Robert Bosch",
    "country": "Germany",
    "region": "BW",
    "industry": "Manufacturing",
    "company_size": 5000,
    "estimated_value": "125000.50",
    "source": "webinar",
    "custom": {"product": "iot", "seats": 40},
}


@pytest.fixture
def api_key(personas):
    _, key = api_key_create(organization=personas.org, name="intake")
    return key


def _post(client, key, body, idempotency_key=None):
    headers = {"authorization": f"Bearer {key}"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return client.post(URL, body, content_type="application/json", headers=headers)


def _leads(org):
    with tenant_context(org):
        return list(Lead.objects.order_by("id"))


def test_lead_is_stored_normalised(client, personas, api_key):
    response = _post(client, api_key, JANE)

    assert response.status_code == 201, response.content
    body = response.json()
    [lead] = _leads(personas.org)
    assert body["id"] == str(lead.public_id)
    assert body["email"] == "jane.doe@bosch.de"
    assert body["domain"] == "bosch.de"
    assert body["country"] == "DE"
    assert body["phone"] == "+49 711 400"
    assert body["estimated_value"] == "125000.50"
    assert body["custom"] == {"product": "iot", "seats": 40}
    assert body["routing_status"] == "pending"
    assert body["owner"] is None
    assert lead.received_at is not None
    assert lead.routing_status == Lead.RoutingStatus.PENDING


def test_routing_starts_after_commit(
    client, personas, api_key, in_org, django_capture_on_commit_callbacks
):
    rep = make_rep(personas.org, "Solo")
    publish_pool(personas.org, make_pool(personas.org, "round_robin", [rep]))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = _post(client, api_key, JANE)

    assert response.status_code == 201
    # Routing starts once the lead is committed; the rep is notified once the
    # assignment is.
    assert len(callbacks) == 2
    lead = Lead.objects.get(public_id=response.json()["id"])
    assert lead.owner == rep
    assert lead.routing_status == Lead.RoutingStatus.ASSIGNED
    assert Assignment.objects.get(lead=lead).member == rep


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "email", "This field is required."),
        ({"email": "jane@"}, "email", "is not a valid email address"),
        (
            {"email": "a@b.test", "country": "Narnia"},
            "country",
            'Unknown country "Narnia"',
        ),
        ({"email": "a@b.test", "domain": "nope"}, "domain", "is not a domain name"),
        (
            {"email": "a@b.test", "company_size": -1},
            "company_size",
            "greater than or equal to 0",
        ),
        (
            {"email": "a@b.test", "estimated_value": "12.345"},
            "estimated_value",
            "2 decimal places",
        ),
        (
            {"email": "a@b.test", "custom": {"bad key": 1}},
            "custom",
            "Invalid custom field name",
        ),
        ({"email": "a@b.test", "custom": {"k": [1]}}, "custom", "Use text, a number"),
        ({"email": "a@b.test", "phone": "call me"}, "phone", "is not a phone number"),
    ],
)
def test_invalid_field_is_named_and_nothing_stored(
    client, personas, api_key, body, field, message
):
    response = _post(client, api_key, body, idempotency_key=str(uuid.uuid4()))

    assert response.status_code == 400
    errors = response.json()
    assert field in errors
    assert message in str(errors[field])
    assert _leads(personas.org) == []
    assert not IntakeRequest.unscoped.exists()


def test_repeated_key_replays_first_response(client, personas, api_key):
    first = _post(client, api_key, JANE, idempotency_key="lead-42")
    second = _post(client, api_key, JANE, idempotency_key="lead-42")

    assert first.status_code == 201
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert len(_leads(personas.org)) == 1


def test_key_reused_with_other_body_is_422(client, personas, api_key):
    _post(client, api_key, JANE, idempotency_key="lead-42")

    response = _post(client, api_key, {**JANE, "email": "other@bosch.de"}, "lead-42")

    assert response.status_code == 422
    assert "different request body" in response.json()["detail"]
    assert len(_leads(personas.org)) == 1


def test_keys_are_per_organisation(client, personas, api_key):
    _, other_key = api_key_create(organization=personas.other_org, name="other")

    assert _post(client, api_key, JANE, idempotency_key="shared").status_code == 201
    assert _post(client, other_key, JANE, idempotency_key="shared").status_code == 201

    assert len(_leads(personas.org)) == 1
    assert len(_leads(personas.other_org)) == 1


@pytest.mark.parametrize("key", ["has space", "x" * 256, "tab\tkey"])
def test_malformed_idempotency_key_is_400(client, personas, api_key, key):
    response = _post(client, api_key, JANE, idempotency_key=key)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert _leads(personas.org) == []


def test_browser_session_is_403(client, personas):
    login(client, personas.admin)

    response = client.post(
        URL + "?organization=acme", JANE, content_type="application/json"
    )

    assert response.status_code == 403
    assert _leads(personas.org) == []


def test_no_credentials_is_401(client, personas):
    assert client.post(URL, JANE, content_type="application/json").status_code == 401


def test_list_and_detail(client, personas, api_key):
    created = _post(client, api_key, JANE).json()
    headers = {"authorization": f"Bearer {api_key}"}

    page = client.get(URL, headers=headers).json()
    detail = client.get(f"{URL}{created['id']}/", headers=headers)

    assert page["count"] == 1
    assert page["results"][0]["id"] == created["id"]
    assert detail.status_code == 200
    assert detail.json() == created


def test_list_filters_by_routing_status(client, personas, api_key):
    _post(client, api_key, JANE)
    headers = {"authorization": f"Bearer {api_key}"}

    pending = client.get(URL, {"routing_status": "pending"}, headers=headers).json()
    queued = client.get(URL, {"routing_status": "queued"}, headers=headers).json()
    invalid = client.get(URL, {"routing_status": "lost"}, headers=headers)

    assert pending["count"] == 1
    assert queued["count"] == 0
    assert invalid.status_code == 400


def test_detail_of_other_organisation_is_404(client, personas, api_key):
    _, other_key = api_key_create(organization=personas.other_org, name="other")
    other = _post(client, other_key, JANE).json()

    response = client.get(
        f"{URL}{other['id']}/", headers={"authorization": f"Bearer {api_key}"}
    )

    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_racing_requests_with_one_key_make_one_lead(personas, api_key):
    """Two threads post the same key at once: one lead, two identical responses."""
    if connection.vendor != "postgresql":
        pytest.skip("Concurrent transactions need PostgreSQL")
    from django.test import Client

    barrier = threading.Barrier(2)
    responses = []

    def post() -> None:
        try:
            barrier.wait()
            responses.append(_post(Client(), api_key, JANE, idempotency_key="race"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status_code for r in responses] == [201, 201]
    assert responses[0].json() == responses[1].json()
    assert len(_leads(personas.org)) == 1
    assert IntakeRequest.unscoped.count() == 1


def test_retry_rolls_back_and_replays(client, personas, api_key):
    """The unique key stops a second lead, and the retry's work is undone.

    A retry qualifies the lead again and merges it into the first as a
    duplicate. Its key insert then fails, which rolls the merge back.
    """
    from routing.models import LeadSubmission

    first = _post(client, api_key, JANE, idempotency_key="late")
    second = _post(client, api_key, JANE, idempotency_key="late")

    assert second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert len(_leads(personas.org)) == 1
    with tenant_context(personas.org):
        assert LeadSubmission.objects.count() == 0


def _documented_codes(client, path: str, method: str) -> set[str]:
    document = client.get("/api/v1/schema/", {"format": "json"}).json()
    return set(document["paths"][path][method]["responses"])


def test_error_codes_are_documented(client, personas):
    assert _documented_codes(client, URL, "post") == {
        "201",
        "400",
        "401",
        "403",
        "422",
        "429",
    }
    assert _documented_codes(client, URL, "get") == {
        "200",
        "400",
        "401",
        "403",
        "404",
        "429",
    }
    assert _documented_codes(client, URL + "{lead_id}/", "get") == {
        "200",
        "401",
        "403",
        "404",
        "429",
    }


@pytest.mark.parametrize("lead_id", ["not-a-uuid", "\n7%", "a/b"])
def test_malformed_lead_id_is_json_404(client, personas, api_key, lead_id):
    response = client.get(
        f"{URL}{lead_id}/", headers={"authorization": f"Bearer {api_key}"}
    )

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "No lead with this id in the organisation."}
