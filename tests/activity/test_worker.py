"""An import job run end to end by a real Celery worker through Redis."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction

from activity import services
from activity.models import Deal, ImportJob
from spm.tenancy import tenant_context
from tests.activity.conftest import fixture_bytes
from tests.worker import wait_for

pytestmark = pytest.mark.worker
Status = ImportJob.Status


def _status(job: ImportJob) -> str:
    job.refresh_from_db()
    return job.status


def test_worker_validates_and_imports(celery_worker, personas):
    org = personas.org
    with tenant_context(org):
        job = services.import_job_create(
            organization=org,
            actor=personas.admin.user,
            files=[("deals.csv", fixture_bytes("deals_bom_crlf.csv"))],
        )
        mappings = {f.pk: (f.kind, f.mapping) for f in job.files.all()}
        with transaction.atomic():
            services.import_job_map(job=job, actor=None, mappings=mappings)

        wait_for(lambda: _status(job) in (Status.VALIDATED, Status.FAILED))
        assert job.status == Status.VALIDATED, job.failure
        assert job.invalid_rows == 0

        with transaction.atomic():
            services.import_job_start(job=job, actor=None)
        wait_for(lambda: _status(job) in (Status.DONE, Status.FAILED))
        assert job.status == Status.DONE, job.failure
        assert job.progress == 100

        won = Deal.objects.select_related("stage").get(external_id="Q1")
        assert won.stage.is_won
        assert won.amount == Decimal("1054")
        assert won.close_date == dt.date(2017, 3, 1)
        assert Deal.objects.count() == job.valid_rows
