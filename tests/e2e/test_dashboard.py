"""The demo manager opens the team dashboard in a real browser."""

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from spm.management.commands import demo as demo_command

pytestmark = pytest.mark.e2e

MANAGER_EMAIL = "manager@demo.attain.test"
DEMO_PASSWORD = "demo-password"


@pytest.fixture
def demo(transactional_db, monkeypatch):
    # The pages here read the generated CRM data, not the routing, intake and
    # commission set-up, which the demo command's own tests cover.
    monkeypatch.setattr(demo_command.Command, "_automate", lambda self, *args: [])
    call_command("demo", verbosity=0)


def _sign_in(page, base_url):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=login]", MANAGER_EMAIL)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/o/demo/**")


def _charts_drawn(page, expected: int) -> int:
    """Wait until ``expected`` charts are drawn, then count the drawn charts."""
    # Plotly marks each drawn chart with the class "js-plotly-plot" and an SVG.
    expect(page.locator(".js-plotly-plot:has(.main-svg)")).to_have_count(
        expected, timeout=20_000
    )
    return page.locator(".js-plotly-plot").count()


def test_manager_dashboard_draws_charts(page, live_server, demo, artifacts):
    _sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/o/demo/team/")

    assert _charts_drawn(page, 7) == 7
    rows = page.locator("table#rep-table tbody tr")
    assert rows.count() > 0
    page.screenshot(path=str(artifacts / "dashboard-default.png"), full_page=True)
    first_period = page.locator("#period-label").inner_text()

    page.select_option("select[name=kind]", "year")
    page.locator("#period-form button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    assert _charts_drawn(page, 7) == 7
    assert page.locator("#period-label").inner_text() != first_period
    assert page.locator("table#rep-table tbody tr").count() > 0
    page.screenshot(path=str(artifacts / "dashboard-year.png"), full_page=True)
