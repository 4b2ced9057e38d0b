"""One executing run per connection, whatever queued it and however long it runs.

A second database session plays a worker that is executing a run of the same
connection, so it takes the connection's run lock. Closing that session plays
the worker dying, which ends its session and so releases the lock.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from django.db import connection as db
from django.utils import timezone

from integrations import run_lock, services, sync, tasks
from integrations.models import SyncCursor, SyncRun
from spm.tenancy import tenant_context
from tests.integrations.conftest import make_connector, seed_portal


@pytest.fixture
def other_worker(connection):
    """Return a session that holds ``connection``'s run lock until closed."""
    session = psycopg.connect(**db.get_connection_params(), autocommit=True)
    session.execute(
        "SELECT pg_advisory_lock(%s, %s)", [run_lock.LOCK_CLASS, connection.pk]
    )
    yield session
    session.close()


def _queued_run(connection, kind=SyncRun.Kind.FULL) -> SyncRun:
    with tenant_context(connection.organization):
        return sync.sync_run_create(connection=connection, kind=kind)


def test_run_skipped_while_locked(connection, hubspot, clock, other_worker):
    seed_portal(hubspot)
    run = _queued_run(connection)

    sync.sync_run_execute(run=run, connector=make_connector(hubspot, clock))

    run.refresh_from_db()
    assert run.status == SyncRun.Status.SKIPPED
    assert run.failure.startswith("Another sync of this connection was running")
    assert run.finished_at is not None
    assert (run.pages_done, run.records_done, run.api_calls) == (0, 0, 0)
    assert hubspot.requests() == []
    with tenant_context(connection.organization):
        assert not SyncCursor.objects.filter(connection=connection).exists()


def test_run_proceeds_after_worker_dies(connection, hubspot, clock, other_worker):
    seed_portal(hubspot)
    skipped = _queued_run(connection)
    sync.sync_run_execute(run=skipped, connector=make_connector(hubspot, clock))

    other_worker.close()
    run = _queued_run(connection)
    sync.sync_run_execute(run=run, connector=make_connector(hubspot, clock))

    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.records_done > 0
    # A skipped run stays skipped when its task is delivered again.
    sync.sync_run_execute(run=skipped, connector=make_connector(hubspot, clock))
    skipped.refresh_from_db()
    assert skipped.status == SyncRun.Status.SKIPPED


def test_lock_released_after_run(connection, hubspot, clock):
    seed_portal(hubspot)
    sync.sync_run_execute(
        run=_queued_run(connection), connector=make_connector(hubspot, clock)
    )
    assert run_lock.is_executing(connection.pk) is False

    failing = make_connector(hubspot, clock, token="pat-na1-revoked-token")
    with pytest.raises(Exception):  # noqa: B017 - the run records the error
        sync.sync_run_execute(run=_queued_run(connection), connector=failing)
    assert run_lock.is_executing(connection.pk) is False


def test_lock_is_held_while_the_run_executes(connection, hubspot, clock):
    seed_portal(hubspot)
    seen = []
    connector = make_connector(hubspot, clock)
    owners = connector.owners

    def owners_while_running():
        with psycopg.connect(**db.get_connection_params()) as session:
            seen.append(
                session.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)",
                    [run_lock.LOCK_CLASS, connection.pk],
                ).fetchone()[0]
            )
        return owners()

    connector.owners = owners_while_running
    sync.sync_run_execute(run=_queued_run(connection), connector=connector)

    assert seen == [False]


def test_stale_running_run_blocks_queuing(connection, other_worker):
    stale = _queued_run(connection, kind=SyncRun.Kind.INCREMENTAL)
    with tenant_context(connection.organization):
        SyncRun.objects.filter(pk=stale.pk).update(
            status=SyncRun.Status.RUNNING,
            created_at=timezone.now() - tasks.RUN_STALE_AFTER - dt.timedelta(minutes=1),
        )

        created = sync.sync_run_create_unless_busy(
            connection=connection,
            kind=SyncRun.Kind.INCREMENTAL,
            stale_after=tasks.RUN_STALE_AFTER,
        )

        assert created is None
        assert SyncRun.objects.filter(connection=connection).count() == 1
        with pytest.raises(services.SyncRejectedError) as rejected:
            services.sync_now(connection=connection, actor=None)
    assert (
        str(rejected.value)
        == "A sync of HubSpot is still running; wait for it to finish."
    )


def test_free_lock_allows_queuing(connection, other_worker):
    other_worker.close()
    with tenant_context(connection.organization):
        created = sync.sync_run_create_unless_busy(
            connection=connection,
            kind=SyncRun.Kind.INCREMENTAL,
            stale_after=tasks.RUN_STALE_AFTER,
        )
    assert created is not None


def test_lock_in_other_database_ignored(connection):
    """Another database's run of a connection with the same id is not this one's."""
    params = {**db.get_connection_params(), "dbname": "postgres"}
    with psycopg.connect(**params, autocommit=True) as session:
        session.execute(
            "SELECT pg_advisory_lock(%s, %s)", [run_lock.LOCK_CLASS, connection.pk]
        )

        assert not run_lock.is_executing(connection.pk)
        with run_lock.executing(connection.pk) as acquired:
            assert acquired
