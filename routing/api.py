"""Lead intake and lead lookup over the REST API, for organisation API keys."""

from __future__ import annotations

import re
import uuid

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from routing import selectors, services
from routing.config_cache import config_scope
from routing.normalization import LeadInputError
from routing.serializers import (
    LeadInputSerializer,
    LeadIntakeSerializer,
    LeadListQuerySerializer,
    LeadPageSerializer,
    LeadSerializer,
)
from spm.api import OrganizationAPIView
from spm.models import ApiKey

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Printable ASCII without spaces, as idempotency keys (UUIDs, hashes) are.
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

DETAIL_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
FIELD_ERRORS_SCHEMA = {
    "type": "object",
    "additionalProperties": {
        "oneOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "object"},
            {"type": "string"},
        ]
    },
}


def _errors(**described: str) -> dict[int, OpenApiResponse]:
    codes = {
        401: "No credentials, or the API key is invalid or revoked.",
        403: "A browser session: these endpoints take an organisation API key.",
        429: "Too many requests: retry after the seconds in Retry-After.",
        **{int(code.removeprefix("s")): text for code, text in described.items()},
    }
    return {
        code: OpenApiResponse(
            FIELD_ERRORS_SCHEMA if code == 400 else DETAIL_SCHEMA, description=text
        )
        for code, text in sorted(codes.items())
    }


class ApiKeyRequired(permissions.BasePermission):
    message = (
        "Lead endpoints take an organisation API key "
        "(Authorization: Bearer <key>), not a browser session."
    )

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ApiKey)


class LeadPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class _LeadApi(OrganizationAPIView):
    permission_classes = [permissions.IsAuthenticated, ApiKeyRequired]


class LeadListApi(_LeadApi):
    @extend_schema(
        operation_id="leads_list",
        summary="Leads, newest first",
        description=(
            "Leads of the organisation, by the time intake received them, newest "
            "first; leads that did not come through intake follow, newest id "
            "first."
        ),
        parameters=[
            LeadListQuerySerializer,
            OpenApiParameter(
                "page", {"type": "integer", "minimum": 1}, description="Page, from 1."
            ),
            OpenApiParameter(
                "page_size",
                {"type": "integer", "minimum": 1},
                description=(
                    f"Leads per page: {LeadPagination.page_size} when missing or "
                    f"not a positive whole number, at most "
                    f"{LeadPagination.max_page_size}."
                ),
            ),
        ],
        responses={
            200: LeadPageSerializer,
            **_errors(
                s400="A query parameter is invalid.",
                s404="The page is not a whole number, below 1 or past the last page.",
            ),
        },
    )
    def get(self, request: Request) -> Response:
        query = LeadListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        leads = selectors.lead_list(
            routing_status=query.validated_data.get("routing_status")
        )
        paginator = LeadPagination()
        page = paginator.paginate_queryset(leads, request, view=self)
        return paginator.get_paginated_response(LeadSerializer(page, many=True).data)

    @extend_schema(
        operation_id="leads_create",
        summary="Receive a lead and route it",
        description=(
            "Stores the lead and answers 201 once it is committed; routing then "
            "assigns it to a rep within milliseconds (GET the lead to see where "
            "it went). Email, domain, country and phone are normalised. Send an "
            "Idempotency-Key to make retries safe: a request with a key already "
            "used gets the first response again, with the same status and body "
            "and the header Idempotent-Replayed: true, and no second lead."
        ),
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                OpenApiTypes.STR,
                location=OpenApiParameter.HEADER,
                description=(
                    "Any unique string of 1 to 255 printable ASCII characters "
                    "without spaces, such as a UUID, per lead."
                ),
            ),
        ],
        request=LeadInputSerializer,
        responses={
            201: LeadIntakeSerializer,
            **_errors(
                s400=(
                    "A field is missing or invalid, or the Idempotency-Key is "
                    "malformed. The body names each field with its reasons; "
                    "nothing is stored."
                ),
                s422="The Idempotency-Key was used before with a different body.",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        if key and not IDEMPOTENCY_KEY.match(key):
            return Response(
                {
                    IDEMPOTENCY_HEADER: [
                        "Use 1 to 255 printable ASCII characters without spaces."
                    ]
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        payload = LeadInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            version = getattr(request.auth, "config_version", None)
            with config_scope(self.organization.pk, version=version):
                result = services.lead_intake(
                    organization=self.organization,
                    fields=payload.validated_data,
                    render=lambda lead: dict(LeadSerializer(lead).data),
                    idempotency_key=key,
                    fingerprint=services.request_fingerprint(payload.validated_data),
                )
        except LeadInputError as error:
            return Response(error.errors, status=status.HTTP_400_BAD_REQUEST)
        except services.IdempotencyKeyReused as error:
            return Response(
                {"detail": str(error)}, status=status.HTTP_422_UNPROCESSABLE_ENTITY
            )
        headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
        return Response(result.body, status=result.status, headers=headers)


class LeadDetailApi(_LeadApi):
    @extend_schema(
        operation_id="leads_retrieve",
        summary="One lead, with its routing status and owner",
        parameters=[
            OpenApiParameter(
                "lead_id",
                OpenApiTypes.UUID,
                location=OpenApiParameter.PATH,
                description="The lead's id, as returned when it was received.",
            ),
        ],
        responses={
            200: LeadSerializer,
            **_errors(s404="No lead with this id in the organisation."),
        },
    )
    def get(self, request: Request, lead_id: str) -> Response:
        try:
            public_id = uuid.UUID(lead_id)
        except ValueError:
            raise Http404("No lead with this id in the organisation.") from None
        lead = selectors.lead_by_public_id(public_id)
        if lead is None:
            raise Http404("No lead with this id in the organisation.")
        return Response(LeadSerializer(lead).data)
