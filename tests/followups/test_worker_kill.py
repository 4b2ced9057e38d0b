"""A worker killed with SIGKILL while sending a follow-up email, then a new worker."""

from __future__ import annotations

import datetime as dt
import os
import signal

import pytest

from followups import dispatch, services, tasks
from followups.models import Enrollment, StepRun
from spm.tenancy import tenant_context
from tests.followups.conftest import make_deal, make_sequence
from tests.followups.smtp import start_server
from tests.routing.conftest import start_workers, stop_workers
from tests.worker import _wait_until_ready, wait_for

pytestmark = pytest.mark.worker


@pytest.fixture
def worker_smtp(monkeypatch):
    """A local SMTP server that the worker processes send to (EMAIL_URL)."""
    controller, inbox = start_server()
    monkeypatch.setenv("EMAIL_URL", f"smtp://127.0.0.1:{controller.port}")
    try:
        yield inbox
    finally:
        inbox.release.set()
        controller.stop()


def _runs(org) -> list[tuple[int, str, str]]:
    with tenant_context(org):
        return list(
            StepRun.objects.order_by("step__order").values_list(
                "step__order", "status", "message_id"
            )
        )


def test_killed_worker_sends_no_email_twice(
    worker_smtp, celery_worker, personas, tmp_path
):
    org = personas.org
    with tenant_context(org):
        sequence = make_sequence(
            org, [(0, "business_days", "email"), (0, "business_days", "email")]
        )
        enrollment = services.enroll(
            sequence=sequence,
            target=make_deal(personas),
            now=dt.datetime(2024, 3, 4, 15, 0, tzinfo=dt.UTC),
        )
    now = dt.datetime(2024, 3, 4, 15, 0, tzinfo=dt.UTC)

    # The server holds the first message at RCPT; the worker is killed there.
    worker_smtp.release.clear()
    [(org_id, run_id)] = dispatch.dispatch_due(now=now)
    tasks.perform_step_task.delay(org_id, run_id)
    assert worker_smtp.rcpt_reached.wait(timeout=60)
    os.kill(celery_worker.pid, signal.SIGKILL)
    celery_worker.wait(timeout=10)
    worker_smtp.release.set()
    assert _runs(org) == [(1, "started", "")]

    queue = celery_worker.args[celery_worker.args.index("-Q") + 1]
    replacement = start_workers(queue, tmp_path, 1)
    try:
        _wait_until_ready(replacement[0], tmp_path / "worker-0.log")
        # The killed worker's message waits in Redis for the visibility
        # timeout; the sweeper re-sends the run's task now, as beat would.
        for pair in dispatch.sweep_started(older_than=dt.timedelta(0)):
            tasks.perform_step_task.delay(*pair)
        wait_for(lambda: _runs(org)[0][1] == "done")
        with tenant_context(org):
            due_at = Enrollment.objects.get(pk=enrollment.pk).next_due_at
        for pair in dispatch.dispatch_due(now=max(due_at, now)):
            tasks.perform_step_task.delay(*pair)
        wait_for(lambda: len(_runs(org)) == 2 and _runs(org)[1][1] == "done")
    finally:
        stop_workers(replacement)

    runs = _runs(org)
    assert [(order, status) for order, status, _ in runs] == [(1, "done"), (2, "done")]
    assert len(worker_smtp.messages) == 2
    assert [m["Message-ID"] for m in worker_smtp.messages] == [m for _, _, m in runs]
    with tenant_context(org):
        assert Enrollment.objects.get(pk=enrollment.pk).status == "finished"
