"""The audit log shows stage names, and admin forms name the field and the value."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from activity.models import Stage
from spm.forms import MembershipForm, OrganizationSettingsForm
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.conftest import login

URL = reverse("spm:audit-log", kwargs={"org_slug": "acme"})


def _entry(organization, old, new, minute=0) -> AuditLog:
    return AuditLog.unscoped.create(
        organization=organization,
        action="followups.sequence.update",
        object_type="followups.sequence",
        object_id=f"s{minute}",
        old=old,
        new=new,
        created_at=dt.datetime(2025, 3, 10, 12, minute, tzinfo=dt.UTC),
    )


def _cells(client) -> tuple[int, list[str]]:
    """Return the page's query count and the text of its Old and New cells."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)
    assert response.status_code == 200
    rows = response.content.decode().split('id="audit-log"')[1].split("<tbody>")[1]
    return len(queries), rows.split("</tbody>")[0]


def test_audit_log_shows_stage_names(client, personas):
    org, stages = personas.org, personas.stages
    AuditLog.unscoped.filter(organization=org).delete()
    _entry(
        org,
        {"trigger_stage": stages["Prospecting"].pk, "crm_stage_id": "12"},
        {"trigger_stage": stages["Engaging"].pk, "crm_stage_id": "12"},
    )
    login(client, personas.admin)

    _queries, rows = _cells(client)

    assert "<dd>Prospecting (Sales)</dd>" in rows
    assert "<dd>Engaging (Sales)</dd>" in rows
    # A CRM's own stage id is text, not a local stage, and stays as it is.
    assert "<dd>12</dd>" in rows
    assert f"<dd>{stages['Prospecting'].pk}</dd>" not in rows


def test_audit_log_stage_of_other_org_not_named(client, personas):
    org = personas.org
    secret = personas.other_stages["Won"]
    Stage.unscoped.filter(pk=secret.pk).update(name="Globex secret stage")
    AuditLog.unscoped.filter(organization=org).delete()
    _entry(org, None, {"to_stage_id": secret.pk, "stage": "Won"})
    login(client, personas.admin)

    _queries, rows = _cells(client)

    assert "Globex secret stage" not in rows
    assert f"<dd>stage {secret.pk} (deleted)</dd>" in rows
    # A stage stored by name is shown as stored.
    assert "<dd>Won</dd>" in rows


def test_audit_log_stage_lookup_is_batched(client, personas):
    org, stages = personas.org, personas.stages
    AuditLog.unscoped.filter(organization=org).delete()
    _entry(org, {"from_stage_id": stages["Prospecting"].pk}, None)
    login(client, personas.admin)

    one_entry_queries, _rows = _cells(client)

    names = ["Engaging", "Won", "Lost", "Prospecting", "Engaging"]
    for minute, name in enumerate(names, start=1):
        _entry(
            org,
            {"from_stage_id": stages["Prospecting"].pk},
            {"to_stage_id": stages[name].pk},
            minute,
        )

    six_entries_queries, rows = _cells(client)

    assert rows.count("<dd>Won (Sales)</dd>") == 1
    assert rows.count("<dd>Prospecting (Sales)</dd>") == 6 + 1
    assert six_entries_queries == one_entry_queries


def test_settings_form_names_bad_values(personas):
    org = personas.org
    data = {
        "name": "Acme",
        "time_zone": "UTC",
        "currency": "USD",
        "fiscal_year_start_month": "13",
        "coverage_target_fixed": "1,5",
        "coverage_min_closed_deals": "twenty",
    }
    with tenant_context(org):
        form = OrganizationSettingsForm(data, instance=org)

        assert not form.is_valid()

    assert form.errors["coverage_target_fixed"] == [
        'Fixed pipeline coverage target: "1,5" is not a number '
        "(use digits and a decimal point, like 1250.50)."
    ]
    assert form.errors["coverage_min_closed_deals"] == [
        'Closed deals a rep needs for their own win rate: "twenty" is not a '
        "whole number."
    ]
    # The 1 to 12 limit is the model's, checked after the form's own fields.
    data["coverage_target_fixed"] = ""
    data["coverage_min_closed_deals"] = "20"
    with tenant_context(org):
        form = OrganizationSettingsForm(data, instance=org)

        assert not form.is_valid()

    assert form.errors["fiscal_year_start_month"] == [
        'Fiscal year start month: "13" is above the maximum of 12.'
    ]


def test_member_form_names_bad_date(client, personas):
    member = personas.rep1
    login(client, personas.admin)

    response = client.post(
        reverse(
            "spm:member-edit",
            kwargs={"org_slug": "acme", "member_id": member.public_id},
        ),
        {
            "display_name": member.display_name,
            "role": member.role,
            "is_active": "on",
            "start_date": "2024-02-30",
        },
    )

    # The member page shows an invalid form again with status 200.
    assert response.status_code == 200
    form = response.context["form"]
    assert isinstance(form, MembershipForm)
    assert form.errors["start_date"] == [
        'Start date: "2024-02-30" is not a valid date (use YYYY-MM-DD).'
    ]
    member.refresh_from_db()
    assert member.start_date is None


def test_audit_log_accepts_extreme_dates(client, personas):
    _entry(personas.org, {"stage": "a"}, {"stage": "b"})
    login(client, personas.admin)

    response = client.get(URL, {"start": "0001-01-01", "end": "9999-12-31"})

    assert response.status_code == 200
    assert len(response.context["page"].object_list) == 1
