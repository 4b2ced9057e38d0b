"""The OAuth 2 authorization code flow that connects HubSpot and Pipedrive.

The authorization URL is never opened: each test issues the code in the
fake CRM itself, as the provider's consent page would after the admin
allowed access, then calls the callback with it. The token exchange and the
first sync go to the local fakes on 127.0.0.1.
"""

from __future__ import annotations

import base64
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from integrations import oauth_install, sync
from integrations.connectors.ratelimit import REAL_CLOCK
from integrations.models import CrmConnection, SyncRun
from notifications.models import OutboundSettings
from spm.models import AuditLog, Membership
from spm.tenancy import tenant_context
from tests.conftest import login
from tests.integrations.conftest import seed_portal
from tests.integrations.fake_hubspot import FakeHubSpot
from tests.integrations.fake_oauth import CodeExchange
from tests.integrations.fake_pipedrive import FakePipedrive
from tests.integrations.test_oauth import HUBSPOT_CREATED, HUBSPOT_FULL_SYNC_REQUESTS
from tests.integrations.test_sync_pipedrive import assert_mirrors as pd_mirrors
from tests.integrations.test_sync_pipedrive import seed_company

CLIENT_ID = "7fff1e36-attain-app"
CLIENT_SECRET = "attain-app-secret-5521"
# add_client needs a refresh token; the install flow never sends this one.
UNUSED_REFRESH_TOKEN = "refresh-token-not-sent"
CODE = "code-from-consent-page"
HUBSPOT_SCOPES = (
    "oauth crm.objects.companies.read crm.objects.contacts.read "
    "crm.objects.contacts.write crm.objects.deals.read "
    "crm.objects.owners.read crm.schemas.deals.read"
)
HUBSPOT_CALLBACK = "http://testserver/integrations/oauth/hubspot/callback/"
PIPEDRIVE_CALLBACK = "http://testserver/integrations/oauth/pipedrive/callback/"
# Lifetimes of the access tokens the fakes issue: HubSpot's example 1,800 s
# and Pipedrive's 3,599 s.
HUBSPOT_LIFETIME = 1800
PIPEDRIVE_LIFETIME = 3599


@pytest.fixture
def now(monkeypatch) -> float:
    """Fix the flow's clock at a whole second near the real time.

    Near the real time, because the fakes check the access token's expiry
    on the real clock during the sync.
    """
    fixed = float(int(time.time()))
    monkeypatch.setattr(oauth_install, "wall_clock", lambda: fixed)
    return fixed


@pytest.fixture
def private_addresses(settings, personas):
    """Let the organisation reach the fakes on http://127.0.0.1 (needs DEBUG)."""
    settings.DEBUG = True
    with tenant_context(personas.org):
        OutboundSettings.objects.update_or_create(
            organization=personas.org, defaults={"allow_private_addresses": True}
        )


@pytest.fixture
def hubspot(settings, personas, private_addresses):
    fake = FakeHubSpot().start()
    fake.add_oauth_client(CLIENT_ID, CLIENT_SECRET, UNUSED_REFRESH_TOKEN)
    settings.HUBSPOT_OAUTH_CLIENT_ID = CLIENT_ID
    settings.HUBSPOT_OAUTH_CLIENT_SECRET = CLIENT_SECRET
    settings.HUBSPOT_OAUTH_AUTHORIZE_URL = fake.url + "/oauth/authorize"
    settings.HUBSPOT_OAUTH_TOKEN_URL = fake.url + "/oauth/v1/token"
    yield fake
    fake.stop()


