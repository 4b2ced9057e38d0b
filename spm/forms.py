import zoneinfo

from django import forms

from spm.models import Membership, Organization, Team

TIME_ZONES = sorted(zoneinfo.available_timezones())


class OrganizationSettingsForm(forms.ModelForm):
    time_zone = forms.ChoiceField(choices=[(tz, tz) for tz in TIME_ZONES])

    class Meta:
        model = Organization
        fields = ["name", "time_zone", "currency", "fiscal_year_start_month"]
        help_texts = {
            "currency": "ISO 4217 code, for example USD or EUR.",
            "fiscal_year_start_month": "1 for January, 2 for February, and so on.",
        }

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise forms.ValidationError(
                f"“{currency}” is not a currency code: use the three letters of its "
                "ISO 4217 code, like USD."
            )
        return currency


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["display_name", "role", "reports_to", "team", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reports_to"].queryset = Membership.objects.exclude(
            pk=self.instance.pk
        ).filter(role__in=[Membership.Role.MANAGER, Membership.Role.ADMIN])
        self.fields["team"].queryset = Team.objects.all()


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254)
