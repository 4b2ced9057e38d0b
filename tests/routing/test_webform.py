"""The website lead form: no session, a honeypot, a rate limit per address."""

from __future__ import annotations

import pytest

from activity.models import Lead
from routing import webform
from routing.models import LeadSubmission
from spm.tenancy import tenant_context

FORM = {"email": "Visitor@Example.org", "first_name": "Vic", "company": "Example"}


@pytest.fixture
def form_url(personas):
    return f"/forms/{personas.org.public_id}/lead/"


def _leads(org):
    with tenant_context(org):
        return list(Lead.objects.all())


def test_browser_post_redirects_to_thanks(client, personas, form_url):
    response = client.post(form_url, FORM)

    assert response.status_code == 303
    assert response["Location"] == f"/forms/{personas.org.public_id}/lead/thanks/"
    [lead] = _leads(personas.org)
    assert lead.email == "visitor@example.org"
    assert lead.domain == "example.org"
    assert lead.source == "web form"
    assert lead.routing_status == Lead.RoutingStatus.PENDING
    thanks = client.get(response["Location"])
    assert thanks.status_code == 200
    assert b"Acme has received your details" in thanks.content


def test_post_needs_no_csrf_token(personas, form_url):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(form_url, FORM)

    assert response.status_code == 303


def test_json_post_gets_json(client, personas, form_url):
    response = client.post(
        form_url,
        {**FORM, "source": "pricing page", "custom": {"plan": "team"}},
        content_type="application/json",
        headers={"accept": "application/json"},
    )

    assert response.status_code == 201
    assert response.json() == {"status": "received"}
    [lead] = _leads(personas.org)
    assert lead.source == "pricing page"
    assert lead.custom == {"plan": "team"}


def test_honeypot_filled_is_accepted_and_not_stored(client, personas, form_url):
    response = client.post(form_url, {**FORM, webform.HONEYPOT_FIELD: "555-0100"})

    assert response.status_code == 303
    assert _leads(personas.org) == []


def test_invalid_form_shows_errors_and_stores_nothing(client, personas, form_url):
    response = client.post(form_url, {"email": "not-an-address", "country": "Mordor"})

    assert response.status_code == 400
    text = response.content.decode()
    assert "Email: &quot;not-an-address&quot; is not a valid email address" in text
    assert "Country: Unknown country &quot;Mordor&quot;" in text
    assert _leads(personas.org) == []


def test_error_page_names_fields_by_label(client, personas, form_url):
    response = client.post(
        form_url, {"email": "vic@example.org", "company_size": "many"}
    )

    assert response.status_code == 400
    text = response.content.decode()
    assert "<li>Company size: A valid integer is required.</li>" in text
    assert "company_size:" not in text
    assert _leads(personas.org) == []


def test_error_page_names_custom_field(client, personas, form_url):
    body = {"email": "vic@example.org", "custom": {"visits": ["a", "list"]}}

    response = client.post(form_url, body, content_type="application/json")

    assert response.status_code == 400
    assert (
        "<li>Custom field visits: Use text, a number, true, false or null.</li>"
        in response.content.decode()
    )


def test_invalid_json_post_gets_field_errors(client, personas, form_url):
    response = client.post(
        form_url,
        {"first_name": "Vic"},
        content_type="application/json",
        headers={"accept": "application/json"},
    )

    assert response.status_code == 400
    assert response.json() == {"email": ["This field is required."]}


def test_rate_limit_per_address(client, personas, form_url, monkeypatch):
    monkeypatch.setattr(webform, "FORM_RATE_LIMIT", 3)

    statuses = [client.post(form_url, FORM).status_code for _ in range(4)]
    other_address = client.post(form_url, FORM, REMOTE_ADDR="192.0.2.7")

    assert statuses == [303, 303, 303, 429]
    assert other_address.status_code == 303
    # The four accepted posts come from one person: the first is the lead
    # and the three later ones are merged into it as duplicates.
    assert len(_leads(personas.org)) == 1
    assert LeadSubmission.unscoped.filter(organization=personas.org).count() == 3


def test_rate_limited_post_says_when_to_retry(client, personas, form_url, monkeypatch):
    monkeypatch.setattr(webform, "FORM_RATE_LIMIT", 1)
    client.post(form_url, FORM)

    response = client.post(form_url, FORM, headers={"accept": "application/json"})

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= webform.FORM_RATE_WINDOW + 1
    assert len(_leads(personas.org)) == 1


def test_forwarded_address_used_behind_trusted_proxy(rf, settings):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    request = rf.post(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.9, 203.0.113.5"
    )

    assert webform.client_address(request) == "203.0.113.5"


def test_forwarded_address_ignored_without_proxy(rf, settings):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 0
    request = rf.post("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.9")

    assert webform.client_address(request) == "10.0.0.1"


def test_unknown_organisation_is_404(client, personas):
    response = client.post("/forms/00000000-0000-0000-0000-000000000000/lead/", FORM)

    assert response.status_code == 404


def test_get_is_405(client, form_url):
    assert client.get(form_url).status_code == 405
