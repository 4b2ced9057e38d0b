"""OAuth 2 token grants for the fake CRM servers (fake_hubspot, fake_pipedrive).

An app (client ID and secret) has refresh tokens. An authorization code
grant exchanges a code that ``add_code`` issued, as the provider's
authorization page would after the user allowed access, for an access token
and a new refresh token. A code works once, for the client and redirect URI
it was issued to. A refresh grant issues
a new access token that expires ``lifetime`` seconds later on the fake's
clock, or, with ``max_requests`` set, after that many API requests, so a
test can make a token expire in the middle of a sync. With ``rotate`` set,
each refresh also issues a new refresh token and revokes the old one.
The fake that owns a ``FakeOAuth`` formats the errors in its vendor's shape.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

# The reasons ``refresh`` rejects a grant, as OAuth 2 (RFC 6749, 5.2) names them.
INVALID_CLIENT = "invalid_client"
INVALID_GRANT = "invalid_grant"
UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type"
# An authorization code sent with another redirect URI than the one it was
# issued for. OAuth 2 calls it invalid_grant, but Pipedrive returns
# invalid_request, so the fakes tell it apart.
REDIRECT_URI_MISMATCH = "redirect_uri_mismatch"


@dataclass
class IssuedToken:
    expires_at: float
    requests: int = 0


@dataclass
class Refresh:
    """One refresh request the fake received, without its secrets."""

    client_id: str
    grant_type: str
    status: int


@dataclass
class IssuedCode:
    client_id: str
    redirect_uri: str
    used: bool = False


@dataclass
class CodeExchange:
    """One authorization code grant the fake received, without its secrets."""

    client_id: str
    redirect_uri: str
    status: int


class FakeOAuth:
    def __init__(self, prefix: str, lifetime: float = 1800):
        self.prefix = prefix
        self.lifetime = lifetime
        self.max_requests: int | None = None
        self.rotate = False
        self.clients: dict[str, str] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.issued: dict[str, IssuedToken] = {}
        self.refreshes: list[Refresh] = []
        self.codes: dict[str, IssuedCode] = {}
        self.code_exchanges: list[CodeExchange] = []
        self._numbers = itertools.count(1)

    def add_client(self, client_id: str, client_secret: str, refresh_token: str):
        self.clients[client_id] = client_secret
        self.refresh_tokens[refresh_token] = client_id

    def add_code(self, code: str, client_id: str, redirect_uri: str) -> None:
        """Issue ``code`` to the client, as after the user allowed access."""
        self.codes[code] = IssuedCode(client_id, redirect_uri)

    def revoke(self, refresh_token: str) -> None:
        self.refresh_tokens.pop(refresh_token, None)

    def expire_all(self, now: float) -> None:
        """Make every access token issued so far expired at ``now``."""
        for token in self.issued.values():
            token.expires_at = min(token.expires_at, now)

    def refresh(
        self,
        *,
        grant_type: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        now: float,
    ) -> tuple[str | None, dict]:
        """Return (None, token response) or (OAuth error code, {})."""
        error = self._rejection(grant_type, client_id, client_secret, refresh_token)
        self.refreshes.append(Refresh(client_id, grant_type, 400 if error else 200))
        if error is not None:
            return error, {}
        number = next(self._numbers)
        access_token = f"{self.prefix}-access-{number}"
        self.issued[access_token] = IssuedToken(now + self.lifetime)
        if self.rotate:
            self.revoke(refresh_token)
            refresh_token = f"{self.prefix}-refresh-{number}"
            self.refresh_tokens[refresh_token] = client_id
        return None, {
            "access_token": access_token,
            "refresh_token": refresh_token,
            "expires_in": int(self.lifetime),
        }

    def authorization_code(
        self,
        *,
        grant_type: str,
        client_id: str,
        client_secret: str,
        code: str,
        redirect_uri: str,
        now: float,
    ) -> tuple[str | None, dict]:
        """Return (None, token response) or (error code, {}) for a code grant."""
        error = self._code_rejection(
            grant_type, client_id, client_secret, code, redirect_uri
        )
        self.code_exchanges.append(
            CodeExchange(client_id, redirect_uri, 400 if error else 200)
        )
        if error is not None:
            return error, {}
        self.codes[code].used = True
        number = next(self._numbers)
        access_token = f"{self.prefix}-access-{number}"
        refresh_token = f"{self.prefix}-refresh-{number}"
        self.issued[access_token] = IssuedToken(now + self.lifetime)
        self.refresh_tokens[refresh_token] = client_id
        return None, {
            "access_token": access_token,
            "refresh_token": refresh_token,
            "expires_in": int(self.lifetime),
        }

    def check(self, access_token: str, now: float) -> str | None:
        """Count one API request with ``access_token``.

        Return None when the fake did not issue it, else "valid" or "expired".
        """
        token = self.issued.get(access_token)
        if token is None:
            return None
        over = self.max_requests is not None and token.requests >= self.max_requests
        if over or now >= token.expires_at:
            return "expired"
        token.requests += 1
        return "valid"

    def _rejection(
        self, grant_type: str, client_id: str, client_secret: str, refresh_token: str
    ) -> str | None:
        if grant_type != "refresh_token":
            return UNSUPPORTED_GRANT_TYPE
        if not self._client_valid(client_id, client_secret):
            return INVALID_CLIENT
        if self.refresh_tokens.get(refresh_token) != client_id:
            return INVALID_GRANT
        return None

    def _code_rejection(
        self,
        grant_type: str,
        client_id: str,
        client_secret: str,
        code: str,
        redirect_uri: str,
    ) -> str | None:
        if grant_type != "authorization_code":
            return UNSUPPORTED_GRANT_TYPE
        if not self._client_valid(client_id, client_secret):
            return INVALID_CLIENT
        issued = self.codes.get(code)
        if issued is None or issued.used or issued.client_id != client_id:
            return INVALID_GRANT
        if issued.redirect_uri != redirect_uri:
            return REDIRECT_URI_MISMATCH
        return None

    def _client_valid(self, client_id: str, client_secret: str) -> bool:
        return bool(client_secret) and self.clients.get(client_id) == client_secret
