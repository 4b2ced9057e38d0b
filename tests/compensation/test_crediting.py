"""Crediting: split shares to the cent, credit dates and exchange rates."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from compensation.crediting import (
    CreditingError,
    DealInput,
    FxRates,
    SplitInput,
    credit_deal,
    credit_deals,
)
from compensation.engine import PlanTerms
from spm.money import allocate
from tests.compensation.builders import D, flat, payee, run, terms


def _deal(amount: str, *percents: str, currency: str = "USD", **options) -> DealInput:
    return DealInput(
        deal_id=options.pop("deal_id", 1),
        name=options.pop("name", "Acme renewal"),
        amount=Decimal(amount),
        currency=currency,
        owner_id=options.pop("owner_id", 1),
        splits=tuple(
            SplitInput(member, Decimal(percent))
            for member, percent in enumerate(percents, start=1)
        ),
        close_date=options.pop("close_date", D(2024, 3, 28)),
        **options,
    )


def _credit(deal: DealInput, currency: str = "USD", rates=None, **options):
    return credit_deal(
        deal,
        currency=currency,
        rates=rates or FxRates({}),
        time_zone=options.pop("time_zone", "UTC"),
        default_currency="USD",
        **options,
    )


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        ("99.99", ["75", "25"], ["74.99", "25.00"]),
        ("100.00", ["1", "1", "1"], ["33.34", "33.33", "33.33"]),
        ("220.00", ["445455", "9091", "545455"], ["98.00", "2.00", "120.00"]),
        (
            "100000.00",
            ["33.33", "33.33", "33.34"],
            ["33330.00", "33330.00", "33340.00"],
        ),
    ],
)
def test_largest_remainder_shares_add_up(total, weights, expected):
    shares = allocate(Decimal(total), weights)

    assert shares == [Decimal(value) for value in expected]
    assert sum(shares) == Decimal(total)


@pytest.mark.parametrize(
    ("total", "percents", "expected"),
    [
        ("99.99", ["75", "25"], ["74.99", "25.00"]),
        # Four-decimal thirds, as split percentages are stored.
        ("100.00", ["33.3333", "33.3333", "33.3333"], ["33.34", "33.33", "33.33"]),
        (
            "100000.00",
            ["33.33", "33.33", "33.34"],
            ["33330.00", "33330.00", "33340.00"],
        ),
    ],
)
def test_split_credits_add_up(total, percents, expected):
    credits = _credit(_deal(total, *percents))

    assert [c.amount for c in credits] == [Decimal(value) for value in expected]
    assert sum(c.amount for c in credits) == Decimal(total)
    assert all(c.deal_amount == Decimal(total) for c in credits)


def test_owner_credited_without_splits():
    credits = _credit(_deal("1200.00", owner_id=7))

    assert [(c.member_id, c.amount, c.share) for c in credits] == [
        (7, Decimal("1200.00"), Decimal(1))
    ]


def test_deal_without_owner_credits_nobody():
    assert _credit(_deal("1200.00", owner_id=None)) == []


def test_splits_must_total_100():
    with pytest.raises(CreditingError) as raised:
        _credit(_deal("1000.00", "60", "30", name="Globex expansion", deal_id=42))

    message = str(raised.value)
    assert "'Globex expansion' (id 42)" in message
    assert "add up to 90%, not 100%" in message


def test_duplicate_split_member_rejected():
    deal = _deal("1000.00")
    twice = replace(
        deal, splits=(SplitInput(1, Decimal(50)), SplitInput(1, Decimal(50)))
    )

    with pytest.raises(CreditingError, match="same member twice"):
        _credit(twice)


def test_close_instant_gives_local_date():
    deal = _deal(
        "10.00",
        close_date=None,
        closed_at=dt.datetime(2023, 4, 1, 1, 9, 44, tzinfo=dt.UTC),
    )

    # 01:09 UTC on 1 April is 18:09 on 31 March in Phoenix (UTC-7).
    assert _credit(deal, time_zone="America/Phoenix")[0].credit_date == D(2023, 3, 31)
    assert _credit(deal, time_zone="UTC")[0].credit_date == D(2023, 4, 1)


def test_close_date_used_as_stored():
    deal = _deal("10.00", close_date=D(2023, 5, 26))

    assert _credit(deal, time_zone="Pacific/Kiritimati")[0].credit_date == D(
        2023, 5, 26
    )


def test_missing_close_date_fails():
    with pytest.raises(CreditingError, match="has no close date"):
        _credit(_deal("10.00", close_date=None))


EUR_USD = FxRates(
    {
        ("EUR", "USD", D(2024, 3, 28)): Decimal("1.0800"),
        ("EUR", "USD", D(2024, 4, 15)): Decimal("1.1000"),
        ("EUR", "USD", D(2024, 6, 30)): Decimal("1.0700"),
    }
)


def test_close_date_rate_is_frozen():
    deal = _deal("10000.00", currency="EUR")
    plan = terms(flat("0.10"))

    credits = _credit(deal, rates=EUR_USD)
    statement = run(payee(plan, credits), D(2024, 3, 1))[0]
    # A re-run on 30 June, with every rate since known, gives the same:
    # the rate of the close date, not the payout date's or the latest.
    rerun = run(payee(plan, _credit(deal, rates=EUR_USD)), D(2024, 3, 1))[0]

    assert credits[0].amount == Decimal("10800.00")
    assert credits[0].fx_rate == Decimal("1.0800")
    assert credits[0].fx_rate_date == D(2024, 3, 28)
    assert statement.total == Decimal("1080.00")
    assert rerun.total == Decimal("1080.00")


def test_same_currency_converts_nothing():
    plan = PlanTerms(
        label="EMEA v1",
        currency="EUR",
        effective_from=D(2024, 1, 1),
        components=(flat("0.15"),),
    )
    credits = _credit(_deal("24.00", currency="EUR"), currency="EUR", rates=EUR_USD)

    statement = run(payee(plan, credits), D(2024, 3, 1))[0]

    assert credits[0].fx_rate is None
    assert credits[0].fx_note == ""
    assert statement.total == Decimal("3.60")
    assert statement.currency == "EUR"


def test_month_start_rate_date():
    rates = FxRates({("EUR", "USD", D(2024, 3, 1)): Decimal("1.0900")})

    credits = _credit(
        _deal("1000.00", currency="EUR"), rates=rates, fx_rate_date="month_start"
    )

    assert credits[0].amount == Decimal("1090.00")
    assert credits[0].fx_rate_date == D(2024, 3, 1)


def test_missing_rate_names_pair_and_date():
    with pytest.raises(CreditingError) as raised:
        _credit(_deal("1000.00", currency="GBP", close_date=D(2024, 2, 29)))

    assert str(raised.value).startswith(
        "No GBP/USD exchange rate for 2024-02-29 for deal 'Acme renewal' (id 1)"
    )


def test_split_after_conversion_adds_up():
    rates = FxRates({("EUR", "USD", D(2024, 3, 28)): Decimal("1.0833")})

    credits = _credit(
        _deal("100.01", "33.3333", "33.3333", "33.3333", currency="EUR"), rates=rates
    )

    # 100.01 x 1.0833 = 108.340833, so 108.34 USD, split 36.12 / 36.11 / 36.11.
    assert [c.amount for c in credits] == [
        Decimal("36.12"),
        Decimal("36.11"),
        Decimal("36.11"),
    ]
    assert [c.source_amount for c in credits] == [
        Decimal("33.34"),
        Decimal("33.34"),
        Decimal("33.33"),
    ]


def test_credit_deals_keeps_order():
    credits = credit_deals(
        [_deal("1.00", deal_id=2), _deal("2.00", deal_id=1)],
        currency="USD",
        rates=FxRates({}),
        time_zone="UTC",
        default_currency="USD",
    )

    assert [c.deal_id for c in credits] == [2, 1]


@pytest.mark.parametrize(
    ("amount", "splits", "document", "credited", "share"),
    [
        # The owner alone, and one split at 100%: the amount as it is.
        ("1234.56", (), "deal", "1234.56", "1"),
        ("1234.56", ("100.0000",), "deal", "1234.56", "1"),
        ("0.01", (), "deal", "0.01", "1"),
        ("-75.10", (), "deal", "-75.10", "1"),
        ("75.10", (), "credit_note", "-75.10", "1"),
        # Zero and amounts without cents go through the largest-remainder split.
        ("0.00", (), "credit_note", "0.00", "1"),
        ("100", (), "deal", "100", "1"),
        ("100.0", (), "deal", "100.0", "1"),
        ("100.000", (), "deal", "100.00", "1"),
        ("-0.00", (), "deal", "0.00", "1"),
        ("100", ("100.0000",), "credit_note", "-100", "1"),
    ],
)
def test_whole_deal_credit_text(amount, splits, document, credited, share):
    deal = _deal(amount, *splits, document=document)

    (credit,) = _credit(deal)

    # Text as well as value, because snapshots store the credit as text.
    assert str(credit.amount) == credited
    assert str(credit.source_amount) == credited
    assert str(credit.share) == share
    expected = Decimal(credited)
    assert allocate(expected, [Decimal(100)]) == [expected]
