"""Recoverable draws carry a balance forward; guarantees do not."""

from __future__ import annotations

from decimal import Decimal

import pytest

from compensation.engine import DrawTerms
from tests.compensation.builders import D, credit, flat, payee, run, terms


def _paid(draw_amount: str, recoverable: bool, first_month, earned: list[str]):
    # A 100% rate makes each month's commission equal its credited amount.
    credits = [
        credit(
            amount,
            first_month.replace(month=first_month.month + index, day=10),
            index + 1,
        )
        for index, amount in enumerate(earned)
    ]
    draw = DrawTerms(Decimal(draw_amount), "USD", recoverable, first_month)
    member = payee(terms(flat("1")), credits, draws=(draw,), start=first_month)
    return run(member, first_month, len(earned))


def test_recoverable_draw_six_months():
    statements = _paid(
        "2000", True, D(2024, 1, 1), ["2750", "3000", "1500", "2375", "3000", "2750"]
    )

    # March tops 1,500 up to 2,000 (500 owed). April recovers only the 375
    # over the draw, so it still pays 2,000 (125 owed). May recovers the 125.
    paid = [s.total for s in statements]
    owed = [s.draw_balance for s in statements]
    assert paid == [
        Decimal(v) for v in ["2750", "3000", "2000", "2000", "2875", "2750"]
    ]
    assert owed == [Decimal(v) for v in ["0", "0", "500", "125", "0", "0"]]
    assert sum(paid) == Decimal("15375.00")


@pytest.mark.parametrize(
    ("recoverable", "expected"),
    [(True, ["1500.00", "2000.00"]), (False, ["1500.00", "3000.00"])],
)
def test_recovery_only_when_recoverable(recoverable, expected):
    statements = _paid("1500", recoverable, D(2024, 8, 1), ["500", "3000"])

    assert [s.total for s in statements] == [Decimal(v) for v in expected]


def test_balance_recovered_after_draw_ends():
    credits = [credit("500", D(2024, 1, 10), 1), credit("2000", D(2024, 2, 10), 2)]
    draw = DrawTerms(Decimal("1500"), "USD", True, D(2024, 1, 1), D(2024, 1, 31))
    member = payee(terms(flat("1")), credits, draws=(draw,))

    january, february = run(member, D(2024, 1, 1), 2)

    # January advances 1,000. February has no draw: the whole 1,000 comes back.
    assert january.total == Decimal("1500.00")
    assert february.total == Decimal("1000.00")
    assert february.draw_balance == Decimal("0.00")
