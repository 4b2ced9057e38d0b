"""The sweeper routes leads whose routing task was lost, and never one twice."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from activity.models import Lead
from routing import services, tasks
from routing.models import Assignment
from spm.tenancy import tenant_context
from tests.routing.conftest import make_pool, make_rep, pending_lead, publish_pool

PENDING = Lead.RoutingStatus.PENDING


def _age(lead: Lead, seconds: int) -> None:
    Lead.unscoped.filter(pk=lead.pk).update(
        received_at=timezone.now() - dt.timedelta(seconds=seconds)
    )


@pytest.fixture
def pool_of_two(personas):
    with tenant_context(personas.org):
        a, b = make_rep(personas.org, "A"), make_rep(personas.org, "B")
        publish_pool(personas.org, make_pool(personas.org, "round_robin", [a, b]))
    return a, b


def test_sweeper_routes_lead_whose_task_was_lost(personas, pool_of_two):
    a, _ = pool_of_two
    with tenant_context(personas.org):
        lost = pending_lead(personas.org)
        fresh = pending_lead(personas.org)
    _age(lost, 31)

    routed = tasks.sweep_pending_leads_task()

    assert routed == 1
    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert lost.owner == a
    assert lost.routing_status == Lead.RoutingStatus.ASSIGNED
    assert fresh.routing_status == PENDING
    assignment = Assignment.unscoped.get(lead=lost)
    assert assignment.via == Assignment.Via.SWEEPER


def test_sweeper_covers_every_organisation(personas, pool_of_two):
    with tenant_context(personas.org):
        ours = pending_lead(personas.org)
    with tenant_context(personas.other_org):
        theirs = pending_lead(personas.other_org)
    _age(ours, 60)
    _age(theirs, 60)

    assert tasks.sweep_pending_leads_task() == 2

    assert Assignment.unscoped.get(lead=ours).organization_id == personas.org.pk
    theirs_decision = Assignment.unscoped.get(lead=theirs)
    assert theirs_decision.organization_id == personas.other_org.pk
    assert theirs_decision.reason == "no routing rules are published"


def test_sweeper_never_routes_twice(personas, pool_of_two):
    with tenant_context(personas.org):
        lead = pending_lead(personas.org)
        services.lead_route(lead_id=lead.pk)
    _age(lead, 600)

    assert tasks.sweep_pending_leads_task() == 0
    with tenant_context(personas.org):
        assert services.lead_route(lead_id=lead.pk) is None
    assert Assignment.unscoped.filter(lead=lead).count() == 1


def test_sweeper_stops_at_its_limit(personas, pool_of_two):
    with tenant_context(personas.org):
        leads = [pending_lead(personas.org) for _ in range(3)]
    for lead in leads:
        _age(lead, 100)

    assert services.leads_sweep(older_than=dt.timedelta(seconds=30), limit=2) == 2
    assert Lead.unscoped.filter(routing_status=PENDING).count() == 1


@pytest.mark.django_db(transaction=True)
def test_sweeper_skips_lead_being_routed(personas, pool_of_two):
    """A lead locked by a routing task is skipped, not waited for or doubled."""
    if connection.vendor != "postgresql":
        pytest.skip("Row locks need PostgreSQL")
    with tenant_context(personas.org):
        busy = pending_lead(personas.org)
        free = pending_lead(personas.org)
    _age(busy, 100)
    _age(free, 90)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        try:
            with tenant_context(personas.org), transaction.atomic():
                Lead.objects.select_for_update().get(pk=busy.pk)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        assert tasks.sweep_pending_leads_task() == 1
    finally:
        release.set()
        holder.join()

    assert Lead.unscoped.get(pk=busy.pk).routing_status == PENDING
    assert Lead.unscoped.get(pk=free.pk).routing_status == Lead.RoutingStatus.ASSIGNED
    assert tasks.sweep_pending_leads_task() == 1
    assert Assignment.unscoped.filter(lead__in=[busy, free]).count() == 2


def test_beat_runs_the_sweeper(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["routing-sweep-pending-leads"]

    assert entry["task"] == "routing.tasks.sweep_pending_leads_task"
    assert entry["schedule"] < tasks.SWEEP_AFTER.total_seconds()
    assert settings.CELERY_TASK_ROUTES["routing.tasks.*"] == {"queue": "routing"}
