"""Benchmark commission calculation: a full run, one changed deal, and the SQL floor.

    make bench-compensation     # or: .venv/bin/python bench/compensation.py

The script creates its own database, attain_bench_compensation, on the
PostgreSQL server of BENCH_SERVER_URL (by default
postgres://postgres@127.0.0.1:5432), migrates it, and drops it at the end,
also after an error. The tenant has BENCH_PAYEES reps (10,000 by default)
on one plan (10% flat plus a marginal accelerator above 50,000.00 a month)
and BENCH_CREDITS won deals (1,000,000) closing in March 2024, spread
evenly over the reps. Deals are loaded with COPY.

It times, in process:

1. the full calculation of March (``statements_calculate``), which stores
   every statement, line and snapshot;
2. the recalculation of one rep's statement after one deal's amount
   changed (``calculate_statement`` and the store of that one statement),
   RUNS times, after an ANALYZE of the tables the full run filled;
3. the floor: one plain SQL aggregation of the same credits by rep, RUNS
   times;
4. the approval of RUNS statements, each of which turns its block of
   calculated lines into rows.

With BENCH_WORKERS=N (2 by default, 0 to skip), the full calculation also
runs as the product runs it: the statements of the first run are deleted,
and the run is queued for a Celery worker with N processes (prefork pool),
which the script starts against a Redis broker on 127.0.0.1
(BENCH_BROKER_URL, by default redis://127.0.0.1:6379/14, on a queue of its
own). The worker sends each batch of members to a process of its own, so
the batches run side by side. The time is from the queue to the run's end.

The results, with the hardware, are appended to docs/benchmarks.md under
"Compensation".
"""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
import tempfile
import textwrap
import time
import uuid
from decimal import Decimal
from pathlib import Path

SERVER_URL = os.environ.get("BENCH_SERVER_URL", "postgres://postgres@127.0.0.1:5432")
DATABASE = "attain_bench_compensation"
os.environ["DJANGO_SETTINGS_MODULE"] = "spm.settings"
os.environ["DEBUG"] = "1"
os.environ["DATABASE_URL"] = f"{SERVER_URL}/{DATABASE}"
os.environ.pop("CELERY_BROKER_URL", None)

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent), str(BENCH_DIR)]

import report  # noqa: E402

PAYEES = int(os.environ.get("BENCH_PAYEES", "10000"))
CREDITS = int(os.environ.get("BENCH_CREDITS", "1000000"))
MARCH = (dt.date(2024, 3, 1), dt.date(2024, 4, 1))
# Enough runs for a stable median on a machine shared with other work.
RUNS = 20
FULL_TARGET_S = 10
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
ONE_DEAL_TARGET_MS = 50


def _server_connection():
    import psycopg

    return psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True)


def database_create() -> None:
    with _server_connection() as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        connection.execute(f"CREATE DATABASE {DATABASE}")


def database_drop() -> None:
    from django.db import connections

    connections.close_all()
    with _server_connection() as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def _percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(percent / 100 * len(ordered)) - 1, 0)]


