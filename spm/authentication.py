from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions

from spm.services import api_key_lookup


class ApiKeyUser(AnonymousUser):
    """The caller behind an organisation API key: authenticated, with no person."""

    @property
    def is_authenticated(self) -> bool:
        return True


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <key>`` with a hashed per-organisation key."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(
            "latin-1", "replace"
        )
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        key = key.strip()
        if not key:
            raise exceptions.AuthenticationFailed("The Bearer API key is missing.")
        api_key = api_key_lookup(key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("The API key is invalid or revoked.")
        return ApiKeyUser(), api_key

    def authenticate_header(self, request) -> str:
        return self.keyword
