"""A Celery worker keeps its database connection between tasks under CONN_MAX_AGE.

Each test runs the worker's steps around a task in the order Celery runs
them: the Django fix-up's pre-run step and the ``task_prerun`` signal, the
task's query, then the ``task_postrun`` signal and the fix-up's post-run step.
"""

from __future__ import annotations

from types import SimpleNamespace

import psycopg
import pytest
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import task_postrun, task_prerun
from django.db import InterfaceError, OperationalError, connection, transaction

from spm.celery import app as celery_app
from spm.models import Organization
from tests.worker import _database_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def conn_max_age():
    """Set the connection's CONN_MAX_AGE for a new connection, restore it after."""
    if connection.vendor != "postgresql":
        pytest.skip("The server process id needs PostgreSQL")
    before = connection.settings_dict["CONN_MAX_AGE"]

    def apply(seconds: int) -> None:
        connection.close()
        connection.settings_dict["CONN_MAX_AGE"] = seconds

    yield apply
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = before


class _Task:
    request = SimpleNamespace(is_eager=False)


def _task_run(fixup: DjangoWorkerFixup) -> int:
    """Run one task's steps and return the server process id its query used.

    As in Celery, the post-run steps run also when the task raises.
    """
    task = _Task()
    signal_arguments = {"task_id": "t", "task": task, "args": (), "kwargs": {}}
    fixup.on_task_prerun(sender=task)
    task_prerun.send(sender=task, **signal_arguments)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]
    finally:
        task_postrun.send(sender=task, retval=None, state="", **signal_arguments)
        fixup.on_task_postrun(sender=task)


def test_connection_kept_between_tasks(conn_max_age):
    conn_max_age(600)
    fixup = DjangoWorkerFixup(celery_app)

    first = _task_run(fixup)
    second = _task_run(fixup)

    assert first == second
    assert connection.connection is not None


def test_connection_closed_at_zero_max_age(conn_max_age):
    conn_max_age(0)
    fixup = DjangoWorkerFixup(celery_app)

    first = _task_run(fixup)
    assert connection.connection is None
    second = _task_run(fixup)

    assert first != second


def test_connection_lost_replaced_after_task(conn_max_age):
    conn_max_age(600)
    fixup = DjangoWorkerFixup(celery_app)
    first = _task_run(fixup)

    # The server ends the process behind the kept connection, as a restart
    # would. As in a web process, the next query fails, and the steps after
    # that task close the connection.
    with psycopg.connect(_database_url(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [first])
    with pytest.raises((OperationalError, InterfaceError)):
        _task_run(fixup)

    assert connection.connection is None
    assert _task_run(fixup) != first


def test_connection_of_eager_task_left_open(conn_max_age):
    conn_max_age(0)

    class EagerTask:
        request = SimpleNamespace(is_eager=True)

    task = EagerTask()
    signal_arguments = {"task_id": "t", "task": task, "args": (), "kwargs": {}}
    with transaction.atomic():
        Organization.objects.create(name="Eager", slug="eager")
        task_prerun.send(sender=task, **signal_arguments)
        task_postrun.send(sender=task, retval=None, state="", **signal_arguments)
        assert connection.in_atomic_block
        assert Organization.objects.filter(slug="eager").exists()
