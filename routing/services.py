"""Writes of lead intake and routing: receive a lead, route it, sweep the missed.

Intake commits the lead first and starts routing only once that commit has
happened (``transaction.on_commit``). So a worker never looks for a lead
that is not there yet, and a lead whose routing task is lost is still in
the database, where the sweeper finds it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from activity.models import Lead
from followups import triggers as followup_triggers
from notifications.services import notify
from routing import sla
from routing.engine.decision import Decision, IntakeMatches, decide
from routing.models import Assignment, IntakeRequest
from routing.normalization import LeadInputError
from routing.qualification import (
    duplicate_find_locked,
    lead_qualify,
    qualification_store,
    submission_record,
)
from spm.models import Organization
from spm.tenancy import get_current_organization, tenant_context

logger = logging.getLogger(__name__)

PENDING = Lead.RoutingStatus.PENDING
LEAD_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "domain",
    "country",
    "region",
    "industry",
    "company_size",
    "estimated_value",
    "source",
    "custom",
)


class IdempotencyKeyReused(ValueError):
    """The Idempotency-Key was used before with a different request body."""


@dataclass(frozen=True)
class IntakeResult:
    status: int
    body: dict
    replayed: bool = False
    lead: Lead | None = None


def request_fingerprint(data: dict) -> str:
    """Return the SHA-256 of the request body in a canonical JSON form."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _stored_request(idempotency_key: str) -> IntakeRequest | None:
    if not idempotency_key:
        return None
    return IntakeRequest.objects.filter(key=idempotency_key).first()


def _replay(request: IntakeRequest, fingerprint: str) -> IntakeResult:
    if request.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request "
            "body. Send a new key for a new lead."
        )
    return IntakeResult(request.response_status, request.response_body, True)


def lead_intake(
    *,
    organization: Organization,
    fields: dict,
    render,
    idempotency_key: str = "",
    fingerprint: str = "",
) -> IntakeResult:
    """Store a received lead and start routing it once the lead is committed.

    ``render(lead)`` returns the response body. With an ``idempotency_key``,
    the body and status are stored with the key in the same transaction as
    the lead, and a later request with the key gets them back instead of a
    second lead. When two requests race with one key, both insert the key.
    The database's unique constraint lets one commit, and makes the other
    wait, fail and return the first one's response.

    Raises ``LeadInputError`` for invalid fields (nothing is stored) and
    ``IdempotencyKeyReused`` for a known key with a different body.
    """
    # New keys are the common case, so no read of the key comes first. A
    # retry does the work again, and the key's insert fails on the unique
    # constraint, which rolls the work back and replays the stored response.
    try:
        qualified = lead_qualify(organization=organization, fields=fields)
    except LeadInputError:
        earlier = _stored_request(idempotency_key)
        if earlier is None:
            raise
        return _replay(earlier, fingerprint)

    try:
        with transaction.atomic():
            duplicate = duplicate_find_locked(
                organization=organization,
                fields=qualified.fields,
                settings=qualified.settings,
            )
            if duplicate is not None:
                # Merged: the existing lead keeps its id and owner, and is
                # not routed again.
                submission_record(duplicate=duplicate, fields=qualified.fields)
                lead = duplicate.lead
                body = {**render(lead), "duplicate_of": str(lead.public_id)}
            else:
                lead = _lead_create(qualified.fields, route=qualified.route)
                qualification_store(lead=lead, qualified=qualified)
                body = render(lead)
            if idempotency_key:
                IntakeRequest.objects.create(
                    key=idempotency_key,
                    request_hash=fingerprint,
                    lead=lead,
                    response_status=201,
                    response_body=body,
                )
            if qualified.route and duplicate is None:
                matches = IntakeMatches(
                    customer_account_id=_pk(qualified.customer_account),
                    known_contact_id=_pk(qualified.known_contact),
                    domain_account_ids=qualified.domain_account_ids,
                )
                _route_after_commit(organization.pk, lead.pk, matches)
    except IntegrityError:
        earlier = _stored_request(idempotency_key)
        if earlier is None:
            raise
        return _replay(earlier, fingerprint)
    return IntakeResult(201, body, lead=lead)


def _lead_create(fields: dict, *, route: bool) -> Lead:
    values = {name: fields[name] for name in LEAD_FIELDS if name in fields}
    for name, value in values.items():
        if value is None and name not in ("company_size", "estimated_value"):
            values[name] = {} if name == "custom" else ""
    status = PENDING if route else Lead.RoutingStatus.NOT_ROUTED
    now = timezone.now()
    return Lead.objects.create(
        **values, received_at=now, created_at=now, routing_status=status
    )


def _pk(row) -> int | None:
    return row.pk if row is not None else None


def _route_after_commit(
    organization_id: int, lead_id: int, matches: IntakeMatches | None = None
) -> None:
    from routing.tasks import route_lead_task

    def send() -> None:
        try:
            route_lead_task.delay(
                organization_id, lead_id, matches.as_message() if matches else None
            )
        except Exception:
            # The lead is committed and pending: the sweeper routes it.
            logger.exception(
                "Could not queue routing of lead %s; the sweeper will route it",
                lead_id,
                extra={"organization_id": organization_id, "lead_id": lead_id},
            )

    transaction.on_commit(send)


# Routing ----------------------------------------------------------------------


