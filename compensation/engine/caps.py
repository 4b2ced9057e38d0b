"""Caps: per deal, per component and plan per period, and the plan year schedule.

The order is fixed: a component's line for a deal is capped per deal first,
then the component's lines are capped per period, then all lines of the
plan version per period, then the plan year schedule applies.

A cap per deal limits the whole deal's commission before it is split: a
member with a 60% share gets at most 60% of the cap, so the shares never
add up to more than the cap.

A cap per period is applied to the running total of the lines in credit
order. Each line pays the increase of ``min(cap, running total)``. So the
deal that crosses the cap is paid up to it, and a later negative line lowers
the pay only once the running total falls back under the cap. The lines are
in cents, so the capped lines are too and add up to the cap exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

from compensation.engine.tiers import TierTable
from compensation.engine.types import Credit, StatementLine
from compensation.engine.values import money, percent
from spm.money import round_money

ZERO = Decimal("0.00")


def cap_per_deal(
    exact: Decimal, credit: Credit, cap: Decimal | None
) -> tuple[Decimal, str]:
    """Limit a member's exact commission on a deal to their share of the cap.

    Returns the commission and the sentence to append ("" when the cap does
    not bind).
    """
    if cap is None:
        return exact, ""
    limit = cap * credit.share
    if abs(exact) <= limit:
        return exact, ""
    capped = limit if exact > 0 else -limit
    if credit.share == 1:
        return capped, f"; capped at {money(cap)} per deal"
    return capped, (
        f"; capped at your {percent(credit.share)} share of the "
        f"{money(cap)} cap per deal, {money(round_money(capped))}"
    )


def cap_per_period(
    lines: list[StatementLine], cap: Decimal | None, what: str
) -> list[StatementLine]:
    """Cap the running total of ``lines`` at ``cap``; ``what`` names the cap."""
    if cap is None:
        return lines
    running = ZERO
    paid_so_far = ZERO
    result = []
    for line in lines:
        running += line.amount
        paid_total = min(cap, running)
        amount = paid_total - paid_so_far
        paid_so_far = paid_total
        if amount != line.amount:
            line = replace(
                line,
                amount=amount,
                explanation=(
                    f"{line.explanation}; {money(amount)} paid, because the {what} "
                    f"of {money(cap)} is reached"
                ),
            )
        result.append(line)
    return result


def prorated_cap(cap: Decimal | None, fraction: Decimal) -> Decimal | None:
    if cap is None:
        return None
    return round_money(cap * fraction)


def apply_year_schedule(
    lines: list[StatementLine],
    table: TierTable | None,
    gross_before: Decimal,
    label: Callable[[int], str],
) -> tuple[list[StatementLine], Decimal]:
    """Pay each line at the schedule's rates on the plan year's gross commission.

    ``gross_before`` is the gross commission of the plan year before these
    lines. Each line pays what moves the cumulative payout, rounded to the
    cent, from its value before the line to its value after it, so a line
    that crosses a bound is paid at both rates. Returns the lines and the
    year's gross after them.
    """
    if table is None:
        return lines, gross_before + sum((line.amount for line in lines), ZERO)
    gross = gross_before
    result = []
    for line in lines:
        after = gross + line.amount
        paid = round_money(table.marginal_total(after)) - round_money(
            table.marginal_total(gross)
        )
        parts = table.portions(gross, after)
        if paid != line.amount:
            steps = " + ".join(
                f"{money(amount)} x {percent(table.tiers[index].rate)} "
                f"in the plan year's {label(index)}"
                for index, amount in parts
            )
            line = replace(
                line,
                amount=paid,
                explanation=(
                    f"{line.explanation}; of that gross, {steps} = {money(paid)}"
                ),
            )
        result.append(line)
        gross = after
    return result, gross