@pytest.fixture
def pipedrive(settings, personas, private_addresses):
    fake = FakePipedrive(limit=(100, 2.0)).start()
    # Real seconds, because connector_for's limiter waits in real time.
    fake.oauth_clock = REAL_CLOCK
    fake.add_oauth_client(CLIENT_ID, CLIENT_SECRET, UNUSED_REFRESH_TOKEN)
    settings.PIPEDRIVE_OAUTH_CLIENT_ID = CLIENT_ID
    settings.PIPEDRIVE_OAUTH_CLIENT_SECRET = CLIENT_SECRET
    settings.PIPEDRIVE_OAUTH_AUTHORIZE_URL = fake.token_url.replace(
        "/token", "/authorize"
    )
    settings.PIPEDRIVE_OAUTH_TOKEN_URL = fake.token_url
    yield fake
    fake.stop()


@pytest.fixture
def admin_client(personas) -> Client:
    return login(Client(), personas.admin)


def _start(client: Client, provider: str, org_slug: str = "acme"):
    url = reverse(
        "integrations:oauth-install",
        kwargs={"org_slug": org_slug, "provider": provider},
    )
    return client.post(url)


def _query(response) -> dict:
    return {k: v[-1] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}


def _state(client: Client, provider: str, org_slug: str = "acme") -> str:
    response = _start(client, provider, org_slug)
    assert response.status_code == 302
    return _query(response)["state"]


def _callback(client: Client, provider: str, **params):
    return client.get(f"/integrations/oauth/{provider}/callback/", params)


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _connections(organization) -> list[CrmConnection]:
    with tenant_context(organization):
        return list(CrmConnection.objects.all())


def _audit(organization, action: str) -> list[AuditLog]:
    with tenant_context(organization):
        return list(AuditLog.objects.filter(action=action))


def _sync(connection: CrmConnection) -> SyncRun:
    with tenant_context(connection.organization):
        run = sync.sync_run_create(connection=connection, kind=SyncRun.Kind.FULL)
        return sync.sync_run_execute(run=run)


# The redirect to the authorization URL


def test_hubspot_redirect_parameters(hubspot, admin_client, personas, now):
    response = _start(admin_client, "hubspot")

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        hubspot.url + "/oauth/authorize"
    )
    query = _query(response)
    assert set(query) == {"client_id", "redirect_uri", "scope", "state"}
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == HUBSPOT_CALLBACK
    assert query["scope"] == HUBSPOT_SCOPES
    # 32 random bytes in URL-safe base64 without padding.
    assert len(query["state"]) == 43
    assert CLIENT_SECRET not in response["Location"]
    pending = admin_client.session[oauth_install.SESSION_KEY]
    assert pending == {
        query["state"]: {
            "organization_id": personas.org.pk,
            "provider": "hubspot",
            "connection_id": "",
            "redirect_uri": HUBSPOT_CALLBACK,
            "expires_at": now + 600,
        }
    }


def test_pipedrive_redirect_has_no_scope(pipedrive, admin_client):
    response = _start(admin_client, "pipedrive")

    assert response.status_code == 302
    assert response["Location"].startswith(
        pipedrive.token_url.replace("/token", "/authorize") + "?"
    )
    query = _query(response)
    assert set(query) == {"client_id", "redirect_uri", "state"}
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == PIPEDRIVE_CALLBACK


def test_states_differ_per_request(hubspot, admin_client):
    first = _state(admin_client, "hubspot")
    second = _state(admin_client, "hubspot")

    assert first != second
    assert set(admin_client.session[oauth_install.SESSION_KEY]) == {first, second}


# A successful callback


