"""Conditions of rules and territories: validation on save, and matching a lead.

A condition is ``{"field": ..., "operator": ..., "value": ...}``:

- ``field``: one of FIELDS, or ``custom.<name>`` for a field of
  ``Lead.custom``;
- ``operator``: "equals" (one value), "in" (a list of values), "range"
  (``{"min": ..., "max": ...}``, min included and max excluded, either may
  be left out) or "contains" (text containing the value);
- text compares without regard to case or surrounding spaces, numbers as
  decimals. A lead with no value for the field matches no condition on it.

Country values are stored as ISO 3166-1 alpha-2 codes, like the leads'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from routing.normalization import normalize_country

TEXT = "text"
NUMBER = "number"
FIELDS = {
    "country": TEXT,
    "region": TEXT,
    "industry": TEXT,
    "source": TEXT,
    "company": TEXT,
    "domain": TEXT,
    "company_size": NUMBER,
    "estimated_value": NUMBER,
    # Whole percent from the organisation's active model, set at intake.
    "predicted_score": NUMBER,
}
# Fields stored on the lead's LeadQualification row rather than on the lead.
QUALIFICATION_FIELDS = frozenset({"predicted_score"})
CUSTOM_FIELD = re.compile(r"^custom\.([A-Za-z0-9_][A-Za-z0-9_.-]{0,63})$")
OPERATORS = ("equals", "in", "range", "contains")
MAX_CONDITIONS = 50


def _error(index: int, message: str) -> ValidationError:
    return ValidationError({"conditions": f"Condition {index + 1}: {message}"})


def _field_kind(field: Any, index: int) -> str | None:
    """Return TEXT or NUMBER for a fixed field, None for a custom one."""
    if field in FIELDS:
        return FIELDS[field]
    if isinstance(field, str) and CUSTOM_FIELD.match(field):
        return None
    names = ", ".join(FIELDS)
    raise _error(
        index, f"Unknown field {field!r}. Use one of {names}, or custom.<name>."
    )


def _number(field: str, value: Any, index: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _error(index, f"The value of {field}, {value!r}, is not a number.")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _error(
            index, f"The value of {field}, {value!r}, is not a number."
        ) from None
    if not number.is_finite():
        raise _error(index, f"The value of {field}, {value!r}, is not a finite number.")
    return str(number)


def _scalar(field: str, kind: str | None, value: Any, index: int) -> str:
    """Return one comparison value in its stored form (numbers as strings)."""
    if kind == NUMBER:
        return _number(field, value, index)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _error(
            index, f"The value of {field}, {value!r}, is not a text or number value."
        )
    text = str(value).strip()
    if not text:
        raise _error(index, f"The value of {field} is empty.")
    if field == "country":
        try:
            return normalize_country(text)
        except ValueError as error:
            raise _error(index, str(error)) from None
    return text


def _range(field: str, kind: str | None, value: Any, index: int) -> dict:
    if kind == TEXT:
        raise _error(
            index, f"Range applies to number fields only, and {field} is a text field."
        )
    if not isinstance(value, dict) or not value or set(value) - {"min", "max"}:
        raise _error(
            index,
            f'Range on {field} takes {{"min": ..., "max": ...}}, either optional.',
        )
    bounds = {
        key: _number(field, value[key], index)
        for key in ("min", "max")
        if value.get(key) not in (None, "")
    }
    if not bounds:
        raise _error(index, f"Range on {field} needs a min, a max or both.")
    if len(bounds) == 2 and Decimal(bounds["min"]) >= Decimal(bounds["max"]):
        raise _error(
            index,
            f"The range min of {field} ({bounds['min']}) must be below its max "
            f"({bounds['max']}).",
        )
    return bounds


def _validate_one(condition: Any, index: int) -> dict:
    if not isinstance(condition, dict) or set(condition) != {
        "field",
        "operator",
        "value",
    }:
        raise _error(
            index, 'Write a condition as {"field": ..., "operator": ..., "value": ...}.'
        )
    field, operator, value = (condition[k] for k in ("field", "operator", "value"))
    kind = _field_kind(field, index)
    if operator not in OPERATORS:
        raise _error(
            index,
            f"Unknown operator {operator!r} on {field}. "
            f"Use one of {', '.join(OPERATORS)}.",
        )
    if operator == "range":
        value = _range(field, kind, value, index)
    elif operator == "in":
        if not isinstance(value, list) or not value:
            raise _error(
                index, f"The in operator on {field} takes a non-empty list of values."
            )
        value = [_scalar(field, kind, item, index) for item in value]
    elif operator == "contains":
        if kind == NUMBER:
            raise _error(
                index,
                f"Contains applies to text fields only, and {field} is a number field.",
            )
        value = _scalar(field, TEXT, value, index)
    else:
        value = _scalar(field, kind, value, index)
    return {"field": field, "operator": operator, "value": value}


def validate_conditions(conditions: Any) -> list[dict]:
    """Return the conditions in their stored form, or raise ValidationError.

    The message names the condition by its position, from 1.
    """
    if conditions in (None, ""):
        return []
    if not isinstance(conditions, list):
        raise ValidationError({"conditions": "Conditions must be a list."})
    if len(conditions) > MAX_CONDITIONS:
        raise ValidationError(
            {"conditions": f"At most {MAX_CONDITIONS} conditions are allowed."}
        )
    return [_validate_one(condition, i) for i, condition in enumerate(conditions)]


# Matching ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    matched: bool
    # The first condition that failed, in words, or "" when all matched.
    reason: str = ""


def lead_value(lead: Any, field: str) -> Any:
    """Return the lead's value of ``field``, or None when it has none."""
    if field.startswith("custom."):
        value = (lead.custom or {}).get(field.removeprefix("custom."))
    else:
        value = getattr(lead, field, None)
        if value is None and field in QUALIFICATION_FIELDS:
            # A Lead has no such attribute: read its qualification's. A lead
            # without one raises RelatedObjectDoesNotExist, an AttributeError.
            value = getattr(getattr(lead, "qualification", None), field, None)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _equal(actual: Any, expected: str) -> bool:
    left, right = _as_decimal(actual), _as_decimal(expected)
    if left is not None and right is not None:
        return left == right
    return str(actual).strip().casefold() == expected.casefold()


