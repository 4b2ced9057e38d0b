"""Connecting Salesforce and Pipedrive, and the webhook settings page."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from django.test import Client, TestCase
from django.urls import reverse

from integrations import sync, webhooks
from integrations.models import CrmConnection, WebhookEvent
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.conftest import login
from tests.integrations.fake_pipedrive import FakePipedrive
from tests.integrations.fake_salesforce import FakeSalesforce

SF_CLIENT_ID = "3MVG9-consumer-key"
SF_CLIENT_SECRET = "sf-consumer-secret-0451"
SF_REFRESH_TOKEN = "5Aep861-refresh-token-9921"
PD_TOKEN = "pd-api-token-7c1e0b"
HUBSPOT_CLIENT_SECRET = "hubspot-app-client-secret-31"


def _url(name: str, **kwargs) -> str:
    return reverse(f"integrations:{name}", kwargs={"org_slug": "acme", **kwargs})


def _settings_url(connection: CrmConnection) -> str:
    return _url("webhook-settings", connection_id=connection.public_id)


class FakePipedriveWithMe(FakePipedrive):
    """The fake Pipedrive plus GET /v1/users/me, which returns the first user."""

    def _route(self, method: str, path: str, query: dict):
        if method == "GET" and path == "/v1/users/me":
            user = next(iter(self.users.values()))
            return 200, {"success": True, "data": user}
        return super()._route(method, path, query)


@pytest.fixture
def admin(personas):
    return login(Client(), personas.admin)


@pytest.fixture
def salesforce(clock):
    fake = FakeSalesforce(clock=clock).start()
    fake.add_client(SF_CLIENT_ID, SF_CLIENT_SECRET, SF_REFRESH_TOKEN)
    yield fake
    fake.stop()


@pytest.fixture
def pipedrive(clock):
    fake = FakePipedriveWithMe().start()
    fake.add_token(PD_TOKEN, clock)
    fake.add_user(1, "rita.rep@acme.test", "Rita Rep")
    yield fake
    fake.stop()


def _salesforce_form(fake, **overrides) -> dict:
    data = {
        "name": "Salesforce EU",
        "base_url": fake.url if fake else "",
        "client_id": SF_CLIENT_ID,
        "client_secret": SF_CLIENT_SECRET,
        "refresh_token": SF_REFRESH_TOKEN,
    }
    data.update(overrides)
    return data


def _pipedrive_form(fake, **overrides) -> dict:
    data = {"name": "Pipedrive", "base_url": fake.url, "api_token": PD_TOKEN}
    data.update(overrides)
    return data


def _connections(personas) -> list[CrmConnection]:
    with tenant_context(personas.org):
        return list(CrmConnection.objects.all())


# Connect Salesforce


def test_salesforce_connect_checks_and_stores(
    personas, admin, salesforce, loopback_allowed
):
    response = admin.post(_url("connect-salesforce"), _salesforce_form(salesforce))

    [connection] = _connections(personas)
    assert response.status_code == 302
    assert response["Location"] == _url(
        "connection", connection_id=connection.public_id
    )
    assert connection.provider == "salesforce"
    assert connection.name == "Salesforce EU"
    assert connection.base_url == salesforce.url
    assert connection.credentials == {
        "client_id": SF_CLIENT_ID,
        "client_secret": SF_CLIENT_SECRET,
        "refresh_token": SF_REFRESH_TOKEN,
    }
    assert SF_CLIENT_SECRET not in connection.credentials_encrypted
    assert len(salesforce.token_requests()) == 1
    with tenant_context(personas.org):
        audit = AuditLog.objects.get(action="crm.connection_created")
    assert audit.new == {
        "provider": "salesforce",
        "name": "Salesforce EU",
        "base_url": salesforce.url,
    }


def test_salesforce_refused_refresh_shows_error(
    personas, admin, caplog, salesforce, loopback_allowed
):
    caplog.set_level(logging.DEBUG)
    form = _salesforce_form(salesforce, refresh_token="5Aep861-revoked-token")

    response = admin.post(_url("connect-salesforce"), form)

    page = response.content.decode()
    assert response.status_code == 200
    assert "invalid_grant: expired access/refresh token" in page
    assert _connections(personas) == []
    for secret in (SF_CLIENT_SECRET, "5Aep861-revoked-token"):
        assert secret not in page
        assert secret not in caplog.text


def test_salesforce_wrong_client_secret_shows_error(
    personas, admin, salesforce, loopback_allowed
):
    form = _salesforce_form(salesforce, client_secret="not-the-secret")

    response = admin.post(_url("connect-salesforce"), form)

    page = response.content.decode()
    assert "invalid_client: invalid client credentials" in page
    assert "not-the-secret" not in page
    assert _connections(personas) == []


def test_salesforce_private_address_rejected(personas, admin, salesforce, settings):
    """Without the organisation's private-address setting, 127.0.0.1 is refused."""
    settings.DEBUG = True

    response = admin.post(_url("connect-salesforce"), _salesforce_form(salesforce))

    page = response.content.decode()
    assert "which is not public (loopback)" in page
    assert salesforce.token_requests() == []
    assert _connections(personas) == []


