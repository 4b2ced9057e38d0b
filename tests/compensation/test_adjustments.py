"""Credit notes, payments and clawbacks: commission that moves after a deal closes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from compensation.crediting import DealInput, Document, FxRates, credit_deals
from compensation.engine import ClawbackTerms, Payment
from tests.compensation.builders import D, amounts, credit, flat, payee, run, terms


def _documents(*rows):
    deals = [
        DealInput(
            deal_id=index,
            name=name,
            amount=Decimal(amount),
            currency="USD",
            owner_id=1,
            close_date=day,
            document=document,
        )
        for index, (name, document, amount, day) in enumerate(rows, start=1)
    ]
    return credit_deals(
        deals,
        currency="USD",
        rates=FxRates({}),
        time_zone="UTC",
        default_currency="USD",
    )


def test_credit_note_negative_commission():
    credits = _documents(
        ("INV-1", Document.DEAL, "1000.00", D(2024, 3, 5)),
        ("CN-1", Document.CREDIT_NOTE, "200.00", D(2024, 3, 19)),
    )

    statement = run(payee(terms(flat("0.04")), credits), D(2024, 3, 1))[0]

    # +1,000 x 4% and -200 x 4%; abs() on the credit note would settle 48.00.
    assert amounts(statement) == [Decimal("40.00"), Decimal("-8.00")]
    assert statement.total == Decimal("32.00")


def test_credit_note_in_later_period():
    credits = _documents(
        ("INV-1", Document.DEAL, "1000.00", D(2024, 3, 5)),
        ("CN-1", Document.CREDIT_NOTE, "200.00", D(2024, 4, 2)),
    )

    march, april = run(payee(terms(flat("0.04")), credits), D(2024, 3, 1), 2)

    assert march.total == Decimal("40.00")
    assert april.total == Decimal("-8.00")


def test_negative_credit_note_stays_negative():
    credits = _documents(("CN-2", Document.CREDIT_NOTE, "-200.00", D(2024, 3, 19)))

    assert credits[0].amount == Decimal("-200.00")


def _paid_in_two_halves(timing: str):
    plan = terms(flat("0.20"), payout_timing=timing)
    payments = {
        1: (
            Payment(1, D(2024, 6, 20), Decimal("10000.00")),
            Payment(1, D(2024, 7, 11), Decimal("10000.00")),
        )
    }
    member = payee(plan, [credit("20000", D(2024, 6, 3), 1)], payments=payments)
    return run(member, D(2024, 6, 1), 2)


def test_partial_payments_pay_pro_rata():
    june, july = _paid_in_two_halves("on_payment")

    # 20,000 x 20% = 4,000 earned in June; half the invoice is paid in each
    # month, so each month pays half of it.
    assert june.total == Decimal("2000.00")
    assert july.total == Decimal("2000.00")
    assert [line.amount for line in june.held] == [Decimal("4000.00")]
    assert july.lines[0].explanation == (
        "10,000.00 USD received on 2024-07-11: 20,000.00 of 20,000.00 paid (100%), "
        "so 4,000.00 of the 4,000.00 earned is due, less 2,000.00 paid before "
        "= 2,000.00"
    )


def test_full_payment_plan_waits():
    june, july = _paid_in_two_halves("on_full_payment")

    assert june.total == Decimal("0.00")
    assert july.total == Decimal("4000.00")


def test_refund_takes_back_share():
    plan = terms(flat("0.20"), payout_timing="on_payment")
    payments = {
        1: (
            Payment(1, D(2024, 6, 20), Decimal("20000.00")),
            Payment(1, D(2024, 7, 11), Decimal("-5000.00")),
        )
    }
    member = payee(plan, [credit("20000", D(2024, 6, 3), 1)], payments=payments)

    june, july = run(member, D(2024, 6, 1), 2)

    # 4,000 x 15,000 / 20,000 = 3,000 is due after the refund.
    assert june.total == Decimal("4000.00")
    assert july.total == Decimal("-1000.00")


@pytest.fixture
def cancelled_annual_contract():
    plan = terms(flat("0.10"), clawback=ClawbackTerms("prorated", 12))
    return payee(
        plan,
        [credit("120000", D(2024, 3, 15), 5, name="D-5")],
        cancellations={5: D(2024, 9, 15)},
    )


def test_clawback_in_cancellation_period(cancelled_annual_contract):
    statements = run(cancelled_annual_contract, D(2024, 3, 1), 7)
    march, september = statements[0], statements[-1]

    # March keeps its 12,000. September takes back 12,000 x (12 - 6) / 12.
    assert march.total == Decimal("12000.00")
    assert september.total == Decimal("-6000.00")
    assert sum(s.total for s in statements) == Decimal("6000.00")
    assert all(s.total == 0 for s in statements[1:-1])


def test_full_clawback_and_term_end():
    plan = terms(flat("0.10"), clawback=ClawbackTerms("full", 12))
    member = payee(
        plan,
        [credit("120000", D(2024, 1, 15), 5), credit("50000", D(2024, 1, 20), 6)],
        cancellations={5: D(2024, 3, 1), 6: D(2025, 1, 20)},
    )

    statements = run(member, D(2024, 1, 1), 13)

    # Deal 5 gives back all 12,000. Deal 6 served its 12 months: nothing.
    assert statements[2].total == Decimal("-12000.00")
    assert statements[12].total == Decimal("0.00")


def test_clawback_of_payments_counts_from_credit():
    plan = terms(
        flat("0.10"), payout_timing="on_payment", clawback=ClawbackTerms("prorated", 12)
    )
    member = payee(
        plan,
        [credit("120000", D(2024, 3, 15), 5)],
        payments={5: (Payment(5, D(2024, 5, 10), Decimal("120000.00")),)},
        cancellations={5: D(2024, 9, 15)},
    )

    statements = run(member, D(2024, 3, 1), 7)

    # 12,000 is released in May; 6 months from the 15 March credit date are
    # served, so 6,000 comes back (counting from the payment would take 8,000).
    assert statements[2].total == Decimal("12000.00")
    assert statements[-1].total == Decimal("-6000.00")


def test_cancellation_without_clawback_terms():
    member = payee(
        terms(flat("0.10")),
        [credit("120000", D(2024, 3, 15), 5)],
        cancellations={5: D(2024, 5, 2)},
    )

    statements = run(member, D(2024, 3, 1), 3)

    assert [s.total for s in statements] == [
        Decimal("12000.00"),
        Decimal("0.00"),
        Decimal("0.00"),
    ]
