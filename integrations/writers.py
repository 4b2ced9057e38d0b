"""Write pages of CRM records into activity's models.

Rows are matched by (organisation, connection source, external id). Each
writer upserts a page in one INSERT ... ON CONFLICT statement, which skips
rows whose stored values already match, so an unchanged record costs no
write. A record that cannot be written,
such as a deal in an unknown stage, is counted as failed and listed in the
run's errors with its id. The rest of the page is still written.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, models
from django.utils import timezone

from activity.models import (
    Account,
    Activity,
    Contact,
    Deal,
    DealStageChange,
    Lead,
    Stage,
)
from followups import triggers as followup_triggers
from integrations import deal_fields
from integrations.connectors import base
from integrations.connectors.hubspot import parse_datetime
from integrations.models import CrmConnection, SyncRun
from spm.services import audit_log_write

CENT = Decimal("0.01")
ENGAGEMENT_SUBJECT = {
    base.CALLS: ("hs_call_title", Activity.Type.CALL),
    base.EMAILS: ("hs_email_subject", Activity.Type.EMAIL),
    base.MEETINGS: ("hs_meeting_title", Activity.Type.MEETING),
    base.NOTES: ("hs_note_body", Activity.Type.NOTE),
}
# Association name in ``CrmRecord.associations`` -> the activity's foreign key
# column and the synced model it points at.
ENGAGEMENT_LINKS = {
    "deals": ("deal_id", Deal),
    "contacts": ("contact_id", Contact),
    "leads": ("lead_id", Lead),
    "companies": ("account_id", Account),
}
# The synced model of each object type whose CRM-deleted records are deleted
# here, and the audit action of a deletion. Deals are archived instead
# (archive_deals), and Salesforce leads have their own writer.
DELETED_MODELS = {
    base.COMPANIES: (Account, "crm.company_deleted"),
    base.CONTACTS: (Contact, "crm.contact_deleted"),
    base.CALLS: (Activity, "crm.activity_deleted"),
    base.EMAILS: (Activity, "crm.activity_deleted"),
    base.MEETINGS: (Activity, "crm.activity_deleted"),
    base.NOTES: (Activity, "crm.activity_deleted"),
}
DELETED_OBJECT_TYPES = tuple(DELETED_MODELS)
# HubSpot's property with the ids of the records merged into a record,
# separated by semicolons. A merge may give the result a new id, and then
# both former ids are listed.
MERGED_IDS_PROPERTY = "hs_merged_object_ids"
# The property of a deleted record that names the record it was merged into
# (Salesforce's MasterRecordId).
MASTER_RECORD_PROPERTY = "master_record_id"


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
    # Deal field mapping target -> CRM property (integrations.deal_fields).
    deal_fields: dict[str, str] = field(default_factory=dict)
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


def plan_each_statement() -> None:
    """Plan each statement of the current transaction for its own parameters.

    psycopg prepares a statement on its fifth run, and PostgreSQL may then
    keep one generic plan for the connection's life. A first sync prepares
    the writers' statements while the tables are still empty, and the
    generic plan chosen then looks synced rows up through the organisation's
    index instead of the external id's unique index. Each lookup then reads
    every row the sync has written so far, until the tables are analysed: a
    first sync into a new database ran 15 times slower than the next one. A
    plan made for the actual parameters uses the table's current size, even
    when its statistics are stale.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"
        )


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


def delete_records(
    ctx: SyncContext, object_type: str, records: list[base.CrmRecord]
) -> None:
    """Delete the synced rows of records the CRM deleted, or merged into another.

    ``object_type`` is a company, contact or activity type (DELETED_MODELS).
    A record with ``master_record_id`` was merged: its row's references
    move to the survivor's row first (see _rows_delete).
    """
    removals = {
        record.id: record.properties.get(MASTER_RECORD_PROPERTY) or None
        for record in records
    }
    _rows_delete(ctx, object_type, removals)


