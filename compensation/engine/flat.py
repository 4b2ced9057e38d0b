"""Flat rate: every credited amount earns the same rate.

Parameters: ``{"rate": "0.10"}``, a fraction (0.10 is 10%).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from compensation.engine.caps import cap_per_deal
from compensation.engine.plans import Component, Segment
from compensation.engine.types import Credit, StatementLine
from compensation.engine.values import check_keys, money, percent, read_rate
from spm.money import round_money


@dataclass(frozen=True)
class FlatSpec:
    rate: Decimal


def parse(params: Mapping[str, Any]) -> FlatSpec:
    check_keys(params, {"rate"})
    return FlatSpec(rate=read_rate(params))


def calculate(component: Component, segment: Segment) -> list[StatementLine]:
    return segment.commission_lines(
        component, entries(component, segment), component.spec.rate
    )


def entries(
    component: Component, segment: Segment
) -> list[tuple[Credit, Decimal, str]]:
    """Return each credit of the segment with the amount it earns and why.

    Every line pays the component's rate, which is the line's ``rate``.
    """
    rate = component.spec.rate
    # The same for every line, so formatted once per segment.
    rate_text = percent(rate)
    cap = component.cap_per_deal
    credits = segment.credits
    texts = segment.credit_texts
    if cap is None:
        paid = [round_money(credit.amount * rate) for credit in credits]
        return [
            (credit, amount, f"{text} x {rate_text} = {money(amount)}")
            for credit, text, amount in zip(credits, texts, paid, strict=True)
        ]
    found = []
    for credit, text in zip(credits, texts, strict=True):
        exact, cap_note = cap_per_deal(credit.amount * rate, credit, cap)
        amount = round_money(exact)
        found.append(
            (credit, amount, f"{text} x {rate_text}{cap_note} = {money(amount)}")
        )
    return found
