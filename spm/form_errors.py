"""Field errors that name the field and the value given.

Django's own messages ("Enter a valid date.", "This field is required.",
"Ensure this value has at most 3 characters (it has 4).") name neither, which
leaves a user of a long form or of an error list above it guessing. Forms that
mix in ``ValueErrorMessagesMixin`` get, for example::

    First day: "2024-13-01" is not a valid date (use YYYY-MM-DD).
    API address is required.

Rewritten messages start with the field's label, so templates print field
errors as they are, without a label of their own in front.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

# Longer input is cut in messages, so a pasted paragraph does not fill the page.
VALUE_SHOWN_CHARS = 40


def shown_value(value) -> str:
    """Return ``value`` in quotes as the user typed it, cut to a readable length."""
    text = "" if value is None else str(value).strip()
    if len(text) > VALUE_SHOWN_CHARS:
        text = text[: VALUE_SHOWN_CHARS - 1] + "…"
    return f'"{text}"'


def is_secret(field: forms.Field) -> bool:
    """Return whether ``field`` takes a password or token, never shown back."""
    return isinstance(field.widget, forms.PasswordInput)


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
    if isinstance(field, forms.URLField):
        return "is not a valid URL (use a full address, like https://example.com)"
    if isinstance(field, forms.EmailField):
        return "is not a valid email address"
    if isinstance(field, forms.UUIDField):
        return "is not a valid UUID"
    # A model choice field keyed by a UUID reports a malformed id this way.
    if isinstance(field, forms.ChoiceField):
        return "is not one of the available choices"
    return None


def _reason(field: forms.Field, error: ValidationError) -> str | None:
    """Return the message after the value for a known error code, else None."""
    params = error.params or {}
    if error.code == "invalid":
        return _invalid_reason(field)
    if error.code in ("invalid_choice", "invalid_pk_value"):
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
    if error.code == "max_length":
        return (
            f"has {params.get('show_value')} characters, more than the maximum "
            f"of {params.get('limit_value')}"
        )
    if error.code == "min_length":
        return (
            f"has {params.get('show_value')} characters, fewer than the minimum "
            f"of {params.get('limit_value')}"
        )
    return None


class ValueErrorMessagesMixin:
    """Rewrite Django's built-in field errors to name the field and the value.

    The codes rewritten are required, invalid (numbers, dates, times, URLs,
    email addresses, UUIDs and choices), invalid_choice, min_value,
    max_value, the decimal digit limits and the length limits. The value of
    a password or token field is never shown. Other errors, such as those a
    form's own ``clean_<field>`` raises, pass through unchanged, so they
    should name the field and value themselves: ``value_message`` builds
    such a message. Put the mixin before ``forms.Form``.
    """

    def value_message(self, name: str, reason: str) -> str:
        """Return '<Label>: "<typed value>" <reason>.' for field ``name``.

        A secret field's message leaves out the value.
        """
        label = self[name].label
        if is_secret(self.fields[name]):
            return f"{label} {reason}."
        return f"{label}: {shown_value(self[name].data)} {reason}."

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
        label = self[name].label
        if error.code == "required":
            return ValidationError(f"{label} is required.", code=error.code)
        reason = _reason(field, error)
        if reason is None:
            return error
        if is_secret(field):
            if error.code not in ("max_length", "min_length"):
                reason = "is invalid"
            return ValidationError(f"{label} {reason}.", code=error.code)
        value = self._typed_value(name, error)
        return ValidationError(
            f"{label}: {shown_value(value)} {reason}.", code=error.code
        )

    def _typed_value(self, name: str, error: ValidationError):
        """Return the input that failed, as typed.

        The error's own ``value`` parameter is the cleaned value for limits
        (a Decimal prints 1e9 as 1E+9), so it is used only for a multiple
        choice, where it names the one rejected item of the list.
        """
        data = self[name].data
        params = error.params or {}
        if isinstance(data, list | tuple):
            for key in ("value", "pk"):
                if key in params:
                    return params[key]
        return data
