"""Forms of the notification settings: channels per event type, and quiet hours."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from functools import cache

from django import forms

from notifications.catalog import CHAT, DIGEST, EMAIL, IN_APP, Urgency
from notifications.selectors import ChannelSetting
from spm.form_errors import ValueErrorMessagesMixin

OFF = "off"


def _field_name(key: str, part: str) -> str:
    return f"{key.replace('.', '-')}-{part}"


def _email_choice(channels: frozenset) -> str:
    if EMAIL in channels:
        return EMAIL
    if DIGEST in channels:
        return DIGEST
    return OFF


@dataclass
class ChannelRow:
    setting: ChannelSetting
    in_app: forms.BoundField
    email: forms.BoundField
    chat: forms.BoundField

    @property
    def html_id(self) -> str:
        return "type-" + self.setting.event_type.key.replace(".", "-")


class ChannelsForm(ValueErrorMessagesMixin, forms.Form):
    """An in-app checkbox, an email choice and a chat checkbox for each event type.

    The daily digest is offered for low-urgency types only, because it
    holds only low-urgency events. Chat posts to the Slack or Teams
    connection of the member's team, or the organisation's.
    """

    def __init__(self, *args, settings: list[ChannelSetting], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings
        for setting in settings:
            event_type = setting.event_type
            choices = [(OFF, "Off"), (EMAIL, "Immediately")]
            if event_type.urgency == Urgency.LOW or DIGEST in setting.channels:
                choices.append((DIGEST, "Daily digest"))
            self.fields[_field_name(event_type.key, "in_app")] = forms.BooleanField(
                required=False,
                initial=IN_APP in setting.channels,
                widget=forms.CheckboxInput(
                    attrs={"aria-label": f"{event_type.label}: in-app"}
                ),
            )
            self.fields[_field_name(event_type.key, "chat")] = forms.BooleanField(
                required=False,
                initial=CHAT in setting.channels,
                widget=forms.CheckboxInput(
                    attrs={"aria-label": f"{event_type.label}: chat"}
                ),
            )
            self.fields[_field_name(event_type.key, "email")] = forms.ChoiceField(
                label=f"{event_type.label}, email",
                choices=choices,
                initial=_email_choice(setting.channels),
                widget=forms.Select(attrs={"aria-label": f"{event_type.label}: email"}),
            )

    @property
    def rows(self) -> list[ChannelRow]:
        return [
            ChannelRow(
                setting,
                self[_field_name(setting.event_type.key, "in_app")],
                self[_field_name(setting.event_type.key, "email")],
                self[_field_name(setting.event_type.key, "chat")],
            )
            for setting in self.settings
        ]

    def channels_by_type(self) -> dict[str, set[str]]:
        """Return the chosen channels of each event type. Call after is_valid()."""
        chosen = {}
        for setting in self.settings:
            key = setting.event_type.key
            channels = set()
            if self.cleaned_data[_field_name(key, "in_app")]:
                channels.add(IN_APP)
            email = self.cleaned_data[_field_name(key, "email")]
            if email != OFF:
                channels.add(email)
            if self.cleaned_data[_field_name(key, "chat")]:
                channels.add(CHAT)
            chosen[key] = channels
        return chosen


@cache
def time_zone_choices() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


class ClockTimeField(forms.TimeField):
    """A time of day as HH:MM. The error for an invalid time names the value."""

    input_formats = ["%H:%M", "%H:%M:%S"]

    def to_python(self, value):
        try:
            return super().to_python(value)
        except forms.ValidationError:
            raise forms.ValidationError(
                f"Time {value!r} is not a time of day as HH:MM, such as 22:00."
            ) from None


class PreferencesForm(ChannelsForm):
    """A member's channels per event type, plus time zone and quiet hours."""

    time_zone = forms.ChoiceField(required=False)
    quiet_start = ClockTimeField(
        required=False,
        label="Quiet hours from",
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    quiet_end = ClockTimeField(
        required=False,
        label="Quiet hours until",
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text=(
            "Email waits until the end of quiet hours; in-app notifications "
            "arrive at once. Hours may cross midnight, such as 22:00 to 07:00."
        ),
    )

    def __init__(self, *args, organization_time_zone: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [
            ("", f"The organisation's ({organization_time_zone})"),
            *[(name, name) for name in time_zone_choices()],
        ]

    def clean(self):
        data = super().clean()
        if self.has_error("quiet_start") or self.has_error("quiet_end"):
            # An invalid time is reported on its own field only.
            return data
        start, end = data.get("quiet_start"), data.get("quiet_end")
        if (start is None) != (end is None):
            raise forms.ValidationError(
                "Set both the start and the end of quiet hours, or neither."
            )
        if start is not None and start == end:
            raise forms.ValidationError(
                "Quiet hours must not start and end at the same time."
            )
        return data
