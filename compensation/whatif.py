"""What-if estimator: projected earnings if chosen open deals close as won.

The estimate reruns the rep's statement calculation for the period with
the chosen open deals counted as won on their expected close date, so tiers,
caps, splits and exchange rates apply as they will on the real statement.
The projection is the difference between that total and the total with
the stored won deals alone.

The nudge compares two tiers: the one the period's credited total reaches
now, and the one it would reach if every open deal closing in the period
were won. It checks each tiered component of the plan version in effect on
the first day of the period.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from activity.models import Deal
from compensation import selectors
from compensation.crediting import DealInput, SplitInput
from compensation.engine.types import Statement as ComputedStatement
from compensation.engine.values import money, percent
from compensation.services import calculate_statement
from goals.calendar import DateRange
from goals.selectors import member_quotas
from spm.models import Membership

ZERO = Decimal("0.00")


def open_deals_closing(member: Membership, period: DateRange) -> list[Deal]:
    """Return the member's open deals expected to close in ``period``. Two queries."""
    return list(
        Deal.objects.filter(
            owner=member,
            stage__is_closed=False,
            archived_at__isnull=True,
            amount__isnull=False,
            close_date__gte=period.start,
            close_date__lt=period.end,
        )
        .select_related("pipeline", "account", "stage")
        .prefetch_related("splits")
        .order_by("close_date", "id")
    )


def _as_won(deal: Deal) -> DealInput:
    return DealInput(
        deal_id=deal.pk,
        name=str(deal),
        amount=deal.amount,
        currency=deal.currency,
        owner_id=deal.owner_id,
        splits=tuple(
            SplitInput(split.member_id, split.percent) for split in deal.splits.all()
        ),
        close_date=deal.close_date,
        fields={
            "pipeline": deal.pipeline.name,
            "account": deal.account.name if deal.account else "",
            "account_industry": deal.account.industry if deal.account else "",
            "deal_type": deal.deal_type,
            "segment": deal.segment,
            "product": [],
        },
    )


@dataclass(frozen=True)
class Nudge:
    component: str
    current_tier: str
    next_tier: str
    next_rate: Decimal
    needed: Decimal
    open_total: Decimal

    @property
    def message(self) -> str:
        return (
            f"{money(self.needed)} more in won deals takes {self.component} from "
            f"tier {self.current_tier} to tier {self.next_tier} "
            f"({percent(self.next_rate)}). Your open deals closing this period "
            f"add up to {money(self.open_total)}."
        )


@dataclass(frozen=True)
class Estimate:
    current: ComputedStatement
    projected: ComputedStatement
    chosen: list[Deal]

    @property
    def uplift(self) -> Decimal:
        return self.projected.total - self.current.total


def _credited(statement: ComputedStatement) -> Decimal:
    seen = {}
    for credit in statement.credits:
        seen.setdefault(credit.deal_id, credit.amount)
    return sum(seen.values(), ZERO)


def estimate(member: Membership, period: DateRange, chosen: list[Deal]) -> Estimate:
    """Return the statement now and with the ``chosen`` open deals won."""
    current = calculate_statement(member, period)
    projected = calculate_statement(
        member, period, extra_deals=[_as_won(deal) for deal in chosen]
    )
    return Estimate(current, projected, chosen)


def _tier_name(tier, unit: str) -> str:
    lower = f"{tier.lower:,.2f}" if not unit else f"{tier.lower.normalize():f}{unit}"
    if tier.upper is None:
        return f"{lower} and up"
    upper = f"{tier.upper:,.2f}" if not unit else f"{tier.upper.normalize():f}{unit}"
    return f"{lower}-{upper}"


def _version_on(member: Membership, day: dt.date):
    rows = selectors.member_assignments(member.pk, day + dt.timedelta(days=1))
    rows = [row for row in rows if row.end_date is None or row.end_date >= day]
    if not rows:
        return None
    versions = selectors.published_versions({row.plan_id for row in rows})
    for row in rows:
        current = None
        for version in versions.get(row.plan_id, []):
            if version.effective_from <= day:
                current = version
        if current is not None:
            return current
    return None


def nudges(
    member: Membership,
    period: DateRange,
    current: ComputedStatement,
    open_deals: list[Deal],
    everything: ComputedStatement,
) -> list[Nudge]:
    """Return a nudge per tiered component whose next tier the open deals reach.

    ``everything`` is the statement with all of ``open_deals`` won.
    NOTE: amount tiers are read unprorated, so a plan change inside the
    period makes the nudge approximate.
    """
    version = _version_on(member, period.start)
    if version is None or not open_deals:
        return []
    now, then = _credited(current), _credited(everything)
    found = []
    for component in version.components.all():
        if component.kind != "tiered":
            continue
        spec = component.to_engine().spec
        unit, scale = "", Decimal(1)
        if spec.basis == "attainment":
            quota = member_quotas([member], period.start, period.end).get(member.pk)
            if quota is None or quota.amount <= 0:
                continue
            unit, scale = "%", quota.amount / 100
        table = spec.tiers.scaled(scale)
        current_index, projected_index = table.index_at(now), table.index_at(then)
        if projected_index <= current_index:
            continue
        nearest = table.tiers[current_index + 1]
        found.append(
            Nudge(
                component=component.name,
                current_tier=_tier_name(spec.tiers.tiers[current_index], unit),
                next_tier=_tier_name(spec.tiers.tiers[current_index + 1], unit),
                next_rate=nearest.rate,
                needed=nearest.lower - now,
                open_total=then - now,
            )
        )
    return found
