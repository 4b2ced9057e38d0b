"""Write the objects only the Salesforce connector reads: leads and stage history.

Leads are upserted by (organisation, source, Salesforce Id) like every
synced model. A synced lead is never routed: it gets the empty routing
status and no ``received_at``, so the routing engine and its sweeper never
pick it up, because the CRM already chose its owner.

OpportunityHistory rows arrive attached to their opportunities
(``DealRecord.stage_history``) and become the deal's ``DealStageChange``
rows, one per stage the deal entered, keyed by the history row's Id.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection

from activity.models import Deal, DealStageChange, Lead
from compensation.models import DealLeadLink
from compensation.services_crediting import deal_owner_shares_record
from integrations.connectors import base
from integrations.connectors.salesforce import LEADS, DealRecord, parse_datetime
from integrations.writers import SyncContext, _local_date, _text, _upsert
from routing.normalization import domain_from_email
from spm.services import audit_log_write

# The key of the stage history counts in a run's counts.
STAGE_HISTORY = "stage_history"
# The values of Salesforce's default Lead Status picklist. Other values are
# matched by the words they contain (see _lead_status).
DEFAULT_LEAD_STATUSES = {
    "open - not contacted": Lead.Status.NEW,
    "working - contacted": Lead.Status.WORKING,
    "closed - converted": Lead.Status.CONVERTED,
    "closed - not converted": Lead.Status.DISQUALIFIED,
}
# The Salesforce fields kept in Lead.custom, by their Salesforce names.
CUSTOM_FIELDS = ("Status", "ConvertedOpportunityId")


# Leads


def write_leads(ctx: SyncContext, records: list[base.CrmRecord]) -> None:
    """Upsert a page of Salesforce leads and link the converted ones to their deals."""
    rows = []
    routing_status = {}
    converted = {}
    for record in records:
        props = record.properties
        email = _text(props.get("Email"), 254)
        values = {
            "first_name": _text(props.get("FirstName"), 120),
            "last_name": _text(props.get("LastName"), 120),
            "email": email,
            "phone": _text(props.get("Phone"), 40),
            "company": _text(props.get("Company"), 255),
            "domain": domain_from_email(email) if email else "",
            "country": _text(props.get("Country"), 120),
            "region": _text(props.get("State"), 120),
            "industry": _text(props.get("Industry"), 120),
            "company_size": _employees(ctx, record),
            "source": _text(props.get("LeadSource"), 120),
            "status": _lead_status(props),
            "owner_id": ctx.owner_id(record),
            "converted_at": _converted_at(ctx, props.get("ConvertedDate")),
            "custom": {name: props[name] for name in CUSTOM_FIELDS if props.get(name)},
        }
        created = parse_datetime(props.get("CreatedDate"))
        if created is not None:
            values["created_at"] = created
        rows.append((record.id, values))
        # Only a new row gets the empty routing status, and a later sync
        # leaves the stored routing status alone.
        routing_status[record.id] = Lead.RoutingStatus.NOT_ROUTED
        opportunity_id = props.get("ConvertedOpportunityId")
        if _is_true(props.get("IsConverted")) and opportunity_id:
            converted[record.id] = opportunity_id
    _upsert(ctx, Lead, LEADS, rows, insert_only={"routing_status": routing_status})
    if converted:
        lead_ids = dict(
            Lead.objects.filter(
                external_source=ctx.source, external_id__in=converted
            ).values_list("external_id", "pk")
        )
        _link_deals(ctx, [(lead_ids[lead], deal) for lead, deal in converted.items()])


def delete_leads(ctx: SyncContext, records: list[base.CrmRecord]) -> None:
    """Delete the synced leads that Salesforce deleted or merged into another lead.

    Each deletion is audited with the lead's Salesforce Id and, for a merge,
    the surviving lead's Id (MasterRecordId).
    """
    by_id = {record.id: record for record in records}
    leads = list(Lead.objects.filter(external_source=ctx.source, external_id__in=by_id))
    for lead in leads:
        record = by_id[lead.external_id]
        audit_log_write(
            organization=ctx.connection.organization,
            actor=None,
            action="crm.lead_deleted",
            obj=lead,
            old={"email": lead.email, "owner_id": lead.owner_id},
            new={
                "source": ctx.source,
                "external_id": lead.external_id,
                "master_record_id": record.properties.get("master_record_id"),
            },
        )
    if leads:
        Lead.objects.filter(pk__in=[lead.pk for lead in leads]).delete()
    ctx.counts[LEADS].deleted += len(leads)


def link_converted_leads(ctx: SyncContext, records: list[base.CrmRecord]) -> None:
    """Link deals of a page to the synced leads that were converted into them.

    This covers an opportunity synced after its converted lead, as when a
    lead is converted while a run lists leads.
    """
    deal_ids = [record.id for record in records]
    leads = Lead.objects.filter(
        external_source=ctx.source, custom__ConvertedOpportunityId__in=deal_ids
    ).values_list("pk", "custom__ConvertedOpportunityId")
    _link_deals(ctx, list(leads))


def _link_deals(ctx: SyncContext, pairs: list[tuple[int, str]]) -> None:
    """Create or move a DealLeadLink for each (lead id, opportunity Id) pair.

    An opportunity not synced yet is skipped: link_converted_leads links it
    when it arrives. Deals whose link changed get their reassigned-lead
    shares recorded again.
    """
    if not pairs:
        return
    deals = dict(
        Deal.objects.filter(
            external_source=ctx.source,
            external_id__in=[deal for _, deal in pairs],
        ).values_list("external_id", "pk")
    )
    links = {deals[deal]: lead for lead, deal in pairs if deal in deals}
    stored = dict(
        DealLeadLink.objects.filter(deal_id__in=links).values_list("deal_id", "lead_id")
    )
    changed = {deal: lead for deal, lead in links.items() if stored.get(deal) != lead}
    if not changed:
        return
    DealLeadLink.objects.bulk_create(
        [
            DealLeadLink(
                organization_id=ctx.connection.organization_id,
                deal_id=deal,
                lead_id=lead,
            )
            for deal, lead in changed.items()
        ],
        update_conflicts=True,
        unique_fields=["deal"],
        update_fields=["lead"],
    )
    deal_owner_shares_record(list(changed))


def _lead_status(props: dict) -> str:
    """Map a Salesforce lead to a lead status. IsConverted always gives converted."""
    if _is_true(props.get("IsConverted")):
        return Lead.Status.CONVERTED
    value = " ".join((props.get("Status") or "").lower().split())
    if value in DEFAULT_LEAD_STATUSES:
        return DEFAULT_LEAD_STATUSES[value]
    # NOTE: a custom picklist value is mapped by its words, so a value such
    # as "Nurture" with none of them counts as new.
    if any(word in value for word in ("not converted", "unqualified", "disqual")):
        return Lead.Status.DISQUALIFIED
    if value.startswith("closed"):
        return Lead.Status.DISQUALIFIED
    if "qualified" in value:
        return Lead.Status.QUALIFIED
    if "working" in value or "contacted" in value:
        return Lead.Status.WORKING
    return Lead.Status.NEW


def _employees(ctx: SyncContext, record: base.CrmRecord) -> int | None:
    """Return NumberOfEmployees as a count, or None with a run error if invalid."""
    value = record.properties.get("NumberOfEmployees")
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        ctx.errors.append(
            {
                "object_type": LEADS,
                "record_id": record.id,
                "message": (
                    f"Invalid NumberOfEmployees {value!r} on lead {record.id}: "
                    "expected a whole number of 0 or more. The lead was synced "
                    "without a company size."
                ),
            }
        )
        return None
    return number


def _converted_at(ctx: SyncContext, value: str | None) -> dt.datetime | None:
    """Return the start of the ConvertedDate day in the organisation's time zone.

    ConvertedDate is a date without a time, so the time of day is unknown.
    """
    day = _local_date(value, ctx.time_zone)
    if day is None:
        return None
    return dt.datetime.combine(day, dt.time(), tzinfo=ctx.time_zone)


def _is_true(value: str | None) -> bool:
    return (value or "").lower() == "true"


# Stage history


def write_stage_history(ctx: SyncContext, records: list[base.CrmRecord]) -> None:
    """Replace the stage changes of a page's deals with their OpportunityHistory.

    Runs after the page's deals were written. A history row becomes a stage
    change only when its StageName differs from the row before it, because
    Salesforce also adds a row when only Amount, CloseDate or Probability
    changes. Changes are keyed by (organisation, source, history Id), so a
    row read again updates its change instead of adding one. A deal with
    history loses the changes the deal writer inferred from its new stage
    and any change whose history row no longer exists, and its
    ``stage_changed_at`` becomes the time it entered its last stage.
    Records without history (other connectors, or no readable rows) are
    left as the deal writer stored them.
    """
    histories = {
        record.id: record.stage_history
        for record in records
        if isinstance(record, DealRecord) and record.stage_history
    }
    if not histories:
        return
    deals = dict(
        Deal.objects.filter(
            external_source=ctx.source, external_id__in=histories
        ).values_list("external_id", "pk")
    )
    changes = []
    entered: dict[int, dt.datetime] = {}
    for deal_external_id, entries in histories.items():
        deal_id = deals.get(deal_external_id)
        if deal_id is None:
            # The deal failed to write and its error is listed. Its history
            # comes again with the deal on the run that writes it.
            continue
        deal_changes = _deal_changes(ctx, deal_id, deal_external_id, entries)
        if deal_changes:
            changes += deal_changes
            entered[deal_id] = deal_changes[-1][3]
    if not changes:
        return
    _delete_replaced_changes(ctx, changes)
    _upsert_changes(ctx, changes)
    _set_entered_at(entered)


def _deal_changes(
    ctx: SyncContext, deal_id: int, deal_external_id: str, entries: list
) -> list[tuple]:
    """Return (deal, from, to, changed at, history Id) stage changes, oldest first."""
    changes = []
    previous = None
    for entry in sorted(entries, key=lambda e: (e.changed_at, e.id)):
        stage = ctx.stages.get(entry.stage)
        if stage is None:
            ctx.fail(
                STAGE_HISTORY,
                entry.id,
                f"Unknown stage {entry.stage!r} in OpportunityHistory {entry.id} "
                f"of opportunity {deal_external_id}; the row was not imported.",
            )
            continue
        if stage.pk == previous:
            continue
        changes.append((deal_id, previous, stage.pk, entry.changed_at, entry.id))
        previous = stage.pk
    return changes


def _delete_replaced_changes(ctx: SyncContext, changes: list[tuple]) -> None:
    deal_ids = {change[0] for change in changes}
    history_ids = {change[4] for change in changes}
    stale = DealStageChange.objects.filter(
        deal_id__in=deal_ids, source=ctx.source
    ).exclude(external_id__in=history_ids)
    # Changes the deal writer inferred have no history Id and are not counted.
    removed = stale.exclude(external_id="").count()
    stale.delete()
    ctx.counts[STAGE_HISTORY].deleted += removed


def _upsert_changes(ctx: SyncContext, changes: list[tuple]) -> None:
    """Insert or update the changes by history Id in one statement and count them."""
    table = connection.ops.quote_name(DealStageChange._meta.db_table)
    columns = list(zip(*changes, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS stored (organization_id, deal_id, "
            "from_stage_id, to_stage_id, changed_at, external_id, source) "
            "SELECT %s, change.deal_id, change.from_stage_id, change.to_stage_id, "
            "change.changed_at, change.external_id, %s "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], "
            "%s::timestamptz[], %s::text[]) "
            "AS change(deal_id, from_stage_id, to_stage_id, changed_at, external_id) "
            "ON CONFLICT (organization_id, source, external_id) "
            "WHERE NOT (external_id = '') "
            "DO UPDATE SET deal_id = EXCLUDED.deal_id, "
            "from_stage_id = EXCLUDED.from_stage_id, "
            "to_stage_id = EXCLUDED.to_stage_id, changed_at = EXCLUDED.changed_at "
            "WHERE ROW(stored.deal_id, stored.from_stage_id, stored.to_stage_id, "
            "stored.changed_at) IS DISTINCT FROM ROW(EXCLUDED.deal_id, "
            "EXCLUDED.from_stage_id, EXCLUDED.to_stage_id, EXCLUDED.changed_at) "
            # xmax is 0 on a row this statement inserted, and set on one it updated.
            "RETURNING (stored.xmax = 0)",
            [
                ctx.connection.organization_id,
                ctx.source,
                *(list(column) for column in columns),
            ],
        )
        written = [created for (created,) in cursor.fetchall()]
    counts = ctx.counts[STAGE_HISTORY]
    created = sum(1 for value in written if value)
    counts.created += created
    counts.updated += len(written) - created
    counts.unchanged += len(changes) - len(written)


def _set_entered_at(entered: dict[int, dt.datetime]) -> None:
    table = connection.ops.quote_name(Deal._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS deal SET stage_changed_at = entered.changed_at "
            "FROM unnest(%s::bigint[], %s::timestamptz[]) "
            "AS entered(id, changed_at) "
            "WHERE deal.id = entered.id "
            "AND deal.stage_changed_at IS DISTINCT FROM entered.changed_at",
            [list(entered), list(entered.values())],
        )
