"""Builders of plain engine values, for tests that need no database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from compensation.engine import (
    Assignment,
    Credit,
    Payee,
    PlanTerms,
    Statement,
    build_component,
    calculate_periods,
)
from goals.calendar import add_months

D = dt.date
BASIS = ("USD", "close_date")
PLAN_START = D(2024, 1, 1)


def credit(
    amount: str,
    day: dt.date,
    deal_id: int = 1,
    *,
    member_id: int = 1,
    share: str = "1",
    deal_amount: str | None = None,
    name: str = "",
    fields: dict | None = None,
) -> Credit:
    """A USD credit; ``deal_amount`` defaults to the amount (the whole deal)."""
    whole = Decimal(deal_amount or amount)
    return Credit(
        deal_id=deal_id,
        deal_name=name or f"Deal {deal_id}",
        member_id=member_id,
        credit_date=day,
        amount=Decimal(amount),
        deal_amount=whole,
        share=Decimal(share),
        currency="USD",
        source_amount=Decimal(amount),
        deal_source_amount=whole,
        source_currency="USD",
        fields=fields or {},
    )


def component(kind: str, name: str = "", **options):
    params = {key: value for key, value in options.items() if not key.startswith("cap")}
    caps = {
        key: Decimal(value) for key, value in options.items() if key.startswith("cap")
    }
    return build_component(name=name or kind.title(), kind=kind, params=params, **caps)


def flat(rate: str, **caps):
    return component("flat", "Commission", rate=rate, **caps)


def terms(*components, label: str = "Plan v1", **options) -> PlanTerms:
    options.setdefault("effective_from", PLAN_START)
    options.setdefault("currency", "USD")
    return PlanTerms(label=label, components=tuple(components), **options)


def assignment(*versions: PlanTerms, start: dt.date = PLAN_START, **options):
    return Assignment(
        start=start, end=options.pop("end", None), versions=versions, **options
    )


def payee(versions, credits=(), **options) -> Payee:
    """A payee on one assignment of ``versions`` (a PlanTerms or a tuple of them)."""
    if isinstance(versions, PlanTerms):
        versions = (versions,)
    start = options.pop("start", PLAN_START)
    target = options.pop("target_incentive", None)
    return Payee(
        member_id=1,
        name="Rita Rep",
        assignments=(assignment(*versions, start=start, target_incentive=target),),
        credits={versions[0].credit_basis: tuple(credits)},
        **options,
    )


def months(first: dt.date, count: int) -> list[tuple[dt.date, dt.date]]:
    return [(add_months(first, i), add_months(first, i + 1)) for i in range(count)]


def run(payee_value: Payee, first: dt.date, count: int = 1) -> list[Statement]:
    """Calculate ``count`` months from the month of ``first``."""
    return calculate_periods(payee_value, months(first.replace(day=1), count))


def amounts(statement: Statement) -> list[Decimal]:
    return [line.amount for line in statement.lines]
