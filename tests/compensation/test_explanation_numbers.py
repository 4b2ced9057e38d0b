"""How explanations write amounts, rates and plain numbers."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from compensation.engine.values import money, percent, plain


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("0.00", "0.00"),
        ("0.01", "0.01"),
        ("-0.00", "-0.00"),
        ("9.50", "9.50"),
        ("999.99", "999.99"),
        ("-99.99", "-99.99"),
        ("-999.99", "-999.99"),
        ("1000.00", "1,000.00"),
        ("12500.00", "12,500.00"),
        ("1234567.89", "1,234,567.89"),
        ("-1234.56", "-1,234.56"),
        # Not to the cent: rounded half to even, as format rounds.
        ("0.005", "0.00"),
        ("0.015", "0.02"),
        ("12.3", "12.30"),
        ("12", "12.00"),
        ("1E+3", "1,000.00"),
        ("1.5E+1", "15.00"),
        ("0E-8", "0.00"),
        ("123.456", "123.46"),
        ("0.0001", "0.00"),
    ],
)
def test_money_writes_separators_and_cents(amount, expected):
    assert money(Decimal(amount)) == expected


def test_money_random_amounts_match_format():
    generator = random.Random(20261206)
    for _ in range(20_000):
        digits = generator.randint(0, 10)
        exponent = generator.choice([-4, -3, -2, -2, -2, -1, 0, 1])
        sign = generator.choice([-1, 1])
        amount = Decimal(sign * generator.randint(0, 10**digits)).scaleb(exponent)
        assert money(amount) == f"{amount:,.2f}", amount


def test_percent_and_plain_drop_trailing_zeros():
    assert percent(Decimal("0.0750")) == "7.5%"
    assert percent(Decimal("0.10")) == "10%"
    assert plain(Decimal("150.00")) == "150"
    assert plain(Decimal("1E+2")) == "100"
