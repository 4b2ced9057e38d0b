"""Milestone bonuses: a fixed amount for reaching a level of attainment in a period.

Parameters::

    {"milestones": [{"attainment": "100", "amount": "2000"},
                    {"attainment": "150", "target_incentive_percent": "10"}]}

Each milestone pays once per period when the credited total reaches
``attainment`` percent of quota, and reaching exactly the level counts. When
a plan change splits the period, each segment is judged on its own. A
milestone pays either a fixed ``amount`` or a percentage of the
assignment's target incentive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from compensation.engine.plans import ONE_DAY, Component, Segment
from compensation.engine.types import (
    CalculationError,
    LineKind,
    ParamsError,
    StatementLine,
)
from compensation.engine.values import check_keys, money, plain, read_decimal
from spm.money import round_money

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Milestone:
    attainment: Decimal
    amount: Decimal | None = None
    target_incentive_percent: Decimal | None = None


@dataclass(frozen=True)
class BonusSpec:
    milestones: tuple[Milestone, ...]


def parse(params: Mapping[str, Any]) -> BonusSpec:
    check_keys(params, {"milestones"})
    rows = params.get("milestones")
    if not isinstance(rows, list) or not rows:
        raise ParamsError("milestones", "must be a non-empty list.")
    milestones = []
    for index, row in enumerate(rows):
        prefix = f"milestones[{index}]."
        check_keys(row, {"attainment", "amount", "target_incentive_percent"}, prefix)
        attainment = read_decimal(row, "attainment", prefix=prefix, positive=True)
        amount = read_decimal(row, "amount", prefix=prefix, required=False)
        share = read_decimal(
            row, "target_incentive_percent", prefix=prefix, required=False
        )
        if (amount is None) == (share is None):
            raise ParamsError(
                f"{prefix}amount", "give either amount or target_incentive_percent."
            )
        if milestones and attainment <= milestones[-1].attainment:
            raise ParamsError(
                f"{prefix}attainment",
                f"{attainment} must be above the previous milestone's "
                f"{milestones[-1].attainment}.",
            )
        milestones.append(Milestone(attainment, amount, share))
    return BonusSpec(tuple(milestones))


def calculate(component: Component, segment: Segment) -> list[StatementLine]:
    quota = segment.require_quota(component)
    total = sum((credit.amount for credit in segment.credits), ZERO)
    attained = total * 100 / quota
    lines = []
    for milestone in component.spec.milestones:
        if attained < milestone.attainment:
            break
        amount, source = _amount(milestone, segment, component)
        reached = attained.quantize(Decimal("0.1"))
        lines.append(
            segment.line(
                component,
                LineKind.BONUS,
                amount=amount,
                explanation=(
                    f"Bonus for reaching {plain(milestone.attainment)}% of quota: "
                    f"{money(total)} of the {money(quota)} quota"
                    f"{segment.prorate_note()} is {reached}%; {source}"
                ),
                date=segment.end - ONE_DAY,
                base=total,
            )
        )
    return lines


def _amount(
    milestone: Milestone, segment: Segment, component: Component
) -> tuple[Decimal, str]:
    if milestone.amount is not None:
        return milestone.amount, f"pays {money(milestone.amount)}"
    target = segment.assignment.target_incentive
    if target is None:
        raise CalculationError(
            f"{component.name} pays a percentage of the target incentive, but "
            f"{segment.payee_name}'s assignment has none. Set the target incentive."
        )
    amount = round_money(target * milestone.target_incentive_percent / 100)
    return amount, (
        f"pays {plain(milestone.target_incentive_percent)}% of the "
        f"{money(target)} target incentive = {money(amount)}"
    )
