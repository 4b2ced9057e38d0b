"""Run due steps exactly once: the dispatcher, the step runner and the sweeper.

1. ``dispatch_due`` (beat, every minute) takes due enrolments of every
   organisation with ``SELECT ... FOR UPDATE SKIP LOCKED``, checks the exit
   conditions and the rep's daily send limit, and inserts the ``StepRun``.
   The unique (enrolment, step) key rejects a second insert, and the
   enrollment's ``next_due_at`` is cleared, so no other dispatcher takes it.
2. ``perform_step`` (a Celery task per run) sends the email, records its
   Message-ID in the transaction that holds the run's row lock, then in a
   second transaction applies the step's other effects, marks the run done
   and schedules the next step.
3. ``sweep_started`` re-sends the task of runs still "started" after a
   while, which is what a worker killed mid-step leaves behind. A run with a
   Message-ID is not emailed again.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from activity.models import Activity, Deal, Lead
from followups import messages, services
from followups.models import Enrollment, RepDailySend, Step, StepRun
from followups.schedule import member_zone, next_window_opening, step_due_at
from notifications.services import notify
from spm.tenancy import tenant_context

logger = logging.getLogger(__name__)

# Enrolments locked per transaction. Each takes about ten short queries, so
# a batch holds its locks for well under a second.
DISPATCH_BATCH = 20
# Enrolments per dispatcher run; the rest wait for the next minute.
DISPATCH_LIMIT = 1000
# Emails a rep's sequences may send per local calendar day, unless the
# FOLLOWUPS_DAILY_SEND_LIMIT setting says otherwise.
DEFAULT_DAILY_SEND_LIMIT = 100
# Re-sends of a run's task by the sweeper before the run is marked failed.
MAX_SWEEPS = 5

# Fields a field_update step may set, by target model.
UPDATABLE_FIELDS = {
    Deal: {"name", "close_date", "amount"},
    Lead: {"status"},
}


def daily_send_limit() -> int:
    return getattr(settings, "FOLLOWUPS_DAILY_SEND_LIMIT", DEFAULT_DAILY_SEND_LIMIT)


def dispatch_due(
    *, now: dt.datetime | None = None, limit: int = DISPATCH_LIMIT
) -> list[tuple[int, int]]:
    """Start the step of each due enrolment; return (organisation id, run id) pairs.

    The caller sends one ``perform_step`` task per pair, after this returns
    (every run is committed by then).
    """
    now = now or timezone.now()
    started: list[tuple[int, int]] = []
    seen = 0
    while seen < limit:
        with transaction.atomic():
            batch = list(
                Enrollment.unscoped.select_for_update(skip_locked=True, of=("self",))
                .select_related("organization")
                .filter(status=Enrollment.Status.ACTIVE, next_due_at__lte=now)
                .order_by("next_due_at", "id")[: min(DISPATCH_BATCH, limit - seen)]
            )
            for enrollment in batch:
                with tenant_context(enrollment.organization):
                    run = start_step(enrollment, now)
                if run is not None:
                    started.append((enrollment.organization_id, run.pk))
        seen += len(batch)
        if len(batch) < DISPATCH_BATCH:
            break
    return started


def start_step(enrollment: Enrollment, now: dt.datetime) -> StepRun | None:
    """Insert the run of a locked enrolment's next step, or exit, finish or defer it.

    Returns the new run, or None when no step starts now. Call it inside a
    transaction that holds the enrollment's row lock.
    """
    step = Step.objects.filter(
        sequence_id=enrollment.sequence_id, order=enrollment.next_step
    ).first()
    if step is None:
        _finish_enrollment(enrollment, now)
        return None
    reason = services.exit_reason_for(enrollment, step)
    if reason:
        services.exit_enrollment(enrollment, reason, now)
        return None
    counter = None
    if step.action == Step.Action.EMAIL:
        counter = _daily_counter(enrollment, now)
        if counter.count >= daily_send_limit():
            _defer_to_next_window(enrollment, now)
            return None
    try:
        with transaction.atomic():
            run = StepRun.objects.create(
                organization_id=enrollment.organization_id,
                enrollment=enrollment,
                step=step,
                started_at=now,
            )
    except IntegrityError:
        # Another dispatcher or a rerun already started this step; that run
        # (or the sweeper) finishes it and schedules the next one.
        logger.info(
            "Step %s of enrolment %s was already started; skipped",
            step.order,
            enrollment.pk,
            extra={"enrollment_id": enrollment.pk},
        )
        enrollment.next_due_at = None
        enrollment.save(update_fields=["next_due_at"])
        return None
    if counter is not None:
        counter.count += 1
        counter.save(update_fields=["count"])
    enrollment.next_due_at = None
    enrollment.save(update_fields=["next_due_at"])
    return run


def _daily_counter(enrollment: Enrollment, now: dt.datetime) -> RepDailySend:
    """Return the rep's send counter of today (local date), locked for update."""
    day = now.astimezone(member_zone(enrollment.member)).date()
    RepDailySend.unscoped.bulk_create(
        [
            RepDailySend(
                organization_id=enrollment.organization_id,
                member_id=enrollment.member_id,
                day=day,
            )
        ],
        ignore_conflicts=True,
    )
    return RepDailySend.unscoped.select_for_update().get(
        organization_id=enrollment.organization_id,
        member_id=enrollment.member_id,
        day=day,
    )