def _delete_merged(
    ctx: SyncContext, object_type: str, records: list[base.CrmRecord]
) -> None:
    """Delete the rows of the records merged into the records of a page.

    HubSpot names them in ``hs_merged_object_ids`` of the surviving record,
    which the page has just written.
    """
    removals = {}
    for record in records:
        merged = record.properties.get(MERGED_IDS_PROPERTY) or ""
        for merged_id in merged.split(";"):
            merged_id = merged_id.strip()
            if merged_id and merged_id != record.id:
                removals[merged_id] = record.id
    if removals:
        _rows_delete(ctx, object_type, removals)


def _rows_delete(
    ctx: SyncContext, object_type: str, removals: dict[str, str | None]
) -> None:
    """Delete this connection's rows by CRM id, moving merged rows' references.

    ``removals`` maps each removed CRM id to the id of the record it was
    merged into, or None. Every reference to a merged row (its deals,
    activities, contacts, and so on) then points at the survivor's row,
    when this connection synced the survivor. Other references are cleared
    by the deletion (SET_NULL). Each deletion is audited and counted.
    """
    model, action = DELETED_MODELS[object_type]
    synced = model.objects.filter(
        organization_id=ctx.connection.organization_id,
        external_source=ctx.source,
    )
    rows = list(
        synced.filter(external_id__in=list(removals)).only(
            "pk", "public_id", "external_id"
        )
    )
    if not rows:
        return
    survivors = {
        row.external_id: _final_survivor(row.external_id, removals) for row in rows
    }
    survivor_rows = dict(
        synced.filter(external_id__in=[s for s in survivors.values() if s]).values_list(
            "external_id", "pk"
        )
    )
    moves = {
        row.pk: survivor_rows[survivors[row.external_id]]
        for row in rows
        if survivors[row.external_id] in survivor_rows
    }
    _references_move(model, moves)
    for row in rows:
        audit_log_write(
            organization=ctx.connection.organization,
            actor=None,
            action=action,
            obj=row,
            new={
                "source": ctx.source,
                "external_id": row.external_id,
                "merged_into": survivors[row.external_id],
            },
        )
    model.objects.filter(pk__in=[row.pk for row in rows]).delete()
    ctx.counts[object_type].deleted += len(rows)


def _final_survivor(external_id: str, removals: dict[str, str | None]) -> str | None:
    """Follow merges through removed records to the record that survives them all.

    Return None for a plain deletion, and for a cycle of merges.
    """
    seen = {external_id}
    survivor = removals.get(external_id)
    while survivor in removals:
        if survivor in seen:
            return None
        seen.add(survivor)
        survivor = removals[survivor]
    return survivor


def _references_move(model: type[models.Model], moves: dict[int, int]) -> None:
    """Point every foreign key to a row in ``moves`` at that row's survivor.

    The foreign keys are found through the model's reverse relations, hidden
    ones (``related_name="+"``) included, so references from other apps
    (routing, follow-ups) move too.
    """
    if not moves:
        return
    relations = [
        field
        for field in model._meta.get_fields(include_hidden=True)
        if field.auto_created and not field.concrete and not field.many_to_many
    ]
    for relation in relations:
        column = relation.field.attname
        manager = relation.related_model._base_manager
        for loser, survivor in moves.items():
            manager.filter(**{column: loser}).update(**{column: survivor})


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
    _delete_merged(ctx, base.COMPANIES, records)


def _write_contacts(ctx: SyncContext, records: list[base.CrmRecord]) -> None:
    rows = []
    for record in records:
        props = record.properties
        values = {
            "first_name": _text(props.get("firstname"), 120),
            "last_name": _text(props.get("lastname"), 120),
            "email": _text(props.get("email"), 254),
            "phone": _text(props.get("phone"), 40),
            "title": _text(props.get("jobtitle"), 120),
            "account_id": props.get("associatedcompanyid") or None,
            "owner_id": ctx.owner_id(record),
        }
        created = parse_datetime(props.get("createdate"))
        if created is not None:
            values["created_at"] = created
        rows.append((record.id, values))
    _upsert(ctx, Contact, base.CONTACTS, rows, references={"account_id": Account})
    _delete_merged(ctx, base.CONTACTS, records)


