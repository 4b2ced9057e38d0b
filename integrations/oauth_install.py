"""The OAuth 2 authorization code flow (RFC 6749, 4.1) for HubSpot and Pipedrive.

"Connect with HubSpot" sends the admin to the provider's authorization URL
with a random ``state``. The session keeps each state for
STATE_LIFETIME_SECONDS, bound to the organisation, the provider, the
connection being reconnected (if any) and the redirect URI. The callback
removes the state from the session, so a state works once. It then
exchanges the code at the token URL and stores the tokens in the
connection's encrypted credentials, the fields the paste form fills.

The app (client ID and secret, authorization and token URLs) is set per
deployment in the settings HUBSPOT_OAUTH_* and PIPEDRIVE_OAUTH_*. The client
secret goes only into the token request and the encrypted credentials,
which the connector needs to refresh the access token. It is never logged
and never shown.
"""

from __future__ import annotations

import base64
import logging
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.db import IntegrityError, transaction

from integrations import credentials_check, services, sync
from integrations.connectors.base import OAuthTokens
from integrations.connectors.hubspot import TOKEN_PATH as HUBSPOT_TOKEN_PATH
from integrations.models import ApiTier, CrmConnection
from notifications.addresses import UnsafeURL, url_check
from notifications.outbound import allow_private_addresses
from spm.models import Organization, User

logger = logging.getLogger(__name__)

# How long an authorization request may take, from the redirect to the
# provider until the callback, in seconds.
STATE_LIFETIME_SECONDS = 600
# Unfinished authorization requests kept per session. Starting another one
# drops the oldest, so an abandoned flow cannot grow the session.
MAX_PENDING_STATES = 10
SESSION_KEY = "integrations.oauth_states"
PROVIDERS = (CrmConnection.Provider.HUBSPOT, CrmConnection.Provider.PIPEDRIVE)

# The clock of state and access token expiry, in Unix seconds. Tests replace it.
wall_clock = time.time


class InstallFailed(Exception):
    """The authorization request or the code exchange failed.

    The message contains no credential, so pages may show it.
    """


@dataclass(frozen=True)
class OAuthApp:
    """A provider's OAuth 2 app as the settings configure it."""

    provider: str
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    # Space-separated scopes for the authorization URL; empty sends none.
    scopes: str = ""

    @property
    def label(self) -> str:
        return CrmConnection.Provider(self.provider).label


def oauth_app(provider: str) -> OAuthApp | None:
    """Return the provider's app, or None when its client ID is not set."""
    if provider not in PROVIDERS:
        return None
    prefix = provider.upper()
    client_id = getattr(settings, f"{prefix}_OAUTH_CLIENT_ID", "").strip()
    if not client_id:
        return None
    return OAuthApp(
        provider=provider,
        client_id=client_id,
        client_secret=getattr(settings, f"{prefix}_OAUTH_CLIENT_SECRET", "").strip(),
        authorize_url=getattr(settings, f"{prefix}_OAUTH_AUTHORIZE_URL"),
        token_url=getattr(settings, f"{prefix}_OAUTH_TOKEN_URL"),
        scopes=" ".join(getattr(settings, f"{prefix}_OAUTH_SCOPES", "").split()),
    )


def authorization_start(
    session,
    *,
    app: OAuthApp,
    organization: Organization,
    redirect_uri: str,
    connection: CrmConnection | None = None,
) -> str:
    """Store a new state in ``session`` and return the authorization URL.

    Raise InstallFailed when the app's settings are incomplete, before the
    admin leaves Attain.
    """
    if not app.client_secret:
        raise InstallFailed(
            f"{app.label} is not fully set up: {app.provider.upper()}_OAUTH_"
            "CLIENT_SECRET is empty. Ask the operator of this Attain "
            "installation to set it."
        )
    if app.provider == CrmConnection.Provider.HUBSPOT:
        _hubspot_api_url(app)
    state = secrets.token_urlsafe(32)
    now = wall_clock()
    pending = {
        key: entry
        for key, entry in session.get(SESSION_KEY, {}).items()
        if entry.get("expires_at", 0) > now
    }
    pending[state] = {
        "organization_id": organization.pk,
        "provider": app.provider,
        "connection_id": str(connection.public_id) if connection else "",
        "redirect_uri": redirect_uri,
        "expires_at": now + STATE_LIFETIME_SECONDS,
    }
    newest = sorted(pending.items(), key=lambda item: item[1]["expires_at"])
    session[SESSION_KEY] = dict(newest[-MAX_PENDING_STATES:])
    query = {
        "client_id": app.client_id,
        "redirect_uri": redirect_uri,
        "state": state,
    }
    if app.scopes:
        query["scope"] = app.scopes
    return f"{app.authorize_url}?{urlencode(query)}"


def state_take(session, *, state: str, provider: str) -> dict:
    """Remove ``state`` from ``session`` and return what it is bound to.

    Raise InstallFailed when it is missing, unknown (another session's, or
    already used), expired, or issued for another provider.
    """
    if not state:
        raise InstallFailed(
            "The response from the CRM has no state parameter, so Attain "
            "cannot tell which connection request it belongs to. Start the "
            "connection again from Attain."
        )
    pending = session.get(SESSION_KEY, {})
    entry = pending.pop(state, None)
    session[SESSION_KEY] = pending
    if entry is None:
        raise InstallFailed(
            "Unknown or already used state: this response does not match a "
            "connection request of this browser session. Start the "
            "connection again from Attain."
        )
    if entry["expires_at"] <= wall_clock():
        minutes = STATE_LIFETIME_SECONDS // 60
        raise InstallFailed(
            f"The connection request expired: finish it within {minutes} "
            "minutes. Start the connection again from Attain."
        )
    if entry["provider"] != provider:
        raise InstallFailed(
            "The response came back to another CRM's callback URL than the "
            "one the request was sent for. Check the redirect URL registered "
            "in the app, then start the connection again."
        )
    return entry


