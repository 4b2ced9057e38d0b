"""Deal owners named by email match members whatever the letter case."""

from activity.models import Deal
from spm.models import Membership
from spm.tenancy import tenant_context
from tests.activity.conftest import run_import, table_counts

HEADER = (
    "opportunity_id,sales_agent,product,account,deal_stage,"
    "engage_date,close_date,close_value\r\n"
)


def test_owner_email_matches_any_casing(personas):
    org = personas.org
    with tenant_context(org):
        Membership.objects.filter(pk=personas.rep1.pk).update(
            email="dana.rep@example.test"
        )
    members_before = table_counts(org)["members"]
    content = (
        HEADER
        + "E1,DANA.REP@EXAMPLE.TEST,GTX Basic,Acme,Won,2024-01-02,2024-02-01,100\r\n"
        + "E2,Dana.Rep@Example.test,GTX Basic,Acme,Lost,2024-01-02,2024-02-03,0\r\n"
    ).encode()

    job = run_import(org, {"deals.csv": content})

    assert job.status == "done", job.failure
    assert table_counts(org)["members"] == members_before
    with tenant_context(org):
        owners = set(Deal.objects.values_list("owner_id", flat=True))
    assert owners == {personas.rep1.pk}
