"""Forms of the commission pages."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms

# Digits with an optional sign and decimal point: no exponent, no grouping.
PLAIN_NUMBER = re.compile(r"[-+]?[0-9]+(\.[0-9]*)?|[-+]?\.[0-9]+")


class PlainDecimalField(forms.DecimalField):
    """A number typed as plain digits, such as 1250.00 or -75.50.

    DecimalField alone takes "1e3" as 1,000.00, and a typo in an exponent
    is an easy way to pay a thousand times too much. ``example`` shows the
    expected form in the error, which also names the value.
    """

    def __init__(self, *args, example: str = "1250.00 or -75.50", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.example = example

    def to_python(self, value):
        if value in self.empty_values:
            return None
        text = str(value).strip()
        if not PLAIN_NUMBER.fullmatch(text):
            raise forms.ValidationError(
                f"Enter a number in plain digits, such as {self.example}, not "
                "%(value)r.",
                code="invalid",
                params={"value": text},
            )
        return super().to_python(text)


class ManualAdjustmentForm(forms.Form):
    amount = PlainDecimalField(
        max_digits=18,
        decimal_places=2,
        help_text="In the statement's currency; negative to take money back.",
    )
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Shown to the rep on the statement line.",
    )

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("Enter an amount other than 0.00.")
        return amount
