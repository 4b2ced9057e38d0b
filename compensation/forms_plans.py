"""Forms of the plan builder, the assignments and the exchange-rate pages.

Rates are entered as percentages (8 for 8%) and stored as the fractions the
engine reads (0.08). Row lists (tiers, milestones, SPIFF conditions) are
text areas with one row per line and values separated by commas, so an
error can name the line, the column and the value.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.utils import timezone

from compensation.engine.components import build_component
from compensation.engine.spiff import LIST_FIELDS, NUMBER_FIELDS, TEXT_FIELDS
from compensation.engine.types import ParamsError
from compensation.engine.values import date_problem, plain
from compensation.forms import PlainDecimalField
from compensation.models import MONEY, PlanComponent, PlanVersion, validate_currency
from spm.models import Membership

HUNDRED = Decimal(100)
# The highest rate the builder accepts: a component paying more than the
# booking itself is almost always a typo (80 for 0.8%).
MAX_RATE_PERCENT = HUNDRED
TIER_HELP = (
    "One tier a line: from, to, rate in %. Leave the last tier's to empty. "
    "Example: 0, 100, 5 then 100, 150, 8 then 150, , 12."
)
MILESTONE_HELP = (
    "One milestone a line: attainment in % of quota, then a fixed amount or, "
    "after a second comma, a % of the target incentive. Example: 100, 2000 "
    "then 150, , 10."
)
CONDITION_HELP = (
    "One condition a line: field, operator, value. Fields: "
    + ", ".join(sorted(TEXT_FIELDS | LIST_FIELDS | NUMBER_FIELDS))
    + ". Operators: equals, not_equals, contains, in (values separated by |), "
    "and for amount gt, gte, lt, lte."
)


ISO_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class IsoDateField(forms.DateField):
    """A date written as YYYY-MM-DD only, so 01/02/2026 is never read as 2 January."""

    input_formats = ["%Y-%m-%d"]

    def to_python(self, value):
        # strptime alone also reads 2026-2-3, which the help does not offer.
        if isinstance(value, str) and value.strip():
            if not ISO_DATE_TEXT.fullmatch(value.strip()):
                raise forms.ValidationError(f"Date {date_problem(value)}")
        try:
            return super().to_python(value)
        except forms.ValidationError:
            raise forms.ValidationError(f"Date {date_problem(value)}") from None


class PlanCreateForm(forms.Form):
    name = forms.CharField(max_length=120)
    currency = forms.CharField(
        max_length=3, initial="USD", help_text="ISO 4217 code the plan pays in."
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    effective_from = IsoDateField(
        help_text="The first day the first version applies, as YYYY-MM-DD."
    )

    def clean_currency(self) -> str:
        code = self.cleaned_data["currency"].strip().upper()
        validate_currency(code)
        return code


class VersionForm(forms.ModelForm):
    class Meta:
        model = PlanVersion
        fields = [
            "effective_from",
            "cap_per_period",
            "payout_timing",
            "fx_rate_date",
            "clawback",
            "clawback_term_months",
        ]
        labels = {"cap_per_period": "Plan cap per period"}


class DraftForm(forms.Form):
    effective_from = IsoDateField(
        help_text="The day the new version takes effect, as YYYY-MM-DD."
    )


def _percent_to_fraction(value: Decimal) -> str:
    return plain(value / HUNDRED)


def _fraction_to_percent(value: Any) -> str:
    return plain(Decimal(str(value)) * HUNDRED)


class RowError(ValueError):
    pass


def _cells(text: str) -> list[tuple[int, list[str]]]:
    """Split a text area into (line number, cells), skipping blank lines."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            rows.append((number, [cell.strip() for cell in line.split(",")]))
    return rows


def _number(cell: str, where: str, column: str) -> Decimal:
    try:
        value = Decimal(cell)
    except InvalidOperation:
        raise RowError(f"{where}: {column} {cell!r} is not a number.") from None
    if not value.is_finite():
        raise RowError(f"{where}: {column} {cell!r} is not a number.")
    return value


def _rate_percent(cell: str, where: str, column: str = "rate") -> Decimal:
    value = _number(cell, where, column)
    if not 0 <= value <= MAX_RATE_PERCENT:
        raise RowError(
            f"{where}: {column} {cell}% must be from 0% to {plain(MAX_RATE_PERCENT)}%."
        )
    return value


