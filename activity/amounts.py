"""Money amounts that a CRM sends in units other than the currency unit.

Some CRM and advertising APIs send amounts as integer "micros": millionths
of the currency unit, whatever the currency's minor unit is, so
``{"amountMicros": 1234560000, "currencyCode": "USD"}`` is 1,234.56 USD and
656788000000 CZK micros are 656,788.00 CZK. The conversion divides as
Decimal, never as float, so 1234560000 micros never become 1234.5599999.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

MICROS_PER_UNIT = Decimal(1_000_000)
CENT = Decimal("0.01")


def amount_from_micros(micros: int | str) -> Decimal:
    """Convert an amount in micros to currency units, rounded half-up to the cent.

    Raises ValueError for a value that is not a whole number of micros,
    floats included, because a float may already have lost digits.
    """
    if isinstance(micros, bool) or not isinstance(micros, int | str):
        raise ValueError(
            f"Invalid micros amount {micros!r}: send a whole number of micros "
            "as an integer or a string."
        )
    text = str(micros).strip()
    if not text.lstrip("-").isdigit():
        raise ValueError(f"Invalid micros amount {micros!r}: not a whole number.")
    return (Decimal(text) / MICROS_PER_UNIT).quantize(CENT, rounding=ROUND_HALF_UP)
