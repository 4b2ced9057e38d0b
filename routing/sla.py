"""Response SLA: the business minutes a rep has for the first touch on a lead.

A rule's SLA, or else its pool's, starts a ``ResponseTimer`` when routing
gives a rep the lead. The first touch is the first call, email or meeting
that the rep logged on the lead, through the app, the API, an import or a
CRM sync. A beat task runs ``response_timers_sweep`` every minute. It closes
each timer that is due: met when the rep touched the lead in time, breached
otherwise. A breach reassigns the lead to the next rep of the pool, or
escalates it to the rep's manager, as the SLA sets. A reassignment with no
other rep available escalates instead. The same beat task runs
``response_timers_warn``, which warns the rep once per timer when 80% of
its business minutes have passed with no first touch.

Speed to lead is two figures: the routing delay (received to assigned, on
the ``Assignment``) and the rep delay (assigned to first touch, in business
minutes), which the lead-response metric of coaching also measures.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import (
    CharField,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    Min,
    OuterRef,
    Value,
)
from django.db.models.functions import Cast, Concat
from django.urls import reverse
from django.utils import timezone

from activity.models import Activity, Lead
from coaching.business_hours import business_deadline, business_minutes
from notifications.models import Event
from notifications.services import notify
from routing.engine.pools import pool_pick
from routing.models import (
    SLA_MINUTES_MAX,
    Pool,
    ResponseTimer,
    RoutingRule,
    SlaAction,
)
from spm.models import Membership, Organization
from spm.services import audit_log_write
from spm.tenancy import get_current_organization, tenant_context

logger = logging.getLogger(__name__)

FIRST_TOUCH_TYPES = (Activity.Type.CALL, Activity.Type.EMAIL, Activity.Type.MEETING)
SWEEP_LIMIT = 500
# The rep is warned when this share of the SLA's business minutes has passed.
WARNING_SHARE = Decimal("0.8")
# The warning event's dedup key is this prefix and the timer's id, so the
# database accepts one warning per timer.
WARNING_KEY_PREFIX = "lead.sla_warning:timer:"


@dataclass(frozen=True)
class Sla:
    minutes: int
    action: str
    source: str


def sla_for(rule: RoutingRule | None, pool: Pool | None) -> Sla | None:
    """Return the SLA of the rule, else of the pool, else None."""
    if rule is not None and rule.sla_minutes:
        return Sla(rule.sla_minutes, rule.sla_action, "rule")
    if pool is not None and pool.sla_minutes:
        return Sla(pool.sla_minutes, pool.sla_action, "pool")
    return None


def timer_start(
    *,
    lead: Lead,
    member: Membership,
    assigned_at: dt.datetime,
    rule: RoutingRule | None,
    pool: Pool | None,
) -> ResponseTimer | None:
    """Start the new owner's timer when the rule or pool sets an SLA."""
    sla = sla_for(rule, pool)
    if sla is None:
        return None
    organization = get_current_organization()
    due_at = _timer_due_at(lead, organization, assigned_at, sla)
    if due_at is None:
        return None
    return ResponseTimer.objects.create(
        lead=lead,
        member=member,
        assigned_at=assigned_at,
        due_at=due_at,
        minutes=sla.minutes,
        on_breach=sla.action,
        rule=rule,
        pool=pool,
    )


def _timer_due_at(
    lead: Lead, organization: Organization, assigned_at: dt.datetime, sla: Sla
) -> dt.datetime | None:
    """Return when the SLA ends, or None (logged) when no due time can be computed.

    Forms and model validation keep the minutes at SLA_MINUTES_MAX or below,
    but a row written before that bound, or by SQL, may hold more. Such an
    SLA starts no timer, so the assignment still commits and the lead does
    not stay pending.
    """
    if sla.minutes <= SLA_MINUTES_MAX:
        try:
            return business_deadline(assigned_at, sla.minutes, organization.zoneinfo)
        except OverflowError:
            pass
    logger.error(
        "No response timer for lead %s of organisation %s: no due time for an "
        "SLA of %s minutes from the %s (the maximum is %s)",
        lead.pk,
        organization.pk,
        sla.minutes,
        sla.source,
        SLA_MINUTES_MAX,
        extra={"organization_id": organization.pk, "lead_id": lead.pk},
    )
    return None


