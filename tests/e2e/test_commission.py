"""From a calculation run to an approved commission statement, in headless Chromium.

Rita is on a marginal tiered plan: 5% on the month's credited amount up to
10,000 and 10% above it. She closes 8,000 and then 5,000 this month, so the
first deal pays 8,000 x 5% = 400.00 and the second 2,000 x 5% + 3,000 x 10%
= 400.00, 800.00 in total. The admin calculates the month, Rita reads her
statement, her manager approves it, and a manual adjustment posted after
that is rejected because the approved lines are final.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from compensation import selectors
from compensation.models import Statement, StatementLine
from goals.calendar import month_range
from spm.tenancy import tenant_context
from tests.compensation.conftest import assign, make_plan, publish_version, won_deal
from tests.conftest import PASSWORD
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    PipelineFactory,
    UserFactory,
    default_stages,
)

pytestmark = pytest.mark.e2e

TIERED = {
    "name": "Tiered commission",
    "kind": "tiered",
    "params": {
        "basis": "amount",
        "mode": "marginal",
        "tiers": [
            {"from": "0", "to": "10000", "rate": "0.05"},
            {"from": "10000", "rate": "0.10"},
        ],
    },
}


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
    plan_start = month.start.replace(year=month.start.year - 1)
    plan = make_plan(organization.pk, "AE tiers")
    publish_version(plan, [TIERED], effective_from=plan_start)
    assign(rita, plan, start=plan_start)
    won = default_stages(PipelineFactory(organization=organization))["Won"]
    won_deal(rita, won, "8000.00", month.start)
    won_deal(rita, won, "5000.00", month.start)
    return organization, month


def _sign_in(tab, base_url, email):
    tab.context.clear_cookies()
    tab.goto(f"{base_url}/accounts/login/")
    tab.fill("input[name=login]", email)
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{base_url}/o/acme/**")


def test_calculate_read_approve_lock(page, live_server, acme, artifacts):
    organization, month = acme
    base = live_server.url
    list_url = f"{base}/o/acme/commission/statements/?period={month.start:%Y-%m}"

    # The admin calculates the month; the run finishes and lists Rita's draft.
    _sign_in(page, base, "admin@acme.test")
    page.goto(list_url)
    page.click("button:has-text('Calculate')")
    page.wait_for_selector(".run-status:has-text('Done')", timeout=20_000)
    row = page.locator("tr", has_text="Rita Rep").inner_text()
    assert "Draft" in row
    assert "800.00 USD" in row
    with tenant_context(organization):
        statement = Statement.objects.get(member__display_name="Rita Rep")
        lines = selectors.statement_lines(statement)
    assert [line.amount for line in lines] == [Decimal("400.00"), Decimal("400.00")]
    assert statement.total == Decimal("800.00")

    # Rita reads her statement and the sentence behind the tier split.
    _sign_in(page, base, "rita@acme.test")
    page.click("nav >> text=Commission")
    page.wait_for_selector(".statement-lines")
    mine = page.inner_text("main")
    assert lines[1].explanation in mine
    assert "10%" in lines[1].explanation
    assert page.inner_text(".statement-total") == "800.00"
    assert page.inner_text(".statement-status") == "Draft"
    page.screenshot(path=str(artifacts / "commission-rep.png"), full_page=True)

    # Max approves it from the statements list.
    _sign_in(page, base, "max@acme.test")
    page.goto(list_url)
    page.check("input[aria-label='Select Rita Rep']")
    page.click("button:has-text('Approve selected')")
    page.wait_for_selector(".message.success")
    assert "Approved" in page.locator("tr", has_text="Rita Rep").inner_text()
    statement.refresh_from_db()
    assert statement.status == Statement.Status.APPROVED

    # A manual adjustment posted to the approved statement is rejected.
    page.goto(f"{base}/o/acme/commission/statements/{statement.public_id}/")
    assert page.locator("text=Manual adjustment").count() == 0
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        f"{base}/o/acme/commission/statements/{statement.public_id}/adjust/",
        form={"amount": "100.00", "reason": "Late deal", "csrfmiddlewaretoken": csrf},
        headers={"Referer": page.url},
    )
    assert response.status == 409
    assert "can no longer change" in response.text()
    with tenant_context(organization):
        assert StatementLine.objects.filter(statement=statement).count() == 2
    statement.refresh_from_db()
    assert statement.total == Decimal("800.00")
