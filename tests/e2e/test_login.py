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


def test_header_fits_phone_width(browser, live_server, personas):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=login]", personas.rep1.user.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/o/acme/**")

        page_width = page.evaluate("document.documentElement.scrollWidth")
        sign_out = page.get_by_role("button", name="Sign out").bounding_box()
    finally:
        context.close()

    assert page_width <= 390
    assert sign_out["x"] + sign_out["width"] <= 390
