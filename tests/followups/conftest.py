"""Builders for follow-up tests: a deal with a contact, and a sequence with steps."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from activity.models import Account, Contact, Deal
from followups.models import Sequence, Step
from spm.tenancy import tenant_context

# Monday 2024-03-04 10:00 in New York (EST, UTC-5).
MONDAY_10 = dt.datetime(2024, 3, 4, 15, 0, tzinfo=dt.UTC)


def make_deal(personas, *, stage="Prospecting", owner=None, email="pat@initech.test"):
    org = personas.org
    account = Account.objects.create(organization=org, name="Initech")
    Contact.objects.create(
        organization=org, account=account, first_name="Pat", email=email
    )
    return Deal.objects.create(
        organization=org,
        name="Initech renewal",
        account=account,
        owner=owner or personas.rep1,
        pipeline=personas.stages[stage].pipeline,
        stage=personas.stages[stage],
        amount=Decimal("5000.00"),
    )


def make_sequence(org, steps, **fields) -> Sequence:
    """Create a sequence of steps, each (delay amount, unit, action) or a field dict."""
    sequence = Sequence.objects.create(
        organization=org, name=fields.pop("name", "Renewal"), **fields
    )
    for order, spec in enumerate(steps, start=1):
        if not isinstance(spec, dict):
            amount, unit, action = spec
            spec = {"delay_amount": amount, "delay_unit": unit, "action": action}
        spec.setdefault("subject", "Hello {{ first_name }}")
        spec.setdefault(
            "body", "Hi {{ first_name }}, about {{ deal }} at {{ company }}. {{ rep }}"
        )
        Step.objects.create(organization=org, sequence=sequence, order=order, **spec)
    return sequence


@pytest.fixture
def acme(personas):
    """Acme in New York time, as the current organisation."""
    personas.org.time_zone = "America/New_York"
    personas.org.save(update_fields=["time_zone"])
    with tenant_context(personas.org):
        yield personas.org
