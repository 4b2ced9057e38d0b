"""Checks that HubSpot, Salesforce and Pipedrive credentials work before saving.

Each check sends one request (the Pipedrive OAuth 2 check sends two: the
token refresh, then a read on the company's API address), with no retries
and a timeout of
CHECK_TIMEOUT_SECONDS for connecting and for each read, so the connect form
does not wait through the connectors' backoff. Redirects are not followed,
so the credentials go only to the address that passed the URL check. Error
messages carry the provider's own error text with every credential value
masked, because the form shows them on the page. A 404, 405 or 501, or a
body that is not JSON, means the address is not the CRM's API, and the
error names the address instead of blaming the credentials.

The OAuth 2 checks of HubSpot and Pipedrive refresh an access token and
return it, so the connection stores it, together with the refresh token
the response names, which replaces the one entered when the CRM rotates it.
"""

from __future__ import annotations

import base64
import logging
import time
from urllib.parse import urlsplit, urlunsplit

import requests

from integrations.connectors.base import OAuthTokens

logger = logging.getLogger(__name__)

# Connect and read timeout of each check request, in seconds.
CHECK_TIMEOUT_SECONDS = 10
MASK = "[hidden]"
# Statuses that mean the request reached no API endpoint of the CRM: no such
# path, a method the path does not take, or a server without the API.
WRONG_ADDRESS_STATUSES = (404, 405, 501)


class CredentialsRejected(Exception):
    """The CRM or the network rejected the credentials.

    The message contains no credential, so pages may show it.
    """


def hubspot_credentials_check(*, base_url: str, access_token: str) -> None:
    """Read one owner with GET /crm/v3/owners, or raise CredentialsRejected."""
    credential_values = (access_token,)
    response = _send(
        "GET",
        base_url.rstrip("/") + "/crm/v3/owners?limit=1",
        credential_values,
        headers={
            "Accept": "application/json",
            "Authorization": f"Bearer {access_token}",
        },
    )
    body = _api_json(response, "HubSpot", "API address")
    if response.status_code < 400:
        return
    category = body.get("category") or f"HTTP {response.status_code}"
    message = body.get("message") or "no message"
    raise CredentialsRejected(
        _masked(
            f"HubSpot rejected the access token (HTTP {response.status_code}, "
            f"{category}: {message}). Copy the token from the private app's "
            "Auth tab and check that it has the crm.objects.owners.read scope.",
            credential_values,
        )
    )


def salesforce_credentials_check(
    *, base_url: str, client_id: str, client_secret: str, refresh_token: str
) -> None:
    """Refresh an access token at ``base_url``, or raise CredentialsRejected."""
    _refresh_grant(
        provider="Salesforce",
        url=base_url.rstrip("/") + "/services/oauth2/token",
        address_label="login or My Domain address",
        credential_values=(client_id, client_secret, refresh_token),
        data={
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        },
        advice="Check the consumer key, consumer secret and refresh token.",
    )


def hubspot_oauth_credentials_check(
    *, base_url: str, client_id: str, client_secret: str, refresh_token: str
) -> OAuthTokens:
    """Refresh an access token with POST /oauth/v1/token and return the tokens.

    Raise CredentialsRejected when HubSpot rejects the refresh.
    """
    body = _refresh_grant(
        provider="HubSpot",
        url=base_url.rstrip("/") + "/oauth/v1/token",
        address_label="API address",
        credential_values=(client_id, client_secret, refresh_token),
        data={
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        },
        advice="Check the app's client ID, client secret and the refresh token.",
    )
    return OAuthTokens(refresh_token=refresh_token).renewed(body, time.time())


def pipedrive_oauth_credentials_check(
    *,
    base_url: str,
    token_url: str,
    client_id: str,
    client_secret: str,
    refresh_token: str,
) -> OAuthTokens:
    """Refresh an access token at ``token_url``, read GET /v1/users/me with it.

    Return the tokens, or raise CredentialsRejected.
    """
    credential_values = (client_id, client_secret, refresh_token)
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    body = _refresh_grant(
        provider="Pipedrive",
        url=token_url,
        address_label="OAuth token URL",
        credential_values=credential_values,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers={"Authorization": f"Basic {basic}"},
        advice="Check the app's client ID, client secret and the refresh token.",
    )
    tokens = OAuthTokens(refresh_token=refresh_token).renewed(body, time.time())
    _pipedrive_user_read(
        base_url,
        {"Authorization": f"Bearer {tokens.access_token}"},
        (*credential_values, tokens.access_token, tokens.refresh_token),
        "OAuth access token",
    )
    return tokens


