"""The organisation's quota periods: month, fiscal quarter or fiscal year.

Quotas are set per ``Organization.quota_period``. Each period is a half-open
``DateRange`` labelled by goals.calendar with the organisation's fiscal year
start month and naming convention ("March 2024", "FY2025 Q1", "FY2025").
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from goals import calendar
from goals.calendar import DateRange
from spm.models import Organization

ONE_DAY = dt.timedelta(days=1)
# The earliest and latest dates a period may contain. Outside them a date is
# a typing mistake, and the neighbouring periods could not be represented.
MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(2999, 12, 31)


def organization_today(organization: Organization) -> dt.date:
    """Return today's date in the organisation's time zone."""
    return timezone.now().astimezone(organization.zoneinfo).date()


def quota_period_containing(organization: Organization, day: dt.date) -> DateRange:
    """Return the organisation's quota period that contains ``day``."""
    start_month = organization.fiscal_year_start_month
    named_by = organization.fiscal_year_named_by
    if organization.quota_period == "month":
        return calendar.month_range(day)
    if organization.quota_period == "year":
        return calendar.fiscal_year_range(day, start_month, named_by)
    return calendar.fiscal_quarter_range(day, start_month, named_by)


def quota_period_starting(organization: Organization, day: dt.date) -> DateRange | None:
    """Return the quota period that starts on ``day``, or None if none does."""
    period = quota_period_containing(organization, day)
    return period if period.start == day else None


def previous_quota_period(organization: Organization, period: DateRange) -> DateRange:
    return quota_period_containing(organization, period.start - ONE_DAY)


def next_quota_period(organization: Organization, period: DateRange) -> DateRange:
    return quota_period_containing(organization, period.end)


def in_date_range(day: dt.date) -> bool:
    return MIN_DATE <= day <= MAX_DATE
