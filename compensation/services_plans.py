"""Writes of the plan builder: plans, draft versions, components, assignments, FX.

Only a draft version changes. Publishing makes it read-only and gives it an
effective date after every earlier published version, so the terms a
statement was calculated with never change under it. Every write runs in a
transaction and records old and new values in the audit log.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from compensation.engine.types import ParamsError
from compensation.engine.values import date_problem
from compensation.models import (
    CompPlan,
    FxRate,
    PlanAssignment,
    PlanComponent,
    PlanVersion,
    validate_currency,
)
from spm.models import Membership, Organization, User
from spm.services import audit_log_write

VERSION_FIELDS = (
    "effective_from",
    "cap_per_period",
    "payout_timing",
    "fx_rate_date",
    "clawback",
    "clawback_term_months",
)
COMPONENT_FIELDS = ("name", "kind", "order", "params", "cap_per_deal", "cap_per_period")
FX_COLUMNS = ("date", "from", "to", "rate")
# A CSV with more rows is rejected, so one upload cannot hold a transaction
# open for long. By our estimate, 100,000 rates is years of daily rates for
# dozens of currency pairs.
FX_IMPORT_MAX_ROWS = 100_000


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal | dt.date):
        return str(value)
    return value


def _snapshot(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: _json_value(getattr(obj, name)) for name in fields}


def _require_draft(version: PlanVersion) -> None:
    if version.is_published:
        raise ValidationError(
            f"{version.label} is published, so it is read-only. Start a new "
            "draft to change the plan."
        )


# Plans and versions -----------------------------------------------------------


@transaction.atomic
def plan_create(
    *,
    organization: Organization,
    actor: User | None,
    name: str,
    currency: str,
    description: str = "",
    effective_from: dt.date,
) -> CompPlan:
    """Create a plan with an empty draft version 1."""
    if CompPlan.objects.filter(name__iexact=name).exists():
        raise ValidationError({"name": f"A plan named {name!r} already exists."})
    plan = CompPlan(
        organization=organization,
        name=name,
        currency=currency,
        description=description,
    )
    plan.full_clean()
    plan.save()
    version = PlanVersion.objects.create(
        organization=organization, plan=plan, number=1, effective_from=effective_from
    )
    audit_log_write(
        organization=organization,
        actor=actor,
        action="comp_plan.create",
        obj=plan,
        new={
            "name": name,
            "currency": currency,
            "description": description,
            "draft": version.number,
            "effective_from": str(effective_from),
        },
    )
    return plan


@transaction.atomic
def plan_version_update(
    *, version: PlanVersion, actor: User | None, values: dict[str, Any]
) -> PlanVersion:
    """Change the plan-wide terms of a draft version."""
    version = PlanVersion.objects.select_for_update().get(pk=version.pk)
    _require_draft(version)
    old = _snapshot(version, VERSION_FIELDS)
    for name in VERSION_FIELDS:
        if name in values:
            setattr(version, name, values[name])
    version.full_clean(exclude=["plan", "organization", "published_by"])
    version.save()
    new = _snapshot(version, VERSION_FIELDS)
    if old != new:
        audit_log_write(
            organization=version.organization,
            actor=actor,
            action="comp_plan.version_update",
            obj=version,
            old=old,
            new=new,
        )
    return version


@transaction.atomic
def plan_draft_create(
    *, plan: CompPlan, actor: User | None, effective_from: dt.date
) -> PlanVersion:
    """Start a draft version as a copy of the latest published one.

    A plan has at most one draft at a time, so two admins cannot edit
    competing drafts.
    """
    plan = CompPlan.objects.select_for_update().get(pk=plan.pk)
    versions = PlanVersion.objects.filter(plan=plan)
    existing = versions.filter(status=PlanVersion.Status.DRAFT).first()
    if existing is not None:
        raise ValidationError(
            f"{existing.label} is already a draft. Edit or publish it first."
        )
    latest = (
        versions.filter(status=PlanVersion.Status.PUBLISHED)
        .order_by("-effective_from", "-number")
        .prefetch_related("components")
        .first()
    )
    number = (versions.aggregate(top=Max("number"))["top"] or 0) + 1
    draft = PlanVersion(
        organization=plan.organization,
        plan=plan,
        number=number,
        effective_from=effective_from,
    )
    if latest is not None:
        for name in VERSION_FIELDS[1:] + ("year_payout_tiers",):
            setattr(draft, name, getattr(latest, name))
    draft.save()
    for component in latest.components.all() if latest else []:
        PlanComponent.objects.create(
            organization=plan.organization,
            version=draft,
            **{name: getattr(component, name) for name in COMPONENT_FIELDS},
        )
    audit_log_write(
        organization=plan.organization,
        actor=actor,
        action="comp_plan.draft_create",
        obj=draft,
        new={
            "version": number,
            "copied_from": latest.number if latest else None,
            "effective_from": str(effective_from),
        },
    )
    return draft


def _publish_problems(version: PlanVersion) -> list[str]:
    problems = []
    components = list(version.components.all())
    if not components:
        problems.append(f"{version.label} has no components; add one to publish.")
    for component in components:
        try:
            component.to_engine()
        except ParamsError as error:
            problems.append(f"Component {component.name!r}: {error}")
    later = (
        PlanVersion.objects.filter(
            plan_id=version.plan_id,
            status=PlanVersion.Status.PUBLISHED,
            effective_from__gte=version.effective_from,
        )
        .order_by("-effective_from")
        .first()
    )
    if later is not None:
        problems.append(
            f"Effective from {version.effective_from} is not after {later.label}, "
            f"which takes effect on {later.effective_from}. Choose a later date."
        )
    return problems


@transaction.atomic
def plan_version_publish(*, version: PlanVersion, actor: User | None) -> PlanVersion:
    """Publish a draft: from then on it is read-only and the engine pays by it."""
    version = (
        PlanVersion.objects.select_for_update()
        .select_related("plan")
        .get(pk=version.pk)
    )
    _require_draft(version)
    problems = _publish_problems(version)
    if problems:
        raise ValidationError(problems)
    version.status = PlanVersion.Status.PUBLISHED
    version.published_at = timezone.now()
    version.published_by = actor
    version.save()
    audit_log_write(
        organization=version.organization,
        actor=actor,
        action="comp_plan.publish",
        obj=version,
        old={"status": PlanVersion.Status.DRAFT},
        new={
            "status": PlanVersion.Status.PUBLISHED,
            "effective_from": str(version.effective_from),
        },
    )
    return version


# Components -------------------------------------------------------------------


def _component_snapshot(component: PlanComponent) -> dict[str, Any]:
    return _snapshot(component, COMPONENT_FIELDS)


@transaction.atomic
def plan_component_save(
    *,
    version: PlanVersion,
    component: PlanComponent | None,
    actor: User | None,
    values: dict[str, Any],
) -> PlanComponent:
    """Create a component of a draft version, or change one.

    Raises ValidationError whose messages name the component and the
    parameter, as the engine reports them (``tiers[1].rate: ...``).
    """
    version = PlanVersion.objects.select_for_update().get(pk=version.pk)
    _require_draft(version)
    old = None
    if component is None:
        component = PlanComponent(organization=version.organization, version=version)
    else:
        old = _component_snapshot(component)
    for name in COMPONENT_FIELDS:
        if name in values:
            setattr(component, name, values[name])
    clash = PlanComponent.objects.filter(
        version=version, name__iexact=component.name
    ).exclude(pk=component.pk)
    if clash.exists():
        message = f"{version.label} already has a component named {component.name!r}."
        raise ValidationError({"name": message})
    try:
        component.full_clean(exclude=["version", "organization"])
    except ValidationError as error:
        raise ValidationError(
            {
                field: [
                    f"Component {component.name!r}: {message}" for message in errors
                ]
                for field, errors in error.message_dict.items()
            }
        ) from error
    component.save()
    audit_log_write(
        organization=version.organization,
        actor=actor,
        action="comp_plan.component_update" if old else "comp_plan.component_create",
        obj=component,
        old=old,
        new=_component_snapshot(component),
    )
    return component


@transaction.atomic
def plan_component_delete(*, component: PlanComponent, actor: User | None) -> None:
    version = PlanVersion.objects.select_for_update().get(pk=component.version_id)
    _require_draft(version)
    old = _component_snapshot(component)
    audit_log_write(
        organization=version.organization,
        actor=actor,
        action="comp_plan.component_delete",
        obj=component,
        old=old,
    )
    component.delete()


# Assignments ------------------------------------------------------------------


def _assignment_snapshot(assignment: PlanAssignment) -> dict[str, Any]:
    return {
        "member": assignment.member.display_name,
        "plan": assignment.plan.name,
        "start_date": str(assignment.start_date),
        "end_date": _json_value(assignment.end_date),
        "target_incentive": _json_value(assignment.target_incentive),
        "target_incentive_currency": assignment.target_incentive_currency,
    }


@transaction.atomic
def plan_assignment_create(
    *,
    plan: CompPlan,
    member: Membership,
    actor: User | None,
    start_date: dt.date,
    end_date: dt.date | None,
    target_incentive: Decimal | None,
) -> PlanAssignment:
    """Put ``member`` on ``plan``; an overlap with their other days on it is rejected.

    The target incentive is in the plan's currency, the one the engine pays
    milestone bonuses in.
    """
    first_day = (
        plan.versions.order_by("effective_from")
        .values_list("effective_from", flat=True)
        .first()
    )
    if first_day is not None and start_date < first_day:
        raise ValidationError(
            {
                "start_date": (
                    f"Start date {start_date} is before the plan's first version, "
                    f"effective from {first_day}."
                )
            }
        )
    # Lock the member so two requests cannot both pass the overlap check.
    Membership.objects.select_for_update().filter(pk=member.pk).first()
    assignment = PlanAssignment(
        organization=plan.organization,
        member=member,
        plan=plan,
        start_date=start_date,
        end_date=end_date,
        target_incentive=target_incentive,
        target_incentive_currency=plan.currency if target_incentive is not None else "",
    )
    assignment.full_clean(exclude=["organization"])
    assignment.save()
    audit_log_write(
        organization=plan.organization,
        actor=actor,
        action="comp_plan.assignment_create",
        obj=assignment,
        new=_assignment_snapshot(assignment),
    )
    return assignment


@transaction.atomic
def plan_assignment_end(
    *, assignment: PlanAssignment, actor: User | None, end_date: dt.date
) -> PlanAssignment:
    """Set the last day of an assignment, both for ending and for shortening it."""
    if end_date < assignment.start_date:
        raise ValidationError(
            f"End date {end_date} is before the start date {assignment.start_date}."
        )
    old = _assignment_snapshot(assignment)
    assignment.end_date = end_date
    assignment.full_clean(exclude=["organization"])
    assignment.save(update_fields=["end_date"])
    audit_log_write(
        organization=assignment.organization,
        actor=actor,
        action="comp_plan.assignment_end",
        obj=assignment,
        old=old,
        new=_assignment_snapshot(assignment),
    )
    return assignment


@transaction.atomic
def plan_assignment_delete(*, assignment: PlanAssignment, actor: User | None) -> None:
    if assignment.member.statements.filter(
        period_end__gt=assignment.start_date
    ).exists():
        raise ValidationError(
            f"{assignment.member} has statements since {assignment.start_date}, "
            "so the assignment cannot be deleted. End it instead."
        )
    audit_log_write(
        organization=assignment.organization,
        actor=actor,
        action="comp_plan.assignment_delete",
        obj=assignment,
        old=_assignment_snapshot(assignment),
    )
    assignment.delete()


# Exchange rates ---------------------------------------------------------------


def _fx_snapshot(rate: FxRate | None) -> dict[str, Any] | None:
    if rate is None:
        return None
    return {
        "date": str(rate.date),
        "from": rate.base_currency,
        "to": rate.quote_currency,
        "rate": str(rate.rate),
        "source": rate.source,
    }


def _fx_upsert(
    organization: Organization,
    day: dt.date,
    base: str,
    quote: str,
    rate: Decimal,
    source: str,
) -> tuple[FxRate | None, FxRate]:
    """Upsert one rate. Return a copy of the old row (None if new) and the row."""
    row = FxRate.objects.filter(
        date=day, base_currency=base, quote_currency=quote
    ).first()
    old = None
    if row is None:
        row = FxRate(
            organization=organization,
            date=day,
            base_currency=base,
            quote_currency=quote,
        )
    else:
        old = FxRate(date=row.date, rate=row.rate, source=row.source)
        old.base_currency, old.quote_currency = base, quote
    row.rate = rate
    row.source = source
    row.save()
    return old, row


@transaction.atomic
def fx_rate_save(
    *,
    organization: Organization,
    actor: User | None,
    date: dt.date,
    base_currency: str,
    quote_currency: str,
    rate: Decimal,
) -> FxRate:
    """Set the rate of one currency pair on one day, replacing any earlier value."""
    old, row = _fx_upsert(
        organization, date, base_currency, quote_currency, rate, "entered"
    )
    audit_log_write(
        organization=organization,
        actor=actor,
        action="fx_rate.update" if old else "fx_rate.create",
        object_type="compensation.fxrate",
        object_id=f"{base_currency}/{quote_currency} {date}",
        old=_fx_snapshot(old),
        new=_fx_snapshot(row),
    )
    return row


@transaction.atomic
def fx_rate_delete(*, rate: FxRate, actor: User | None) -> None:
    audit_log_write(
        organization=rate.organization,
        actor=actor,
        action="fx_rate.delete",
        object_type="compensation.fxrate",
        object_id=f"{rate.base_currency}/{rate.quote_currency} {rate.date}",
        old=_fx_snapshot(rate),
    )
    rate.delete()


@dataclass(frozen=True)
class FxRow:
    line: int
    date: dt.date
    base: str
    quote: str
    rate: Decimal


class FxImportError(ValueError):
    """Invalid rows in a CSV of rates, with one message per problem in ``errors``."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        problems = "problem" if len(errors) == 1 else "problems"
        super().__init__(f"{len(errors)} {problems} found, so nothing was imported.")


