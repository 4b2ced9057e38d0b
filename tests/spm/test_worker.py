"""Tasks sent to a real Celery worker through Redis reach the database."""

import pytest

from spm.models import AuditLog
from spm.tasks import audit_probe_task
from spm.tenancy import tenant_context
from tests.factories import OrganizationFactory
from tests.worker import celery_worker, wait_for  # noqa: F401

pytestmark = pytest.mark.worker


def test_worker_runs_task_in_organisation(celery_worker):
    org = OrganizationFactory(slug="worker-org")
    audit_probe_task.delay(org.pk, "ping")

    def probe_written():
        with tenant_context(org):
            return AuditLog.objects.filter(action="probe.ping").exists()

    assert wait_for(probe_written)