def _in_range(actual: Any, bounds: dict) -> bool:
    number = _as_decimal(actual)
    if number is None:
        return False
    if "min" in bounds and number < Decimal(bounds["min"]):
        return False
    return not ("max" in bounds and number >= Decimal(bounds["max"]))


def condition_matches(condition: dict, lead: Any) -> bool:
    actual = lead_value(lead, condition["field"])
    if actual is None:
        return False
    operator, expected = condition["operator"], condition["value"]
    if operator == "equals":
        return _equal(actual, expected)
    if operator == "in":
        return any(_equal(actual, item) for item in expected)
    if operator == "range":
        return _in_range(actual, expected)
    return expected.casefold() in str(actual).casefold()


def describe(condition: dict) -> str:
    """Return the condition in words, for the decision record."""
    operator, value = condition["operator"], condition["value"]
    if operator == "in":
        value = "[" + ", ".join(value) + "]"
    elif operator == "range":
        low, high = value.get("min", "…"), value.get("max", "…")
        value = f"[{low}, {high})"
    return f"{condition['field']} {operator} {value}"


def conditions_match(conditions: list[dict], lead: Any) -> Outcome:
    """Return whether every condition matches, naming the first that does not."""
    for condition in conditions:
        if not condition_matches(condition, lead):
            actual = lead_value(lead, condition["field"])
            lead_text = "empty" if actual is None else repr(str(actual))
            reason = f"{describe(condition)} failed: the lead has {lead_text}"
            return Outcome(False, reason)
    return Outcome(True)
