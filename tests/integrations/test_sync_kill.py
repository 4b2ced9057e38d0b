"""A Celery worker killed with SIGKILL in the middle of a sync loses nothing.

A real worker process syncs a slowed fake HubSpot into one organisation and
is killed after a few committed pages. A new worker resumes the same run.
Every synced table must then match, row by row, a sync of the same portal
that ran without interruption into a second organisation.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
import uuid

import pytest
from django.conf import settings
from django.db import connection as db_connection

from activity.models import (
    Account,
    Activity,
    Contact,
    Deal,
    DealStageChange,
    Pipeline,
    Stage,
)
from integrations import sync, tasks
from integrations.models import OwnerMapping, StageMapping, SyncCursor, SyncRun
from notifications.models import OutboundSettings
from spm.models import Membership
from spm.tenancy import tenant_context
from tests.integrations.conftest import make_connector
from tests.integrations.fake_hubspot import FakeHubSpot, SimulatedClock
from tests.routing.conftest import start_workers, stop_workers
from tests.worker import _wait_until_ready, route_tasks, wait_for

pytestmark = pytest.mark.worker

WORKER_TOKEN = "pat-na1-killed-worker-token"
REFERENCE_TOKEN = "pat-na1-reference-sync-token"
SEEDED_AT = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
# 100 records per listing page: 3 + 3 + 4 + 2 + 1 + 1 pages of records,
# and one empty page of notes.
RECORD_COUNTS = {
    "companies": 300,
    "contacts": 300,
    "deals": 400,
    "calls": 200,
    "emails": 100,
    "meetings": 100,
}
LISTING_PAGES = 15
# Seconds the fake waits before each request of the worker's token, so the
# kill lands while the run is still listing.
REQUEST_DELAY = 0.25
KILL_AFTER_PAGES = 4
STAGES = ["appointmentscheduled", "contractsent", "closedwon", "closedlost"]


class SlowHubSpot(FakeHubSpot):
    """The fake HubSpot, delaying each request made with ``slow_token``."""

    slow_token = WORKER_TOKEN
    delay = 0.0

    def handle(self, method, raw_path, headers, body):
        token = (headers.get("Authorization") or "").removeprefix("Bearer ")
        if token == self.slow_token and self.delay:
            time.sleep(self.delay)
        return super().handle(method, raw_path, headers, body)


def _seed(fake: FakeHubSpot) -> None:
    """Add two owners, one pipeline and the records of RECORD_COUNTS.

    HubSpot ids are numeric: companies from 1000, contacts from 2000, deals
    from 3000, and calls, emails and meetings from 4000, 5000 and 6000.
    """
    fake.add_owner("1", "owner.one@crm.test", "Olive", "One")
    fake.add_owner("2", "owner.two@crm.test", "Omar", "Two")
    fake.add_pipeline(
        "default",
        "Sales Pipeline",
        [
            ("appointmentscheduled", "Appointment Scheduled", False, "0.2"),
            ("contractsent", "Contract Sent", False, "0.9"),
            ("closedwon", "Closed Won", True, "1.0"),
            ("closedlost", "Closed Lost", True, "0.0"),
        ],
    )
    for n in range(RECORD_COUNTS["companies"]):
        fake.add(
            "companies",
            str(1000 + n),
            modified_at=SEEDED_AT + dt.timedelta(seconds=n),
            name=f"Company {n}",
            domain=f"company{n}.test",
            hubspot_owner_id=str(n % 2 + 1),
        )
    for n in range(RECORD_COUNTS["contacts"]):
        fake.add(
            "contacts",
            str(2000 + n),
            modified_at=SEEDED_AT + dt.timedelta(seconds=n),
            firstname=f"First{n}",
            lastname=f"Last{n}",
            email=f"person{n}@company{n}.test",
            associatedcompanyid=str(1000 + n),
            hubspot_owner_id=str(n % 2 + 1),
            createdate="2024-01-15T08:00:00.000Z",
        )
    for n in range(RECORD_COUNTS["deals"]):
        fake.add(
            "deals",
            str(3000 + n),
            modified_at=SEEDED_AT + dt.timedelta(seconds=n),
            dealname=f"Deal {n}",
            amount=f"{1000 + n}.50",
            deal_currency_code="EUR",
            pipeline="default",
            dealstage=STAGES[n % len(STAGES)],
            closedate=f"2024-06-{n % 28 + 1:02d}T00:00:00.000Z",
            createdate="2024-02-01T10:00:00.000Z",
            hubspot_owner_id=str(n % 2 + 1),
            associations={"companies": [str(1000 + n % 300)]},
        )
    titles = {"calls": "hs_call_title", "emails": "hs_email_subject"}
    titles["meetings"] = "hs_meeting_title"
    for first_id, (object_type, title) in zip(
        (4000, 5000, 6000), titles.items(), strict=True
    ):
        for n in range(RECORD_COUNTS[object_type]):
            fake.add(
                object_type,
                str(first_id + n),
                modified_at=SEEDED_AT + dt.timedelta(seconds=n),
                **{title: f"{object_type} {n}"},
                hs_timestamp=f"2024-03-01T{n % 24:02d}:00:00.000Z",
                hubspot_owner_id=str(n % 2 + 1),
            )


def _prepare_org(org, fake: FakeHubSpot, token: str):
    """Allow loopback addresses, add owner 1's member and connect ``fake``."""
    with tenant_context(org):
        OutboundSettings.objects.update_or_create(
            organization=org, defaults={"allow_private_addresses": True}
        )
        Membership.objects.create(
            organization=org,
            display_name="Olive One",
            email="owner.one@crm.test",
            role=Membership.Role.REP,
        )
        return sync.connection_create(
            organization=org,
            actor=None,
            provider="hubspot",
            name="HubSpot",
            base_url=fake.url,
            credentials={"access_token": token},
        )


