"""A queued calculation run whose batches two worker processes take at once."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import transaction

from compensation import services_statements as services
from compensation.models import CalculationRun, Statement
from goals.calendar import month_range
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.compensation.conftest import (
    assign,
    flat_component,
    make_plan,
    publish_version,
    won_deal,
)
from tests.factories import MembershipFactory
from tests.worker import wait_for

pytestmark = pytest.mark.worker

MARCH = month_range(dt.date(2024, 3, 1))
# Three batches of at most 50 members (services_statements.BATCH_MIN).
REPS = 120


@pytest.fixture
def worker_processes() -> int:
    return 2


def test_batches_on_two_processes_finish_run(celery_worker, personas):
    org = personas.org
    won = personas.stages["Won"]
    expected = {}
    with tenant_context(org):
        plan = make_plan(org.pk)
        publish_version(plan, [flat_component("0.10")])
        for number in range(REPS):
            rep = MembershipFactory(
                organization=org, role="rep", display_name=f"Batch rep {number:03d}"
            )
            assign(rep, plan)
            amount = Decimal(1000 + number * 37) + Decimal("0.05")
            won_deal(rep, won, str(amount), dt.date(2024, 3, 1 + number % 31))
            # 10% of the one deal, to the cent, half away from zero.
            expected[rep.pk] = (amount / 10).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
        with transaction.atomic():
            run = services.calculation_run_queue(
                organization=org, period=MARCH, actor=personas.admin.user
            )

    def finished() -> bool:
        with tenant_context(org):
            run.refresh_from_db()
        return not run.is_active

    wait_for(finished, timeout=120)
    with tenant_context(org):
        totals = dict(
            Statement.objects.filter(period_start=MARCH.start).values_list(
                "member_id", "total"
            )
        )
        entries = AuditLog.objects.filter(
            action="compensation.statements_calculated"
        ).count()

    assert run.status == CalculationRun.Status.DONE, run.failure
    assert run.batch_count == 3
    assert sorted(run.batches_done) == [0, 1, 2]
    assert run.member_count == REPS
    assert run.calculated_count == REPS
    assert run.progress == 100
    assert totals == expected
    assert entries == 1
