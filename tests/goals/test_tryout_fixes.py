"""Time-off and benchmark forms name the field and the value in their errors."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest

from goals.forms import BenchmarkForm, TimeOffForm
from goals.models import TimeOff
from spm.models import Membership
from spm.tenancy import tenant_context
from tests.conftest import login

TIME_OFF = "/o/acme/goals/time-off/"


@pytest.fixture(autouse=True)
def fixed_today():
    today = dt.date(2024, 3, 1)
    with mock.patch("goals.views.time_off.organization_today", return_value=today):
        yield


def test_time_off_page_names_bad_date(client, personas):
    login(client, personas.admin)

    response = client.post(
        TIME_OFF,
        {
            "member": str(personas.rep1.public_id),
            "kind": "vacation",
            "start_date": "2024-13-01",
            "end_date": "2024-03-08",
            "note": "",
        },
    )

    assert response.status_code == 400
    [error] = response.context["form"].errors["start_date"]
    assert error == 'First day: "2024-13-01" is not a valid date (use YYYY-MM-DD).'
    assert "Enter a valid date." not in response.content.decode()
    assert not TimeOff.unscoped.exists()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (
            "end_date",
            "8 March",
            'Last day: "8 March" is not a valid date (use YYYY-MM-DD).',
        ),
        (
            "kind",
            "sabbatical",
            'Kind: "sabbatical" is not one of the available choices.',
        ),
    ],
)
def test_time_off_form_error_names_value(personas, field, value, expected):
    data = {
        "member": str(personas.rep1.public_id),
        "kind": "vacation",
        "start_date": "2024-03-04",
        "end_date": "2024-03-08",
        field: value,
    }
    with tenant_context(personas.org):
        form = TimeOffForm(data, members=Membership.objects.all())

        assert not form.is_valid()

    assert form.errors[field] == [expected]


def test_time_off_form_keeps_own_range_error(personas):
    # Errors that the form's own checks raise already name the value and
    # are left as they are.
    data = {
        "member": str(personas.rep1.public_id),
        "kind": "vacation",
        "start_date": "2024-03-08",
        "end_date": "2024-03-04",
    }
    with tenant_context(personas.org):
        form = TimeOffForm(data, members=Membership.objects.all())

        assert not form.is_valid()

    assert form.errors["end_date"] == [
        "The last day 2024-03-04 is before the first day 2024-03-08."
    ]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("twelve", 'Target: "twelve" is not a number'),
        ("0", 'Target: "0" is below the minimum of 0.01.'),
        ("1.255", 'Target: "1.255" has more than 2 decimal places.'),
        ("1234567", 'Target: "1234567" has more than 6 digits before'),
    ],
)
def test_benchmark_target_error_names_value(personas, target, expected):
    data = {
        "activity_type": "call",
        "target": target,
        "unit": "day",
        "applies_to": "everyone",
        "ramp": "",
    }
    with tenant_context(personas.org):
        form = BenchmarkForm(data)

        assert not form.is_valid()

    [error] = form.errors["target"]
    assert error.startswith(expected)