def _fx_cell_problems(line: int, record: dict[str, str]) -> tuple[FxRow | None, list]:
    problems = []
    values: dict[str, Any] = {}
    raw_date = (record.get("date") or "").strip()
    try:
        values["date"] = dt.date.fromisoformat(raw_date)
    except ValueError:
        problems.append(f"Row {line}, date: {date_problem(raw_date)}")
    for column in ("from", "to"):
        code = (record.get(column) or "").strip().upper()
        try:
            validate_currency(code)
        except ValidationError:
            problems.append(
                f"Row {line}, {column}: {code!r} is not an ISO 4217 currency code."
            )
        values[column] = code
    raw_rate = (record.get("rate") or "").strip()
    try:
        rate = Decimal(raw_rate)
        if not rate.is_finite() or rate <= 0:
            raise InvalidOperation
        if rate.as_tuple().exponent < -10 or rate >= Decimal(10) ** 10:
            raise InvalidOperation
        values["rate"] = rate
    except InvalidOperation:
        problems.append(
            f"Row {line}, rate: {raw_rate!r} is not a number above 0 with at "
            "most 10 decimal places."
        )
    if not problems and values["from"] == values["to"]:
        problems.append(
            f"Row {line}, to: {values['to']!r} is the same currency as from."
        )
    if problems:
        return None, problems
    return (
        FxRow(line, values["date"], values["from"], values["to"], values["rate"]),
        [],
    )


