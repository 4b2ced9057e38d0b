"""Reads of the core shared by pages: the audit log and API keys."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from spm.models import ApiKey, AuditLog, Organization, User


def _start_of_day(day: dt.date, organization: Organization) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=organization.zoneinfo)


def audit_log_list(
    *,
    organization: Organization,
    action: str = "",
    actor: User | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> QuerySet[AuditLog]:
    """Return the organisation's audit log entries, newest first.

    ``start`` and ``end`` are calendar dates in the organisation's time zone,
    both included. An empty ``action`` or a missing bound does not filter.
    """
    entries = AuditLog.objects.filter(organization=organization)
    if action:
        entries = entries.filter(action=action)
    if actor is not None:
        entries = entries.filter(actor=actor)
    if start is not None:
        entries = entries.filter(created_at__gte=_start_of_day(start, organization))
    if end is not None:
        next_day = end + dt.timedelta(days=1)
        entries = entries.filter(created_at__lt=_start_of_day(next_day, organization))
    return entries.select_related("actor").order_by("-created_at", "-id")


def audit_log_actions(*, organization: Organization) -> list[str]:
    """Return the distinct actions recorded for the organisation, sorted."""
    actions = (
        AuditLog.objects.filter(organization=organization)
        .order_by()
        .values_list("action", flat=True)
        .distinct()
    )
    return sorted(actions)


def audit_log_actors(*, organization: Organization) -> QuerySet[User]:
    """Return the users who appear as the actor of an entry of the organisation."""
    actor_ids = AuditLog.objects.filter(
        organization=organization, actor__isnull=False
    ).values("actor_id")
    return User.objects.filter(pk__in=actor_ids).order_by("email")


def api_key_list(*, organization: Organization) -> QuerySet[ApiKey]:
    """Return the organisation's API keys, live and revoked, newest first."""
    return (
        ApiKey.objects.filter(organization=organization)
        .select_related("created_by")
        .order_by("-created_at", "-id")
    )
