"""From an empty plan list to an approved statement, in headless Chromium.

The admin builds a marginal tiered plan in the browser: 5% on the month's
credited amount up to 10,000 and 10% above it. She publishes it, assigns it
to Rita and calculates the month. Rita closed 8,000 and then 5,000, so the
first deal pays 8,000 x 5% = 400.00 and the second 2,000 x 5% + 3,000 x 10%
= 400.00, 800.00 in total. Rita reads the statement and her plan, and her
manager approves it. A 1,000 deal that arrives later is paid at 10% by the
next calculation, as a 100.00 adjustment line on next month's draft, while
the approved statement keeps its two lines.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from compensation import selectors
from compensation.models import PlanVersion, Statement, StatementLine
from goals.calendar import month_range
from spm.tenancy import tenant_context
from tests.compensation.conftest import won_deal
from tests.conftest import PASSWORD
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    PipelineFactory,
    UserFactory,
    default_stages,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def acme(transactional_db):
    """Acme in UTC: an admin, a manager and Rita, with this month's two deals."""
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
    rita = MembershipFactory(
        organization=organization,
        user=UserFactory(email="rita@acme.test"),
        display_name="Rita Rep",
        role="rep",
        reports_to=manager,
    )
    month = month_range(timezone.localdate(timezone=dt.UTC))
    won = default_stages(PipelineFactory(organization=organization))["Won"]
    won_deal(rita, won, "8000.00", month.start)
    won_deal(rita, won, "5000.00", month.start)
    return organization, month, rita, won


def _sign_in(tab, base_url, email):
    tab.context.clear_cookies()
    tab.goto(f"{base_url}/accounts/login/")
    tab.fill("input[name=login]", email)
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{base_url}/o/acme/**")


def _calculate(page, list_url):
    page.goto(list_url)
    page.click("button:has-text('Calculate')")
    page.wait_for_selector(".run-status:has-text('Done')", timeout=20_000)


def _build_and_publish(page, plan_start: dt.date):
    page.click("nav >> text=Comp plans")
    page.fill("#plan-create #id_name", "AE tiers")
    page.fill("#plan-create #id_currency", "USD")
    page.fill("#plan-create #id_effective_from", f"{plan_start:%Y-%m-%d}")
    page.click("button:has-text('Create plan')")
    page.wait_for_selector("h1:has-text('AE tiers v1')")

    page.click("a:has-text('Tiered rates')")
    page.fill("#id_name", "Tiered commission")
    page.select_option("#id_basis", "amount")
    page.select_option("#id_mode", "marginal")
    page.fill("#id_tiers", "0, 10000, 5\n10000, , 10")
    page.click("button:has-text('Save component')")
    page.wait_for_selector("#component-list >> text=Tiered commission")
    document = page.inner_text(".plan-document")
    assert "Bookings from 0.00 to 10,000.00 USD earn 5%." in document
    assert "Bookings from 10,000.00 USD up earn 10%." in document

    page.click("button:has-text('Publish v1')")
    page.wait_for_selector(".message.success")
    assert page.inner_text("h1 .version-status") == "Published"


def _assign(page, rita_start: dt.date):
    page.click("a:has-text('AE tiers')")
    page.select_option("#assignment-create #id_member", label="Rita Rep")
    page.fill("#assignment-create #id_start_date", f"{rita_start:%Y-%m-%d}")
    page.fill("#assignment-create #id_target_incentive", "60000")
    page.click("button:has-text('Assign')")
    page.wait_for_selector(".message.success")
    assert "Rita Rep" in page.inner_text("#assignment-list")


def test_build_publish_assign_calculate(page, live_server, acme, artifacts):
    organization, month, rita, won = acme
    base = live_server.url
    list_url = f"{base}/o/acme/commission/statements/?period={month.start:%Y-%m}"
    plan_start = month.start.replace(year=month.start.year - 1)

    # The admin builds the tiered plan, publishes it and assigns it to Rita.
    _sign_in(page, base, "admin@acme.test")
    _build_and_publish(page, plan_start)
    with tenant_context(organization):
        version = PlanVersion.objects.get(plan__name="AE tiers")
    assert version.status == PlanVersion.Status.PUBLISHED
    assert version.effective_from == plan_start
    _assign(page, plan_start)
    page.screenshot(path=str(artifacts / "plan-builder-admin.png"), full_page=True)

    # The month is calculated with the new plan.
    _calculate(page, list_url)
    assert "800.00 USD" in page.locator("tr", has_text="Rita Rep").inner_text()
    with tenant_context(organization):
        statement = Statement.objects.get(member=rita, period_start=month.start)
        lines = selectors.statement_lines(statement)
    assert [line.amount for line in lines] == [Decimal("400.00"), Decimal("400.00")]

    # Rita reads the statement, the tier split of the second line and her plan.
    _sign_in(page, base, "rita@acme.test")
    page.click("nav >> text=Commission")
    page.wait_for_selector(".statement-lines")
    page.wait_for_selector("#my-plan")
    mine = page.inner_text("main")
    assert lines[1].explanation in mine
    assert "3,000.00 x 10%" in lines[1].explanation
    assert "Bookings from 10,000.00 USD up earn 10%." in page.inner_text("#my-plan")
    assert page.inner_text(".statement-total") == "800.00"

    # Max approves it.
    _sign_in(page, base, "max@acme.test")
    page.goto(list_url)
    page.check("input[aria-label='Select Rita Rep']")
    page.click("button:has-text('Approve selected')")
    page.wait_for_selector(".message.success")
    statement.refresh_from_db()
    assert statement.status == Statement.Status.APPROVED

    # A late 1,000 deal earns 10% above 13,000, as an adjustment line.
    won_deal(rita, won, "1000.00", month.start)
    _sign_in(page, base, "admin@acme.test")
    _calculate(page, list_url)
    with tenant_context(organization):
        kept = list(statement.lines.order_by("order"))
        adjustment = StatementLine.objects.get(kind=StatementLine.Kind.ADJUSTMENT)
    statement.refresh_from_db()
    # Approval kept the lines the rep saw, with their public ids, as rows.
    assert [(line.public_id, line.amount) for line in kept] == [
        (lines[0].public_id, Decimal("400.00")),
        (lines[1].public_id, Decimal("400.00")),
    ]
    assert statement.total == Decimal("800.00")
    assert adjustment.amount == Decimal("100.00")
    assert adjustment.statement.period_start == month.end
    assert adjustment.adjusts_period_start == month.start