def test_salesforce_unreachable_address_shows_error(personas, admin, loopback_allowed):
    form = _salesforce_form(None, base_url="http://127.0.0.1:9")

    response = admin.post(_url("connect-salesforce"), form)

    page = response.content.decode()
    token_url = "http://127.0.0.1:9/services/oauth2/token"
    assert f"Connecting to {token_url} failed (ConnectionError)" in page
    assert _connections(personas) == []


def test_second_salesforce_connection_rejected(
    personas, admin, salesforce, loopback_allowed
):
    admin.post(_url("connect-salesforce"), _salesforce_form(salesforce))

    response = admin.post(
        _url("connect-salesforce"), _salesforce_form(salesforce, name="Second")
    )

    assert "already has a Salesforce connection, &#x27;Salesforce EU&#x27;" in (
        response.content.decode()
    )
    assert len(_connections(personas)) == 1
    assert len(salesforce.token_requests()) == 1


def test_salesforce_connect_page_queries(admin, django_assert_num_queries):
    # Session, user, membership with its organisation, and the layout's
    # open alert count, unread notification count and organisation switcher.
    with django_assert_num_queries(6):
        response = admin.get(_url("connect-salesforce"))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Connect Salesforce" in page
    assert 'value="https://login.salesforce.com"' in page


# Connect Pipedrive


def test_pipedrive_connect_checks_and_stores(
    personas, admin, pipedrive, loopback_allowed
):
    response = admin.post(_url("connect-pipedrive"), _pipedrive_form(pipedrive))

    [connection] = _connections(personas)
    assert response.status_code == 302
    assert connection.provider == "pipedrive"
    assert connection.base_url == pipedrive.url
    assert connection.credentials == {"api_token": PD_TOKEN}
    checks = [(r.method, r.path, r.status) for r in pipedrive.requests()]
    assert checks == [("GET", "/v1/users/me", 200)]


def test_pipedrive_bad_token_shows_error(
    personas, admin, caplog, pipedrive, loopback_allowed
):
    caplog.set_level(logging.DEBUG)
    form = _pipedrive_form(pipedrive, api_token="pd-wrong-token")

    response = admin.post(_url("connect-pipedrive"), form)

    page = response.content.decode()
    assert response.status_code == 200
    assert (
        "Pipedrive rejected the API token (HTTP 401: unauthorized access (Please "
        "check your API token.))"
    ) in page
    assert "pd-wrong-token" not in page
    assert "pd-wrong-token" not in caplog.text
    assert _connections(personas) == []


def test_pipedrive_token_with_spaces_rejected(personas, admin, pipedrive):
    form = _pipedrive_form(pipedrive, api_token="pd token with spaces")

    response = admin.post(_url("connect-pipedrive"), form)

    page = response.content.decode()
    assert "Invalid API token: paste it again without spaces" in page
    assert "pd token with spaces" not in page
    assert pipedrive.requests() == []


def test_connect_pages_for_admins_only(personas, pipedrive, loopback_allowed):
    manager = login(Client(), personas.manager)

    for name in ("connect-salesforce", "connect-pipedrive"):
        assert manager.get(_url(name)).status_code == 404
    response = manager.post(_url("connect-pipedrive"), _pipedrive_form(pipedrive))

    assert response.status_code == 404
    assert pipedrive.requests() == []
    assert _connections(personas) == []