def first_touch_at(
    lead_id: int, member_id: int, since: dt.datetime, until: dt.datetime | None = None
) -> dt.datetime | None:
    """Return when the member first called, emailed or met the lead since ``since``."""
    activities = Activity.objects.filter(
        lead_id=lead_id,
        owner_id=member_id,
        type__in=FIRST_TOUCH_TYPES,
        occurred_at__gte=since,
    )
    if until is not None:
        activities = activities.filter(occurred_at__lte=until)
    return activities.aggregate(first=Min("occurred_at"))["first"]


def response_timers_sweep(*, now: dt.datetime | None = None, limit: int = SWEEP_LIMIT):
    """Close the due timers of every organisation. Returns the number closed.

    Each timer is taken with ``SELECT ... FOR UPDATE SKIP LOCKED`` in its own
    transaction, so two sweepers never close the same timer. A timer whose
    closing fails is logged and left open for the next run, and this run
    goes on with the others.
    """
    now = now or timezone.now()
    closed = 0
    failed: list[int] = []
    while closed + len(failed) < limit:
        timer_id = None
        try:
            with transaction.atomic():
                timer = (
                    ResponseTimer.unscoped.select_for_update(
                        skip_locked=True, of=("self",)
                    )
                    .select_related("organization")
                    .filter(status=ResponseTimer.Status.OPEN, due_at__lte=now)
                    .exclude(pk__in=failed)
                    .order_by("due_at", "id")
                    .first()
                )
                if timer is None:
                    break
                timer_id = timer.pk
                with tenant_context(timer.organization):
                    _close(timer, now)
        except Exception:
            if timer_id is None:
                raise
            logger.exception("Closing response timer %s failed", timer_id)
            failed.append(timer_id)
            continue
        closed += 1
    return closed


def warning_due_at(timer: ResponseTimer, organization: Organization) -> dt.datetime:
    """Return when WARNING_SHARE of the timer's business minutes will have passed."""
    minutes = float(timer.minutes * WARNING_SHARE)
    return business_deadline(timer.assigned_at, minutes, organization.zoneinfo)


def _warning_key(timer_id: int) -> str:
    return f"{WARNING_KEY_PREFIX}{timer_id}"


