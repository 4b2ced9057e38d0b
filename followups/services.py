"""Enrolment, unenrolment, opt-outs and the exit checks of follow-up sequences.

Writes run in one transaction each. Manual enrolment and unenrolment write
the audit log; enrolments made by a trigger are recorded by their enrolment
row alone.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from activity.models import Activity, Contact, Deal, Lead
from followups.models import Enrollment, OptOut, Sequence, Step
from followups.schedule import member_zone, step_due_at
from spm.models import Membership, Organization, User
from spm.services import audit_log_write

logger = logging.getLogger(__name__)

# Activities that the sequences log themselves carry this source, so they
# never count as the contact's or rep's own activity in the exit check.
ACTIVITY_SOURCE = "followups"
UNSUBSCRIBE_SALT = "followups.unsubscribe"


class EnrollmentError(ValueError):
    """An enrolment request was invalid, for the reason in the message."""


def _first_step(sequence: Sequence) -> Step | None:
    return sequence.steps.order_by("order").first()


def _contact_for(target: Deal | Lead) -> Contact | None:
    """Return the deal's contact: the first contact of its account, by id."""
    if isinstance(target, Lead) or target.account_id is None:
        return None
    return Contact.objects.filter(account_id=target.account_id).order_by("id").first()


def recipient_email(enrollment: Enrollment) -> str:
    """Return the address a sequence's emails go to, or "" when there is none."""
    if enrollment.contact_id:
        return enrollment.contact.email
    if enrollment.lead_id:
        return enrollment.lead.email
    return ""


def _audit_state(enrollment: Enrollment) -> dict:
    return {
        "sequence": enrollment.sequence.name,
        "target": f"deal:{enrollment.deal_id}"
        if enrollment.deal_id
        else f"lead:{enrollment.lead_id}",
        "member": enrollment.member.display_name,
        "status": enrollment.status,
        "exit_reason": enrollment.exit_reason,
    }


