"""Forms of the commission pages."""

from __future__ import annotations

from decimal import Decimal

from django import forms


class ManualAdjustmentForm(forms.Form):
    amount = forms.DecimalField(
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