def tenant_create():
    """Create the organisation, reps, plan and deals. Returns (org, won stage)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from activity.models import Pipeline, Stage
    from compensation.models import (
        CompPlan,
        PlanAssignment,
        PlanComponent,
        PlanVersion,
    )
    from spm.models import Membership
    from spm.services import organization_create

    with transaction.atomic():
        org = organization_create(name="Bench Compensation", slug="bench-comp")
        pipeline = Pipeline.unscoped.create(organization=org, name="Sales")
        won = Stage.unscoped.create(
            organization=org,
            pipeline=pipeline,
            name="Won",
            order=1,
            probability=Decimal(1),
            is_closed=True,
            is_won=True,
        )
        reps = Membership.unscoped.bulk_create(
            Membership(organization=org, display_name=f"Rep {n:05d}", role="rep")
            for n in range(PAYEES)
        )
        plan = CompPlan.unscoped.create(organization=org, name="AE", currency="USD")
        version = PlanVersion.unscoped.create(
            organization=org, plan=plan, number=1, effective_from=dt.date(2024, 1, 1)
        )
        accelerator = {
            "basis": "amount",
            "mode": "marginal",
            "tiers": [{"from": "0", "rate": "0"}, {"from": "50000", "rate": "0.05"}],
        }
        for order, (name, kind, params) in enumerate(
            [
                ("Commission", "flat", {"rate": "0.10"}),
                ("Accelerator", "tiered", accelerator),
            ]
        ):
            PlanComponent.unscoped.create(
                organization=org,
                version=version,
                name=name,
                kind=kind,
                order=order,
                params=params,
            )
        version.status = "published"
        version.published_at = timezone.now()
        version.save()
        PlanAssignment.unscoped.bulk_create(
            PlanAssignment(
                organization=org, member=rep, plan=plan, start_date=dt.date(2024, 1, 1)
            )
            for rep in reps
        )

    columns = (
        "organization_id, public_id, external_source, external_id, name, "
        "owner_id, pipeline_id, stage_id, amount, currency, close_date, "
        "created_at, updated_at"
    )
    now = timezone.now()
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY activity_deal ({columns}) FROM STDIN") as copy:
            for n in range(CREDITS):
                rep = reps[n % PAYEES]
                # Amounts from 100.00 to 9,999.99, with cents, on days 1-31.
                amount = Decimal(10000 + (n * 7919) % 990000) / 100
                close = MARCH[0] + dt.timedelta(days=n % 31)
                copy.write_row(
                    (
                        org.pk,
                        uuid.uuid4(),
                        "bench",
                        f"D{n}",
                        f"Deal {n}",
                        rep.pk,
                        pipeline.pk,
                        won.pk,
                        amount,
                        "USD",
                        close,
                        now,
                        now,
                    )
                )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return org, won


def full_run(org) -> tuple[float, float, object]:
    """Run the full calculation. Returns (wall seconds, CPU seconds, run).

    The CPU seconds are this process's own (``time.process_time``), so they
    leave out PostgreSQL's work and time spent waiting for a shared core.
    """
    from compensation.services_statements import statements_calculate
    from goals.calendar import month_range
    from spm.tenancy import tenant_context

    with tenant_context(org):
        started = time.perf_counter()
        cpu_started = time.process_time()
        run = statements_calculate(
            organization=org, period=month_range(MARCH[0]), actor=None
        )
        cpu_seconds = time.process_time() - cpu_started
        seconds = time.perf_counter() - started
    return seconds, cpu_seconds, run


def statements_clear() -> None:
    """Delete every run, statement, line and snapshot, so a run starts afresh."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE compensation_statementsnapshot, compensation_dispute, "
            "compensation_disputemessage, compensation_statementline, "
            "compensation_statement, compensation_calculationrun CASCADE"
        )
        cursor.execute("VACUUM ANALYZE")


def workers_run(org, processes: int) -> tuple[float, object]:
    """Queue the full run for a worker with ``processes`` processes, wait for it.

    Returns (wall seconds from the queue to the run's end, run).
    """
    import subprocess

    from django.db import connections, transaction

    from compensation.services_statements import calculation_run_queue
    from goals.calendar import month_range
    from spm.celery import app as celery_app
    from spm.tenancy import tenant_context

    queue = f"bench-comp-{uuid.uuid4().hex[:8]}"
    environment = {
        **os.environ,
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CELERY_CALC_QUEUE": queue,
        "SECRET_KEY": "bench-compensation-only-" + uuid.uuid4().hex,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable, "-m", "celery", "-A", "spm", "worker",
        "--pool=prefork", f"--concurrency={processes}", "-Q", queue,
        "-n", f"{queue}@%h", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "--loglevel=info",
    ]  # fmt: skip
    log_path = Path(tempfile.gettempdir()) / f"{queue}.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            command,
            cwd=BENCH_DIR.parent,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while " ready." not in log_path.read_text():
            if worker.poll() is not None:
                raise SystemExit(
                    f"The Celery worker exited before it was ready:\n"
                    f"{log_path.read_text()}"
                )
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"The Celery worker was not ready within 60 s:\n"
                    f"{log_path.read_text()}"
                )
            time.sleep(0.2)
        celery_app.conf.broker_url = BROKER_URL
        celery_app.conf.task_always_eager = False
        celery_app.conf.task_default_queue = queue
        celery_app.conf.task_routes = {"compensation.tasks.*": {"queue": queue}}
        celery_app.amqp.flush_routes()
        celery_app.amqp.router = celery_app.amqp.Router()
        connections.close_all()
        with tenant_context(org):
            started = time.perf_counter()
            with transaction.atomic():
                run = calculation_run_queue(
                    organization=org, period=month_range(MARCH[0]), actor=None
                )
            while True:
                run.refresh_from_db()
                if not run.is_active:
                    break
                time.sleep(0.05)
            seconds = time.perf_counter() - started
    finally:
        celery_app.conf.task_always_eager = True
        worker.terminate()
        worker.wait(timeout=60)
        log_path.unlink(missing_ok=True)
    return seconds, run