def test_hubspot_callback_stores_tokens_and_syncs(hubspot, admin_client, personas, now):
    seed_portal(hubspot)
    state = _state(admin_client, "hubspot")
    hubspot.oauth.add_code(CODE, CLIENT_ID, HUBSPOT_CALLBACK)

    response = _callback(admin_client, "hubspot", code=CODE, state=state)

    [connection] = _connections(personas.org)
    assert response.status_code == 302
    assert response["Location"] == (f"/o/acme/integrations/{connection.public_id}/")
    assert hubspot.oauth.code_exchanges == [
        CodeExchange(CLIENT_ID, HUBSPOT_CALLBACK, 200)
    ]
    assert connection.provider == "hubspot"
    assert connection.name == "HubSpot"
    assert connection.base_url == hubspot.url
    assert connection.api_tier == "starter"
    assert connection.credentials == {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": "hs-oauth-refresh-1",
        "access_token": "hs-oauth-access-1",
        "access_token_expires_at": now + HUBSPOT_LIFETIME,
    }
    for secret in ("hs-oauth-access-1", "hs-oauth-refresh-1", CLIENT_SECRET):
        assert secret not in connection.credentials_encrypted
    [entry] = _audit(personas.org, "crm.connection_created")
    assert entry.actor == personas.admin.user
    assert entry.new == {
        "provider": "hubspot",
        "name": "HubSpot",
        "base_url": hubspot.url,
        "api_tier": "starter",
        "status": "active",
        "auth_method": "oauth",
    }
    assert _messages(response) == [
        "Connected HubSpot with OAuth 2. Run a sync to load its data."
    ]
    assert oauth_install.SESSION_KEY in admin_client.session
    assert admin_client.session[oauth_install.SESSION_KEY] == {}

    run = _sync(connection)

    assert run.status == SyncRun.Status.SUCCEEDED
    # The stored access token serves every request: no refresh was needed.
    assert len(hubspot.token_requests()) == 1
    api_requests = [r for r in hubspot.log if "/oauth/" not in r.path]
    assert {r.token for r in api_requests} == {"hs-oauth-access-1"}
    assert len(api_requests) == HUBSPOT_FULL_SYNC_REQUESTS
    created = {kind: counts["created"] for kind, counts in run.counts.items()}
    assert created == HUBSPOT_CREATED


def test_pipedrive_callback_stores_tokens_and_syncs(
    pipedrive, admin_client, personas, now
):
    seed_company(pipedrive)
    state = _state(admin_client, "pipedrive")
    pipedrive.oauth.add_code(CODE, CLIENT_ID, PIPEDRIVE_CALLBACK)

    response = _callback(admin_client, "pipedrive", code=CODE, state=state)

    [connection] = _connections(personas.org)
    assert response.status_code == 302
    assert response["Location"] == f"/o/acme/integrations/{connection.public_id}/"
    # The fake reads the client from the Basic header only, so a 200 with
    # this client ID shows the header was sent.
    assert pipedrive.oauth.code_exchanges == [
        CodeExchange(CLIENT_ID, PIPEDRIVE_CALLBACK, 200)
    ]
    assert connection.provider == "pipedrive"
    assert connection.name == "Pipedrive"
    # api_domain http://127.0.0.1:<port> plus /api.
    assert connection.base_url == pipedrive.url
    assert connection.credentials == {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": "pd-oauth-refresh-1",
        "access_token": "pd-oauth-access-1",
        "access_token_expires_at": now + PIPEDRIVE_LIFETIME,
        "token_url": pipedrive.token_url,
    }
    [entry] = _audit(personas.org, "crm.connection_created")
    assert entry.new == {
        "provider": "pipedrive",
        "name": "Pipedrive",
        "base_url": pipedrive.url,
    }

    run = _sync(connection)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert len(pipedrive.token_requests()) == 1
    api_requests = [r for r in pipedrive.log if "/oauth/" not in r.path]
    assert {r.token for r in api_requests} == {"pd-oauth-access-1"}
    with tenant_context(personas.org):
        pd_mirrors(pipedrive, personas)


