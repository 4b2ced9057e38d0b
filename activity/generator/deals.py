"""Deals with their stage history, product line and split credits."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from activity.generator import catalog
from activity.generator.context import (
    BATCH_SIZE,
    Run,
    chunked,
    cumulative,
    insert,
    weekday_on_or_after,
    weekday_on_or_before,
    weekday_within,
)
from activity.generator.crm import AccountInfo
from activity.generator.people import SOURCE, RepProfile
from activity.models import (
    Deal,
    DealProduct,
    DealSplit,
    DealStageChange,
    Pipeline,
    Product,
    Stage,
)
from spm.money import allocate, round_money


@dataclass(frozen=True)
class Segment:
    """Baselines for one customer segment, before a rep's own factors."""

    median_amount: float
    amount_sigma: float
    cycle_days: float
    win_rate: float


SEGMENTS = {
    "smb": Segment(6_000, 0.6, 35, 0.33),
    "mid": Segment(28_000, 0.55, 80, 0.28),
    "enterprise": Segment(110_000, 0.6, 150, 0.22),
}
# Relative chance that a lost deal was lost after reaching each open stage.
LOST_AFTER_WEIGHTS = cumulative([35, 25, 18, 13, 9])
SPLIT_SHARE = 0.05
SPLIT_PERCENTS = [(50, 50), (50, 50), (50, 50), (60, 40), (70, 30)]
MAX_DISCOUNT_BASIS_POINTS = 2500


@dataclass
class DealPlan:
    """One deal before it is written: the row values and its history."""

    number: int
    rep: RepProfile
    account: AccountInfo
    product_index: int
    quantity: int
    unit_price: Decimal
    amount: Decimal
    created_on: dt.date
    close_date: dt.date
    # Stage positions in ``catalog.STAGES``, and the time the deal entered each.
    path: list[int]
    times: list[dt.datetime]
    closed: bool
    split: tuple[RepProfile, tuple[int, int]] | None = None


@dataclass(frozen=True)
class DealRef:
    """A deal's id, account and working days, as activity generation uses them."""

    pk: int
    account_index: int
    created_on: dt.date
    last_active_day: dt.date


@dataclass
class DealTotals:
    won: int = 0
    lost: int = 0
    open: int = 0
    stage_changes: int = 0
    splits: int = 0
    # Deals of each rep, keyed by the rep's membership id.
    by_rep: dict[int, list[DealRef]] = field(default_factory=dict)


def create_deals(
    run: Run,
    *,
    reps: list[RepProfile],
    accounts: list[AccountInfo],
    pipeline: Pipeline,
    stages: list[Stage],
    products: list[Product],
    count: int,
) -> DealTotals:
    """Create ``count`` deals with stage changes, a product line and splits."""
    totals = DealTotals(by_rep={rep.membership.pk: [] for rep in reps})
    for plans in chunked(_plans(run, reps, accounts, count), BATCH_SIZE):
        deals = insert(Deal, [_deal_row(run, plan, pipeline, stages) for plan in plans])
        _insert_children(run, plans, deals, stages, products, totals)
        for plan, deal in zip(plans, deals, strict=True):
            last_active = plan.close_date if plan.closed else run.last_day
            totals.by_rep[plan.rep.membership.pk].append(
                DealRef(deal.pk, plan.account.index, plan.created_on, last_active)
            )
    return totals


def _plans(
    run: Run, reps: list[RepProfile], accounts: list[AccountInfo], count: int
) -> Iterator[DealPlan]:
    capacity = cumulative(rep.capacity for rep in reps)
    by_segment: dict[str, list[int]] = {segment: [] for segment in SEGMENTS}
    for i, (_name, _family, _price, segments) in enumerate(catalog.PRODUCTS):
        for segment in segments:
            by_segment[segment].append(i)
    for number in range(1, count + 1):
        rep = run.weighted(reps, capacity)
        if rep.account_indexes:
            account = accounts[run.rng.choice(rep.account_indexes)]
        else:
            account = run.rng.choice(accounts)
        product_index = run.rng.choice(by_segment[account.segment])
        yield _plan(run, number, rep, account, product_index, reps)


def _plan(
    run: Run,
    number: int,
    rep: RepProfile,
    account: AccountInfo,
    product_index: int,
    reps: list[RepProfile],
) -> DealPlan:
    rng = run.rng
    segment = SEGMENTS[account.segment]
    list_price = catalog.PRODUCTS[product_index][2]

    # Amount: a log-normal target sets the quantity, and a discount of up to
    # 25% sets the unit price, so the line is exact: amount = unit x quantity.
    target = rng.lognormvariate(math.log(segment.median_amount), segment.amount_sigma)
    quantity = max(1, round(target * rep.size_factor / float(list_price)))
    discount = rng.randint(0, MAX_DISCOUNT_BASIS_POINTS)
    unit_price = round_money(list_price * (10_000 - discount) / 10_000)

    # More deals are created in recent months, as in a growing business.
    span = (run.last_day - run.first_day).days
    created_on = run.first_day + dt.timedelta(days=round(span * rng.random() ** 0.8))
    created_on = weekday_within(created_on, run.first_day, run.last_day)

    plan = DealPlan(
        number=number,
        rep=rep,
        account=account,
        product_index=product_index,
        quantity=quantity,
        unit_price=unit_price,
        amount=unit_price * quantity,
        created_on=created_on,
        close_date=created_on,
        path=[],
        times=[],
        closed=False,
    )
    _schedule(run, plan, segment)
    if rng.random() < SPLIT_SHARE and len(reps) > 1:
        plan.split = (_split_partner(run, rep, reps), rng.choice(SPLIT_PERCENTS))
    return plan


