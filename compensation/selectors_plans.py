"""Reads of the plan builder pages, each a fixed number of queries.

Every lookup by public id goes through the organisation-scoped default
manager, so an id of another organisation finds nothing and the page
returns 404.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Prefetch, Q
from django.http import Http404

from compensation.models import (
    CompPlan,
    FxRate,
    PlanAssignment,
    PlanComponent,
    PlanVersion,
    Statement,
)
from spm.models import Membership


def _get_or_404(queryset, public_id, label: str):
    try:
        found = queryset.filter(public_id=public_id).first()
    except ValueError:
        found = None
    if found is None:
        raise Http404(f"No such {label}.")
    return found


def plan_list() -> list[CompPlan]:
    """Return the plans with counts of versions and assignments. One query."""
    return list(
        CompPlan.objects.annotate(
            version_count=Count("versions", distinct=True),
            draft_count=Count(
                "versions", filter=Q(versions__status="draft"), distinct=True
            ),
            assignment_count=Count("assignments", distinct=True),
        ).order_by("name")
    )


def plan_get(public_id) -> CompPlan:
    return _get_or_404(CompPlan.objects.all(), public_id, "plan")


def plan_versions(plan: CompPlan) -> list[PlanVersion]:
    """Return the plan's versions, newest first, with components. Two queries."""
    return list(
        PlanVersion.objects.filter(plan=plan)
        .select_related("plan", "published_by")
        .prefetch_related("components")
        .order_by("-number")
    )


def plan_assignments(plan: CompPlan) -> list[PlanAssignment]:
    return list(
        PlanAssignment.objects.filter(plan=plan)
        .select_related("member", "plan")
        .order_by("member__display_name", "start_date")
    )


def version_get(public_id) -> PlanVersion:
    """Return a version with its plan and components. Two queries."""
    queryset = PlanVersion.objects.select_related("plan").prefetch_related(
        Prefetch("components", queryset=PlanComponent.objects.order_by("order", "id"))
    )
    return _get_or_404(queryset, public_id, "plan version")


def component_get(public_id) -> PlanComponent:
    queryset = PlanComponent.objects.select_related("version__plan")
    return _get_or_404(queryset, public_id, "plan component")


def assignment_get(public_id) -> PlanAssignment:
    queryset = PlanAssignment.objects.select_related("member", "plan")
    return _get_or_404(queryset, public_id, "plan assignment")


def latest_published(plan_id: int, day: dt.date | None = None) -> PlanVersion | None:
    """Return the published version in effect on ``day``, or the latest one."""
    versions = PlanVersion.objects.filter(plan_id=plan_id, status="published")
    if day is not None:
        versions = versions.filter(effective_from__lte=day)
    return (
        versions.select_related("plan")
        .prefetch_related(
            Prefetch(
                "components", queryset=PlanComponent.objects.order_by("order", "id")
            )
        )
        .order_by("-effective_from", "-number")
        .first()
    )


def member_current_plans(member: Membership, day: dt.date) -> list[PlanVersion]:
    """Return the published version of each plan ``member`` is on, on ``day``.

    Three queries: assignments, versions and their components.
    """
    plan_ids = list(
        PlanAssignment.objects.filter(member=member, start_date__lte=day)
        .exclude(end_date__lt=day)
        .values_list("plan_id", flat=True)
        .distinct()
    )
    if not plan_ids:
        return []
    versions = (
        PlanVersion.objects.filter(
            plan_id__in=plan_ids, status="published", effective_from__lte=day
        )
        .select_related("plan")
        .prefetch_related(
            Prefetch(
                "components", queryset=PlanComponent.objects.order_by("order", "id")
            )
        )
        .order_by("plan__name", "plan_id", "-effective_from", "-number")
    )
    current: dict[int, PlanVersion] = {}
    for version in versions:
        current.setdefault(version.plan_id, version)
    return list(current.values())


def fx_rate_list(limit: int) -> list[FxRate]:
    """Return the latest ``limit`` rates, newest first. One query."""
    return list(
        FxRate.objects.order_by("-date", "base_currency", "quote_currency")[:limit]
    )


def fx_rate_by_key(
    date: dt.date, base_currency: str, quote_currency: str
) -> FxRate | None:
    return FxRate.objects.filter(
        date=date, base_currency=base_currency, quote_currency=quote_currency
    ).first()


def locked_statements_from(plan_id: int, day: dt.date) -> int:
    """Count approved or paid statements that end after ``day``, of the plan's members.

    A member counts when one of their assignments to the plan covers
    ``day`` or starts after it. One query.
    """
    members = (
        PlanAssignment.objects.filter(plan_id=plan_id)
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=day))
        .values("member_id")
    )
    return Statement.objects.filter(
        member_id__in=members,
        status__in=[Statement.Status.APPROVED, Statement.Status.PAID],
        period_end__gt=day,
    ).count()
