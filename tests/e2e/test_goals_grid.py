"""The goals pages in headless Chromium: the grid saves, and no policy violation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from goals.models import Quota
from spm.tenancy import tenant_context
from tests.conftest import PASSWORD
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.e2e

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective);
});
"""


@pytest.fixture
def org(transactional_db):
    organization = OrganizationFactory(name="Acme", slug="acme")
    east = TeamFactory(organization=organization, name="East")
    admin = MembershipFactory(
        organization=organization,
        user=UserFactory(email="admin@acme.test"),
        display_name="Ada Admin",
        role="admin",
    )
    MembershipFactory(
        organization=organization,
        user=None,
        display_name="Rita Rep",
        role="rep",
        team=east,
    )
    return organization, admin


def _sign_in(tab, base_url):
    tab.goto(f"{base_url}/accounts/login/")
    tab.fill("input[name=login]", "admin@acme.test")
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{base_url}/o/acme/**")


def test_grid_saves_in_browser(page, live_server, org):
    organization, _admin = org
    page.add_init_script(RECORD_VIOLATIONS)
    _sign_in(page, live_server.url)

    page.goto(f"{live_server.url}/o/acme/goals/quotas/?on=2024-01-01")
    page.get_by_label("Rita Rep").fill("100,000")
    page.get_by_label("East").fill("250000")
    page.click("text=Save quotas")
    page.wait_for_selector(".message.success")

    assert "2 added" in page.inner_text(".message.success")
    assert page.get_by_label("Rita Rep").input_value() == "100000.00"
    with tenant_context(organization):
        amounts = sorted(Quota.objects.values_list("amount", flat=True))
    assert amounts == [Decimal("100000.00"), Decimal("250000.00")]
    for path in ("benchmarks/", "time-off/", "quotas/import/"):
        response = page.goto(f"{live_server.url}/o/acme/goals/{path}")
        assert response.status == 200, path
    assert page.evaluate("window.__cspViolations") == []