def test_reconnect_replaces_credentials(hubspot, admin_client, personas, now):
    connection = sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="hubspot",
        name="HubSpot EU",
        base_url=hubspot.url,
        credentials={"access_token": "pat-revoked"},
    )
    connection.status = CrmConnection.Status.ERROR
    connection.status_message = "HubSpot rejected the access token."
    connection.save()
    url = reverse(
        "integrations:oauth-reconnect",
        kwargs={"org_slug": "acme", "connection_id": connection.public_id},
    )
    state = _query(admin_client.post(url))["state"]
    assert admin_client.session[oauth_install.SESSION_KEY][state][
        "connection_id"
    ] == str(connection.public_id)
    hubspot.oauth.add_code(CODE, CLIENT_ID, HUBSPOT_CALLBACK)

    response = _callback(admin_client, "hubspot", code=CODE, state=state)

    assert response.status_code == 302
    assert response["Location"] == f"/o/acme/integrations/{connection.public_id}/"
    [stored] = _connections(personas.org)
    assert stored.pk == connection.pk
    assert stored.name == "HubSpot EU"
    assert stored.status == CrmConnection.Status.ACTIVE
    assert stored.status_message == ""
    assert stored.credentials["access_token"] == "hs-oauth-access-1"
    assert stored.credentials["refresh_token"] == "hs-oauth-refresh-1"
    [entry] = _audit(personas.org, "crm.connection_updated")
    assert entry.old["status"] == "error"
    assert entry.old["credentials"] == "(stored)"
    assert entry.new["status"] == "active"
    assert entry.new["credentials"] == "(replaced)"


# Rejected states: no token request is sent


def _assert_rejected_state(response, fake, organization, reason: str) -> None:
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert fake.oauth.code_exchanges == []
    assert fake.token_requests() == []
    assert _connections(organization) == []


def test_callback_unknown_state(hubspot, admin_client, personas):
    _state(admin_client, "hubspot")
    hubspot.oauth.add_code(CODE, CLIENT_ID, HUBSPOT_CALLBACK)

    response = _callback(admin_client, "hubspot", code=CODE, state="forged-state")

    _assert_rejected_state(response, hubspot, personas.org, "Unknown or already used")


def test_callback_missing_state(hubspot, admin_client, personas):
    _state(admin_client, "hubspot")
    hubspot.oauth.add_code(CODE, CLIENT_ID, HUBSPOT_CALLBACK)

    response = _callback(admin_client, "hubspot", code=CODE)

    _assert_rejected_state(response, hubspot, personas.org, "no state parameter")


def test_callback_expired_state(hubspot, admin_client, personas, now, monkeypatch):
    state = _state(admin_client, "hubspot")
    hubspot.oauth.add_code(CODE, CLIENT_ID, HUBSPOT_CALLBACK)
    monkeypatch.setattr(oauth_install, "wall_clock", lambda: now + 600)

    response = _callback(admin_client, "hubspot", code=CODE, state=state)

    _assert_rejected_state(response, hubspot, personas.org, "expired")


def test_callback_state_last_second(hubspot, admin_client, personas, now, monkeypatch):
    state = _state(admin_client, "hubspot")
    hubspot.oauth.add_code(CODE, CLIENT_ID, HUBSPOT_CALLBACK)
    monkeypatch.setattr(oauth_install, "wall_clock", lambda: now + 599)

    response = _callback(admin_client, "hubspot", code=CODE, state=state)

    assert response.status_code == 302
    assert len(_connections(personas.org)) == 1


def test_callback_reused_state(hubspot, admin_client, personas):
    state = _state(admin_client, "hubspot")
    hubspot.oauth.add_code(CODE, CLIENT_ID, HUBSPOT_CALLBACK)
    hubspot.oauth.add_code("second-code", CLIENT_ID, HUBSPOT_CALLBACK)
    assert _callback(admin_client, "hubspot", code=CODE, state=state).status_code == (
        302
    )

    response = _callback(admin_client, "hubspot", code="second-code", state=state)

    assert response.status_code == 400
    assert "Unknown or already used" in response.content.decode()
    assert len(hubspot.oauth.code_exchanges) == 1
    [connection] = _connections(personas.org)
    assert connection.credentials["access_token"] == "hs-oauth-access-1"


def test_callback_state_for_other_provider(hubspot, pipedrive, admin_client, personas):
    state = _state(admin_client, "hubspot")
    pipedrive.oauth.add_code(CODE, CLIENT_ID, PIPEDRIVE_CALLBACK)

    response = _callback(admin_client, "pipedrive", code=CODE, state=state)

    _assert_rejected_state(response, pipedrive, personas.org, "another CRM")


