"""Pipeline coverage for a period: in-period pipeline over the quota still to go.

Pure arithmetic; the selectors supply the amounts. Only qualified open deals
whose close date falls inside the period count: deals closing later, deals
past their close date and deals in unqualified stages are left out, because
none of them can be expected to close in the period.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

HUNDREDTH = Decimal("0.01")


@dataclass(frozen=True)
class Coverage:
    """Coverage of the remaining quota, or ``met`` when nothing remains."""

    remaining: Decimal
    pipeline: Decimal
    ratio: Decimal | None
    required: Decimal | None
    expected_close: Decimal | None
    expected_share: Decimal | None
    met: bool

    @property
    def at_risk(self) -> bool:
        """True when the pipeline times the win rate falls short of the remainder."""
        return (
            not self.met
            and self.expected_share is not None
            and (self.expected_share < 100)
        )


def pipeline_coverage(
    *,
    quota: Decimal,
    bookings: Decimal,
    in_period_pipeline: Decimal,
    win_rate: Decimal | None,
) -> Coverage:
    """Return coverage as a multiple to 0.01, and the coverage the win rate needs.

    ``win_rate`` is a fraction (0.22 for 22%). The required coverage is
    1 / win rate, and the expected close is pipeline x win rate, shown as a
    percentage of the remaining quota.
    """
    remaining = max(quota - bookings, Decimal(0))
    if remaining == 0:
        return Coverage(remaining, in_period_pipeline, None, None, None, None, True)
    ratio = (in_period_pipeline / remaining).quantize(HUNDREDTH, ROUND_HALF_UP)
    if not win_rate:
        return Coverage(remaining, in_period_pipeline, ratio, None, None, None, False)
    required = (1 / win_rate).quantize(HUNDREDTH, ROUND_HALF_UP)
    expected = in_period_pipeline * win_rate
    share = (expected * 100 / remaining).quantize(Decimal(1), ROUND_HALF_UP)
    return Coverage(
        remaining, in_period_pipeline, ratio, required, expected, share, False
    )
