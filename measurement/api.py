"""REST endpoints for per-rep metrics and the deal list."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from measurement import progress, selectors
from measurement.periods import organization_today
from measurement.serializers import (
    DealListQuerySerializer,
    DealPageSerializer,
    DealSerializer,
    RepMetricsQuerySerializer,
    RepMetricsSerializer,
)
from spm.access import visible_member_ids
from spm.api import OrganizationAPIView
from spm.models import Membership, Team

ORGANIZATION_PARAMETER = OpenApiParameter(
    "organization",
    OpenApiTypes.STR,
    description=(
        "Organisation slug. Needed with a browser session; an API key already "
        "belongs to one organisation."
    ),
)


# Body of every error but a validation error.
ERROR_DETAIL_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
# Body of a 400: the messages by parameter name. A serializer field has a list
# of messages. A session request without ?organization= gets a single string.
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "additionalProperties": {
        "oneOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "string"},
        ]
    },
}


def error_responses(*, not_found: str) -> dict[int, OpenApiResponse]:
    """Return the error responses of an endpoint, for ``extend_schema``."""
    detail = ERROR_DETAIL_SCHEMA
    return {
        400: OpenApiResponse(
            VALIDATION_ERROR_SCHEMA,
            description="A query parameter is missing or invalid.",
        ),
        401: OpenApiResponse(
            detail, description="No credentials, or the API key is invalid or revoked."
        ),
        404: OpenApiResponse(detail, description=not_found),
        429: OpenApiResponse(
            detail,
            description="Too many requests: retry after the seconds in Retry-After.",
        ),
    }


NO_ORGANIZATION = (
    "The signed-in user is not a member of the organisation in ?organization=."
)


class _VisibleMembersMixin:
    """Members the caller may see: all for an API key, the tree for a session."""

    membership: Membership | None

    def visible_member_ids(self) -> set[int]:
        if self.membership is None:
            return set(Membership.objects.values_list("pk", flat=True))
        return visible_member_ids(self.membership)


class RepMetricsApi(_VisibleMembersMixin, OrganizationAPIView):
    @extend_schema(
        operation_id="metrics_reps_list",
        summary="Per-rep metrics for a period",
        description=(
            "One object per rep with the numbers of the team dashboard for the "
            "half-open period [start, end): end is the first day not included. "
            "Dates are calendar dates in the organisation's time zone. Money is "
            "a decimal string; win_rate and avg_cycle_days are null when there "
            "is no data. The goal fields (quota, attainment, pace, coverage, "
            "coverage_target, coverage_status, forecast) measure the bookings "
            "quota; attainment and coverage are null with no quota. "
            "stage_conversion counts, for each open stage of the pipeline with "
            "the most deals entering its stages in the period, the rep's deals "
            "that entered the stage and those that moved on to a later stage "
            "or won."
        ),
        parameters=[RepMetricsQuerySerializer, ORGANIZATION_PARAMETER],
        responses={
            200: RepMetricsSerializer(many=True),
            **error_responses(not_found=NO_ORGANIZATION),
        },
    )
    def get(self, request: Request) -> Response:
        query = RepMetricsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data

        rows = selectors.rep_rows(
            member_ids=self.visible_member_ids(),
            start=params["start"],
            end=params["end"],
            time_zone=self.organization.zoneinfo,
            team=self._team(params.get("team")),
        )
        progress.attach_progress(
            rows,
            organization=self.organization,
            start=params["start"],
            end=params["end"],
            today=organization_today(self.organization),
        )
        selectors.attach_stage_conversion(
            rows,
            start=params["start"],
            end=params["end"],
            time_zone=self.organization.zoneinfo,
        )
        return Response(RepMetricsSerializer(rows, many=True).data)

    def _team(self, public_id) -> Team | None:
        if public_id is None:
            return None
        team = Team.objects.filter(public_id=public_id).first()
        if team is None:
            raise exceptions.ValidationError(
                {"team": [f"No team with id {public_id} in this organisation."]}
            )
        return team


class DealPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class DealListApi(_VisibleMembersMixin, OrganizationAPIView):
    @extend_schema(
        operation_id="deals_list",
        summary="Deals, paginated",
        description=(
            "Every deal of the organisation for an API key; for a browser "
            "session, the deals owned by members the user may see. The ordering "
            "always ends with the deal id, so pages never repeat or skip a deal "
            "while the data is unchanged. Deals without the ordered value come "
            "last."
        ),
        parameters=[
            DealListQuerySerializer,
            ORGANIZATION_PARAMETER,
            OpenApiParameter(
                "page",
                {"type": "integer", "minimum": 1},
                description="Page number, from 1.",
            ),
            OpenApiParameter(
                "page_size",
                {"type": "integer", "minimum": 1},
                description=(
                    f"Deals per page: {DealPagination.page_size} when missing or "
                    f"not a positive whole number, and at most "
                    f"{DealPagination.max_page_size} (a larger value is lowered)."
                ),
            ),
        ],
        responses={
            200: DealPageSerializer,
            **error_responses(
                not_found=f"{NO_ORGANIZATION} Also returned for a page that is not "
                "a whole number, is below 1 or is past the last page."
            ),
        },
    )
    def get(self, request: Request) -> Response:
        query = DealListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)

        member_ids = None if self.membership is None else self.visible_member_ids()
        deals = selectors.deal_list(
            ordering=query.validated_data["ordering"], owner_ids=member_ids
        )
        paginator = DealPagination()
        page = paginator.paginate_queryset(deals, request, view=self)
        return paginator.get_paginated_response(DealSerializer(page, many=True).data)
