"""Manager override: a rate on the bookings credited to the manager's reporting tree.

Parameters: ``{"rate": "0.02", "levels": 2}``. ``levels`` limits the tree to
direct reports (1), their reports too (2), and so on; without it the whole
tree counts. The manager's own credits are not part of the base. Each report
gets one line: the rate times the bookings credited to them in the segment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from compensation.engine.plans import Component, Segment
from compensation.engine.types import LineKind, ParamsError, StatementLine
from compensation.engine.values import check_keys, money, percent, read_rate
from spm.money import round_money

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class OverrideSpec:
    rate: Decimal
    levels: int | None = None


def parse(params: Mapping[str, Any]) -> OverrideSpec:
    check_keys(params, {"rate", "levels"})
    levels = params.get("levels")
    if levels is not None and (
        isinstance(levels, bool) or not isinstance(levels, int) or levels < 1
    ):
        raise ParamsError("levels", f"{levels!r} must be a whole number of at least 1.")
    return OverrideSpec(rate=read_rate(params), levels=levels)


def calculate(component: Component, segment: Segment) -> list[StatementLine]:
    spec: OverrideSpec = component.spec
    lines = []
    for report in sorted(
        segment.team, key=lambda member: (member.name, member.member_id)
    ):
        if spec.levels is not None and report.depth > spec.levels:
            continue
        credits = [
            credit
            for credit in report.credits
            if segment.start <= credit.credit_date < segment.end
        ]
        if not credits:
            continue
        base = sum((credit.amount for credit in credits), ZERO)
        amount = round_money(base * spec.rate)
        deals = "deal" if len(credits) == 1 else "deals"
        lines.append(
            segment.line(
                component,
                LineKind.OVERRIDE,
                amount=amount,
                explanation=(
                    f"{percent(spec.rate)} override on {report.name}'s credited "
                    f"bookings of {money(base)} ({len(credits)} {deals}) = "
                    f"{money(amount)}"
                ),
                base=base,
                rate=spec.rate,
            )
        )
    return lines
