import pytest

from spm.models import Membership
from spm.tenancy import TenantNotSet, tenant_context


def test_query_without_organisation_raises(personas):
    with pytest.raises(TenantNotSet):
        list(Membership.objects.all())


def test_query_is_scoped_to_current_organisation(personas):
    with tenant_context(personas.other_org):
        names = set(Membership.objects.values_list("display_name", flat=True))
    assert names == {"Otto Outsider", "Oona Rep"}


def test_queryset_built_without_organisation_fails_when_run(personas):
    queryset = Membership.objects.filter(role="rep")
    with tenant_context(personas.org), pytest.raises(TenantNotSet):
        list(queryset)
