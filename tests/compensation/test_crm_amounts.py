"""CRM amounts in micros become Decimal amounts to the cent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from activity.amounts import amount_from_micros


@pytest.mark.parametrize(
    ("micros", "expected"),
    [
        (656788000000, Decimal("656788.00")),  # CZK
        (1234560000, Decimal("1234.56")),  # USD
        ("1234560000", Decimal("1234.56")),
        (-2500000, Decimal("-2.50")),
        (1234565000, Decimal("1234.57")),  # half a cent rounds up
        (0, Decimal("0.00")),
    ],
)
def test_micros_scale_by_million(micros, expected):
    amount = amount_from_micros(micros)

    assert amount == expected
    assert amount.as_tuple().exponent == -2


@pytest.mark.parametrize("micros", [1234.56e6, "12.5", "", None, True, "1e9"])
def test_micros_must_be_whole(micros):
    with pytest.raises(ValueError, match="Invalid micros amount"):
        amount_from_micros(micros)
