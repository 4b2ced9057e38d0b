"""SPIFFs: a time-boxed incentive on deals that meet conditions.

Parameters::

    {"starts_on": "2024-03-01", "ends_on": "2024-03-31",
     "conditions": [{"field": "product", "operator": "contains",
                     "value": "GTX Pro"}],
     "amount": "500"}            (or "rate": "0.02")

``starts_on`` and ``ends_on`` are calendar dates in the organisation's time
zone, both included. A deal counts when its credit date, the local date it
closed on, falls between them: a deal closing at 23:30 local time on the
last day counts even though it is the next day in UTC. Every condition must
hold. A fixed ``amount`` is paid per deal and split like the deal, so a 60%
share earns 60% of it. Documents with a negative amount (credit notes) earn
no fixed amount. A ``rate`` pays on the credited amount, negative ones too.

Condition fields: name, currency, pipeline, account, account_industry,
deal_type and segment (text, filled by a CRM field mapping), product (the
deal's product names) and amount (the whole deal's amount in the plan's
currency). Text compares ignore case.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from compensation.engine.plans import Component, Segment
from compensation.engine.types import Credit, LineKind, ParamsError, StatementLine
from compensation.engine.values import (
    check_keys,
    money,
    percent,
    read_date,
    read_decimal,
    read_rate,
    to_decimal,
)
from spm.money import round_money

TEXT_FIELDS = {
    "name",
    "currency",
    "pipeline",
    "account",
    "account_industry",
    "deal_type",
    "segment",
}
LIST_FIELDS = {"product"}
NUMBER_FIELDS = {"amount"}
TEXT_OPERATORS = ("equals", "not_equals", "contains", "in")
NUMBER_OPERATORS = ("equals", "not_equals", "gt", "gte", "lt", "lte")


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: Any

    def matches(self, fields: Mapping[str, Any]) -> bool:
        actual = fields.get(self.field)
        if self.field in NUMBER_FIELDS:
            return actual is not None and _compare(self.operator, actual, self.value)
        if self.field in LIST_FIELDS:
            names = [str(name).casefold() for name in actual or ()]
            if self.operator == "not_equals":
                return self.value not in names
            return any(_text_matches(self.operator, name, self.value) for name in names)
        text = str(actual or "").casefold()
        if self.operator == "not_equals":
            return text != self.value
        return _text_matches(self.operator, text, self.value)


def _text_matches(operator: str, text: str, value: Any) -> bool:
    if operator == "equals":
        return text == value
    if operator == "contains":
        return value in text
    return text in value  # "in": one of a list


def _compare(operator: str, actual: Decimal, value: Decimal) -> bool:
    return {
        "equals": actual == value,
        "not_equals": actual != value,
        "gt": actual > value,
        "gte": actual >= value,
        "lt": actual < value,
        "lte": actual <= value,
    }[operator]


@dataclass(frozen=True)
class SpiffSpec:
    starts_on: dt.date
    ends_on: dt.date
    conditions: tuple[Condition, ...] = ()
    amount: Decimal | None = None
    rate: Decimal | None = None

    def applies_to(self, credit: Credit) -> bool:
        if not self.starts_on <= credit.credit_date <= self.ends_on:
            return False
        return all(condition.matches(credit.fields) for condition in self.conditions)


def _parse_condition(row: Any, index: int) -> Condition:
    prefix = f"conditions[{index}]."
    check_keys(row, {"field", "operator", "value"}, prefix)
    field = row.get("field")
    operator = row.get("operator")
    value = row.get("value")
    known = sorted(TEXT_FIELDS | LIST_FIELDS | NUMBER_FIELDS)
    if field not in known:
        raise ParamsError(
            f"{prefix}field", f"{field!r} is not one of {', '.join(known)}."
        )
    operators = NUMBER_OPERATORS if field in NUMBER_FIELDS else TEXT_OPERATORS
    if operator not in operators:
        raise ParamsError(
            f"{prefix}operator",
            f"{operator!r} does not apply to {field}; use {', '.join(operators)}.",
        )
    if field in NUMBER_FIELDS:
        return Condition(field, operator, to_decimal(value, f"{prefix}value"))
    if operator == "in":
        if not isinstance(value, list) or not value:
            raise ParamsError(f"{prefix}value", "must be a non-empty list for 'in'.")
        return Condition(field, operator, tuple(str(item).casefold() for item in value))
    if not isinstance(value, str) or not value.strip():
        raise ParamsError(f"{prefix}value", "must be a non-empty text.")
    return Condition(field, operator, value.strip().casefold())


def parse(params: Mapping[str, Any]) -> SpiffSpec:
    check_keys(params, {"starts_on", "ends_on", "conditions", "amount", "rate"})
    starts_on = read_date(params, "starts_on")
    ends_on = read_date(params, "ends_on")
    if ends_on < starts_on:
        raise ParamsError("ends_on", f"{ends_on} is before starts_on, {starts_on}.")
    rows = params.get("conditions") or []
    if not isinstance(rows, list):
        raise ParamsError("conditions", "must be a list.")
    has_amount = params.get("amount") not in (None, "")
    has_rate = params.get("rate") not in (None, "")
    if has_amount == has_rate:
        raise ParamsError("amount", "give either amount (per deal) or rate.")
    return SpiffSpec(
        starts_on=starts_on,
        ends_on=ends_on,
        conditions=tuple(_parse_condition(row, i) for i, row in enumerate(rows)),
        amount=read_decimal(params, "amount", positive=True) if has_amount else None,
        rate=read_rate(params) if has_rate else None,
    )


def calculate(component: Component, segment: Segment) -> list[StatementLine]:
    spec: SpiffSpec = component.spec
    window = f"{spec.starts_on:%Y-%m-%d} to {spec.ends_on:%Y-%m-%d}"
    lines = []
    for credit in segment.credits:
        if not spec.applies_to(credit):
            continue
        if spec.amount is not None:
            if credit.amount < 0:
                continue
            exact = spec.amount * credit.share
            sentence = f"{money(spec.amount)} per deal"
            if credit.share != 1:
                sentence += f" x your {percent(credit.share)} share"
        else:
            exact = credit.amount * spec.rate
            sentence = f"{money(credit.amount)} x {percent(spec.rate)}"
        amount = round_money(exact)
        lines.append(
            segment.line(
                component,
                LineKind.SPIFF,
                amount=amount,
                explanation=(
                    f"SPIFF for deals closed {window}: {sentence} = {money(amount)}"
                ),
                deal_id=credit.deal_id,
                deal_name=credit.deal_name,
                date=credit.credit_date,
                base=credit.amount,
                rate=spec.rate,
            )
        )
    return lines
