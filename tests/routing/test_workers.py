"""Leads posted at once, routed by 4 real Celery worker processes through Redis."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from activity.models import Lead
from routing import services, tasks
from routing.models import Assignment, RotationState
from spm.services import api_key_create
from spm.tenancy import tenant_context
from tests.routing.conftest import (
    make_pool,
    make_rep,
    pending_lead,
    publish_pool,
    route_new_lead,
)
from tests.worker import wait_for

pytestmark = pytest.mark.worker

URL = "/api/v1/leads/"
LEADS = 800
POSTING_THREADS = 8
CRASH_LEADS = 400


def _post_lead(key: str, number: int) -> int:
    try:
        response = Client().post(
            URL,
            {"email": f"lead{number}@example.test", "source": "load"},
            content_type="application/json",
            headers={"authorization": f"Bearer {key}"},
        )
        return response.status_code
    finally:
        connections.close_all()


def _post_all(key: str, count: int) -> list[int]:
    with ThreadPoolExecutor(POSTING_THREADS) as pool:
        return list(pool.map(lambda n: _post_lead(key, n), range(count)))


def _routed(org, count: int) -> list[Assignment]:
    def done():
        with tenant_context(org):
            finished = Lead.objects.exclude(routing_status="pending").count()
            return finished == count

    # About 50 ms of CPU per lead, web and worker together, on a shared
    # two-core machine: 800 leads take 20 to 70 s.
    wait_for(done, timeout=300)
    with tenant_context(org):
        return list(
            Assignment.objects.select_related("member").order_by("routed_at", "id")
        )


@pytest.fixture
def no_key_rate_limit(settings):
    """Lift the API key's rate limit: one key sends every lead of these tests."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "api_key": None,
        },
    }


