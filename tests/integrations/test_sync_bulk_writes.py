"""Bulk page writes and page fetching ahead in the CRM sync engine."""

import datetime as dt
import threading
from decimal import Decimal

import pytest

from activity.models import Account, Contact, Deal, DealStageChange, Stage
from integrations import sync
from integrations.connectors import base
from integrations.models import OwnerMapping, SyncCursor
from integrations.writers import SyncContext, write_page
from spm.tenancy import tenant_context
from tests.integrations.conftest import make_connector, run_sync, seed_portal

MODIFIED_AT = dt.datetime(2024, 5, 2, 10, 30, tzinfo=dt.UTC)
MOVED_AT = dt.datetime(2024, 5, 9, 16, 0, tzinfo=dt.UTC)


@pytest.fixture
def synced_context(hubspot, clock, connection):
    """Return a write context after one full sync of the seeded portal."""
    seed_portal(hubspot)
    run = run_sync(connection, make_connector(hubspot, clock))
    with tenant_context(connection.organization):
        ctx = SyncContext(connection=connection, run=run)
        ctx.owners = dict(
            OwnerMapping.objects.filter(connection=connection).values_list(
                "owner_id", "membership_id"
            )
        )
        ctx.stages = {
            stage.external_id: stage
            for stage in Stage.objects.filter(external_source=connection.source)
        }
        yield ctx


def deal_record(
    record_id, stage="appointmentscheduled", modified_at=MODIFIED_AT, **extra
):
    properties = {
        "dealname": f"Deal {record_id}",
        "amount": "1500.5",
        "deal_currency_code": "EUR",
        "pipeline": "default",
        "dealstage": stage,
        "closedate": "2024-06-30",
        "createdate": "2024-05-01T08:00:00Z",
        "hubspot_owner_id": "1",
    }
    associations = extra.pop("associations", {"companies": ["101"]})
    properties.update(extra)
    return base.CrmRecord(
        id=record_id,
        modified_at=modified_at,
        properties=properties,
        associations=associations,
    )


def write(ctx, object_type, records):
    # The test's transaction wraps the page, as a sync's page transaction does.
    write_page(ctx, object_type, records)


def test_new_deals_page_takes_two_statements(synced_context, django_assert_num_queries):
    records = [deal_record(str(9000 + number)) for number in range(100)]

    # One upsert for the deals, one insert for their first stage changes.
    with django_assert_num_queries(2):
        write(synced_context, base.DEALS, records)

    deals = Deal.objects.filter(external_id__startswith="90")
    assert deals.count() == 100
    deal = deals.get(external_id="9042")
    assert deal.amount == Decimal("1500.50")
    assert deal.account.external_id == "101"
    assert deal.stage.external_id == "appointmentscheduled"
    assert deal.stage_changed_at == MODIFIED_AT
    change = DealStageChange.objects.get(deal=deal)
    assert change.from_stage is None
    assert change.changed_at == MODIFIED_AT
    counts = synced_context.counts[base.DEALS]
    assert counts.created == 100
    assert counts.updated == 0


def test_unchanged_deals_are_not_rewritten(synced_context, django_assert_num_queries):
    records = [deal_record("9100"), deal_record("9101")]
    write(synced_context, base.DEALS, records)
    before = dict(
        Deal.objects.filter(external_id__in=["9100", "9101"]).values_list(
            "external_id", "updated_at"
        )
    )

    with django_assert_num_queries(1):
        write(synced_context, base.DEALS, records)

    after = dict(
        Deal.objects.filter(external_id__in=["9100", "9101"]).values_list(
            "external_id", "updated_at"
        )
    )
    assert after == before
    counts = synced_context.counts[base.DEALS]
    assert counts.created == 2
    assert counts.updated == 0
    assert counts.unchanged == 2
    assert DealStageChange.objects.filter(deal__external_id="9100").count() == 1


def test_moved_deal_records_stage_change(synced_context, django_assert_num_queries):
    write(synced_context, base.DEALS, [deal_record("9200")])

    moved = deal_record("9200", stage="closedwon", modified_at=MOVED_AT)
    # Upsert, stage change, stage time, and the follow-up trigger's lookup.
    with django_assert_num_queries(4):
        write(synced_context, base.DEALS, [moved])

    deal = Deal.objects.get(external_id="9200")
    assert deal.stage.external_id == "closedwon"
    assert deal.stage_changed_at == MOVED_AT
    change = DealStageChange.objects.get(deal=deal, from_stage__isnull=False)
    assert change.from_stage.external_id == "appointmentscheduled"
    assert change.to_stage.external_id == "closedwon"
    assert change.changed_at == MOVED_AT
    assert synced_context.counts[base.DEALS].updated == 1


def test_search_record_keeps_deal_account(synced_context):
    write(synced_context, base.DEALS, [deal_record("9300"), deal_record("9301")])

    # A listing record moves 9300 to company 102. A search record carries no
    # associations, so 9301 keeps company 101 while its amount changes.
    listed = deal_record("9300", associations={"companies": ["102"]})
    searched = deal_record("9301", associations={}, amount="99")
    write(synced_context, base.DEALS, [listed, searched])

    accounts = dict(
        Deal.objects.filter(external_id__in=["9300", "9301"]).values_list(
            "external_id", "account__external_id"
        )
    )
    assert accounts == {"9300": "102", "9301": "101"}
    assert Deal.objects.get(external_id="9301").amount == Decimal("99.00")
    assert synced_context.counts[base.DEALS].updated == 2


def test_contact_of_unsynced_company_has_no_account(synced_context):
    record = base.CrmRecord(
        id="9400",
        modified_at=MODIFIED_AT,
        properties={
            "firstname": "Nora",
            "lastname": "Nobody",
            "email": "nora@nowhere.test",
            "associatedcompanyid": "999",
            "hubspot_owner_id": "2",
        },
    )

    write(synced_context, base.CONTACTS, [record])

    contact = Contact.objects.get(external_id="9400")
    assert contact.account_id is None
    assert contact.owner.display_name == "Rob Rep"
    assert not Account.objects.filter(external_id="999").exists()
    assert synced_context.counts[base.CONTACTS].created == 1


def test_failed_write_stops_page_fetching(hubspot, clock, connection, monkeypatch):
    seed_portal(hubspot)
    connector = make_connector(hubspot, clock)
    connector.list_page_size = 1
    written_pages = []

    def fail_on_second_page(ctx, object_type, records):
        written_pages.append(records[0].id)
        if len(written_pages) == 2:
            raise RuntimeError("disk full")
        real_write_page(ctx, object_type, records)

    real_write_page = sync.write_page
    monkeypatch.setattr(sync, "write_page", fail_on_second_page)

    with pytest.raises(RuntimeError, match="disk full"):
        run_sync(connection, connector)

    assert written_pages == ["101", "102"]
    fetchers = [t for t in threading.enumerate() if t.name == "crm-sync-fetch"]
    assert fetchers == []
    assert Account.objects.filter(external_source=connection.source).count() == 1
    assert SyncCursor.objects.get(object_type="companies").page_after == "102"
    # The worker fetched at most two pages beyond the failed one.
    listings = [r for r in hubspot.requests() if r.path == "/crm/v3/objects/companies"]
    assert len(listings) <= 4
