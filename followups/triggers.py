"""Automatic enrolment: stage and lead-assignment hooks, and an elapsed-time scan.

``deal_entered_stage`` and ``lead_assigned`` are for the code that moves a
deal or assigns a lead to call after its change commits. ``scan_elapsed``
runs from beat and enrols open deals that have had no activity, or whose
last activity was a meeting, for a sequence's N days. A deal is enrolled by
a scan at most once per quiet spell: a new enrolment needs an activity
logged after the previous one.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from activity.models import Activity, Deal, Lead
from followups import services
from followups.models import Enrollment, Sequence
from routing.config_cache import cached

logger = logging.getLogger(__name__)


def _filtered_deals(sequence: Sequence, deals: QuerySet) -> QuerySet:
    """Apply the sequence's filters (see ``Sequence.filters``) to a deal queryset."""
    filters = sequence.filters or {}
    if filters.get("pipeline"):
        deals = deals.filter(pipeline_id=filters["pipeline"])
    if filters.get("owners"):
        deals = deals.filter(owner_id__in=filters["owners"])
    if filters.get("teams"):
        deals = deals.filter(owner__team_id__in=filters["teams"])
    if filters.get("amount_min") not in (None, ""):
        deals = deals.filter(amount__gte=Decimal(str(filters["amount_min"])))
    if filters.get("amount_max") not in (None, ""):
        deals = deals.filter(amount__lte=Decimal(str(filters["amount_max"])))
    return deals


def _filtered_leads(sequence: Sequence, leads: QuerySet) -> QuerySet:
    filters = sequence.filters or {}
    if filters.get("owners"):
        leads = leads.filter(owner_id__in=filters["owners"])
    if filters.get("teams"):
        leads = leads.filter(owner__team_id__in=filters["teams"])
    return leads


def _enroll_quietly(sequence: Sequence, target, now: dt.datetime) -> Enrollment | None:
    try:
        return services.enroll(sequence=sequence, target=target, now=now)
    except services.EnrollmentError as error:
        logger.info(
            "Sequence %s did not enrol %s: %s",
            sequence.pk,
            target.pk,
            error,
            extra={"sequence_id": sequence.pk},
        )
        return None


def deal_entered_stage(deal: Deal, now: dt.datetime | None = None) -> list[Enrollment]:
    """Enrol ``deal`` in the active sequences triggered by its current stage."""
    now = now or timezone.now()
    sequences = Sequence.objects.filter(
        is_active=True,
        trigger=Sequence.Trigger.DEAL_ENTERS_STAGE,
        trigger_stage_id=deal.stage_id,
    )
    enrolled = []
    for sequence in sequences:
        if _filtered_deals(sequence, Deal.objects.filter(pk=deal.pk)).exists():
            enrollment = _enroll_quietly(sequence, deal, now)
            if enrollment is not None:
                enrolled.append(enrollment)
    return enrolled


def deals_entered_stage(
    deal_ids: list[int], *, organization_id: int, now: dt.datetime | None = None
) -> list[Enrollment]:
    """Enrol deals that a bulk write (CSV import, CRM sync) moved to a new stage.

    Call it in the write's transaction, with the ids of the deals whose stage
    changed. It costs one query when the organisation has no active stage
    sequence, so bulk writers may call it on every batch.
    """
    if not deal_ids:
        return []
    now = now or timezone.now()
    stage_ids = set(
        Sequence.unscoped.filter(
            organization_id=organization_id,
            is_active=True,
            trigger=Sequence.Trigger.DEAL_ENTERS_STAGE,
        ).values_list("trigger_stage_id", flat=True)
    )
    if not stage_ids:
        return []
    deals = Deal.unscoped.filter(
        organization_id=organization_id, pk__in=deal_ids, stage_id__in=stage_ids
    ).select_related("owner__organization")
    enrolled = []
    for deal in deals.order_by("pk"):
        enrolled += deal_entered_stage(deal, now)
    return enrolled


def lead_assigned(lead: Lead, now: dt.datetime | None = None) -> list[Enrollment]:
    """Enrol a newly assigned ``lead`` in the active lead-assignment sequences."""
    now = now or timezone.now()
    sequences = cached(
        "lead_assigned_sequences",
        lambda: list(
            Sequence.objects.filter(
                is_active=True, trigger=Sequence.Trigger.LEAD_ASSIGNED
            ).order_by("id")
        ),
    )
    enrolled = []
    for sequence in sequences:
        if _filtered_leads(sequence, Lead.objects.filter(pk=lead.pk)).exists():
            enrollment = _enroll_quietly(sequence, lead, now)
            if enrollment is not None:
                enrolled.append(enrollment)
    return enrolled


def quiet_deals(sequence: Sequence, now: dt.datetime) -> QuerySet:
    """Return the open deals that an elapsed-time sequence should enrol now."""
    cutoff = now - dt.timedelta(days=sequence.trigger_days)
    last = (
        Activity.objects.filter(deal_id=OuterRef("pk"))
        .exclude(external_source=services.ACTIVITY_SOURCE)
        .order_by("-occurred_at", "-id")
    )
    deals = Deal.objects.filter(
        stage__is_closed=False, archived_at__isnull=True, owner__isnull=False
    ).annotate(
        last_at=Subquery(last.values("occurred_at")[:1]),
        last_type=Subquery(last.values("type")[:1]),
    )
    deals = deals.annotate(quiet_since=Coalesce("last_at", "created_at"))
    if sequence.trigger == Sequence.Trigger.NO_ACTIVITY_DAYS:
        deals = deals.filter(quiet_since__lte=cutoff)
    else:
        deals = deals.filter(last_type=Activity.Type.MEETING, last_at__lte=cutoff)
    enrolled_since = Enrollment.objects.filter(
        sequence=sequence,
        deal_id=OuterRef("pk"),
        enrolled_at__gte=OuterRef("quiet_since"),
    )
    return _filtered_deals(sequence, deals).exclude(Exists(enrolled_since))


def scan_elapsed(now: dt.datetime | None = None) -> int:
    """Enrol quiet deals in the current organisation's sequences; return the count."""
    now = now or timezone.now()
    sequences = Sequence.objects.filter(
        is_active=True,
        trigger__in=[
            Sequence.Trigger.NO_ACTIVITY_DAYS,
            Sequence.Trigger.MEETING_WITHOUT_NEXT_STEP_DAYS,
        ],
    )
    enrolled = 0
    for sequence in sequences:
        for deal in quiet_deals(sequence, now).select_related("owner__organization"):
            if _enroll_quietly(sequence, deal, now) is not None:
                enrolled += 1
    return enrolled
