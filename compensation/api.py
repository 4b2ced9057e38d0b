"""REST endpoint of compensation: the payroll export as JSON."""

from __future__ import annotations

import datetime as dt

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from compensation.selectors_trust import payroll_rows
from goals.calendar import month_range
from goals.periods import organization_today
from measurement.api import ORGANIZATION_PARAMETER, error_responses
from spm.api import OrganizationAPIView
from spm.models import Membership


class PayrollQuerySerializer(serializers.Serializer):
    period = serializers.RegexField(
        r"^\d{4}-\d{2}$",
        required=False,
        help_text="The month, as YYYY-MM; the current month when left out.",
        error_messages={"invalid": "Use a month such as 2024-03."},
    )

    def validate_period(self, value: str) -> dt.date:
        try:
            return dt.datetime.strptime(value, "%Y-%m").date()
        except ValueError:
            raise serializers.ValidationError(
                f"Invalid month {value!r}: use a month such as 2024-03."
            ) from None


class PayrollRowSerializer(serializers.Serializer):
    rep = serializers.CharField()
    employee_id = serializers.CharField(
        help_text="The member's employee ID; empty when an admin has set none."
    )
    email = serializers.CharField()
    amount = serializers.CharField(help_text="Decimal string, two places.")
    currency = serializers.CharField(help_text="ISO 4217 code.")


class PayrollApi(OrganizationAPIView):
    @extend_schema(
        operation_id="payroll_list",
        summary="Approved and paid statements of a month, one row per rep",
        description=(
            "The columns of the payroll CSV. Drafts are left out. Needs an "
            "organisation API key, or a browser session of an admin."
        ),
        parameters=[
            PayrollQuerySerializer,
            ORGANIZATION_PARAMETER,
        ],
        responses={
            200: PayrollRowSerializer(many=True),
            403: OpenApiResponse(description="The signed-in member is not an admin."),
            **error_responses(
                not_found="The signed-in user is not a member of the organisation."
            ),
        },
    )
    def get(self, request: Request) -> Response:
        if self.membership is not None and not self.membership.is_admin:
            raise exceptions.PermissionDenied("Only an admin can read payroll.")
        query = PayrollQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        day = query.validated_data.get("period") or organization_today(
            self.organization
        )
        period = month_range(day)
        member_ids = Membership.objects.values_list("pk", flat=True)
        rows = payroll_rows(list(member_ids), period.start, period.end)
        return Response(PayrollRowSerializer(rows, many=True).data)