def _schedule(run: Run, plan: DealPlan, segment: Segment) -> None:
    """Pick the outcome and when the deal enters each stage.

    A deal whose close date is after ``run.last_day`` is still open: it keeps
    the stages it entered by then, and the close date becomes its expected one.
    """
    rng = run.rng
    win_rate = min(max(segment.win_rate * plan.rep.win_factor, 0.05), 0.7)
    if rng.random() < win_rate:
        path = [*range(catalog.OPEN_STAGE_COUNT), catalog.WON_STAGE]
        cycle = segment.cycle_days
    else:
        lost_after = run.weighted(range(catalog.OPEN_STAGE_COUNT), LOST_AFTER_WEIGHTS)
        path = [*range(lost_after + 1), catalog.LOST_STAGE]
        # A deal lost early was lost quickly.
        cycle = segment.cycle_days * (lost_after + 1) / catalog.OPEN_STAGE_COUNT
    cycle *= plan.rep.cycle_factor * rng.lognormvariate(0, 0.45)
    close_date = weekday_on_or_after(
        plan.created_on + dt.timedelta(days=max(3, round(cycle)))
    )

    length = (close_date - plan.created_on).days
    fractions = [*sorted(rng.random() for _ in range(len(path) - 2)), 1.0]
    days = [plan.created_on]
    for fraction in fractions:
        offset = dt.timedelta(days=round(fraction * length))
        day = weekday_on_or_before(plan.created_on + offset)
        days.append(max(day, plan.created_on))
    times = _increasing([run.working_time(day) for day in days], run)

    plan.close_date = close_date
    plan.closed = close_date <= run.last_day
    if not plan.closed:
        entered = [t for t in times[:-1] if t.date() <= run.last_day]
        path, times = path[: len(entered)], entered
    plan.path, plan.times = path, times


def _increasing(times: list[dt.datetime], run: Run) -> list[dt.datetime]:
    """Push each time a few minutes past the one before when it is not later."""
    result = [times[0]]
    for moment in times[1:]:
        if moment <= result[-1]:
            moment = result[-1] + dt.timedelta(minutes=run.rng.randint(1, 30))
        result.append(moment)
    return result


def _split_partner(run: Run, rep: RepProfile, reps: list[RepProfile]) -> RepProfile:
    others = [other for other in reps if other is not rep]
    teammates = [other for other in others if other.team_index == rep.team_index]
    return run.rng.choice(teammates or others)


def _deal_row(
    run: Run, plan: DealPlan, pipeline: Pipeline, stages: list[Stage]
) -> Deal:
    product_name = catalog.PRODUCTS[plan.product_index][0]
    return Deal(
        organization=run.organization,
        name=f"{plan.account.name} - {product_name}",
        account_id=plan.account.pk,
        owner=plan.rep.membership,
        pipeline=pipeline,
        stage=stages[plan.path[-1]],
        amount=plan.amount,
        currency=run.organization.currency,
        created_on=plan.created_on,
        close_date=plan.close_date,
        stage_changed_at=plan.times[-1],
        created_at=plan.times[0],
        external_source=SOURCE,
        external_id=f"D{plan.number:07d}",
    )


def _insert_children(
    run: Run,
    plans: list[DealPlan],
    deals: list[Deal],
    stages: list[Stage],
    products: list[Product],
    totals: DealTotals,
) -> None:
    organization = run.organization
    changes, lines, splits = [], [], []
    for plan, deal in zip(plans, deals, strict=True):
        previous = None
        for position, moment in zip(plan.path, plan.times, strict=True):
            changes.append(
                DealStageChange(
                    organization=organization,
                    deal=deal,
                    from_stage=previous,
                    to_stage=stages[position],
                    changed_at=moment,
                    source=SOURCE,
                )
            )
            previous = stages[position]
        lines.append(
            DealProduct(
                organization=organization,
                deal=deal,
                product=products[plan.product_index],
                quantity=plan.quantity,
                unit_price=plan.unit_price,
                amount=plan.amount,
            )
        )
        splits.extend(_split_rows(run, plan, deal))
        _count_outcome(plan, totals)
    insert(DealStageChange, changes)
    insert(DealProduct, lines)
    insert(DealSplit, splits)
    totals.stage_changes += len(changes)
    totals.splits += len(splits)


def _split_rows(run: Run, plan: DealPlan, deal: Deal) -> list[DealSplit]:
    if plan.split is None:
        return []
    partner, percents = plan.split
    members = [plan.rep.membership, partner.membership]
    amounts = allocate(plan.amount, percents)
    return [
        DealSplit(
            organization=run.organization,
            deal=deal,
            member=member,
            percent=Decimal(percent),
            amount=amount,
        )
        for member, percent, amount in zip(members, percents, amounts, strict=True)
    ]


def _count_outcome(plan: DealPlan, totals: DealTotals) -> None:
    if not plan.closed:
        totals.open += 1
    elif plan.path[-1] == catalog.WON_STAGE:
        totals.won += 1
    else:
        totals.lost += 1
