"""Tiered rates on the period's running total, marginal or retroactive.

Parameters::

    {"basis": "attainment" | "amount",
     "mode": "marginal" | "retroactive",
     "tiers": [{"from": "0", "to": "100", "rate": "0.08"},
               {"from": "100", "rate": "0.12"}],
     "threshold": "50"}

With basis "attainment" the bounds and the threshold are percentages of the
member's quota for the segment. With "amount" they are amounts in the plan's
currency, prorated when a plan change splits the period. Credits are taken
in order of credit date, then deal id. A threshold is a gate: while the
period's total is below it, no credit of the period earns anything; once
it is reached, every credit earns at the tiers' rates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from compensation.engine.caps import cap_per_deal
from compensation.engine.plans import Component, Segment
from compensation.engine.tiers import TierTable, tier_text
from compensation.engine.types import Credit, ParamsError, StatementLine
from compensation.engine.values import (
    check_keys,
    money,
    percent,
    plain,
    read_choice,
    read_decimal,
)
from spm.money import round_money

ZERO = Decimal("0.00")
BASES = ("attainment", "amount")
MODES = ("marginal", "retroactive")


@dataclass(frozen=True)
class TieredSpec:
    basis: str
    mode: str
    tiers: TierTable
    threshold: Decimal | None = None


def parse(params: Mapping[str, Any]) -> TieredSpec:
    check_keys(params, {"basis", "mode", "tiers", "threshold"})
    # The bases and the modes pay very differently, so the plan must name both.
    for key, choices in (("basis", BASES), ("mode", MODES)):
        if key not in params:
            raise ParamsError(key, f"is required: {' or '.join(choices)}.")
    return TieredSpec(
        basis=read_choice(params, "basis", BASES, BASES[0]),
        mode=read_choice(params, "mode", MODES, MODES[0]),
        tiers=TierTable.parse(params.get("tiers")),
        threshold=read_decimal(params, "threshold", required=False, positive=True),
    )


def _tier_label(spec: TieredSpec, table: TierTable):
    """Name tiers as written for attainment (100-150%), in money for amounts."""

    def label(index: int) -> str:
        if spec.basis == "attainment":
            tier, unit, write = spec.tiers.tiers[index], "%", plain
        else:
            tier, unit, write = table.tiers[index], "", money
        if tier.upper is None:
            return f"{write(tier.lower)}{unit} and up"
        return f"{write(tier.lower)}-{write(tier.upper)}{unit}"

    return label


def calculate(component: Component, segment: Segment) -> list[StatementLine]:
    return segment.commission_lines(component, entries(component, segment))


def entries(
    component: Component, segment: Segment, tier_column: list[str] | None = None
) -> list[tuple[Credit, Decimal, str]]:
    """Return each credit of the segment with the amount it earns and why.

    The lines have no single rate, so their ``rate`` is empty. Raises
    CalculationError when the basis is attainment and the member has no
    quota above zero. With ``tier_column``, the tiers each sentence names,
    as ``tier_text`` reads them, are appended to it in the same order.
    """
    spec: TieredSpec = component.spec
    if spec.basis == "attainment":
        quota = segment.require_quota(component)
        scale = quota / 100
        context = f" of the {money(quota)} quota{segment.prorate_note()}"
        threshold = f"{plain(spec.threshold or ZERO)}%{context}"
    else:
        scale = segment.fraction
        context = segment.prorate_note()
        threshold = money((spec.threshold or ZERO) * scale) + context
    table = spec.tiers.scaled(scale)
    label = _tier_label(spec, table)
    total = sum((credit.amount for credit in segment.credits), ZERO)

    credits = segment.credits
    texts = segment.credit_texts
    if spec.threshold is not None and total < spec.threshold * scale:
        reason = (
            f"no commission, because the period's total of {money(total)} is "
            f"below the threshold of {threshold}"
        )
        if tier_column is not None:
            # The amount in front of the reason names no tier.
            tier_column += [tier_text(reason)] * len(credits)
        return [
            (credit, ZERO, f"{text}: {reason}")
            for credit, text in zip(credits, texts, strict=True)
        ]

    found = []
    running = ZERO
    final = table.index_at(total)
    rates = [tier.rate for tier in table.tiers]
    # The text after each amount in an explanation, formatted once per tier.
    # It is the same text as describe_portions writes.
    tier_texts = [
        f" x {percent(rate)} in tier {label(index)}" for index, rate in enumerate(rates)
    ]
    first_rate_text = f" x {percent(rates[0])}"
    retroactive_text = (
        f"{tier_texts[final]}, the tier of the period's total {money(total)}"
    )
    # The tiers named by the sentence of an uncapped credit that stays in
    # tier i, or earns the retroactive rate. tier_text reads neither the
    # amount in front of the first tier nor the result after the last " = ",
    # so these are the same for every such credit.
    if tier_column is None:
        within_columns = [None] * len(tier_texts)
        retroactive_column = None
    else:
        within_columns = [tier_text(f"{named}{context} = ") for named in tier_texts]
        retroactive_column = tier_text(f"{retroactive_text}{context} = ")
    marginal = spec.mode == "marginal"
    cap = component.cap_per_deal
    # ``current`` is the tier of the running total. A credit that moves the
    # total up without leaving that tier, the usual case, is the one portion
    # table.portions would return: the whole credit in that tier. That holds
    # when the tiers are ascending and leave no gap, as a parsed table's do;
    # any other table always goes through portions.
    tiers = table.tiers
    within = tiers[-1].upper is None and all(
        tier.lower < tier.upper == following.lower
        for tier, following in zip(tiers, tiers[1:], strict=False)
    )
    current = 0
    lower, upper = tiers[0].lower, tiers[0].upper
    for credit, text in zip(credits, texts, strict=True):
        if marginal:
            end = running + credit.amount
            if within and lower <= running < end and (upper is None or end <= upper):
                exact = credit.amount * rates[current]
                sentence = f"{text}{tier_texts[current]}"
                column = within_columns[current]
            else:
                column = None
                parts = table.portions(running, end)
                exact = ZERO
                for index, part in parts:
                    exact += part * rates[index]
                if parts:
                    sentence = " + ".join(
                        f"{money(part)}{tier_texts[index]}" for index, part in parts
                    )
                else:
                    sentence = f"{text}{first_rate_text}"
            if within:
                while upper is not None and end >= upper:
                    current += 1
                    lower, upper = tiers[current].lower, tiers[current].upper
                if end < lower:
                    current = table.index_at(end)
                    lower, upper = tiers[current].lower, tiers[current].upper
            running = end
        else:
            exact = credit.amount * rates[final]
            sentence = f"{text}{retroactive_text}"
            column = retroactive_column
        cap_note = ""
        if cap is not None:
            exact, cap_note = cap_per_deal(exact, credit, cap)
        amount = round_money(exact)
        explanation = f"{sentence}{context}{cap_note} = {money(amount)}"
        found.append((credit, amount, explanation))
        if tier_column is not None:
            if column is None or cap_note:
                column = tier_text(explanation)
            tier_column.append(column)
    return found
