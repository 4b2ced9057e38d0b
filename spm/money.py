"""Money helpers: Decimal only, rounded half-up to the cent."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def round_money(value: Decimal) -> Decimal:
    # The rounding passed by position: as a keyword it takes twice as long,
    # and a run rounds every line.
    return value.quantize(CENT, ROUND_HALF_UP)


def allocate(total: Decimal, weights: Sequence[Decimal | int | str]) -> list[Decimal]:
    """Split ``total`` by ``weights`` into cents that add up to ``total`` exactly.

    This is the largest-remainder method. Each share is floored to the cent,
    then the cents left over go one each to the shares with the largest
    fractional parts. A tie goes to the earlier share, so the result is stable.
    """
    weights = [Decimal(str(weight)) for weight in weights]
    if not weights:
        raise ValueError("At least one weight is needed to split an amount.")
    if any(weight < 0 for weight in weights):
        raise ValueError(f"Weights must not be negative: {weights}")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("The weights add up to zero, so the amount cannot be split.")
    total = Decimal(total)
    if total != total.quantize(CENT):
        raise ValueError(f"{total} has fractions of a cent; round it first.")

    sign = Decimal(-1) if total < 0 else Decimal(1)
    cents = abs(total) / CENT
    exact = [cents * weight / weight_sum for weight in weights]
    floors = [share.to_integral_value(rounding=ROUND_DOWN) for share in exact]
    leftover = int(cents - sum(floors))
    by_remainder = sorted(
        range(len(weights)), key=lambda index: (-(exact[index] - floors[index]), index)
    )
    for index in by_remainder[:leftover]:
        floors[index] += 1
    return [sign * share * CENT for share in floors]
