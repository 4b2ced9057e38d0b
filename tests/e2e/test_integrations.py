"""An admin connects a fake HubSpot by token and syncs it, in headless Chromium.

The fake HubSpot (tests/integrations/fake_hubspot.py) listens on 127.0.0.1.
Tasks run eagerly in the tests, so "Sync now" runs the sync once its request
commits, and the page it redirects to shows the finished run. Rita owns two
deals won today, 12,000.00 and 3,500.50, so the team dashboard shows her
bookings as 15,500.50.
"""

from __future__ import annotations

import datetime as dt

import pytest

from integrations.models import CrmConnection, SyncRun
from notifications.models import OutboundSettings
from spm.tenancy import tenant_context
from tests.conftest import PASSWORD
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    PipelineFactory,
    UserFactory,
    default_stages,
)
from tests.integrations.fake_hubspot import FakeHubSpot

pytestmark = pytest.mark.e2e

TOKEN = "pat-na1-e2e-browser-secret-token"


@pytest.fixture(autouse=True)
def _credentials_key(monkeypatch):
    monkeypatch.setenv("ATTAIN_CREDENTIALS_KEY", "e2e-integrations-credentials-key")


@pytest.fixture
def acme(transactional_db):
    """Acme in UTC with an admin, a manager and Rita, who reports to him."""
    organization = OrganizationFactory(name="Acme", slug="acme", time_zone="UTC")
    MembershipFactory(
        organization=organization,
        user=UserFactory(email="admin@acme.test"),
        display_name="Ada Admin",
        role="admin",
    )
    manager = MembershipFactory(
        organization=organization,
        user=UserFactory(email="max@acme.test"),
        display_name="Max Manager",
        role="manager",
    )
    MembershipFactory(
        organization=organization,
        user=UserFactory(email="rita@acme.test"),
        display_name="Rita Rep",
        role="rep",
        reports_to=manager,
    )
    default_stages(PipelineFactory(organization=organization))
    # The fake HubSpot listens on http://127.0.0.1, which a self-hosted
    # install allows with the private-address setting (and http with DEBUG).
    with tenant_context(organization):
        OutboundSettings.objects.create(
            organization=organization, allow_private_addresses=True
        )
    return organization


@pytest.fixture
def hubspot():
    """A fake HubSpot with Rita as owner and her two deals won today."""
    fake = FakeHubSpot().start()
    fake.add_token(TOKEN)
    fake.add_owner("11", "rita@acme.test", "Rita", "Rep")
    fake.add_pipeline(
        "default",
        "Sales Pipeline",
        [
            ("qualified", "Qualified", False, "0.3"),
            ("closedwon", "Closed Won", True, "1.0"),
            ("closedlost", "Closed Lost", True, "0.0"),
        ],
    )
    today = dt.datetime.now(dt.UTC).date().isoformat()
    for deal_id, name, amount in (
        ("9001", "Globex", "12000"),
        ("9002", "Initech", "3500.50"),
    ):
        fake.add(
            "deals",
            deal_id,
            dealname=name,
            amount=amount,
            deal_currency_code="USD",
            pipeline="default",
            dealstage="closedwon",
            closedate=today,
            createdate=today,
            hubspot_owner_id="11",
        )
    yield fake
    fake.stop()


def _sign_in(tab, base_url, email):
    tab.context.clear_cookies()
    tab.goto(f"{base_url}/accounts/login/")
    tab.fill("input[name=login]", email)
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{base_url}/o/acme/**")


def test_connect_sync_and_see_deals(
    page, live_server, acme, hubspot, artifacts, settings
):
    settings.DEBUG = True
    base = live_server.url

    # The admin connects HubSpot with a private app token.
    _sign_in(page, base, "admin@acme.test")
    page.click("nav >> text=CRM")
    page.click("text=Connect HubSpot")
    page.fill("input[name=name]", "HubSpot")
    page.fill("input[name=base_url]", hubspot.url)
    page.fill("input[name=access_token]", TOKEN)
    page.click("#connect-hubspot button[type=submit]")
    page.wait_for_selector("text=Connected HubSpot")
    assert TOKEN not in page.content()
    with tenant_context(acme):
        connection = CrmConnection.objects.get()
    assert connection.credentials == {"access_token": TOKEN}

    # "Sync now" runs the sync; its progress bar reaches 100%.
    page.click("button:has-text('Sync now')")
    page.wait_for_selector(".run-status:has-text('Succeeded')", timeout=30_000)
    assert page.get_attribute("#sync-progress progress", "value") == "100"
    assert page.inner_text("#sync-progress .run-percent") == "100%"
    progress_url = page.get_attribute("#sync-progress", "data-progress-url")
    progress = page.request.get(f"{base}{progress_url}").json()
    assert progress["progress"] == 100
    assert progress["counts"]["deals"]["created"] == 2
    assert TOKEN not in page.content()
    page.screenshot(path=str(artifacts / "integrations-synced.png"), full_page=True)
    with tenant_context(acme):
        run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.SUCCEEDED

    # The manager's dashboard shows Rita's synced bookings and the sync time.
    _sign_in(page, base, "max@acme.test")
    page.goto(f"{base}/o/acme/team/")
    row = page.locator("#rep-table tr", has_text="Rita Rep").inner_text()
    assert "15,500.50" in row
    assert "CRM data as of" in page.inner_text("main")
