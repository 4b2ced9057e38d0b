"""A scoring rule added on its page scores a lead received through the API.

The admin adds "Software" worth 30 points on the scoring page, a lead from
the software industry arrives with an API key, and the lead page shows
30 = 30 Software with its one part.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from activity.models import Lead
from spm.services import api_key_create
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
    return organization


def _sign_in(tab, base_url: str, email: str) -> None:
    tab.goto(f"{base_url}/accounts/login/")
    tab.fill("input[name=login]", email)
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{base_url}/**")


def test_rule_added_on_the_page_scores_an_api_lead(page, live_server, acme):
    base = live_server.url
    _sign_in(page, base, "admin@acme.test")

    page.goto(f"{base}/o/acme/leads/scoring/")
    form = page.locator("#add-rule")
    form.get_by_label("Name").fill("Software")
    form.get_by_label("Field").fill("industry")
    form.get_by_label("Value").fill("Software")
    form.get_by_label("Points").fill("30")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#scoring-rules td:has-text('Software')")

    _, key = api_key_create(organization=acme, name="intake")
    request = urllib.request.Request(
        f"{base}/api/v1/leads/",
        data=json.dumps(
            {"email": "ann@softco.example", "industry": "software"}
        ).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        lead_id = json.loads(response.read())["id"]

    page.goto(f"{base}/o/acme/leads/{lead_id}/")
    assert page.locator("#score").inner_text() == "30 = 30 Software"
    parts = page.locator("#score-parts tbody tr").all_inner_texts()
    assert [" ".join(row.split()) for row in parts] == ["Software industry software 30"]
    with tenant_context(acme):
        assert Lead.objects.filter(public_id=lead_id).exists()