def parse_tiers(text: str) -> list[dict[str, str]]:
    """Read tier lines into the engine's tier rows, raising RowError naming the line."""
    tiers: list[dict[str, str]] = []
    previous_to: Decimal | None = None
    rows = _cells(text)
    if not rows:
        raise RowError("Add at least one tier.")
    for index, (number, cells) in enumerate(rows):
        where = f"tier line {number}"
        if len(cells) != 3:
            raise RowError(
                f"{where}: expected 3 values (from, to, rate), got {len(cells)}."
            )
        lower = _number(cells[0], where, "from")
        if index == 0 and lower != 0:
            raise RowError(
                f"{where}: from {cells[0]} must be 0, where the first tier starts."
            )
        if index and lower != previous_to:
            raise RowError(
                f"{where}: from {cells[0]} must equal the previous tier's to, "
                f"{plain(previous_to)}, so the tiers leave no gap."
            )
        last = index == len(rows) - 1
        if last and cells[1]:
            raise RowError(f"{where}: to {cells[1]} must be empty on the last tier.")
        if not last:
            if not cells[1]:
                raise RowError(f"{where}: to is required on every tier but the last.")
            upper = _number(cells[1], where, "to")
            if upper <= lower:
                raise RowError(
                    f"{where}: to {cells[1]} must be greater than from {cells[0]}, "
                    "because tiers ascend."
                )
            previous_to = upper
        rate = _rate_percent(cells[2], where)
        row = {"from": plain(lower), "rate": _percent_to_fraction(rate)}
        if not last:
            row["to"] = plain(previous_to)
        tiers.append(row)
    return tiers


def parse_milestones(text: str) -> list[dict[str, str]]:
    milestones = []
    rows = _cells(text)
    if not rows:
        raise RowError("Add at least one milestone.")
    previous = None
    for number, cells in rows:
        where = f"milestone line {number}"
        cells += [""] * (3 - len(cells))
        if len(cells) > 3:
            raise RowError(f"{where}: expected at most 3 values, got {len(cells)}.")
        attainment = _number(cells[0], where, "attainment")
        if attainment <= 0:
            raise RowError(f"{where}: attainment {cells[0]}% must be above 0%.")
        if previous is not None and attainment <= previous:
            raise RowError(
                f"{where}: attainment {cells[0]}% must be above the previous "
                f"milestone's {plain(previous)}%."
            )
        previous = attainment
        if bool(cells[1]) == bool(cells[2]):
            raise RowError(
                f"{where}: give either an amount or a % of the target incentive."
            )
        row = {"attainment": plain(attainment)}
        if cells[1]:
            amount = _number(cells[1], where, "amount")
            if amount <= 0:
                raise RowError(f"{where}: amount {cells[1]} must be above 0.")
            row["amount"] = plain(amount)
        else:
            share = _number(cells[2], where, "target incentive %")
            if not 0 < share <= 1000:
                raise RowError(
                    f"{where}: target incentive {cells[2]}% must be above 0% "
                    "and at most 1000%."
                )
            row["target_incentive_percent"] = plain(share)
        milestones.append(row)
    return milestones


def parse_conditions(text: str) -> list[dict[str, Any]]:
    conditions = []
    for number, cells in _cells(text):
        where = f"condition line {number}"
        if len(cells) < 3:
            raise RowError(f"{where}: expected field, operator, value.")
        field, operator = cells[0], cells[1]
        value: Any = ",".join(cells[2:]).strip()
        if operator == "in":
            value = [item.strip() for item in value.split("|") if item.strip()]
        conditions.append({"field": field, "operator": operator, "value": value})
    return conditions


def _tier_lines(tiers: list[dict]) -> str:
    lines = []
    for tier in tiers:
        upper = tier.get("to") or ""
        lines.append(f"{tier['from']}, {upper}, {_fraction_to_percent(tier['rate'])}")
    return "\n".join(lines)


def _milestone_lines(milestones: list[dict]) -> str:
    lines = []
    for row in milestones:
        if row.get("amount") not in (None, ""):
            lines.append(f"{row['attainment']}, {row['amount']}")
        else:
            lines.append(f"{row['attainment']}, , {row['target_incentive_percent']}")
    return "\n".join(lines)


def _condition_lines(conditions: list[dict]) -> str:
    lines = []
    for row in conditions:
        value = row.get("value")
        if isinstance(value, list):
            value = "|".join(str(item) for item in value)
        lines.append(f"{row.get('field')}, {row.get('operator')}, {value}")
    return "\n".join(lines)


# The fields each kind of component reads, besides the common ones.
COMMON_FIELDS = {"name", "kind", "order", "cap_per_deal", "cap_per_period"}
KIND_FIELDS = {
    "flat": {"rate"},
    "override": {"rate", "levels"},
    "tiered": {"basis", "mode", "threshold", "tiers"},
    "bonus": {"milestones"},
    "spiff": {"starts_on", "ends_on", "amount", "rate", "conditions"},
}


