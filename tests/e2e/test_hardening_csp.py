"""Pages in headless Chromium under the Content Security Policy: no violations."""

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from spm.management.commands import demo as demo_command

pytestmark = pytest.mark.e2e

ADMIN_EMAIL = "admin@demo.attain.test"
DEMO_PASSWORD = "demo-password"

# Chromium reports a blocked script or style on the console, and fires a
# securitypolicyviolation event; the init script records the events.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    event.violatedDirective + " " + (event.blockedURI || "inline")
  );
});
"""

PAGES = [
    "/o/demo/me/",
    "/o/demo/settings/",
    "/o/demo/settings/members/",
    "/o/demo/settings/api-keys/",
    "/o/demo/settings/audit/",
    "/o/demo/data/imports/",
    "/accounts/2fa/",
    "/accounts/sessions/",
]


@pytest.fixture
def demo(transactional_db, monkeypatch):
    # The pages here read the generated CRM data, not the routing, intake and
    # commission set-up, which the demo command's own tests cover.
    monkeypatch.setattr(demo_command.Command, "_automate", lambda self, *args: [])
    call_command("demo", verbosity=0)


@pytest.fixture
def csp_page(page):
    page.add_init_script(RECORD_VIOLATIONS)
    page.console_violations = []

    def on_console(message):
        text = message.text
        if "Refused to" in text or "Content Security Policy" in text:
            page.console_violations.append(f"{page.url}: {text[:200]}")

    page.on("console", on_console)
    return page


def _violations(tab) -> list[str]:
    return tab.evaluate("window.__cspViolations")


def _sign_in(tab, base_url):
    tab.goto(f"{base_url}/accounts/login/")
    assert _violations(tab) == []
    tab.fill("input[name=login]", ADMIN_EMAIL)
    tab.fill("input[name=password]", DEMO_PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{base_url}/o/demo/**")


def test_dashboard_charts_draw_under_policy(csp_page, live_server, demo):
    _sign_in(csp_page, live_server.url)
    csp_page.goto(f"{live_server.url}/o/demo/team/")
    # Six charts come with the page, and htmx loads the conversion funnel.
    drawn = csp_page.locator(".js-plotly-plot:has(.main-svg)")
    expect(drawn).to_have_count(7, timeout=20_000)
    csp_page.hover(".js-plotly-plot .main-svg")
    assert csp_page.locator(".js-plotly-plot").count() == 7

    # plotly.js styles its toolbar and hover labels through one <style>
    # element, which the policy must let it fill.
    rules = csp_page.evaluate(
        "document.getElementById('plotly.js-style-global').sheet.cssRules.length"
    )
    assert rules > 0
    assert _violations(csp_page) == []
    assert csp_page.console_violations == []


def test_pages_load_under_policy(csp_page, live_server, demo):
    _sign_in(csp_page, live_server.url)
    for path in PAGES:
        response = csp_page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert "content-security-policy" in response.headers, path
        csp_page.wait_for_load_state("networkidle")
        assert _violations(csp_page) == [], path
    assert csp_page.console_violations == []


def test_api_docs_run_under_policy(csp_page, live_server, demo):
    _sign_in(csp_page, live_server.url)
    csp_page.goto(f"{live_server.url}/api/v1/docs/")
    csp_page.wait_for_selector(".opblock", timeout=20_000)
    assert csp_page.locator(".opblock").count() >= 2
    assert _violations(csp_page) == []
    assert csp_page.console_violations == []
