from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from coaching.catalog import METRICS
from coaching.models import AlertStatus, NoteKind, Rule, Severity
from coaching.services import RULE_FIELDS
from spm.models import Membership, Team

NOTE_MAX_CHARS = 5000
WINDOW_DAYS_MAX = 366


class RuleForm(forms.ModelForm):
    """A rule's settings. A manager's rules are always scoped to their own team."""

    # The model's bounds, with messages that show the value typed.
    window_days = forms.IntegerField(
        label="N",
        required=False,
        min_value=1,
        max_value=WINDOW_DAYS_MAX,
        error_messages={
            "min_value": "N must be a whole number of days from 1 to "
            f"{WINDOW_DAYS_MAX}, not %(value)s.",
            "max_value": "N must be a whole number of days from 1 to "
            f"{WINDOW_DAYS_MAX}, not %(value)s.",
        },
        help_text="N for the last N days or business days.",
    )

    class Meta:
        model = Rule
        fields = list(RULE_FIELDS)
        labels = {
            "threshold_value": "Threshold value or multiplier",
            "window": "Look-back window",
            "window_days": "N",
            "parameter": "Extra parameter",
            "team": "Scope",
            "is_active": "Active",
        }

    def __init__(self, *args, viewer: Membership, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        team_field = self.fields["team"]
        if viewer.is_admin:
            team_field.queryset = Team.objects.all()
            team_field.empty_label = "The whole organisation"
        else:
            team_field.queryset = Team.objects.filter(pk=viewer.team_id)
            team_field.required = True
            team_field.empty_label = None
            team_field.help_text = "Managers set rules for their own team."
        notes = [
            f"{spec.label}: {spec.parameter}"
            for spec in METRICS.values()
            if spec.parameter
        ]
        self.fields["parameter"].help_text = " ".join(notes)

    def _update_errors(self, errors) -> None:
        """Add the model's errors, except on fields whose own check failed.

        Such a field keeps the rule's earlier value (None for a new rule), so
        the model's checks would report it a second time as missing.
        """
        failed = set(self.errors)
        if hasattr(errors, "error_dict"):
            remaining = {
                field: messages
                for field, messages in errors.error_dict.items()
                if field not in failed
            }
            if not remaining:
                return
            errors = ValidationError(remaining)
        super()._update_errors(errors)


class InboxFilterForm(forms.Form):
    """The inbox tab and filters. Every field is optional."""

    status = forms.ChoiceField(choices=AlertStatus.choices, required=False)
    rep = forms.ChoiceField(required=False)
    rule = forms.ChoiceField(required=False)
    severity = forms.ChoiceField(
        choices=[("", "Any severity"), *Severity.choices], required=False
    )

    def __init__(self, *args, reps: list[Membership], rules: list[Rule], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rep"].choices = [("", "Any rep")] + [
            (str(rep.public_id), rep.display_name) for rep in reps
        ]
        self.fields["rule"].choices = [("", "Any rule")] + [
            (str(rule.public_id), rule.name) for rule in rules
        ]


class AlertNoteForm(forms.Form):
    kind = forms.ChoiceField(choices=NoteKind.choices, initial=NoteKind.NOTE)
    body = forms.CharField(
        label="Text",
        max_length=NOTE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Notes are for managers and admins. The rep can read logged "
        "coaching conversations when the organisation lets reps see their alerts.",
    )