def _fx_records(content: bytes) -> csv.DictReader:
    """Return a reader of the CSV's rows, with the header checked and lowercased."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FxImportError([f"The file is not UTF-8 text: {error}."]) from None

    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [column for column in FX_COLUMNS if column not in header]
    if missing:
        message = (
            f"Row 1, header: missing column {', '.join(missing)}. The header "
            "must be date,from,to,rate."
        )
        raise FxImportError([message])
    reader.fieldnames = header
    return reader


def fx_rows_parse(content: bytes) -> list[FxRow]:
    """Validate a CSV of ``date,from,to,rate`` rows, or raise FxImportError."""
    rows: list[FxRow] = []
    errors: list[str] = []
    seen: dict[tuple, int] = {}
    for line, record in enumerate(_fx_records(content), start=2):
        if line - 1 > FX_IMPORT_MAX_ROWS:
            raise FxImportError([f"The file has over {FX_IMPORT_MAX_ROWS:,} rows."])
        row, problems = _fx_cell_problems(line, record)
        errors += problems
        if row is None:
            continue

        key = (row.date, row.base, row.quote)
        if key in seen:
            errors.append(
                f"Row {line}, date: {row.base}/{row.quote} on {row.date} is also "
                f"on row {seen[key]}."
            )
        seen[key] = line
        rows.append(row)

    if errors:
        raise FxImportError(errors)
    if not rows:
        raise FxImportError(["The file has a header but no rows."])
    return rows


@transaction.atomic
def fx_rates_import(
    *, organization: Organization, actor: User | None, content: bytes, filename: str
) -> int:
    """Import every row of the CSV, or none if any row is invalid; return the count.

    The audit entry lists each rate that was added or changed, with its old
    and new value.
    """
    rows = fx_rows_parse(content)
    changes = []
    for row in rows:
        try:
            with transaction.atomic():
                old, _ = _fx_upsert(
                    organization, row.date, row.base, row.quote, row.rate, filename
                )
        except IntegrityError as error:
            raise FxImportError([f"Row {row.line}: {error}"]) from error
        if old is None or old.rate != row.rate:
            changes.append(
                {
                    "date": str(row.date),
                    "from": row.base,
                    "to": row.quote,
                    "old": None if old is None else str(old.rate),
                    "new": str(row.rate),
                }
            )

    created = sum(1 for change in changes if change["old"] is None)
    audit_log_write(
        organization=organization,
        actor=actor,
        action="fx_rate.import",
        object_type="compensation.fxrate",
        object_id=filename,
        new={
            "file": filename,
            "rows": len(rows),
            "created": created,
            "updated": len(changes) - created,
            "changes": changes,
        },
    )
    return len(rows)
