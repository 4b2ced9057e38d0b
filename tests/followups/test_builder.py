"""The sequence builder: create and edit with steps, validation and the audit log."""

from __future__ import annotations

import pytest
from django.urls import reverse

from followups.models import Sequence, Step
from spm.models import AuditLog
from tests.conftest import login
from tests.followups.conftest import make_sequence


def steps_data(*steps: dict, initial: int = 0) -> dict:
    """Return the step formset's POST data for ``steps``, in order."""
    data = {
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": str(initial),
    }
    for index, step in enumerate(steps):
        row = {
            "delay_amount": "0",
            "delay_unit": "business_days",
            "subject": "",
            "body": "",
            "field_name": "",
            "field_value": "",
            **step,
        }
        for name, value in row.items():
            data[f"steps-{index}-{name}"] = value
    return data


def builder_data(personas, *steps: dict, **fields) -> dict:
    data = {
        "name": "Engaged follow-up",
        "trigger": "deal_enters_stage",
        "trigger_stage": str(personas.stages["Engaging"].public_id),
        "trigger_days": "",
        "pipeline": "",
        "amount_min": "",
        "amount_max": "",
        "is_active": "on",
        **fields,
    }
    data.update(steps_data(*steps))
    return data


EMAIL_STEP = {
    "action": "email",
    "subject": "Next steps, {{ first_name }}",
    "body": "Hi {{ first_name }}, about {{ deal }}. {{ rep }}",
}
TASK_STEP = {
    "action": "task",
    "delay_amount": "2",
    "delay_unit": "business_hours",
    "subject": "Call {{ first_name }}",
}


def test_create_page_renders_within_query_budget(
    acme, personas, client, django_assert_max_num_queries
):
    login(client, personas.manager)

    with django_assert_max_num_queries(14):
        response = client.get(reverse("followups:create", args=["acme"]))

    assert response.status_code == 200
    assert 'aria-label="Step 1 action"' in response.content.decode()


def test_create_saves_sequence_filters_and_steps(acme, personas, client):
    login(client, personas.manager)
    east = personas.rep1.team
    data = builder_data(
        personas,
        EMAIL_STEP,
        TASK_STEP,
        owners=[str(personas.rep1.public_id)],
        teams=[str(east.public_id)],
        amount_min="1000.00",
    )

    response = client.post(reverse("followups:create", args=["acme"]), data)

    assert response.status_code == 302
    sequence = Sequence.objects.get()
    assert response["Location"] == reverse(
        "followups:detail", args=["acme", sequence.public_id]
    )
    assert sequence.name == "Engaged follow-up"
    assert sequence.trigger == "deal_enters_stage"
    assert sequence.trigger_stage == personas.stages["Engaging"]
    assert sequence.trigger_days is None
    assert sequence.is_active is True
    assert sequence.filters == {
        "owners": [personas.rep1.pk],
        "teams": [east.pk],
        "amount_min": "1000.00",
    }
    steps = list(sequence.steps.order_by("order"))
    assert [step.order for step in steps] == [1, 2]
    assert [step.action for step in steps] == ["email", "task"]
    assert (steps[1].delay_amount, steps[1].delay_unit) == (2, "business_hours")
    assert steps[0].subject == "Next steps, {{ first_name }}"
    audit = AuditLog.unscoped.get(action="followups.sequence.create")
    assert audit.actor == personas.manager.user
    assert audit.object_id == str(sequence.public_id)
    assert audit.old is None
    assert [step["action"] for step in audit.new["steps"]] == ["email", "task"]


def test_template_syntax_error_names_step_and_field(acme, personas, client):
    login(client, personas.manager)
    broken = {**TASK_STEP, "body": "Hi {% if first_name %}{{ first_name }}"}
    data = builder_data(personas, EMAIL_STEP, broken)

    response = client.post(reverse("followups:create", args=["acme"]), data)

    assert response.status_code == 400
    errors = response.context["steps"].forms[1].errors
    assert list(errors) == ["body"]
    assert errors["body"][0].startswith("Step 2, body: invalid template:")
    assert "endif" in errors["body"][0]
    assert "Step 2, body: invalid template:" in response.content.decode()
    assert Sequence.objects.count() == 0
    assert Step.objects.count() == 0
    assert AuditLog.unscoped.filter(action__startswith="followups.").count() == 0


def test_stage_trigger_needs_stage(acme, personas, client):
    login(client, personas.manager)
    data = builder_data(personas, TASK_STEP, trigger_stage="")

    response = client.post(reverse("followups:create", args=["acme"]), data)

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "trigger_stage": ["Choose the stage that starts the sequence."]
    }
    assert Sequence.objects.count() == 0


def test_sequence_needs_one_step(acme, personas, client):
    login(client, personas.manager)

    response = client.post(
        reverse("followups:create", args=["acme"]), builder_data(personas)
    )

    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == ["Add at least one step."]