def one_deal_runs(org, run) -> tuple[list[float], int]:
    """Change one deal's amount and recalculate its owner's statement, RUNS times."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from activity.models import Deal
    from compensation import services_statements
    from goals.calendar import month_range
    from spm.tenancy import tenant_context

    period = month_range(MARCH[0])
    seconds = []
    queries = 0
    with tenant_context(org):
        deal = Deal.objects.select_related("owner").order_by("pk").first()
        for attempt in range(RUNS):
            Deal.objects.filter(pk=deal.pk).update(amount=deal.amount + attempt + 1)
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                # The store of one member's statement, as a full run does it.
                services_statements._store_member(deal.owner, period, run, None)
                seconds.append(time.perf_counter() - started)
            queries = len(captured.captured_queries)
    return seconds, queries


def floor_runs(org, won) -> list[float]:
    """Time the plain SQL sum of the period's credits by rep, with 10% applied."""
    from django.db import connection

    sql = (
        "SELECT owner_id, round(sum(amount) * 0.10, 2) FROM activity_deal "
        "WHERE organization_id = %s AND stage_id = %s AND close_date >= %s "
        "AND close_date < %s GROUP BY owner_id"
    )
    seconds = []
    with connection.cursor() as cursor:
        for _ in range(RUNS):
            started = time.perf_counter()
            cursor.execute(sql, [org.pk, won.pk, *MARCH])
            rows = cursor.fetchall()
            seconds.append(time.perf_counter() - started)
    assert len(rows) == min(PAYEES, CREDITS)
    return seconds


