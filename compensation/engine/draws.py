"""Draws: a minimum payment per period, recoverable or not.

In each period a draw covers, a member earning less than the draw is paid
the draw, and the difference is an advance. On a recoverable draw the
advances add up to a balance the member owes. A later period that earns
more than the draw pays it back from the excess only, so the pay never
drops below the draw while it runs. After the draw ends, the balance left is
recovered from whatever the member earns. A non-recoverable draw (a
guarantee) tops up the same way but is never paid back.

A draw covers every period that overlaps its dates, in full.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from compensation.engine.types import CalculationError, LineKind, StatementLine
from compensation.engine.values import money

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class DrawTerms:
    """A draw of ``amount`` per period from ``start`` to ``end`` inclusive."""

    amount: Decimal
    currency: str
    recoverable: bool
    start: dt.date
    end: dt.date | None = None
    id: int | None = None

    def covers(self, period_start: dt.date, period_end: dt.date) -> bool:
        return self.start < period_end and (
            self.end is None or self.end >= period_start
        )


def draw_for(
    draws: tuple[DrawTerms, ...], period_start: dt.date, period_end: dt.date
) -> DrawTerms | None:
    covering = [draw for draw in draws if draw.covers(period_start, period_end)]
    if len(covering) > 1:
        raise CalculationError(
            f"{len(covering)} draws cover the period starting {period_start:%Y-%m-%d}; "
            "a member has at most one draw at a time. End one of them earlier."
        )
    return covering[0] if covering else None


def draw_lines(
    *,
    earned: Decimal,
    draw: DrawTerms | None,
    balance: Decimal,
    currency: str,
    date: dt.date,
) -> tuple[list[StatementLine], Decimal]:
    """Return the draw lines of a period that earned ``earned``, and the new balance.

    ``balance`` is what the member owes on recoverable draws before the period.
    """
    if draw is not None and draw.currency != currency:
        raise CalculationError(
            f"The draw is in {draw.currency} but the plan pays in {currency}; "
            "set the draw in the plan's currency."
        )
    if draw is not None and earned < draw.amount:
        advance = draw.amount - earned
        if draw.recoverable:
            balance += advance
            after = f"recoverable, so {money(balance)} is owed from later earnings"
        else:
            after = "guaranteed, so it is not paid back"
        line = StatementLine(
            kind=LineKind.DRAW_ADVANCE,
            amount=advance,
            currency=currency,
            explanation=(
                f"Draw of {money(draw.amount)}: earned {money(earned)}, so "
                f"{money(advance)} is advanced; {after}"
            ),
            date=date,
            base=earned,
        )
        return [line], balance

    if balance <= 0 or earned <= 0:
        return [], balance
    if draw is not None:
        room = earned - draw.amount
        limit = f"the excess over the {money(draw.amount)} draw"
    else:
        room = earned
        limit = "this period's earnings, as the draw has ended"
    recovery = min(balance, room)
    if recovery <= 0:
        return [], balance
    balance -= recovery
    line = StatementLine(
        kind=LineKind.DRAW_RECOVERY,
        amount=-recovery,
        currency=currency,
        explanation=(
            f"Draw recovery from {limit}: {money(recovery)} of the "
            f"{money(balance + recovery)} owed is paid back; {money(balance)} "
            "remains owed"
        ),
        date=date,
        base=earned,
    )
    return [line], balance
