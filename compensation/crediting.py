"""Crediting: who is credited with a deal, how much, when and in which currency.

- A deal is credited to its owner at 100%, or, when it has splits, to each
  split's member by percentage. The percentages must add up to 100; four
  decimal places are stored, so 33.3333 three times is accepted.
- The converted deal amount is split by the largest-remainder method
  (spm.money.allocate): each share is floored to the cent and the cents
  left go to the largest remainders, ties to the split listed first. Splits
  are listed in the order they were created, so the shares add up to the
  deal amount exactly and do not change between runs.
- The credit date is the deal's close date, a calendar date in the
  organisation's time zone. A deal known only by the instant it closed is
  dated by that instant's local date, so 23:30 in New York on 31 March is a
  31 March credit although it is 1 April in UTC.
- A deal in another currency than the plan's is converted once, at the
  rate of the plan's rate date: the close date, or the first day of the
  close month. The rate and its date are kept on the credit, so a later
  run with newer rates gives the same amount. A missing rate is an error
  naming the currencies and the date, never a silent fallback.
- A credit note is a document that reduces revenue: its amount is credited
  as a negative amount, whatever sign it was recorded with.
- A deal converted from a lead that routing reassigned, and with no splits
  of its own, is credited by the organisation's reassigned-lead rule
  (``reassigned_owner_shares``): last owner, first owner, 50/50 between
  the first and the last, or a configured share for the first owner.
  Owners between the first and the last get nothing under any rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from compensation.engine.plans import FxRateDate
from compensation.engine.types import CalculationError, Credit, frozen_instance
from spm.money import CENT, allocate, round_money

# Percentages are stored with four decimals, so each share may be off by
# up to 0.0001 from the exact fraction (33.3333 for a third).
PERCENT_TOLERANCE_PER_SPLIT = Decimal("0.0001")
HUNDRED = Decimal(100)


class CreditingError(CalculationError):
    """A deal that cannot be credited: bad splits, no date or no exchange rate."""


class Document:
    DEAL = "deal"
    CREDIT_NOTE = "credit_note"


@dataclass(frozen=True)
class SplitInput:
    member_id: int
    percent: Decimal


@dataclass(frozen=True)
class DealInput:
    """A won deal (or a credit note) as crediting reads it.

    ``currency`` may be blank, meaning the organisation's currency.
    ``close_date`` is a local calendar date; ``closed_at`` an aware instant,
    used only when there is no close date.
    """

    deal_id: int
    name: str
    amount: Decimal
    currency: str
    owner_id: int | None
    splits: tuple[SplitInput, ...] = ()
    close_date: dt.date | None = None
    closed_at: dt.datetime | None = None
    document: str = Document.DEAL
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"deal {self.name!r} (id {self.deal_id})"


def credit_date(deal: DealInput, time_zone: str) -> dt.date:
    """Return the local calendar date the deal is credited on."""
    if deal.close_date is not None:
        return deal.close_date
    if deal.closed_at is not None:
        if deal.closed_at.tzinfo is None:
            raise CreditingError(
                f"The close time of {deal.label} has no time zone, so its local "
                "date is unknown."
            )
        return deal.closed_at.astimezone(ZoneInfo(time_zone)).date()
    raise CreditingError(f"{deal.label} is won but has no close date; set one.")


def split_weights(deal: DealInput) -> list[tuple[int, Decimal]]:
    """Return ``(member id, percent)`` of each credited member, in split order."""
    if not deal.splits:
        if deal.owner_id is None:
            return []
        return [(deal.owner_id, HUNDRED)]
    members = [split.member_id for split in deal.splits]
    if len(set(members)) != len(members):
        raise CreditingError(f"{deal.label} splits to the same member twice.")
    for split in deal.splits:
        if split.percent < 0:
            raise CreditingError(
                f"{deal.label} has a negative split of {split.percent}%."
            )
    total = sum((split.percent for split in deal.splits), Decimal(0))
    tolerance = PERCENT_TOLERANCE_PER_SPLIT * len(deal.splits)
    if abs(total - HUNDRED) > tolerance:
        raise CreditingError(
            f"The splits of {deal.label} add up to {total}%, not 100%. "
            "Correct the split percentages."
        )
    return [(split.member_id, split.percent) for split in deal.splits]


class FxRates:
    """Exchange rates by (base, quote, date): 1 base unit costs ``rate`` quote units."""

    def __init__(self, rates: Mapping[tuple[str, str, dt.date], Decimal]) -> None:
        self._rates = dict(rates)

    def rate(self, base: str, quote: str, day: dt.date, deal: str = "") -> Decimal:
        try:
            return self._rates[(base, quote, day)]
        except KeyError:
            for_deal = f" for {deal}" if deal else ""
            raise CreditingError(
                f"No {base}/{quote} exchange rate for {day:%Y-%m-%d}{for_deal} "
                f"(the {quote} price of 1 {base}). Add that rate."
            ) from None


def rate_date(day: dt.date, basis: str) -> dt.date:
    """Return the date whose exchange rate converts a credit dated ``day``."""
    if basis == FxRateDate.MONTH_START:
        return day.replace(day=1)
    return day


def credit_deal(
    deal: DealInput,
    *,
    currency: str,
    rates: FxRates,
    time_zone: str,
    default_currency: str,
    fx_rate_date: str = FxRateDate.CLOSE_DATE,
) -> list[Credit]:
    """Credit one deal to its members, in ``currency``."""
    weights = split_weights(deal)
    if not weights:
        return []
    day = credit_date(deal, time_zone)
    source_currency = deal.currency or default_currency
    source_amount = deal.amount
    if deal.document == Document.CREDIT_NOTE:
        source_amount = -abs(source_amount)
    if round_money(source_amount) != source_amount:
        raise CreditingError(
            f"{deal.label} has an amount of {deal.amount}, with fractions of a cent."
        )

    fx_rate = None
    fx_day = None
    amount = source_amount
    if source_currency != currency:
        fx_day = rate_date(day, fx_rate_date)
        fx_rate = rates.rate(source_currency, currency, fx_day, deal.label)
        amount = round_money(source_amount * fx_rate)

    if _whole(weights, amount, source_amount):
        # One member at 100% takes the whole deal, so there is nothing to split.
        shares = [amount]
        source_shares = [source_amount]
        total_percent = weights[0][1]
    else:
        percents = [percent for _, percent in weights]
        total_percent = sum(percents, Decimal(0))
        shares = _allocate(amount, percents)
        source_shares = _allocate(source_amount, percents)
    fields = {
        **deal.fields,
        "name": deal.name,
        "currency": source_currency,
        "amount": amount,
    }
    # Every field of Credit, as frozen_instance requires.
    return [
        frozen_instance(
            Credit,
            {
                "deal_id": deal.deal_id,
                "deal_name": deal.name,
                "member_id": member_id,
                "credit_date": day,
                "amount": share,
                "deal_amount": amount,
                "share": percent / total_percent,
                "currency": currency,
                "source_amount": source_share,
                "deal_source_amount": source_amount,
                "source_currency": source_currency,
                "fx_rate": fx_rate,
                "fx_rate_date": fx_day,
                "fields": fields,
            },
        )
        for (member_id, percent), share, source_share in zip(
            weights, shares, source_shares, strict=True
        )
    ]


def _whole(
    weights: list[tuple[int, Decimal]], amount: Decimal, source_amount: Decimal
) -> bool:
    """Return whether one member takes a deal of whole cents at 100%.

    Then ``_allocate`` would return each amount unchanged, digit for digit,
    when its exponent is -2, as for every amount read from a numeric(18, 2)
    column. Zero is left to ``_allocate``, which turns -0.00 into 0.00.
    ``same_quantum`` compares the exponents without building ``as_tuple``.
    """
    return (
        len(weights) == 1
        and weights[0][1] == HUNDRED
        and amount.same_quantum(CENT)
        and source_amount.same_quantum(CENT)
        and amount != 0
        and source_amount != 0
    )


def _allocate(amount: Decimal, percents: list[Decimal]) -> list[Decimal]:
    """Split ``amount`` by ``percents`` exactly as spm.money.allocate does.

    One member takes the whole amount, so no cent is left over to hand out.
    That case runs allocate's own arithmetic without the sorting.
    """
    weight = Decimal(str(percents[0])) if len(percents) == 1 else Decimal(0)
    if weight <= 0 or amount != amount.quantize(CENT):
        return allocate(amount, percents)
    sign = Decimal(-1) if amount < 0 else Decimal(1)
    exact = abs(amount) / CENT * weight / weight
    return [sign * exact.to_integral_value(rounding=ROUND_DOWN) * CENT]


def credit_deals(deals: Iterable[DealInput], **options: Any) -> list[Credit]:
    """Credit every deal (see ``credit_deal`` for the options)."""
    return [credit for deal in deals for credit in credit_deal(deal, **options)]


class ReassignedLeadRule:
    """The rules of ``CreditingPolicy.reassigned_lead_rule``."""

    LAST_OWNER = "last_owner"
    FIRST_OWNER = "first_owner"
    SPLIT_EVEN = "split_even"
    SPLIT_SHARE = "split_share"


@dataclass(frozen=True)
class OwnerShare:
    """One lead owner's share of a deal: ``position`` 0 is the first owner."""

    member_id: int
    percent: Decimal
    amount: Decimal
    position: int


