import zoneinfo

import pycountry
from django import forms

from spm.form_errors import ValueErrorMessagesMixin
from spm.models import ApiKey, Membership, Organization, Team, User

TIME_ZONES = sorted(zoneinfo.available_timezones())


class OrganizationSettingsForm(ValueErrorMessagesMixin, forms.ModelForm):
    time_zone = forms.ChoiceField(choices=[(tz, tz) for tz in TIME_ZONES])

    class Meta:
        model = Organization
        fields = [
            "name",
            "time_zone",
            "currency",
            "fiscal_year_start_month",
            "fiscal_year_named_by",
            "quota_period",
            "coverage_target_fixed",
            "coverage_min_closed_deals",
            "reps_see_own_alerts",
            "require_mfa_for_admins",
        ]
        help_texts = {
            "currency": "ISO 4217 code, for example USD or EUR.",
            "fiscal_year_start_month": "1 for January, 2 for February, and so on.",
            "quota_period": "The length of the period each quota is set for.",
        }

    # Settings that a POST without them leaves as they are, so a client that
    # posts only the original fields does not reset the newer ones.
    KEPT_WHEN_MISSING = (
        "fiscal_year_named_by",
        "quota_period",
        "coverage_target_fixed",
        "coverage_min_closed_deals",
    )

    def __init__(self, data=None, *args, **kwargs):
        data = _keep_missing(data, kwargs.get("instance"), self)
        super().__init__(data, *args, **kwargs)

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].strip().upper()
        # pycountry contains the current ISO 4217 codes (from Debian's
        # iso-codes), the list that compensation.models.validate_currency
        # also checks plan currencies against.
        if pycountry.currencies.get(alpha_3=currency) is None:
            raise forms.ValidationError(
                self.value_message(
                    "currency",
                    "is not a currency code (use an ISO 4217 code, like USD)",
                )
            )
        return currency


class MembershipForm(ValueErrorMessagesMixin, forms.ModelForm):
    class Meta:
        model = Membership
        fields = [
            "display_name",
            "role",
            "reports_to",
            "team",
            "is_active",
            "start_date",
            "end_date",
            "employee_id",
        ]
        widgets = {
            "start_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "end_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }

    # Dates that a POST without them leaves as they are; a blank one clears.
    KEPT_WHEN_MISSING = ("start_date", "end_date", "employee_id")

    def __init__(self, data=None, *args, **kwargs):
        data = _keep_missing(data, kwargs.get("instance"), self)
        super().__init__(data, *args, **kwargs)
        self.fields["reports_to"].queryset = Membership.objects.exclude(
            pk=self.instance.pk
        ).filter(role__in=[Membership.Role.MANAGER, Membership.Role.ADMIN])
        self.fields["team"].queryset = Team.objects.all()

    def clean_employee_id(self) -> str:
        # The database constraint covers this too, but the form leaves out
        # the organisation field, so Django does not check the constraint.
        employee_id = self.cleaned_data["employee_id"]
        holder = (
            Membership.objects.filter(employee_id=employee_id)
            .exclude(pk=self.instance.pk)
            .first()
            if employee_id
            else None
        )
        if holder is not None:
            raise forms.ValidationError(
                f"{holder.display_name} already has employee ID {employee_id}. "
                "Each member needs their own."
            )
        return employee_id

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


def _keep_missing(data, instance, form):
    """Return ``data`` with the instance's value for each field it lacks.

    Only the fields in ``form.KEPT_WHEN_MISSING`` are filled in.
    """
    if data is None or instance is None:
        return data
    data = data.copy()
    for name in form.KEPT_WHEN_MISSING:
        if name not in data:
            value = getattr(instance, name)
            if value is None:
                data[name] = ""
            elif hasattr(value, "isoformat"):
                data[name] = value.isoformat()
            else:
                data[name] = str(value)
    return data


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254)


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=ApiKey._meta.get_field("name").max_length,
        help_text="What the key is for, for example “BI export”.",
    )


class AuditLogFilterForm(ValueErrorMessagesMixin, forms.Form):
    """Filters of the audit log page. Every field is optional."""

    action = forms.ChoiceField(required=False)
    actor = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, empty_label="Anyone"
    )
    start = forms.DateField(
        label="From",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    end = forms.DateField(
        label="To",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Dates in the organisation's time zone, both included.",
    )

    def __init__(self, *args, actions: list[str], actors, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "Any action")] + [
            (action, action) for action in actions
        ]
        self.fields["actor"].queryset = actors

    def clean(self) -> dict:
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start > end:
            raise forms.ValidationError(
                f"The start date {start.isoformat()} is after the end date "
                f"{end.isoformat()}: swap them."
            )
        return cleaned
