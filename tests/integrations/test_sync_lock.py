"""One sync run per connection: concurrent starts queue a single run.

The first start is held inside its transaction, after its check and before
its run is created, while the second start begins. Without the row lock the
second start would see no pending run and create another.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from integrations import services, sync, tasks
from integrations.models import CrmConnection, SyncRun
from spm.tenancy import tenant_context

HOLD_SECONDS = 0.5


@pytest.fixture
def held_first_create(monkeypatch):
    """Make the first run creation wait HOLD_SECONDS after signalling ``entered``."""
    entered = threading.Event()
    original = sync.sync_run_create
    calls = []

    def create(*, connection, kind):
        calls.append(kind)
        if len(calls) == 1:
            entered.set()
            time.sleep(HOLD_SECONDS)
        return original(connection=connection, kind=kind)

    monkeypatch.setattr(sync, "sync_run_create", create)
    return entered


def _in_thread(org, action) -> threading.Thread:
    outcome = {}

    def target() -> None:
        try:
            with tenant_context(org):
                outcome["value"] = action()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.outcome = outcome
    thread.start()
    return thread


def _beat_start(connection):
    return sync.sync_run_create_unless_busy(
        connection=connection,
        kind=SyncRun.Kind.INCREMENTAL,
        stale_after=tasks.RUN_STALE_AFTER,
    )


def _runs(org) -> list[SyncRun]:
    with tenant_context(org):
        return list(SyncRun.objects.all())


@pytest.fixture
def no_task_queued(monkeypatch):
    """Keep the queued runs queued: these tests count runs, not their results."""
    monkeypatch.setattr(tasks.sync_run_task, "delay", lambda *args: None)


def test_beat_then_sync_now_one_run(
    transactional_db, personas, connection, held_first_create, no_task_queued
):
    org = personas.org

    first = _in_thread(org, lambda: _beat_start(connection))
    assert held_first_create.wait(5)
    second = _in_thread(
        org, lambda: services.sync_now(connection=connection, actor=personas.admin.user)
    )
    first.join(10)
    second.join(10)

    runs = _runs(org)
    assert len(runs) == 1
    assert runs[0].kind == SyncRun.Kind.INCREMENTAL
    assert first.outcome["value"].pk == runs[0].pk
    assert isinstance(second.outcome["error"], services.SyncRejectedError)
    assert "already queued" in str(second.outcome["error"])


def test_sync_now_then_beat_one_run(
    transactional_db, personas, connection, held_first_create, no_task_queued
):
    org = personas.org

    first = _in_thread(
        org, lambda: services.sync_now(connection=connection, actor=personas.admin.user)
    )
    assert held_first_create.wait(5)
    second = _in_thread(org, lambda: _beat_start(connection))
    first.join(10)
    second.join(10)

    runs = _runs(org)
    assert len(runs) == 1
    # "Sync now" came first, and a first run is a full one.
    assert runs[0].kind == SyncRun.Kind.FULL
    assert first.outcome["value"].pk == runs[0].pk
    assert second.outcome == {"value": None}


def test_two_beat_ticks_one_run(
    transactional_db, personas, connection, held_first_create, no_task_queued
):
    org = personas.org

    first = _in_thread(org, tasks.sync_incremental_all_task)
    assert held_first_create.wait(5)
    second = _in_thread(org, tasks.sync_incremental_all_task)
    first.join(10)
    second.join(10)

    assert first.outcome == {"value": None}
    assert second.outcome == {"value": None}
    assert len(_runs(org)) == 1


def test_beat_skips_connection_paused_before_lock(personas, connection, no_task_queued):
    # The beat listed the connection as active, then an admin paused it.
    CrmConnection.objects.filter(pk=connection.pk).update(
        status=CrmConnection.Status.PAUSED
    )

    assert _beat_start(connection) is None
    assert SyncRun.objects.count() == 0