def test_callback_other_organisations_state(hubspot, admin_client, personas, settings):
    # The admin of another organisation starts a connection there and sends
    # its callback link (their code, their state) to this admin.
    outsider = login(Client(), personas.outsider)
    state = _state(outsider, "hubspot", org_slug=personas.other_org.slug)
    hubspot.oauth.add_code(CODE, CLIENT_ID, HUBSPOT_CALLBACK)

    response = _callback(admin_client, "hubspot", code=CODE, state=state)

    _assert_rejected_state(response, hubspot, personas.org, "Unknown or already used")
    assert _connections(personas.other_org) == []


def test_callback_after_admin_role_lost(hubspot, admin_client, personas):
    state = _state(admin_client, "hubspot")
    hubspot.oauth.add_code(CODE, CLIENT_ID, HUBSPOT_CALLBACK)
    Membership.unscoped.filter(pk=personas.admin.pk).update(role="manager")

    response = _callback(admin_client, "hubspot", code=CODE, state=state)

    _assert_rejected_state(response, hubspot, personas.org, "not an admin")


# Errors from the provider


def test_callback_access_denied(hubspot, admin_client, personas):
    state = _state(admin_client, "hubspot")

    response = _callback(
        admin_client,
        "hubspot",
        state=state,
        error="access_denied",
        error_description="The user denied the request",
    )

    assert response.status_code == 302
    assert response["Location"] == "/o/acme/integrations/hubspot/connect/"
    assert _messages(response) == [
        "Access was denied in HubSpot, so nothing was connected. To connect, "
        "start again and allow access in HubSpot."
    ]
    assert hubspot.token_requests() == []
    assert _connections(personas.org) == []


def test_hubspot_rejected_code_stores_nothing(hubspot, admin_client, personas):
    state = _state(admin_client, "hubspot")

    response = _callback(admin_client, "hubspot", code="unknown-code", state=state)

    assert response.status_code == 302
    assert response["Location"] == "/o/acme/integrations/hubspot/connect/"
    assert hubspot.oauth.code_exchanges == [
        CodeExchange(CLIENT_ID, HUBSPOT_CALLBACK, 400)
    ]
    [message] = _messages(response)
    assert message.startswith(
        "HubSpot rejected the authorization code (BAD_AUTH_CODE: missing or "
        "unknown auth code)."
    )
    assert CLIENT_SECRET not in message
    assert _connections(personas.org) == []
    assert _audit(personas.org, "crm.connection_created") == []


def test_pipedrive_rejected_code_stores_nothing(pipedrive, admin_client, personas):
    state = _state(admin_client, "pipedrive")

    response = _callback(admin_client, "pipedrive", code="unknown-code", state=state)

    assert response.status_code == 302
    [message] = _messages(response)
    assert message.startswith(
        "Pipedrive rejected the authorization code (invalid_grant: Invalid "
        "grant: authorization_code is invalid)."
    )
    assert _connections(personas.org) == []


def test_pipedrive_other_company_rejected(pipedrive, admin_client, personas):
    existing = sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="pipedrive",
        name="Pipedrive",
        base_url="https://acme.pipedrive.com/api",
        credentials={"api_token": "pd-api-token"},
    )
    state = _state(admin_client, "pipedrive")
    pipedrive.oauth.add_code(CODE, CLIENT_ID, PIPEDRIVE_CALLBACK)

    response = _callback(admin_client, "pipedrive", code=CODE, state=state)

    assert response.status_code == 302
    [message] = _messages(response)
    assert message == (
        f"The app was installed in the Pipedrive company at {pipedrive.url}, "
        "but Pipedrive reads https://acme.pipedrive.com/api. Sign in to that "
        "company in Pipedrive and connect again. Nothing was saved."
    )
    [stored] = _connections(personas.org)
    assert stored.credentials == {"api_token": "pd-api-token"}
    assert stored.pk == existing.pk