class ComponentForm(forms.Form):
    """One plan component, whose ``kind`` decides which fields apply."""

    name = forms.CharField(max_length=120)
    kind = forms.ChoiceField(choices=PlanComponent.Kind.choices)
    # Shown from 1 and stored from 0.
    order = forms.IntegerField(
        min_value=1,
        max_value=1001,
        initial=1,
        error_messages={
            "min_value": "Order must be from 1 to 1001, not %(value)s.",
            "max_value": "Order must be from 1 to 1001, not %(value)s.",
        },
        help_text="Place in the plan, from 1.",
    )
    rate = PlainDecimalField(
        required=False,
        example="8 or 12.5",
        label="Rate (%)",
        help_text="Flat rate, override or SPIFF rate, in percent: 8 for 8%.",
    )
    # Tiered components pay very differently by basis and mode, so both start
    # empty and must be chosen.
    basis = forms.ChoiceField(
        required=False,
        choices=[("", "choose"), ("attainment", "% of quota"), ("amount", "amount")],
        help_text="Tiered: what the tier bounds and threshold measure.",
    )
    mode = forms.ChoiceField(
        required=False,
        choices=[
            ("", "choose"),
            ("marginal", "marginal"),
            ("retroactive", "retroactive"),
        ],
        help_text="Tiered: marginal pays each part at its tier's rate; "
        "retroactive pays all at the rate of the tier reached.",
    )
    threshold = PlainDecimalField(
        required=False,
        example="50 or 25000.00",
        help_text="Tiered: nothing is paid below this level (same unit as tiers).",
    )
    tiers = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text=TIER_HELP
    )
    milestones = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=MILESTONE_HELP,
    )
    starts_on = IsoDateField(required=False, help_text="SPIFF: first day, included.")
    ends_on = IsoDateField(required=False, help_text="SPIFF: last day, included.")
    amount = PlainDecimalField(
        required=False,
        example="500.00",
        help_text="SPIFF: fixed amount per deal, instead of a rate.",
    )
    conditions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=CONDITION_HELP,
    )
    levels = forms.IntegerField(
        required=False,
        min_value=1,
        help_text="Override: levels of reports below the manager; empty for all.",
    )
    cap_per_deal = PlainDecimalField(
        required=False,
        min_value=0,
        example="15000.00",
        help_text="Most one deal earns, before splits.",
    )
    cap_per_period = PlainDecimalField(
        required=False,
        min_value=0,
        example="20000.00",
        help_text="Most this component pays a period.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in ("cap_per_deal", "cap_per_period", "amount", "threshold"):
            self.fields[name].max_digits = MONEY["max_digits"]
            self.fields[name].decimal_places = MONEY["decimal_places"]

    @classmethod
    def initial_for(cls, component: PlanComponent) -> dict[str, Any]:
        """Return the form's values for an existing component."""
        params = component.params or {}
        initial: dict[str, Any] = {
            "name": component.name,
            "kind": component.kind,
            "order": component.order + 1,
            "cap_per_deal": component.cap_per_deal,
            "cap_per_period": component.cap_per_period,
        }
        if params.get("rate") not in (None, ""):
            initial["rate"] = _fraction_to_percent(params["rate"])
        for key in ("basis", "mode", "threshold", "starts_on", "ends_on", "amount"):
            if key in params:
                initial[key] = params[key]
        initial["levels"] = params.get("levels")
        initial["tiers"] = _tier_lines(params.get("tiers") or [])
        initial["milestones"] = _milestone_lines(params.get("milestones") or [])
        initial["conditions"] = _condition_lines(params.get("conditions") or [])
        return initial

    def _where(self) -> str:
        return f"Component {self.cleaned_data.get('name', '')!r}"

    def _rate(self) -> str:
        rate = self.cleaned_data.get("rate")
        if rate is None:
            raise RowError("rate is required, in percent: 8 for 8%.")
        if not 0 <= rate <= MAX_RATE_PERCENT:
            raise RowError(f"rate {plain(rate)}% must be from 0% to 100%.")
        return _percent_to_fraction(rate)

    def _params(self, kind: str) -> dict[str, Any]:
        data = self.cleaned_data
        if kind == "flat":
            return {"rate": self._rate()}
        if kind == "override":
            params: dict[str, Any] = {"rate": self._rate()}
            if data.get("levels") is not None:
                params["levels"] = data["levels"]
            return params
        if kind == "tiered":
            missing = [
                need
                for name, need in (
                    ("basis", "basis (% of quota or amount)"),
                    ("mode", "mode (marginal or retroactive)"),
                )
                if not data.get(name)
            ]
            if missing:
                raise RowError(f"choose the {' and the '.join(missing)}.")
            params = {
                "basis": data["basis"],
                "mode": data["mode"],
                "tiers": parse_tiers(data.get("tiers") or ""),
            }
            if data.get("threshold") is not None:
                if data["threshold"] <= 0:
                    raise RowError(
                        f"threshold {plain(data['threshold'])} must be above 0. "
                        "Leave it empty for no threshold."
                    )
                params["threshold"] = plain(data["threshold"])
            return params
        if kind == "bonus":
            return {"milestones": parse_milestones(data.get("milestones") or "")}
        return self._spiff_params()

    def _spiff_params(self) -> dict[str, Any]:
        data = self.cleaned_data
        for key in ("starts_on", "ends_on"):
            if data.get(key) is None:
                raise RowError(f"{key} is required for a SPIFF, as YYYY-MM-DD.")
        params: dict[str, Any] = {
            "starts_on": data["starts_on"].isoformat(),
            "ends_on": data["ends_on"].isoformat(),
            "conditions": parse_conditions(data.get("conditions") or ""),
        }
        has_amount = data.get("amount") is not None
        if has_amount == (data.get("rate") is not None):
            raise RowError("give either an amount per deal or a rate, not both.")
        if has_amount:
            params["amount"] = plain(data["amount"])
        else:
            params["rate"] = self._rate()
        return params

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        if kind in KIND_FIELDS:
            # Fields of other kinds are ignored, as the help text states, with any
            # errors they carry.
            used = COMMON_FIELDS | KIND_FIELDS[kind]
            for name in [name for name in self._errors if name not in used]:
                if name != NON_FIELD_ERRORS:
                    del self._errors[name]
        if self.errors or not kind:
            return data
        try:
            data["params"] = self._params(kind)
            build_component(
                name=data["name"],
                kind=kind,
                params=data["params"],
                cap_per_deal=data.get("cap_per_deal"),
                cap_per_period=data.get("cap_per_period"),
            )
        except RowError as error:
            raise forms.ValidationError(f"{self._where()}: {error}") from error
        except ParamsError as error:
            raise forms.ValidationError(
                f"{self._where()}, {error.field}: {error.message}"
            ) from error
        return data

    def component_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "kind": data["kind"],
            "order": data["order"] - 1,
            "params": data["params"],
            "cap_per_deal": data.get("cap_per_deal"),
            "cap_per_period": data.get("cap_per_period"),
        }