# Row-by-row comparison


def _natural_key(value):
    """Return a value that is the same for matching rows of two organisations."""
    if isinstance(value, Membership):
        return ("member", value.email)
    if hasattr(value, "external_id"):
        return (type(value).__name__, value.external_source, value.external_id)
    return value


def _row(instance, skip: set[str]) -> tuple:
    values = []
    for field in instance._meta.concrete_fields:
        auto = getattr(field, "auto_now", False) or getattr(
            field, "auto_now_add", False
        )
        if field.primary_key or auto or field.name in skip:
            continue
        if field.is_relation:
            value = _natural_key(getattr(instance, field.name))
        else:
            value = getattr(instance, field.name)
        values.append((field.name, value))
    return tuple(values)


# Fields that differ between two organisations by design: their own
# organisation, connection and random public id, and wall-clock times.
SKIPPED = {"organization", "connection", "public_id"}
CURSOR_TIMES = {"modified_at", "full_sync_started_at", "full_sync_done_at"}
# A deal's created_at is when Attain inserted it (contacts take HubSpot's).
DEAL_TIMES = {"created_at"}


def _synced_tables(org) -> dict[str, list[tuple]]:
    with tenant_context(org):
        synced = {"external_source": "hubspot"}
        tables = {
            "pipelines": Pipeline.objects.filter(**synced),
            "stages": Stage.objects.filter(**synced),
            "accounts": Account.objects.filter(**synced),
            "contacts": Contact.objects.filter(**synced),
            "activities": Activity.objects.filter(**synced),
            "stage changes": DealStageChange.objects.filter(
                deal__external_source="hubspot"
            ),
            "owner mappings": OwnerMapping.objects.all(),
            "stage mappings": StageMapping.objects.all(),
        }
        rows = {
            name: sorted((_row(r, SKIPPED) for r in qs), key=repr)
            for name, qs in tables.items()
        }
        rows["deals"] = sorted(
            (_row(r, SKIPPED | DEAL_TIMES) for r in Deal.objects.filter(**synced)),
            key=repr,
        )
        rows["cursors"] = sorted(
            (_row(r, SKIPPED | CURSOR_TIMES) for r in SyncCursor.objects.all()),
            key=repr,
        )
        return rows


# The test


@pytest.fixture
def slow_hubspot():
    fake = SlowHubSpot().start()
    yield fake
    fake.stop()