def pipedrive_credentials_check(*, base_url: str, api_token: str) -> None:
    """Read the token's user with GET /v1/users/me, or raise CredentialsRejected."""
    headers = {"x-api-token": api_token}
    _pipedrive_user_read(base_url, headers, (api_token,), "API token")


def _pipedrive_user_read(
    base_url: str, auth_headers: dict, credential_values: tuple[str, ...], label: str
) -> None:
    response = _send(
        "GET",
        base_url.rstrip("/") + "/v1/users/me",
        credential_values,
        headers={"Accept": "application/json", **auth_headers},
    )
    body = _api_json(response, "Pipedrive", "company API address")
    if response.status_code < 400 and body.get("success") is not False:
        return
    error = body.get("error") or body.get("message") or "no message"
    info = body.get("error_info")
    detail = f"{error} ({info})" if info else str(error)
    advice = (
        "Copy the token from Personal preferences, API."
        if label == "API token"
        else "Check that the app may read users."
    )
    raise CredentialsRejected(
        _masked(
            f"Pipedrive rejected the {label} (HTTP {response.status_code}: "
            f"{detail}). {advice}",
            credential_values,
        )
    )


def authorization_code_grant(
    *,
    provider: str,
    url: str,
    credential_values: tuple[str, ...],
    data: dict,
    headers: dict | None = None,
) -> dict:
    """Exchange an authorization code at the token URL ``url``.

    Return the token response, or raise CredentialsRejected with the
    provider's error text, every value of ``credential_values`` masked.
    """
    return _token_grant(
        provider=provider,
        url=url,
        address_label="OAuth token URL",
        credential_values=credential_values,
        data=data,
        headers=headers,
        action="authorization code",
        advice="Connect again; if it fails again, check the app's client ID, "
        "client secret and redirect URL.",
    )


def _refresh_grant(**kwargs) -> dict:
    """Send an OAuth 2 refresh token grant and return the token response."""
    return _token_grant(action="token refresh", **kwargs)


def _token_grant(
    *,
    provider: str,
    url: str,
    address_label: str,
    credential_values: tuple[str, ...],
    data: dict,
    advice: str,
    action: str,
    headers: dict | None = None,
) -> dict:
    """Send an OAuth 2 token request and return the token response.

    Raise CredentialsRejected with the provider's error and ``advice`` when
    the response is an error or carries no access token. ``action`` names
    the request in the error, such as "token refresh".
    """
    response = _send(
        "POST",
        url,
        credential_values,
        data=data,
        headers={"Accept": "application/json", **(headers or {})},
    )
    body = _api_json(response, provider, address_label)
    if response.status_code < 400 and body.get("access_token"):
        return body
    # OAuth 2 names the error in "error", and HubSpot in "status" and "message".
    error = body.get("error") or body.get("status") or f"HTTP {response.status_code}"
    description = (
        body.get("error_description") or body.get("message") or "no description"
    )
    raise CredentialsRejected(
        _masked(
            f"{provider} rejected the {action} ({error}: {description}). {advice}",
            credential_values,
        )
    )


def _send(
    method: str, url: str, credential_values: tuple[str, ...], **kwargs
) -> requests.Response:
    try:
        response = requests.request(
            method,
            url,
            timeout=CHECK_TIMEOUT_SECONDS,
            allow_redirects=False,
            **kwargs,
        )
    except requests.RequestException as error:
        logger.info("CRM credentials check: %s %s failed: %s", method, url, error)
        raise CredentialsRejected(
            f"Connecting to {url} failed ({type(error).__name__}). Check the address."
        ) from None
    if response.is_redirect:
        location = _masked(response.headers.get("Location", ""), credential_values)
        raise CredentialsRejected(
            f"{url} redirected to {location}. Enter the address it redirects to."
        )
    return response


def _api_json(response: requests.Response, provider: str, field: str) -> dict:
    """Return the response's JSON object, or raise when the address is wrong.

    A JSON body that is not an object is returned as an empty dict.
    """
    address = _address(response.request.url)
    if response.status_code in WRONG_ADDRESS_STATUSES:
        raise CredentialsRejected(
            f"{address} returned HTTP {response.status_code}, so it is not "
            f"{provider}'s API. Check the {field}."
        )
    try:
        body = response.json()
    except ValueError:
        raise CredentialsRejected(
            f"{address} returned HTTP {response.status_code} without a JSON "
            f"body, so it is not {provider}'s API. Check the {field}."
        ) from None
    return body if isinstance(body, dict) else {}


def _address(url: str) -> str:
    """Return ``url`` without user info, query and fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _masked(text: str, credential_values: tuple[str, ...]) -> str:
    for secret in credential_values:
        if secret:
            text = text.replace(secret, MASK)
    return text
