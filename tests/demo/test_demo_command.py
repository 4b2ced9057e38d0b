"""The demo command: organisation, logins, idempotent reruns and the sample."""

from __future__ import annotations

import datetime as dt
import io
import time
from zoneinfo import ZoneInfo

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from django.db.models import F
from django.test import override_settings
from django.urls import reverse

from activity.models import Activity, Deal, Lead
from compensation.models import CompPlan, Dispute, PlanVersion, Statement
from routing.model_services import training_readiness
from routing.models import (
    Assignment,
    LeadQualification,
    Pool,
    PoolMember,
    QualificationSettings,
    ResponseTimer,
    RuleSetVersion,
    ScoringRule,
)
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
# Fewer leads than the generator tests, because each one goes through
# intake: enough for a few routed in the last eight weeks.
DEMO_SMALL = {**SMALL, "leads": 30}
# The leads the demo submits through lead intake, besides the generated ones.
LIVE_LEADS = 5
# Midnight in New York on the --today date that run_demo passes.
BASE_MOMENT = dt.datetime(2025, 6, 16, tzinfo=ZoneInfo("America/New_York"))


@pytest.fixture
def small_demo(monkeypatch):
    monkeypatch.setattr(demo_command, "DEMO_SIZE", DEMO_SMALL)


@pytest.fixture
def core_demo(small_demo, monkeypatch):
    """The small demo without routing, lead intake and commission.

    For the tests of logins, reruns and the sample, which do not read them.
    test_demo_sets_up_automation covers them.
    """
    monkeypatch.setattr(demo_command.Command, "_automate", lambda self, *args: [])


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
        assert Lead.objects.count() == DEMO_SMALL["leads"] + LIVE_LEADS
    assert "http://127.0.0.1:8000" in output
    assert "'demo-password'" in output
    for email in LOGINS:
        assert email in output


def test_demo_logins_authenticate(core_demo, client):
    run_demo()
    for email in LOGINS:
        assert client.login(email=email, password="demo-password"), email
        client.logout()


@override_settings(ACCOUNT_EMAIL_VERIFICATION="mandatory")
def test_demo_login_passes_mandatory_verification(core_demo, client):
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


def test_demo_logins_have_one_role_each(core_demo):
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


def test_demo_manager_sees_reps_with_deals(core_demo):
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


def test_demo_rerun_keeps_data(core_demo):
    run_demo()
    deal_ids = set(Deal.unscoped.values_list("pk", flat=True))

    output, _ = run_demo()

    assert "kept as it is" in output
    assert Organization.objects.filter(slug="demo").count() == 1
    assert set(Deal.unscoped.values_list("pk", flat=True)) == deal_ids
    assert User.objects.count() == 3
    assert EmailAddress.objects.count() == 3
    assert Membership.unscoped.filter(user__isnull=False).count() == 3


def routed_owners(organization: Organization) -> dict[str, str]:
    """Return the owner's name of each generated lead that routing assigned."""
    with tenant_context(organization):
        rows = Lead.objects.exclude(external_id="").filter(
            routing_status=Lead.RoutingStatus.ASSIGNED
        )
        return dict(rows.values_list("external_id", "owner__display_name"))


def test_demo_reset_generates_same_data_again(small_demo):
    run_demo()
    organization = Organization.objects.get(slug="demo")
    before = won_by_rep(organization)
    owners = routed_owners(organization)

    output, _ = run_demo("--reset")

    regenerated = Organization.objects.get(slug="demo")
    assert "Deleted the organisation 'Demo Sales'" in output
    assert regenerated.pk != organization.pk
    assert Deal.unscoped.count() == SMALL["deals"]
    assert won_by_rep(regenerated) == before
    assert owners
    assert routed_owners(regenerated) == owners
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
        assert Lead.objects.count() == 500 + LIVE_LEADS
        # The lead model page offers training only from 200 labelled leads.
        assert training_readiness().ready


def test_demo_rejects_folder_without_pipeline(small_demo, tmp_path):
    with pytest.raises(CommandError, match="has no sales_pipeline.csv"):
        run_demo("--sample", str(tmp_path))
    assert not Organization.objects.exists()


def test_demo_sample_without_importer(core_demo, maven_dir, monkeypatch):
    monkeypatch.setattr(demo_command, "get_commands", lambda: {})
    _, errors = run_demo("--sample", str(maven_dir))

    assert "import_csv command is not installed" in errors
    sample = membership_of(demo_command.MANAGER_EMAIL, slug="maventech")
    assert sample.role == Membership.Role.ADMIN
    assert membership_of(demo_command.MANAGER_EMAIL).role == Membership.Role.MANAGER


@pytest.mark.maven
def test_demo_sample_imports_maven_export(core_demo, maven_dir):
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


