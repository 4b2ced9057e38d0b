"""A member's statement for a period, from their plans, credits and history.

``calculate_period`` runs the steps in this order:

1. Split the period into segments by assignment and plan version.
2. In each segment, each component computes its lines. The caps per
   component and per plan, then the plan year schedule, apply to them
   (compensation.engine.caps).
3. On plans paid at close the lines are due now. On plans paid on payment
   the per-deal lines are held, and payments release them.
4. Deals cancelled in the period get clawback lines.
5. A draw tops up or recovers (compensation.engine.draws).

What one period passes to the next (draw balance, plan year gross, held and
paid commission by deal) lives in ``Carry``. ``calculate_periods`` runs
consecutive periods with one carry, so a statement can be computed from the
history of credits alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from operator import attrgetter

from compensation.engine.caps import (
    apply_year_schedule,
    cap_per_period,
    prorated_cap,
)
from compensation.engine.clawback import PaidDeal, clawback_line
from compensation.engine.components import calculator
from compensation.engine.draws import DrawTerms, draw_for, draw_lines
from compensation.engine.payments import HeldDeal, Payment, release_lines
from compensation.engine.plans import (
    ONE_DAY,
    Assignment,
    PayoutTiming,
    PlanTerms,
    Segment,
    SegmentRange,
    TeamMember,
    plan_segments,
)
from compensation.engine.types import (
    CalculationError,
    Credit,
    LineKind,
    Statement,
    StatementLine,
)
from compensation.engine.values import money

ZERO = Decimal("0.00")
CreditBasis = tuple[str, str]
# Credits are taken in order of credit date, then deal id.
_CREDIT_ORDER = attrgetter("credit_date", "deal_id")


@dataclass(frozen=True)
class Payee:
    """Everything the engine needs about one member, over the periods calculated.

    ``credits`` and ``team`` (the reporting tree, for overrides) are keyed by
    ``PlanTerms.credit_basis``, because the conversion to the plan's currency
    depends on it. ``quotas`` maps a segment's ``(start, end)`` to the
    member's bookings quota for those days. ``cancellations`` maps a deal id
    to the local date the deal was cancelled on.
    """

    member_id: int
    name: str
    assignments: tuple[Assignment, ...]
    credits: Mapping[CreditBasis, tuple[Credit, ...]] = field(default_factory=dict)
    team: Mapping[CreditBasis, tuple[TeamMember, ...]] = field(default_factory=dict)
    quotas: Mapping[tuple[dt.date, dt.date], Decimal] = field(default_factory=dict)
    draws: tuple[DrawTerms, ...] = ()
    cancellations: Mapping[int, dt.date] = field(default_factory=dict)
    payments: Mapping[int, tuple[Payment, ...]] = field(default_factory=dict)


@dataclass
class Carry:
    """State one period leaves to the next.

    ``held`` and ``paid`` are keyed by (deal id, plan version label), and
    ``paid`` has the cancelled deals only.
    """

    draw_balance: Decimal = ZERO
    year_gross: dict[tuple, Decimal] = field(default_factory=dict)
    held: dict[tuple[int, str], HeldDeal] = field(default_factory=dict)
    paid: dict[tuple[int, str], PaidDeal] = field(default_factory=dict)
    clawed_back: set[tuple[int, str]] = field(default_factory=set)


def segment_for(
    payee: Payee, found: SegmentRange, period_start: dt.date, period_end: dt.date
) -> Segment:
    """Attach the payee's credits, team and quota to a segment's days."""
    basis = found.terms.credit_basis
    credits = sorted(
        (
            credit
            for credit in payee.credits.get(basis, ())
            if found.start <= credit.credit_date < found.end
        ),
        key=_CREDIT_ORDER,
    )
    return Segment(
        start=found.start,
        end=found.end,
        period_start=period_start,
        period_end=period_end,
        terms=found.terms,
        assignment=found.assignment,
        payee_name=payee.name,
        credits=tuple(credits),
        team=payee.team.get(basis, ()),
        quota=payee.quotas.get((found.start, found.end)),
    )


def _year_label(table, index: int) -> str:
    tier = table.tiers[index]
    if tier.upper is None:
        return f"gross from {money(tier.lower)}"
    return f"gross {money(tier.lower)}-{money(tier.upper)}"


def earn_segment(segment: Segment, carry: Carry) -> list[StatementLine]:
    """Compute the lines a segment earns, with every cap and the year schedule."""
    terms = segment.terms
    note = segment.prorate_note()
    lines: list[StatementLine] = []
    for component in terms.components:
        component_lines = calculator(component.kind)(component, segment)
        lines += cap_per_period(
            component_lines,
            prorated_cap(component.cap_per_period, segment.fraction),
            f"{component.name} cap per period{note}",
        )
    # Caps bind on the line that crosses them, so lines go in date order.
    lines.sort(key=lambda line: line.date or segment.end)
    lines = cap_per_period(
        lines,
        prorated_cap(terms.cap_per_period, segment.fraction),
        f"{terms.label} cap per period{note}",
    )
    if terms.year_payout_tiers is not None:
        assignment = segment.assignment
        year = (assignment.id, assignment.start, assignment.year_start(segment.start))
        table = terms.year_payout_tiers
        lines, carry.year_gross[year] = apply_year_schedule(
            lines,
            table,
            carry.year_gross.get(year, ZERO),
            lambda index: _year_label(table, index),
        )
    return lines


def _hold(carry: Carry, line: StatementLine, segment: Segment) -> None:
    credit = next(c for c in segment.credits if c.deal_id == line.deal_id)
    key = (line.deal_id, segment.terms.label)
    earned = line.amount
    if key in carry.held:
        earned += carry.held[key].earned
    carry.held[key] = HeldDeal(
        deal_id=credit.deal_id,
        deal_name=credit.deal_name,
        credited_on=credit.credit_date,
        earned=earned,
        deal_amount=credit.deal_source_amount,
        deal_currency=credit.source_currency,
        earned_in=segment.period_start,
        timing=segment.terms.payout_timing,
        currency=segment.terms.currency,
        plan_version=segment.terms.label,
        plan_version_id=segment.terms.version_id,
    )


def _record_paid(
    carry: Carry,
    lines: list[StatementLine],
    terms_by_label: Mapping[str, PlanTerms],
    cancellations: Mapping[int, dt.date],
) -> None:
    """Add what ``lines`` paid per deal to ``carry.paid``, for later clawbacks.

    Only a cancelled deal is ever clawed back, so only the cancelled deals
    are recorded.
    """
    paid_kinds = LineKind.PAID_PER_DEAL
    paid = carry.paid
    held_deals = carry.held
    for line in lines:
        if line.deal_id not in cancellations or line.kind not in paid_kinds:
            continue
        key = (line.deal_id, line.plan_version)
        before = paid.get(key)
        terms = terms_by_label.get(line.plan_version)
        # A payment line is dated by the payment; clawback counts from the credit.
        held = held_deals.get(key)
        credited_on = held.credited_on if held else line.date
        paid[key] = PaidDeal(
            deal_id=line.deal_id,
            deal_name=line.deal_name,
            credit_date=before.credit_date if before else credited_on,
            paid=(before.paid if before else ZERO) + line.amount,
            currency=line.currency,
            clawback=terms.clawback if terms else None,
            plan_version=line.plan_version,
            plan_version_id=line.plan_version_id,
        )


def _clawbacks(
    payee: Payee, carry: Carry, start: dt.date, end: dt.date
) -> list[StatementLine]:
    lines = []
    for key in sorted(carry.paid):
        deal_id = key[0]
        cancelled_on = payee.cancellations.get(deal_id)
        if cancelled_on is None or not start <= cancelled_on < end:
            continue
        if key in carry.clawed_back:
            continue
        carry.clawed_back.add(key)
        carry.held.pop(key, None)
        line = clawback_line(carry.paid[key], cancelled_on)
        if line is not None:
            lines.append(line)
    return lines


def _covers(ranges: list[SegmentRange], start: dt.date, end: dt.date) -> bool:
    """Return whether every day of ``[start, end)`` falls in one of ``ranges``."""
    reached = start
    for found in sorted(ranges, key=attrgetter("start")):
        if found.start > reached:
            break
        reached = max(reached, found.end)
    return reached >= end


def _uncovered_notes(
    payee: Payee, ranges: list[SegmentRange], start: dt.date, end: dt.date
) -> list[str]:
    # Usually the segments cover the whole period, so no credit can be left out.
    if _covers(ranges, start, end):
        return []
    seen: dict[int, Credit] = {}
    for credits in payee.credits.values():
        for credit in credits:
            if start <= credit.credit_date < end:
                seen.setdefault(credit.deal_id, credit)
    # Whether a day falls in a segment, looked up once per day.
    covered: dict[dt.date, bool] = {}
    uncovered = []
    for credit in seen.values():
        day = credit.credit_date
        if day not in covered:
            covered[day] = any(r.start <= day < r.end for r in ranges)
        if not covered[day]:
            uncovered.append(credit)
    notes = []
    for credit in sorted(uncovered, key=_CREDIT_ORDER):
        notes.append(
            f"{credit.deal_name}, credited on {credit.credit_date:%Y-%m-%d}, "
            "falls on a day with no published plan assigned, so it earns nothing."
        )
    return notes


def calculate_period(
    payee: Payee, start: dt.date, end: dt.date, carry: Carry | None = None
) -> Statement:
    """Compute the statement of ``[start, end)``; ``carry`` is updated in place."""
    carry = carry if carry is not None else Carry()
    ranges = plan_segments(start, end, payee.assignments)
    draw = draw_for(payee.draws, start, end)
    currencies = sorted({found.terms.currency for found in ranges})
    if len(currencies) > 1:
        raise CalculationError(
            f"{payee.name} has plans paying in {' and '.join(currencies)} in the "
            f"period starting {start:%Y-%m-%d}; one statement has one currency. "
            "Move the plans to one currency."
        )
    if currencies:
        currency = currencies[0]
    elif draw is not None:
        currency = draw.currency
    else:
        currency = ""

    lines: list[StatementLine] = []
    held_lines: list[StatementLine] = []
    credits: list[Credit] = []
    for found in ranges:
        segment = segment_for(payee, found, start, end)
        credits += segment.credits
        for line in earn_segment(segment, carry):
            holds = found.terms.payout_timing != PayoutTiming.AT_CLOSE
            if holds and line.kind in LineKind.PER_DEAL and line.deal_id is not None:
                held_lines.append(line)
                _hold(carry, line, segment)
            else:
                lines.append(line)
    lines += release_lines(carry.held.values(), payee.payments, start, end)

    terms_by_label = {
        terms.label: terms
        for assignment in payee.assignments
        for terms in assignment.versions
    }
    _record_paid(carry, lines, terms_by_label, payee.cancellations)
    lines += _clawbacks(payee, carry, start, end)

    earned = sum((line.amount for line in lines), ZERO)
    draw_result, carry.draw_balance = draw_lines(
        earned=earned,
        draw=draw,
        balance=carry.draw_balance,
        currency=currency,
        date=end - ONE_DAY,
    )
    lines += draw_result
    return Statement(
        member_id=payee.member_id,
        member_name=payee.name,
        period_start=start,
        period_end=end,
        currency=currency,
        lines=tuple(lines),
        total=sum((line.amount for line in lines), ZERO),
        earned=earned,
        credits=tuple(credits),
        held=tuple(held_lines),
        draw_balance=carry.draw_balance,
        notes=tuple(_uncovered_notes(payee, ranges, start, end)),
    )


def calculate_periods(
    payee: Payee, periods: Sequence[tuple[dt.date, dt.date]]
) -> list[Statement]:
    """Compute consecutive periods in order, carrying balances from each to the next."""
    carry = Carry()
    return [calculate_period(payee, start, end, carry) for start, end in periods]