def _write_deals(ctx: SyncContext, records: list[base.CrmRecord]) -> None:
    currency = ctx.connection.organization.currency
    rows = []
    modified = {}
    products = {}
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
        # A record without the association, such as one whose association
        # read failed, leaves the stored account as it is.
        if "companies" in record.associations:
            ids = record.associations["companies"]
            values["account_id"] = ids[0] if ids else None
        values.update(deal_fields.mapped_values(ctx, record))
        product = deal_fields.mapped_product(ctx, record, values["amount"])
        if product is not None:
            products[record.id] = product
        rows.append((record.id, values))
        modified[record.id] = record.modified_at

    written = _upsert(
        ctx,
        Deal,
        base.DEALS,
        rows,
        previous=("stage_id",),
        insert_only={"stage_changed_at": modified},
        references={"account_id": Account},
    )
    _record_stage_changes(ctx, rows, modified, written)
    deal_fields.product_lines_write(ctx, products, written)


def _record_stage_changes(ctx, rows, modified: dict, written: dict) -> None:
    """Add a stage change for each new or moved deal and start its sequences."""
    changes = []
    moved = []
    for external_id, values in rows:
        result = written.get(external_id)
        if result is None or not result.changed:
            continue
        old_stage = result.previous.get("stage_id")
        if not result.created and old_stage == values["stage_id"]:
            continue
        changed_at = modified[external_id]
        changes.append((result.id, old_stage, values["stage_id"], changed_at))
        if not result.created:
            moved.append((result.id, changed_at))
    _insert_stage_changes(ctx, changes)
    # A new deal gets its stage time on insert, and a moved one gets it here.
    _set_stage_changed_at(moved)
    # A deal seen for the first time (no previous stage) was not moved: the
    # first sync loads history, which must not start sequences.
    followup_triggers.deals_entered_stage(
        [deal_id for deal_id, _ in moved],
        organization_id=ctx.connection.organization_id,
    )


