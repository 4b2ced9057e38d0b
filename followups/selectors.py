"""Reads for the follow-up pages."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q, QuerySet
from django.template import TemplateSyntaxError

from activity.dates import local_instant
from activity.models import Activity, Deal, Lead
from followups.messages import merge_fields, render
from followups.models import Enrollment, Sequence, Step
from followups.schedule import member_zone
from followups.services import ACTIVITY_SOURCE
from spm.models import Membership

ENROLLMENTS_SHOWN = 100


def sequences_with_counts(member_ids: set[int]) -> list[Sequence]:
    """Return the sequences with enrolled, finished and replied counts.

    Only the enrolments of ``member_ids`` are counted.

    ``reply_rate`` is the percentage of enrolments that exited on a reply,
    or None with no enrolments.
    """
    mine = Q(enrollments__member_id__in=member_ids)
    sequences = list(
        Sequence.objects.annotate(
            enrolled=Count("enrollments", filter=mine),
            finished=Count(
                "enrollments",
                filter=mine & Q(enrollments__status=Enrollment.Status.FINISHED),
            ),
            replied=Count(
                "enrollments",
                filter=mine & Q(enrollments__exit_reason=Enrollment.ExitReason.REPLIED),
            ),
        ).order_by("name")
    )
    for sequence in sequences:
        sequence.reply_rate = (
            round(100 * sequence.replied / sequence.enrolled, 1)
            if sequence.enrolled
            else None
        )
    return sequences


def recent_enrollments(member_ids: set[int]) -> QuerySet:
    """Return the latest enrolments of ``member_ids``, newest first."""
    return Enrollment.objects.filter(member_id__in=member_ids).select_related(
        "sequence", "deal", "lead", "member"
    )[:ENROLLMENTS_SHOWN]


# Options in the manual enrolment list, per kind, most recently updated first.
ENROL_CHOICES = 200


def sequence_by_public_id(public_id) -> Sequence | None:
    """Return the current organisation's sequence with this public id, or None."""
    return (
        Sequence.objects.select_related("trigger_stage__pipeline")
        .filter(public_id=public_id)
        .first()
    )


def sequence_results(sequence: Sequence, member_ids: set[int]) -> dict:
    """Return the enrolled, finished and replied counts and the reply rate.

    The reply rate is replied / enrolled as a percentage with one decimal,
    where replied counts enrolments that exited because the contact replied,
    and enrolled counts every enrolment (active, finished or exited). It is
    None with no enrolments. Only the enrolments of ``member_ids`` count.
    """
    counts = Enrollment.objects.filter(
        sequence=sequence, member_id__in=member_ids
    ).aggregate(
        enrolled=Count("pk"),
        active=Count("pk", filter=Q(status=Enrollment.Status.ACTIVE)),
        finished=Count("pk", filter=Q(status=Enrollment.Status.FINISHED)),
        exited=Count("pk", filter=Q(status=Enrollment.Status.EXITED)),
        replied=Count("pk", filter=Q(exit_reason=Enrollment.ExitReason.REPLIED)),
    )
    enrolled = counts["enrolled"]
    counts["reply_rate"] = (
        round(100 * counts["replied"] / enrolled, 1) if enrolled else None
    )
    return counts


def sequence_enrollments(sequence: Sequence, member_ids: set[int]) -> list:
    """Return the latest enrolments of a sequence, each with its ``next_step_row``."""
    steps = {step.order: step for step in sequence.steps.all()}
    enrollments = list(
        Enrollment.objects.filter(sequence=sequence, member_id__in=member_ids)
        .select_related("deal", "lead", "member")
        .order_by("-enrolled_at", "-id")[:ENROLLMENTS_SHOWN]
    )
    for enrollment in enrollments:
        enrollment.next_step_row = steps.get(enrollment.next_step)
    return enrollments


def enrollment_by_public_id(
    sequence: Sequence, public_id, member_ids: set[int]
) -> Enrollment | None:
    """Return an enrolment of ``sequence`` whose rep is in ``member_ids``, or None."""
    return (
        Enrollment.objects.select_related("sequence", "member")
        .filter(sequence=sequence, public_id=public_id, member_id__in=member_ids)
        .first()
    )