def test_concurrent_leads_share_one_fair_rotation(
    routing_workers, personas, no_key_rate_limit
):
    org = personas.org
    with tenant_context(org):
        reps = [make_rep(org, name) for name in ("A", "B", "C", "D")]
        pool = make_pool(org, "round_robin", reps)
        publish_pool(org, pool)
    _, key = api_key_create(organization=org, name="load")

    statuses = _post_all(key, LEADS)
    assignments = _routed(org, LEADS)

    assert statuses == [201] * LEADS
    # Every lead has exactly one decision, and each went to a rep.
    assert len(assignments) == LEADS
    assert len({a.lead_id for a in assignments}) == LEADS
    assert all(a.outcome == "assigned" for a in assignments)
    # 800 leads over 4 reps in strict rotation: 200 each.
    counts = Counter(a.member.display_name for a in assignments)
    assert counts == {"A": 200, "B": 200, "C": 200, "D": 200}
    # The routing times follow the rotation, which cycles A, B, C, D.
    sequence = [a.member.display_name for a in assignments]
    assert sequence == ["A", "B", "C", "D"] * (LEADS // 4)
    with tenant_context(org):
        state = RotationState.objects.get(pool=pool)
    assert state.turns == LEADS


def test_concurrent_pair_after_c_gets_d_and_a(routing_workers, personas):
    org = personas.org
    with tenant_context(org):
        reps = [make_rep(org, name) for name in ("A", "B", "C", "D")]
        pool = make_pool(org, "round_robin", reps)
        publish_pool(org, pool)
        # A, B and C had the last three leads, so C had the last one.
        assert [route_new_lead(org).member.display_name for _ in range(3)] == list(
            "ABC"
        )
    _, key = api_key_create(organization=org, name="pair")

    assert _post_all(key, 2) == [201, 201]
    assignments = _routed(org, 5)[3:]

    assert {a.member.display_name for a in assignments} == {"D", "A"}
    with tenant_context(org):
        state = RotationState.objects.select_related("last_member__member").get(
            pool=pool
        )
    assert state.last_member.member.display_name == "A"


def test_sweep_task_runs_on_a_worker(routing_workers, personas):
    import datetime as dt

    from django.utils import timezone

    org = personas.org
    with tenant_context(org):
        rep = make_rep(org, "Solo")
        publish_pool(org, make_pool(org, "round_robin", [rep]))
        # A lead whose routing task never ran.
        lost = Lead.objects.create(
            organization=org,
            routing_status="pending",
            received_at=timezone.now() - dt.timedelta(minutes=5),
        )

    tasks.sweep_pending_leads_task.delay()

    assignments = _routed(org, 1)
    assert assignments[0].lead_id == lost.pk
    assert assignments[0].member == rep
    assert assignments[0].via == "sweeper"


def _routed_count(org) -> int:
    with tenant_context(org):
        return Lead.objects.exclude(routing_status="pending").count()


def _pending(org) -> int:
    with tenant_context(org):
        return Lead.objects.filter(routing_status="pending").count()


def _wait_until_idle(org, quiet_seconds: float = 3.0, timeout: float = 120) -> None:
    """Wait until the pending count stops changing for ``quiet_seconds``."""
    deadline = time.monotonic() + timeout
    last, since = _pending(org), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now_pending = _pending(org)
        if now_pending != last:
            last, since = now_pending, time.monotonic()
        elif time.monotonic() - since >= quiet_seconds:
            return
    raise AssertionError(f"Routing did not settle: {last} leads still pending")


def test_killed_worker_loses_no_lead(routing_workers, personas, no_key_rate_limit):
    org = personas.org
    with tenant_context(org):
        reps = [make_rep(org, name) for name in ("A", "B", "C", "D")]
        publish_pool(org, make_pool(org, "round_robin", reps))
    _, key = api_key_create(organization=org, name="crash")

    with ThreadPoolExecutor(1) as poster:
        posted = poster.submit(_post_all, key, CRASH_LEADS)
        wait_for(lambda: _routed_count(org) >= 50 or posted.done(), 60)
        victim = routing_workers[0]
        os.kill(victim.pid, signal.SIGKILL)
        statuses = posted.result()
    victim.wait(timeout=10)
    _wait_until_idle(org)
    # The leads of the killed worker's unacknowledged tasks are still pending:
    # the sweeper routes them, as its beat run would.
    swept = services.leads_sweep(older_than=dt.timedelta(0), limit=CRASH_LEADS)
    assignments = _routed(org, CRASH_LEADS)

    assert statuses == [201] * CRASH_LEADS
    assert victim.returncode == -signal.SIGKILL
    # The victim may have been idle when it was killed, with nothing for the
    # sweeper to take over, so ``swept`` may be 0; whatever it held is swept.
    assert swept == sum(a.via == "sweeper" for a in assignments)
    assert len(assignments) == CRASH_LEADS
    assert len({a.lead_id for a in assignments}) == CRASH_LEADS
    counts = Counter(a.member.display_name for a in assignments)
    assert max(counts.values()) - min(counts.values()) <= 1


def _worker_backends_started() -> list[dt.datetime]:
    """Return when each other connection to the test database was opened."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT backend_start FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
        return [row[0] for row in cursor.fetchall()]


def test_kept_connections_route_each_organisation(routing_workers, personas):
    """Workers keep their connections (CONN_MAX_AGE) across two organisations' leads.

    Each lead still reaches a rep of its own organisation, because the tenant
    setting is sent again when it differs from the last one the connection had.
    """
    pools = {}
    for org in (personas.org, personas.other_org):
        with tenant_context(org):
            reps = [make_rep(org, f"{org.slug}-{n}") for n in range(2)]
            publish_pool(org, make_pool(org, "round_robin", reps))
            pools[org.pk] = {rep.pk for rep in reps}

    def send(rounds: int) -> None:
        for _ in range(rounds):
            for org in (personas.org, personas.other_org):
                with tenant_context(org):
                    lead = pending_lead(org)
                tasks.route_lead_task.delay(org.pk, lead.pk)

    send(6)
    _routed(personas.org, 6)
    _routed(personas.other_org, 6)
    second_half_sent = timezone.now()
    send(6)
    acme = _routed(personas.org, 12)
    globex = _routed(personas.other_org, 12)
    backends = _worker_backends_started()

    assert {a.member_id for a in acme} <= pools[personas.org.pk]
    assert {a.member_id for a in globex} <= pools[personas.other_org.pk]
    assert backends
    assert max(backends) < second_half_sent