def _insert_stage_changes(ctx: SyncContext, changes: list[tuple]) -> None:
    """Insert (deal id, from stage id, to stage id, changed at) rows in one statement.

    It uses raw SQL because, in a profile of a 10,000-record sync, the ORM's
    bulk_create took three times as long to build the statement as
    PostgreSQL took to run it.
    """
    if not changes:
        return
    table = connection.ops.quote_name(DealStageChange._meta.db_table)
    columns = list(zip(*changes, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (organization_id, deal_id, from_stage_id, "
            "to_stage_id, changed_at, source) "
            "SELECT %s, change.deal_id, change.from_stage_id, change.to_stage_id, "
            "change.changed_at, %s "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], "
            "%s::timestamptz[]) "
            "AS change(deal_id, from_stage_id, to_stage_id, changed_at)",
            [
                ctx.connection.organization_id,
                ctx.source,
                *(list(column) for column in columns),
            ],
        )


def _set_stage_changed_at(moved: list[tuple[int, dt.datetime]]) -> None:
    if not moved:
        return
    table = connection.ops.quote_name(Deal._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS deal SET stage_changed_at = moved.changed_at "
            "FROM unnest(%s::bigint[], %s::timestamptz[]) AS moved(id, changed_at) "
            "WHERE deal.id = moved.id",
            [[deal_id for deal_id, _ in moved], [at for _, at in moved]],
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
        # A missing association name leaves that link as stored, as when
        # HubSpot's batch association read failed for the record.
        for name, (column, _model) in ENGAGEMENT_LINKS.items():
            if name in record.associations:
                ids = record.associations[name]
                values[column] = ids[0] if ids else None
        rows.append((record.id, values))
    references = {column: model for column, model in ENGAGEMENT_LINKS.values()}
    _upsert(ctx, Activity, object_type, rows, references=references)


# Helpers


@dataclass
class Written:
    """The outcome of one row of an upsert."""

    # None for an unchanged row, which the upsert does not return.
    id: int | None
    created: bool
    # False when the stored row already had every value.
    changed: bool
    # The stored values, before this write, of the columns asked for.
    previous: dict[str, Any]


def _upsert(
    ctx: SyncContext,
    model: type[models.Model],
    object_type: str,
    rows: list[tuple[str, dict[str, Any]]],
    *,
    previous: tuple[str, ...] = (),
    insert_only: dict[str, dict[str, Any]] | None = None,
    references: dict[str, type[models.Model]] | None = None,
) -> dict[str, Written]:
    """Create or update rows by external id and return the outcome by external id.

    Rows whose values have the same columns are written together. Unchanged
    rows are neither written nor counted as updated. ``insert_only`` maps a
    column to values by external id that only a new row takes.
    ``references`` maps a foreign key column to the synced model it points
    at, and the values of that column are then the CRM ids of those rows.
    A CRM id that was never synced gives NULL.
    """
    groups: dict[tuple[str, ...], list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for external_id, values in rows:
        groups[tuple(values)].append((external_id, values))
    written = {}
    for columns, group in groups.items():
        statement = _UpsertStatement(
            ctx, model, columns, previous, insert_only or {}, references or {}
        )
        written.update(statement.execute(group))
    counts = ctx.counts[object_type]
    created = sum(1 for result in written.values() if result.created)
    updated = sum(
        1 for result in written.values() if result.changed and not result.created
    )
    counts.created += created
    counts.updated += updated
    counts.unchanged += len(written) - created - updated
    return written


class _UpsertStatement:
    """One INSERT ... ON CONFLICT for rows that all set the same columns.

    The rows travel as one JSON parameter that ``json_to_recordset`` turns
    into typed columns. A lateral subquery reads each stored row as it was
    before the statement, so the result separates new rows from existing
    ones and returns their previous values.
    The conflict target is the partial unique index on (organization,
    external source, external id) that every synced model has.
    """

    def __init__(
        self,
        ctx: SyncContext,
        model: type[models.Model],
        columns: tuple[str, ...],
        previous: tuple[str, ...],
        insert_only: dict[str, dict[str, Any]],
        references: dict[str, type[models.Model]],
    ):
        self.ctx = ctx
        self.model = model
        self.columns = columns
        self.previous = previous
        self.insert_only = insert_only
        self.references = {
            name: model for name, model in references.items() if name in columns
        }
        self.attnames = {f.attname: f for f in model._meta.concrete_fields}

    def execute(self, rows: list[tuple[str, dict[str, Any]]]) -> dict[str, Written]:
        data = []
        for external_id, values in rows:
            item = {"external_id": external_id, **values}
            for name, by_id in self.insert_only.items():
                item[name] = by_id.get(external_id)
            data.append(item)
        sql, params = self._sql(json.dumps(data, default=str))
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            result = cursor.fetchall()
        return {
            external_id: Written(
                id=row_id,
                created=created,
                changed=changed,
                previous=dict(zip(self.previous, old_values, strict=True)),
            )
            for external_id, row_id, created, changed, *old_values in result
        }

    def _input_type(self, name: str) -> str:
        if name in self.references:
            return "text"
        return self.attnames[name].db_type(connection)

    def _automatic_columns(self) -> list[str]:
        """Return the timestamp columns that a new row gets at the time of writing."""
        written = {*self.columns, *self.insert_only}
        return [
            name
            for name in ("created_at", "updated_at")
            if name in self.attnames and name not in written
        ]

    def _sql(self, data: str) -> tuple[str, list]:
        """Return the statement and its parameters for the rows in JSON ``data``."""
        quote = connection.ops.quote_name
        organization_id = self.ctx.connection.organization_id
        source = self.ctx.source
        now = timezone.now()
        table = quote(self.model._meta.db_table)
        input_columns = ["external_id", *self.columns, *self.insert_only]
        definitions = ", ".join(
            f"{quote(name)} {self._input_type(name)}" for name in input_columns
        )
        # The columns of a new row, each with its SQL expression and parameters.
        insert = {
            "organization_id": ("%s", [organization_id]),
            "public_id": ("gen_random_uuid()", []),
            "external_source": ("%s", [source]),
        }
        for name in input_columns:
            insert[name] = (f"input.{quote(name)}", [])
        for name, model in self.references.items():
            lookup = self._by_external_id(
                quote(model._meta.db_table), "synced.id", f"input.{quote(name)}"
            )
            insert[name] = (lookup, [organization_id, source])
        for name in self._automatic_columns():
            insert[name] = ("%s", [now])
        updates = [f"{quote(name)} = EXCLUDED.{quote(name)}" for name in self.columns]
        if "updated_at" in self.attnames:
            updates.append('"updated_at" = EXCLUDED."updated_at"')
        stored = ", ".join(f"stored.{quote(name)}" for name in self.columns)
        excluded = ", ".join(f"EXCLUDED.{quote(name)}" for name in self.columns)
        # The stored row as it was before this statement, because all parts
        # of one statement read the same snapshot. One index lookup per input
        # row gives both whether it existed and its previous values.
        before = ", ".join(
            f"synced.{quote(name)} AS {quote(name)}" for name in ("id", *self.previous)
        )
        before_lookup = self._by_external_id(
            table, before, "input.external_id", lateral=True
        )
        previous = "".join(f", before.{quote(name)}" for name in self.previous)
        sql = f"""
            WITH input AS (
                SELECT * FROM json_to_recordset(%s::json) AS input({definitions})
            ),
            upserted AS (
                INSERT INTO {table} AS stored ({", ".join(map(quote, insert))})
                SELECT {", ".join(expression for expression, _ in insert.values())}
                FROM input
                ON CONFLICT (organization_id, external_source, external_id)
                    WHERE NOT (external_id = '')
                DO UPDATE SET {", ".join(updates)}
                WHERE ROW({stored}) IS DISTINCT FROM ROW({excluded})
                RETURNING stored.id, stored.external_id
            )
            SELECT input.external_id, upserted.id, before.id IS NULL,
                   upserted.id IS NOT NULL{previous}
            FROM input
            LEFT JOIN LATERAL {before_lookup} AS before ON TRUE
            LEFT JOIN upserted ON upserted.external_id = input.external_id
        """
        params = [data]
        for _, values in insert.values():
            params.extend(values)
        params += [organization_id, source]
        return sql, params

    @staticmethod
    def _by_external_id(
        table: str, columns: str, external_id: str, *, lateral: bool = False
    ) -> str:
        """Return a subquery for ``columns`` of the synced row with that external id.

        A ``lateral`` subquery ends in LIMIT 1, which the unique index makes
        true anyway: it keeps PostgreSQL from turning the lateral join into
        an ordinary join, which it could then run as a hash join over all
        the tenant's rows.

        The organisation and source are compared with subquery values, which
        PostgreSQL plans as unknown values. It then sizes the organisation's
        rows by the average tenant, not by this tenant's statistics. Those
        may predate the tenant's first sync and count it as one row. With
        that estimate, any index that starts with the organisation looks as
        good as the unique index, and each lookup read every row the sync had
        written (docs/benchmarks.md, "CRM sync"). The last condition repeats
        the predicate of the partial unique index, without which PostgreSQL
        cannot use that index.
        """
        return (
            f"(SELECT {columns} FROM {table} AS synced "
            "WHERE synced.organization_id = (SELECT %s::bigint) "
            "AND synced.external_source = (SELECT %s::text) "
            f"AND synced.external_id = {external_id} "
            "AND NOT (synced.external_id = '')"
            f"{' LIMIT 1' if lateral else ''})"
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
