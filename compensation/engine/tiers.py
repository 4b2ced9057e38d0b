"""Tier tables with half-open bounds, and the two ways of paying them.

A table is a list of tiers ``[lower, upper)``; the first starts at 0 and the
last has no upper bound. A value equal to a bound belongs to the tier that
starts there, so 500.00 is in ``[500, 3000)``, never in ``[0, 500)``.

- Marginal: each part of an amount earns the rate of the tier it falls in.
  ``marginal_total(x)`` is what the amounts from 0 to ``x`` earn, and the
  commission of a deal that moves the running total from ``a`` to ``b`` is
  ``marginal_total(b) - marginal_total(a)``. A negative amount (a credit
  note) moves the total down and earns back at the rates it passes.
- Retroactive: every amount of the period earns the rate of the tier that
  the period's total reaches (``tier_at``).

Below 0 the first tier's rate applies, so a period whose only document is a
credit note earns a negative commission at the first rate.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from compensation.engine.types import ParamsError
from compensation.engine.values import (
    check_keys,
    money,
    percent,
    read_rate,
    to_decimal,
)

ZERO = Decimal(0)

# A tier an explanation names: "in tier 100-150%" up to the next part.
_TIER = re.compile(r"in tier (.+?)(?= \+ | = |, |$)")


def tier_text(explanation: str) -> str:
    """Return the tiers an explanation names ("0-100%, 100-150%"), or "".

    Only the text from the first tier to the last " = " can name a tier, and
    in a run most lines share that text, so it is parsed once per text.
    """
    start = explanation.find("in tier ")
    if start < 0:
        return ""
    end = explanation.rfind(" = ")
    return _tiers_named(explanation[start:end] if end > start else explanation[start:])


@functools.lru_cache(maxsize=4096)
def _tiers_named(text: str) -> str:
    return ", ".join(dict.fromkeys(_TIER.findall(text)))


@dataclass(frozen=True)
class Tier:
    lower: Decimal
    upper: Decimal | None
    rate: Decimal


@dataclass(frozen=True)
class TierTable:
    tiers: tuple[Tier, ...]

    @classmethod
    def parse(cls, rows: Any, field: str = "tiers") -> TierTable:
        """Validate ``[{"from", "to"?, "rate"}, ...]`` into a table.

        Each row's optional "to" must equal the next row's "from", and the
        last row has no "to", so the tiers cover every value with no gap.
        """
        if not isinstance(rows, Sequence) or isinstance(rows, str) or not rows:
            raise ParamsError(field, "must be a non-empty list of tiers.")
        lowers = []
        rates = []
        for index, row in enumerate(rows):
            prefix = f"{field}[{index}]."
            check_keys(row, {"from", "to", "rate"}, prefix)
            if row.get("from") in (None, ""):
                raise ParamsError(f"{prefix}from", "is required.")
            lower = to_decimal(row["from"], f"{prefix}from")
            if index == 0 and lower != 0:
                raise ParamsError(
                    f"{prefix}from", f"{lower} must be 0, where the first tier starts."
                )
            if lowers and lower <= lowers[-1]:
                raise ParamsError(
                    f"{prefix}from",
                    f"{lower} must be greater than the previous tier's {lowers[-1]}.",
                )
            lowers.append(lower)
            rates.append(read_rate(row, "rate", prefix))
        for index, row in enumerate(rows):
            upper = row.get("to")
            if upper in (None, ""):
                continue
            field_to = f"{field}[{index}].to"
            upper = to_decimal(upper, field_to)
            if index == len(rows) - 1:
                raise ParamsError(
                    field_to, f"{upper}: the last tier has no upper bound."
                )
            if upper != lowers[index + 1]:
                raise ParamsError(
                    field_to,
                    f"{upper} must equal the next tier's from, {lowers[index + 1]}, "
                    "because tiers are half-open and leave no gap.",
                )
        uppers = lowers[1:] + [None]
        return cls(
            tuple(
                Tier(lower, upper, rate)
                for lower, upper, rate in zip(lowers, uppers, rates, strict=True)
            )
        )

    def scaled(self, factor: Decimal) -> TierTable:
        """Multiply every bound by ``factor``: a percentage of quota into money."""
        return TierTable(
            tuple(
                Tier(
                    tier.lower * factor,
                    None if tier.upper is None else tier.upper * factor,
                    tier.rate,
                )
                for tier in self.tiers
            )
        )

    def index_at(self, value: Decimal) -> int:
        """Return the index of the tier that contains ``value``."""
        found = 0
        for index, tier in enumerate(self.tiers):
            if value >= tier.lower:
                found = index
        return found

    def tier_at(self, value: Decimal) -> Tier:
        return self.tiers[self.index_at(value)]

    def portions(self, start: Decimal, end: Decimal) -> list[tuple[int, Decimal]]:
        """Split the move from ``start`` to ``end`` by tier, as ``(index, amount)``.

        Amounts are negative when ``end < start``. Tiers the move does not
        touch are left out.
        """
        low, high = min(start, end), max(start, end)
        sign = 1 if end >= start else -1
        parts = []
        for index, tier in enumerate(self.tiers):
            lower = tier.lower if index else None  # the first tier extends below 0
            part_low = low if lower is None else max(low, lower)
            part_high = high if tier.upper is None else min(high, tier.upper)
            if part_high > part_low:
                parts.append((index, sign * (part_high - part_low)))
        return parts

    def marginal_total(self, value: Decimal) -> Decimal:
        """Return what the amounts from 0 to ``value`` earn, tier by tier."""
        return sum(
            (
                amount * self.tiers[index].rate
                for index, amount in self.portions(ZERO, value)
            ),
            ZERO,
        )


def describe_portions(
    table: TierTable, parts: list[tuple[int, Decimal]], label: Callable[[int], str]
) -> str:
    """Write "80,000.00 x 50% in tier 0.00-100,000.00 + ..." for ``parts``."""
    return " + ".join(
        f"{money(amount)} x {percent(table.tiers[index].rate)} in tier {label(index)}"
        for index, amount in parts
    )
