"""A real Celery worker process for the tests marked ``worker``.

The worker reads the test database, so those tests use ``transactional_db``
and need PostgreSQL (an in-memory SQLite database cannot be shared) and a
Redis broker. Each run listens on its own queue, so a message left in Redis
by an earlier run is never picked up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from spm.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_SECONDS = 60


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    port = db.get("PORT") or 5432
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{port}/"
        f"{db['NAME']}"
    )


@pytest.fixture
def worker_processes() -> int:
    """Return the child processes of ``celery_worker``. A module may override it."""
    return 1


@pytest.fixture
def celery_worker(transactional_db, tmp_path, worker_processes):
    """Start ``celery -A spm worker`` on a private queue and send tasks to it."""
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL:
        pytest.skip(
            "A real worker needs DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL"
        )

    queue = f"test-{uuid.uuid4().hex[:12]}"
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "spm.settings",
        "ATTAIN_TESTING": "1",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        # Tasks that the worker sends itself, such as a calculation's batches.
        "CELERY_CALC_QUEUE": queue,
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "spm",
        "worker",
        "--pool=prefork",
        f"--concurrency={worker_processes}",
        "--loglevel=info",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-Q",
        queue,
        "-n",
        f"{queue}@%h",
    ]
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_ready(process, log_path)
        celery_app.conf.task_always_eager = False
        celery_app.conf.task_default_queue = queue
        # Tasks with a queue of their own go to the private queue too.
        routes = settings.CELERY_TASK_ROUTES
        route_tasks({pattern: {"queue": queue} for pattern in routes})
        yield process
    finally:
        celery_app.conf.task_always_eager = True
        celery_app.conf.task_default_queue = "default"
        route_tasks(settings.CELERY_TASK_ROUTES)
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        text = log_path.read_text()
        if " ready." in text:
            return
        if process.poll() is not None:
            pytest.fail(f"The Celery worker exited early:\n{text}")
        time.sleep(0.2)
    pytest.fail(f"The Celery worker was not ready in {READY_TIMEOUT_SECONDS} s")


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.2):
    """Poll ``predicate`` until it returns a true value, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"Condition not met within {timeout} s")


def route_tasks(routes: dict) -> None:
    """Make the app send tasks by ``routes`` from now on.

    Celery builds its router once and keeps it, so it is rebuilt here.
    """
    celery_app.conf.task_routes = routes
    celery_app.amqp.flush_routes()
    celery_app.amqp.router = celery_app.amqp.Router()
