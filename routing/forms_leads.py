"""The form that gives a lead to a rep by hand."""

from __future__ import annotations

from django import forms

from routing.reassignment import assignable_members
from spm.models import Membership


class LeadAssignForm(forms.Form):
    """The rep who gets the lead, the owner the manager saw, and a reason.

    ``expected_owner`` is the public id of the owner shown on the page, or
    empty for a queued lead, so a change made meanwhile by someone else is
    noticed instead of overwritten.
    """

    member = forms.ModelChoiceField(
        queryset=Membership.objects.none(),
        to_field_name="public_id",
        label="Rep",
        error_messages={
            "required": "Choose the rep who gets the lead.",
            "invalid_choice": (
                "%(value)s is not a member you can give leads to. "
                "Choose one from the list."
            ),
        },
    )
    expected_owner = forms.UUIDField(required=False, widget=forms.HiddenInput)
    reason = forms.CharField(
        max_length=255,
        required=False,
        help_text="Why the lead moves, for the audit log and the lead's history.",
    )
    from_queue = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, viewer: Membership, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = assignable_members(viewer)

    def error_text(self) -> str:
        """Return every error as one sentence per field, naming the field."""
        parts = []
        for name, errors in self.errors.items():
            label = self.fields[name].label if name in self.fields else "Form"
            parts.append(f"{label or name.capitalize()}: {' '.join(errors)}")
        return " ".join(parts)
