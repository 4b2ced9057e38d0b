"""Forms of disputes, the what-if estimator and the crediting policy."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from compensation.models import CreditingPolicy, Dispute
from compensation.services_disputes import MAX_MESSAGE_LENGTH


class DisputeRaiseForm(forms.Form):
    line = forms.UUIDField(widget=forms.HiddenInput)
    message = forms.CharField(
        max_length=MAX_MESSAGE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What you think is wrong with this line, and what you expected.",
    )


class DisputeReplyForm(forms.Form):
    message = forms.CharField(
        max_length=MAX_MESSAGE_LENGTH, widget=forms.Textarea(attrs={"rows": 3})
    )


class DisputeResolveForm(forms.Form):
    root_cause = forms.ChoiceField(choices=Dispute.RootCause.choices)
    resolution = forms.CharField(
        max_length=MAX_MESSAGE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown to the rep as the last message of the thread.",
    )


class CreditingPolicyForm(forms.Form):
    reassigned_lead_rule = forms.ChoiceField(
        label="Deals from a reassigned lead are credited to",
        choices=CreditingPolicy.Rule.choices,
    )
    first_owner_percent = forms.DecimalField(
        label="First owner's share, in percent",
        max_digits=7,
        decimal_places=4,
        min_value=Decimal(0),
        max_value=Decimal(100),
        initial=Decimal(50),
        help_text="Used by the share rule only; the last owner gets the rest.",
    )