def test_field_update_value_is_checked(acme, personas, client):
    login(client, personas.manager)
    update = {"action": "field_update", "field_name": "close_date"}
    update["field_value"] = "next week"
    data = builder_data(personas, update)

    response = client.post(reverse("followups:create", args=["acme"]), data)

    assert response.status_code == 400
    [message] = response.context["form"].non_field_errors()
    assert message.startswith(
        "Step 1, field value: 'next week' is not a valid deal close_date:"
    )
    assert Sequence.objects.count() == 0


def test_lead_field_rejected_on_deal_trigger(acme, personas, client):
    login(client, personas.manager)
    update = {"action": "field_update", "field_name": "status", "field_value": "x"}

    response = client.post(
        reverse("followups:create", args=["acme"]), builder_data(personas, update)
    )

    assert response.status_code == 400
    [message] = response.context["form"].non_field_errors()
    assert message == (
        "Step 1, field name: 'status' cannot be set on a deal; "
        "choose one of amount, close_date, name."
    )


def test_duplicate_name_is_rejected(acme, personas, client):
    make_sequence(acme, [(0, "business_days", "task")], name="Engaged follow-up")
    login(client, personas.manager)

    response = client.post(
        reverse("followups:create", args=["acme"]), builder_data(personas, TASK_STEP)
    )

    assert response.status_code == 400
    assert response.context["form"].errors["name"] == [
        "A sequence named 'Engaged follow-up' already exists."
    ]
    assert Sequence.objects.count() == 1


def test_add_step_saves_nothing(acme, personas, client):
    login(client, personas.manager)
    data = builder_data(personas, TASK_STEP, add_step="1")

    response = client.post(reverse("followups:create", args=["acme"]), data)

    assert response.status_code == 200
    assert len(response.context["steps"].forms) == 2
    assert Sequence.objects.count() == 0


def test_edit_keeps_step_rows_and_audits_old_state(
    acme, personas, client, django_assert_max_num_queries
):
    sequence = make_sequence(
        acme,
        [(0, "business_days", "email"), (1, "business_days", "task")],
        name="Renewal",
    )
    first = sequence.steps.get(order=1)
    url = reverse("followups:edit", args=["acme", sequence.public_id])
    login(client, personas.manager)

    with django_assert_max_num_queries(16):
        page = client.get(url)
    assert page.status_code == 200
    assert page.context["steps"].initial_form_count() == 2

    data = builder_data(
        personas,
        {**EMAIL_STEP, "subject": "New subject"},
        name="Renewal",
        trigger="manual",
        trigger_stage="",
    )
    response = client.post(url, data)

    assert response.status_code == 302
    sequence.refresh_from_db()
    assert sequence.trigger == "manual"
    assert sequence.trigger_stage is None
    (step,) = sequence.steps.all()
    # Step 1 is the same row, edited. Step 2 is gone.
    assert step.pk == first.pk
    assert step.subject == "New subject"
    audit = AuditLog.unscoped.get(action="followups.sequence.update")
    assert [s["action"] for s in audit.old["steps"]] == ["email", "task"]
    assert [s["subject"] for s in audit.new["steps"]] == ["New subject"]
    assert audit.old["trigger"] == "manual"


def test_edit_posting_unchanged_steps_keeps_them(acme, personas, client):
    sequence = make_sequence(
        acme, [(0, "business_days", "task"), (3, "days", "notify_manager")]
    )
    url = reverse("followups:edit", args=["acme", sequence.public_id])
    login(client, personas.manager)
    form = client.get(url).context["steps"]
    data = {
        "name": "Renewal",
        "trigger": "manual",
        "is_active": "on",
        "steps-TOTAL_FORMS": "2",
        "steps-INITIAL_FORMS": "2",
    }
    for index, row in enumerate(form.initial):
        for name, value in row.items():
            data[f"steps-{index}-{name}"] = value

    response = client.post(url, data)

    assert response.status_code == 302, (
        response.context["form"].errors,
        [f.errors for f in response.context["steps"].forms],
    )
    steps = list(sequence.steps.order_by("order"))
    assert [(s.delay_amount, s.delay_unit, s.action) for s in steps] == [
        (0, "business_days", "task"),
        (3, "days", "notify_manager"),
    ]


@pytest.mark.parametrize(
    ("field_name", "field_value", "reason"),
    [
        ("amount", "-5", "'-5' is not a valid deal amount: amounts are not negative."),
        ("name", " ", "a deal name cannot be empty."),
    ],
)
def test_field_update_rules_of_field_checked(
    acme, personas, client, field_name, field_value, reason
):
    login(client, personas.manager)
    update = {
        "action": "field_update",
        "field_name": field_name,
        "field_value": field_value,
    }

    response = client.post(
        reverse("followups:create", args=["acme"]), builder_data(personas, update)
    )

    assert response.status_code == 400
    [message] = response.context["form"].non_field_errors()
    assert message == f"Step 1, field value: {reason}"
    assert Sequence.objects.count() == 0


def test_delay_label_counts_units():
    assert Step(delay_amount=1, delay_unit="business_days").delay_label == (
        "1 business day"
    )
    assert Step(delay_amount=3, delay_unit="hours").delay_label == "3 hours"
    assert Step(delay_amount=0, delay_unit="days").delay_label == "0 calendar days"