def reassigned_owner_shares(
    owners: list[int],
    amount: Decimal,
    rule: str,
    first_owner_percent: Decimal = Decimal(50),
) -> list[OwnerShare]:
    """Return who is credited with a deal whose lead had ``owners``, in order.

    ``owners`` are member ids in the order routing gave them the lead.
    ``position`` is the owner's index in that list. When the lead came back
    to its first owner, that owner is also the last and gets 100%.
    ``amount`` is split by the largest-remainder method, so the shares add
    up to it exactly. A share of 0% is left out. Raises CreditingError for
    an unknown rule or a percent outside 0 to 100.
    """
    if not owners:
        return []
    first, last = owners[0], owners[-1]
    last_position = len(owners) - 1
    if rule == ReassignedLeadRule.LAST_OWNER or first == last:
        weights = [(last, HUNDRED, last_position)]
    elif rule == ReassignedLeadRule.FIRST_OWNER:
        weights = [(first, HUNDRED, 0)]
    elif rule == ReassignedLeadRule.SPLIT_EVEN:
        weights = [(first, Decimal(50), 0), (last, Decimal(50), last_position)]
    elif rule == ReassignedLeadRule.SPLIT_SHARE:
        if not Decimal(0) <= first_owner_percent <= HUNDRED:
            raise CreditingError(
                f"Invalid first-owner share {first_owner_percent}%: use a percent "
                "from 0 to 100."
            )
        weights = [
            (first, first_owner_percent, 0),
            (last, HUNDRED - first_owner_percent, last_position),
        ]
    else:
        raise CreditingError(f"Unknown reassigned-lead rule {rule!r}.")
    weights = [entry for entry in weights if entry[1] > 0]
    amounts = allocate(amount, [percent for _, percent, _ in weights])
    return [
        OwnerShare(member_id, percent, share, position)
        for (member_id, percent, position), share in zip(weights, amounts, strict=True)
    ]