def _defer_to_next_window(enrollment: Enrollment, now: dt.datetime) -> None:
    enrollment.next_due_at = next_window_opening(now, member_zone(enrollment.member))
    enrollment.save(update_fields=["next_due_at"])
    logger.info(
        "Enrolment %s deferred to %s: rep %s reached the daily send limit",
        enrollment.pk,
        enrollment.next_due_at.isoformat(),
        enrollment.member_id,
        extra={"enrollment_id": enrollment.pk},
    )


def _finish_enrollment(enrollment: Enrollment, now: dt.datetime) -> None:
    enrollment.status = Enrollment.Status.FINISHED
    enrollment.next_step = None
    enrollment.next_due_at = None
    enrollment.ended_at = now
    enrollment.save(update_fields=["status", "next_step", "next_due_at", "ended_at"])


def perform_step(run_id: int, *, now: dt.datetime | None = None) -> str:
    """Carry out a started run and advance its enrolment; return the run's status.

    Safe to call any number of times: a run already done is left alone, and
    an email already recorded (Message-ID set) is not sent again.
    """
    run = StepRun.objects.select_related("step").filter(pk=run_id).first()
    if run is None:
        return "missing"
    if run.status != StepRun.Status.STARTED:
        return run.status
    if run.step.action in (Step.Action.EMAIL, Step.Action.NOTIFY_MANAGER):
        _send_once(run_id, now)
    return _complete(run_id, now)


ENROLLMENT_RELATIONS = (
    "member__user",
    "member__reports_to__user",
    "contact__account",
    "deal__account",
    "lead",
)


def _locked_run(run_id: int) -> StepRun:
    return (
        StepRun.objects.select_for_update(of=("self",))
        .select_related(
            "step", *(f"enrollment__{name}" for name in ENROLLMENT_RELATIONS)
        )
        .get(pk=run_id)
    )


def _send_once(run_id: int, now: dt.datetime | None) -> None:
    """Send the run's email unless it was sent, and record its Message-ID.

    The run's row lock is held during the SMTP exchange, so a duplicate task
    waits and then finds the Message-ID.

    NOTE: a worker that dies after the SMTP server accepted the message and
    before this transaction commits leaves no Message-ID, so the rerun sends
    the email a second time. The window is the time of one COMMIT.
    """
    with transaction.atomic():
        run = _locked_run(run_id)
        if run.status != StepRun.Status.STARTED or run.message_id:
            return
        enrollment = run.enrollment
        if run.step.action == Step.Action.EMAIL:
            message = messages.step_email(enrollment, run.step)
        else:
            message = messages.manager_email(enrollment, run.step)
            if message is None:
                return
        message.send()
        run.message_id = message.extra_headers["Message-ID"]
        run.sent_at = now or timezone.now()
        run.save(update_fields=["message_id", "sent_at"])
    logger.info(
        "Follow-up email %s sent for enrolment %s step %s",
        run.message_id,
        enrollment.pk,
        run.step.order,
        extra={"enrollment_id": enrollment.pk, "step_run_id": run.pk},
    )


def _complete(run_id: int, now: dt.datetime | None) -> str:
    """Apply the step's effects, mark the run done and schedule the next step."""
    now = now or timezone.now()
    with transaction.atomic():
        run = _locked_run(run_id)
        if run.status != StepRun.Status.STARTED:
            return run.status
        enrollment = (
            Enrollment.objects.select_for_update(of=("self",))
            .select_related(*ENROLLMENT_RELATIONS)
            .get(pk=run.enrollment_id)
        )
        _apply_effects(run, enrollment, now)
        run.status = StepRun.Status.DONE
        run.finished_at = now
        run.save(update_fields=["status", "finished_at"])
        # An opt-out or a manual exit while the step ran ends the sequence here.
        if enrollment.status == Enrollment.Status.ACTIVE:
            _advance(enrollment, run.step, now)
    return StepRun.Status.DONE


