"""Input and output shapes of the lead API and the website form. No logic here."""

from __future__ import annotations

import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from activity.models import Lead

CUSTOM_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
MAX_CUSTOM_FIELDS = 50
MAX_CUSTOM_TEXT = 1000


def _text(max_length: int, help_text: str = "", **extra) -> serializers.CharField:
    return serializers.CharField(
        max_length=max_length,
        required=False,
        allow_blank=True,
        help_text=help_text,
        **extra,
    )


@extend_schema_field(
    {
        "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}],
        "nullable": True,
    }
)
class CustomValueField(serializers.Field):
    """A custom field's value: text, a number, true/false or null."""

    default_error_messages = {
        "invalid": "Use text, a number, true, false or null.",
        "too_long": f"Use at most {MAX_CUSTOM_TEXT} characters.",
        "null_character": "Null characters are not allowed.",
    }

    def to_internal_value(self, data):
        if data is None or isinstance(data, bool | int):
            return data
        if isinstance(data, float):
            if data != data or data in (float("inf"), float("-inf")):
                self.fail("invalid")
            return data
        if not isinstance(data, str):
            self.fail("invalid")
        if "\x00" in data:
            self.fail("null_character")
        if any("\ud800" <= ch <= "\udfff" for ch in data):
            self.fail("invalid")
        if len(data) > MAX_CUSTOM_TEXT:
            self.fail("too_long")
        return data

    def to_representation(self, value):
        return value


class LeadInputSerializer(serializers.Serializer):
    """A lead as a source sends it. ``email`` is the only required field."""

    email = serializers.CharField(max_length=254, help_text="Lowercased and validated.")
    first_name = _text(120)
    last_name = _text(120)
    phone = _text(40, "Trimmed; digits, spaces and + ( ) - . only.")
    company = _text(255)
    domain = _text(
        255,
        "Company domain or website. When missing, the email's domain is used "
        "unless it is a free-mail provider.",
    )
    country = _text(
        120, "ISO 3166 alpha-2 or alpha-3 code, or English name; stored as alpha-2."
    )
    region = _text(120, "Region or state.")
    industry = _text(120)
    company_size = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=2_147_483_647,
        help_text="Number of employees.",
    )
    estimated_value = serializers.DecimalField(
        max_digits=18,
        decimal_places=2,
        min_value=0,
        required=False,
        allow_null=True,
        help_text="Estimated deal size, in the organisation's currency.",
    )
    source = _text(120, "Where the lead came from, such as webinar or website.")
    custom = serializers.DictField(
        child=CustomValueField(),
        required=False,
        help_text=(
            f"Other fields by name (up to {MAX_CUSTOM_FIELDS}), for routing "
            "conditions on custom.<name>."
        ),
    )

    def validate_custom(self, value: dict) -> dict:
        if len(value) > MAX_CUSTOM_FIELDS:
            raise serializers.ValidationError(
                f"At most {MAX_CUSTOM_FIELDS} custom fields are allowed."
            )
        bad = [key for key in value if not CUSTOM_KEY.match(key)]
        if bad:
            raise serializers.ValidationError(
                f"Invalid custom field name {bad[0]!r}: use up to 64 letters, "
                "digits, _ . or -."
            )
        return value


class LeadSerializer(serializers.Serializer):
    """A lead with where routing has put it."""

    id = serializers.UUIDField(source="public_id")
    email = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    phone = serializers.CharField()
    company = serializers.CharField()
    domain = serializers.CharField()
    country = serializers.CharField()
    region = serializers.CharField()
    industry = serializers.CharField()
    company_size = serializers.IntegerField(allow_null=True)
    estimated_value = serializers.DecimalField(
        max_digits=18, decimal_places=2, allow_null=True
    )
    source = serializers.CharField()
    custom = serializers.DictField(child=CustomValueField())
    received_at = serializers.DateTimeField(allow_null=True)
    routing_status = serializers.ChoiceField(
        choices=Lead.RoutingStatus.choices,
        help_text=(
            "pending until routed, then assigned (to owner) or queued (the "
            "fallback queue); empty for leads that did not come through intake."
        ),
    )
    owner = serializers.UUIDField(source="owner.public_id", allow_null=True)
    owner_name = serializers.CharField(source="owner.display_name", allow_null=True)
    assigned_at = serializers.DateTimeField(allow_null=True)


class LeadPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = LeadSerializer(many=True)


class LeadListQuerySerializer(serializers.Serializer):
    routing_status = serializers.ChoiceField(
        choices=[value for value in Lead.RoutingStatus.values if value],
        required=False,
        help_text="Only leads in this routing status.",
    )


class LeadIntakeSerializer(LeadSerializer):
    """The response to a lead posted to intake."""

    duplicate_of = serializers.UUIDField(
        required=False,
        help_text=(
            "Present when the lead matched an open lead by email or phone: the "
            "submission was merged into that lead, whose id this is, and it was "
            "not routed again."
        ),
    )
