"""The built-in "maven" preset on the real Maven Analytics CRM export.

The expected numbers were counted on the files with a separate script and
match the data set's own description.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import Sum

from activity.models import Account, Deal, DealProduct, ImportJob, Product
from spm.models import Membership
from spm.services import organization_create
from spm.tenancy import tenant_context
from tests.activity.conftest import run_import
from tests.factories import UserFactory

pytestmark = pytest.mark.maven

MAVEN_FILES = ("sales_pipeline.csv", "sales_teams.csv", "accounts.csv", "products.csv")


@pytest.fixture
def maven_org(db):
    return organization_create(
        name="MavenTech", slug="maventech", owner=UserFactory(email="ada@maven.test")
    )


def _import(organization, maven_dir) -> ImportJob:
    files = {name: (maven_dir / name).read_bytes() for name in MAVEN_FILES}
    return run_import(organization, files, preset="maven")


def test_maven_files_are_recognised(maven_org, maven_dir):
    job = _import(maven_org, maven_dir)
    with tenant_context(maven_org):
        kinds = dict(job.files.values_list("name", "kind"))
    assert kinds == {
        "sales_pipeline.csv": "deals",
        "sales_teams.csv": "members",
        "accounts.csv": "accounts",
        "products.csv": "products",
    }
    assert job.status == ImportJob.Status.DONE
    assert job.error_count == 0
    assert job.total_rows == 8800 + 35 + 85 + 7


def test_maven_import_counts(maven_org, maven_dir):
    _import(maven_org, maven_dir)
    with tenant_context(maven_org):
        deals = Deal.objects.all()
        by_stage = {
            name: deals.filter(stage__name=name).count()
            for name in ("Won", "Lost", "Engaging", "Prospecting")
        }
        won_total = deals.filter(stage__is_won=True).aggregate(total=Sum("amount"))
        reps = Membership.objects.filter(role=Membership.Role.REP)
        reps_with_deals = reps.filter(owned_deals__isnull=False).distinct().count()
        managers = Membership.objects.filter(role=Membership.Role.MANAGER)

        assert deals.count() == 8800
        assert by_stage == {
            "Won": 4238,
            "Lost": 2473,
            "Engaging": 1589,
            "Prospecting": 500,
        }
        assert won_total["total"] == Decimal("10005534")
        assert reps.count() == 35
        assert reps_with_deals == 30
        assert managers.count() == 6
        assert Account.objects.count() == 85
        assert Product.objects.count() == 7
        assert DealProduct.objects.count() == 8800


def test_maven_details(maven_org, maven_dir):
    _import(maven_org, maven_dir)
    with tenant_context(maven_org):
        gtx_pro = Product.objects.get(match_key="gtxpro")
        acme = Account.objects.get(name="Acme Corporation")
        anna = Membership.objects.select_related("reports_to", "team").get(
            display_name="Anna Snelling"
        )
        deal = Deal.objects.get(external_id="Z063OYW0")
        lines = DealProduct.objects.filter(product=gtx_pro).count()
        subsidiaries = Account.objects.exclude(parent=None).count()
        open_without_close = Deal.objects.filter(
            stage__is_closed=False, close_date=None
        ).count()

    assert gtx_pro.name == "GTX Pro"
    assert gtx_pro.list_price == Decimal("4821")
    assert (
        lines
        == Deal.unscoped.filter(organization=maven_org, lines__product=gtx_pro).count()
    )
    assert lines > 0
    assert acme.annual_revenue == Decimal("1100040000")
    assert acme.industry == "technolgy"
    assert subsidiaries == 15
    assert (anna.reports_to.display_name, anna.team.name) == (
        "Dustin Brinkmann",
        "Central",
    )
    assert anna.user is None
    assert deal.currency == "USD"
    assert deal.amount == Decimal("4514")
    assert open_without_close == 1589 + 500


def test_maven_reimport_changes_nothing(maven_org, maven_dir):
    _import(maven_org, maven_dir)
    with tenant_context(maven_org):
        stamps = dict(Deal.objects.values_list("id", "updated_at"))

    job = _import(maven_org, maven_dir)

    assert job.created_count == 0
    assert job.updated_count == 0
    assert job.counts["deals"]["unchanged"] == 8800
    with tenant_context(maven_org):
        assert dict(Deal.objects.values_list("id", "updated_at")) == stamps
