"""Builders for routing tests: reps, pools, rule sets and pending leads."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from activity.models import Lead
from routing import configuration, services
from routing.configuration import RuleSpec
from routing.models import Assignment, Pool
from spm.celery import app as celery_app
from spm.models import Membership
from tests.factories import MembershipFactory
from tests.worker import ROOT, _database_url, _wait_until_ready, route_tasks

PENDING = Lead.RoutingStatus.PENDING


def make_rep(org, name: str, **extra) -> Membership:
    return MembershipFactory(
        organization=org, user=None, display_name=name, role="rep", **extra
    )


def make_pool(org, method: str, reps, **pool_member_values) -> Pool:
    """Create a pool of ``reps`` in that order; values apply to every rep.

    A value may be a dict by rep name, such as ``cap_per_day={"A": 20}``.
    """
    pool = configuration.pool_create(
        organization=org, actor=None, name=f"Pool {uuid.uuid4().hex[:6]}", method=method
    )
    for rep in reps:
        values = {
            key: value.get(rep.display_name) if isinstance(value, dict) else value
            for key, value in pool_member_values.items()
        }
        values = {key: value for key, value in values.items() if value is not None}
        configuration.pool_member_add(pool=pool, member=rep, actor=None, **values)
    return pool


def publish(org, *specs: RuleSpec):
    return configuration.rule_set_publish(
        organization=org, actor=None, rules=list(specs)
    )


def publish_pool(org, pool: Pool):
    """Publish one rule that sends every lead to ``pool``."""
    return publish(org, RuleSpec(name="Everyone", action="pool", pool=pool))


def pending_lead(org, **fields) -> Lead:
    """Create a lead as intake leaves it: received and waiting for routing."""
    now = timezone.now()
    values = {"email": f"{uuid.uuid4().hex[:8]}@example.test", **fields}
    if "estimated_value" in values and values["estimated_value"] is not None:
        values["estimated_value"] = Decimal(values["estimated_value"])
    return Lead.objects.create(
        organization=org,
        received_at=now,
        created_at=now,
        routing_status=PENDING,
        **values,
    )


def route_new_lead(org, **fields) -> Assignment:
    lead = pending_lead(org, **fields)
    assignment = services.lead_route(lead_id=lead.pk)
    assert assignment is not None
    return assignment


def owners(assignments) -> list[str]:
    return [a.member.display_name if a.member else "queue" for a in assignments]


@pytest.fixture
def acme(personas, in_org):
    return personas.org


def start_workers(queue: str, log_dir, count: int) -> list[subprocess.Popen]:
    """Start ``count`` Celery worker processes (one node each) on ``queue``."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "spm.settings",
        "ATTAIN_TESTING": "1",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CONN_MAX_AGE": "60",
    }
    processes = []
    for number in range(count):
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "spm",
            "worker",
            "--pool=solo",
            "--loglevel=info",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            queue,
            "-n",
            f"{queue}-{number}@%h",
        ]
        log_path = log_dir / f"worker-{number}.log"
        with open(log_path, "w") as log:
            processes.append(
                subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
            )
    return processes


def stop_workers(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def routing_workers(transactional_db, tmp_path):
    """Start 4 Celery worker processes and send routing tasks to them.

    Each is its own node with the solo pool, so four processes take routing
    tasks at the same time, as four machines would.
    """
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL:
        pytest.skip("Real workers need DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL")
    queue = f"test-routing-{uuid.uuid4().hex[:12]}"
    processes = start_workers(queue, tmp_path, 4)
    try:
        for number, process in enumerate(processes):
            _wait_until_ready(process, tmp_path / f"worker-{number}.log")
        celery_app.conf.task_always_eager = False
        route_tasks({"routing.tasks.*": {"queue": queue}})
        yield processes
    finally:
        celery_app.conf.task_always_eager = True
        route_tasks(settings.CELERY_TASK_ROUTES)
        stop_workers(processes)


def local_day(org) -> dt.date:
    return timezone.localdate(timezone.now(), org.zoneinfo)
