"""A calculation run in batches: each batch counted once, the last one finishes the run.

Members are ordered by name: Remy Rep, Rita Rep, Rob Rep. With one member per
batch, batch 0 is Remy's, 1 is Rita's and 2 is Rob's.
"""

from __future__ import annotations

import datetime as dt
import gc
from decimal import Decimal

import pytest

from compensation import services_statements as services
from compensation.models import (
    CalculationRun,
    Statement,
    StatementLine,
    StatementLineBlock,
)
from goals.calendar import month_range
from spm.models import AuditLog
from tests.compensation.conftest import (
    ATTAINMENT_TIERS,
    assign,
    make_plan,
    publish_version,
)

MARCH = month_range(dt.date(2024, 3, 1))
Status = CalculationRun.Status


@pytest.fixture
def one_per_batch(monkeypatch):
    monkeypatch.setattr(services, "batch_size", lambda member_count: 1)


@pytest.fixture
def remy_fails(march):
    """Remy gets a plan paid on attainment without a quota, so his statement fails."""
    plan = make_plan(march.org.pk, "Quota plan")
    publish_version(plan, [ATTAINMENT_TIERS])
    assign(march.rep3, plan)
    return march


def _start(personas) -> tuple[CalculationRun, list[list[int]]]:
    run = CalculationRun.objects.create(
        organization=personas.org,
        period_start=MARCH.start,
        period_end=MARCH.end,
        created_by=personas.admin.user,
    )
    batches = services.calculation_run_start(
        organization=personas.org, period=MARCH, run=run
    )
    return run, batches


def _batch(personas, run, batches, number) -> CalculationRun:
    services.calculation_batch_run(
        organization=personas.org,
        period=MARCH,
        run=run,
        number=number,
        member_ids=batches[number],
        actor=personas.admin.user,
    )
    run.refresh_from_db()
    return run


def _total(member) -> Decimal:
    return Statement.objects.get(member=member, period_start=MARCH.start).total


def _finished_entries() -> int:
    return AuditLog.objects.filter(action="compensation.statements_calculated").count()


def test_batches_in_any_order_finish_run(remy_fails, one_per_batch):
    personas = remy_fails
    run, batches = _start(personas)

    assert batches == [[personas.rep3.pk], [personas.rep1.pk], [personas.rep2.pk]]
    assert run.batch_count == 3

    run = _batch(personas, run, batches, 2)
    assert run.status == Status.RUNNING
    assert run.progress == 33
    assert run.calculated_count == 1

    run = _batch(personas, run, batches, 0)
    assert run.status == Status.RUNNING
    assert run.progress == 66
    assert run.error_count == 1
    assert run.errors[0]["member"] == "Remy Rep"
    assert _finished_entries() == 0

    run = _batch(personas, run, batches, 1)
    assert run.status == Status.DONE
    assert run.progress == 100
    assert run.calculated_count == 2
    assert run.error_count == 1
    assert sorted(run.batches_done) == [0, 1, 2]
    assert _finished_entries() == 1
    # 10% of 10,000.00 + 2,500.00, and 10% of 4,000.00.
    assert _total(personas.rep1) == Decimal("1250.00")
    assert _total(personas.rep2) == Decimal("400.00")


def test_batch_delivered_twice_counts_once(march, one_per_batch):
    run, batches = _start(march)

    _batch(march, run, batches, 0)
    run = _batch(march, run, batches, 0)

    assert run.status == Status.RUNNING
    assert run.calculated_count == 1
    assert run.batches_done == [0]
    # One block of two lines, written once.
    [block] = StatementLineBlock.objects.filter(statement__member=march.rep1)
    assert block.line_count == 2
    assert not StatementLine.objects.filter(statement__member=march.rep1).exists()


def test_batch_after_run_finished_changes_nothing(march, one_per_batch):
    run, batches = _start(march)
    _batch(march, run, batches, 0)
    _batch(march, run, batches, 1)

    run = _batch(march, run, batches, 0)

    assert run.status == Status.DONE
    assert run.calculated_count == 2
    assert _finished_entries() == 1
    assert _total(march.rep1) == Decimal("1250.00")


def test_run_without_members_done_at_start(personas, in_org):
    run, batches = _start(personas)

    assert batches == []
    assert run.status == Status.DONE
    assert run.batch_count == 0
    assert run.progress == 100
    assert _finished_entries() == 1


def test_run_started_again_counts_from_zero(march, one_per_batch):
    run, batches = _start(march)
    _batch(march, run, batches, 0)

    services.calculation_run_start(organization=march.org, period=MARCH, run=run)
    run.refresh_from_db()
    assert run.calculated_count == 0
    assert run.batches_done == []

    _batch(march, run, batches, 0)
    run = _batch(march, run, batches, 1)
    assert run.status == Status.DONE
    assert run.calculated_count == 2


def test_batch_store_pauses_collector(march, monkeypatch):
    store = services.store_statements
    seen = []

    def store_watched(*args, **kwargs):
        seen.append(gc.isenabled())
        return store(*args, **kwargs)

    monkeypatch.setattr(services, "store_statements", store_watched)
    run, batches = _start(march)

    run = _batch(march, run, batches, 0)

    assert seen == [False]
    assert gc.isenabled()
    assert run.status == Status.DONE
    assert _total(march.rep1) == Decimal("1250.00")


def test_failed_batch_restores_collector(march, monkeypatch):
    def store_fails(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "store_statements", store_fails)
    run, batches = _start(march)

    with pytest.raises(RuntimeError, match="disk full"):
        _batch(march, run, batches, 0)

    assert gc.isenabled()
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert run.failure == "RuntimeError: disk full"