def lead_route(
    *,
    lead_id: int,
    via: str = Assignment.Via.TASK,
    matches: IntakeMatches | None = None,
    now: dt.datetime | None = None,
) -> Assignment | None:
    """Route a pending lead of the current organisation, once.

    ``matches`` are what intake's qualification found, when the caller has
    them; otherwise the stored qualification is read. ``now`` is the
    routing time, by default the current time. A replay of leads received
    in the past (the demo data) passes the time each one was routed, which
    sets the day for time off and daily caps and the timer's start.

    The lead row is locked first, so a task and the sweeper never route it
    at the same time. A lead that is no longer pending is left alone, and
    None is returned. The one-to-one key of ``Assignment`` on the lead
    backs this up in the database.
    """
    with transaction.atomic():
        try:
            lead = Lead.objects.select_for_update().get(pk=lead_id)
        except Lead.DoesNotExist:
            return None
        if lead.routing_status != PENDING:
            return None
        return _route_locked(lead, via, matches, now)


def _route_locked(
    lead: Lead,
    via: str,
    matches: IntakeMatches | None = None,
    now: dt.datetime | None = None,
) -> Assignment:
    organization = get_current_organization()
    day = timezone.localdate(now or timezone.now(), organization.zoneinfo)
    decision = decide(lead, day, intake_matches=matches, now=now)
    # Stamped while the pool's rotation row is still locked, so the routing
    # times of one pool follow its rotation order.
    routed_at = now or timezone.now()
    assignment = Assignment.objects.create(
        lead=lead,
        outcome=decision.outcome,
        member=decision.member,
        version=decision.version,
        rule=decision.rule,
        pool_id=decision.pool_id,
        method=decision.method,
        reason=decision.reason[:255],
        candidates=decision.candidates,
        trace=decision.trace,
        received_at=lead.received_at or lead.created_at,
        routed_at=routed_at,
        via=via,
    )
    _lead_update(lead, decision, routed_at)
    timer = None
    if decision.member is not None and decision.rule is not None:
        pool = decision.rule.pool if decision.pool_id else None
        timer = sla.timer_start(
            lead=lead,
            member=decision.member,
            assigned_at=routed_at,
            rule=decision.rule,
            pool=pool,
        )
    if decision.member is not None:
        # The rep's notification and the CRM write-back run once the
        # assignment is committed. Leaving both out of the transaction keeps
        # the pool's rotation lock short.
        transaction.on_commit(
            lambda: _after_assignment(organization, lead, decision, timer, assignment),
            robust=True,
        )
        # In the routing transaction, so an enrolment is never lost to a
        # worker that dies between the commit and a later step.
        followup_triggers.lead_assigned(lead, now=routed_at)
    return assignment


def _after_assignment(
    organization, lead: Lead, decision: Decision, timer, assignment: Assignment
) -> None:
    """Notify the rep of their new lead and queue the CRM write-back.

    Runs after the assignment is committed. Sets the organisation's context
    itself, because the sweeper's transaction commits after its context has
    ended.
    """
    from integrations.writeback import assignment_writeback_queue

    with tenant_context(organization):
        _notify_assigned_now(organization, lead, decision, timer)
        assignment_writeback_queue(organization, assignment.pk)


def _notify_assigned_now(organization, lead: Lead, decision: Decision, timer) -> None:
    notify(
        organization,
        "lead.assigned",
        [decision.member],
        obj=lead,
        title=f"New lead assigned to you: {str(lead) or 'no name'}",
        url=reverse("routing:mine", kwargs={"org_slug": organization.slug}),
        payload={
            "lead": str(lead),
            "company": lead.company,
            "email": lead.email,
            "rule": decision.rule.name if decision.rule else "",
            "sla_minutes": timer.minutes if timer else None,
        },
    )


def _lead_update(lead: Lead, decision: Decision, routed_at: dt.datetime) -> None:
    if decision.member is not None:
        lead.owner = decision.member
        lead.assigned_at = routed_at
        lead.routing_status = Lead.RoutingStatus.ASSIGNED
    else:
        lead.routing_status = Lead.RoutingStatus.QUEUED
    lead.save(update_fields=["owner", "assigned_at", "routing_status"])


def leads_sweep(*, older_than: dt.timedelta, limit: int) -> int:
    """Route leads of every organisation still pending ``older_than`` after intake.

    Each lead is taken with ``SELECT ... FOR UPDATE SKIP LOCKED`` in its own
    transaction: a lead that a task is routing right now is skipped, and a
    second sweeper takes other leads. Returns the number routed, at most
    ``limit``.
    """
    cutoff = timezone.now() - older_than
    routed = 0
    while routed < limit:
        with transaction.atomic():
            lead = (
                Lead.unscoped.select_for_update(skip_locked=True, of=("self",))
                .select_related("organization")
                .filter(routing_status=PENDING, received_at__lte=cutoff)
                .order_by("received_at")
                .first()
            )
            if lead is None:
                break
            with tenant_context(lead.organization):
                _route_locked(lead, Assignment.Via.SWEEPER)
        routed += 1
    if routed:
        # Each of these leads missed its routing task: a lost message or a
        # broker outage, worth a look when it happens often.
        logger.warning(
            "Sweeper routed %d leads pending for over %d s",
            routed,
            older_than.total_seconds(),
        )
    return routed
