"""Sign in through the allauth pages in a real browser."""

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.e2e


def test_login_reaches_organisation(page, live_server, personas, artifacts):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", personas.admin.user.email.upper())
    page.fill("input[name=password]", PASSWORD)
    page.screenshot(path=str(artifacts / "login.png"))
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/o/acme/**")
    assert "/o/acme/" in page.url
