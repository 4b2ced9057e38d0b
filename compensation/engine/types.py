"""Plain values that the calculation engine reads and returns.

The engine never touches the ORM. compensation.services loads rows, turns
them into these dataclasses, and the functions of compensation.engine work on
them alone, so every rule can be tested with hand-built values. Amounts are
``Decimal`` in the plan's currency unless a field says otherwise. Dates are
calendar dates in the organisation's time zone. Ranges are half-open,
``[start, end)``, except where a field says "inclusive".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

T = TypeVar("T")


def frozen_instance(cls: type[T], values: dict[str, Any]) -> T:
    """Build an instance of the frozen dataclass ``cls`` without its ``__init__``.

    ``values`` must map every field of ``cls`` to its value, and becomes the
    instance's ``__dict__``, so the caller must not keep using it. Neither
    ``__init__`` nor ``__post_init__`` runs, so no default is filled in. The
    instance compares, hashes, prints and rejects assignment as one built
    by ``cls(**values)``. This is for the values a run builds per deal: the
    generated ``__init__`` of a frozen dataclass sets each field with its own
    ``object.__setattr__`` call, which is slower than one dict.
    """
    instance = object.__new__(cls)
    object.__setattr__(instance, "__dict__", values)
    return instance


class CalculationError(ValueError):
    """Input the engine cannot calculate with; the message names the value to fix."""


class ParamsError(ValueError):
    """Invalid parameters of a plan component; ``field`` is the path of the value."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Credit:
    """A member's credited share of one deal, converted to the plan's currency.

    ``amount`` is the member's share and ``deal_amount`` the whole deal, both
    in ``currency`` and to the cent. The shares of a deal add up to
    ``deal_amount`` exactly. ``share`` is the member's fraction of the deal
    (0.6 for a 60% split). ``source_amount`` (the member's share) and
    ``deal_source_amount`` (the whole deal) are in the deal's own currency;
    with ``fx_rate`` and ``fx_rate_date`` they keep the conversion as it was
    made at crediting time. ``fields`` holds the deal values that SPIFF
    conditions test.
    """

    deal_id: int
    deal_name: str
    member_id: int
    credit_date: dt.date
    amount: Decimal
    deal_amount: Decimal
    share: Decimal
    currency: str
    source_amount: Decimal
    deal_source_amount: Decimal
    source_currency: str
    fx_rate: Decimal | None = None
    fx_rate_date: dt.date | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fx_note(self) -> str:
        """Describe the conversion, or return "" when none was needed."""
        if self.fx_rate is None:
            return ""
        return (
            f"{self.source_amount:,.2f} {self.source_currency} at "
            f"{self.fx_rate} {self.source_currency}/{self.currency} "
            f"of {self.fx_rate_date:%Y-%m-%d}"
        )


class LineKind:
    """The kinds of statement line."""

    COMMISSION = "commission"
    SPIFF = "spiff"
    BONUS = "bonus"
    OVERRIDE = "override"
    PAYMENT = "payment"
    CLAWBACK = "clawback"
    DRAW_ADVANCE = "draw_advance"
    DRAW_RECOVERY = "draw_recovery"

    # Lines a deal earns: paid when the deal closes or as it is paid.
    PER_DEAL = frozenset({COMMISSION, SPIFF})
    # Lines that pay out a deal's commission, and are clawed back with it.
    PAID_PER_DEAL = PER_DEAL | {PAYMENT}


@dataclass(frozen=True)
class StatementLine:
    """One line of a statement, with the sentence that lets a rep check it.

    ``gross`` is the line before the caps per period and the plan year
    schedule; ``amount`` is what the line pays. Both are rounded half-up to
    the cent, and a statement's total is the sum of its lines' ``amount``.
    """

    kind: str
    amount: Decimal
    currency: str
    explanation: str
    gross: Decimal | None = None
    component: str = ""
    component_id: int | None = None
    plan_version: str = ""
    plan_version_id: int | None = None
    deal_id: int | None = None
    deal_name: str = ""
    date: dt.date | None = None
    base: Decimal | None = None
    rate: Decimal | None = None

    def __post_init__(self) -> None:
        if self.gross is None:
            object.__setattr__(self, "gross", self.amount)


@dataclass(frozen=True)
class Statement:
    """A member's statement for one period, computed in memory.

    ``lines`` pay ``total``, their exact sum. ``held`` lists commission earned
    in the period that becomes payable only as the customer pays (plans paid
    on payment); it is not part of the total. ``earned`` is the total before
    draw lines, and ``draw_balance`` what the member owes on recoverable draws
    after this period.
    """

    member_id: int
    member_name: str
    period_start: dt.date
    period_end: dt.date
    currency: str
    lines: tuple[StatementLine, ...]
    total: Decimal
    earned: Decimal
    credits: tuple[Credit, ...] = ()
    held: tuple[StatementLine, ...] = ()
    draw_balance: Decimal = Decimal("0.00")
    notes: tuple[str, ...] = ()