def test_rerun_after_import_keeps_logins(core_demo):
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


def test_printed_url_follows_option(core_demo):
    output, _ = run_demo("--url", "http://127.0.0.1:8301")
    assert "Attain demo: http://127.0.0.1:8301" in output


def test_demo_sets_up_automation(small_demo):
    output, errors = run_demo()
    organization = Organization.objects.get(slug="demo")
    with tenant_context(organization):
        check_routing_configuration()
        check_leads()
        check_commission(errors)
    assert "Organisation 'Demo Sales', slug 'demo'" in output
    assert "Leads: 35 went through intake" in output


def check_routing_configuration() -> None:
    version = RuleSetVersion.objects.get()
    rules = list(version.rules.select_related("territory").order_by("order"))
    pools = {pool.name: pool for pool in Pool.objects.all()}
    settings = QualificationSettings.objects.get()
    scoring_kinds = list(ScoringRule.objects.values_list("kind", flat=True))
    pool_sizes = {
        name: PoolMember.objects.filter(pool=pool).count()
        for name, pool in pools.items()
    }

    assert [rule.action for rule in rules] == [
        "account_owner",
        "pool",
        "pool",
        "pool",
        "fallback",
    ]
    assert [rule.territory.name for rule in rules[1:4]] == [
        "North America",
        "Europe",
        "Asia Pacific",
    ]
    assert pools["North America"].method == Pool.Method.ROUND_ROBIN
    assert pools["Europe"].method == Pool.Method.WEIGHTED
    assert pools["Asia Pacific"].method == Pool.Method.CAPACITY
    assert pools["North America"].sla_minutes == 240
    # Six reps make two teams of three: North America takes the first team,
    # Europe and Asia Pacific the second.
    assert pool_sizes == {"North America": 3, "Europe": 3, "Asia Pacific": 3}
    assert len(scoring_kinds) == 8
    assert scoring_kinds.count("disqualify") == 1
    assert (settings.mql_threshold, settings.sql_threshold) == (40, 60)


def check_leads() -> None:
    routed_since = BASE_MOMENT - dt.timedelta(weeks=8)
    leads = Lead.objects.all()
    generated = leads.exclude(external_id="")
    recent = generated.filter(received_at__gte=routed_since)
    decisions = Assignment.objects.filter(lead__in=recent)
    moved = Activity.objects.filter(lead__in=recent).exclude(owner=F("lead__owner"))
    north_america = decisions.filter(pool__name="North America")
    timers = ResponseTimer.objects.filter(lead__in=north_america.values("lead"))
    queued = set(
        leads.filter(routing_status=Lead.RoutingStatus.QUEUED).values_list(
            "last_name", flat=True
        )
    )
    live = {
        row.lead.last_name: row
        for row in LeadQualification.objects.filter(
            lead__external_id=""
        ).select_related("lead")
    }

    assert not leads.filter(received_at__isnull=True).exists()
    assert not leads.filter(country="United States").exists()
    assert leads.filter(country="US").exists()
    assert LeadQualification.objects.count() == leads.count()
    assert recent.exists()
    assert decisions.count() == recent.count()
    assert generated.filter(routing_status="").count() == (
        generated.count() - recent.count()
    )
    assert not moved.exists()
    assert timers.count() == north_america.count()
    assert {"Souza", "Ramos", "Rojas"} <= queued
    # A web form gives 15 points, and Brazil is in no fit rule.
    assert live["Souza"].score == 15
    assert live["Souza"].status == LeadQualification.Status.NEW
    # Canada gives 30 and a web form 15, but the company name contains "test".
    assert live["Kim"].score == 45
    assert live["Kim"].status == LeadQualification.Status.DISQUALIFIED
    assert "Test submission" in live["Kim"].reason
    assert live["Jones"].reason == "Disposable email address (mailinator.com)"


def check_commission(errors: str) -> None:
    plan = CompPlan.objects.get()
    version = plan.versions.get()
    kinds = list(version.components.values_list("kind", flat=True))
    assigned = set(plan.assignments.values_list("member_id", flat=True))
    reps = set(
        Membership.objects.filter(role=Membership.Role.REP).values_list("pk", flat=True)
    )

    assert version.status == PlanVersion.Status.PUBLISHED
    assert kinds == ["flat", "tiered"]
    assert assigned == reps
    # --today 2025-06-16: May is the last complete month, June the current.
    may = Statement.objects.filter(period_start=dt.date(2025, 5, 1))
    june = Statement.objects.filter(period_start=dt.date(2025, 6, 1))
    assert errors == ""
    assert may.filter(status=Statement.Status.APPROVED).count() == len(reps)
    assert june.filter(status=Statement.Status.DRAFT).count() == len(reps)
    assert Dispute.objects.count() == 1
