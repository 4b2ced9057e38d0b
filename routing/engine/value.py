"""A lead's expected value, which the value-balanced pool method shares out.

Expected value = conversion probability x deal size. The probability is the
lead's predictive score (``LeadQualification.predicted_score``, a percentage)
and 100% when no model scored it. The deal size is the lead's own
``estimated_value`` when intake received one. Otherwise it is the typical
deal size of the lead's segment: the mean amount of the deals won over the
last 365 days with an account in the lead's company-size band. Without
such deals it is the mean of all deals won over those days, else zero.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from django.core.cache import cache
from django.db.models import Case, Count, IntegerField, Sum, Value, When
from django.utils import timezone

from activity.models import Deal, Lead
from spm.tenancy import get_current_organization

CENT = Decimal("0.01")
# Lower bounds of the company-size bands, in employees.
SIZE_BANDS = (0, 50, 250, 1000)
TRAILING_DAYS = 365
DEAL_SIZE_CACHE_SECONDS = 3600


def size_band(employees: int | None) -> int | None:
    """Return the index of the band that ``employees`` falls in, or None."""
    if employees is None:
        return None
    return max(index for index, low in enumerate(SIZE_BANDS) if employees >= low)


def _band_expression() -> Case:
    whens = [
        When(account__employees__gte=low, then=Value(index))
        for index, low in reversed(list(enumerate(SIZE_BANDS)))
    ]
    return Case(*whens, default=None, output_field=IntegerField())


def typical_deal_sizes(today: dt.date) -> dict[int | None, Decimal]:
    """Return the mean won amount per size band, and under None for all bands.

    One query, cached for an hour per organisation and day.
    """
    organization = get_current_organization()
    key = f"routing:typical-deal-sizes:{organization.pk}:{today.isoformat()}"
    sizes = cache.get(key)
    if sizes is not None:
        return sizes
    won = Deal.objects.filter(
        archived_at__isnull=True,
        stage__is_won=True,
        close_date__gt=today - dt.timedelta(days=TRAILING_DAYS),
        close_date__lte=today,
    )
    rows = (
        won.values(band=_band_expression())
        .annotate(total=Sum("amount"), count=Count("id"))
        .order_by()
    )
    sizes: dict[int | None, Decimal] = {}
    total, count = Decimal(0), 0
    for row in rows:
        total += row["total"]
        count += row["count"]
        if row["band"] is not None:
            sizes[row["band"]] = row["total"] / row["count"]
    if count:
        sizes[None] = total / count
    cache.set(key, sizes, DEAL_SIZE_CACHE_SECONDS)
    return sizes


def _probability(lead: Lead) -> Decimal:
    qualification = getattr(lead, "qualification", None)
    predicted = getattr(qualification, "predicted_score", None)
    if predicted is None:
        return Decimal(1)
    return Decimal(str(predicted)) / 100


def expected_value(lead: Lead, today: dt.date | None = None) -> Decimal:
    """Return the lead's expected value in the organisation's currency, to the cent."""
    if lead.estimated_value is not None:
        size = lead.estimated_value
    else:
        organization = get_current_organization()
        today = today or timezone.localdate(timezone.now(), organization.zoneinfo)
        sizes = typical_deal_sizes(today)
        band = size_band(lead.company_size)
        size = sizes.get(band, sizes.get(None, Decimal(0)))
    return (_probability(lead) * size).quantize(CENT, ROUND_HALF_UP)
