"""The audit log shows follow-up sequence steps as sentences, not Python dicts."""

from __future__ import annotations

import html

from django.urls import reverse

from followups.audit_text import step_audit_text
from followups.configuration import (
    SequenceSpec,
    StepSpec,
    sequence_create,
    sequence_update,
)
from spm.services import audit_log_write
from tests.conftest import login

URL = reverse("spm:audit-log", kwargs={"org_slug": "acme"})

INTRO = StepSpec(
    delay_amount=2,
    delay_unit="days",
    action="email",
    subject="Intro",
    body="Hi {{ first_name }}",
)
CLOSE_DATE = StepSpec(
    delay_amount=1,
    delay_unit="business_days",
    action="field_update",
    field_name="close_date",
    field_value="2025-06-30",
)


def _spec(*steps: StepSpec, filters: dict | None = None) -> SequenceSpec:
    return SequenceSpec(
        name="Renewal",
        trigger="manual",
        trigger_stage_id=None,
        trigger_days=None,
        filters=filters or {},
        is_active=True,
        steps=steps,
    )


def _audit_table(client) -> str:
    """Return the audit log table's body as text, with HTML entities decoded."""
    response = client.get(URL)
    assert response.status_code == 200
    table = response.content.decode().split('id="audit-log"')[1]
    return html.unescape(table.split("</tbody>")[0])


def test_step_text_email():
    values = {"order": 1, **INTRO.__dict__}

    text = step_audit_text(values)

    assert text == (
        "Step 1: after 2 calendar days, send an email, "
        "subject 'Intro', body 'Hi {{ first_name }}'"
    )


def test_step_text_field_update():
    values = {"order": 2, **CLOSE_DATE.__dict__}

    text = step_audit_text(values)

    assert text == (
        "Step 2: after 1 business day, update a field, set close_date to '2025-06-30'"
    )


def test_step_text_unknown_unit_and_action():
    values = {"order": 3, "delay_amount": 4, "delay_unit": "weeks", "action": "sms"}

    assert step_audit_text(values) == "Step 3: after 4 weeks, sms"


def test_audit_log_shows_steps_as_sentences(client, personas, acme):
    sequence = sequence_create(
        organization=personas.org,
        actor=personas.admin.user,
        spec=_spec(INTRO, filters={"amount_min": "1000.00"}),
    )
    sequence_update(
        sequence=sequence, actor=personas.admin.user, spec=_spec(INTRO, CLOSE_DATE)
    )
    login(client, personas.admin)

    table = _audit_table(client)

    step_1 = (
        "Step 1: after 2 calendar days, send an email, "
        "subject 'Intro', body 'Hi {{ first_name }}'"
    )
    step_2 = (
        "Step 2: after 1 business day, update a field, set close_date to '2025-06-30'"
    )
    # The create entry, and the update entry's old and new values.
    assert table.count(step_1) == 3
    assert table.count(step_2) == 1
    assert "<dd>amount_min: 1000.00</dd>" in table
    assert "{'" not in table
    assert "'delay_amount'" not in table


def test_audit_log_steps_one_per_line(client, personas, acme):
    sequence_create(
        organization=personas.org,
        actor=personas.admin.user,
        spec=_spec(INTRO, CLOSE_DATE),
    )
    login(client, personas.admin)

    table = _audit_table(client)

    assert "'Hi {{ first_name }}'<br>Step 2: after 1 business day" in table


def test_audit_log_other_rows_unchanged(client, personas):
    audit_log_write(
        organization=personas.org,
        actor=personas.admin.user,
        action="routing.territory.update",
        object_type="routing.territory",
        old={"name": "West", "conditions": []},
        new={
            "name": "West",
            "conditions": [{"country": ["US", "CA"]}, {"industry": "Retail"}],
            "steps": [{"order": 1}],
            "paused": None,
        },
    )
    login(client, personas.admin)

    table = _audit_table(client)

    assert "<dd>West</dd>" in table
    assert "<dd>none</dd>" in table
    assert "<dd>country: US, CA<br>industry: Retail</dd>" in table
    # Only follow-up sequence entries read "steps" as sequence steps.
    assert "<dd>order: 1</dd>" in table
    assert "<dd>—</dd>" in table
    assert "{'" not in table
