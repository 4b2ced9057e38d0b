"""API rate limits: one budget per API key, per signed-in user, per anonymous address.

Each class handles one kind of caller and lets the others through, so a
request is counted against exactly one budget. The rates come from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` and are read on every request,
so a changed setting takes effect without a restart of the class. A refused
request gets 429 with a Retry-After header in seconds.
"""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from spm.models import ApiKey


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        # DRF reads THROTTLE_RATES once, at import, but api_settings follows
        # changes of the setting.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def _key(self, ident: object) -> str:
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ApiKeyRateThrottle(_SettingsRateThrottle):
    """Requests made with one organisation API key."""

    scope = "api_key"

    def get_cache_key(self, request, view) -> str | None:
        if not isinstance(request.auth, ApiKey):
            return None
        # The prefix is unique per key and, unlike the whole key, not secret.
        return self._key(request.auth.prefix)


class SessionUserRateThrottle(_SettingsRateThrottle):
    """Requests made by one signed-in person, from a browser session."""

    scope = "user"

    def get_cache_key(self, request, view) -> str | None:
        if isinstance(request.auth, ApiKey) or not request.user.is_authenticated:
            return None
        return self._key(request.user.pk)


class AnonymousRateThrottle(_SettingsRateThrottle):
    """Requests with no credentials (the schema and docs pages), per client address."""

    scope = "anon"

    def get_cache_key(self, request, view) -> str | None:
        if request.user.is_authenticated:
            return None
        return self._key(self.get_ident(request))