def enroll(
    *,
    sequence: Sequence,
    target: Deal | Lead,
    member: Membership | None = None,
    contact: Contact | None = None,
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> Enrollment | None:
    """Enrol a deal or lead in ``sequence`` and schedule its first step.

    ``member`` defaults to the target's owner and ``contact`` to the first
    contact of the deal's account. Returns None when the target is already
    in an active enrolment of this sequence. With an ``actor``, the
    enrolment is manual and written to the audit log.
    """
    now = now or timezone.now()
    member = member or target.owner
    if member is None:
        raise EnrollmentError(f"{target} has no owner, so no rep can run the sequence.")
    first = _first_step(sequence)
    if first is None:
        raise EnrollmentError(f"The sequence {sequence.name!r} has no steps.")
    is_deal = isinstance(target, Deal)
    enrollment = Enrollment(
        organization_id=sequence.organization_id,
        sequence=sequence,
        deal=target if is_deal else None,
        lead=None if is_deal else target,
        contact=contact or _contact_for(target),
        member=member,
        enrolled_at=now,
        next_step=first.order,
        next_due_at=step_due_at(
            now, first.delay_amount, first.delay_unit, member_zone(member)
        ),
        stage_at_enrollment_id=target.stage_id if is_deal else None,
    )
    try:
        with transaction.atomic():
            enrollment.save()
            if actor is not None:
                audit_log_write(
                    organization=enrollment.organization,
                    actor=actor,
                    action="followups.enroll",
                    obj=enrollment,
                    new=_audit_state(enrollment),
                )
    except IntegrityError:
        # The partial unique constraint: this target is already active here.
        return None
    return enrollment


@transaction.atomic
def unenroll(*, enrollment: Enrollment, actor: User | None) -> Enrollment:
    """Exit an active enrolment by hand, with reason "manual", and audit it."""
    enrollment = Enrollment.objects.select_for_update().get(pk=enrollment.pk)
    if enrollment.status != Enrollment.Status.ACTIVE:
        return enrollment
    old = _audit_state(enrollment)
    _exit(enrollment, Enrollment.ExitReason.MANUAL, timezone.now())
    audit_log_write(
        organization=enrollment.organization,
        actor=actor,
        action="followups.unenroll",
        obj=enrollment,
        old=old,
        new=_audit_state(enrollment),
    )
    return enrollment


def _exit(enrollment: Enrollment, reason: str, now: dt.datetime) -> None:
    enrollment.status = Enrollment.Status.EXITED
    enrollment.exit_reason = reason
    enrollment.next_due_at = None
    enrollment.ended_at = now
    enrollment.save(update_fields=["status", "exit_reason", "next_due_at", "ended_at"])


def is_opted_out(organization_id: int, email: str) -> bool:
    if not email:
        return False
    return (
        OptOut.unscoped.filter(organization_id=organization_id)
        .annotate(address=Lower("email"))
        .filter(address=email.strip().lower())
        .exists()
    )


def exit_reason_for(enrollment: Enrollment, step: Step) -> str:
    """Return why ``enrollment`` must stop before ``step``, or "" to go on.

    Checked in this order: a closed deal, a stage change since enrolment, an
    opted-out recipient of an email step, then any activity logged on the
    target since the last step (or the enrolment) that the sequence did not
    log itself. An email activity counts as a reply.
    """
    reasons = Enrollment.ExitReason
    deal = enrollment.deal
    if deal is not None:
        deal.refresh_from_db(fields=["stage"])
        if deal.stage.is_closed:
            return reasons.DEAL_CLOSED
        if (
            enrollment.stage_at_enrollment_id
            and deal.stage_id != enrollment.stage_at_enrollment_id
        ):
            return reasons.STAGE_CHANGED
    email = recipient_email(enrollment)
    if step.action == Step.Action.EMAIL:
        if not email:
            return reasons.NO_EMAIL
        if is_opted_out(enrollment.organization_id, email):
            return reasons.OPTED_OUT
    since = enrollment.last_step_at or enrollment.enrolled_at
    activities = Activity.objects.filter(occurred_at__gt=since).exclude(
        external_source=ACTIVITY_SOURCE
    )
    if enrollment.deal_id:
        activities = activities.filter(deal_id=enrollment.deal_id)
    else:
        activities = activities.filter(lead_id=enrollment.lead_id)
    types = set(activities.values_list("type", flat=True).distinct())
    if Activity.Type.EMAIL in types:
        return reasons.REPLIED
    if types:
        return reasons.ACTIVITY
    return ""


def exit_enrollment(enrollment: Enrollment, reason: str, now: dt.datetime) -> None:
    """Exit a locked, active enrolment with ``reason``, in the caller's transaction."""
    _exit(enrollment, reason, now)
    logger.info(
        "Follow-up enrolment %s exited: %s",
        enrollment.pk,
        reason,
        extra={
            "organization_id": enrollment.organization_id,
            "enrollment_id": enrollment.pk,
        },
    )


@transaction.atomic
def opt_out_record(
    *,
    organization: Organization,
    email: str,
    reason: str,
    now: dt.datetime | None = None,
) -> int:
    """Record an opt-out and exit the address's active enrolments.

    A webhook for bounces calls this with reason "bounced". The first reason
    recorded for an address is kept. Returns the number of enrolments exited.
    """
    now = now or timezone.now()
    address = email.strip().lower()
    if not address:
        raise ValueError("An opt-out needs an email address.")
    if not is_opted_out(organization.pk, address):
        OptOut.unscoped.create(
            organization=organization, email=address, reason=reason, at=now
        )
        audit_log_write(
            organization=organization,
            actor=None,
            action=f"followups.opt_out.{reason}",
            object_type="followups.optout",
            object_id=address,
            new={"email": address, "reason": reason},
        )
    # The same rule as recipient_email: the contact's address, else the lead's.
    to_address = Q(contact__email__iexact=address) | Q(
        contact__isnull=True, lead__email__iexact=address
    )
    active = Enrollment.unscoped.select_for_update(of=("self",)).filter(
        to_address, organization=organization, status=Enrollment.Status.ACTIVE
    )
    exited = 0
    for enrollment in active:
        exit_enrollment(enrollment, Enrollment.ExitReason.OPTED_OUT, now)
        exited += 1
    return exited


def unsubscribe_token(organization_id: int, email: str) -> str:
    """Return the signed unsubscribe token of an organisation and an address.

    It never expires, because an unsubscribe link must keep working.
    """
    payload = {"o": organization_id, "e": email.strip().lower()}
    return signing.dumps(payload, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_token_read(token: str) -> tuple[int, str]:
    """Return (organisation id, email) of a token, or raise signing.BadSignature."""
    payload = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    return int(payload["o"]), str(payload["e"])
