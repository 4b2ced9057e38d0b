"""Per-rep readings of each rule metric, one fixed set of queries per rule.

Win rate comes from measurement.selectors; coverage, attainment, pace and
activity against benchmark from measurement.progress. Lead response time and
stale deals are read here, with one and two queries for all reps.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from decimal import Decimal
from statistics import median
from zoneinfo import ZoneInfo

from django.db.models import Exists, Max, Min, OuterRef, Q, Subquery

from activity.models import Activity, Deal, Lead, Stage
from coaching.business_hours import business_minutes
from coaching.models import Metric, Rule
from coaching.readings import EvaluationContext, Reading, RuleWindow
from measurement.progress import period_pace
from measurement.selectors import MetricScope, scorecards_by_member
from spm.models import Membership

# Evidence lists stop at this many rows; the value still counts them all.
EVIDENCE_ROWS = 25
DEFAULT_STALE_DAYS = 14


def _decimal(value) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


# Lead response time ----------------------------------------------------------


@dataclass(frozen=True)
class LeadResponse:
    """A lead assigned to a rep, and how long the rep took to act on it.

    ``responded_at`` is None while the rep has logged no activity on the lead;
    ``minutes`` is then the business time waited so far.
    """

    lead_id: str
    name: str
    owner_id: int
    assigned_at: dt.datetime
    responded_at: dt.datetime | None
    minutes: Decimal


def _lead_name(row: dict) -> str:
    name = f"{row['first_name']} {row['last_name']}".strip()
    return name or row["email"] or row["company"] or str(row["public_id"])


def lead_responses(
    member_ids: Collection[int],
    start_at: dt.datetime,
    end_at: dt.datetime,
    now: dt.datetime,
    time_zone: ZoneInfo,
) -> dict[int, list[LeadResponse]]:
    """Return the leads assigned to each member in ``[start_at, end_at)``. One query.

    The response is the first activity the lead's owner logged on the lead
    at or after its assignment. Activities of other people, and activities
    before the assignment, do not count. A lead with no response yet counts
    with the business time it has waited until ``now``, so a rep who never
    responds gets slower instead of dropping out of the sample.
    """
    first_response = (
        Activity.objects.filter(
            lead_id=OuterRef("pk"),
            owner_id=OuterRef("owner_id"),
            occurred_at__gte=OuterRef("assigned_at"),
            occurred_at__lte=now,
        )
        .order_by()
        .values("lead_id")
        .annotate(first=Min("occurred_at"))
        .values("first")
    )
    rows = (
        Lead.objects.filter(
            owner_id__in=member_ids,
            assigned_at__gte=start_at,
            assigned_at__lt=end_at,
        )
        .annotate(responded_at=Subquery(first_response))
        .values(
            "public_id",
            "first_name",
            "last_name",
            "email",
            "company",
            "owner_id",
            "assigned_at",
            "responded_at",
        )
        .order_by("assigned_at", "pk")
    )
    responses: dict[int, list[LeadResponse]] = defaultdict(list)
    for row in rows:
        until = row["responded_at"] or now
        responses[row["owner_id"]].append(
            LeadResponse(
                lead_id=str(row["public_id"]),
                name=_lead_name(row),
                owner_id=row["owner_id"],
                assigned_at=row["assigned_at"],
                responded_at=row["responded_at"],
                minutes=business_minutes(row["assigned_at"], until, time_zone),
            )
        )
    return responses


def _lead_evidence(leads: list[LeadResponse]) -> list[dict]:
    slowest = sorted(leads, key=lambda lead: lead.minutes, reverse=True)
    return [
        {
            "id": lead.lead_id,
            "name": lead.name,
            "assigned_at": lead.assigned_at.isoformat(),
            "responded_at": lead.responded_at.isoformat()
            if lead.responded_at
            else None,
            "minutes": str(lead.minutes),
        }
        for lead in slowest[:EVIDENCE_ROWS]
    ]


def read_response_time(
    ctx: EvaluationContext, rule: Rule, members: list[Membership], window: RuleWindow
) -> dict[int, Reading]:
    responses = lead_responses(
        [member.pk for member in members],
        window.start_at(ctx.time_zone),
        window.end_at(ctx.time_zone),
        ctx.now,
        ctx.time_zone,
    )
    readings = {}
    for member in members:
        leads = responses.get(member.pk, [])
        if not leads:
            readings[member.pk] = Reading(None, sample=0)
            continue
        unanswered = sum(1 for lead in leads if lead.responded_at is None)
        readings[member.pk] = Reading(
            value=median([lead.minutes for lead in leads]),
            sample=len(leads),
            evidence={"leads": _lead_evidence(leads), "unanswered": unanswered},
        )
    return readings


# Stale open deals ------------------------------------------------------------


def stale_open_deals(
    member_ids: Collection[int],
    today: dt.date,
    idle_days: int,
    now: dt.datetime,
    time_zone: ZoneInfo,
) -> dict[int, list[dict]]:
    """Return each member's open deals untouched for ``idle_days`` or more. Two queries.

    A deal's last touch is its latest activity up to ``now``, or its
    creation date when it has none. A deal last touched on day D has been
    idle ``today - D`` days, counted in the organisation's time zone.
    """
    last_quiet_day = today - dt.timedelta(days=idle_days)
    # Activities before midnight after the last quiet day were idle long enough.
    cutoff_at = dt.datetime.combine(
        last_quiet_day + dt.timedelta(days=1), dt.time.min, tzinfo=time_zone
    )
    activities = Activity.objects.filter(deal_id=OuterRef("pk"), occurred_at__lte=now)
    last_activity = (
        activities.order_by()
        .values("deal_id")
        .annotate(last=Max("occurred_at"))
        .values("last")
    )
    # The filter tests for activities with EXISTS, which stops at the first
    # index entry, and only the stale deals compute their last activity.
    created_long_ago = Q(created_on__lte=last_quiet_day) | Q(
        created_on__isnull=True, created_at__lt=cutoff_at
    )
    # Filtering on the open stages' ids, rather than joining the stages, lets
    # PostgreSQL estimate the open deals from the stage column's statistics.
    # On the benchmark tenant (bench/coaching.py) the join was estimated at
    # five times the real rows, and the query planned with JIT took 1.3 s
    # instead of 0.3 s.
    open_stages = list(
        Stage.objects.filter(is_closed=False).values_list("pk", flat=True)
    )
    rows = (
        Deal.objects.filter(
            owner_id__in=member_ids,
            archived_at__isnull=True,
            stage_id__in=open_stages,
        )
        .filter(~Exists(activities.filter(occurred_at__gte=cutoff_at)))
        .filter(Exists(activities) | created_long_ago)
        .annotate(last_activity_at=Subquery(last_activity))
        .values(
            "public_id",
            "name",
            "external_id",
            "amount",
            "owner_id",
            "created_on",
            "created_at",
            "last_activity_at",
            "stage__name",
        )
        .order_by("pk")
    )
    deals: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        last_activity_at = row["last_activity_at"]
        if last_activity_at is not None:
            last_touch = last_activity_at.astimezone(time_zone).date()
        else:
            last_touch = (
                row["created_on"] or row["created_at"].astimezone(time_zone).date()
            )
        deals[row["owner_id"]].append(
            {
                "id": str(row["public_id"]),
                "name": row["name"] or row["external_id"] or str(row["public_id"]),
                "stage": row["stage__name"],
                "amount": None if row["amount"] is None else str(row["amount"]),
                "last_activity": last_activity_at.astimezone(time_zone)
                .date()
                .isoformat()
                if last_activity_at
                else None,
                "last_touch": last_touch.isoformat(),
                "idle_days": (today - last_touch).days,
            }
        )
    return deals


def read_stale_deals(
    ctx: EvaluationContext, rule: Rule, members: list[Membership], window: RuleWindow
) -> dict[int, Reading]:
    idle_days = int(rule.parameter or DEFAULT_STALE_DAYS)
    deals = stale_open_deals(
        [member.pk for member in members], ctx.today, idle_days, ctx.now, ctx.time_zone
    )
    readings = {}
    for member in members:
        stale = sorted(
            deals.get(member.pk, []),
            key=lambda deal: (-deal["idle_days"], deal["name"]),
        )
        readings[member.pk] = Reading(
            value=Decimal(len(stale)),
            evidence={"deals": stale[:EVIDENCE_ROWS], "idle_days": idle_days},
        )
    return readings


# Win rate --------------------------------------------------------------------


def read_win_rate(
    ctx: EvaluationContext, rule: Rule, members: list[Membership], window: RuleWindow
) -> dict[int, Reading]:
    scope = MetricScope(
        member_ids=[member.pk for member in members],
        start=window.start,
        end=window.end,
        time_zone=ctx.time_zone,
    )
    cards = scorecards_by_member(scope)
    return {
        member_id: Reading(
            value=card.win_rate,
            sample=card.closed,
            evidence={"won": card.won, "lost": card.lost},
        )
        for member_id, card in cards.items()
    }


# Readings from measurement.progress -------------------------------------------


def _too_early(rule: Rule, window: RuleWindow, today: dt.date) -> str:
    """Return why an attainment rule waits, or "" once enough of the period passed.

    The share of the period passed is its pace: the days from the start to
    today included, over the days of the period.
    """
    if rule.parameter is None:
        return ""
    passed = period_pace(window.start, window.end, today)
    if passed >= rule.parameter:
        return ""
    return f"{passed}% of the period has passed, the rule waits for {rule.parameter}%"


def _quota_evidence(progress) -> dict:
    quota = progress.quota
    return {
        "bookings": str(progress.bookings),
        "quota": None if quota is None else str(quota.amount),
        "attainment": None if progress.attainment is None else str(progress.attainment),
        "pace": None if progress.pace is None else str(progress.pace),
    }


def read_attainment(
    ctx: EvaluationContext, rule: Rule, members: list[Membership], window: RuleWindow
) -> dict[int, Reading]:
    progress = ctx.progress(window.start, window.end)
    skip = _too_early(rule, window, ctx.today)
    readings = {}
    for member in members:
        rep = progress.get(member.pk)
        if rep is None:
            continue
        if rep.quota is None:
            readings[member.pk] = Reading(None, skip_reason="no quota for the period")
            continue
        value = rep.attainment
        if rule.metric == Metric.ATTAINMENT_TO_PACE:
            value = rep.attainment_to_pace
        readings[member.pk] = Reading(
            value=_decimal(value),
            target=_decimal(rep.pace),
            evidence=_quota_evidence(rep),
            skip_reason=skip,
        )
    return readings


def read_coverage(
    ctx: EvaluationContext, rule: Rule, members: list[Membership], window: RuleWindow
) -> dict[int, Reading]:
    progress = ctx.progress(window.start, window.end)
    readings = {}
    for member in members:
        rep = progress.get(member.pk)
        if rep is None:
            continue
        if rep.quota is None:
            readings[member.pk] = Reading(None, skip_reason="no quota for the period")
            continue
        target = rep.coverage_target
        evidence = {
            "pipeline": str(rep.coverage.pipeline),
            "remaining": str(rep.coverage.remaining),
            "target": None if target is None else target.explanation,
        }
        readings[member.pk] = Reading(
            value=_decimal(rep.coverage.ratio),
            target=None if target is None else _decimal(target.ratio),
            evidence=evidence,
            met=rep.coverage.met,
        )
    return readings


def read_activity(
    ctx: EvaluationContext, rule: Rule, members: list[Membership], window: RuleWindow
) -> dict[int, Reading]:
    # On the quota period, only its days so far are expected of the rep.
    end = min(window.end, ctx.today) if rule.window == "period" else window.end
    if end <= window.start:
        return {}
    statuses = ctx.activity(window.start, end)
    readings = {}
    for member in members:
        rows = [
            status
            for status in statuses.get(member.pk, [])
            if not rule.activity_type or status.activity_type == rule.activity_type
        ]
        expected = sum((_decimal(row.expected) for row in rows), Decimal(0))
        if not expected:
            continue
        readings[member.pk] = Reading(
            value=sum((_decimal(row.actual) for row in rows), Decimal(0)),
            target=expected,
            evidence={
                "types": [
                    {
                        "type": row.activity_type,
                        "actual": str(row.actual),
                        "expected": str(row.expected),
                    }
                    for row in rows
                ]
            },
        )
    return readings


Reader = Callable[
    [EvaluationContext, Rule, list[Membership], RuleWindow], dict[int, Reading]
]

READERS: dict[str, Reader] = {
    Metric.COVERAGE_VS_TARGET: read_coverage,
    Metric.WIN_RATE: read_win_rate,
    Metric.RESPONSE_TIME_MEDIAN: read_response_time,
    Metric.ACTIVITY_VS_BENCHMARK: read_activity,
    Metric.STALE_OPEN_DEALS: read_stale_deals,
    Metric.ATTAINMENT: read_attainment,
    Metric.ATTAINMENT_TO_PACE: read_attainment,
}
