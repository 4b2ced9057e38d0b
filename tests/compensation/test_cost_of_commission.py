"""Cost of commission: statement totals over credited bookings, per team."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from compensation import services_statements as services
from goals.calendar import month_range
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
URL = "/o/acme/commission/cost/?period=2024-03"


@pytest.fixture
def costs(personas):
    """East: Rita 12,500 and Rob 4,000 at 10%. West: Rex 9,000 at 5%.

    A lost deal and an April deal count for neither bookings nor commission.
    """
    org, won, lost = personas.org, personas.stages["Won"], personas.stages["Lost"]
    ten = make_plan(org.pk, name="Ten")
    publish_version(ten, [flat_component("0.10")])
    five = make_plan(org.pk, name="Five")
    publish_version(five, [flat_component("0.05")])
    assign(personas.rep1, ten)
    assign(personas.rep2, ten)
    assign(personas.rep4, five)
    won_deal(personas.rep1, won, "10000.00", D(2024, 3, 10))
    won_deal(personas.rep1, won, "2500.00", D(2024, 3, 12))
    won_deal(personas.rep2, won, "4000.00", D(2024, 3, 14))
    won_deal(personas.rep4, won, "9000.00", D(2024, 3, 20))
    won_deal(personas.rep2, lost, "7777.00", D(2024, 3, 15))
    won_deal(personas.rep1, won, "8888.00", D(2024, 4, 2))
    with tenant_context(org):
        services.statements_calculate(
            organization=org, period=MARCH, actor=personas.admin.user
        )
    return personas


def test_admin_sees_every_team(costs, django_assert_max_num_queries):
    client = login(Client(), costs.admin)

    with django_assert_max_num_queries(14):
        response = client.get(URL)

    rows = {row.team: row for row in response.context["rows"]}
    # East: 1,250.00 + 400.00 = 1,650.00 over 16,500.00 = 10.00%.
    assert rows["East"].commission == Decimal("1650.00")
    assert rows["East"].bookings == Decimal("16500.00")
    assert rows["East"].share_percent == "10.00%"
    assert rows["East"].reps == 2
    # West: 450.00 over 9,000.00 = 5.00%.
    assert rows["West"].commission == Decimal("450.00")
    assert rows["West"].share_percent == "5.00%"
    # All: 2,100.00 over 25,500.00 = 8.2353%, shown as 8.24%.
    total = response.context["total"]
    assert total.commission == Decimal("2100.00")
    assert total.bookings == Decimal("25500.00")
    assert total.share_percent == "8.24%"
    assert total.draft_statements == 3
    assert "8.24%" in response.content.decode()


def test_manager_sees_own_tree(costs):
    client = login(Client(), costs.manager)

    response = client.get(URL)

    assert [row.team for row in response.context["rows"]] == ["East"]
    assert response.context["total"].commission == Decimal("1650.00")


def test_no_bookings_gives_no_share(costs):
    client = login(Client(), costs.admin)

    response = client.get("/o/acme/commission/cost/?period=2024-05")

    assert response.context["rows"] == []
    assert response.context["total"].share is None
    assert "no bookings" in response.content.decode()


def test_rep_gets_404(costs):
    assert login(Client(), costs.rep1).get(URL).status_code == 404


def test_url_name_resolves():
    assert reverse("compensation:cost", kwargs={"org_slug": "acme"}) == (
        "/o/acme/commission/cost/"
    )