def approval_runs(org) -> tuple[list[float], int, int]:
    """Approve RUNS statements, each turning its block of lines into rows.

    Returns the seconds of each approval, the queries of the last one and
    the number of lines per statement.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from compensation import services_statements
    from compensation.models import Statement
    from spm.models import Membership
    from spm.tenancy import tenant_context

    seconds = []
    queries = 0
    with tenant_context(org):
        admin = Membership.objects.create(display_name="Bench admin", role="admin")
        drafts = list(
            Statement.objects.filter(status=Statement.Status.DRAFT).order_by("-pk")[
                :RUNS
            ]
        )
        for statement in drafts:
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                services_statements.statement_approve(
                    statement=statement, approver=admin, actor=None
                )
                seconds.append(time.perf_counter() - started)
            queries = len(captured.captured_queries)
        lines = drafts[-1].lines.count() if drafts else 0
    return seconds, queries, lines


def _workers_row(workers) -> list[str]:
    """Return the table row of the run on worker processes, if there was one."""
    if workers is None:
        return []
    processes, seconds, run = workers
    return [
        f"| full calculation queued for a Celery worker with {processes} "
        f"processes, {run.calculated_count:,} statements stored in "
        f"{run.batch_count} batches ({run.error_count} errors) | 1 "
        f"| {seconds:.1f} s | {seconds:.1f} s | - | < {FULL_TARGET_S} s "
        f"| {'yes' if seconds < FULL_TARGET_S else 'no'} |"
    ]


def append_results(
    load_average,
    full_seconds,
    full_cpu,
    run,
    one_deal,
    one_queries,
    floor,
    workers,
    approval,
):
    intro = (
        f"bench/compensation.py: {PAYEES:,} reps on one plan (10% flat plus a 5% "
        f"marginal accelerator above 50,000.00) and {CREDITS:,} won deals in "
        "March 2024, in a database the script creates and drops. Times are "
        "wall-clock, in process, against PostgreSQL on 127.0.0.1. The two "
        "cores were shared with other work while it ran, so the times are "
        "upper bounds for an idle machine."
    )
    if (PAYEES, CREDITS) != (10_000, 1_000_000):
        intro += (
            " The targets are set for 10,000 reps and 1,000,000 credits; this "
            "run was smaller (BENCH_PAYEES, BENCH_CREDITS), so compare the "
            "time per statement, not the total."
        )
    one_deal_ms = _percentile(one_deal, 50) * 1000
    lines = [
        "",
        f"## Compensation, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        *textwrap.wrap(intro, width=79, break_on_hyphens=False),
        "",
        "| | |",
        "| --- | --- |",
        f"| git commit | {report._commit()} |",
        f"| CPU | {report._cpu_model()}, {os.cpu_count()} cores |",
        f"| memory | {report._memory()} |",
        "| load average before the run (1, 5, 15 min) | "
        + ", ".join(f"{value:.2f}" for value in load_average)
        + " |",
        f"| PostgreSQL | {report._postgresql_version()} |",
        "",
        "| measurement | runs | p50 | max | queries | target | met |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
        f"| full calculation, {run.calculated_count:,} statements stored, "
        f"{full_seconds / max(run.calculated_count, 1) * 1000:.0f} ms each, "
        f"{full_cpu:.1f} s of the benchmark process's CPU time "
        f"({run.error_count} errors) | 1 | {full_seconds:.1f} s | "
        f"{full_seconds:.1f} s | - | < {FULL_TARGET_S} s | "
        f"{'yes' if full_seconds < FULL_TARGET_S else 'no'} |",
        *_workers_row(workers),
        f"| one changed deal: its owner's statement recalculated and stored "
        f"| {RUNS} | {one_deal_ms:.0f} ms "
        f"| {max(one_deal) * 1000:.0f} ms | {one_queries} "
        f"| < {ONE_DEAL_TARGET_MS} ms "
        f"| {'yes' if one_deal_ms < ONE_DEAL_TARGET_MS else 'no'} |",
        f"| floor: one SQL sum of the credits by rep | {RUNS} "
        f"| {_percentile(floor, 50) * 1000:.0f} ms | {max(floor) * 1000:.0f} ms "
        "| 1 | - | - |",
    ]
    approval_seconds, approval_queries, approval_lines = approval
    if approval_seconds:
        lines.append(
            f"| approval of one statement, whose {approval_lines} calculated "
            f"lines become rows | {len(approval_seconds)} "
            f"| {_percentile(approval_seconds, 50) * 1000:.0f} ms "
            f"| {max(approval_seconds) * 1000:.0f} ms | {approval_queries} | - | - |"
        )
    with report.RESULTS.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return report.RESULTS


def main() -> None:
    load_average = os.getloadavg()
    database_create()
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.test.utils import override_settings

        call_command("migrate", interactive=False, verbosity=0)
        # With DEBUG on, Django would keep the SQL of every statement.
        with override_settings(DEBUG=False):
            started = time.perf_counter()
            org, won = tenant_create()
            print(f"Tenant created in {time.perf_counter() - started:.0f} s.")
            full_seconds, full_cpu, run = full_run(org)
            print(
                f"Full calculation: {full_seconds:.1f} s ({full_cpu:.1f} s of "
                f"this process's CPU time), run status {run.status}."
            )
            workers = None
            if WORKERS:
                statements_clear()
                workers_seconds, workers_run_row = workers_run(org, WORKERS)
                workers = (WORKERS, workers_seconds, workers_run_row)
                print(
                    f"Full calculation on {WORKERS} worker processes: "
                    f"{workers_seconds:.1f} s, run status {workers_run_row.status}."
                )
        # In a deployment autovacuum analyses the new statements soon after a
        # run (it checks every minute by default). Without this ANALYZE the
        # planner would take those tables for as empty as before the run.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        # The statements of the last run are the ones in the database.
        last_run = workers[2] if workers else run
        one_deal, one_queries = one_deal_runs(org, last_run)
        print(
            f"One changed deal: p50 {_percentile(one_deal, 50) * 1000:.0f} ms, "
            f"{one_queries} queries."
        )
        floor = floor_runs(org, won)
        print(f"SQL floor: p50 {_percentile(floor, 50) * 1000:.0f} ms.")
        approval = approval_runs(org)
        if approval[0]:
            print(
                f"Approval of one statement of {approval[2]} lines: p50 "
                f"{_percentile(approval[0], 50) * 1000:.0f} ms, "
                f"{approval[1]} queries."
            )
        path = append_results(
            load_average,
            full_seconds,
            full_cpu,
            run,
            one_deal,
            one_queries,
            floor,
            workers,
            approval,
        )
        print(f"Results appended to {path}.")
    finally:
        database_drop()


if __name__ == "__main__":
    main()
