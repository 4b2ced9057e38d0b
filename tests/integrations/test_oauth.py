"""OAuth 2 connections to HubSpot and Pipedrive, and refreshed tokens kept.

The syncs build their connectors with ``sync.connector_for``, as the Celery
task does, so the stored credentials and the token saving are exercised.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from activity.models import Account, Activity, Contact, Deal
from integrations import sync
from integrations.connectors.base import AuthenticationFailed
from integrations.connectors.pipedrive import OAUTH_TOKEN_URL
from integrations.connectors.ratelimit import REAL_CLOCK
from integrations.forms import HubSpotConnectForm, PipedriveConnectForm
from integrations.models import CrmConnection, SyncRun
from spm.tenancy import tenant_context
from tests.conftest import login
from tests.integrations.conftest import seed_portal
from tests.integrations.fake_hubspot import FakeHubSpot
from tests.integrations.fake_pipedrive import FakePipedrive
from tests.integrations.test_sync_pipedrive import assert_mirrors as pd_mirrors
from tests.integrations.test_sync_pipedrive import seed_company
from tests.integrations.test_sync_salesforce import (
    CLIENT_ID as SF_CLIENT_ID,
)
from tests.integrations.test_sync_salesforce import (
    CLIENT_SECRET as SF_CLIENT_SECRET,
)
from tests.integrations.test_sync_salesforce import (
    REFRESH_TOKEN as SF_REFRESH_TOKEN,
)
from tests.integrations.test_sync_salesforce import assert_mirrors as sf_mirrors
from tests.integrations.test_sync_salesforce import seed_org

CLIENT_ID = "5d9e3f6a-app-client-id"
CLIENT_SECRET = "app-client-secret-7731"
REFRESH_TOKEN = "refresh-token-entered-0042"
# A HubSpot sync of ``seed_portal`` sends these requests: owners, pipelines,
# one listing each of companies, contacts, deals, calls, emails, meetings
# and notes, and one of the archived records of each of the last seven:
# 2 + 7 + 7.
HUBSPOT_FULL_SYNC_REQUESTS = 16
HUBSPOT_CREATED = {
    "companies": 3,
    "contacts": 2,
    "deals": 5,
    "calls": 2,
    "emails": 1,
    "meetings": 1,
    "notes": 0,
}


@pytest.fixture
def hubspot_oauth(personas, in_org, loopback_allowed):
    fake = FakeHubSpot().start()
    fake.add_oauth_client(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN)
    seed_portal(fake)
    yield fake
    fake.stop()


@pytest.fixture
def hubspot_connection(personas, hubspot_oauth):
    return sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="hubspot",
        name="HubSpot",
        base_url=hubspot_oauth.url,
        credentials=_oauth_credentials(),
    )


@pytest.fixture
def pipedrive_oauth(personas, in_org, loopback_allowed):
    fake = FakePipedrive(limit=(100, 2.0)).start()
    # Real seconds, because connector_for's limiter waits in real time.
    fake.oauth_clock = REAL_CLOCK
    fake.add_oauth_client(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN)
    seed_company(fake)
    yield fake
    fake.stop()


@pytest.fixture
def pipedrive_connection(personas, pipedrive_oauth):
    return sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="pipedrive",
        name="Pipedrive",
        base_url=pipedrive_oauth.url,
        credentials={**_oauth_credentials(), "token_url": pipedrive_oauth.token_url},
    )


def _oauth_credentials() -> dict:
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
    }


def _sync(connection, kind=SyncRun.Kind.FULL) -> SyncRun:
    with tenant_context(connection.organization):
        run = sync.sync_run_create(connection=connection, kind=kind)
        return sync.sync_run_execute(run=run)


def _stored(connection) -> CrmConnection:
    return CrmConnection.unscoped.get(pk=connection.pk)


def _api_requests(fake) -> list:
    return [r for r in fake.log if "/oauth/" not in r.path]


def _created(run: SyncRun) -> dict:
    return {kind: counts["created"] for kind, counts in run.counts.items()}


# HubSpot


def test_hubspot_oauth_sync_sends_bearer(hubspot_oauth, hubspot_connection):
    run = _sync(hubspot_connection)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert len(hubspot_oauth.token_requests()) == 1
    assert hubspot_oauth.oauth.refreshes[0].grant_type == "refresh_token"
    assert hubspot_oauth.oauth.refreshes[0].client_id == CLIENT_ID
    tokens = {r.token for r in _api_requests(hubspot_oauth)}
    assert tokens == {"hs-oauth-access-1"}
    assert len(_api_requests(hubspot_oauth)) == HUBSPOT_FULL_SYNC_REQUESTS
    assert _created(run) == HUBSPOT_CREATED


def test_hubspot_token_expiring_mid_sync(hubspot_oauth, hubspot_connection):
    # The first token serves 10 of the 16 requests, and the 11th gets 401
    # EXPIRED_AUTHENTICATION. The second token serves the other 6.
    hubspot_oauth.oauth.max_requests = 10

    run = _sync(hubspot_connection)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert len(hubspot_oauth.token_requests()) == 2
    rejected = [r for r in _api_requests(hubspot_oauth) if r.status == 401]
    assert [r.token for r in rejected] == ["hs-oauth-access-1"]
    served = [r for r in _api_requests(hubspot_oauth) if r.status == 200]
    assert len(served) == HUBSPOT_FULL_SYNC_REQUESTS
    assert _created(run) == HUBSPOT_CREATED
    deals = sorted(Deal.objects.values_list("external_id", "amount"))
    assert [(i, str(a)) for i, a in deals] == [
        ("301", "10000.00"),
        ("302", "2500.50"),
        ("303", "4000.00"),
        ("304", "1200.00"),
        ("305", "700.00"),
    ]
    assert Account.objects.count() == 3
    assert Contact.objects.count() == 2
    assert Activity.objects.count() == 4


def test_hubspot_second_run_reuses_token(hubspot_oauth, hubspot_connection):
    _sync(hubspot_connection)
    credentials = _stored(hubspot_connection).credentials

    run = _sync(hubspot_connection)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert len(hubspot_oauth.token_requests()) == 1
    assert credentials["access_token"] == "hs-oauth-access-1"
    assert credentials["refresh_token"] == REFRESH_TOKEN
    assert credentials["client_secret"] == CLIENT_SECRET
    assert credentials["access_token_expires_at"] is not None
    assert {r.token for r in _api_requests(hubspot_oauth)} == {"hs-oauth-access-1"}


def test_hubspot_expired_stored_token_refreshed(hubspot_oauth, hubspot_connection):
    _sync(hubspot_connection)
    stored = _stored(hubspot_connection)
    stored.credentials = {**stored.credentials, "access_token_expires_at": 1.0}
    stored.save(update_fields=["credentials_encrypted"])

    _sync(stored)

    # Refreshed before the first request, so HubSpot rejected no request.
    assert len(hubspot_oauth.token_requests()) == 2
    assert [r for r in _api_requests(hubspot_oauth) if r.status == 401] == []
    assert _stored(hubspot_connection).credentials["access_token"] == (
        "hs-oauth-access-2"
    )


def test_hubspot_rotated_refresh_token_stored(hubspot_oauth, hubspot_connection):
    hubspot_oauth.oauth.rotate = True

    _sync(hubspot_connection)

    stored = _stored(hubspot_connection)
    assert stored.credentials["refresh_token"] == "hs-oauth-refresh-1"
    assert "hs-oauth-refresh-1" not in stored.credentials_encrypted
    assert "hs-oauth-access-1" not in stored.credentials_encrypted
    assert REFRESH_TOKEN not in stored.credentials_encrypted
    # The entered refresh token was revoked, so the next run needs the new one.
    hubspot_oauth.oauth.expire_all(REAL_CLOCK.now())
    assert _sync(hubspot_connection).status == SyncRun.Status.SUCCEEDED


def test_hubspot_invalid_grant_marks_error(hubspot_oauth, hubspot_connection, caplog):
    hubspot_oauth.oauth.revoke(REFRESH_TOKEN)

    with pytest.raises(AuthenticationFailed):
        _sync(hubspot_connection)

    stored = _stored(hubspot_connection)
    assert stored.status == CrmConnection.Status.ERROR
    assert stored.status_message == (
        "HubSpot rejected the token refresh (BAD_REFRESH_TOKEN: missing or "
        "invalid refresh token). Reconnect the HubSpot connection."
    )
    assert REFRESH_TOKEN not in caplog.text
    assert CLIENT_SECRET not in caplog.text


# Pipedrive


def test_pipedrive_oauth_sync_sends_bearer(
    personas, pipedrive_oauth, pipedrive_connection
):
    run = _sync(pipedrive_connection)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert len(pipedrive_oauth.token_requests()) == 1
    assert pipedrive_oauth.oauth.refreshes[0].client_id == CLIENT_ID
    assert {r.token for r in _api_requests(pipedrive_oauth)} == {"pd-oauth-access-1"}
    pd_mirrors(pipedrive_oauth, personas)


def test_pipedrive_token_expiring_mid_sync(
    personas, pipedrive_oauth, pipedrive_connection
):
    pipedrive_oauth.oauth.max_requests = 5

    run = _sync(pipedrive_connection)

    assert run.status == SyncRun.Status.SUCCEEDED
    rejected = [r for r in _api_requests(pipedrive_oauth) if r.status == 401]
    assert [r.token for r in rejected] == ["pd-oauth-access-1"]
    assert len(pipedrive_oauth.token_requests()) == 2
    pd_mirrors(pipedrive_oauth, personas)


def test_pipedrive_second_run_reuses_token(pipedrive_oauth, pipedrive_connection):
    _sync(pipedrive_connection)

    run = _sync(pipedrive_connection)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert len(pipedrive_oauth.token_requests()) == 1
    assert {r.token for r in _api_requests(pipedrive_oauth)} == {"pd-oauth-access-1"}
    credentials = _stored(pipedrive_connection).credentials
    assert credentials["access_token"] == "pd-oauth-access-1"
    assert credentials["token_url"] == pipedrive_oauth.token_url


def test_pipedrive_rotated_refresh_token_stored(pipedrive_oauth, pipedrive_connection):
    pipedrive_oauth.oauth.rotate = True

    _sync(pipedrive_connection)

    stored = _stored(pipedrive_connection)
    assert stored.credentials["refresh_token"] == "pd-oauth-refresh-1"
    assert "pd-oauth-refresh-1" not in stored.credentials_encrypted
    assert REFRESH_TOKEN not in stored.credentials_encrypted


def test_pipedrive_invalid_grant_marks_error(
    pipedrive_oauth, pipedrive_connection, caplog
):
    pipedrive_oauth.oauth.revoke(REFRESH_TOKEN)

    with pytest.raises(AuthenticationFailed):
        _sync(pipedrive_connection)

    stored = _stored(pipedrive_connection)
    assert stored.status == CrmConnection.Status.ERROR
    assert stored.status_message == (
        "Pipedrive rejected the token refresh (invalid_grant: Invalid grant: "
        "refresh_token is invalid). Reconnect the Pipedrive connection."
    )
    assert REFRESH_TOKEN not in caplog.text
    assert CLIENT_SECRET not in caplog.text


def test_pipedrive_token_url_must_be_allowed(pipedrive_oauth, pipedrive_connection):
    stored = _stored(pipedrive_connection)
    token_url = "ftp://127.0.0.1:9/oauth/token"
    stored.credentials = {**stored.credentials, "token_url": token_url}
    stored.save(update_fields=["credentials_encrypted"])

    with pytest.raises(sync.SyncFailed, match="OAuth token URL is not allowed"):
        _sync(stored)

    assert pipedrive_oauth.token_requests() == []


# Salesforce


@pytest.fixture
def salesforce_connection(personas, in_org, loopback_allowed, salesforce):
    return sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="salesforce",
        name="Salesforce",
        base_url=salesforce.url,
        credentials={
            "client_id": SF_CLIENT_ID,
            "client_secret": SF_CLIENT_SECRET,
            "refresh_token": SF_REFRESH_TOKEN,
        },
    )


@pytest.fixture
def salesforce():
    from tests.integrations.fake_salesforce import FakeSalesforce

    fake = FakeSalesforce().start()
    fake.add_client(SF_CLIENT_ID, SF_CLIENT_SECRET, SF_REFRESH_TOKEN)
    seed_org(fake)
    yield fake
    fake.stop()


def test_salesforce_second_run_reuses_token(
    personas, salesforce, salesforce_connection
):
    _sync(salesforce_connection)
    credentials = _stored(salesforce_connection).credentials

    run = _sync(salesforce_connection)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert len(salesforce.token_requests()) == 1
    assert credentials["instance_url"] == salesforce.url
    assert credentials["access_token"]
    assert credentials["access_token"] not in (
        _stored(salesforce_connection).credentials_encrypted
    )
    assert credentials["access_token_expires_at"] is None
    sf_mirrors(salesforce, personas)


def test_salesforce_expired_stored_session_refreshed(salesforce, salesforce_connection):
    _sync(salesforce_connection)
    salesforce.expire_sessions()

    run = _sync(salesforce_connection)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert len(salesforce.token_requests()) == 2
    assert len(salesforce.requests(status=401)) == 1


# Connect forms


def test_hubspot_oauth_form_names_client_secret(personas, loopback_allowed):
    data = {
        "name": "HubSpot",
        "base_url": "http://127.0.0.1:9",
        "api_tier": "starter",
        "client_id": CLIENT_ID,
        "refresh_token": REFRESH_TOKEN,
    }
    with tenant_context(personas.org):
        form = HubSpotConnectForm(data, auth_method="oauth")

        assert not form.is_valid()

    assert form.errors == {"client_secret": ["Client secret is required."]}
    assert "access_token" not in form.fields


def test_pipedrive_oauth_form_names_client_secret(personas, loopback_allowed):
    data = {
        "name": "Pipedrive",
        "base_url": "http://127.0.0.1:9/api",
        "client_id": CLIENT_ID,
        "refresh_token": REFRESH_TOKEN,
        "token_url": "http://127.0.0.1:9/oauth/token",
    }
    with tenant_context(personas.org):
        form = PipedriveConnectForm(data, auth_method="oauth")

        assert not form.is_valid()

    assert form.errors == {"client_secret": ["Client secret is required."]}
    assert "api_token" not in form.fields
    assert form.fields["token_url"].initial == OAUTH_TOKEN_URL


def test_token_form_has_no_oauth_fields(personas):
    with tenant_context(personas.org):
        form = PipedriveConnectForm()

    assert "api_token" in form.fields
    assert "client_secret" not in form.fields
    assert "token_url" not in form.fields


def _url(name: str) -> str:
    return reverse(f"integrations:{name}", kwargs={"org_slug": "acme"})


def test_hubspot_oauth_connect_stores_tokens(personas, hubspot_oauth):
    admin = login(Client(), personas.admin)
    form = {
        "auth_method": "oauth",
        "name": "HubSpot",
        "base_url": hubspot_oauth.url,
        "api_tier": "starter",
        **_oauth_credentials(),
    }

    response = admin.post(_url("connect-hubspot"), form)

    assert response.status_code == 302
    connection = CrmConnection.unscoped.get()
    assert connection.credentials["refresh_token"] == REFRESH_TOKEN
    assert connection.credentials["access_token"] == "hs-oauth-access-1"
    assert len(hubspot_oauth.token_requests()) == 1
    # The sync reuses the access token the check got.
    assert _sync(connection).status == SyncRun.Status.SUCCEEDED
    assert len(hubspot_oauth.token_requests()) == 1


def test_pipedrive_oauth_connect_page_shows_fields(personas):
    admin = login(Client(), personas.admin)

    html = admin.get(_url("connect-pipedrive") + "?auth=oauth").content.decode()

    assert 'name="client_secret"' in html
    assert 'name="token_url"' in html
    assert 'name="api_token"' not in html
    assert 'value="oauth"' in html
