"""OpenAPI description of the API key authentication, for drf-spectacular."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "spm.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An organisation API key: `Authorization: Bearer <key>`. Create "
                "one with `manage.py create_api_key --organization SLUG`."
            ),
        }
