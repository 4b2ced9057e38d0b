"""Reads of leads and routing decisions, shared by the pages and the API."""

from __future__ import annotations

import datetime as dt

from django.db.models import F, Min, QuerySet

from activity.models import Activity, Lead
from routing.models import Assignment, Reassignment, ResponseTimer
from spm.access import visible_member_ids
from spm.models import Membership


def lead_list(*, routing_status: str | None = None) -> QuerySet[Lead]:
    """Return the organisation's leads, newest received first, with owners."""
    leads = Lead.objects.select_related("owner").order_by(
        F("received_at").desc(nulls_last=True), "-id"
    )
    if routing_status:
        leads = leads.filter(routing_status=routing_status)
    return leads


def lead_by_public_id(public_id) -> Lead | None:
    return Lead.objects.select_related("owner").filter(public_id=public_id).first()


def lead_visible_to(viewer: Membership, lead: Lead) -> bool:
    """Return whether a manager or admin may open the lead's page.

    An admin may open every lead. A manager may open the leads of the
    members they may see, and the leads with no owner yet (pending or
    queued).
    """
    if viewer.is_admin:
        return True
    if not viewer.is_manager:
        return False
    return lead.owner_id is None or lead.owner_id in visible_member_ids(viewer)


def assignment_for(lead: Lead) -> Assignment | None:
    """Return the lead's routing decision with its rule, pool and member."""
    return (
        Assignment.objects.select_related("member", "rule", "version", "pool")
        .filter(lead=lead)
        .first()
    )


def fallback_queue() -> QuerySet[Assignment]:
    """Return the decisions of the leads waiting in the fallback queue, oldest first."""
    return (
        Assignment.objects.filter(
            outcome=Assignment.Outcome.QUEUED,
            lead__routing_status=Lead.RoutingStatus.QUEUED,
        )
        .select_related("lead", "rule")
        .order_by("received_at", "id")
    )


def leads_owned_by(member: Membership) -> QuerySet[Lead]:
    """Return the member's leads, newest assignment first."""
    return (
        Lead.objects.filter(owner=member)
        .select_related("qualification")
        .order_by(F("assigned_at").desc(nulls_last=True), "-id")
    )


def first_activity_times(leads: list[Lead]) -> dict[int, dt.datetime]:
    """Return the time of the earliest activity on each lead, by anyone. One query.

    Leads that no one has touched are missing from the result. One grouped
    query for a page of leads replaces a correlated subquery per lead, which
    SQLite without table statistics planned as a scan of all the
    organisation's activities for every lead.
    """
    rows = (
        Activity.objects.filter(lead__in=[lead.pk for lead in leads])
        .order_by()
        .values("lead_id")
        .annotate(first=Min("occurred_at"))
    )
    return {row["lead_id"]: row["first"] for row in rows}


ESCALATIONS_SHOWN = 50


def lead_reassignments(lead: Lead) -> list[Reassignment]:
    """Return the lead's changes of owner by hand, oldest first. One query."""
    return list(
        Reassignment.objects.filter(lead=lead).select_related(
            "from_member", "to_member", "by"
        )
    )


def open_escalations(viewer: Membership) -> list[ResponseTimer]:
    """Return the escalated timers of leads still open and with the same owner.

    An admin sees every escalation, and a manager those of the reps they may
    see. The newest come first, at most ``ESCALATIONS_SHOWN``.
    """
    timers = ResponseTimer.objects.filter(
        handoff=ResponseTimer.Handoff.ESCALATED,
        lead__status__in=Lead.OPEN_STATUSES,
        lead__owner_id=F("member_id"),
    )
    if not viewer.is_admin:
        timers = timers.filter(member_id__in=visible_member_ids(viewer))
    return list(
        timers.select_related("lead", "member", "handed_to").order_by(
            "-closed_at", "-id"
        )[:ESCALATIONS_SHOWN]
    )
