"""Replay recent leads through a draft rule set, beside what the live rules did.

The leads received in the last N weeks are routed again, oldest first, by
the draft rules. Pools start from an empty rotation, kept in memory, and
availability is taken as of each lead's arrival: time off on its day and
working hours at its moment. Open-lead counts are today's, because the
history of open leads is not kept. Nothing is written.

Per rep, the result gives the leads and their expected value under the
draft and under the live decisions, and the expected SLA breaches: leads
times the share of the rep's closed response timers that were breached.
The fairness figure is Jain's index over the reps' expected value,
(sum x)^2 / (n * sum x^2): 1.0 when every rep who got leads got the same
value, 1/n when one rep got everything. The n reps are those who got a
lead under the draft or the live rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Q
from django.utils import timezone

from activity.models import Lead
from routing.engine.decision import decide
from routing.engine.pools import Simulation
from routing.engine.value import expected_value
from routing.models import Assignment, ResponseTimer, RoutingRule
from spm.models import Membership
from spm.tenancy import get_current_organization

MAX_LEADS = 500
MAX_WEEKS = 26
HUNDREDTH = Decimal("0.01")


@dataclass
class RepResult:
    member: Membership
    draft_leads: int = 0
    draft_value: Decimal = Decimal(0)
    live_leads: int = 0
    live_value: Decimal = Decimal(0)
    breach_rate: Decimal | None = None

    @property
    def draft_breaches(self) -> Decimal | None:
        if self.breach_rate is None:
            return None
        return (self.draft_leads * self.breach_rate).quantize(HUNDREDTH, ROUND_HALF_UP)

    @property
    def live_breaches(self) -> Decimal | None:
        if self.breach_rate is None:
            return None
        return (self.live_leads * self.breach_rate).quantize(HUNDREDTH, ROUND_HALF_UP)


@dataclass
class BacktestResult:
    weeks: int
    since: dt.datetime
    received: int
    replayed: int
    reps: list[RepResult] = field(default_factory=list)
    draft_queued: int = 0
    live_queued: int = 0
    changed: int = 0
    draft_fairness: Decimal | None = None
    live_fairness: Decimal | None = None

    @property
    def truncated(self) -> bool:
        return self.replayed < self.received


def jain_index(values: list[Decimal]) -> Decimal | None:
    """Return Jain's fairness index of ``values``, to 0.01, or None when all are 0."""
    total = sum(values, Decimal(0))
    if not total:
        return None
    squares = sum((value * value for value in values), Decimal(0))
    return (total * total / (len(values) * squares)).quantize(HUNDREDTH, ROUND_HALF_UP)


def _breach_rates(member_ids: set[int]) -> dict[int, Decimal]:
    """Return each rep's share of breached timers among their closed ones."""
    rows = (
        ResponseTimer.objects.filter(member_id__in=member_ids)
        .exclude(status=ResponseTimer.Status.OPEN)
        .values("member_id")
        .annotate(
            closed=Count("id"),
            breached=Count("id", filter=Q(status=ResponseTimer.Status.BREACHED)),
        )
        .order_by()
    )
    return {row["member_id"]: Decimal(row["breached"]) / row["closed"] for row in rows}


def backtest(
    rules: list[RoutingRule], weeks: int, now: dt.datetime | None = None
) -> BacktestResult:
    """Route the leads of the last ``weeks`` weeks by ``rules``, writing nothing.

    At most ``MAX_LEADS`` leads are replayed, the most recent ones.
    """
    organization = get_current_organization()
    now = now or timezone.now()
    since = now - dt.timedelta(weeks=weeks)
    received = Lead.objects.filter(
        received_at__gte=since,
        received_at__lte=now,
        routing_status__in=[Lead.RoutingStatus.ASSIGNED, Lead.RoutingStatus.QUEUED],
    )
    total = received.count()
    newest = list(
        received.select_related("qualification").order_by("-received_at", "-id")[
            :MAX_LEADS
        ]
    )
    leads = list(reversed(newest))
    live = {
        row["lead_id"]: row["member_id"]
        for row in Assignment.objects.filter(lead__in=leads).values(
            "lead_id", "member_id"
        )
    }

    draft_owner: dict[int, int | None] = {}
    values: dict[int, Decimal] = {}
    members: dict[int, Membership] = {}
    simulation = Simulation(now=since)
    for lead in leads:
        simulation.now = lead.received_at
        day = timezone.localdate(lead.received_at, organization.zoneinfo)
        values[lead.pk] = expected_value(lead, day)
        decision = decide(lead, day, dry_run=True, rules=rules, simulation=simulation)
        draft_owner[lead.pk] = decision.member.pk if decision.member else None
        if decision.member is not None:
            members[decision.member.pk] = decision.member

    live_ids = {member_id for member_id in live.values() if member_id is not None}
    missing = live_ids - members.keys()
    members.update(Membership.objects.in_bulk(missing))
    rates = _breach_rates(set(members))

    per_rep: dict[int, RepResult] = {}

    def rep(member_id: int) -> RepResult:
        if member_id not in per_rep:
            per_rep[member_id] = RepResult(
                members[member_id], breach_rate=rates.get(member_id)
            )
        return per_rep[member_id]

    result = BacktestResult(
        weeks=weeks, since=since, received=total, replayed=len(leads)
    )
    for lead in leads:
        value = values[lead.pk]
        drafted, lived = draft_owner[lead.pk], live.get(lead.pk)
        if drafted is None:
            result.draft_queued += 1
        else:
            rep(drafted).draft_leads += 1
            rep(drafted).draft_value += value
        if lived is None:
            result.live_queued += 1
        else:
            rep(lived).live_leads += 1
            rep(lived).live_value += value
        if drafted != lived:
            result.changed += 1
    result.reps = sorted(per_rep.values(), key=lambda r: r.member.display_name)
    result.draft_fairness = jain_index([r.draft_value for r in result.reps])
    result.live_fairness = jain_index([r.live_value for r in result.reps])
    return result


def backtest_by_member(result: BacktestResult) -> dict[str, RepResult]:
    """Return the result's reps by display name."""
    return {rep_result.member.display_name: rep_result for rep_result in result.reps}