class AssignmentForm(forms.Form):
    member = forms.ModelChoiceField(
        queryset=Membership.objects.none(), to_field_name="public_id"
    )
    start_date = IsoDateField(help_text="First day on the plan, YYYY-MM-DD.")
    end_date = IsoDateField(
        required=False, help_text="Last day on the plan; empty if open."
    )
    target_incentive = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=MONEY["max_digits"],
        decimal_places=MONEY["decimal_places"],
        help_text="Variable pay at 100% of quota for a year, in the plan's currency.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = Membership.objects.order_by("display_name")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            self.add_error(
                "end_date", f"End date {end} is before the start date {start}."
            )
        return data


class AssignmentEndForm(forms.Form):
    end_date = IsoDateField(help_text="Last day on the plan, YYYY-MM-DD.")


class FxRateForm(forms.Form):
    date = IsoDateField()
    base_currency = forms.CharField(max_length=3, label="From")
    quote_currency = forms.CharField(max_length=3, label="To")
    rate = forms.DecimalField(
        max_digits=20,
        decimal_places=10,
        help_text="Units of the to currency for 1 unit of the from currency.",
    )

    def _code(self, name: str) -> str:
        code = self.cleaned_data[name].strip().upper()
        validate_currency(code)
        return code

    def clean_base_currency(self) -> str:
        return self._code("base_currency")

    def clean_quote_currency(self) -> str:
        return self._code("quote_currency")

    def clean_rate(self) -> Decimal | None:
        rate = self.cleaned_data["rate"]
        # The delete form names a rate by its key alone and leaves rate empty.
        if rate is not None and rate <= 0:
            raise forms.ValidationError(f"Rate {rate} must be above 0.")
        return rate

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        base, quote = data.get("base_currency"), data.get("quote_currency")
        if base and base == quote:
            self.add_error("quote_currency", f"To {quote} is the same as from.")
        return data


class FxImportForm(forms.Form):
    file = forms.FileField(help_text="CSV with the header date,from,to,rate.")


class PreviewForm(forms.Form):
    period = forms.CharField(
        help_text="The current month or an earlier one, as YYYY-MM."
    )
    member = forms.ModelChoiceField(
        queryset=Membership.objects.none(),
        to_field_name="public_id",
        required=False,
        empty_label="Everyone on the plan",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = Membership.objects.order_by("display_name")

    def clean_period(self) -> dt.date:
        value = self.cleaned_data["period"].strip()
        try:
            month = dt.datetime.strptime(value, "%Y-%m").date()
        except ValueError:
            raise forms.ValidationError(
                f"Period {value!r} is not a month as YYYY-MM."
            ) from None
        if month > timezone.localdate().replace(day=1):
            raise forms.ValidationError(
                f"Period {value} has not started yet. Choose the current month "
                "or an earlier one."
            )
        return month
