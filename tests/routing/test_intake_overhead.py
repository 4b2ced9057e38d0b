"""Lead serializers used one after another, and the routing task's message text."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import celery
import pytest

from activity.models import Lead
from routing.serializers import LeadInputSerializer, LeadSerializer
from routing.tasks import route_lead_task


def test_input_serializers_validate_independently():
    valid = LeadInputSerializer(
        data={
            "email": "a@example.com",
            "company_size": "40",
            "estimated_value": "12.5",
            "custom": {"plan": "gold", "seats": 3},
        }
    )
    invalid = LeadInputSerializer(
        data={"email": "", "custom": {"bad key": 1}, "company_size": -1}
    )

    assert not invalid.is_valid()
    assert valid.is_valid(), valid.errors
    assert valid.validated_data["company_size"] == 40
    assert valid.validated_data["estimated_value"] == Decimal("12.50")
    assert valid.validated_data["custom"] == {"plan": "gold", "seats": 3}
    assert set(invalid.errors) == {"email", "custom", "company_size"}
    assert "bad key" in str(invalid.errors["custom"][0])


def test_lead_serializer_renders_each_lead():
    received = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
    leads = [
        Lead(
            public_id=uuid.UUID(int=number),
            email=f"lead{number}@example.com",
            estimated_value=Decimal("1500") if number == 1 else None,
            company_size=number * 10,
            custom={"n": number},
            received_at=received,
            routing_status=Lead.RoutingStatus.PENDING,
        )
        for number in (1, 2)
    ]

    first, second = (LeadSerializer(lead).data for lead in leads)

    assert first["id"] == "00000000-0000-0000-0000-000000000001"
    assert second["id"] == "00000000-0000-0000-0000-000000000002"
    assert first["email"] == "lead1@example.com"
    assert second["email"] == "lead2@example.com"
    assert first["estimated_value"] == "1500.00"
    assert second["estimated_value"] is None
    assert first["company_size"] == 10
    assert second["custom"] == {"n": 2}
    assert first["received_at"] == "2026-03-02T09:30:00Z"
    assert first["owner"] is None


@pytest.fixture
def sent_options(monkeypatch):
    """Options that route_lead_task passes on to Celery's apply_async."""
    sent: list[dict] = []

    def record(self, args=None, kwargs=None, **options):
        sent.append({"args": args, "kwargs": kwargs, **options})

    monkeypatch.setattr(celery.Task, "apply_async", record)
    return sent


def test_routing_message_describes_arguments(sent_options):
    matches = {
        "customer_account_id": None,
        "known_contact_id": 5,
        "domain_account_ids": [7, 8],
    }

    route_lead_task.delay(3, 41, matches)

    assert sent_options[0]["args"] == (3, 41, matches)
    assert sent_options[0]["argsrepr"] == (
        "(3, 41, {'customer_account_id': None, 'known_contact_id': 5, "
        "'domain_account_ids': [7, 8]})"
    )
    assert sent_options[0]["kwargsrepr"] == "{}"


def test_routing_message_cuts_long_arguments(sent_options):
    # 400 ids of 5 characters each, with ", " between them, pass 1,024.
    matches = {"domain_account_ids": list(range(10_000, 10_400))}

    route_lead_task.delay(3, 41, matches)

    argsrepr = sent_options[0]["argsrepr"]
    assert len(argsrepr) == 1024
    assert argsrepr.startswith("(3, 41, {'domain_account_ids': [10000, 10001, ")
    assert argsrepr.endswith("...")


def test_routing_message_keeps_given_text(sent_options):
    route_lead_task.apply_async((3, 41, None), argsrepr="(hidden)")

    assert sent_options[0]["argsrepr"] == "(hidden)"
    assert sent_options[0]["kwargsrepr"] == "{}"
