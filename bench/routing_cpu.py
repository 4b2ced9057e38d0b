"""Measure the CPU time per lead of lead intake and routing, in one process.

    .venv/bin/python bench/routing_cpu.py --database-url URL [--broker-url URL]

bench/routing.py measures latency with gunicorn and Celery worker processes,
and needs an idle machine. This script measures where the CPU time goes
instead, with ``time.process_time()`` (user plus system CPU of this
process). That depends less on other load than wall time does, but a busy
machine still inflates it, so compare runs made under similar load.

It migrates the database that ``--database-url`` names, and creates it when
it is missing (``--fresh`` drops it first). Then it creates the tenant of
bench/routing.py with that script's setup functions: 16 reps in 3 pools
behind 4 rules, and 2,000 accounts. A second run reuses the tenant with a
new API key. The settings are production ones (DEBUG off, Redis cache,
LOG_LEVEL WARNING, API key rate limit off), as bench/routing.py gives
gunicorn and the workers. The connection is the database owner, so
row-level security does not apply.

Leads are POSTed to /api/v1/leads/ with the Bearer API key and an
Idempotency-Key. Each way of sending gets ``--warm-up`` leads first, which are
not measured, then ``--leads`` measured ones:

- wsgi: the WSGI application called as gunicorn calls it, with the whole
  middleware stack;
- client: the same through ``django.test.Client``;
- view: the DRF view called directly, without middleware.

Each of these includes the Celery publish of the routing task, which goes to
the "routing" queue of the Redis broker. The publish is also timed on its
own (``route_lead_task.delay``, wrapped by a timer that calls it unchanged).
Then an in-process Celery worker (solo pool, on a thread) consumes every
queued task. For the routing task the script reports the CPU time of the task
body (Celery's task_prerun to task_postrun), and the CPU time of the worker
thread per task, which adds Celery's consume, decode and ack.

The request minus the view is the cost of the WSGI handler and middleware.
gunicorn's own work (HTTP parsing, sockets) is not in any of these numbers.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path[:0] = [str(ROOT), str(BENCH_DIR)]

# bench/routing.py, loaded under another name than the "routing" app.
_spec = importlib.util.spec_from_file_location(
    "bench_routing", BENCH_DIR / "routing.py"
)
routing_bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_routing"] = routing_bench
_spec.loader.exec_module(routing_bench)

HOST = "127.0.0.1"
PATH = "/api/v1/leads/"


def prepare_database(database_url: str, fresh: bool) -> None:
    """Create the database when missing (or afresh) and migrate it."""
    import subprocess

    import psycopg

    server_url, _, name = database_url.rpartition("/")
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    environment = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "1"}
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"],
        env=environment,
        cwd=ROOT,
        check=True,
    )


def setup_django(database_url: str, broker_url: str) -> None:
    os.environ.update(routing_bench.app_environment(database_url, broker_url))
    import django

    django.setup()


def tenant_get_or_create() -> routing_bench.Tenant:
    """Return the bench tenant with a new API key, creating the tenant if missing."""
    from spm.models import Organization
    from spm.services import api_key_create

    organization = Organization.objects.filter(slug=routing_bench.SLUG).first()
    if organization is None:
        return routing_bench.create_tenant()
    _, key = api_key_create(organization=organization, name="bench-cpu")
    domains = [f"customer{n:04d}.example" for n in range(routing_bench.ACCOUNTS)]
    return routing_bench.Tenant(key, domains)


def lead_payloads(tenant, count: int, run: str) -> list[bytes]:
    """Return ``count`` JSON bodies whose emails no earlier run has used."""
    bodies = routing_bench.lead_bodies(tenant, count, seed=hash(run) & 0xFFFF)
    payloads = []
    for number, body in enumerate(bodies):
        local, _, domain = body["email"].partition("@")
        body["email"] = f"{local}.{run}{number}@{domain}"
        payloads.append(json.dumps(body).encode())
    return payloads


class PublishTimer:
    """Timer around each ``route_lead_task.delay`` call, passed on unchanged."""

    def __init__(self, task) -> None:
        self.task = task
        self.original = task.delay
        self.cpu_ms: list[float] = []

    def __enter__(self) -> PublishTimer:
        def timed_delay(*args, **kwargs):
            started = time.process_time()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.cpu_ms.append((time.process_time() - started) * 1000)

        self.task.delay = timed_delay
        return self

    def __exit__(self, *exc) -> None:
        self.task.delay = self.original


def _headers(api_key: str) -> dict[str, str]:
    return {
        "HTTP_AUTHORIZATION": f"Bearer {api_key}",
        "HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex,
    }


def _check(status: int, content: bytes) -> None:
    if status != 201:
        raise SystemExit(f"POST {PATH} returned {status}: {content[:500]!r}")


def send_wsgi(api_key: str):
    from spm.wsgi import application

    def send(payload: bytes) -> None:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": PATH,
            "QUERY_STRING": "",
            "SERVER_NAME": HOST,
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": HOST,
            "REMOTE_ADDR": HOST,
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(payload)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(payload),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            **_headers(api_key),
        }
        statuses = []
        result = application(environ, lambda s, h, e=None: statuses.append(s))
        try:
            content = b"".join(result)
        finally:
            result.close()
        _check(int(statuses[0].split()[0]), content)

    return send


def send_client(api_key: str):
    from django.test import Client

    client = Client(HTTP_HOST=HOST)

    def send(payload: bytes) -> None:
        response = client.post(
            PATH, payload, content_type="application/json", **_headers(api_key)
        )
        _check(response.status_code, response.content)

    return send


def send_view(api_key: str):
    from django.test import RequestFactory
    from django.urls import resolve

    view = resolve(PATH).func
    factory = RequestFactory(HTTP_HOST=HOST)

    def send(payload: bytes) -> None:
        request = factory.post(
            PATH, payload, content_type="application/json", **_headers(api_key)
        )
        response = view(request)
        response.render()
        _check(response.status_code, response.content)

    return send


def measure_sends(send, payloads: list[bytes], warm_up: int) -> list[float]:
    """Send every payload and return the CPU ms of each one after the warm-up."""
    cpu_ms = []
    for number, payload in enumerate(payloads):
        started = time.process_time()
        send(payload)
        if number >= warm_up:
            cpu_ms.append((time.process_time() - started) * 1000)
    return cpu_ms


class WorkerMeter:
    """A Celery worker on a thread of this process, with CPU per routing task."""

    def __init__(self, expected: int, warm_up: int) -> None:
        self.expected = expected
        self.warm_up = warm_up
        self.task_ms: list[float] = []
        self.done = 0
        self.finished = threading.Event()
        self._started = 0.0
        self._thread_cpu: dict[int, float] = {}

    def on_prerun(self, task=None, **kwargs) -> None:
        if task is not None and task.name.endswith("route_lead_task"):
            self._started = time.thread_time()

    def on_postrun(self, task=None, **kwargs) -> None:
        if task is None or not task.name.endswith("route_lead_task"):
            return
        now = time.thread_time()
        self.done += 1
        if self.done > self.warm_up:
            self.task_ms.append((now - self._started) * 1000)
        self._thread_cpu[self.done] = now
        if self.done >= self.expected:
            self.finished.set()

    def thread_ms_per_task(self) -> float:
        """Return the worker thread's CPU ms per task after the warm-up."""
        first = self._thread_cpu[self.warm_up]
        last = self._thread_cpu[self.done]
        return (last - first) * 1000 / (self.done - self.warm_up)

    def run(self, timeout: float) -> None:
        from celery import signals
        from celery.worker import WorkController

        from spm.celery import app

        signals.task_prerun.connect(self.on_prerun, weak=False)
        signals.task_postrun.connect(self.on_postrun, weak=False)
        worker = WorkController(
            app=app,
            pool_cls="solo",
            concurrency=1,
            queues=["routing"],
            hostname=f"routing-cpu-{os.getpid()}@{HOST}",
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            loglevel="WARNING",
        )
        thread = threading.Thread(target=worker.start, daemon=True)
        thread.start()
        if not self.finished.wait(timeout):
            raise SystemExit(
                f"The worker routed {self.done} of {self.expected} leads "
                f"in {timeout:.0f} s"
            )
        worker.stop(in_sighandler=False)
        thread.join(30)