def enrol_candidates(member_ids: set[int]) -> tuple[list[Deal], list[Lead]]:
    """Return the open deals and the leads of ``member_ids`` that may be enrolled."""
    deals = list(
        Deal.objects.filter(
            owner_id__in=member_ids,
            stage__is_closed=False,
            archived_at__isnull=True,
        )
        .select_related("owner")
        .order_by("-updated_at", "-id")[:ENROL_CHOICES]
    )
    leads = list(
        Lead.objects.filter(owner_id__in=member_ids)
        .select_related("owner")
        .order_by("-id")[:ENROL_CHOICES]
    )
    return deals, leads


def _rendered_subject(step: Step, enrollment: Enrollment) -> str:
    """Return the step's subject with the enrolment's merge fields filled in."""
    try:
        return render(step.subject, merge_fields(enrollment)).strip()
    except TemplateSyntaxError:
        # Steps saved before the builder checked templates may not parse.
        return step.subject


# Upcoming steps listed on a rep's follow-ups page, soonest first. A rep with
# more active enrolments in the window gets the first ones and a note.
UPCOMING_SHOWN = 100
UPCOMING_DAYS = 7


def _enrollments_due(member: Membership, **due_filter) -> QuerySet[Enrollment]:
    return (
        Enrollment.objects.filter(
            member=member, status=Enrollment.Status.ACTIVE, **due_filter
        )
        .select_related(
            "sequence", "member", "contact__account", "deal__account", "lead"
        )
        .order_by("next_due_at", "id")
    )


def _attach_next_steps(enrollments: list[Enrollment]) -> None:
    """Set ``next_step_row`` and ``next_step_subject`` on each enrolment. One query."""
    keys = {
        (enrollment.sequence_id, enrollment.next_step) for enrollment in enrollments
    }
    if not keys:
        return
    steps = {
        (step.sequence_id, step.order): step
        for step in Step.objects.filter(
            sequence_id__in={key[0] for key in keys}, order__in={key[1] for key in keys}
        )
    }
    for enrollment in enrollments:
        step = steps.get((enrollment.sequence_id, enrollment.next_step))
        enrollment.next_step_row = step
        enrollment.next_step_subject = (
            _rendered_subject(step, enrollment) if step else ""
        )


def followups_due_today(member: Membership, now: dt.datetime) -> dict:
    """Return a rep's steps due today, their upcoming steps and today's tasks.

    ``due`` lists the active enrolments whose next step is due before the
    rep's local midnight, overdue ones included, soonest first. ``upcoming``
    lists those whose next step is due in the ``UPCOMING_DAYS`` local days
    after today, at most ``UPCOMING_SHOWN`` of them, and ``upcoming_more`` is
    True when more exist. Each enrolment carries its ``next_step_row`` and
    ``next_step_subject`` (merge fields filled in). ``tasks`` lists the tasks
    that sequences created for the rep today. The day is the rep's, in
    ``followups.schedule.member_zone``. The query count does not grow
    with the number of enrolments.
    """
    zone = member_zone(member)
    today = now.astimezone(zone).date()
    day_start = local_instant(today, dt.time(0, 0), zone.key)
    day_end = local_instant(today + dt.timedelta(days=1), dt.time(0, 0), zone.key)
    last_day = today + dt.timedelta(days=UPCOMING_DAYS)
    upcoming_end = local_instant(
        last_day + dt.timedelta(days=1), dt.time(0, 0), zone.key
    )
    due = list(_enrollments_due(member, next_due_at__lt=day_end))
    upcoming = list(
        _enrollments_due(
            member, next_due_at__gte=day_end, next_due_at__lt=upcoming_end
        )[: UPCOMING_SHOWN + 1]
    )
    upcoming_more = len(upcoming) > UPCOMING_SHOWN
    upcoming = upcoming[:UPCOMING_SHOWN]
    _attach_next_steps(due + upcoming)
    tasks = list(
        Activity.objects.filter(
            owner=member,
            type=Activity.Type.TASK,
            external_source=ACTIVITY_SOURCE,
            occurred_at__gte=day_start,
            occurred_at__lt=day_end,
        )
        .select_related("deal", "lead")
        .order_by("occurred_at", "id")
    )
    return {
        "due": due,
        "upcoming": upcoming,
        "upcoming_more": upcoming_more,
        "upcoming_last_day": last_day,
        "upcoming_shown": UPCOMING_SHOWN,
        "upcoming_days": UPCOMING_DAYS,
        "tasks": tasks,
        "today": today,
        "zone": zone,
    }
