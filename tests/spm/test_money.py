from decimal import Decimal

import pytest

from spm.money import allocate, round_money


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        ("99.99", [75, 25], ["74.99", "25.00"]),
        ("100.00", [1, 1, 1], ["33.34", "33.33", "33.33"]),
        ("220.00", [445455, 9091, 545455], ["98.00", "2.00", "120.00"]),
        (
            "100000.00",
            ["33.33", "33.33", "33.34"],
            ["33330.00", "33330.00", "33340.00"],
        ),
        ("-100.00", [1, 1, 1], ["-33.34", "-33.33", "-33.33"]),
        ("0.01", [1, 1], ["0.01", "0.00"]),
    ],
)
def test_allocate_adds_up_to_the_cent(total, weights, expected):
    shares = allocate(Decimal(total), weights)
    assert shares == [Decimal(value) for value in expected]
    assert sum(shares) == Decimal(total)


def test_allocate_rejects_zero_weights():
    with pytest.raises(ValueError, match="add up to zero"):
        allocate(Decimal("10.00"), [0, 0])


def test_allocate_rejects_fractions_of_a_cent():
    with pytest.raises(ValueError, match="fractions of a cent"):
        allocate(Decimal("10.005"), [1, 1])


def test_round_money_is_half_up():
    assert round_money(Decimal("2.345")) == Decimal("2.35")
    assert round_money(Decimal("-2.345")) == Decimal("-2.35")
