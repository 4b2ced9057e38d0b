"""The request loop shared by the Salesforce and Pipedrive connectors.

``RetryingHttp.send`` takes a slot from the rolling-window limiter before each
attempt, retries a 429 after its Retry-After header (or a whole window when
the header is missing), and retries 5xx responses and network errors with
exponential backoff. Every other response goes back to the caller, which
turns 401, 403 and other 4xx codes into the provider's own errors.

A connection that cannot be opened is not retried while Celery runs tasks
eagerly, because the sync then runs inside the web request of "Sync now".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from urllib.parse import urlsplit

import requests
from celery import current_app
from urllib3.exceptions import NewConnectionError

from integrations.connectors.base import (
    AuthenticationFailed,
    ConnectorError,
    CrmUnavailable,
    OAuthTokens,
)
from integrations.connectors.ratelimit import Clock, RollingWindowLimiter

logger = logging.getLogger(__name__)

MAX_RATE_LIMITED_RETRIES = 10
MAX_SERVER_ERROR_RETRIES = 5
# Seconds to wait for the TCP connection, then for each read of the response.
# A CRM API that takes over 3 s to accept a connection is treated as down.
CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 30
REQUEST_TIMEOUT = (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)


def connect_failed(exc: requests.RequestException) -> bool:
    """Return whether a request failed before a connection to the server opened.

    That covers a refused connection, a name that does not resolve and a
    connect timeout, but not a connection dropped after it opened.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError) or not exc.args:
        return False
    return isinstance(getattr(exc.args[0], "reason", None), NewConnectionError)


