"""Parsing and display of quota amounts, benchmark targets and ramps.

The grid page and the CSV import read amounts with the same rules, so a value
that the page accepts imports too. An amount is plain digits with an optional
decimal point, and may group thousands with commas (``100,000.00``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from goals.models import QuotaMetric

# Up to 999,999,999,999.99: 14 significant digits, which SQLite (storing the
# number as a double) keeps exactly. Quota.amount would take 16 whole digits.
MAX_WHOLE_DIGITS = 12
# A ramp covers at most this many months after a start date.
MAX_RAMP_MONTHS = 24

_PLAIN = re.compile(r"^\d+(\.\d*)?$|^\.\d+$")
_GROUPED = re.compile(r"^\d{1,3}(,\d{3})+(\.\d*)?$")


def parse_amount(text: str, metric: str) -> Decimal | None:
    """Return the amount written in ``text``, or None for a blank cell.

    Raises ValueError with the reason for anything but a non-negative number
    with at most two decimal places, or a whole number for the deal count.
    """
    text = text.strip()
    if not text:
        return None
    if text.startswith("-"):
        raise ValueError("must not be negative")
    if not (_PLAIN.match(text) or _GROUPED.match(text)):
        raise ValueError("is not a number (write it like 125000 or 125,000.50)")
    try:
        amount = Decimal(text.replace(",", ""))
    except InvalidOperation:
        raise ValueError("is not a number") from None
    whole_digits = len(str(int(amount)))
    if whole_digits > MAX_WHOLE_DIGITS:
        raise ValueError(f"is too large (at most {MAX_WHOLE_DIGITS} digits)")
    if metric == QuotaMetric.DEAL_COUNT:
        if amount != amount.to_integral_value():
            raise ValueError("must be a whole number of deals")
        return amount.quantize(Decimal(1))
    if amount.as_tuple().exponent < -2 and amount != amount.quantize(Decimal("0.01")):
        raise ValueError("has more than 2 decimal places")
    return amount.quantize(Decimal("0.01"))


def amount_text(amount: Decimal | None, metric: str) -> str:
    """Return ``amount`` as the grid and the export write it, without grouping."""
    if amount is None:
        return ""
    if metric == QuotaMetric.DEAL_COUNT:
        return str(amount.quantize(Decimal(1)))
    return str(amount.quantize(Decimal("0.01")))


def amount_display(amount: Decimal, metric: str) -> str:
    """Return ``amount`` with thousands grouped, like 50,549.45 or 12 deals."""
    if metric == QuotaMetric.DEAL_COUNT and amount == amount.to_integral_value():
        return f"{amount:,.0f}"
    return f"{amount:,.2f}"


def parse_ramp(text: str) -> list[int]:
    """Return the monthly percentages written as ``"50, 75"``.

    Raises ValueError naming the first value that is not a whole number from
    0 to 100, or when more than MAX_RAMP_MONTHS months are given.
    """
    parts = [part.strip() for part in re.split(r"[,;\s]+", text.strip()) if part]
    ramp = []
    for position, part in enumerate(parts, start=1):
        cleaned = part.removesuffix("%")
        if not cleaned.isdigit() or not 0 <= int(cleaned) <= 100:
            raise ValueError(
                f"Month {position} of the ramp, “{part}”, is not a whole "
                "percentage from 0 to 100."
            )
        ramp.append(int(cleaned))
    if len(ramp) > MAX_RAMP_MONTHS:
        raise ValueError(
            f"The ramp lists {len(ramp)} months: at most {MAX_RAMP_MONTHS} are "
            "allowed, and every month after the ramp counts 100%."
        )
    return ramp


def ramp_text(ramp: list) -> str:
    return ", ".join(str(value) for value in ramp)
