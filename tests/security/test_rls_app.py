"""Pages, the API and Celery tasks work under row-level security, each in its tenant."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.urls import reverse

from activity import services
from activity.models import Deal, ImportJob
from activity.tasks import import_job_import_task, import_job_validate_task
from spm.models import Membership
from spm.services import api_key_create
from spm.tenancy import tenant_context
from tests.conftest import login
from tests.worker import wait_for

Status = ImportJob.Status

# Rita Rep is a member of Acme, and Oona Rep a member of Globex only.
DEALS_CSV = (
    b"opportunity_id,sales_agent,product,account,deal_stage,engage_date,"
    b"close_date,close_value\n"
    b"R1,Rita Rep,GTX Basic,Cancity,Won,2024-01-02,2024-02-01,500\n"
    b"R2,Oona Rep,GTX Basic,Cancity,Lost,2024-01-03,2024-02-02,0\n"
)


def test_page_shows_its_organisation(client, personas, deals, rls_role):
    login(client, personas.admin)
    response = client.get(reverse("spm:members", kwargs={"org_slug": "acme"}))
    assert response.status_code == 200
    assert "Rita Rep" in response.text
    assert "Oona Rep" not in response.text


def test_dashboard_shows_its_organisation(client, personas, deals, rls_role):
    login(client, personas.admin)
    url = reverse("measurement:team", kwargs={"org_slug": "acme"})
    response = client.get(url)
    assert response.status_code == 200
    assert "Rita Rep" in response.text
    assert "Oona Rep" not in response.text


def test_api_key_sees_its_organisation(client, personas, deals, rls_role):
    _api_key, key = api_key_create(organization=personas.org, name="rls")
    response = client.get(reverse("api-deals"), HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    returned = {deal["external_id"] for deal in response.json()["results"]}
    assert returned == {deal.external_id for deal in deals.acme}


def _import_job(personas) -> ImportJob:
    with tenant_context(personas.org):
        return services.import_job_create(
            organization=personas.org,
            actor=None,
            files=[("deals.csv", DEALS_CSV)],
        )


def _assert_imported_into_acme_only(personas) -> None:
    with tenant_context(personas.org):
        owners = dict(Deal.objects.values_list("external_id", "owner_id"))
        new_oona = Membership.objects.get(display_name="Oona Rep")
    assert owners == {"R1": personas.rep1.pk, "R2": new_oona.pk}
    assert new_oona.pk != personas.other_rep.pk
    with tenant_context(personas.other_org):
        assert Deal.objects.count() == 0


def test_eager_task_sees_its_organisation(personas, rls_role):
    job = _import_job(personas)
    import_job_validate_task.delay(personas.org.pk, job.pk)
    job.refresh_from_db()
    assert job.status == Status.VALIDATED, job.failure

    with tenant_context(personas.org):
        services.import_job_start(job=job, actor=None, enqueue=False)
    import_job_import_task.delay(personas.org.pk, job.pk)
    job.refresh_from_db()
    assert job.status == Status.DONE, job.failure
    _assert_imported_into_acme_only(personas)


def _status(job: ImportJob) -> str:
    job.refresh_from_db()
    return job.status


@pytest.mark.worker
def test_worker_task_sees_its_organisation(celery_worker, personas):
    """The worker connects with the test run's role: the application role in CI."""
    job = _import_job(personas)
    with tenant_context(personas.org):
        mappings = {f.pk: (f.kind, f.mapping) for f in job.files.all()}
        with transaction.atomic():
            services.import_job_map(job=job, actor=None, mappings=mappings)
    wait_for(lambda: _status(job) in (Status.VALIDATED, Status.FAILED))
    assert job.status == Status.VALIDATED, job.failure

    with tenant_context(personas.org), transaction.atomic():
        services.import_job_start(job=job, actor=None)
    wait_for(lambda: _status(job) in (Status.DONE, Status.FAILED))
    assert job.status == Status.DONE, job.failure
    _assert_imported_into_acme_only(personas)
