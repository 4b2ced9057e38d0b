"""Giving a lead to a rep by hand: from the fallback queue, or from another rep.

Routing decides once per lead (``Assignment``). A manager or admin who takes
a lead from the fallback queue, or moves a lead to another rep, changes the
lead's owner and leaves a ``Reassignment`` row. The routing decision stays as
it was, so its page still shows what the rules did.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from activity.models import Lead
from followups import triggers as followup_triggers
from notifications.services import notify
from routing.models import Assignment, Pool, Reassignment, ResponseTimer, RoutingRule
from routing.sla import first_touch_at, timer_start
from spm.access import visible_member_ids
from spm.models import Membership
from spm.services import audit_log_write
from spm.tenancy import get_current_organization

logger = logging.getLogger(__name__)


# A lead in these statuses is finished, so its owner stays.
CLOSED_STATUSES = (Lead.Status.DISQUALIFIED, Lead.Status.CONVERTED)


class ReassignmentError(Exception):
    """A lead that cannot be given to the chosen member, with the reason as message."""


def assignable_members(viewer: Membership):
    """Return the active members ``viewer`` may give a lead to, by name.

    An admin may choose any active member of the organisation, and a
    manager themselves and the members of their reporting tree.
    """
    members = Membership.objects.filter(is_active=True)
    if not viewer.is_admin:
        members = members.filter(pk__in=visible_member_ids(viewer))
    return members.order_by("display_name", "id")


def lead_reassign(
    *,
    lead_id: int,
    member: Membership,
    actor: Membership,
    expected_owner_id: int | None,
    reason: str = "",
    now: dt.datetime | None = None,
) -> Reassignment:
    """Give the lead to ``member`` and record who did it and why.

    ``expected_owner_id`` is the owner the actor saw (None for a queued
    lead). The lead row is locked first, and a lead whose owner changed in
    the meantime is left alone, so two managers acting on one queued lead
    never both assign it. The current owner's open response timer ends:
    met when they touched the lead in time, breached when it was due
    already without a touch, and ended otherwise. The new owner
    gets a timer with the SLA of the lead's rule or pool, when one applies.

    Raises ``ReassignmentError`` for a lead still being routed, no longer
    open, already owned by ``member``, or whose owner changed.
    """
    now = now or timezone.now()
    organization = get_current_organization()
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        _check(lead, member, expected_owner_id)
        previous = lead.owner
        rule, pool = _sla_source(lead, member, now, actor)
        lead.owner = member
        lead.assigned_at = now
        lead.routing_status = Lead.RoutingStatus.ASSIGNED
        lead.save(update_fields=["owner", "assigned_at", "routing_status"])
        timer_start(lead=lead, member=member, assigned_at=now, rule=rule, pool=pool)
        reassignment = Reassignment.objects.create(
            lead=lead,
            from_member=previous,
            to_member=member,
            by=actor,
            assigned_at=now,
            reason=reason,
        )
        audit_log_write(
            organization=organization,
            actor=actor.user,
            action="routing.lead.reassign" if previous else "routing.lead.assign",
            obj=lead,
            old={"owner": previous.display_name if previous else "fallback queue"},
            new={"owner": member.display_name, "reason": reason},
        )
        if previous is None:
            # The lead's first owner: the same sequences start as after routing.
            followup_triggers.lead_assigned(lead, now=now)
        transaction.on_commit(
            lambda: _notify(organization, lead, previous, member, actor), robust=True
        )
    logger.info(
        "Lead %s given to member %s by member %s (was %s)",
        lead.pk,
        member.pk,
        actor.pk,
        previous.pk if previous else "queued",
        extra={"organization_id": organization.pk},
    )
    return reassignment


def can_change_owner(lead: Lead) -> bool:
    """Return whether a manager may give the lead to someone now."""
    return (
        lead.routing_status != Lead.RoutingStatus.PENDING
        and lead.status not in CLOSED_STATUSES
    )


def _check(lead: Lead, member: Membership, expected_owner_id: int | None) -> None:
    if lead.routing_status == Lead.RoutingStatus.PENDING:
        raise ReassignmentError(
            f"Lead {lead} is still being routed. Reload the page in a few seconds."
        )
    if lead.status in CLOSED_STATUSES:
        raise ReassignmentError(
            f"Lead {lead} is {lead.get_status_display().lower()}, so it keeps "
            "its owner."
        )
    if lead.owner_id != expected_owner_id:
        current = lead.owner.display_name if lead.owner else "the fallback queue"
        raise ReassignmentError(
            f"Lead {lead} moved to {current} while you were choosing. "
            "Reload the page and choose again."
        )
    if lead.owner_id == member.pk:
        raise ReassignmentError(f"Lead {lead} is already owned by {member}.")


def _sla_source(
    lead: Lead, member: Membership, now: dt.datetime, actor: Membership
) -> tuple[RoutingRule | None, Pool | None]:
    """End the open timer and return the rule and pool whose SLA applies next.

    The latest timer's rule and pool come first, then those of the routing
    decision, so a lead keeps the SLA that it was routed under.
    """
    timers = ResponseTimer.objects.filter(lead=lead).select_related("rule", "pool")
    latest = timers.order_by("-assigned_at", "-id").first()
    if latest is not None and latest.status == ResponseTimer.Status.OPEN:
        _end(latest, lead, member, now, actor)
    if latest is not None and (latest.rule or latest.pool):
        return latest.rule, latest.pool
    assignment = (
        Assignment.objects.filter(lead=lead).select_related("rule", "pool").first()
    )
    if assignment is None:
        return None, None
    return assignment.rule, assignment.pool


def _end(
    timer: ResponseTimer,
    lead: Lead,
    member: Membership,
    now: dt.datetime,
    actor: Membership,
) -> None:
    # A touch after the due time is late, even when the sweeper has not
    # closed the timer yet.
    until = min(now, timer.due_at)
    touched = first_touch_at(lead.pk, timer.member_id, timer.assigned_at, until)
    timer.closed_at = now
    timer.handoff = ResponseTimer.Handoff.REASSIGNED
    timer.handed_to = member
    if touched is not None:
        timer.status = ResponseTimer.Status.MET
        timer.first_touch_at = touched
        timer.outcome = "first touch in time"
    elif now >= timer.due_at:
        timer.status = ResponseTimer.Status.BREACHED
        timer.outcome = (
            f"no first touch in time, then reassigned by {actor.display_name}"
        )
    else:
        timer.status = ResponseTimer.Status.ENDED
        timer.outcome = f"reassigned by {actor.display_name} before the SLA was due"
    timer.save()


def _notify(
    organization,
    lead: Lead,
    previous: Membership | None,
    member: Membership,
    actor: Membership,
) -> None:
    """Tell the new owner, and the previous owner when there was one."""
    mine = reverse("routing:mine", kwargs={"org_slug": organization.slug})
    notify(
        organization,
        "lead.assigned",
        [member],
        obj=lead,
        title=f"New lead assigned to you: {str(lead) or 'no name'}",
        url=mine,
        payload={
            "lead": str(lead),
            "company": lead.company,
            "email": lead.email,
            "assigned_by": actor.display_name,
        },
    )
    if previous is not None and previous.pk != actor.pk:
        notify(
            organization,
            "lead.reassigned",
            [previous],
            obj=lead,
            title=f"Lead {lead} reassigned to {member.display_name}",
            url=mine,
            payload={
                "lead": str(lead),
                "new_owner": member.display_name,
                "reassigned_by": actor.display_name,
            },
        )