def code_exchange(app: OAuthApp, *, code: str, redirect_uri: str) -> dict:
    """Exchange ``code`` at the app's token URL and return the token response.

    HubSpot takes the client ID and secret in the form body, and Pipedrive
    in an HTTP Basic Authorization header. Raise InstallFailed with the
    provider's error text, credentials masked, when the exchange fails.
    """
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
    }
    headers = {}
    if app.provider == CrmConnection.Provider.PIPEDRIVE:
        pair = f"{app.client_id}:{app.client_secret}".encode()
        headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
    else:
        data["client_id"] = app.client_id
        data["client_secret"] = app.client_secret
    try:
        return credentials_check.authorization_code_grant(
            provider=app.label,
            url=app.token_url,
            credential_values=(app.client_secret, code),
            data=data,
            headers=headers,
        )
    except credentials_check.CredentialsRejected as error:
        raise InstallFailed(str(error)) from None


def connection_install(
    *,
    app: OAuthApp,
    organization: Organization,
    actor: User,
    token_response: dict,
    connection_id: str = "",
) -> CrmConnection:
    """Store the tokens of ``token_response`` in the organisation's connection.

    The organisation's connection of the provider gets the new credentials,
    or one is created when it has none. ``connection_id`` names the
    connection a reconnect started from, which must still exist. Must run
    inside the organisation's tenant context. Raise InstallFailed, storing
    nothing, when the response or the connection does not fit.
    """
    tokens = OAuthTokens(refresh_token="").renewed(token_response, wall_clock())
    if not tokens.refresh_token:
        raise InstallFailed(
            f"{app.label}'s token response has no refresh_token, so Attain "
            "could not renew the access token. Connect again."
        )
    credentials = {
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        **tokens.credentials(),
    }
    if app.provider == CrmConnection.Provider.PIPEDRIVE:
        credentials["token_url"] = app.token_url
        base_url = _pipedrive_api_url(token_response)
    else:
        base_url = _hubspot_api_url(app)
    try:
        with transaction.atomic():
            return _connection_save(
                app=app,
                organization=organization,
                actor=actor,
                base_url=base_url,
                credentials=credentials,
                connection_id=connection_id,
            )
    except IntegrityError:
        # Another request created the provider's connection meanwhile.
        raise InstallFailed(
            f"This organisation's {app.label} connection was created while "
            "this one was being connected. Reconnect it from its page."
        ) from None


def _connection_save(
    *,
    app: OAuthApp,
    organization: Organization,
    actor: User,
    base_url: str,
    credentials: dict,
    connection_id: str,
) -> CrmConnection:
    existing = (
        CrmConnection.objects.select_for_update().filter(provider=app.provider).first()
    )
    if connection_id and (existing is None or str(existing.public_id) != connection_id):
        raise InstallFailed(
            f"The {app.label} connection this reconnect started from no longer "
            "exists. Nothing was saved."
        )
    if existing is None:
        if app.provider == CrmConnection.Provider.HUBSPOT:
            return services.hubspot_connect(
                organization=organization,
                actor=actor,
                name=app.label,
                base_url=base_url,
                api_tier=ApiTier.STARTER,
                credentials=credentials,
            )
        return sync.connection_create(
            organization=organization,
            actor=actor,
            provider=app.provider,
            name=app.label,
            base_url=base_url,
            credentials=credentials,
        )
    if app.provider == CrmConnection.Provider.PIPEDRIVE and (
        existing.base_url.rstrip("/") != base_url
    ):
        # The synced rows' external ids belong to the company the connection
        # reads, so another company's tokens must not replace them.
        raise InstallFailed(
            f"The app was installed in the Pipedrive company at {base_url}, "
            f"but {existing.name} reads {existing.base_url}. Sign in to that "
            "company in Pipedrive and connect again. Nothing was saved."
        )
    return services.connection_credentials_replace(
        connection=existing, actor=actor, base_url=base_url, credentials=credentials
    )


def _hubspot_api_url(app: OAuthApp) -> str:
    """Return the API address of a HubSpot connection made with ``app``.

    The connector refreshes at ``{API address}/oauth/v1/token``, so the token
    URL must be that path on the API address.
    """
    if not app.token_url.endswith(HUBSPOT_TOKEN_PATH):
        raise InstallFailed(
            f"HUBSPOT_OAUTH_TOKEN_URL {app.token_url} does not end with "
            f"{HUBSPOT_TOKEN_PATH}, the path the connector refreshes tokens at. "
            "Ask the operator of this Attain installation to correct it."
        )
    return app.token_url.removesuffix(HUBSPOT_TOKEN_PATH)


def _pipedrive_api_url(token_response: dict) -> str:
    """Return the company API address from the token response's ``api_domain``.

    The address passes the same check as an address the admin enters.
    """
    api_domain = token_response.get("api_domain")
    if not isinstance(api_domain, str) or not api_domain:
        raise InstallFailed(
            "Pipedrive's token response has no api_domain, so Attain cannot "
            "tell which company to read. Connect again. Nothing was saved."
        )
    try:
        checked = url_check(api_domain, allow_private=allow_private_addresses())
    except UnsafeURL as error:
        raise InstallFailed(
            f"Pipedrive's company address {api_domain} is not allowed: {error}"
        ) from None
    return checked.url.rstrip("/") + "/api"
