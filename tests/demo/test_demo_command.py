"""The demo command: organisation, logins, idempotent reruns and the sample."""

from __future__ import annotations

import io
import time

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from django.test import override_settings
from django.urls import reverse

from activity.models import Activity, Deal, Lead
from spm.access import visible_member_ids
from spm.management.commands import demo as demo_command
from spm.models import Membership, Organization, User
from spm.tenancy import tenant_context
from tests.demo.conftest import SMALL, won_by_rep

pytestmark = pytest.mark.django_db
LOGINS = [
    demo_command.ADMIN_EMAIL,
    demo_command.MANAGER_EMAIL,
    demo_command.REP_EMAIL,
]


@pytest.fixture
def small_demo(monkeypatch):
    monkeypatch.setattr(demo_command, "DEMO_SIZE", SMALL)


def run_demo(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("demo", "--today", "2025-06-16", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def membership_of(email: str, slug: str = "demo") -> Membership:
    return Membership.unscoped.select_related("team").get(
        organization__slug=slug, user__email=email
    )


def test_demo_creates_organization(small_demo):
    output, _ = run_demo()

    organization = Organization.objects.get(slug="demo")
    assert organization.name == "Demo Sales"
    assert organization.time_zone == "America/New_York"
    assert organization.currency == "USD"
    assert organization.fiscal_year_start_month == 2
    with tenant_context(organization):
        assert Deal.objects.count() == SMALL["deals"]
        assert Activity.objects.count() == SMALL["activities"]
        assert Lead.objects.count() == SMALL["leads"]
    assert "http://127.0.0.1:8000" in output
    assert "'demo-password'" in output
    for email in LOGINS:
        assert email in output


def test_demo_logins_authenticate(small_demo, client):
    run_demo()
    for email in LOGINS:
        assert client.login(email=email, password="demo-password"), email
        client.logout()


@override_settings(ACCOUNT_EMAIL_VERIFICATION="mandatory")
def test_demo_login_passes_mandatory_verification(small_demo, client):
    run_demo()
    response = client.post(
        reverse("account_login"),
        {"login": demo_command.MANAGER_EMAIL, "password": "demo-password"},
    )
    assert response.status_code == 302
    assert response.url == reverse("home")
    address = EmailAddress.objects.get(email=demo_command.MANAGER_EMAIL)
    assert address.verified
    assert address.primary

    response = client.get(reverse("home"))
    assert response.url == reverse("measurement:home", kwargs={"org_slug": "demo"})


def test_demo_logins_have_one_role_each(small_demo):
    run_demo()
    admin = membership_of(demo_command.ADMIN_EMAIL)
    manager = membership_of(demo_command.MANAGER_EMAIL)
    rep = membership_of(demo_command.REP_EMAIL)

    assert admin.role == Membership.Role.ADMIN
    assert manager.role == Membership.Role.MANAGER
    assert manager.team is not None
    assert rep.role == Membership.Role.REP
    assert rep.reports_to_id == manager.pk
    assert rep.user.name == rep.display_name


def test_demo_manager_sees_reps_with_deals(small_demo):
    run_demo()
    manager = membership_of(demo_command.MANAGER_EMAIL)
    rep = membership_of(demo_command.REP_EMAIL)
    with tenant_context(manager.organization):
        visible = visible_member_ids(manager)
        reps = Membership.objects.filter(pk__in=visible, role=Membership.Role.REP)
        owners = set(Deal.objects.values_list("owner_id", flat=True))
    assert reps.count() == 3
    assert set(reps.values_list("pk", flat=True)) <= owners
    assert rep.pk in owners


def test_demo_rerun_keeps_data(small_demo):
    run_demo()
    deal_ids = set(Deal.unscoped.values_list("pk", flat=True))

    output, _ = run_demo()

    assert "kept as it is" in output
    assert Organization.objects.filter(slug="demo").count() == 1
    assert set(Deal.unscoped.values_list("pk", flat=True)) == deal_ids
    assert User.objects.count() == 3
    assert EmailAddress.objects.count() == 3
    assert Membership.unscoped.filter(user__isnull=False).count() == 3


def test_demo_reset_generates_same_data_again(small_demo):
    run_demo()
    organization = Organization.objects.get(slug="demo")
    before = won_by_rep(organization)

    output, _ = run_demo("--reset")

    regenerated = Organization.objects.get(slug="demo")
    assert "Deleted the organisation 'Demo Sales'" in output
    assert regenerated.pk != organization.pk
    assert Deal.unscoped.count() == SMALL["deals"]
    assert won_by_rep(regenerated) == before
    assert membership_of(demo_command.MANAGER_EMAIL).role == Membership.Role.MANAGER


def test_demo_full_size_within_thirty_seconds():
    started = time.perf_counter()
    output, _ = run_demo()
    elapsed = time.perf_counter() - started

    assert elapsed < 30
    assert "3 teams, 12 reps, 2,500 deals" in output
    with tenant_context(Organization.objects.get(slug="demo")):
        assert Deal.objects.count() == 2500
        assert Activity.objects.count() == 30_000
        assert Lead.objects.count() == 500


def test_demo_rejects_folder_without_pipeline(small_demo, tmp_path):
    with pytest.raises(CommandError, match="has no sales_pipeline.csv"):
        run_demo("--sample", str(tmp_path))
    assert not Organization.objects.exists()


def test_demo_sample_without_importer(small_demo, maven_dir, monkeypatch):
    monkeypatch.setattr(demo_command, "get_commands", lambda: {})
    _, errors = run_demo("--sample", str(maven_dir))

    assert "import_csv command is not installed" in errors
    sample = membership_of(demo_command.MANAGER_EMAIL, slug="maventech")
    assert sample.role == Membership.Role.ADMIN
    assert membership_of(demo_command.MANAGER_EMAIL).role == Membership.Role.MANAGER


@pytest.mark.maven
def test_demo_sample_imports_maven_export(small_demo, maven_dir):
    if "import_csv" not in get_commands():
        pytest.skip("The import_csv command is not installed.")
    run_demo("--sample", str(maven_dir))

    sample = Organization.objects.get(slug="maventech")
    assert sample.name == "MavenTech (sample)"
    assert sample.time_zone == "UTC"
    # sales_pipeline.csv has 8,800 rows, each with a unique opportunity_id.
    assert Deal.unscoped.filter(organization=sample).count() == 8800

    output, _ = run_demo("--sample", str(maven_dir))
    assert "import skipped" in output
    assert Deal.unscoped.filter(organization=sample).count() == 8800


def test_rerun_after_import_keeps_logins(small_demo):
    run_demo()
    manager = membership_of(demo_command.MANAGER_EMAIL)
    rep = membership_of(demo_command.REP_EMAIL)
    # A member imported later under the same manager has no external id and
    # sorts before the generated reps.
    Membership.unscoped.create(
        organization=manager.organization,
        display_name="Aaron Imported",
        email="aaron@demo.attain.test",
        role=Membership.Role.REP,
        reports_to=manager,
        team=manager.team,
    )

    run_demo()

    assert membership_of(demo_command.MANAGER_EMAIL).pk == manager.pk
    assert membership_of(demo_command.REP_EMAIL).pk == rep.pk


def test_printed_url_follows_option(small_demo):
    output, _ = run_demo("--url", "http://127.0.0.1:8301")
    assert "Attain demo: http://127.0.0.1:8301" in output
