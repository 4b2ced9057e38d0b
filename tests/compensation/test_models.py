"""Compensation tables: tenant isolation, constraints and validation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from compensation.models import (
    CompPlan,
    Draw,
    FxRate,
    Payment,
    PlanAssignment,
    PlanComponent,
    PlanVersion,
)
from spm.rls.policies import tenant_tables
from spm.tenancy import tenant_context
from tests.compensation.conftest import (
    assign,
    flat_component,
    make_draw,
    make_plan,
    make_rate,
    publish_version,
    won_deal,
)
from tests.security.conftest import switch_to_rls_role

D = dt.date
MODELS = [CompPlan, PlanVersion, PlanComponent, PlanAssignment, FxRate, Draw, Payment]


@pytest.fixture
def both_orgs(personas):
    """A plan, version, assignment, rate, draw and payment in each organisation."""
    for org, rep, stages in (
        (personas.org, personas.rep1, personas.stages),
        (personas.other_org, personas.other_rep, personas.other_stages),
    ):
        plan = make_plan(org.pk, f"{org.name} plan")
        publish_version(plan, [flat_component("0.10")])
        assign(rep, plan)
        make_rate(org.pk, "EUR", "USD", D(2024, 3, 1), "1.08")
        make_draw(rep, "1000.00", D(2024, 1, 1))
        deal = won_deal(rep, stages["Won"], "100.00", D(2024, 3, 1))
        Payment.unscoped.create(
            organization_id=org.pk,
            deal=deal,
            received_on=D(2024, 3, 2),
            amount=Decimal("100.00"),
            currency="USD",
        )
    return personas


def test_other_organisations_plan_hidden(both_orgs):
    other_plan = CompPlan.unscoped.get(organization=both_orgs.other_org)

    with tenant_context(both_orgs.org):
        assert not CompPlan.objects.filter(pk=other_plan.pk).exists()
        for model in MODELS:
            organizations = set(model.objects.values_list("organization_id", flat=True))
            assert organizations == {both_orgs.org.pk}, model.__name__


def test_tables_have_row_level_security(both_orgs):
    tables = {table.table for table in tenant_tables()}

    assert {model._meta.db_table for model in MODELS} <= tables


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="Row-level security is PostgreSQL's."
)
def test_raw_sql_sees_own_rows_only(both_orgs):
    switch_to_rls_role()

    with tenant_context(both_orgs.org), connection.cursor() as cursor:
        for model in MODELS:
            cursor.execute(
                f'SELECT DISTINCT organization_id FROM "{model._meta.db_table}"'
            )
            assert [row[0] for row in cursor.fetchall()] == [both_orgs.org.pk]


def test_invalid_component_params_rejected(personas):
    plan = make_plan(personas.org.pk)
    version = PlanVersion.unscoped.create(
        organization_id=personas.org.pk,
        plan=plan,
        number=1,
        effective_from=D(2024, 1, 1),
    )
    component = PlanComponent(
        organization_id=personas.org.pk,
        version=version,
        name="Tiers",
        kind="tiered",
        params={
            "basis": "amount",
            "mode": "marginal",
            "tiers": [
                {"from": "0", "to": "499.99", "rate": "0.25"},
                {"from": "500", "rate": "0.3"},
            ],
        },
    )

    with pytest.raises(ValidationError) as raised:
        component.clean()

    assert raised.value.message_dict == {
        "params": [
            "tiers[0].to: 499.99 must equal the next tier's from, 500, because "
            "tiers are half-open and leave no gap."
        ]
    }


def test_published_components_read_only(personas):
    version = publish_version(make_plan(personas.org.pk), [flat_component("0.10")])
    component = PlanComponent.unscoped.get(version=version)
    component.params = {"rate": "0.20"}

    with pytest.raises(ValidationError, match="is published"):
        component.save()

    component.refresh_from_db()
    assert component.params == {"rate": "0.10"}


def test_published_version_read_only(personas):
    version = publish_version(make_plan(personas.org.pk), [flat_component("0.10")])
    version.cap_per_period = Decimal("10.00")

    with pytest.raises(ValidationError, match="AE plan v1 is published"):
        version.save()

    version.refresh_from_db()
    assert version.cap_per_period is None


def test_year_payout_tiers_validated(personas):
    version = PlanVersion(
        organization_id=personas.org.pk,
        plan=make_plan(personas.org.pk),
        number=1,
        effective_from=D(2024, 1, 1),
        year_payout_tiers=[{"from": "100", "rate": "1"}],
    )

    with pytest.raises(ValidationError) as raised:
        version.clean()

    assert "year_payout_tiers" in raised.value.message_dict


def test_overlapping_assignment_rejected(in_org, personas):
    plan = make_plan(in_org.pk)
    assign(personas.rep1, plan, D(2024, 1, 1), D(2024, 6, 30))
    overlapping = PlanAssignment(
        organization=in_org, member=personas.rep1, plan=plan, start_date=D(2024, 6, 1)
    )
    later = PlanAssignment(
        organization=in_org, member=personas.rep1, plan=plan, start_date=D(2024, 7, 1)
    )

    with pytest.raises(ValidationError, match="already on AE plan"):
        overlapping.clean()
    later.clean()


def test_overlapping_draw_rejected(in_org, personas):
    make_draw(personas.rep1, "1000.00", D(2024, 1, 1))
    second = Draw(
        organization=in_org,
        member=personas.rep1,
        amount=Decimal("500.00"),
        currency="USD",
        start_date=D(2024, 5, 1),
    )

    with pytest.raises(ValidationError, match="already has a draw"):
        second.clean()


def test_one_rate_per_pair_and_day(personas):
    make_rate(personas.org.pk, "EUR", "USD", D(2024, 3, 28), "1.08")
    make_rate(personas.other_org.pk, "EUR", "USD", D(2024, 3, 28), "1.09")

    with pytest.raises(IntegrityError), transaction.atomic():
        make_rate(personas.org.pk, "EUR", "USD", D(2024, 3, 28), "1.10")


def test_currency_must_be_iso_4217(in_org):
    plan = CompPlan(organization=in_org, name="Odd", currency="XYZ")

    with pytest.raises(ValidationError) as raised:
        plan.full_clean()

    assert raised.value.message_dict["currency"] == [
        "'XYZ' is not an ISO 4217 currency code; use one such as USD."
    ]


def test_payment_currency_must_match_deal(in_org, personas):
    deal = won_deal(
        personas.rep1, personas.stages["Won"], "100.00", D(2024, 3, 1), "EUR"
    )
    payment = Payment(
        organization=in_org,
        deal=deal,
        received_on=D(2024, 3, 2),
        amount=Decimal("100.00"),
        currency="USD",
    )

    with pytest.raises(ValidationError, match="The deal is in EUR"):
        payment.clean()