@pytest.fixture
def sync_queue(transactional_db, monkeypatch):
    """Send integrations tasks to a private queue that the test's workers read."""
    if db_connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL:
        pytest.skip("Real workers need DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL")
    # The fake listens on http://127.0.0.1, which needs DEBUG in the worker.
    monkeypatch.setenv("DEBUG", "true")
    queue = f"test-sync-{uuid.uuid4().hex[:12]}"
    route_tasks({"integrations.tasks.*": {"queue": queue}})
    from spm.celery import app as celery_app

    celery_app.conf.task_always_eager = False
    try:
        yield queue
    finally:
        celery_app.conf.task_always_eager = True
        route_tasks(settings.CELERY_TASK_ROUTES)


def _start_worker(queue: str, log_dir) -> list:
    log_dir.mkdir()
    workers = start_workers(queue, log_dir, 1)
    _wait_until_ready(workers[0], log_dir / "worker-0.log")
    return workers


def _run(org, run_id: int) -> SyncRun:
    with tenant_context(org):
        return SyncRun.objects.get(pk=run_id)


def test_killed_sync_resumes_to_same_rows(
    sync_queue, personas, slow_hubspot, tmp_path, settings
):
    settings.DEBUG = True
    fake = slow_hubspot
    _seed(fake)
    killed_org, reference_org = personas.org, personas.other_org

    # The reference: one uninterrupted sync in this process.
    clock = SimulatedClock()
    fake.add_token(REFERENCE_TOKEN, clock)
    reference_connection = _prepare_org(reference_org, fake, REFERENCE_TOKEN)
    with tenant_context(reference_org):
        reference_run = sync.sync_run_create(
            connection=reference_connection, kind=SyncRun.Kind.FULL
        )
        sync.sync_run_execute(
            run=reference_run,
            connector=make_connector(fake, clock, token=REFERENCE_TOKEN),
        )
    assert reference_run.status == SyncRun.Status.SUCCEEDED
    # One more page: the listing of archived deals, which is empty here.
    assert reference_run.pages_done == LISTING_PAGES + 1

    # The same portal, synced by a worker that is killed part-way.
    fake.add_token(WORKER_TOKEN)
    fake.delay = REQUEST_DELAY
    connection = _prepare_org(killed_org, fake, WORKER_TOKEN)
    with tenant_context(killed_org):
        run = sync.sync_run_create(connection=connection, kind=SyncRun.Kind.FULL)
    first = _start_worker(sync_queue, tmp_path / "first")
    try:
        tasks.sync_run_task.delay(killed_org.pk, run.pk)
        wait_for(lambda: _run(killed_org, run.pk).pages_done >= KILL_AFTER_PAGES, 30)
        os.kill(first[0].pid, signal.SIGKILL)
        first[0].wait(timeout=10)
    finally:
        stop_workers(first)
    assert first[0].returncode == -signal.SIGKILL
    interrupted = _run(killed_org, run.pk)
    assert interrupted.status == SyncRun.Status.RUNNING
    assert KILL_AFTER_PAGES <= interrupted.pages_done < LISTING_PAGES

    # A new worker takes the run again. The message of the killed task is
    # unacknowledged, and Redis would hand it out again only after the
    # broker's visibility timeout (an hour), so the test sends it again.
    second = _start_worker(sync_queue, tmp_path / "second")
    try:
        tasks.sync_run_task.delay(killed_org.pk, run.pk)
        wait_for(lambda: _run(killed_org, run.pk).status != SyncRun.Status.RUNNING, 40)
    finally:
        stop_workers(second)
    resumed = _run(killed_org, run.pk)

    assert resumed.status == SyncRun.Status.SUCCEEDED, resumed.failure
    # No page was committed twice: the pages add up to one full listing.
    assert resumed.pages_done == LISTING_PAGES + 1
    assert resumed.records_done == sum(RECORD_COUNTS.values())
    assert resumed.counts == reference_run.counts
    killed_rows = _synced_tables(killed_org)
    reference_rows = _synced_tables(reference_org)
    for table, rows in reference_rows.items():
        assert killed_rows[table] == rows, table
    # Spot checks, worked out from the seed, so equal but wrong tables fail.
    assert len(reference_rows["accounts"]) == 300
    assert len(reference_rows["contacts"]) == 300
    assert len(reference_rows["deals"]) == 400
    assert len(reference_rows["activities"]) == 400
    # Owner 1 has a member in both organisations, owner 2 has none.
    members = [dict(row)["membership"] for row in reference_rows["owner mappings"]]
    assert members == [("member", "owner.one@crm.test"), None]
