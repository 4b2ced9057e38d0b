"""Forms of the goals pages. They parse input, and goals.services has the rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms

from activity.models import Activity
from goals.models import ActivityBenchmark, BenchmarkUnit, QuotaMetric, TimeOff
from goals.periods import MAX_DATE, MIN_DATE, in_date_range
from goals.values import parse_ramp, ramp_text
from spm.form_errors import ValueErrorMessagesMixin
from spm.models import Membership, Team

EVERYONE = "everyone"


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _check_range(form: ValueErrorMessagesMixin, name: str) -> dt.date | None:
    """Return the cleaned date of field ``name``, or raise when it is out of range."""
    day = form.cleaned_data.get(name)
    if day is not None and not in_date_range(day):
        reason = (
            f"is out of range (use a date from {MIN_DATE.isoformat()} to "
            f"{MAX_DATE.isoformat()})"
        )
        raise forms.ValidationError(form.value_message(name, reason))
    return day


class QuotaPeriodForm(ValueErrorMessagesMixin, forms.Form):
    """The grid's period (any date inside it) and metric, from the query string."""

    on = forms.DateField(
        label="Period containing",
        required=False,
        widget=_date_input(),
        help_text="Any date in the period.",
    )
    metric = forms.ChoiceField(choices=QuotaMetric.choices, required=False)

    def clean_on(self) -> dt.date | None:
        return _check_range(self, "on")


class QuotaImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="Columns: email or member or team, period_start, metric, amount, "
        "currency. Export the grid to get a file in this format.",
    )


def _scope_choices() -> list[tuple[str, str]]:
    choices = [(EVERYONE, "Everyone")]
    for role in (Membership.Role.REP, Membership.Role.MANAGER):
        choices.append((f"role:{role.value}", f"Role: {role.label.lower()}s"))
    for team in Team.objects.order_by("name"):
        choices.append((f"team:{team.public_id}", f"Team: {team.name}"))
    return choices


def scope_value(benchmark: ActivityBenchmark) -> str:
    if benchmark.team_id:
        return f"team:{benchmark.team.public_id}"
    if benchmark.role:
        return f"role:{benchmark.role}"
    return EVERYONE


class BenchmarkForm(ValueErrorMessagesMixin, forms.Form):
    activity_type = forms.ChoiceField(choices=Activity.Type.choices)
    target = forms.DecimalField(
        min_value=Decimal("0.01"),
        max_digits=8,
        decimal_places=2,
        help_text="Activities expected of one member.",
    )
    unit = forms.ChoiceField(choices=BenchmarkUnit.choices, label="Per")
    applies_to = forms.ChoiceField(
        help_text="A team's benchmark wins over a role's, which wins over everyone's."
    )
    ramp = forms.CharField(
        required=False,
        label="Ramp for new hires",
        help_text="Percent of the target in each month after the start date, "
        "for example “50, 75”: 50% in month 1, 75% in month 2, then 100%.",
    )

    def __init__(self, *args, instance: ActivityBenchmark | None = None, **kwargs):
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {
                    "activity_type": instance.activity_type,
                    "target": instance.target,
                    "unit": instance.unit,
                    "applies_to": scope_value(instance),
                    "ramp": ramp_text(instance.ramp),
                },
            )
        super().__init__(*args, **kwargs)
        self.fields["applies_to"].choices = _scope_choices()

    def clean_ramp(self) -> list[int]:
        try:
            return parse_ramp(self.cleaned_data.get("ramp", ""))
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None

    def clean_applies_to(self) -> tuple[str, Team | None]:
        """Return the (role, team) that the choice names."""
        value = self.cleaned_data["applies_to"]
        if value.startswith("role:"):
            return value.removeprefix("role:"), None
        if value.startswith("team:"):
            team = Team.objects.filter(public_id=value.removeprefix("team:")).first()
            if team is None:
                raise forms.ValidationError("The team no longer exists.")
            return "", team
        return "", None


class TimeOffForm(ValueErrorMessagesMixin, forms.Form):
    member = forms.ModelChoiceField(
        queryset=Membership.objects.none(), to_field_name="public_id"
    )
    kind = forms.ChoiceField(choices=TimeOff.Kind.choices)
    start_date = forms.DateField(label="First day", widget=_date_input())
    end_date = forms.DateField(
        label="Last day", widget=_date_input(), help_text="Included."
    )
    note = forms.CharField(
        required=False, max_length=TimeOff._meta.get_field("note").max_length
    )

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = members

    def clean_start_date(self) -> dt.date:
        return _check_range(self, "start_date")

    def clean_end_date(self) -> dt.date:
        return _check_range(self, "end_date")

    def clean(self) -> dict:
        cleaned = super().clean()
        start, end = cleaned.get("start_date"), cleaned.get("end_date")
        if start and end and end < start:
            self.add_error(
                "end_date",
                f"The last day {end.isoformat()} is before the first day "
                f"{start.isoformat()}.",
            )
        return cleaned


class TimeOffFilterForm(ValueErrorMessagesMixin, forms.Form):
    member = forms.ModelChoiceField(
        queryset=Membership.objects.none(),
        to_field_name="public_id",
        required=False,
        empty_label="Everyone",
    )

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = members
