"""From a quota to a coaching alert, in headless Chromium.

The admin sets a rep's quarterly quota in the grid, then imports the rep's
only open deal: 5,000 closing at the end of the quarter, engaged 60 days ago
and never touched since. Coverage is 5,000 / 100,000 = 0.05x against the
organisation's fixed 3x target, and the deal has had no activity for 60 days,
so the import's evaluation raises both alerts. The manager finds them in the
inbox, and the stale-deal alert lists the deal as its evidence.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from coaching.models import Alert
from goals.calendar import fiscal_quarter_range
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


@pytest.fixture
def acme(transactional_db):
    organization = OrganizationFactory(
        name="Acme", slug="acme", time_zone="UTC", coverage_target_fixed=Decimal(3)
    )
    east = TeamFactory(organization=organization, name="East")
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
        team=east,
    )
    MembershipFactory(
        organization=organization,
        user=None,
        display_name="Rita Rep",
        role="rep",
        team=east,
        reports_to=manager,
    )
    return organization


def _sign_in(tab, base_url, email):
    tab.goto(f"{base_url}/accounts/login/")
    tab.fill("input[name=login]", email)
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{base_url}/o/acme/**")


def _deals_csv(tmp_path, today):
    quarter = fiscal_quarter_range(today, 1)
    engaged = today - dt.timedelta(days=60)
    path = tmp_path / "deals.csv"
    path.write_text(
        "opportunity_id,sales_agent,product,account,deal_stage,engage_date,"
        "close_date,close_value\n"
        f"E2E-1,Rita Rep,GTX Basic,Betatech,Engaging,{engaged:%Y-%m-%d},"
        f"{quarter.last_day:%Y-%m-%d},5000\n"
    )
    return path


def test_quota_import_alert_in_inbox(page, live_server, acme, tmp_path, artifacts):
    base = live_server.url
    today = timezone.localdate(timezone=dt.UTC)
    quarter = fiscal_quarter_range(today, 1)

    # The admin sets Rita's quota for the current quarter in the grid.
    _sign_in(page, base, "admin@acme.test")
    page.goto(f"{base}/o/acme/goals/quotas/?on={quarter.start:%Y-%m-%d}")
    page.get_by_label("Rita Rep").fill("100000")
    page.click("text=Save quotas")
    page.wait_for_selector(".message.success")
    with tenant_context(acme):
        quota = Quota.objects.get(member__display_name="Rita Rep")
    assert quota.amount == Decimal("100000.00")
    assert (quota.period_start, quota.period_end) == (quarter.start, quarter.end)

    # The admin imports the deal: upload, map (pre-filled), validate, import.
    page.goto(f"{base}/o/acme/data/imports/")
    page.set_input_files("input[type=file]", str(_deals_csv(tmp_path, today)))
    page.click("text=Upload and map columns")
    page.click("button:has-text('Validate')")
    page.click("button:has-text('Import 1 row')")
    page.wait_for_selector("text=Done", timeout=20_000)

    with tenant_context(acme):
        alerts = {a.rule.builtin_key: a for a in Alert.objects.select_related("rule")}
    assert {"coverage_below_target", "stale_open_deal"} <= set(alerts)

    # The manager finds both alerts in the inbox, and the deal as evidence.
    page.context.clear_cookies()
    _sign_in(page, base, "max@acme.test")
    page.goto(f"{base}/o/acme/coaching/")
    inbox = page.inner_text("main")
    assert "Rita Rep" in inbox
    assert alerts["coverage_below_target"].rule.name in inbox
    assert alerts["stale_open_deal"].rule.name in inbox
    page.click(f"a[href*='{alerts['stale_open_deal'].public_id}']")
    page.screenshot(path=str(artifacts / "coaching-alert.png"), full_page=True)
    row = page.locator("tr", has_text="E2E-1").inner_text()
    # Engaged 60 days ago with no activity logged: idle 60 days.
    assert row.split("\t")[-1].strip() == "60"
    assert "Engaging" in row
