"""Forms of outbound delivery: webhook endpoints, chat connections, address setting."""

from __future__ import annotations

from django import forms

from notifications.addresses import UnsafeURL, url_check
from notifications.catalog import event_type_choices
from notifications.models import ChatConnection
from spm.models import Team

URL_HELP = (
    "An https:// address. Addresses inside private networks are rejected "
    "unless private addresses are allowed for self-hosted installs."
)


def _checked_url(value: str, allow_private: bool) -> str:
    try:
        return url_check(value, allow_private=allow_private).url
    except UnsafeURL as error:
        raise forms.ValidationError(str(error)) from None


class WebhookEndpointForm(forms.Form):
    url = forms.CharField(label="URL", max_length=500, help_text=URL_HELP)
    description = forms.CharField(max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        label="Events",
        choices=event_type_choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="The endpoint gets a POST for each event of these types.",
    )
    is_active = forms.BooleanField(
        label="Active",
        required=False,
        initial=True,
        help_text="Enabling a disabled endpoint clears its failure record.",
    )

    def __init__(self, *args, allow_private: bool, editing: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.allow_private = allow_private
        if not editing:
            del self.fields["is_active"]

    def clean_url(self) -> str:
        return _checked_url(self.cleaned_data["url"], self.allow_private)


class ChatConnectionForm(forms.Form):
    kind = forms.ChoiceField(label="Service", choices=ChatConnection.Kind.choices)
    team = forms.ModelChoiceField(
        queryset=Team.objects.none(),
        required=False,
        empty_label="Everyone (organisation-wide)",
        help_text=(
            "Members of this team get chat here. Members of a team with no "
            "connection of its own use the organisation-wide ones."
        ),
    )
    url = forms.CharField(
        label="Incoming-webhook URL",
        max_length=500,
        widget=forms.PasswordInput(render_value=False),
        help_text=URL_HELP,
    )
    is_active = forms.BooleanField(
        label="Active",
        required=False,
        initial=True,
        help_text="Enabling a disabled connection clears its failure record.",
    )

    def __init__(self, *args, allow_private: bool, editing: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.allow_private = allow_private
        self.fields["team"].queryset = Team.objects.order_by("name")
        if editing:
            self.fields["url"].required = False
            self.fields["url"].help_text = "Leave empty to keep the stored URL."
        else:
            del self.fields["is_active"]

    def clean_url(self) -> str:
        value = self.cleaned_data["url"]
        if not value:
            return ""
        return _checked_url(value, self.allow_private)


class OutboundSettingsForm(forms.Form):
    allow_private_addresses = forms.BooleanField(
        label="Allow private addresses for self-hosted installs",
        required=False,
        help_text=(
            "Lets webhook and chat URLs point at private, loopback and other "
            "non-public addresses. Turn it on only when Attain runs inside your "
            "own network."
        ),
    )