def test_connection_list_links_every_provider(admin):
    page = admin.get(_url("connections")).content.decode()

    for name in ("connect-hubspot", "connect-salesforce", "connect-pipedrive"):
        assert _url(name) in page


def test_settings_page_hides_token_for_salesforce(
    personas, admin, salesforce, loopback_allowed
):
    admin.post(_url("connect-salesforce"), _salesforce_form(salesforce))
    [connection] = _connections(personas)

    response = admin.get(_url("connection-edit", connection_id=connection.public_id))

    page = response.content.decode()
    assert 'name="access_token"' not in page
    assert SF_CLIENT_SECRET not in page


# Webhook settings


@pytest.fixture
def hubspot_connection(personas, in_org):
    return sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="hubspot",
        name="HubSpot",
        base_url="https://api.hubapi.com",
        credentials={"access_token": "pat-na1-webhook-page"},
    )


@pytest.fixture
def pipedrive_connection(personas, in_org):
    return sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="pipedrive",
        name="Pipedrive",
        base_url="https://acme.pipedrive.com/api",
        credentials={"api_token": PD_TOKEN},
    )


@pytest.fixture
def salesforce_connection(personas, in_org):
    return sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="salesforce",
        name="Salesforce",
        base_url="https://login.salesforce.com",
        credentials={
            "client_id": SF_CLIENT_ID,
            "client_secret": SF_CLIENT_SECRET,
            "refresh_token": SF_REFRESH_TOKEN,
        },
    )


def _receiver_url(connection: CrmConnection, **extra) -> str:
    path = reverse(
        f"integrations-webhooks:{connection.provider}",
        kwargs={
            "organization_id": connection.organization.public_id,
            "connection_id": connection.public_id,
            **extra,
        },
    )
    return "http://testserver" + path


def test_hubspot_secret_saved_and_audited(personas, admin, hubspot_connection):
    response = admin.post(
        _settings_url(hubspot_connection), {"secret": HUBSPOT_CLIENT_SECRET}
    )

    assert response.status_code == 302
    assert response["Location"] == _settings_url(hubspot_connection)
    hubspot_connection.refresh_from_db()
    credentials = hubspot_connection.credentials
    assert credentials["webhook_secret"] == HUBSPOT_CLIENT_SECRET
    assert credentials["access_token"] == "pat-na1-webhook-page"
    assert HUBSPOT_CLIENT_SECRET not in hubspot_connection.credentials_encrypted
    audit = AuditLog.objects.get(action="crm.webhook_settings_changed")
    assert audit.new == {"changed": ["webhook_secret"]}
    assert audit.actor_id == personas.admin.user_id
    page = admin.get(_settings_url(hubspot_connection)).content.decode()
    assert _receiver_url(hubspot_connection) in page
    assert HUBSPOT_CLIENT_SECRET not in page
    assert "Set" in page


def test_pipedrive_secret_shown_once(admin, pipedrive_connection):
    response = admin.post(
        _settings_url(pipedrive_connection), {"username": "attain-hooks"}, follow=True
    )

    pipedrive_connection.refresh_from_db()
    credentials = pipedrive_connection.credentials
    secret = credentials["webhook_secret"]
    assert credentials["webhook_username"] == "attain-hooks"
    assert len(secret) >= 40
    first_view = response.content.decode()
    assert first_view.count(secret) == 1
    assert _receiver_url(pipedrive_connection) in first_view
    second_view = admin.get(_settings_url(pipedrive_connection)).content.decode()
    assert secret not in second_view
    assert 'value="attain-hooks"' in second_view


