"""Write pages of CRM records into activity's models.

Rows are matched by (organisation, connection source, external id). Each
writer loads the page's existing rows in one query, creates the new ones in
bulk and updates only the changed fields. A record that cannot be written,
such as a deal in an unknown stage, is counted as failed and listed in the
run's errors with its id. The rest of the page is still written.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.db import models
from django.utils import timezone

from activity.models import Account, Activity, Contact, Deal, DealStageChange, Stage
from followups import triggers as followup_triggers
from integrations.connectors import base
from integrations.connectors.hubspot import parse_datetime
from integrations.models import CrmConnection, SyncRun
from spm.services import audit_log_write

CENT = Decimal("0.01")
ENGAGEMENT_SUBJECT = {
    base.CALLS: ("hs_call_title", Activity.Type.CALL),
    base.EMAILS: ("hs_email_subject", Activity.Type.EMAIL),
    base.MEETINGS: ("hs_meeting_title", Activity.Type.MEETING),
}


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0


@dataclass
class SyncContext:
    """Lookups, counts and errors shared by the writers of one run."""

    connection: CrmConnection
    run: SyncRun
    # CRM owner id -> member id, or None for an unmatched owner.
    owners: dict[str, int | None] = field(default_factory=dict)
    # CRM stage id -> local stage.
    stages: dict[str, Stage] = field(default_factory=dict)
    counts: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    errors: list[dict] = field(default_factory=list)

    @property
    def source(self) -> str:
        return self.connection.source

    @property
    def time_zone(self) -> ZoneInfo:
        return ZoneInfo(self.connection.organization.time_zone)

    def owner_id(self, record: base.CrmRecord) -> int | None:
        return self.owners.get(record.properties.get("hubspot_owner_id") or "")

    def fail(self, object_type: str, record_id: str, message: str) -> None:
        self.counts[object_type].failed += 1
        self.errors.append(
            {"object_type": object_type, "record_id": record_id, "message": message}
        )

    def counts_as_dict(self) -> dict[str, dict[str, int]]:
        """Return the counts of every object type, zeros included."""
        kinds = [
            *base.OBJECT_TYPES,
            *(k for k in self.counts if k not in base.OBJECT_TYPES),
        ]
        return {kind: vars(self.counts[kind]).copy() for kind in kinds}


def write_page(ctx: SyncContext, object_type: str, records: list[base.CrmRecord]):
    """Write one page of records of ``object_type``. Run inside a transaction."""
    unique = {record.id: record for record in records}
    records = list(unique.values())
    if object_type == base.COMPANIES:
        _write_companies(ctx, records)
    elif object_type == base.CONTACTS:
        _write_contacts(ctx, records)
    elif object_type == base.DEALS:
        _write_deals(ctx, records)
    else:
        _write_engagements(ctx, object_type, records)


def archive_deals(ctx: SyncContext, records: list[base.CrmRecord]) -> None:
    """Set ``archived_at`` on the synced deals the CRM archived, once each.

    A deal already archived here is left alone, so repeated listings of the
    CRM's archive record no second event.
    """
    deals = Deal.objects.filter(
        external_source=ctx.source,
        external_id__in=[record.id for record in records],
        archived_at__isnull=True,
    )
    by_id = {record.id: record for record in records}
    for deal in deals:
        record = by_id[deal.external_id]
        deal.archived_at = record.archived_at or timezone.now()
        deal.save(update_fields=["archived_at", "updated_at"])
        audit_log_write(
            organization=ctx.connection.organization,
            actor=None,
            action="crm.deal_archived",
            obj=deal,
            old={"archived_at": None},
            new={
                "archived_at": deal.archived_at.isoformat(),
                "source": ctx.source,
                "external_id": deal.external_id,
            },
        )
        ctx.counts[base.DEALS].deleted += 1


# Object types


def _write_companies(ctx: SyncContext, records: list[base.CrmRecord]) -> None:
    rows = []
    for record in records:
        props = record.properties
        name = props.get("name") or props.get("domain") or f"Company {record.id}"
        values = {
            "name": _text(name, 255),
            "domain": _text(props.get("domain"), 255),
            "industry": _text(props.get("industry"), 120),
            "country": _text(props.get("country"), 120),
            "owner_id": ctx.owner_id(record),
        }
        rows.append((record.id, values))
    _upsert(ctx, Account, base.COMPANIES, rows)


def _write_contacts(ctx: SyncContext, records: list[base.CrmRecord]) -> None:
    accounts = _account_ids(
        ctx, [r.properties.get("associatedcompanyid") for r in records]
    )
    rows = []
    for record in records:
        props = record.properties
        values = {
            "first_name": _text(props.get("firstname"), 120),
            "last_name": _text(props.get("lastname"), 120),
            "email": _text(props.get("email"), 254),
            "phone": _text(props.get("phone"), 40),
            "title": _text(props.get("jobtitle"), 120),
            "account_id": accounts.get(props.get("associatedcompanyid") or ""),
            "owner_id": ctx.owner_id(record),
        }
        created = parse_datetime(props.get("createdate"))
        if created is not None:
            values["created_at"] = created
        rows.append((record.id, values))
    _upsert(ctx, Contact, base.CONTACTS, rows)


def _write_deals(ctx: SyncContext, records: list[base.CrmRecord]) -> None:
    company_ids = [ids[0] for r in records if (ids := r.associations.get("companies"))]
    accounts = _account_ids(ctx, company_ids)
    currency = ctx.connection.organization.currency
    rows = []
    for record in records:
        props = record.properties
        stage = ctx.stages.get(props.get("dealstage") or "")
        if stage is None:
            ctx.fail(
                base.DEALS,
                record.id,
                f"Unknown deal stage {props.get('dealstage')!r} in pipeline "
                f"{props.get('pipeline')!r}; the deal was not synced.",
            )
            continue
        values = {
            "name": _text(props.get("dealname"), 255),
            "amount": _amount(props.get("amount")),
            "currency": _text(props.get("deal_currency_code"), 3) or currency,
            "pipeline_id": stage.pipeline_id,
            "stage_id": stage.pk,
            "close_date": _local_date(props.get("closedate"), ctx.time_zone),
            "created_on": _local_date(props.get("createdate"), ctx.time_zone),
            "owner_id": ctx.owner_id(record),
            "archived_at": None,
        }
        # Search results carry no associations, so only a listing sets the account.
        if "companies" in record.associations:
            ids = record.associations["companies"]
            values["account_id"] = accounts.get(ids[0]) if ids else None
        rows.append((record.id, values, record.modified_at))

    previous = dict(
        Deal.objects.filter(
            external_source=ctx.source, external_id__in=[r[0] for r in rows]
        ).values_list("external_id", "stage_id")
    )
    deals = _upsert(ctx, Deal, base.DEALS, [(r[0], r[1]) for r in rows])
    _record_stage_changes(ctx, rows, previous, deals)


def _record_stage_changes(ctx, rows, previous: dict, deals: dict) -> None:
    changes = []
    moved = []
    for external_id, values, modified_at in rows:
        old_stage = previous.get(external_id)
        if old_stage == values["stage_id"]:
            continue
        deal = deals[external_id]
        changes.append(
            DealStageChange(
                organization_id=deal.organization_id,
                deal=deal,
                from_stage_id=old_stage,
                to_stage_id=values["stage_id"],
                changed_at=modified_at,
                source=ctx.source,
            )
        )
        deal.stage_changed_at = modified_at
        moved.append(deal)
    DealStageChange.objects.bulk_create(changes)
    Deal.objects.bulk_update(moved, ["stage_changed_at"])
    # A deal seen for the first time (no previous stage) was not moved: the
    # first sync loads history, which must not start sequences.
    entered = [
        deals[external_id].pk
        for external_id, values, _ in rows
        if previous.get(external_id) not in (None, values["stage_id"])
    ]
    followup_triggers.deals_entered_stage(
        entered, organization_id=ctx.connection.organization_id
    )


def _write_engagements(
    ctx: SyncContext, object_type: str, records: list[base.CrmRecord]
) -> None:
    subject_property, activity_type = ENGAGEMENT_SUBJECT[object_type]
    rows = []
    for record in records:
        props = record.properties
        occurred_at = parse_datetime(props.get("hs_timestamp")) or record.modified_at
        values = {
            "type": activity_type,
            "subject": _text(props.get(subject_property), 255),
            "occurred_at": occurred_at,
            "owner_id": ctx.owner_id(record),
        }
        rows.append((record.id, values))
    _upsert(ctx, Activity, object_type, rows)


# Helpers


def _upsert(
    ctx: SyncContext,
    model: type[models.Model],
    object_type: str,
    rows: list[tuple[str, dict[str, Any]]],
) -> dict[str, models.Model]:
    """Create or update rows by external id and return them by external id."""
    counts = ctx.counts[object_type]
    existing = {
        row.external_id: row
        for row in model.objects.filter(
            external_source=ctx.source, external_id__in=[r[0] for r in rows]
        )
    }
    new, changed, fields = [], [], set()
    for external_id, values in rows:
        row = existing.get(external_id)
        if row is None:
            row = model(
                organization_id=ctx.connection.organization_id,
                external_source=ctx.source,
                external_id=external_id,
                **values,
            )
            existing[external_id] = row
            new.append(row)
            continue
        changed_fields = [
            name for name, value in values.items() if getattr(row, name) != value
        ]
        if changed_fields:
            for name in changed_fields:
                setattr(row, name, values[name])
            changed.append(row)
            fields.update(changed_fields)
        else:
            counts.unchanged += 1

    model.objects.bulk_create(new)
    if changed:
        if any(f.name == "updated_at" for f in model._meta.fields):
            now = timezone.now()
            for row in changed:
                row.updated_at = now
            fields.add("updated_at")
        model.objects.bulk_update(changed, sorted(fields))
    counts.created += len(new)
    counts.updated += len(changed)
    return existing


def _account_ids(ctx: SyncContext, company_ids: list[str | None]) -> dict[str, int]:
    requested = {company_id for company_id in company_ids if company_id}
    if not requested:
        return {}
    return dict(
        Account.objects.filter(
            external_source=ctx.source, external_id__in=requested
        ).values_list("external_id", "id")
    )


def _text(value: str | None, max_length: int) -> str:
    return (value or "").strip()[:max_length]


def _amount(value: str | None) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(value).quantize(CENT)
    except InvalidOperation:
        return None


def _local_date(value: str | None, time_zone: ZoneInfo) -> dt.date | None:
    """Return the calendar date of a CRM date or datetime value.

    A date-only value ("2024-03-10") is kept as written. A datetime is
    converted to the organisation's time zone first.
    """
    if not value:
        return None
    if len(value) == 10 and value[4] == "-":
        return dt.date.fromisoformat(value)
    moment = parse_datetime(value)
    return moment.astimezone(time_zone).date() if moment else None
