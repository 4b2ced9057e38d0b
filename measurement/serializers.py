"""Input and output shapes of the metrics API. They hold no logic."""

from __future__ import annotations

from rest_framework import serializers

from measurement.periods import date_range_errors
from measurement.selectors import ACTIVITY_TYPES

DEAL_ORDERINGS = ["close_date", "amount", "created_on"]
ORDERING_CHOICES = DEAL_ORDERINGS + [f"-{field}" for field in DEAL_ORDERINGS]


class RepMetricsQuerySerializer(serializers.Serializer):
    start = serializers.DateField(help_text="First day of the period (YYYY-MM-DD).")
    end = serializers.DateField(
        help_text="First day after the period (YYYY-MM-DD): the end is excluded."
    )
    team = serializers.UUIDField(
        required=False, help_text="Only members of this team (its public id)."
    )

    def validate(self, attrs: dict) -> dict:
        errors = date_range_errors(attrs["start"], attrs["end"])
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class ActivityCountsSerializer(serializers.Serializer):
    """Activities in the period by type; every type is present."""

    def get_fields(self) -> dict:
        return {kind: serializers.IntegerField() for kind in ACTIVITY_TYPES}


class StageRateSerializer(serializers.Serializer):
    stage = serializers.CharField()
    entered = serializers.IntegerField(
        help_text="Deals whose first entry into the stage falls in the period."
    )
    progressed = serializers.IntegerField(
        help_text=(
            "Of those, deals that later entered a won stage or a later open "
            "stage of the pipeline."
        )
    )
    rate = serializers.DecimalField(
        max_digits=4,
        decimal_places=1,
        coerce_to_string=False,
        allow_null=True,
        help_text="progressed / entered in percent, to 0.1; null when none entered.",
    )


class StageConversionSerializer(serializers.Serializer):
    pipeline = serializers.CharField(
        allow_null=True,
        help_text=(
            "The pipeline measured, the same for every rep of the response; "
            "null when no pipeline has an open stage."
        ),
    )
    stages = StageRateSerializer(
        many=True, help_text="The pipeline's open stages, in stage order."
    )


class RepMetricsSerializer(serializers.Serializer):
    member = serializers.UUIDField(source="member.public_id")
    name = serializers.CharField(source="member.display_name")
    email = serializers.CharField()
    team = serializers.CharField(source="member.team.name", allow_null=True)
    won = serializers.IntegerField(source="card.won")
    lost = serializers.IntegerField(source="card.lost")
    bookings = serializers.DecimalField(
        source="card.bookings", max_digits=20, decimal_places=2
    )
    credited_units = serializers.DecimalField(
        source="card.credited_units", max_digits=20, decimal_places=2
    )
    win_rate = serializers.DecimalField(
        source="card.win_rate",
        max_digits=4,
        decimal_places=1,
        coerce_to_string=False,
        allow_null=True,
        help_text="won / (won + lost) in percent, to 0.1; null with no closed deals.",
    )
    avg_cycle_days = serializers.DecimalField(
        source="card.avg_cycle_days",
        max_digits=12,
        decimal_places=1,
        coerce_to_string=False,
        allow_null=True,
        help_text="Mean days from creation to close of won deals; null when none.",
    )
    open_deals = serializers.IntegerField(source="card.open_deals")
    pipeline_value = serializers.DecimalField(
        source="card.pipeline_value", max_digits=20, decimal_places=2
    )
    weighted_pipeline = serializers.DecimalField(
        source="card.weighted_pipeline", max_digits=20, decimal_places=2
    )
    activities = ActivityCountsSerializer(source="card.activities")
    quota = serializers.DecimalField(
        source="progress.quota.amount",
        max_digits=20,
        decimal_places=2,
        allow_null=True,
        help_text="Bookings quota for the period, prorated; null with no quota.",
    )
    attainment = serializers.DecimalField(
        source="progress.attainment",
        max_digits=None,
        decimal_places=1,
        coerce_to_string=False,
        allow_null=True,
        help_text="bookings / quota in percent, to 0.1; null with no quota.",
    )
    pace = serializers.DecimalField(
        source="progress.pace",
        max_digits=4,
        decimal_places=1,
        coerce_to_string=False,
        allow_null=True,
        help_text=(
            "Percent of the period's days elapsed by today in the organisation's "
            "time zone, to 0.1: 100 for a past period, 0 for a future one."
        ),
    )
    coverage = serializers.DecimalField(
        source="progress.coverage.ratio",
        max_digits=None,
        decimal_places=2,
        coerce_to_string=False,
        allow_null=True,
        help_text=(
            "Qualified open pipeline closing in the rest of the period over the "
            "quota still to go, as a multiple to 0.01; null with no quota or "
            "when the quota is reached (see coverage_status)."
        ),
    )
    coverage_target = serializers.DecimalField(
        source="progress.coverage_target.ratio",
        max_digits=None,
        decimal_places=2,
        coerce_to_string=False,
        allow_null=True,
        help_text="Coverage the rep needs, as a multiple; null with no target.",
    )
    coverage_status = serializers.ChoiceField(
        source="progress.coverage_status",
        choices=["met", "above", "below", "no target", "no quota"],
        allow_null=True,
        help_text="Coverage compared with the target.",
    )
    forecast = serializers.DecimalField(
        source="progress.forecast",
        max_digits=20,
        decimal_places=2,
        allow_null=True,
        help_text=(
            "Bookings plus the open in-period pipeline weighted by stage probability."
        ),
    )
    stage_conversion = StageConversionSerializer(allow_null=True)


class DealListQuerySerializer(serializers.Serializer):
    ordering = serializers.ChoiceField(
        choices=ORDERING_CHOICES,
        required=False,
        default="close_date",
        help_text="Sort field, '-' for descending. Ties are broken by deal id.",
        error_messages={
            "invalid_choice": (
                '"{input}" is not a valid ordering. Use one of: '
                + ", ".join(ORDERING_CHOICES)
                + "."
            )
        },
    )


class DealSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    external_source = serializers.CharField()
    external_id = serializers.CharField()
    name = serializers.CharField()
    owner = serializers.UUIDField(source="owner.public_id", allow_null=True)
    owner_name = serializers.CharField(source="owner.display_name", allow_null=True)
    pipeline = serializers.CharField(source="pipeline.name")
    stage = serializers.CharField(source="stage.name")
    status = serializers.ChoiceField(
        source="stage.status", choices=["open", "won", "lost"]
    )
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    currency = serializers.CharField()
    created_on = serializers.DateField(allow_null=True)
    close_date = serializers.DateField(allow_null=True)
    archived_at = serializers.DateTimeField(allow_null=True)


class DealPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = DealSerializer(many=True)
