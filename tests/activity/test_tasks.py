"""The Celery tasks: idempotent reruns, and failures recorded on the job."""

from __future__ import annotations

import pytest
from celery.exceptions import Retry
from django.core.cache import cache
from django.db import OperationalError

from activity import services
from activity.models import Deal, ImportJob
from activity.tasks import import_job_import_task, import_job_validate_task
from spm.tenancy import tenant_context
from tests.activity.conftest import fixture_bytes

Status = ImportJob.Status


@pytest.fixture
def job(org):
    with tenant_context(org):
        return services.import_job_create(
            organization=org,
            actor=None,
            files=[("deals.csv", fixture_bytes("deals_bom_crlf.csv"))],
        )


def test_tasks_validate_then_import(org, job):
    import_job_validate_task.delay(org.pk, job.pk)
    job.refresh_from_db()
    assert job.status == Status.VALIDATED

    with tenant_context(org):
        services.import_job_start(job=job, actor=None, enqueue=False)
    import_job_import_task.delay(org.pk, job.pk)
    job.refresh_from_db()
    assert job.status == Status.DONE
    assert job.progress == 100


def test_rerun_of_finished_tasks_does_nothing(org, job):
    import_job_validate_task.delay(org.pk, job.pk)
    job.refresh_from_db()
    validated_at = job.validated_at

    import_job_validate_task.delay(org.pk, job.pk)
    import_job_import_task.delay(org.pk, job.pk)

    job.refresh_from_db()
    assert job.validated_at == validated_at
    assert job.status == Status.VALIDATED
    with tenant_context(org):
        assert Deal.objects.count() == 0


def test_task_with_wrong_organisation_finds_no_job(personas, job):
    import_job_validate_task.delay(personas.other_org.pk, job.pk)
    job.refresh_from_db()
    assert job.status == Status.PENDING


def test_transient_error_is_retried(org, job, monkeypatch):
    def unavailable(**kwargs):
        raise OperationalError("server closed the connection")

    import_job_validate_task.delay(org.pk, job.pk)
    with tenant_context(org):
        services.import_job_start(job=job, actor=None, enqueue=False)
    monkeypatch.setattr(services, "upsert_records", unavailable)

    # Run eagerly, the task raises the retry instead of queueing it.
    with pytest.raises(Retry):
        import_job_import_task.delay(org.pk, job.pk)

    job.refresh_from_db()
    assert job.status == Status.IMPORTING
    with tenant_context(org):
        assert Deal.objects.count() == 0


def test_task_out_of_retries_fails_job(org, job):
    import_job_validate_task.delay(org.pk, job.pk)
    with tenant_context(org):
        services.import_job_start(job=job, actor=None, enqueue=False)

    error = OperationalError("server closed the connection")
    import_job_import_task.on_failure(error, "task-id", (org.pk, job.pk), {}, None)

    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert job.failure == "OperationalError: server closed the connection"
    assert job.finished_at is not None


def test_other_error_fails_job_at_once(org, job, monkeypatch):
    def broken(**kwargs):
        raise ValueError("bad state")

    import_job_validate_task.delay(org.pk, job.pk)
    with tenant_context(org):
        services.import_job_start(job=job, actor=None, enqueue=False)
    monkeypatch.setattr(services, "upsert_records", broken)

    import_job_import_task.delay(org.pk, job.pk)

    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert job.failure == "ValueError: bad state"


def test_import_expires_closed_deal_counts(
    org, job, django_capture_on_commit_callbacks
):
    version_key = f"goals:closed-deal-counts-version:{org.pk}"
    cache.set(version_key, "before the import")
    import_job_validate_task.delay(org.pk, job.pk)
    with tenant_context(org):
        services.import_job_start(job=job, actor=None, enqueue=False)

    with django_capture_on_commit_callbacks(execute=True):
        import_job_import_task.delay(org.pk, job.pk)

    # The coaching evaluation that the import queues may have set a new one.
    assert cache.get(version_key) != "before the import"


def test_finished_import_notifies_starter(org, job, personas):
    from notifications.models import Notification

    job.created_by = personas.admin.user
    job.save(update_fields=["created_by"])
    import_job_validate_task.delay(org.pk, job.pk)
    with tenant_context(org):
        services.import_job_start(job=job, actor=None, enqueue=False)

    import_job_import_task.delay(org.pk, job.pk)

    with tenant_context(org):
        [notice] = Notification.objects.select_related("event")
    assert notice.member == personas.admin
    assert notice.event.type == "import.finished"
    assert notice.event.title.startswith("Import finished: ")
