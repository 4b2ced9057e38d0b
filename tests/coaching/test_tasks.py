"""Coaching tasks: beat fan-out, the import hook and the beat schedule."""

import datetime as dt

from django.conf import settings

from activity import services as import_services
from activity.models import ImportJob
from activity.tasks import import_job_import_task
from coaching import tasks
from coaching.models import Alert
from spm.tenancy import tenant_context
from tests.activity.conftest import fixture_bytes, validate
from tests.coaching.conftest import only_rule
from tests.measurement.builders import make_deal


def _stale_deal(personas):
    """An open deal created in 2020 and never touched: stale on any day since."""
    only_rule(personas.org, "stale_open_deal")
    only_rule(personas.other_org, "stale_open_deal")
    make_deal(
        personas.rep1, personas.stages["Engaging"], "10.00", None, dt.date(2020, 1, 1)
    )
    make_deal(
        personas.other_rep,
        personas.other_stages["Engaging"],
        "10.00",
        None,
        dt.date(2020, 1, 1),
    )


def test_hourly_task_evaluates_every_organisation(personas):
    _stale_deal(personas)

    tasks.coaching_evaluate_all_task()

    with tenant_context(personas.org):
        assert list(Alert.objects.values_list("member_id", flat=True)) == [
            personas.rep1.pk
        ]
    with tenant_context(personas.other_org):
        assert list(Alert.objects.values_list("member_id", flat=True)) == [
            personas.other_rep.pk
        ]


def test_hourly_task_queues_one_task_per_organisation(personas, monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.coaching_evaluate_task, "delay", queued.append)
    monkeypatch.setattr(tasks.coaching_recovery_check_task, "delay", queued.append)
    monkeypatch.setattr(tasks.coaching_digest_task, "delay", queued.append)

    tasks.coaching_evaluate_all_task()
    tasks.coaching_recovery_check_all_task()
    tasks.coaching_digest_all_task()

    organizations = sorted([personas.org.pk, personas.other_org.pk])
    assert queued == organizations * 3


def test_task_for_missing_organisation_does_nothing(personas):
    tasks.coaching_evaluate_task(10**9)
    assert not Alert.unscoped.exists()


def test_finished_import_queues_evaluation_on_commit(
    personas, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(tasks.coaching_evaluate_task, "delay", queued.append)
    job = validate(personas.org, {"deals.csv": fixture_bytes("deals_bom_crlf.csv")})
    with tenant_context(personas.org):
        import_services.import_job_start(job=job, actor=None, enqueue=False)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        import_job_import_task(personas.org.pk, job.pk)

    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    # One callback expires the cached closed-deal counts, the other queues.
    assert len(callbacks) == 2
    assert queued == [personas.org.pk]


def test_unfinished_import_queues_nothing(
    personas, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(tasks.coaching_evaluate_task, "delay", queued.append)
    job = validate(personas.org, {"deals.csv": fixture_bytes("deals_bom_crlf.csv")})

    # The job is validated, not importing, so the import task does nothing.
    with django_capture_on_commit_callbacks(execute=True):
        import_job_import_task(personas.org.pk, job.pk)

    assert queued == []


def test_beat_schedule_names_the_tasks():
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["coaching-evaluate"]["task"] == (
        "coaching.tasks.coaching_evaluate_all_task"
    )
    assert schedule["coaching-evaluate"]["schedule"] == 3600
    assert schedule["coaching-recovery-check"]["schedule"] == 86400
    assert schedule["coaching-digest"]["schedule"] == 3600