def test_rotation_rejects_old_pipedrive_secret(client, admin, pipedrive_connection):
    admin.post(_settings_url(pipedrive_connection), {"username": "attain"})
    pipedrive_connection.refresh_from_db()
    old_secret = pipedrive_connection.credentials["webhook_secret"]

    admin.post(_settings_url(pipedrive_connection), {"username": "attain"})

    pipedrive_connection.refresh_from_db()
    assert pipedrive_connection.credentials["webhook_secret"] != old_secret
    encoded = base64.b64encode(f"attain:{old_secret}".encode()).decode()
    body = json.dumps(
        {
            "meta": {
                "action": "change",
                "entity": "deal",
                "entity_id": "42",
                "id": "old-secret-delivery",
                "timestamp": "2024-03-05T10:00:05Z",
            }
        }
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(
            _receiver_url(pipedrive_connection),
            data=body,
            content_type="application/json",
            headers={"Authorization": f"Basic {encoded}"},
        )
    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0
    assert AuditLog.objects.filter(action="crm.webhook_settings_changed").count() == 2


def test_salesforce_url_with_token_shown_once(admin, salesforce_connection):
    response = admin.post(
        _settings_url(salesforce_connection),
        {"salesforce_organization_id": "00D5g000004XyZaEAK"},
        follow=True,
    )

    salesforce_connection.refresh_from_db()
    credentials = salesforce_connection.credentials
    token = credentials["webhook_secret"]
    assert credentials["salesforce_organization_id"] == "00D5g000004XyZaEAK"
    first_view = response.content.decode()
    assert _receiver_url(salesforce_connection, token=token) in first_view
    second_view = admin.get(_settings_url(salesforce_connection)).content.decode()
    assert token not in second_view
    assert _receiver_url(salesforce_connection, token="SECRET") in second_view
    assert SF_CLIENT_SECRET not in first_view + second_view


def test_invalid_salesforce_org_id_named(admin, salesforce_connection):
    response = admin.post(
        _settings_url(salesforce_connection),
        {"salesforce_organization_id": "001ABC"},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "Invalid organization ID &#x27;001ABC&#x27;" in page
    salesforce_connection.refresh_from_db()
    assert "webhook_secret" not in salesforce_connection.credentials


def test_webhook_settings_other_org_404(personas, hubspot_connection):
    outsider = login(Client(), personas.outsider)
    with tenant_context(personas.other_org):
        other = sync.connection_create(
            organization=personas.other_org,
            actor=None,
            provider="hubspot",
            name="Globex HubSpot",
            base_url="https://api.hubapi.com",
            credentials={"access_token": "globex-token"},
        )
    admin = login(Client(), personas.admin)
    other_url = _url("webhook-settings", connection_id=other.public_id)

    assert admin.get(other_url).status_code == 404
    assert admin.post(other_url, {"secret": "taken-over"}).status_code == 404
    # The outsider administers Globex, not Acme, so Acme's page is a 404 too.
    outsider_url = _settings_url(hubspot_connection)
    assert outsider.get(outsider_url).status_code in (302, 404)
    # Row-level security shows Globex's row only inside Globex's context.
    with tenant_context(personas.other_org):
        other.refresh_from_db()
    assert "webhook_secret" not in other.credentials


@pytest.mark.parametrize("persona", ["rep1", "manager", "vp"])
def test_webhook_settings_non_admin_404(personas, hubspot_connection, persona):
    member = login(Client(), getattr(personas, persona))
    url = _settings_url(hubspot_connection)

    assert member.get(url).status_code == 404
    assert member.post(url, {"secret": "taken-over"}).status_code == 404
    hubspot_connection.refresh_from_db()
    assert "webhook_secret" not in hubspot_connection.credentials
    assert not AuditLog.objects.filter(action="crm.webhook_settings_changed").exists()


def test_webhook_settings_page_lists_events(
    admin, hubspot_connection, django_assert_num_queries
):
    webhooks.webhook_settings_set(
        connection=hubspot_connection, actor=None, secret=HUBSPOT_CLIENT_SECRET
    )
    for number, status in enumerate(["applied", "failed", "stale"]):
        WebhookEvent.objects.create(
            organization=hubspot_connection.organization,
            connection=hubspot_connection,
            key=f"key-{number}",
            event_id=f"evt-{number}",
            object_type="deals",
            object_id="42",
            status=status,
            attempts=number + 1,
            message="HubSpot returned HTTP 502" if status == "failed" else "",
        )

    # Session, user, membership with its organisation, the connection, the
    # layout's open alert count, unread notification count and organisation
    # switcher, and the events.
    with django_assert_num_queries(8):
        response = admin.get(_settings_url(hubspot_connection))

    page = response.content.decode()
    assert response.status_code == 200
    for event_id in ("evt-0", "evt-1", "evt-2"):
        assert event_id in page
    assert "HubSpot returned HTTP 502" in page
    assert "Older than the stored value" in page
    assert HUBSPOT_CLIENT_SECRET not in page
