"""HubSpot companies, contacts and activities that the CRM deleted or merged."""

import datetime as dt
import json
from zoneinfo import ZoneInfo

from activity.models import Account, Activity, Contact, Deal, Lead
from integrations import webhooks
from integrations.models import SyncRun
from measurement.selectors import MetricScope, scorecards_by_member
from routing.engine.accounts import account_for_lead, accounts_on_domain
from routing.models import LeadQualification
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.integrations.conftest import make_connector, run_sync, seed_portal

UTC = ZoneInfo("UTC")


def later() -> dt.datetime:
    """Return a modified time after the cursor a full sync just stored."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)


def march_calls(member) -> int:
    scope = MetricScope(
        member_ids=[member.pk],
        start=dt.date(2024, 3, 1),
        end=dt.date(2024, 4, 1),
        time_zone=UTC,
    )
    return scorecards_by_member(scope)[member.pk].activities["call"]


def incremental(connection, hubspot, clock) -> SyncRun:
    return run_sync(
        connection, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL
    )


def add_contact_calls(hubspot) -> None:
    """Add calls 403 (Rita's, with contact 201) and 404 (Rob's, with contact 202)."""
    for call_id, owner, contact in (("403", "1", "201"), ("404", "2", "202")):
        hubspot.add(
            "calls",
            call_id,
            modified_at=dt.datetime(2024, 3, 1, 9, tzinfo=dt.UTC),
            associations={"contacts": [contact]},
            hs_call_title=f"Call {call_id}",
            hs_timestamp="2024-03-06T10:00:00.000Z",
            hubspot_owner_id=owner,
        )


def test_deleted_call_and_contact_are_removed(personas, hubspot, clock, connection):
    seed_portal(hubspot)
    run_sync(connection, make_connector(hubspot, clock))
    # Call 401 (1 March) is Rita's only call.
    assert march_calls(personas.rep1) == 1
    deleted_at = later()
    hubspot.archive("calls", "401", deleted_at)
    hubspot.archive("contacts", "201", deleted_at)

    run = incremental(connection, hubspot, clock)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert not Activity.objects.filter(external_id="401").exists()
    assert not Contact.objects.filter(external_id="201").exists()
    assert march_calls(personas.rep1) == 0
    assert run.counts["calls"]["deleted"] == 1
    assert run.counts["contacts"]["deleted"] == 1
    assert sorted(Activity.objects.values_list("external_id", flat=True)) == [
        "402",
        "501",
        "601",
    ]
    entry = AuditLog.objects.get(action="crm.activity_deleted")
    assert entry.new == {"source": "hubspot", "external_id": "401", "merged_into": None}
    assert AuditLog.objects.filter(action="crm.contact_deleted").count() == 1

    run = incremental(connection, hubspot, clock)

    assert run.counts["calls"]["deleted"] == 0
    assert run.counts["contacts"]["deleted"] == 0
    assert AuditLog.objects.filter(action="crm.activity_deleted").count() == 1


def test_deleted_company_no_longer_matches_leads(personas, hubspot, clock, connection):
    seed_portal(hubspot)
    run_sync(connection, make_connector(hubspot, clock))
    globex = Account.objects.get(external_id="101")
    lead = Lead(domain="globex.test", company="Globex")
    assert accounts_on_domain("globex.test") == [globex]
    match = account_for_lead(lead)
    assert (match.account, match.account.owner) == (globex, personas.rep1)
    hubspot.archive("companies", "101", later())

    run = incremental(connection, hubspot, clock)

    assert run.counts["companies"]["deleted"] == 1
    assert accounts_on_domain("globex.test") == []
    assert account_for_lead(lead) is None
    # Its deals and contact stay, without the account.
    assert Deal.objects.get(external_id="301").account is None
    assert Deal.objects.get(external_id="304").account is None
    assert Contact.objects.get(external_id="201").account is None


def test_merged_contact_hands_history_to_survivor(personas, hubspot, clock, connection):
    seed_portal(hubspot)
    add_contact_calls(hubspot)
    run_sync(connection, make_connector(hubspot, clock))
    lead = Lead.objects.create(organization=personas.org, email="hank@globex.test")
    qualification = LeadQualification.objects.create(
        organization=personas.org,
        lead=lead,
        known_contact=Contact.objects.get(external_id="201"),
    )

    new_id = hubspot.merge("contacts", "202", "201", later())
    run = incremental(connection, hubspot, clock)

    survivor = Contact.objects.get(external_id=new_id)
    assert survivor.email == "peggy@initech.test"
    assert not Contact.objects.filter(external_id__in=["201", "202"]).exists()
    contacts = dict(Activity.objects.values_list("external_id", "contact_id"))
    assert contacts["403"] == survivor.pk
    assert contacts["404"] == survivor.pk
    qualification.refresh_from_db()
    assert qualification.known_contact_id == survivor.pk
    assert run.counts["contacts"]["created"] == 1
    assert run.counts["contacts"]["deleted"] == 2
    merged = AuditLog.objects.filter(action="crm.contact_deleted")
    assert sorted(e.new["merged_into"] for e in merged) == [new_id, new_id]
    # The calls still count for their owners.
    assert march_calls(personas.rep1) == 2

    run = run_sync(connection, make_connector(hubspot, clock))

    assert run.counts["contacts"]["deleted"] == 0
    assert Contact.objects.count() == 1


def test_deletion_touches_only_this_connections_rows(
    personas, hubspot, clock, connection
):
    seed_portal(hubspot)
    run_sync(connection, make_connector(hubspot, clock))
    imported = Activity.objects.create(
        organization=personas.org,
        external_source="csv",
        external_id="401",
        type=Activity.Type.CALL,
        occurred_at=dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC),
    )
    with tenant_context(personas.other_org):
        elsewhere = Activity.objects.create(
            organization=personas.other_org,
            external_source="hubspot",
            external_id="401",
            type=Activity.Type.CALL,
            occurred_at=dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC),
        )
    hubspot.archive("calls", "401", later())

    run = incremental(connection, hubspot, clock)

    assert run.counts["calls"]["deleted"] == 1
    assert list(
        Activity.objects.filter(external_id="401").values_list("pk", flat=True)
    ) == [imported.pk]
    with tenant_context(personas.other_org):
        assert Activity.objects.filter(pk=elsewhere.pk).exists()


def deletion_event(event_id: int, subscription: str, object_id: str) -> dict:
    return {
        "eventId": event_id,
        "subscriptionId": 7,
        "portalId": 62515,
        "occurredAt": int(later().timestamp() * 1000),
        "subscriptionType": subscription,
        "attemptNumber": 0,
        "objectId": int(object_id),
        "changeSource": "CRM",
    }


def test_deletion_webhooks_remove_company_and_contact(
    personas, hubspot, clock, connection
):
    seed_portal(hubspot)
    run_sync(connection, make_connector(hubspot, clock))
    body = json.dumps(
        [
            deletion_event(1, "contact.deletion", "202"),
            deletion_event(2, "company.deletion", "102"),
        ]
    ).encode()

    stored, _ = webhooks.events_store(
        connection=connection, events=webhooks.parse_hubspot(body)
    )
    statuses = [webhooks.webhook_event_apply(event_pk=row.pk) for row in stored]

    assert statuses == ["applied", "applied"]
    assert not Contact.objects.filter(external_id="202").exists()
    assert not Account.objects.filter(external_id="102").exists()
    assert Deal.objects.get(external_id="302").account is None
    assert AuditLog.objects.filter(action="crm.contact_deleted").count() == 1
    assert AuditLog.objects.filter(action="crm.company_deleted").count() == 1
