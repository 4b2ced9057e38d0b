"""Lead conversion by predictive score band, per rep, for the team dashboard.

A lead counts for the rep who owns it and for the period in which it was
assigned to them. It is converted when its status is "converted" or it has
a conversion time, as the lead model's training labels it. The band is the
lead's predictive score (``LeadQualification.predicted_score``, a
percentage): 0-24, 25-49, 50-74 and 75-100, or "not scored" when no model
scored it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Case, CharField, Count, Q, Value, When

from activity.models import Lead
from measurement.selectors import MetricScope

TENTH = Decimal("0.1")
NOT_SCORED = "not scored"
# Band label and its lowest score. Each band runs up to the next one's lowest.
BANDS = (("75-100", 75), ("50-74", 50), ("25-49", 25), ("0-24", 0))
BAND_ORDER = tuple(label for label, _low in reversed(BANDS)) + (NOT_SCORED,)


@dataclass
class BandCell:
    leads: int = 0
    converted: int = 0

    @property
    def rate(self) -> Decimal | None:
        """Return converted / leads as a percentage to 0.1, or None for no leads."""
        if not self.leads:
            return None
        percent = Decimal(self.converted * 100) / self.leads
        return percent.quantize(TENTH, ROUND_HALF_UP)


@dataclass
class ConversionRow:
    member_id: int
    name: str
    cells: dict[str, BandCell] = field(default_factory=dict)

    def ordered_cells(self) -> list[BandCell]:
        return [self.cells.get(band, BandCell()) for band in BAND_ORDER]


def _band() -> Case:
    whens = [
        When(qualification__predicted_score__gte=low, then=Value(label))
        for label, low in BANDS
    ]
    return Case(*whens, default=Value(NOT_SCORED), output_field=CharField())


def conversion_by_band(
    scope: MetricScope, names: dict[int, str]
) -> list[ConversionRow]:
    """Return one row per rep with leads assigned in the scope's range. One query.

    ``names`` gives each member's display name, in the order of the rows.
    """
    converted = Q(status=Lead.Status.CONVERTED) | Q(converted_at__isnull=False)
    rows = (
        Lead.objects.filter(
            owner_id__in=scope.member_ids,
            assigned_at__gte=scope.start_at,
            assigned_at__lt=scope.end_at,
        )
        .values("owner_id", band=_band())
        .annotate(leads=Count("id"), converted=Count("id", filter=converted))
        .order_by()
    )
    cells: dict[int, dict[str, BandCell]] = defaultdict(dict)
    for row in rows:
        cells[row["owner_id"]][row["band"]] = BandCell(row["leads"], row["converted"])
    return [
        ConversionRow(member_id, name, cells[member_id])
        for member_id, name in names.items()
        if member_id in cells
    ]
