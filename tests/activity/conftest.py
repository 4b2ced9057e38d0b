"""Helpers of the import tests: fixture files and a one-call import."""

from __future__ import annotations

from pathlib import Path

import pytest

from activity import services
from activity.models import Account, Deal, ImportJob, Product
from spm.models import Membership, Organization
from spm.tenancy import tenant_context

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def validate(
    organization: Organization, files: dict[str, bytes], preset: str = ""
) -> ImportJob:
    """Create a job for ``files`` (name -> content) and validate it."""
    with tenant_context(organization):
        job = services.import_job_create(
            organization=organization,
            actor=None,
            files=list(files.items()),
            preset_name=preset,
        )
        return services.import_job_validate(job=job)


def run_import(
    organization: Organization, files: dict[str, bytes], preset: str = ""
) -> ImportJob:
    """Validate ``files``, then import their valid rows, as the tasks would."""
    job = validate(organization, files, preset)
    with tenant_context(organization):
        services.import_job_start(job=job, actor=None, enqueue=False)
        return services.import_job_import(job=job)


def import_fixtures(organization: Organization, *names: str) -> ImportJob:
    return run_import(organization, {name: fixture_bytes(name) for name in names})


def table_counts(organization: Organization) -> dict[str, int]:
    """Return the number of rows of each imported table in ``organization``."""
    with tenant_context(organization):
        return {
            "deals": Deal.objects.count(),
            "accounts": Account.objects.count(),
            "members": Membership.objects.count(),
            "products": Product.objects.count(),
        }


@pytest.fixture
def org(personas) -> Organization:
    return personas.org
