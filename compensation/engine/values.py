"""Reading component parameters and writing amounts into explanations.

Parameters are JSON, so a number may arrive as a string ("0.08"), an int or
a float. Each is read through ``str`` into a ``Decimal``, so 0.1 stays 0.1.
Rates are fractions: 0.08 is 8%. Attainment thresholds are percentages of
quota: 100 is 100%.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from compensation.engine.types import ParamsError


def money(amount: Decimal) -> str:
    """Format an amount with thousands separators and cents: 12,500.00."""
    text = str(amount)
    # An amount to the cent below 1,000 needs no separator, and str writes
    # it as format does, in half the time. A run formats two amounts per
    # deal, most of them commissions of this size.
    if len(text) < 7 and text[-3:-2] == ".":
        return text
    # The same text as f"{amount:,.2f}", about a sixth faster for a Decimal.
    return amount.__format__(",.2f")


def percent(fraction: Decimal) -> str:
    """Format a fraction as a percentage without trailing zeros: 0.075 -> 7.5%."""
    return f"{plain(fraction * 100)}%"


def plain(value: Decimal) -> str:
    """Format a number without exponent or trailing zeros: 150.00 -> 150."""
    return format(value.normalize(), "f")


def to_decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise ParamsError(field, f"{value!r} is not a number.")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ParamsError(field, f"{value!r} is not a number.") from None
    if not number.is_finite():
        raise ParamsError(field, f"{value!r} is not a finite number.")
    return number


def read_decimal(
    params: Mapping[str, Any],
    key: str,
    *,
    prefix: str = "",
    required: bool = True,
    minimum: Decimal | None = Decimal(0),
    positive: bool = False,
) -> Decimal | None:
    """Read ``params[key]`` as a Decimal, or None when it is absent and optional."""
    field = f"{prefix}{key}"
    if params.get(key) in (None, ""):
        if required:
            raise ParamsError(field, "is required.")
        return None
    number = to_decimal(params[key], field)
    if positive and number <= 0:
        raise ParamsError(field, f"{number} must be greater than 0.")
    if minimum is not None and number < minimum:
        raise ParamsError(field, f"{number} must be at least {minimum}.")
    return number


def read_rate(
    params: Mapping[str, Any], key: str = "rate", prefix: str = ""
) -> Decimal:
    """Read a rate: a fraction from 0 to 10, where 0.08 is 8%."""
    rate = read_decimal(params, key, prefix=prefix)
    if rate > 10:
        raise ParamsError(
            f"{prefix}{key}",
            f"{rate} is over 1000%; write rates as fractions, 0.08 for 8%.",
        )
    return rate


def read_choice(
    params: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str
) -> str:
    value = params.get(key) or default
    if value not in choices:
        allowed = ", ".join(choices)
        raise ParamsError(key, f"{value!r} is not one of {allowed}.")
    return value


_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def date_problem(value: Any) -> str:
    """Describe why ``value`` is not a YYYY-MM-DD date, naming the value.

    A value in the right form gets the reason: "'2026-02-30' is not a date:
    February 2026 has 28 days." Anything else gets the expected form.
    """
    text = str(value)
    found = _ISO_DATE.fullmatch(text.strip())
    if found:
        year, month, _ = (int(part) for part in found.groups())
        if not 1 <= month <= 12:
            return f"{text!r} is not a date: there is no month {month}."
        if year >= 1:
            days = calendar.monthrange(year, month)[1]
            name = calendar.month_name[month]
            return f"{text!r} is not a date: {name} {year} has {days} days."
    return f"{text!r} is not a date as YYYY-MM-DD."


def read_date(params: Mapping[str, Any], key: str) -> dt.date:
    value = params.get(key)
    if not value:
        raise ParamsError(key, "is required, as YYYY-MM-DD.")
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ParamsError(key, date_problem(value)) from None


def check_keys(params: Any, allowed: set[str], prefix: str = "") -> Mapping[str, Any]:
    """Reject anything but a dict of the ``allowed`` keys, so typos do not pass."""
    if not isinstance(params, Mapping):
        raise ParamsError(prefix.rstrip(".") or "params", "must be a JSON object.")
    unknown = sorted(set(params) - allowed)
    if unknown:
        names = ", ".join(sorted(allowed))
        raise ParamsError(
            f"{prefix}{unknown[0]}", f"is not a known parameter; use {names}."
        )
    return params
