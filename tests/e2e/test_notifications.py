"""A rep turns on email for new leads, and a routed lead reaches the bell and the inbox.

Rita sets "Lead assigned to you" to email on her preferences page. Routing
then gives her a lead: the bell shows 1, the email is in the outbox, and
opening the notification from the list marks it read and empties the bell.
"""

from __future__ import annotations

import pytest
from django.core import mail

from notifications.models import Preference
from routing.services import lead_route
from spm.tenancy import tenant_context
from tests.conftest import PASSWORD
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.routing.conftest import make_pool, pending_lead, publish_pool

pytestmark = pytest.mark.e2e


@pytest.fixture
def acme(transactional_db):
    organization = OrganizationFactory(name="Acme", slug="acme", time_zone="UTC")
    rita = MembershipFactory(
        organization=organization,
        user=UserFactory(email="rita@acme.test"),
        display_name="Rita Rep",
        role="rep",
    )
    with tenant_context(organization):
        publish_pool(organization, make_pool(organization, "round_robin", [rita]))
    return organization, rita


def _sign_in(tab, base_url: str, email: str) -> None:
    tab.goto(f"{base_url}/accounts/login/")
    tab.fill("input[name=login]", email)
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{base_url}/**")


def test_assigned_lead_rings_bell_and_emails(page, live_server, acme):
    organization, rita = acme
    base = live_server.url
    _sign_in(page, base, "rita@acme.test")

    page.goto(f"{base}/o/acme/notifications/preferences/")
    page.get_by_label("Lead assigned to you: email").select_option("email")
    page.get_by_role("button", name="Save preferences").click()
    page.wait_for_selector(".message.success")
    with tenant_context(organization):
        preference = Preference.objects.get(member=rita)
    assert preference.channels == ["in_app", "email"]
    assert page.locator("#notification-bell").inner_text() == "Notifications"

    with tenant_context(organization):
        lead = pending_lead(organization, first_name="Ann", last_name="Lee")
        assignment = lead_route(lead_id=lead.pk)
    assert assignment.member == rita

    page.goto(f"{base}/o/acme/leads/mine/")
    assert page.locator("#notification-bell .badge").inner_text() == "1"
    [message] = mail.outbox
    assert message.subject == "New lead assigned to you: Ann Lee · Acme"
    assert message.to == ["rita@acme.test"]

    page.locator("#notification-bell").click()
    page.wait_for_url(f"{base}/o/acme/notifications/")
    rows = page.locator("#notifications tbody tr")
    assert rows.count() == 1
    assert "New lead assigned to you: Ann Lee" in rows.first.inner_text()
    rows.first.get_by_role("button", name="Open").click()
    page.wait_for_url(f"{base}/o/acme/leads/mine/")
    assert page.locator("#my-leads").inner_text().count("Ann Lee") == 1
    assert page.locator("#notification-bell .badge").count() == 0
