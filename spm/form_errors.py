"""Field errors that name the field and the value given: dates, numbers, choices.

Django's own messages ("Enter a valid date.", "Ensure this value is greater
than or equal to 0.01.") name neither, which leaves a user of a long form or
of an error list above it guessing. Forms that mix in
``ValueErrorMessagesMixin`` get, for example::

    First day: "2024-13-01" is not a valid date (use YYYY-MM-DD).
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import BaseTemporalField

# The fields whose errors the mixin rewrites. Decimal and float fields are
# integer fields in Django's class tree, and model choice fields are choice
# fields.
VALUE_FIELDS = (forms.IntegerField, BaseTemporalField, forms.ChoiceField)

# Longer input is cut in messages, so a pasted paragraph does not fill the page.
VALUE_SHOWN_CHARS = 40


def _shown(value) -> str:
    text = "" if value is None else str(value).strip()
    if len(text) > VALUE_SHOWN_CHARS:
        text = text[: VALUE_SHOWN_CHARS - 1] + "…"
    return f'"{text}"'


def _invalid_reason(field: forms.Field) -> str | None:
    """Return what an invalid value of ``field`` is not, or None for other fields."""
    # DecimalField and FloatField subclass IntegerField, so they come first.
    if isinstance(field, forms.DecimalField | forms.FloatField):
        return "is not a number (use digits and a decimal point, like 1250.50)"
    if isinstance(field, forms.IntegerField):
        return "is not a whole number"
    if isinstance(field, forms.DateTimeField):
        return "is not a valid date and time (use YYYY-MM-DD HH:MM)"
    if isinstance(field, forms.DateField):
        return "is not a valid date (use YYYY-MM-DD)"
    if isinstance(field, forms.TimeField):
        return "is not a valid time (use HH:MM)"
    return None


def _reason(field: forms.Field, error: ValidationError) -> str | None:
    """Return the message after the value for a known error code, else None."""
    params = error.params or {}
    if error.code == "invalid":
        return _invalid_reason(field)
    if error.code == "invalid_choice":
        return "is not one of the available choices"
    if error.code == "min_value":
        return f"is below the minimum of {params.get('limit_value')}"
    if error.code == "max_value":
        return f"is above the maximum of {params.get('limit_value')}"
    if error.code == "max_digits":
        return f"has more than {params.get('max')} digits"
    if error.code == "max_decimal_places":
        return f"has more than {params.get('max')} decimal places"
    if error.code == "max_whole_digits":
        return f"has more than {params.get('max')} digits before the decimal point"
    return None


class ValueErrorMessagesMixin:
    """Rewrite the errors of date, number and choice fields to name field and value.

    Only Django's built-in codes of those fields are rewritten (invalid,
    invalid_choice, min_value, max_value and the decimal digit limits).
    Errors that a form's own ``clean_<field>`` raises pass through unchanged,
    because they are expected to name the value already. Put the mixin
    before ``forms.Form``.
    """

    def add_error(self, field, error) -> None:
        if not isinstance(error, ValidationError):
            super().add_error(field, error)
        elif hasattr(error, "error_dict"):
            # A model form reports its model's validators as one dict.
            error = ValidationError(
                {
                    name: self._with_values(name, items)
                    for name, items in error.error_dict.items()
                }
            )
            super().add_error(field, error)
        else:
            super().add_error(field, self._with_values(field, error.error_list))

    def _with_values(self, name, errors: list[ValidationError]):
        if name not in self.fields:
            return errors
        return [self._with_value(name, item) for item in errors]

    def _with_value(self, name: str, error: ValidationError) -> ValidationError:
        field = self.fields[name]
        if not isinstance(field, VALUE_FIELDS):
            return error
        reason = _reason(field, error)
        if reason is None:
            return error
        label = self[name].label
        # A multiple choice names the one rejected item in its params.
        params = error.params or {}
        value = _shown(params["value"] if "value" in params else self[name].data)
        return ValidationError(f"{label}: {value} {reason}.", code=error.code)
