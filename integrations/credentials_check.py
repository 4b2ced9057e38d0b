"""Checks that Salesforce and Pipedrive credentials work before they are saved.

Each check sends one request, with no retries and a timeout of
CHECK_TIMEOUT_SECONDS for connecting and for each read, so the connect form
does not wait through the connectors' backoff. Redirects are not followed,
so the credentials go only to the address that passed the URL check. Error
messages carry the provider's own error text with every credential value
masked, because the form shows them on the page.
"""

from __future__ import annotations

import logging

import requests

logger = logging.getLogger(__name__)

# Connect and read timeout of each check request, in seconds.
CHECK_TIMEOUT_SECONDS = 10
MASK = "[hidden]"


class CredentialsRejected(Exception):
    """The CRM or the network rejected the credentials.

    The message contains no credential, so pages may show it.
    """


def salesforce_credentials_check(
    *, base_url: str, client_id: str, client_secret: str, refresh_token: str
) -> None:
    """Refresh an access token at ``base_url``, or raise CredentialsRejected."""
    credential_values = (client_id, client_secret, refresh_token)
    data = {
        "grant_type": "refresh_token",
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": refresh_token,
    }
    response = _send(
        "POST",
        base_url.rstrip("/") + "/services/oauth2/token",
        credential_values,
        data=data,
        headers={"Accept": "application/json"},
    )
    body = _json_object(response)
    if response.status_code < 400 and body.get("access_token"):
        return
    error = body.get("error") or f"HTTP {response.status_code}"
    description = body.get("error_description") or "no description"
    raise CredentialsRejected(
        _masked(
            f"Salesforce rejected the token refresh ({error}: {description}). "
            "Check the consumer key, consumer secret and refresh token.",
            credential_values,
        )
    )


def pipedrive_credentials_check(*, base_url: str, api_token: str) -> None:
    """Read the token's user with GET /v1/users/me, or raise CredentialsRejected."""
    credential_values = (api_token,)
    response = _send(
        "GET",
        base_url.rstrip("/") + "/v1/users/me",
        credential_values,
        headers={"Accept": "application/json", "x-api-token": api_token},
    )
    body = _json_object(response)
    if response.status_code < 400 and body.get("success") is not False:
        return
    error = body.get("error") or body.get("message") or "no message"
    info = body.get("error_info")
    detail = f"{error} ({info})" if info else str(error)
    raise CredentialsRejected(
        _masked(
            f"Pipedrive rejected the API token (HTTP {response.status_code}: "
            f"{detail}). Copy the token from Personal preferences, API.",
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


def _json_object(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _masked(text: str, credential_values: tuple[str, ...]) -> str:
    for secret in credential_values:
        if secret:
            text = text.replace(secret, MASK)
    return text