def server_address(url: str) -> str:
    """Return the scheme, host and port of ``url``, without credentials or path."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def connect_error(provider_label: str, url: str, exc: Exception) -> CrmUnavailable:
    """Return the error for a connection to ``url`` that could not be opened."""
    return CrmUnavailable(
        f"Could not connect to {provider_label} at {server_address(url)} "
        f"({type(exc).__name__}). Check the connection's API address and "
        "that the server accepts connections. The next sync tries again."
    )


def fail_fast_on_connect() -> bool:
    """Return whether a connect failure should end the request without retries.

    While Celery runs tasks eagerly, a sync runs inside the web request that
    started it. Backing off 1 + 2 + 4 + 8 + 16 s there would keep the page
    waiting for over 30 s, so the first failure ends the run instead.
    """
    return bool(current_app.conf.task_always_eager)


class RetryingHttp:
    def __init__(
        self,
        *,
        provider_label: str,
        session: requests.Session,
        limiter: RollingWindowLimiter,
        clock: Clock,
    ):
        self.provider_label = provider_label
        self.session = session
        self.limiter = limiter
        self.clock = clock

    def send(
        self,
        method: str,
        url: str,
        *,
        params: dict | None = None,
        data: dict | None = None,
        json_body: dict | None = None,
        headers: Callable[[], dict] | None = None,
        path_for_logs: str = "",
    ) -> requests.Response:
        """Send one request and return the first response that is not 429 or 5xx.

        ``headers`` is called before each attempt, so a refreshed token is
        used by the retries. ``path_for_logs`` names the request in logs and
        errors without its query string, which can carry a token.
        """
        label = f"{method} {path_for_logs or url}"
        rate_limited = 0
        server_errors = 0
        while True:
            self.limiter.acquire()
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    json=json_body,
                    headers=headers() if headers else None,
                    timeout=REQUEST_TIMEOUT,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                reason = type(exc).__name__
                if connect_failed(exc):
                    if fail_fast_on_connect():
                        raise connect_error(self.provider_label, url, exc) from exc
                    reason = f"{reason} connecting to {server_address(url)}"
                server_errors += 1
                self._back_off(label, reason, server_errors)
                continue

            status = response.status_code
            if status == 429:
                rate_limited += 1
                self._wait_rate_limited(label, response, rate_limited)
                continue
            if status >= 500:
                server_errors += 1
                self._back_off(label, f"HTTP {status}", server_errors)
                continue
            return response

    def send_once(
        self,
        method: str,
        url: str,
        *,
        params: dict | None = None,
        json_body: dict | None = None,
        headers: Callable[[], dict] | None = None,
        path_for_logs: str = "",
    ) -> requests.Response:
        """Send one request without retrying it, after a slot from the limiter.

        Raise ``CrmUnavailable`` for a 429 or 5xx response or a network error,
        so the caller can retry later (the CRM write-back retries in Celery).
        Return every other response.
        """
        label = f"{method} {path_for_logs or url}"
        self.limiter.acquire()
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=json_body,
                headers=headers() if headers else None,
                timeout=REQUEST_TIMEOUT,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            if connect_failed(exc):
                raise connect_error(self.provider_label, url, exc) from exc
            raise CrmUnavailable(
                f"{self.provider_label} request {label} failed with "
                f"{type(exc).__name__}."
            ) from exc
        status = response.status_code
        if status == 429:
            raise CrmUnavailable(
                f"{self.provider_label} returned 429 for {label}.",
                retry_after=retry_after_seconds(response),
            )
        if status >= 500:
            raise CrmUnavailable(
                f"{self.provider_label} request {label} failed with HTTP {status}.",
                retry_after=retry_after_seconds(response),
            )
        return response

    def _wait_rate_limited(
        self, label: str, response: requests.Response, attempt: int
    ) -> None:
        if attempt > MAX_RATE_LIMITED_RETRIES:
            raise ConnectorError(
                f"{self.provider_label} still returned 429 for {label} after "
                f"{MAX_RATE_LIMITED_RETRIES} retries; the sync resumes on its next run."
            )
        delay = retry_after_seconds(response)
        if delay is None:
            delay = self.limiter.window_seconds
        logger.warning(
            "%s rate limit on %s (attempt %s); retrying in %.1f s",
            self.provider_label,
            label,
            attempt,
            delay,
        )
        self.clock.sleep(delay)

    def _back_off(self, label: str, reason: str, attempt: int) -> None:
        if attempt > MAX_SERVER_ERROR_RETRIES:
            raise ConnectorError(
                f"{self.provider_label} request {label} failed {attempt} times, "
                f"last with {reason}."
            )
        delay = float(2 ** (attempt - 1))
        logger.warning(
            "%s request %s failed with %s (attempt %s); retrying in %.0f s",
            self.provider_label,
            label,
            reason,
            attempt,
            delay,
        )
        self.clock.sleep(delay)


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def json_with_decimals(response: requests.Response):
    """Decode a JSON body with numbers as ``Decimal``, so amounts keep their cents."""
    return response.json(parse_float=Decimal)


def json_or_none(response: requests.Response):
    try:
        return json_with_decimals(response)
    except ValueError:
        return None


class OAuthRefresher:
    """The OAuth 2 tokens of one connector, and the refresh that renews them.

    ``request_token(refresh_token)`` sends the provider's refresh request and
    returns its response. After each successful refresh, ``on_refresh`` (when
    set) receives the new tokens, so the caller can store them. A lock makes
    the fetch-ahead thread of a sync and the main thread refresh once between
    them. Log lines name the provider, never a token.
    """

    def __init__(
        self,
        *,
        provider_label: str,
        tokens: OAuthTokens,
        request_token: Callable[[str], requests.Response],
        wall_clock: Callable[[], float] = time.time,
    ):
        self.provider_label = provider_label
        self.tokens = tokens
        self.on_refresh: Callable[[OAuthTokens], None] | None = None
        self._request_token = request_token
        self._wall_clock = wall_clock
        self._lock = threading.Lock()

    def access_token(self) -> str:
        """Return the access token, refreshed first when it expired or is missing."""
        with self._lock:
            if not self.tokens.usable(self._wall_clock()):
                self._refresh()
            return self.tokens.access_token

    def refresh_after_rejection(self, rejected: str) -> None:
        """Refresh after the CRM rejected ``rejected`` (HTTP 401).

        Nothing is sent when another thread already replaced that token.
        """
        with self._lock:
            if self.tokens.access_token == rejected:
                self._refresh()

    def _refresh(self) -> None:
        response = self._request_token(self.tokens.refresh_token)
        body = token_response_body(response, self.provider_label)
        rotated = bool(body.get("refresh_token")) and (
            body["refresh_token"] != self.tokens.refresh_token
        )
        self.tokens = self.tokens.renewed(body, self._wall_clock())
        logger.info(
            "%s access token refreshed (expires in %s s, refresh token %s)",
            self.provider_label,
            body.get("expires_in", "unknown"),
            "rotated" if rotated else "unchanged",
        )
        if self.on_refresh is not None:
            self.on_refresh(self.tokens)


def token_response_body(response: requests.Response, provider_label: str) -> dict:
    """Return the JSON body of a successful token response, else raise.

    A 4xx is ``AuthenticationFailed`` naming the provider's error and
    description: OAuth's ``error`` and ``error_description``, or HubSpot's
    ``status`` and ``message`` (such as BAD_REFRESH_TOKEN). A 429 or 5xx is
    ``CrmUnavailable``, because a later run may succeed with the same
    refresh token.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    if status == 429 or status >= 500:
        raise CrmUnavailable(
            f"{provider_label} token refresh failed with HTTP {status}. The next "
            "sync tries again.",
            retry_after=retry_after_seconds(response),
        )
    if status >= 400:
        error = body.get("error") or body.get("status") or f"HTTP {status}"
        description = (
            body.get("error_description") or body.get("message") or "no description"
        )
        raise AuthenticationFailed(
            f"{provider_label} rejected the token refresh ({error}: {description}). "
            f"Reconnect the {provider_label} connection."
        )
    if not body.get("access_token"):
        raise ConnectorError(
            f"{provider_label}'s token response (HTTP {status}) has no access_token."
        )
    return body