def _warning_candidates(now: dt.datetime, limit: int) -> list[int]:
    """Return the ids of open timers that may need a warning, across organisations.

    A business minute is never shorter than a wall-clock minute, so a timer
    whose warning share has not passed in wall-clock time cannot be due.
    The exact business-time check runs per timer, in ``_warn``.
    """
    warned = Event.unscoped.filter(
        organization_id=OuterRef("organization_id"),
        dedup_key=Concat(Value(WARNING_KEY_PREFIX), Cast(OuterRef("pk"), CharField())),
    )
    share_of_a_minute = dt.timedelta(seconds=int(60 * WARNING_SHARE))
    earliest = ExpressionWrapper(
        F("assigned_at") + F("minutes") * Value(share_of_a_minute),
        output_field=DateTimeField(),
    )
    return list(
        ResponseTimer.unscoped.annotate(earliest_warning=earliest)
        .filter(
            status=ResponseTimer.Status.OPEN,
            due_at__gt=now,
            earliest_warning__lte=now,
        )
        .exclude(Exists(warned))
        .order_by("due_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


def response_timers_warn(*, now: dt.datetime | None = None, limit: int = SWEEP_LIMIT):
    """Warn each rep whose open timer has passed WARNING_SHARE with no first touch.

    Returns the number of warnings raised. A timer gets at most one warning,
    which the event's dedup key enforces. No warning goes out once the rep
    has touched the lead, or when the lead has another owner or is closed.
    A timer whose check fails is logged and tried again on the next run.
    """
    now = now or timezone.now()
    warned = 0
    for timer_id in _warning_candidates(now, limit):
        try:
            with transaction.atomic():
                timer = (
                    ResponseTimer.unscoped.select_for_update(
                        skip_locked=True, of=("self",)
                    )
                    .select_related("organization")
                    .filter(pk=timer_id, status=ResponseTimer.Status.OPEN)
                    .first()
                )
                if timer is None:
                    continue
                with tenant_context(timer.organization):
                    warned += _warn(timer, now)
        except Exception:
            logger.exception("Warning of response timer %s failed", timer_id)
    return warned


def _warn(timer: ResponseTimer, now: dt.datetime) -> int:
    """Raise the warning of one locked timer if it is due; return 1 if raised."""
    organization = timer.organization
    if warning_due_at(timer, organization) > now:
        return 0
    key = _warning_key(timer.pk)
    if Event.objects.filter(dedup_key=key).exists():
        return 0

    lead = Lead.objects.get(pk=timer.lead_id)
    if lead.owner_id != timer.member_id or lead.status not in Lead.OPEN_STATUSES:
        return 0
    if first_touch_at(lead.pk, timer.member_id, timer.assigned_at) is not None:
        return 0

    member = Membership.objects.get(pk=timer.member_id)
    zone = organization.zoneinfo
    left = business_minutes(now, timer.due_at, zone)
    due_local = timezone.localtime(timer.due_at, zone)
    event = notify(
        organization,
        "lead.sla_warning",
        [member],
        obj=lead,
        title=f"Lead {lead}: {left.normalize():f} business minutes left to respond",
        url=reverse("routing:mine", kwargs={"org_slug": organization.slug}),
        payload={
            "lead": str(lead),
            "sla_minutes": timer.minutes,
            "minutes_left": str(left),
            "due_at": due_local.strftime("%Y-%m-%d %H:%M %Z"),
        },
        dedup_key=key,
    )
    return 1 if event is not None else 0


def _close(timer: ResponseTimer, now: dt.datetime) -> None:
    lead = Lead.objects.select_for_update().get(pk=timer.lead_id)
    touched = first_touch_at(lead.pk, timer.member_id, timer.assigned_at, timer.due_at)
    timer.closed_at = now
    if touched is not None:
        timer.status = ResponseTimer.Status.MET
        timer.first_touch_at = touched
        timer.outcome = "first touch in time"
        timer.save()
        return

    timer.status = ResponseTimer.Status.BREACHED
    if lead.owner_id != timer.member_id:
        timer.outcome = "no action: the lead had changed owner"
        timer.save()
        return
    if lead.status not in Lead.OPEN_STATUSES:
        timer.outcome = f"no action: the lead is {lead.get_status_display().lower()}"
        timer.save()
        return

    organization = timer.organization
    member = Membership.objects.get(pk=timer.member_id)
    if timer.on_breach == SlaAction.REASSIGN:
        if _reassign(timer, lead, member, organization, now):
            return
    _escalate(timer, lead, member)


def _reassign(
    timer: ResponseTimer,
    lead: Lead,
    member: Membership,
    organization: Organization,
    now: dt.datetime,
) -> bool:
    """Give the lead to the pool's next rep. Returns False when no one can take it."""
    pool = Pool.objects.filter(pk=timer.pool_id).first()
    if pool is None:
        timer.outcome = "no pool to reassign from"
        return False
    # A rep who missed the SLA on this lead once never gets it back.
    earlier_owners = set(
        ResponseTimer.objects.filter(lead=lead).values_list("member_id", flat=True)
    )
    day = timezone.localdate(now, organization.zoneinfo)
    pick = pool_pick(pool, day, exclude=earlier_owners)
    if pick.member is None:
        timer.outcome = f"no other rep available in pool {pool.name}"
        return False

    timer.handoff = ResponseTimer.Handoff.REASSIGNED
    timer.handed_to = pick.member
    timer.outcome = f"reassigned to {pick.member.display_name}"
    # The timer leaves the open state before the next owner's opens.
    timer.save()
    lead.owner = pick.member
    lead.assigned_at = now
    lead.save(update_fields=["owner", "assigned_at"])
    rule = RoutingRule.objects.filter(pk=timer.rule_id).first()
    timer_start(lead=lead, member=pick.member, assigned_at=now, rule=rule, pool=pool)
    audit_log_write(
        organization=organization,
        actor=None,
        action="routing.lead.reassign",
        obj=lead,
        old={"owner": member.display_name},
        new={"owner": pick.member.display_name, "reason": "response SLA breached"},
    )
    notify(
        organization,
        "lead.sla_breached",
        [member, pick.member],
        obj=lead,
        title=f"Lead {lead} reassigned to {pick.member.display_name}: SLA missed",
        url=reverse("routing:mine", kwargs={"org_slug": organization.slug}),
        payload={
            "lead": str(lead),
            "previous_owner": member.display_name,
            "new_owner": pick.member.display_name,
            "sla_minutes": timer.minutes,
        },
    )
    logger.info(
        "Lead %s reassigned from member %s to %s after a missed response SLA",
        lead.pk,
        member.pk,
        pick.member.pk,
        extra={"organization_id": organization.pk},
    )
    return True


def _escalate(timer: ResponseTimer, lead: Lead, member: Membership) -> None:
    manager = member.reports_to
    earlier = f"{timer.outcome}, so " if timer.outcome else ""
    timer.handoff = ResponseTimer.Handoff.ESCALATED
    timer.handed_to = manager
    if manager is None:
        timer.outcome = f"{earlier}escalated, but {member.display_name} has no manager"
    else:
        timer.outcome = f"{earlier}escalated to {manager.display_name}"
    timer.save()
    _notify_escalated(timer, lead, member, manager)


def _notify_escalated(
    timer: ResponseTimer, lead: Lead, member: Membership, manager: Membership | None
) -> None:
    """Notify the rep, and the manager with a link to the lead's page."""
    organization = timer.organization
    slug = organization.slug
    escalated_to = manager.display_name if manager else "no one (no manager)"
    common = {
        "obj": lead,
        "title": f"Lead {lead} escalated to {escalated_to}: SLA missed",
        "payload": {
            "lead": str(lead),
            "owner": member.display_name,
            "manager": escalated_to,
            "sla_minutes": timer.minutes,
        },
    }
    mine = reverse("routing:mine", kwargs={"org_slug": slug})
    notify(organization, "lead.escalated", [member], url=mine, **common)
    if manager is not None:
        page = reverse(
            "routing:lead", kwargs={"org_slug": slug, "lead_id": lead.public_id}
        )
        notify(organization, "lead.escalated", [manager], url=page, **common)


# Reads for the pages --------------------------------------------------------


@dataclass(frozen=True)
class SlaState:
    """A lead's current timer as a page shows it, with business minutes left."""

    timer: ResponseTimer
    status: str
    minutes_left: Decimal | None = None


def sla_states(leads: list[Lead], now: dt.datetime) -> dict[int, SlaState]:
    """Return the latest timer of each lead, with business minutes left. One query."""
    organization = get_current_organization()
    timers = ResponseTimer.objects.filter(lead__in=leads).order_by(
        "lead_id", "-assigned_at", "-id"
    )
    latest: dict[int, ResponseTimer] = {}
    for timer in timers:
        latest.setdefault(timer.lead_id, timer)
    states = {}
    for lead_id, timer in latest.items():
        if timer.status != ResponseTimer.Status.OPEN:
            states[lead_id] = SlaState(timer, timer.get_status_display().lower())
            continue
        left = business_minutes(now, timer.due_at, organization.zoneinfo)
        states[lead_id] = SlaState(timer, "open", left)
    return states


def lead_timers(lead: Lead) -> list[ResponseTimer]:
    """Return the lead's timers, oldest first, with members and handoffs."""
    return list(
        ResponseTimer.objects.filter(lead=lead)
        .select_related("member", "handed_to")
        .order_by("assigned_at", "id")
    )


def rep_delay_minutes(lead: Lead) -> Decimal | None:
    """Return the business minutes from assignment to the owner's first touch."""
    if lead.owner_id is None or lead.assigned_at is None:
        return None
    touched = first_touch_at(lead.pk, lead.owner_id, lead.assigned_at)
    if touched is None:
        return None
    organization = get_current_organization()
    return business_minutes(lead.assigned_at, touched, organization.zoneinfo)
