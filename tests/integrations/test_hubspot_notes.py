"""HubSpot notes, synced as note activities like calls, emails and meetings."""

import datetime as dt
from zoneinfo import ZoneInfo

from activity.models import Activity
from integrations.models import SyncRun
from spm.models import AuditLog
from tests.integrations.conftest import TOKEN, make_connector, run_sync, seed_portal

UTC = ZoneInfo("UTC")
# 30 words of ten characters: 300 characters, of which a subject keeps 255.
LONG_BODY = "Note text " * 30


def later() -> dt.datetime:
    """Return a modified time after the cursor a full sync just stored."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)


def add_notes(hubspot) -> None:
    """Add note 701 (Rita's, on deal 301 and contact 201) and 702 (Rob's, unlinked)."""
    at = dt.datetime(2024, 3, 1, 9, tzinfo=dt.UTC)
    hubspot.add(
        "notes",
        "701",
        modified_at=at,
        associations={"deals": ["301"], "contacts": ["201"]},
        hs_note_body="Budget approved by the CFO",
        hs_timestamp="2024-03-05T14:30:00.000Z",
        hubspot_owner_id="1",
    )
    hubspot.add(
        "notes",
        "702",
        modified_at=at,
        hs_note_body=LONG_BODY,
        hs_timestamp="2024-03-06T08:15:00.000Z",
        hubspot_owner_id="2",
    )


def notes() -> list[tuple]:
    return sorted(
        Activity.objects.filter(type=Activity.Type.NOTE).values_list(
            "external_id",
            "subject",
            "occurred_at",
            "owner__display_name",
            "deal__external_id",
            "contact__external_id",
            "account__external_id",
        )
    )


def paths_since(hubspot, start: int) -> list[str]:
    return [r.path for r in hubspot.requests(TOKEN)[start:]]


def test_full_sync_stores_notes(personas, hubspot, clock, connection):
    seed_portal(hubspot)
    add_notes(hubspot)

    run = run_sync(connection, make_connector(hubspot, clock))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.counts["notes"]["created"] == 2
    assert notes() == [
        (
            "701",
            "Budget approved by the CFO",
            dt.datetime(2024, 3, 5, 14, 30, tzinfo=UTC),
            "Rita Rep",
            "301",
            "201",
            None,
        ),
        (
            "702",
            LONG_BODY[:255],
            dt.datetime(2024, 3, 6, 8, 15, tzinfo=UTC),
            "Rob Rep",
            None,
            None,
            None,
        ),
    ]
    assert len(LONG_BODY) == 300
    assert len(Activity.objects.get(external_id="702").subject) == 255
    # One listing of the live notes and one of the archived notes.
    sent = paths_since(hubspot, 0)
    assert sent.count("/crm/v3/objects/notes") == 2
    # Owners, pipelines, seven listings, archived deals, six deleted listings.
    assert len(sent) == 2 + 7 + 1 + 6


def test_incremental_sync_picks_up_changed_note(personas, hubspot, clock, connection):
    seed_portal(hubspot)
    add_notes(hubspot)
    run_sync(connection, make_connector(hubspot, clock))
    hubspot.update(
        "notes", "701", modified_at=later(), hs_note_body="Budget approved, PO next"
    )
    hubspot.associate("notes", "701", "contacts", ["202"], modified_at=later())
    hubspot.associate("notes", "701", "companies", ["102"], modified_at=later())
    before = len(hubspot.requests(TOKEN))

    run = run_sync(connection, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.counts["notes"]["updated"] == 1
    assert run.counts["notes"]["created"] == 0
    assert notes()[0] == (
        "701",
        "Budget approved, PO next",
        dt.datetime(2024, 3, 5, 14, 30, tzinfo=UTC),
        "Rita Rep",
        "301",
        "202",
        "102",
    )
    sent = paths_since(hubspot, before)
    # The notes search page, then its three association reads.
    start = sent.index("/crm/v3/objects/notes/search")
    assert sent[start : start + 4] == [
        "/crm/v3/objects/notes/search",
        "/crm/v4/associations/notes/deals/batch/read",
        "/crm/v4/associations/notes/contacts/batch/read",
        "/crm/v4/associations/notes/companies/batch/read",
    ]


def test_archived_note_is_removed(personas, hubspot, clock, connection):
    seed_portal(hubspot)
    add_notes(hubspot)
    run_sync(connection, make_connector(hubspot, clock))
    hubspot.archive("notes", "702", later())

    run = run_sync(connection, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.counts["notes"]["deleted"] == 1
    assert [row[0] for row in notes()] == ["701"]
    entry = AuditLog.objects.get(action="crm.activity_deleted")
    assert entry.new == {"source": "hubspot", "external_id": "702", "merged_into": None}
    # The calls, emails and meeting of seed_portal stay.
    assert Activity.objects.exclude(type=Activity.Type.NOTE).count() == 4
