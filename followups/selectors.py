"""Reads for the follow-up pages."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from followups.models import Enrollment, Sequence

ENROLLMENTS_SHOWN = 100


def sequences_with_counts(member_ids: set[int]) -> list[Sequence]:
    """Return the sequences with enrolled, finished and replied counts.

    Only the enrollments of ``member_ids`` are counted.

    ``reply_rate`` is the percentage of enrollments that exited on a reply,
    or None with no enrollments.
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
    """Return the latest enrollments of ``member_ids``, newest first."""
    return Enrollment.objects.filter(member_id__in=member_ids).select_related(
        "sequence", "deal", "lead", "member"
    )[:ENROLLMENTS_SHOWN]
