"""Clawback: commission taken back in the period a deal is cancelled.

The statement that paid the deal is never rewritten. The period containing
the cancellation date gets a negative line instead. Prorated clawback takes
back the share of the term the customer did not serve, counted in full
months from the credit date: a 12-month contract credited on 15 March and
cancelled on 15 September served 6 months, so 6/12 of what was paid comes
back. A cancellation after the whole term takes nothing back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from compensation.engine.plans import ClawbackTerms
from compensation.engine.types import LineKind, StatementLine
from compensation.engine.values import money
from spm.money import round_money


@dataclass(frozen=True)
class PaidDeal:
    """The payout to a member on one deal, with the clawback terms it was paid under."""

    deal_id: int
    deal_name: str
    credit_date: dt.date
    paid: Decimal
    currency: str
    clawback: ClawbackTerms | None
    plan_version: str = ""
    plan_version_id: int | None = None


def full_months_between(start: dt.date, end: dt.date) -> int:
    """Count whole months from ``start`` to ``end``: 15 March to 14 April is 0."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if end.day < start.day and not _is_month_end(end):
        months -= 1
    return max(months, 0)


def _is_month_end(day: dt.date) -> bool:
    # 31 January to 29 February is a whole month: February has no 31st.
    return (day + dt.timedelta(days=1)).month != day.month


def clawback_line(deal: PaidDeal, cancelled_on: dt.date) -> StatementLine | None:
    """Return the negative line for a deal cancelled on ``cancelled_on``, if any."""
    terms = deal.clawback
    if terms is None or deal.paid <= 0:
        return None
    served = full_months_between(deal.credit_date, cancelled_on)
    if served >= terms.term_months:
        return None
    if terms.mode == "full":
        amount = -deal.paid
        how = f"all of the {money(deal.paid)} paid"
    else:
        unserved = terms.term_months - served
        amount = -round_money(deal.paid * unserved / terms.term_months)
        how = (
            f"{money(deal.paid)} paid x ({terms.term_months} - {served}) / "
            f"{terms.term_months}"
        )
    return StatementLine(
        kind=LineKind.CLAWBACK,
        amount=amount,
        currency=deal.currency,
        explanation=(
            f"Cancelled on {cancelled_on:%Y-%m-%d} after {served} of "
            f"{terms.term_months} months (credited {deal.credit_date:%Y-%m-%d}): "
            f"{how} is taken back = {money(amount)}"
        ),
        plan_version=deal.plan_version,
        plan_version_id=deal.plan_version_id,
        deal_id=deal.deal_id,
        deal_name=deal.deal_name,
        date=cancelled_on,
        base=deal.paid,
    )