def _log_activity(run: StepRun, enrollment: Enrollment, kind: str, subject: str, at):
    Activity.objects.get_or_create(
        organization_id=enrollment.organization_id,
        external_source=services.ACTIVITY_SOURCE,
        external_id=f"step-run-{run.pk}",
        defaults={
            "type": kind,
            "subject": subject[:255],
            "occurred_at": at,
            "owner": enrollment.member,
            "deal": enrollment.deal,
            "lead": enrollment.lead,
            "contact": enrollment.contact,
        },
    )


def _apply_effects(run: StepRun, enrollment: Enrollment, now: dt.datetime) -> None:
    step = run.step
    fields = messages.merge_fields(enrollment)
    subject = messages.render(step.subject, fields).strip()
    if step.action == Step.Action.EMAIL:
        _log_activity(run, enrollment, Activity.Type.EMAIL, subject, run.sent_at or now)
    elif step.action == Step.Action.TASK:
        subject = (
            subject or f"Follow up with {fields['first_name'] or fields['company']}"
        )
        _log_activity(run, enrollment, Activity.Type.TASK, subject, now)
        organization = enrollment.member.organization
        notify(
            organization,
            "followup.task_due",
            [enrollment.member],
            title=f"Follow-up task due: {subject}",
            url=reverse("followups:mine", kwargs={"org_slug": organization.slug}),
            payload={"sequence": step.sequence.name, "task": subject},
        )
    elif step.action == Step.Action.FIELD_UPDATE:
        _update_field(enrollment.target, step)


def _update_field(target: Deal | Lead, step: Step) -> None:
    allowed = UPDATABLE_FIELDS[type(target)]
    if step.field_name not in allowed:
        raise ValueError(
            f"Step {step.pk} updates {step.field_name!r}, which is not one of "
            f"{sorted(allowed)} for a {type(target).__name__.lower()}."
        )
    field = type(target)._meta.get_field(step.field_name)
    setattr(target, step.field_name, field.to_python(step.field_value))
    target.save(update_fields=[step.field_name])


def _advance(enrollment: Enrollment, step: Step, now: dt.datetime) -> None:
    following = (
        Step.objects.filter(sequence_id=enrollment.sequence_id, order__gt=step.order)
        .order_by("order")
        .first()
    )
    enrollment.last_step_at = now
    enrollment.save(update_fields=["last_step_at"])
    if following is None:
        _finish_enrollment(enrollment, now)
        return
    enrollment.next_step = following.order
    enrollment.next_due_at = step_due_at(
        now,
        following.delay_amount,
        following.delay_unit,
        member_zone(enrollment.member),
    )
    enrollment.save(update_fields=["next_step", "next_due_at"])


def sweep_started(
    *, older_than: dt.timedelta, now: dt.datetime | None = None, limit: int = 200
) -> list[tuple[int, int]]:
    """Return (organisation id, run id) of runs "started" for ``older_than``.

    A run locked right now (a worker is sending its email) is skipped. A run
    swept ``MAX_SWEEPS`` times is marked failed and its enrolment exited.
    """
    now = now or timezone.now()
    resend: list[tuple[int, int]] = []
    with transaction.atomic():
        stale = list(
            StepRun.unscoped.select_for_update(skip_locked=True, of=("self",))
            .select_related("organization")
            .filter(status=StepRun.Status.STARTED, started_at__lte=now - older_than)
            .order_by("started_at", "id")[:limit]
        )
        for run in stale:
            with tenant_context(run.organization):
                if run.attempts >= MAX_SWEEPS:
                    _fail(run, now)
                    continue
                run.attempts += 1
                run.save(update_fields=["attempts"])
            resend.append((run.organization_id, run.pk))
    if resend:
        logger.warning(
            "Sweeper re-sent %d follow-up steps left started for over %d s",
            len(resend),
            older_than.total_seconds(),
        )
    return resend


def _fail(run: StepRun, now: dt.datetime) -> None:
    run.status = StepRun.Status.FAILED
    run.finished_at = now
    run.error = f"Still not done after {MAX_SWEEPS} re-sends by the sweeper."
    run.save(update_fields=["status", "finished_at", "error"])
    enrollment = Enrollment.objects.select_for_update().get(pk=run.enrollment_id)
    services.exit_enrollment(enrollment, Enrollment.ExitReason.STEP_FAILED, now)
    logger.error(
        "Follow-up step run %s failed: %s",
        run.pk,
        run.error,
        extra={"step_run_id": run.pk, "enrollment_id": enrollment.pk},
    )
