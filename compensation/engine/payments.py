"""Commission paid as the customer pays, in the period of each payment.

On a plan paid on payment, a deal's commission is earned in the period the
deal is credited, and released as payments arrive: after payments of ``p``
of a deal of ``d``, ``earned x min(p / d, 1)`` rounded to the cent is due.
Each period pays the difference between what is due after its payments and
what was due before them, so the releases add up to the earned commission
exactly, and a refund (a negative payment) takes back its share. A payment
received before the deal closed is released in the period the deal is
credited. On a plan paid on full payment, nothing is due until the payments
reach the deal's amount, and then all of it is.

Payments and the deal amount are both in the deal's own currency, so the
share paid does not depend on exchange rates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from compensation.engine.plans import PayoutTiming
from compensation.engine.types import LineKind, StatementLine
from compensation.engine.values import money, percent
from spm.money import round_money

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Payment:
    """Money received against a deal, in the deal's currency; negative for a refund."""

    deal_id: int
    received_on: dt.date
    amount: Decimal


@dataclass(frozen=True)
class HeldDeal:
    """A member's commission on a deal, earned and waiting for the customer's payments.

    ``deal_amount`` is the whole deal in ``deal_currency``. ``credited_on`` is
    the deal's credit date and ``earned_in`` the first day of its period.
    """

    deal_id: int
    deal_name: str
    credited_on: dt.date
    earned: Decimal
    deal_amount: Decimal
    deal_currency: str
    earned_in: dt.date
    timing: str
    currency: str
    plan_version: str = ""
    plan_version_id: int | None = None


def due_after(held: HeldDeal, paid: Decimal) -> Decimal:
    """Return the commission due once ``paid`` of the deal has been received."""
    if held.deal_amount == 0:
        return held.earned
    share = paid / held.deal_amount
    if held.timing == PayoutTiming.ON_FULL_PAYMENT:
        return held.earned if share >= 1 else ZERO
    return round_money(held.earned * min(share, Decimal(1)))


def release_lines(
    held: Iterable[HeldDeal],
    payments: Mapping[int, Sequence[Payment]],
    period_start: dt.date,
    period_end: dt.date,
) -> list[StatementLine]:
    """Return the commission released by payments in ``[period_start, period_end)``."""
    lines = []
    for deal in sorted(held, key=lambda deal: (deal.deal_id, deal.plan_version)):
        received = payments.get(deal.deal_id, ())
        before = sum((p.amount for p in received if p.received_on < period_start), ZERO)
        during = [p for p in received if period_start <= p.received_on < period_end]
        newly_earned = deal.earned_in >= period_start
        if not during and not (newly_earned and before):
            continue
        through = before + sum((p.amount for p in during), ZERO)
        due_before = ZERO if newly_earned else due_after(deal, before)
        due_now = due_after(deal, through)
        amount = due_now - due_before
        lines.append(
            StatementLine(
                kind=LineKind.PAYMENT,
                amount=amount,
                currency=deal.currency,
                explanation=_explain(
                    deal, during, through, due_before, due_now, amount
                ),
                plan_version=deal.plan_version,
                plan_version_id=deal.plan_version_id,
                deal_id=deal.deal_id,
                deal_name=deal.deal_name,
                date=max((p.received_on for p in during), default=period_start),
                base=through,
            )
        )
    return lines


def _explain(
    deal: HeldDeal,
    during: list[Payment],
    through: Decimal,
    due_before: Decimal,
    due_now: Decimal,
    amount: Decimal,
) -> str:
    if during:
        dates = ", ".join(f"{p.received_on:%Y-%m-%d}" for p in during)
        received = sum((p.amount for p in during), ZERO)
        head = f"{money(received)} {deal.deal_currency} received on {dates}"
    else:
        head = "Payments received before the deal closed"
    paid = f"{money(through)} of {money(deal.deal_amount)} paid"
    if deal.timing == PayoutTiming.ON_FULL_PAYMENT:
        if due_now == ZERO:
            return f"{head}: {paid}; nothing is due until the deal is fully paid"
        return f"{head}: {paid}, so the {money(deal.earned)} earned is due"
    share = through / deal.deal_amount if deal.deal_amount else Decimal(1)
    text = (
        f"{head}: {paid} ({percent(share.quantize(Decimal('0.0001')))}), so "
        f"{money(due_now)} of the {money(deal.earned)} earned is due"
    )
    if due_before:
        text += f", less {money(due_before)} paid before"
    return f"{text} = {money(amount)}"