def summary(cpu_ms: list[float]) -> str:
    return (
        f"{statistics.fmean(cpu_ms):6.2f} mean {statistics.median(cpu_ms):6.2f} p50 "
        f"({len(cpu_ms)} leads)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/attain_bench_routing_cpu",
        help="The database URL, as its owner. A missing database is created.",
    )
    parser.add_argument(
        "--broker-url",
        default="redis://127.0.0.1:6379/15",
        help="The Redis broker and cache. Its routing queue is emptied first.",
    )
    parser.add_argument(
        "--leads", type=int, default=500, help="Measured leads per way of sending."
    )
    parser.add_argument(
        "--warm-up",
        type=int,
        default=50,
        help="Unmeasured leads sent first, per way of sending.",
    )
    parser.add_argument(
        "--only",
        default="wsgi,client,view",
        help="Comma-separated ways to send: wsgi, client, view.",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="Drop and recreate the database."
    )
    arguments = parser.parse_args()

    prepare_database(arguments.database_url, arguments.fresh)
    setup_django(arguments.database_url, arguments.broker_url)
    from routing.tasks import route_lead_task
    from spm.celery import app

    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("routing")
    tenant = tenant_get_or_create()
    senders = {"wsgi": send_wsgi, "client": send_client, "view": send_view}
    run = uuid.uuid4().hex[:8]
    results: dict[str, list[float]] = {}
    with PublishTimer(route_lead_task) as publish:
        for name in arguments.only.split(","):
            send = senders[name](tenant.api_key)
            payloads = lead_payloads(
                tenant, arguments.warm_up + arguments.leads, f"{run}{name}"
            )
            results[name] = measure_sends(send, payloads, arguments.warm_up)
    queued = len(publish.cpu_ms)
    meter = WorkerMeter(expected=queued, warm_up=arguments.warm_up)
    meter.run(timeout=600)

    print(f"CPU ms per lead ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})")
    labels = {
        "wsgi": "request, WSGI application",
        "client": "request, django.test.Client",
        "view": "DRF view, no middleware",
    }
    for name, cpu_ms in results.items():
        print(f"  {labels[name]:<38} {summary(cpu_ms)}")
    print(f"  {'Celery publish (delay)':<38} {summary(publish.cpu_ms)}")
    print(f"  {'routing task body':<38} {summary(meter.task_ms)}")
    print(
        f"  {'worker thread per task':<38} {meter.thread_ms_per_task():6.2f} mean "
        f"({meter.done - arguments.warm_up} tasks)"
    )


if __name__ == "__main__":
    main()
