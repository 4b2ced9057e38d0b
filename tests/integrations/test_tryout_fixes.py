"""CRM connection pages on a non-PostgreSQL database, per provider, and checks.

The SQLite cases replace ``integrations.services.db_connection`` with a
stand-in whose vendor is sqlite, so the views, the beat task and the webhook
store take their SQLite branch while the test database stays PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from integrations import (
    api_usage,
    credentials_check,
    selectors,
    services,
    sync,
    tasks,
    webhooks,
)
from integrations.models import ApiTier, CrmConnection, SyncRun, WebhookEvent
from spm.tenancy import tenant_context
from tests.conftest import login
from tests.integrations.conftest import TOKEN

SQLITE_NOTICE = (
    "CRM sync needs PostgreSQL; this instance runs on SQLite (the demo). "
    "Connections and mappings can be set up, but syncs and webhook events "
    "are not applied."
)
PD_TOKEN = "pd-api-token-tryout-41"


def _url(name: str, **kwargs) -> str:
    return reverse(f"integrations:{name}", kwargs={"org_slug": "acme", **kwargs})


def _connection_url(name: str, connection: CrmConnection) -> str:
    return _url(name, connection_id=connection.public_id)


@pytest.fixture
def admin(personas):
    return login(Client(), personas.admin)


@pytest.fixture
def on_sqlite(monkeypatch):
    """Make the integrations code see a SQLite database."""
    monkeypatch.setattr(
        services,
        "db_connection",
        SimpleNamespace(vendor="sqlite", display_name="SQLite"),
    )


def _connection(personas, provider: str, base_url: str = "http://127.0.0.1:9/api"):
    with tenant_context(personas.org):
        return sync.connection_create(
            organization=personas.org,
            actor=None,
            provider=provider,
            name=f"{provider} tryout",
            base_url=base_url,
            credentials={"api_token": "unused"},
        )


class StubServer:
    """An HTTP server on 127.0.0.1 that returns one fixed response."""

    def __init__(self, status: int, body: bytes, content_type: str):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                stub.paths.append(self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = _reply
            do_POST = _reply

            def log_message(self, format, *args) -> None:  # noqa: A002
                pass

        self.paths: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_server():
    servers: list[StubServer] = []

    def start(status: int, body: bytes = b"", content_type: str = "text/html"):
        server = StubServer(status, body, content_type)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# SQLite: no sync, no webhook application


def test_sync_supported_on_postgresql(db):
    assert services.sync_supported() is True


def test_sqlite_notice_names_database(on_sqlite):
    assert services.sync_supported() is False
    assert services.sync_unsupported_message() == SQLITE_NOTICE


def test_sqlite_page_shows_notice_without_button(
    on_sqlite, admin, connection, django_assert_max_num_queries
):
    # The same bound as the PostgreSQL connection page test.
    with django_assert_max_num_queries(10):
        response = admin.get(_connection_url("connection", connection))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="sync-unsupported"' in html
    assert SQLITE_NOTICE in html
    assert "Sync now" not in html
    assert (
        reverse(
            "integrations:sync-now",
            kwargs={"org_slug": "acme", "connection_id": connection.public_id},
        )
        not in html
    )


def test_postgresql_page_shows_button(admin, connection):
    html = admin.get(_connection_url("connection", connection)).content.decode()

    assert "Sync now" in html
    assert 'id="sync-unsupported"' not in html


def test_sqlite_sync_now_redirects_with_notice(
    on_sqlite, admin, connection, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin.post(_connection_url("sync-now", connection))

    assert response.status_code == 302
    assert response["Location"] == _connection_url("connection", connection)
    assert [str(m) for m in get_messages(response.wsgi_request)] == [SQLITE_NOTICE]
    assert callbacks == []
    assert not SyncRun.objects.filter(connection=connection).exists()


def test_sqlite_beat_sync_skips(on_sqlite, personas, connection, caplog):
    caplog.set_level("INFO", logger="integrations.tasks")

    tasks.sync_incremental_all_task()

    assert not SyncRun.unscoped.filter(connection=connection).exists()
    assert f"CRM incremental sync skipped: {SQLITE_NOTICE}" in caplog.messages


def _deal_event(event_id: str) -> webhooks.IncomingEvent:
    return webhooks.IncomingEvent(
        key_fields=("hubspot", event_id),
        event_id=event_id,
        object_type="deals",
        object_id="42",
        occurred_at=dt.datetime(2024, 3, 1, 10, 0, tzinfo=dt.UTC),
        property_name="dealstage",
        property_value="closedwon",
    )


def test_sqlite_webhook_event_stored_unapplied(
    on_sqlite, connection, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        stored, duplicates = webhooks.events_store(
            connection=connection, events=[_deal_event("ev-1")]
        )

    assert duplicates == 0
    assert callbacks == []
    event = WebhookEvent.objects.get()
    assert event.pk == stored[0].pk
    assert event.status == WebhookEvent.Status.PENDING
    assert event.message == SQLITE_NOTICE
    assert event.attempts == 0


def test_sqlite_webhook_apply_keeps_event_pending(on_sqlite, connection):
    event = WebhookEvent.objects.create(
        organization=connection.organization,
        connection=connection,
        key="k-1",
        event_id="ev-2",
        object_type="deals",
        object_id="42",
    )

    status = webhooks.webhook_event_apply(event_pk=event.pk)

    event.refresh_from_db()
    assert status == WebhookEvent.Status.PENDING
    assert event.status == WebhookEvent.Status.PENDING
    assert event.message == SQLITE_NOTICE
    assert event.attempts == 0
    assert event.processed_at is None


# API budget and help text per provider


def test_budget_pipedrive_limits(personas, in_org):
    pipedrive = _connection(personas, CrmConnection.Provider.PIPEDRIVE)

    budget = selectors.api_budget(pipedrive, personas.org)

    # The Pipedrive connector keeps to 20 requests per 2 s per API token.
    assert budget.burst_limit == 20
    assert budget.burst_window_seconds == 2
    assert budget.day_limit is None
    assert budget.day_percent is None
    assert "Free or Starter" not in budget.limits_note


def test_budget_salesforce_limits(personas, in_org):
    salesforce = _connection(personas, CrmConnection.Provider.SALESFORCE)

    budget = selectors.api_budget(salesforce, personas.org)

    # The Salesforce connector's own cap is 20 requests per second.
    assert budget.burst_limit == 20
    assert budget.burst_window_seconds == 1
    assert budget.day_limit is None
    assert "90%" in budget.limits_note


def test_budget_pipedrive_counts_two_seconds(personas, in_org):
    pipedrive = _connection(personas, CrmConnection.Provider.PIPEDRIVE)
    moment = dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=dt.UTC).timestamp()
    for offset in (0, 7, 8, 9):
        api_usage.record_call(pipedrive.pk, "UTC", at=moment + offset)

    # At moment + 9 the 2 s window contains the seconds moment + 8 and + 9.
    calls = api_usage.calls_in_burst_window(
        pipedrive.pk, at=moment + 9, window_seconds=2
    )
    assert calls == 2
    assert selectors.api_budget(pipedrive, personas.org).burst_window_seconds == 2


def test_pipedrive_page_shows_own_limits(personas, admin):
    pipedrive = _connection(personas, CrmConnection.Provider.PIPEDRIVE)

    html = admin.get(_connection_url("connection", pipedrive)).content.decode()

    assert "private app" not in html
    assert "Free or Starter" not in html
    assert "250000" not in html
    assert "<td>Last 2 seconds</td><td>0</td><td>20</td>" in html


def test_hubspot_page_keeps_tier_limits(admin, connection):
    html = admin.get(_connection_url("connection", connection)).content.decode()

    assert "Limits of a Free or Starter HubSpot private app." in html
    assert "<td>Last 10 seconds</td><td>0</td><td>100</td>" in html
    assert "<td>250000</td>" in html


def test_pipedrive_settings_have_no_tier(personas, admin, loopback_allowed):
    pipedrive = _connection(personas, CrmConnection.Provider.PIPEDRIVE)
    url = _connection_url("connection-edit", pipedrive)

    html = admin.get(url).content.decode()
    response = admin.post(
        url,
        {
            "name": "Pipedrive main",
            "base_url": "http://127.0.0.1:9/pipedrive/api",
            "status": "paused",
        },
    )

    assert 'name="api_tier"' not in html
    assert "HubSpot subscription" not in html
    assert response.status_code == 302
    pipedrive.refresh_from_db()
    assert pipedrive.name == "Pipedrive main"
    assert pipedrive.status == CrmConnection.Status.PAUSED
    assert pipedrive.api_tier == ApiTier.STARTER


def test_hubspot_settings_offer_tier(admin, connection):
    html = admin.get(_connection_url("connection-edit", connection)).content.decode()

    assert 'name="api_tier"' in html
    assert "HubSpot subscription" in html


@pytest.mark.parametrize(
    ("provider", "expected", "absent"),
    [
        ("hubspot", "internal name in HubSpot, such as dealtype", "Pipedrive"),
        (
            "salesforce",
            "API name in Salesforce, such as Type or Segment__c",
            "dealtype",
        ),
        ("pipedrive", "deal field's key in Pipedrive", "dealtype"),
    ],
)
def test_field_help_per_provider(personas, admin, provider, expected, absent):
    crm = _connection(personas, provider)

    html = admin.get(_connection_url("fields", crm)).content.decode()

    assert expected in html
    assert absent not in html


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("hubspot", "a closed stage with probability 100% is won"),
        ("salesforce", "a closed stage marked Won is won"),
        ("pipedrive", "won deals go to their pipeline's Won stage"),
    ],
)
def test_stage_help_per_provider(personas, admin, provider, expected):
    crm = _connection(personas, provider)

    html = admin.get(_connection_url("stages", crm)).content.decode()

    assert expected in html
    if provider != "hubspot":
        assert "probability 100%" not in html


# Credential checks: wrong address


@pytest.mark.parametrize("status", [404, 405, 501])
def test_pipedrive_wrong_address_status(stub_server, status):
    server = stub_server(
        status, b'{"success": false, "error": "Not found"}', "application/json"
    )

    with pytest.raises(credentials_check.CredentialsRejected) as raised:
        credentials_check.pipedrive_credentials_check(
            base_url=server.url + "/wrong", api_token=PD_TOKEN
        )

    assert str(raised.value) == (
        f"{server.url}/wrong/v1/users/me returned HTTP {status}, so it is not "
        "Pipedrive's API. Check the company API address."
    )


def test_salesforce_non_json_is_wrong_address(stub_server):
    server = stub_server(401, b"<html>Sign in</html>")

    with pytest.raises(credentials_check.CredentialsRejected) as raised:
        credentials_check.salesforce_credentials_check(
            base_url=server.url,
            client_id="key",
            client_secret="secret-1",
            refresh_token="refresh-1",
        )

    assert str(raised.value) == (
        f"{server.url}/services/oauth2/token returned HTTP 401 without a JSON "
        "body, so it is not Salesforce's API. Check the login or My Domain address."
    )


def test_wrong_address_hides_user_info(stub_server):
    server = stub_server(404, b"{}", "application/json")
    port = server.server.server_address[1]

    with pytest.raises(credentials_check.CredentialsRejected) as raised:
        credentials_check.pipedrive_credentials_check(
            base_url=f"http://admin:pw-9@127.0.0.1:{port}/api", api_token=PD_TOKEN
        )

    message = str(raised.value)
    assert message.startswith(f"http://127.0.0.1:{port}/api/v1/users/me returned")
    assert "pw-9" not in message
    assert "admin" not in message


def test_pipedrive_token_rejection_unchanged(stub_server):
    body = b'{"success": false, "error": "unauthorized access", "errorCode": 401}'
    server = stub_server(401, body, "application/json")

    with pytest.raises(credentials_check.CredentialsRejected) as raised:
        credentials_check.pipedrive_credentials_check(
            base_url=server.url, api_token=PD_TOKEN
        )

    assert str(raised.value).startswith(
        "Pipedrive rejected the API token (HTTP 401: unauthorized access)."
    )


def test_pipedrive_connect_page_names_wrong_address(
    personas, admin, loopback_allowed, stub_server
):
    server = stub_server(404, b"<html>Not Found</html>")

    response = admin.post(
        _url("connect-pipedrive"),
        {"name": "Pipedrive", "base_url": server.url + "/", "api_token": PD_TOKEN},
    )

    html = response.content.decode()
    assert f"{server.url}/v1/users/me returned HTTP 404" in html
    assert "rejected the API token" not in html
    assert PD_TOKEN not in html
    assert not CrmConnection.unscoped.exists()


# Connect HubSpot checks the token


def _hubspot_form(base_url: str, token: str = TOKEN) -> dict:
    return {
        "name": "HubSpot EU",
        "base_url": base_url,
        "access_token": token,
        "api_tier": "starter",
    }


def test_hubspot_connect_checks_token(personas, admin, loopback_allowed, hubspot):
    hubspot.add_token(TOKEN)

    response = admin.post(_url("connect-hubspot"), _hubspot_form(hubspot.url))

    assert response.status_code == 302
    assert [(r.method, r.path, r.status) for r in hubspot.log] == [
        ("GET", "/crm/v3/owners", 200)
    ]
    with tenant_context(personas.org):
        assert CrmConnection.objects.get().credentials == {"access_token": TOKEN}


def test_hubspot_connect_shows_rejection(personas, admin, loopback_allowed, hubspot):
    response = admin.post(
        _url("connect-hubspot"), _hubspot_form(hubspot.url, token="pat-na1-wrong")
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert (
        "HubSpot rejected the access token (HTTP 401, INVALID_AUTHENTICATION: "
        "Authentication credentials not found.)"
    ) in html
    assert "pat-na1-wrong" not in html
    assert not CrmConnection.unscoped.exists()


def test_hubspot_connect_wrong_address(
    personas, admin, loopback_allowed, hubspot, stub_server
):
    server = stub_server(405, b"")

    response = admin.post(_url("connect-hubspot"), _hubspot_form(server.url))

    html = response.content.decode()
    assert f"{server.url}/crm/v3/owners returned HTTP 405" in html
    assert "Check the API address." in html
    assert server.paths == ["/crm/v3/owners?limit=1"]
    assert not CrmConnection.unscoped.exists()
