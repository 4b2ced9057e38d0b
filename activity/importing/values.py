"""Parsers of single CSV cells. Each raises ValueError with the reason.

Every parser receives a stripped, non-blank cell: blank cells are handled
by the caller.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from spm.models import Membership

DATE_FORMATS_TEXT = "YYYY-MM-DD or M/D/YYYY"
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")

# Symbols that name one currency. "$" is left out: many currencies use it.
CURRENCY_SYMBOLS = {"€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
_AMOUNT = re.compile(
    r"^(?P<sign>[-+]?)\s*(?P<code>[A-Z]{3})?\s*(?P<symbol>[$€£¥₹])?\s*"
    r"(?P<number>[\d.,' ]*\d[\d.,' ]*)\s*(?P<symbol_after>[$€£¥₹])?\s*"
    r"(?P<code_after>[A-Z]{3})?$"
)
# Thousands grouping: 1 to 3 digits, then groups of exactly 3.
_GROUPED = re.compile(r"^\d{1,3}(?:[,.' ]\d{3})+$")
# 18 digits in all, 2 after the decimal point (the MONEY fields).
MAX_MONEY = Decimal("9999999999999999.99")
CENT = Decimal("0.01")


def parse_text(max_length: int) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if len(value) > max_length:
            raise ValueError(f"longer than {max_length} characters")
        return value

    return parse


def parse_date(value: str) -> dt.date:
    """Read ``YYYY-MM-DD`` (ISO 8601) or ``M/D/YYYY`` (US, as Excel saves it)."""
    iso = _ISO_DATE.match(value)
    us = _US_DATE.match(value)
    try:
        if iso:
            year, month, day = (int(part) for part in iso.groups())
            return dt.date(year, month, day)
        if us:
            month, day, year = (int(part) for part in us.groups())
            return dt.date(year, month, day)
    except ValueError:
        pass
    raise ValueError(f"not a date (expected {DATE_FORMATS_TEXT})")


def parse_money(value: str) -> tuple[Decimal, str]:
    """Read an amount and the currency its symbol or code names ("" for none).

    Accepted: "1054", "$1,054", "1,054.50", "€1.054,50", "EUR 1054.50",
    "1 054,50". When a value has both "," and ".", the last one is the
    decimal separator. A lone "," followed by exactly three digits groups
    thousands ("1,054" is 1054), otherwise it is the decimal separator
    ("1054,5"). A lone "." is always the decimal point.
    """
    match = _AMOUNT.match(value.replace("\u00a0", " ").replace("\u202f", " "))
    if match is None:
        raise ValueError("not an amount (expected a number such as 1054.50)")
    number = _normalise_number(match["number"].strip())
    if number is None or match["code"] and match["code_after"]:
        raise ValueError("not an amount (expected a number such as 1054.50)")

    amount = Decimal(number)
    if match["sign"] == "-":
        raise ValueError("negative amounts are not accepted")
    if amount.quantize(CENT) != amount:
        raise ValueError("has more than 2 decimal places")
    if amount > MAX_MONEY:
        raise ValueError("too large (at most 16 digits before the decimal point)")
    symbol = match["symbol"] or match["symbol_after"] or ""
    currency = match["code"] or match["code_after"] or CURRENCY_SYMBOLS.get(symbol, "")
    return amount.quantize(CENT), currency


def _normalise_number(number: str) -> str | None:
    """Return ``number`` with "." as the decimal point and no grouping, or None."""
    last_comma, last_dot = number.rfind(","), number.rfind(".")
    decimal_at = max(last_comma, last_dot)
    if last_comma >= 0 and last_dot < 0:
        # A lone comma before exactly three digits groups thousands.
        digits_after = len(number) - last_comma - 1
        if number.count(",") > 1 or digits_after == 3:
            decimal_at = -1
    elif last_dot >= 0 and last_comma < 0 and number.count(".") > 1:
        decimal_at = -1

    whole = number if decimal_at < 0 else number[:decimal_at]
    fraction = "" if decimal_at < 0 else number[decimal_at + 1 :]
    if not fraction.isdigit() and fraction:
        return None
    if not whole.isdigit() and not _GROUPED.match(whole):
        return None
    whole = re.sub(r"[,.' ]", "", whole)
    return f"{whole}.{fraction}" if fraction else whole


def parse_amount(value: str) -> Decimal:
    return parse_money(value)[0]


def parse_millions(value: str) -> Decimal:
    """Read an amount given in millions, for example 1100.04 for 1,100,040,000."""
    try:
        millions = Decimal(value.replace(",", ""))
    except InvalidOperation:
        raise ValueError("not a number (expected millions, such as 1100.04)") from None
    if not millions.is_finite() or millions < 0:
        raise ValueError("not a number (expected millions, such as 1100.04)")
    amount = millions * 1_000_000
    if amount.quantize(CENT) != amount or amount > MAX_MONEY:
        raise ValueError("not an amount in millions with at most 8 decimal places")
    return amount.quantize(CENT)


def parse_count(value: str) -> int:
    """Read a whole number of zero or more, allowing thousands separators."""
    digits = re.sub(r"[,' ]", "", value)
    if not digits.isdigit() or not (value.isdigit() or _GROUPED.match(value)):
        raise ValueError("not a whole number")
    if int(digits) > 2_147_483_647:
        raise ValueError("too large")
    return int(digits)


def parse_year(value: str) -> int:
    if not (value.isdigit() and len(value) == 4):
        raise ValueError("not a year (expected four digits, such as 1996)")
    return int(value)


def parse_email(value: str) -> str:
    try:
        validate_email(value)
    except ValidationError:
        raise ValueError("not an email address") from None
    return value.lower()


def parse_currency(value: str) -> str:
    code = value.upper()
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise ValueError("not a currency code (expected three letters, such as USD)")
    return code


def parse_role(value: str) -> str:
    roles = {choice.value: choice.value for choice in Membership.Role}
    roles.update({choice.label.lower(): choice.value for choice in Membership.Role})
    role = roles.get(value.lower())
    if role is None:
        raise ValueError("not a role (expected admin, manager or rep)")
    return role


def parse_person(value: str) -> str:
    """Read a member given by email address or by display name."""
    if "@" in value:
        return parse_email(value)
    return parse_text(150)(value)
