"""The reporting period of a page: parsed from the query string, or a default.

A period is a half-open range ``[start, end)`` of calendar dates in the
organisation's time zone. Month, quarter and fiscal year periods are named by
any date inside them (``?kind=quarter&on=2024-03-15``). A custom period gives
``start`` and ``end`` with ``end`` excluded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django import forms
from django.db.models import Max
from django.http import QueryDict
from django.utils import timezone

from activity.models import Deal
from goals import calendar
from spm.form_errors import ValueErrorMessagesMixin
from spm.models import Organization

# The pages list every month of a period in a table and a chart, so a custom
# period on a page is capped at ten years to keep those to 120 rows. The API
# lists no months and has no cap.
MAX_CUSTOM_DAYS = 3660
# Dates outside these years are typing mistakes, and the neighbouring periods
# of a date near year 1 or 9999 cannot be represented.
MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(2999, 12, 31)


def _out_of_range(value: dt.date) -> str | None:
    if MIN_DATE <= value <= MAX_DATE:
        return None
    return (
        f"{value.isoformat()} is out of range: use a date from "
        f"{MIN_DATE.isoformat()} to {MAX_DATE.isoformat()}."
    )


def date_range_errors(
    start: dt.date, end: dt.date, max_days: int | None = None
) -> dict[str, str]:
    """Return the reason, by field name, why ``[start, end)`` is not a valid period.

    ``max_days`` caps the length, for pages that list each month of the period.
    """
    errors = {}
    for name, value in (("start", start), ("end", end)):
        message = _out_of_range(value)
        if message:
            errors[name] = message
    if errors:
        return errors
    if end <= start:
        errors["end"] = "The end date must be after the start date."
    elif max_days is not None and (end - start).days > max_days:
        errors["end"] = f"A period can span at most {max_days} days."
    return errors


class PeriodKind:
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    CUSTOM = "custom"

    choices = [
        (MONTH, "Month"),
        (QUARTER, "Quarter"),
        (YEAR, "Fiscal year"),
        (CUSTOM, "Custom"),
    ]


@dataclass(frozen=True)
class Period:
    kind: str
    start: dt.date
    end: dt.date
    label: str

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    def query(self) -> dict[str, str]:
        """Return the query-string parameters that select this period."""
        if self.kind == PeriodKind.CUSTOM:
            return {
                "kind": self.kind,
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
            }
        return {"kind": self.kind, "on": self.start.isoformat()}


def _date_field(label: str, help_text: str = "") -> forms.DateField:
    widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    return forms.DateField(
        label=label, required=False, help_text=help_text, widget=widget
    )


class PeriodForm(ValueErrorMessagesMixin, forms.Form):
    kind = forms.ChoiceField(label="Period", choices=PeriodKind.choices, required=False)
    on = _date_field("Containing", "Any date in the period.")
    start = _date_field("Start", "Custom periods only.")
    end = _date_field("End (excluded)", "The first day after a custom period.")

    def _in_range(self, name: str) -> dt.date | None:
        """Return the cleaned date of field ``name``, or raise when out of range."""
        day = self.cleaned_data.get(name)
        if day is not None and _out_of_range(day):
            reason = (
                f"is out of range (use a date from {MIN_DATE.isoformat()} to "
                f"{MAX_DATE.isoformat()})"
            )
            raise forms.ValidationError(self.value_message(name, reason))
        return day

    def clean_on(self) -> dt.date | None:
        return self._in_range("on")

    def clean_start(self) -> dt.date | None:
        return self._in_range("start")

    def clean_end(self) -> dt.date | None:
        return self._in_range("end")

    def clean(self) -> dict:
        data = super().clean()
        if data.get("kind") != PeriodKind.CUSTOM:
            return data
        start, end = data.get("start"), data.get("end")
        if start is None and "start" not in self.errors:
            self.add_error("start", "Enter a start date for a custom period.")
        if end is None and "end" not in self.errors:
            self.add_error("end", "Enter an end date for a custom period.")
        if start is not None and end is not None:
            errors = date_range_errors(start, end, MAX_CUSTOM_DAYS)
            for field, message in errors.items():
                self.add_error(field, message)
        return data


def organization_today(organization: Organization) -> dt.date:
    return timezone.now().astimezone(organization.zoneinfo).date()


def period_containing(kind: str, day: dt.date, organization: Organization) -> Period:
    """Return the month, fiscal quarter or fiscal year that contains ``day``."""
    start_month = organization.fiscal_year_start_month
    named_by = organization.fiscal_year_named_by
    if kind == PeriodKind.MONTH:
        found = calendar.month_range(day)
    elif kind == PeriodKind.YEAR:
        found = calendar.fiscal_year_range(day, start_month, named_by)
    else:
        found = calendar.fiscal_quarter_range(day, start_month, named_by)
    return Period(kind, found.start, found.end, found.label)


def custom_period(start: dt.date, end: dt.date) -> Period:
    label = f"{start.isoformat()} to {(end - dt.timedelta(days=1)).isoformat()}"
    return Period(PeriodKind.CUSTOM, start, end, label)


def latest_closed_deal_date() -> dt.date | None:
    """Return the latest close date of a won or lost deal, in one query."""
    deals = Deal.objects.filter(archived_at__isnull=True, stage__is_closed=True)
    return deals.aggregate(latest=Max("close_date"))["latest"]


def default_period(organization: Organization, kind: str = "") -> Period:
    """Return the period that contains the latest closed deal, or today's period.

    Opening on the latest data means an organisation whose deals are all
    historical imports still lands on a period with numbers in it.
    """
    anchor = latest_closed_deal_date() or organization_today(organization)
    return period_containing(kind or PeriodKind.QUARTER, anchor, organization)


def period_from_query(
    params: QueryDict, organization: Organization
) -> tuple[Period | None, PeriodForm]:
    """Parse the period selector, returning ``None`` with form errors if invalid."""
    form = PeriodForm(params)
    if not form.is_valid():
        return None, form

    data = form.cleaned_data
    kind = data.get("kind") or ""
    if kind == PeriodKind.CUSTOM:
        period = custom_period(data["start"], data["end"])
    elif data.get("on"):
        period = period_containing(kind or PeriodKind.QUARTER, data["on"], organization)
    else:
        period = default_period(organization, kind)
    return period, PeriodForm(initial=_form_initial(period))


def _form_initial(period: Period) -> dict:
    return {
        "kind": period.kind,
        "on": period.start,
        "start": period.start,
        "end": period.end,
    }


def adjacent_periods(
    period: Period, organization: Organization
) -> tuple[Period, Period]:
    """Return the periods just before and just after ``period``, of the same kind."""
    if period.kind == PeriodKind.CUSTOM:
        length = period.end - period.start
        before = custom_period(period.start - length, period.start)
        after = custom_period(period.end, period.end + length)
        return before, after
    day_before = period.start - dt.timedelta(days=1)
    before = period_containing(period.kind, day_before, organization)
    after = period_containing(period.kind, period.end, organization)
    return before, after
