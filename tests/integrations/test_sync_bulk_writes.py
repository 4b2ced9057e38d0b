"""Bulk page writes and page fetching ahead in the CRM sync engine."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import DatabaseError
from django.db import connection as db
from django.test.utils import CaptureQueriesContext

from activity.models import Account, Contact, Deal, DealStageChange, Stage
from integrations import sync
from integrations.connectors import base
from integrations.models import OwnerMapping, SyncCursor, SyncRun
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


# Page transactions


@pytest.fixture
def fresh_run(synced_context):
    """Give the synced context a new run with no progress and one earlier error."""
    ctx = synced_context
    ctx.run = SyncRun.objects.create(
        organization=ctx.connection.organization,
        connection=ctx.connection,
        kind=SyncRun.Kind.FULL,
        errors=[{"object_type": "owners", "record_id": "3", "message": "Earlier."}],
    )
    ctx.counts.clear()
    ctx.errors[:] = ctx.run.errors
    return ctx


def listed_page(records, next_after):
    return base.Page(records, next_after)


def test_listed_page_commits_in_four_statements(fresh_run):
    ctx = fresh_run
    cursor = SyncCursor.objects.get(object_type=base.DEALS)
    cursor.page_after = ""
    records = [deal_record(str(9500 + number)) for number in range(100)]

    with CaptureQueriesContext(db) as captured:
        sync._commit_listed_page(ctx, cursor, listed_page(records, "9600"))

    statements = [query["sql"] for query in captured.captured_queries]
    # Inside the test's transaction, the page's BEGIN and COMMIT are a
    # SAVEPOINT and its RELEASE.
    assert len(statements) == 6
    assert statements[0].startswith("SAVEPOINT")
    assert statements[1] == sync.PAGE_SETTINGS_SQL
    assert "activity_deal" in statements[2]
    assert "activity_dealstagechange" in statements[3]
    assert '"integrations_syncrun"' in statements[4]
    assert '"integrations_synccursor"' in statements[4]
    assert statements[5].startswith("RELEASE SAVEPOINT")


def test_listed_page_moves_cursor_and_progress(fresh_run):
    ctx = fresh_run
    cursor = SyncCursor.objects.get(object_type=base.DEALS)
    cursor.page_after = ""
    records = [deal_record(str(9500 + number)) for number in range(100)]

    sync._commit_listed_page(ctx, cursor, listed_page(records, "9600"))

    stored = SyncCursor.objects.get(object_type=base.DEALS)
    assert stored.page_after == "9600"
    run = SyncRun.objects.get(pk=ctx.run.pk)
    assert run.pages_done == 1
    assert run.records_done == 100
    assert run.counts[base.DEALS] == {
        "created": 100,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "failed": 0,
    }
    assert run.counts[base.COMPANIES]["created"] == 0
    assert run.errors == [
        {"object_type": "owners", "record_id": "3", "message": "Earlier."}
    ]


def test_page_errors_are_appended(fresh_run):
    ctx = fresh_run
    cursor = SyncCursor.objects.get(object_type=base.DEALS)
    lost = deal_record("9700", stage="nosuchstage")

    sync._commit_changed_page(ctx, cursor, listed_page([lost], None))
    with CaptureQueriesContext(db) as captured:
        sync._commit_changed_page(ctx, cursor, listed_page([deal_record("9701")], None))

    earlier = {"object_type": "owners", "record_id": "3", "message": "Earlier."}
    unknown_stage = {
        "object_type": "deals",
        "record_id": "9700",
        "message": "Unknown deal stage 'nosuchstage' in pipeline 'default'; "
        "the deal was not synced.",
    }
    run = SyncRun.objects.get(pk=ctx.run.pk)
    assert run.errors == [earlier, unknown_stage]
    assert run.counts[base.DEALS]["failed"] == 1
    assert run.counts[base.DEALS]["created"] == 1
    assert run.pages_done == 2
    # The second page added no error, so its statement leaves the list alone.
    [progress] = [q["sql"] for q in captured.captured_queries if "syncrun" in q["sql"]]
    assert '"errors"' not in progress
    stored = SyncCursor.objects.get(object_type=base.DEALS)
    assert stored.modified_at == MODIFIED_AT
    assert stored.record_id == "9701"


def test_page_commit_fails_without_run_row(fresh_run):
    ctx = fresh_run
    cursor = SyncCursor.objects.get(object_type=base.DEALS)
    run_id = ctx.run.pk
    SyncRun.objects.filter(pk=run_id).delete()

    with pytest.raises(DatabaseError, match=f"SyncRun {run_id} failed: the row was"):
        sync._commit_changed_page(ctx, cursor, listed_page([deal_record("9800")], None))

    assert not Deal.objects.filter(external_id="9800").exists()
    assert ctx.run.pages_done == 0
    assert ctx.run.records_done == 0
    assert ctx.counts[base.DEALS].created == 0


def test_failed_page_keeps_committed_counts(hubspot, clock, connection, monkeypatch):
    seed_portal(hubspot)
    connector = make_connector(hubspot, clock)
    connector.list_page_size = 1
    written_pages = []
    real_write_page = sync.write_page

    def fail_after_second_write(ctx, object_type, records):
        written_pages.append(records[0].id)
        real_write_page(ctx, object_type, records)
        if len(written_pages) == 2:
            raise RuntimeError("connection lost at commit")

    monkeypatch.setattr(sync, "write_page", fail_after_second_write)

    with pytest.raises(RuntimeError, match="connection lost at commit"):
        run_sync(connection, connector)

    # Company 102 was written and counted, then rolled back with its page.
    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.FAILED
    assert run.counts["companies"]["created"] == 1
    assert run.pages_done == 1
    assert run.records_done == 1
    assert Account.objects.filter(external_source=connection.source).count() == 1

    monkeypatch.setattr(sync, "write_page", real_write_page)
    sync.sync_run_execute(run=run, connector=make_connector(hubspot, clock))

    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED
    created = {kind: counts["created"] for kind, counts in run.counts.items()}
    assert created == {
        "companies": 3,
        "contacts": 2,
        "deals": 5,
        "calls": 2,
        "emails": 1,
        "meetings": 1,
        "notes": 0,
    }
    assert run.records_done == 14
    owner_errors = [e for e in run.errors if e["object_type"] == "owners"]
    assert [e["record_id"] for e in owner_errors] == ["3"]


def test_page_transaction_settings(hubspot, clock, connection, monkeypatch):
    seed_portal(hubspot)
    settings_seen = []
    real_write_page = sync.write_page

    def write_and_read_settings(ctx, object_type, records):
        with db.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('synchronous_commit'), "
                "current_setting('plan_cache_mode')"
            )
            settings_seen.append(cursor.fetchone())
        real_write_page(ctx, object_type, records)

    monkeypatch.setattr(sync, "write_page", write_and_read_settings)

    run_sync(connection, make_connector(hubspot, clock))

    # One listing page for each of the seven object types, the notes' empty.
    assert settings_seen == [("off", "force_custom_plan")] * 7
