"""An admin sets up routing on its pages and tests a lead before any arrives.

The admin creates a round-robin pool, adds two reps, publishes a rule that
sends leads from Germany to the pool, and tests a lead from DE: the first
rep in the pool would get it. The test stores no lead and leaves the pool's
rotation where it was.
"""

from __future__ import annotations

import pytest

from activity.models import Lead
from routing.models import Assignment, Pool, RotationState, RoutingRule
from spm.tenancy import tenant_context
from tests.conftest import PASSWORD
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.e2e


@pytest.fixture
def acme(transactional_db):
    organization = OrganizationFactory(name="Acme", slug="acme", time_zone="UTC")
    MembershipFactory(
        organization=organization,
        user=UserFactory(email="admin@acme.test"),
        display_name="Ada Admin",
        role="admin",
    )
    for name in ("Rita Rep", "Rob Rep"):
        MembershipFactory(
            organization=organization, user=None, display_name=name, role="rep"
        )
    return organization


def _sign_in(tab, base_url: str, email: str) -> None:
    tab.goto(f"{base_url}/accounts/login/")
    tab.fill("input[name=login]", email)
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{base_url}/**")


def _add_rep(page, label: str) -> None:
    form = page.locator("#pool-member-add")
    form.get_by_label("Member").select_option(label=label)
    form.locator("button[type=submit]").click()
    page.wait_for_selector(f"#pool-members td:has-text('{label.split(' (')[0]}')")


def test_admin_builds_pool_rule_and_tests_a_lead(page, live_server, acme):
    base = live_server.url
    _sign_in(page, base, "admin@acme.test")

    page.click("nav.mainnav >> text=Lead routing")
    page.click("nav.tabs >> text=Pools")
    form = page.locator("#pool-create")
    form.get_by_label("Name").fill("Inbound")
    form.get_by_label("Method").select_option("round_robin")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("h1:has-text('Inbound')")
    _add_rep(page, "Rita Rep (Rep)")
    _add_rep(page, "Rob Rep (Rep)")

    page.goto(f"{base}/o/acme/leads/routing/rules/edit/")
    page.fill("[name=rules-0-order]", "1")
    page.fill("[name=rules-0-name]", "Germany")
    page.fill("[name=rules-0-conditions]", "country equals DE")
    page.select_option("[name=rules-0-action]", "pool")
    page.select_option("[name=rules-0-pool]", label="Inbound")
    page.fill("[name=note]", "Germany to the inbound pool")
    page.click("button[name=publish]")
    page.wait_for_selector("#live-version:has-text('version 1')")
    assert "country equals DE" in page.locator("#live-rules").inner_text()

    page.click("nav.tabs >> text=Test a lead")
    form = page.locator("#test-lead")
    form.get_by_label("Email").fill("kim@example.de")
    form.get_by_label("Country").fill("DE")
    form.locator("button[type=submit]").click()

    assert page.locator("#preview-outcome").inner_text() == "Would go to Rita Rep"
    assert page.locator("#preview-rule").inner_text() == "1. Germany"
    with tenant_context(acme):
        pool = Pool.objects.get(name="Inbound")
        assert RoutingRule.objects.get().pool == pool
        assert RotationState.objects.get(pool=pool).turns == 0
        assert not Lead.objects.exists()
        assert not Assignment.objects.exists()
