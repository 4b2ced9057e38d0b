"""The goal settings of the organisation and the members' start and end dates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.urls import reverse

from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.conftest import login

D = dt.date
SETTINGS = reverse("spm:settings", kwargs={"org_slug": "acme"})
BASE = {
    "name": "Acme",
    "time_zone": "UTC",
    "currency": "USD",
    "fiscal_year_start_month": 2,
}


def _entry(org, action):
    with tenant_context(org):
        return AuditLog.objects.get(action=action)


def test_goal_settings_saved_and_audited(client, personas):
    login(client, personas.admin)
    data = {
        **BASE,
        "fiscal_year_named_by": "start",
        "quota_period": "month",
        "coverage_target_fixed": "3.5",
        "coverage_min_closed_deals": "12",
        "reps_see_own_alerts": "on",
    }

    response = client.post(SETTINGS, data)

    assert response.status_code == 302
    org = personas.org
    org.refresh_from_db()
    assert org.fiscal_year_named_by == "start"
    assert org.quota_period == "month"
    assert org.coverage_target_fixed == Decimal("3.50")
    assert org.coverage_min_closed_deals == 12
    assert org.reps_see_own_alerts is True
    entry = _entry(org, "organization.update")
    assert entry.old["quota_period"] == "quarter"
    assert entry.new["quota_period"] == "month"
    assert entry.old["coverage_target_fixed"] is None
    assert entry.new["coverage_target_fixed"] == "3.50"
    assert entry.new["fiscal_year_named_by"] == "start"
    assert entry.new["coverage_min_closed_deals"] == 12
    assert entry.new["reps_see_own_alerts"] is True


def test_settings_missing_from_post_are_kept(client, personas):
    org = personas.org
    org.quota_period = "year"
    org.coverage_target_fixed = Decimal("4.00")
    org.save()
    login(client, personas.admin)

    assert client.post(SETTINGS, BASE).status_code == 302

    org.refresh_from_db()
    assert org.quota_period == "year"
    assert org.coverage_target_fixed == Decimal("4.00")
    assert org.fiscal_year_start_month == 2


def test_blank_coverage_target_clears_it(client, personas):
    org = personas.org
    org.coverage_target_fixed = Decimal("4.00")
    org.save()
    login(client, personas.admin)

    client.post(SETTINGS, {**BASE, "coverage_target_fixed": ""})

    org.refresh_from_db()
    assert org.coverage_target_fixed is None


def test_fiscal_naming_changes_grid_label(client, personas):
    login(client, personas.admin)
    client.post(SETTINGS, {**BASE, "fiscal_year_named_by": "start"})

    response = client.get("/o/acme/goals/quotas/", {"on": "2024-02-15"})

    # A February start: the year from 1 February 2024 is FY2024 by its start.
    assert response.context["period"].label == "FY2024 Q1"


def _member_url(member) -> str:
    return reverse(
        "spm:member-edit", kwargs={"org_slug": "acme", "member_id": member.public_id}
    )


def _member_data(member, **changes) -> dict:
    return {
        "display_name": member.display_name,
        "role": member.role,
        "reports_to": member.reports_to_id or "",
        "team": member.team_id or "",
        "is_active": "on",
        **changes,
    }


def test_member_dates_saved_and_audited(client, personas):
    rep = personas.rep1
    login(client, personas.admin)

    response = client.post(
        _member_url(rep),
        _member_data(rep, start_date="2024-02-15", end_date="2024-12-31"),
    )

    assert response.status_code == 302
    rep.refresh_from_db()
    assert (rep.start_date, rep.end_date) == (D(2024, 2, 15), D(2024, 12, 31))
    entry = _entry(personas.org, "membership.update")
    assert entry.old["start_date"] is None
    assert entry.new["start_date"] == "2024-02-15"
    assert entry.new["end_date"] == "2024-12-31"


def test_member_end_before_start_rejected(client, personas):
    rep = personas.rep1
    login(client, personas.admin)

    response = client.post(
        _member_url(rep),
        _member_data(rep, start_date="2024-02-15", end_date="2024-02-14"),
    )

    assert response.status_code == 200
    assert "The last day 2024-02-14 is before the first day 2024-02-15." in (
        response.content.decode()
    )
    rep.refresh_from_db()
    assert rep.start_date is None


def test_member_dates_missing_from_post_are_kept(client, personas):
    rep = personas.rep1
    rep.start_date = D(2024, 2, 15)
    rep.save()
    login(client, personas.admin)

    client.post(_member_url(rep), _member_data(rep, display_name="Rita Renamed"))

    rep.refresh_from_db()
    assert rep.display_name == "Rita Renamed"
    assert rep.start_date == D(2024, 2, 15)
