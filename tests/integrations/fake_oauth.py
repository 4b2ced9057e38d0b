"""OAuth 2 refresh grants for the fake CRM servers (fake_hubspot, fake_pipedrive).

An app (client ID and secret) has refresh tokens. A refresh grant issues
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
        self._numbers = itertools.count(1)

    def add_client(self, client_id: str, client_secret: str, refresh_token: str):
        self.clients[client_id] = client_secret
        self.refresh_tokens[refresh_token] = client_id

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
        if self.clients.get(client_id) != client_secret or not client_secret:
            return INVALID_CLIENT
        if self.refresh_tokens.get(refresh_token) != client_id:
            return INVALID_GRANT
        return None
