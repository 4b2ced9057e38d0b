"""Wording of coaching rules and alerts: form errors, descriptions, counts."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from coaching.formatting import rule_condition
from coaching.models import AlertNote, Rule
from spm.tenancy import tenant_context
from tests.coaching.test_views import (
    NEW_RULE,
    _rule,
    _rule_form,
    _url,
    make_alert,
)
from tests.conftest import login

STALE = {
    "metric": "stale_open_deals",
    "activity_type": "",
    "threshold_kind": "absolute",
    "window": "period",
    "window_days": "",
    "parameter": "14",
}


def _form_errors(client, **changes) -> dict[str, list[str]]:
    response = client.post(NEW_RULE, _rule_form(**changes))
    assert response.status_code == 200
    return dict(response.context["form"].errors)


@pytest.mark.parametrize("days", ["-7", "0", "367"])
def test_window_days_error_shows_value(client, personas, days):
    login(client, personas.admin)

    errors = _form_errors(client, window_days=days)

    # One message: the missing-N check of the rule does not repeat it.
    assert errors == {
        "window_days": [f"N must be a whole number of days from 1 to 366, not {days}."]
    }
    assert not Rule.unscoped.filter(name="Few meetings").exists()


def test_stale_deal_days_error_shows_value(client, personas):
    login(client, personas.admin)

    errors = _form_errors(client, **{**STALE, "parameter": "-7"})

    assert errors == {
        "parameter": [
            "Days without activity must be a whole number, 1 or more, not -7."
        ]
    }


def test_stale_deal_days_missing_says_so(client, personas):
    login(client, personas.admin)

    errors = _form_errors(client, **{**STALE, "parameter": ""})

    assert errors == {
        "parameter": [
            "Enter the days without activity after which an open deal is stale: "
            "a whole number, 1 or more."
        ]
    }


@pytest.mark.parametrize(
    ("key", "text"),
    [
        (
            "activity_below_benchmark",
            "Activities logged are below 0.8 × the activity benchmark over the "
            "last 5 business days",
        ),
        (
            "stale_open_deal",
            "Open deals with no recent activity are at or above 1 deal "
            "(idle 14 days or more)",
        ),
        (
            "win_rate_below_team",
            "Win rate is below 1 × the team median over the last 90 days, with at "
            "least 10 closed deals",
        ),
    ],
)
def test_rule_description_grammar(personas, key, text):
    rule = _rule(personas.org, key)

    with tenant_context(personas.org):
        assert rule_condition(rule) == text


def _note_messages(client, personas, body: str) -> list[str]:
    alert = make_alert(_rule(personas.org), personas.rep1)
    login(client, personas.manager)
    response = client.post(
        _url("alert-note", alert_id=alert.public_id),
        {"kind": "note", "body": body},
    )
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_note_error_names_text_label(client, personas):
    messages = _note_messages(client, personas, "x" * 5001)

    assert messages == [
        "Text: Ensure this value has at most 5000 characters (it has 5001)."
    ]
    assert not AlertNote.unscoped.exists()


def test_empty_note_error_names_text_label(client, personas):
    assert _note_messages(client, personas, "   ") == ["Text: This field is required."]


def test_alert_shows_whole_activity_counts(client, personas):
    rule = _rule(personas.org, "activity_below_benchmark")
    alert = make_alert(
        rule,
        personas.rep1,
        details={
            "evidence": {
                "types": [
                    {"type": "call", "actual": "12", "expected": "40.00"},
                    {"type": "email", "actual": "3", "expected": "7.50"},
                ]
            }
        },
    )
    login(client, personas.manager)

    page = client.get(_url("alert", alert_id=alert.public_id)).content.decode()

    assert '<td>call</td><td class="num">12</td><td class="num">40</td>' in page
    assert '<td>email</td><td class="num">3</td><td class="num">7.50</td>' in page
    assert "40.00" not in page
