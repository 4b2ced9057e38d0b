"""A manager builds a sequence and enrols a deal, then the rep finds the task.

Max builds "Engaged follow-up", triggered when a deal enters Engaging, whose
step 1 is a task for the rep after 0 business days. He then enrols Rita's
deal by hand. Rita signs in and finds the task on her follow-ups page, due
now.

A step waits for the send window (09:00 to 17:00, Monday to Friday), so the
test moves the server's clock to the next Monday 10:00 UTC. That is within a
week of the real time, which keeps session expiry dates in the browser's
future.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from activity.models import Deal
from followups.models import Enrollment, Sequence
from spm.tenancy import tenant_context
from tests.conftest import PASSWORD
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    PipelineFactory,
    UserFactory,
    default_stages,
)

pytestmark = pytest.mark.e2e


def next_monday_10(now: dt.datetime) -> dt.datetime:
    """Return the first Monday 10:00 UTC after ``now``."""
    day = now.astimezone(dt.UTC).date() + dt.timedelta(days=1)
    while day.weekday() != 0:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(10, 0), tzinfo=dt.UTC)


@pytest.fixture
def monday_clock(monkeypatch):
    """Make the server's clock run from the next Monday 10:00 UTC."""
    real_now = timezone.now
    offset = next_monday_10(real_now()) - real_now()
    monkeypatch.setattr(timezone, "now", lambda: real_now() + offset)
    return timezone.now


@pytest.fixture
def acme(transactional_db):
    organization = OrganizationFactory(name="Acme", slug="acme", time_zone="UTC")
    max_manager = MembershipFactory(
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
        reports_to=max_manager,
    )
    stages = default_stages(PipelineFactory(organization=organization))
    deal = Deal.unscoped.create(
        organization=organization,
        name="Initech renewal",
        owner=rita,
        pipeline=stages["Prospecting"].pipeline,
        stage=stages["Prospecting"],
    )
    return organization, rita, deal


def _sign_in(tab, base_url: str, email: str) -> None:
    tab.goto(f"{base_url}/accounts/login/")
    tab.fill("input[name=login]", email)
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{base_url}/**")


def test_sequence_task_due_for_rep(browser, page, live_server, acme, monday_clock):
    organization, rita, deal = acme
    base = live_server.url
    _sign_in(page, base, "max@acme.test")

    page.goto(f"{base}/o/acme/followups/")
    page.get_by_role("link", name="New sequence").click()
    page.get_by_label("Name:", exact=True).fill("Engaged follow-up")
    page.get_by_label("Trigger:", exact=True).select_option(label="Deal enters a stage")
    page.get_by_label("Trigger stage").select_option(label="Sales: Engaging")
    page.get_by_label("Step 1 action").select_option(label="Create a task for the rep")
    page.get_by_label("Step 1 subject").fill("Call about {{ deal }}")
    page.get_by_role("button", name="Save sequence").click()
    page.wait_for_selector(".message.success")

    with tenant_context(organization):
        sequence = Sequence.objects.get()
        (step,) = sequence.steps.all()
    assert sequence.trigger_stage.name == "Engaging"
    assert (step.delay_amount, step.delay_unit, step.action) == (
        0,
        "business_days",
        "task",
    )

    page.get_by_label("Deal or lead").select_option(label="Initech renewal (Rita Rep)")
    page.get_by_role("button", name="Enrol", exact=True).click()
    page.wait_for_selector(".message.success")
    rows = page.locator("#enrollments tbody tr")
    assert rows.count() == 1
    assert "1. Create a task for the rep" in rows.first.inner_text()
    with tenant_context(organization):
        enrollment = Enrollment.objects.get()
    assert enrollment.deal_id == deal.pk
    # 0 business days at Monday 10:00 UTC is inside the send window: due now.
    assert enrollment.next_due_at.astimezone(dt.UTC).strftime("%a %H") == "Mon 10"

    rep_context = browser.new_context(viewport={"width": 1400, "height": 1000})
    rep_tab = rep_context.new_page()
    try:
        _sign_in(rep_tab, base, "rita@acme.test")
        rep_tab.goto(f"{base}/o/acme/leads/mine/")
        rep_tab.get_by_role("link", name="My follow-ups").click()
        rep_tab.wait_for_url(f"{base}/o/acme/followups/mine/")
        due = rep_tab.locator("#followups-due tbody tr")
        assert due.count() == 1
        text = due.first.inner_text()
        assert "Create a task for the rep: Call about Initech renewal" in text
        assert "Initech renewal" in text
        assert "Engaged follow-up" in text
        assert "overdue" not in text
    finally:
        rep_context.close()
