from django.conf import settings

from integrations import tasks
from integrations.models import CrmConnection, SyncRun
from tests.integrations.conftest import TOKEN, seed_portal


def test_beat_runs_incremental_sync_every_five_minutes():
    entry = settings.CELERY_BEAT_SCHEDULE["integrations-sync-incremental"]

    assert entry["task"] == "integrations.tasks.sync_incremental_all_task"
    assert entry["schedule"] == 300.0
    assert settings.CELERY_TASK_ROUTES["integrations.tasks.*"] == {"queue": "sync"}


def test_beat_task_syncs_active_connections(personas, hubspot, connection):
    seed_portal(hubspot)
    hubspot.add_token(TOKEN)  # the real clock, as a worker runs

    tasks.sync_incremental_all_task()

    run = SyncRun.objects.get()
    assert run.kind == SyncRun.Kind.INCREMENTAL
    assert run.status == SyncRun.Status.SUCCEEDED
    # The first run of a connection lists everything.
    assert run.counts["deals"]["created"] == 5


def test_beat_task_skips_paused_and_busy_connections(personas, hubspot, connection):
    connection.status = CrmConnection.Status.PAUSED
    connection.save()

    tasks.sync_incremental_all_task()
    assert SyncRun.objects.count() == 0

    connection.status = CrmConnection.Status.ACTIVE
    connection.save()
    SyncRun.objects.create(
        connection=connection, kind=SyncRun.Kind.FULL, status=SyncRun.Status.RUNNING
    )
    tasks.sync_incremental_all_task()
    assert SyncRun.objects.count() == 1
