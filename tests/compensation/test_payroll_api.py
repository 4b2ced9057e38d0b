"""Payroll API: the payroll CSV's rows as JSON, for admins and API keys."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.test import Client

from compensation import services_statements as services
from compensation.models import Statement
from goals.calendar import month_range
from spm.services import api_key_create
from spm.tenancy import tenant_context
from tests.compensation.conftest import (
    assign,
    flat_component,
    make_plan,
    publish_version,
    won_deal,
)
from tests.conftest import login

D = dt.date
MARCH = month_range(D(2024, 3, 1))
URL = "/api/v1/payroll/?period=2024-03"
SESSION_URL = URL + "&organization=acme"


@pytest.fixture
def payroll(personas):
    """March: Rita 1,250.00 and Rex 900.00 approved, Rob 400.00 still draft."""
    org, won = personas.org, personas.stages["Won"]
    plan = make_plan(org.pk)
    publish_version(plan, [flat_component("0.10")])
    for rep in (personas.rep1, personas.rep2, personas.rep4):
        assign(rep, plan)
    personas.rep1.employee_id = "E-1001"
    personas.rep1.save()
    won_deal(personas.rep1, won, "12500.00", D(2024, 3, 10))
    won_deal(personas.rep2, won, "4000.00", D(2024, 3, 10))
    won_deal(personas.rep4, won, "9000.00", D(2024, 3, 10))
    with tenant_context(org):
        services.statements_calculate(
            organization=org, period=MARCH, actor=personas.admin.user
        )
        for rep in (personas.rep1, personas.rep4):
            services.statement_approve(
                statement=Statement.objects.get(member=rep),
                approver=personas.admin,
                actor=personas.admin.user,
            )
    return personas


EXPECTED = [
    {
        "rep": "Rex Rep",
        "employee_id": "",
        "email": "rex.rep@acme.test",
        "amount": "900.00",
        "currency": "USD",
    },
    {
        "rep": "Rita Rep",
        "employee_id": "E-1001",
        "email": "rita.rep@acme.test",
        "amount": "1250.00",
        "currency": "USD",
    },
]


def test_api_key_reads_approved_rows(payroll, django_assert_max_num_queries):
    _, key = api_key_create(organization=payroll.org, name="payroll")

    with django_assert_max_num_queries(6):
        response = Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code == 200
    assert response.json() == EXPECTED


def test_admin_session_reads_rows(payroll):
    response = login(Client(), payroll.admin).get(SESSION_URL)

    assert response.status_code == 200
    assert response.json() == EXPECTED


def test_same_rows_as_csv(payroll):
    client = login(Client(), payroll.admin)

    exported = client.get("/o/acme/commission/statements/payroll.csv?period=2024-03")
    api_rows = client.get(SESSION_URL).json()

    assert list(csv.DictReader(io.StringIO(exported.content.decode()))) == api_rows


@pytest.mark.parametrize("persona", ["rep1", "manager", "vp"])
def test_non_admin_session_gets_403(payroll, persona):
    response = login(Client(), getattr(payroll, persona)).get(SESSION_URL)

    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


def test_other_organisation_member_gets_404(payroll):
    response = login(Client(), payroll.outsider).get(SESSION_URL)

    assert response.status_code == 404


def test_other_organisation_key_sees_own_rows(payroll):
    _, key = api_key_create(organization=payroll.other_org, name="globex")

    response = Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code == 200
    assert response.json() == []


def test_anonymous_gets_401(payroll):
    assert Client().get(URL).status_code == 401


def test_invalid_period_gets_400(payroll):
    _, key = api_key_create(organization=payroll.org, name="payroll")

    response = Client().get(
        "/api/v1/payroll/?period=2024-13", HTTP_AUTHORIZATION=f"Bearer {key}"
    )

    assert response.status_code == 400
    assert "'2024-13'" in response.json()["period"][0]


def test_month_without_statements_is_empty(payroll):
    _, key = api_key_create(organization=payroll.org, name="payroll")

    response = Client().get(
        "/api/v1/payroll/?period=2024-04", HTTP_AUTHORIZATION=f"Bearer {key}"
    )

    assert response.json() == []
