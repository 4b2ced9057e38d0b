from celery import shared_task

from spm.models import Organization
from spm.services import audit_log_write
from spm.tenancy import tenant_context


@shared_task(acks_late=True)
def audit_probe_task(organization_id: int, label: str) -> None:
    """Write an audit entry ``probe.<label>``: proves a worker reaches the database."""
    organization = Organization.objects.get(pk=organization_id)
    with tenant_context(organization):
        audit_log_write(
            organization=organization,
            actor=None,
            action=f"probe.{label}",
            object_type="organization",
            object_id=str(organization.public_id),
        )