# Access and settings


@pytest.mark.parametrize("member", ["manager", "rep1"])
def test_start_not_admin_404(hubspot, personas, member):
    client = login(Client(), getattr(personas, member))

    response = _start(client, "hubspot")

    assert response.status_code == 404
    assert oauth_install.SESSION_KEY not in client.session


def test_reconnect_other_organisations_connection_404(hubspot, admin_client, personas):
    other = sync.connection_create(
        organization=personas.other_org,
        actor=None,
        provider="hubspot",
        name="Globex HubSpot",
        base_url=hubspot.url,
        credentials={"access_token": "pat-globex"},
    )
    url = reverse(
        "integrations:oauth-reconnect",
        kwargs={"org_slug": "acme", "connection_id": other.public_id},
    )

    response = admin_client.post(url)

    assert response.status_code == 404
    assert oauth_install.SESSION_KEY not in admin_client.session


def test_connect_page_button_only_when_configured(admin_client, settings):
    url = reverse("integrations:connect-hubspot", kwargs={"org_slug": "acme"})
    settings.HUBSPOT_OAUTH_CLIENT_ID = ""

    without = admin_client.get(url).content.decode()
    settings.HUBSPOT_OAUTH_CLIENT_ID = CLIENT_ID
    settings.HUBSPOT_OAUTH_CLIENT_SECRET = CLIENT_SECRET
    with_app = admin_client.get(url).content.decode()

    assert "Connect with HubSpot" not in without
    assert 'id="connect-hubspot"' in without
    assert "Connect with HubSpot" in with_app
    assert 'id="connect-hubspot"' in with_app
    assert CLIENT_SECRET not in with_app


def test_start_without_client_id_404(admin_client, settings):
    settings.PIPEDRIVE_OAUTH_CLIENT_ID = ""

    response = _start(admin_client, "pipedrive")

    assert response.status_code == 404


def test_start_without_client_secret(hubspot, admin_client, settings):
    settings.HUBSPOT_OAUTH_CLIENT_SECRET = ""

    response = _start(admin_client, "hubspot")

    assert response.status_code == 302
    assert response["Location"] == "/o/acme/integrations/hubspot/connect/"
    assert _messages(response) == [
        "HubSpot is not fully set up: HUBSPOT_OAUTH_CLIENT_SECRET is empty. Ask "
        "the operator of this Attain installation to set it."
    ]


# The fakes' token endpoints


def test_fake_hubspot_wants_body_credentials(hubspot):
    hubspot.oauth.add_code(CODE, CLIENT_ID, HUBSPOT_CALLBACK)
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    form = {
        "grant_type": "authorization_code",
        "code": CODE,
        "redirect_uri": HUBSPOT_CALLBACK,
    }

    in_header = requests.post(
        hubspot.url + "/oauth/v1/token",
        data=form,
        headers={"Authorization": f"Basic {basic}"},
        timeout=5,
    )
    other_redirect = requests.post(
        hubspot.url + "/oauth/v1/token",
        data={
            **form,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": "https://elsewhere.test/callback",
        },
        timeout=5,
    )

    assert in_header.status_code == 400
    assert in_header.json()["status"] == "BAD_CLIENT_ID"
    assert other_redirect.status_code == 400
    assert other_redirect.json()["status"] == "BAD_REDIRECT_URI"
    assert not hubspot.oauth.codes[CODE].used


def test_fake_pipedrive_wants_basic_auth(pipedrive):
    pipedrive.oauth.add_code(CODE, CLIENT_ID, PIPEDRIVE_CALLBACK)

    in_body = requests.post(
        pipedrive.token_url,
        data={
            "grant_type": "authorization_code",
            "code": CODE,
            "redirect_uri": PIPEDRIVE_CALLBACK,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        timeout=5,
    )

    assert in_body.status_code == 400
    assert in_body.json()["message"] == "Invalid client: client is invalid"
    assert not pipedrive.oauth.codes[CODE].used
