"""Benchmark lead routing: from POST accepted to assignment committed.

    make bench-routing        # or: .venv/bin/python bench/routing.py

Everything runs on this machine and talks over loopback (127.0.0.1) only.
The script starts, as its own subprocesses:

- PostgreSQL: a private cluster (initdb in a temporary folder) with
  ``track_commit_timestamp`` on, unless ``--database-url`` names a running
  server (then the owner role of that URL is used);
- Redis, as the Celery broker;
- gunicorn serving the app, and a Celery worker on the "routing" queue.

It creates the database attain_bench_routing afresh, migrates it, creates
the application role (row-level security applies to the web and worker
processes, as in production), and a tenant with 16 reps in 3 pools, 4 rules,
2,000 accounts with owners, and the demo's eight scoring rules, so intake
qualifies each lead as it does for a configured organisation. Then, for each
rate, it posts leads at that rate for SECONDS seconds, each with an
Idempotency-Key. The load is open loop: each lead is sent at its scheduled
time, whether or not earlier responses have come back. Once every lead is
routed, the script reads the times from PostgreSQL.

The latency of a lead is the commit time of the routing transaction minus
the commit time of the intake transaction, both from
``pg_xact_commit_timestamp``: the intake commits the lead with its
IntakeRequest row, the routing task commits the Assignment row. Without
commit timestamps (a server with the setting off) the script uses
``Assignment.routed_at - Lead.received_at`` instead, which also counts the
intake's own work.

It appends the results, with the machine (``lscpu``, ``free -g``), to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import itertools
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
sys.path[:0] = [str(ROOT), str(BENCH_DIR)]

DATABASE = "attain_bench_routing"
APP_ROLE = "attain_bench_app"
SLUG = "bench-routing"
RATES = (10, 50, 100, 200)
SECONDS = 20
WARM_UP_LEADS = 100
# Threads that send the scheduled POSTs. Enough that a slow response never
# holds back the next lead's send at 200 leads/s.
SENDERS = 32
WEB_WORKERS = 4
ROUTING_PROCESSES = 3
TARGET_P50_MS = 15
TARGET_P99_MS = 60
TARGET_RATE = 200
ACCOUNTS = 2_000
RESULTS = ROOT / "docs" / "benchmarks.md"
ROUND_ROBIN_POOL = "Everyone else"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited early with status {process.returncode}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            return
        time.sleep(0.2)
    raise SystemExit(f"{name} did not listen on 127.0.0.1:{port} within 60 s")


# Processes --------------------------------------------------------------------


class Processes:
    """The subprocesses this script started, stopped in reverse order on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str], **options) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")  # noqa: SIM115 (kept open)
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **options,
        )
        self.started.append((name, process))
        return process

    def stop_all(self) -> None:
        for name, process in reversed(self.started):
            if process.poll() is None:
                # PostgreSQL shuts down fast on SIGINT, the others on SIGTERM.
                sig = signal.SIGINT if name == "postgres" else signal.SIGTERM
                process.send_signal(sig)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _as_postgres_user() -> dict:
    """Return Popen options that run PostgreSQL as "postgres" when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres"}


def start_postgres(processes: Processes, work_dir: Path) -> str:
    """Create and start a private cluster on a free port; return the owner URL."""
    bindir = Path(
        subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    data_dir = work_dir / "pgdata"
    data_dir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(work_dir, "postgres", "postgres")
        shutil.chown(data_dir, "postgres", "postgres")
    subprocess.run(
        [
            bindir / "initdb",
            "-D",
            data_dir,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-instructions",
        ],
        check=True,
        capture_output=True,
        **_as_postgres_user(),
    )
    port = free_port()
    process = processes.start(
        "postgres",
        [
            bindir / "postgres",
            "-D",
            data_dir,
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={work_dir}",
            "-c",
            "track_commit_timestamp=on",
            "-c",
            "max_connections=100",
        ],
        **_as_postgres_user(),
    )
    wait_for_port(port, process, "PostgreSQL")
    time.sleep(0.5)
    return f"postgres://postgres@127.0.0.1:{port}"


def start_redis(processes: Processes, work_dir: Path) -> str:
    port = free_port()
    process = processes.start(
        "redis",
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(work_dir),
        ],
    )
    wait_for_port(port, process, "Redis")
    return f"redis://127.0.0.1:{port}/0"


def app_environment(database_url: str, broker_url: str) -> dict[str, str]:
    """Return the environment of the web and worker processes: production settings."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "spm.settings",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "SECRET_KEY": "bench-routing-only-" + uuid.uuid4().hex,
        "DEBUG": "0",
        "ATTAIN_TESTING": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "TRUSTED_PROXY_COUNT": "0",
        # One API key sends every lead; its rate limit would cap the run.
        "API_THROTTLE_RATE_KEY": "",
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
    }


def start_web(
    processes: Processes, environment: dict, *, application: str = "spm.wsgi"
) -> int:
    """Start WEB_WORKERS gunicorn sync workers on ``application``, return the port."""
    port = free_port()
    process = processes.start(
        "gunicorn",
        [
            VENV_BIN / "gunicorn",
            application,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WEB_WORKERS),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=environment,
    )
    wait_for_port(port, process, "gunicorn")
    return port


def start_workers(
    processes: Processes, environment: dict, *, celery_app: str = "spm"
) -> None:
    """Start ROUTING_PROCESSES worker nodes of ``celery_app`` on the routing queue.

    Each node runs its tasks in its own process (the solo pool), which
    spares the hand-over to a child process that the prefork pool makes for
    every task.
    """
    for number in range(ROUTING_PROCESSES):
        processes.start(
            f"celery-{number}",
            [
                VENV_BIN / "celery",
                "-A",
                celery_app,
                "worker",
                "-Q",
                "routing",
                "--pool=solo",
                "-n",
                f"routing-{number}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=warning",
            ],
            cwd=ROOT,
            env=environment,
        )


# Database and tenant ----------------------------------------------------------


def prepare_database(owner_server_url: str) -> tuple[str, str]:
    """Create the database afresh, migrate it, and return (owner URL, app URL)."""
    import psycopg

    with psycopg.connect(f"{owner_server_url}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    owner_url = f"{owner_server_url}/{DATABASE}"
    environment = {**os.environ, "DATABASE_URL": owner_url, "DEBUG": "1"}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run(
        [*manage, "migrate", "--noinput", "-v", "0"],
        env=environment,
        cwd=ROOT,
        check=True,
    )
    subprocess.run(
        [*manage, "create_app_role", APP_ROLE],
        env=environment,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    app_url = owner_url.replace("postgres://postgres@", f"postgres://{APP_ROLE}@", 1)
    return owner_url, app_url


def setup_django(owner_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "spm.settings"
    os.environ["DATABASE_URL"] = owner_url
    os.environ["DEBUG"] = "1"
    import django

    django.setup()


@dataclass
class Tenant:
    api_key: str
    account_domains: list[str]
    pool_names: dict[str, str] = field(default_factory=dict)


def create_tenant() -> Tenant:
    """Create the organisation, its reps, pools, rules, accounts and API key."""
    from activity.models import Account
    from routing import configuration
    from routing.configuration import RuleSpec
    from spm.models import Membership, Organization
    from spm.services import api_key_create
    from spm.tenancy import tenant_context

    organization = Organization.objects.create(
        name="Bench Routing", slug=SLUG, time_zone="Europe/Berlin", currency="EUR"
    )
    with tenant_context(organization):
        reps = [
            Membership.objects.create(
                organization=organization, display_name=f"Rep {n:02d}", role="rep"
            )
            for n in range(1, 17)
        ]
        dach = configuration.territory_create(
            organization=organization,
            actor=None,
            name="DACH",
            conditions=[
                {"field": "country", "operator": "in", "value": ["DE", "AT", "CH"]}
            ],
        )
        pools = {
            "dach": _pool(organization, "DACH", "round_robin", reps[0:4]),
            "us": _pool(organization, "US enterprise", "weighted", reps[4:8]),
            "all": _pool(organization, ROUND_ROBIN_POOL, "round_robin", reps[8:16]),
        }
        configuration.rule_set_publish(
            organization=organization,
            actor=None,
            rules=[
                RuleSpec(name="Existing customers", action="account_owner"),
                RuleSpec(
                    name="DACH", action="pool", territory=dach, pool=pools["dach"]
                ),
                RuleSpec(
                    name="US enterprise",
                    action="pool",
                    pool=pools["us"],
                    conditions=[
                        {"field": "country", "operator": "equals", "value": "US"},
                        {
                            "field": "company_size",
                            "operator": "range",
                            "value": {"min": 500},
                        },
                    ],
                ),
                RuleSpec(name="Everyone else", action="pool", pool=pools["all"]),
            ],
        )
        _qualification(organization)
        domains = [f"customer{n:04d}.example" for n in range(ACCOUNTS)]
        Account.objects.bulk_create(
            Account(
                organization=organization,
                name=f"Customer {n:04d}",
                domain=f"https://www.{domain}/",
                owner=reps[n % len(reps)],
            )
            for n, domain in enumerate(domains)
        )
        _, key = api_key_create(organization=organization, name="bench")
    # Gather statistics for the new rows, as autovacuum would on a running
    # server. Without them the planner skips the account domain index.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return Tenant(key, domains, {k: p.name for k, p in pools.items()})


def _qualification(organization) -> None:
    """Give the tenant the demo's scoring rules, thresholds and competitor domain.

    Intake then scores every lead against eight rules, of which the country
    ones match some bench leads, and checks the competitor domain.
    """
    from routing import demo
    from routing.qualification_services import (
        qualification_settings_update,
        scoring_rule_create,
    )

    for name, kind, field_name, operator, value, points in demo.SCORING_RULES:
        scoring_rule_create(
            organization=organization,
            actor=None,
            name=name,
            kind=kind,
            field=field_name,
            operator=operator,
            value=value,
            points=points,
        )
    qualification_settings_update(
        organization=organization,
        actor=None,
        mql_threshold=demo.MQL_THRESHOLD,
        sql_threshold=demo.SQL_THRESHOLD,
        competitor_domains=demo.COMPETITOR_DOMAINS,
    )


def _pool(organization, name: str, method: str, reps):
    from routing import configuration

    pool = configuration.pool_create(
        organization=organization, actor=None, name=name, method=method
    )
    for number, rep in enumerate(reps):
        configuration.pool_member_add(
            pool=pool, member=rep, actor=None, weight=2 if number == 0 else 1
        )
    return pool


def lead_bodies(tenant: Tenant, count: int, seed: int) -> list[dict]:
    """Return ``count`` leads: a fifth of known accounts, the rest by territory."""
    generator = random.Random(seed)
    bodies = []
    for number in range(count):
        kind = generator.random()
        body = {
            "email": f"lead{seed}-{number}@prospect{number % 997}.example",
            "first_name": "Bench",
            "last_name": f"Lead {number}",
            "source": "benchmark",
            "company_size": generator.choice([8, 40, 250, 800, 5000]),
            "estimated_value": str(generator.randrange(1_000, 200_000)),
        }
        if kind < 0.2:
            domain = generator.choice(tenant.account_domains)
            body |= {"email": f"buyer{number}@{domain}", "country": "FR"}
        elif kind < 0.5:
            body["country"] = generator.choice(["Germany", "AT", "CHE"])
        elif kind < 0.7:
            body["country"] = "United States"
        else:
            body["country"] = generator.choice(["FR", "GB", "NL", "ES", "SE", "BR"])
        bodies.append(body)
    return bodies


# Load -------------------------------------------------------------------------


@dataclass
class Sent:
    key: str
    due: float
    sent: float
    answered: float
    status: int


def post_at_rate(port: int, api_key: str, bodies: list[dict], rate: float) -> list:
    """POST each body at its scheduled time, ``1 / rate`` s apart; return results."""
    results: list[Sent | None] = [None] * len(bodies)
    counter = itertools.count()
    start = time.time() + 0.5
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    def sender() -> None:
        while (index := next(counter)) < len(bodies):
            due = start + index / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            key = uuid.uuid4().hex
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            sent = time.time()
            try:
                connection.request(
                    "POST",
                    "/api/v1/leads/",
                    json.dumps(bodies[index]),
                    {**headers, "Idempotency-Key": key},
                )
                response = connection.getresponse()
                response.read()
                status = response.status
            except OSError:
                status = 0
            finally:
                connection.close()
            results[index] = Sent(key, due, sent, time.time(), status)

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def wait_until_routed(expected: int, timeout: float = 120) -> None:
    from activity.models import Lead

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        routed = (
            Lead.unscoped.filter(organization__slug=SLUG)
            .exclude(routing_status=Lead.RoutingStatus.PENDING)
            .count()
        )
        if routed >= expected:
            return
        time.sleep(0.2)
    raise SystemExit(f"Only {routed} of {expected} leads were routed in {timeout} s")


LATENCY_SQL = """
SELECT i.key,
       pg_xact_commit_timestamp(i.xmin),
       pg_xact_commit_timestamp(a.xmin),
       l.received_at, a.routed_at, a.member_id, a.outcome, p.name
FROM routing_intakerequest AS i
JOIN routing_assignment AS a ON a.lead_id = i.lead_id
JOIN activity_lead AS l ON l.id = i.lead_id
LEFT JOIN routing_pool AS p ON p.id = a.pool_id
WHERE i.key = ANY(%s)
"""


@dataclass
class RateResult:
    rate: int
    sent: list
    latencies_ms: list[float]
    post_ms: list[float]
    send_lag_ms: float
    leads: int
    assignments: int
    queued: int
    commit_timestamps: bool
    spread: int
    web_cpu_ms: float
    worker_cpu_ms: float
    load_after: float


def percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(percent / 100 * len(ordered)) - 1, 0)]


def measure(
    rate: int, seconds: int, port: int, tenant: Tenant, seed: int, processes
) -> RateResult:
    from django.db import connection

    bodies = lead_bodies(tenant, rate * seconds, seed)
    cpu = CpuMeter(processes)
    sent = post_at_rate(port, tenant.api_key, bodies, rate)
    accepted = [s for s in sent if s.status == 201]
    wait_until_routed(_leads_so_far())
    cpu.stop()

    with connection.cursor() as cursor:
        cursor.execute(LATENCY_SQL, [[s.key for s in accepted]])
        rows = cursor.fetchall()
    commit_timestamps = all(row[1] is not None and row[2] is not None for row in rows)
    latencies = []
    for _, intake_commit, routing_commit, received, routed, *_ in rows:
        if commit_timestamps:
            latencies.append((routing_commit - intake_commit).total_seconds() * 1000)
        else:
            latencies.append((routed - received).total_seconds() * 1000)
    round_robin = Counter(row[5] for row in rows if row[7] == ROUND_ROBIN_POOL)
    return RateResult(
        rate=rate,
        sent=sent,
        latencies_ms=latencies,
        post_ms=[(s.answered - s.sent) * 1000 for s in accepted],
        send_lag_ms=max((s.sent - s.due) * 1000 for s in sent),
        leads=len(accepted),
        assignments=len(rows),
        queued=sum(1 for row in rows if row[6] == "queued"),
        commit_timestamps=commit_timestamps,
        spread=_round_robin_spread(round_robin),
        web_cpu_ms=cpu.web_ms(len(accepted)),
        worker_cpu_ms=cpu.worker_ms(len(accepted)),
        load_after=os.getloadavg()[0],
    )


def _leads_so_far() -> int:
    from activity.models import Lead

    return Lead.unscoped.filter(organization__slug=SLUG).count()


def _round_robin_spread(per_member: Counter) -> int:
    """Return max - min leads that the round-robin pool gave its 8 reps."""
    from routing.models import PoolMember

    members = PoolMember.unscoped.filter(
        pool__name=ROUND_ROBIN_POOL, pool__organization__slug=SLUG
    ).values_list("member_id", flat=True)
    counts = [per_member.get(member, 0) for member in members]
    return max(counts) - min(counts) if counts else 0


def _cpu_seconds_of_tree(root_pid: int) -> float:
    """Return the user and system CPU seconds of a process and its descendants."""
    parents, seconds = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        seconds[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    total, stack = 0.0, [root_pid]
    while stack:
        pid = stack.pop()
        total += seconds.get(pid, 0.0)
        stack += [child for child, parent in parents.items() if parent == pid]
    return total


class CpuMeter:
    """CPU time used by the web server and the worker between start and stop."""

    def __init__(self, processes: Processes) -> None:
        self.pids = {name: process.pid for name, process in processes.started}
        self.start = self._read()
        self.used: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        workers = [pid for name, pid in self.pids.items() if name.startswith("celery")]
        return {
            "gunicorn": _cpu_seconds_of_tree(self.pids["gunicorn"]),
            "celery": sum(_cpu_seconds_of_tree(pid) for pid in workers),
        }

    def stop(self) -> None:
        end = self._read()
        self.used = {name: end[name] - self.start[name] for name in end}

    def web_ms(self, leads: int) -> float:
        return self.used["gunicorn"] * 1000 / max(leads, 1)

    def worker_ms(self, leads: int) -> float:
        return self.used["celery"] * 1000 / max(leads, 1)


# Floors -----------------------------------------------------------------------


def postgres_commit_floor(owner_url: str, runs: int = 500) -> list[float]:
    """Time one INSERT and COMMIT round trip on an open connection, in ms."""
    import psycopg

    times = []
    with psycopg.connect(owner_url) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_floor (id bigserial, at timestamptz)"
        )
        conn.commit()
        for _ in range(runs):
            started = time.perf_counter()
            conn.execute("INSERT INTO bench_floor (at) VALUES (now())")
            conn.commit()
            times.append((time.perf_counter() - started) * 1000)
        conn.execute("DROP TABLE bench_floor")
        conn.commit()
    return times


def redis_round_trip_floor(broker_url: str, runs: int = 1000) -> list[float]:
    import redis

    client = redis.Redis.from_url(broker_url)
    client.ping()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        client.ping()
        times.append((time.perf_counter() - started) * 1000)
    return times


# Report -----------------------------------------------------------------------


def _command_output(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return result.stdout


def hardware_rows() -> list[tuple[str, str]]:
    lscpu = {}
    for line in _command_output(["lscpu"]).splitlines():
        name, _, value = line.partition(":")
        lscpu[name.strip()] = value.strip()
    memory = next(
        (
            line
            for line in _command_output(["free", "-g"]).splitlines()
            if line.startswith("Mem:")
        ),
        "",
    ).split()
    return [
        (
            "CPU (lscpu)",
            f"{lscpu.get('Model name', 'unknown')}, "
            f"{lscpu.get('CPU(s)', '?')} CPUs, {lscpu.get('Thread(s) per core', '?')} "
            "threads per core",
        ),
        (
            "memory (free -g)",
            f"{memory[1]} GiB total, {memory[6]} GiB available"
            if len(memory) > 6
            else "unknown",
        ),
    ]


def write_report(
    results, pg_floor, redis_floor, load_before, server, commit, seconds
) -> None:
    timing_source = (
        "the intake's commit to the routing's commit (pg_xact_commit_timestamp)"
        if all(r.commit_timestamps for r in results)
        else "Lead.received_at to Assignment.routed_at (no commit timestamps)"
    )
    lines = [
        "",
        f"## Lead routing, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "bench/routing.py: leads POSTed to /api/v1/leads/ over loopback at a fixed "
        f"rate for {seconds} s each, open loop, by {SENDERS} sender threads. "
        f"gunicorn ran {WEB_WORKERS} sync workers, and {ROUTING_PROCESSES} Celery "
        "worker processes (solo pool) took the routing queue from Redis. "
        "PostgreSQL applied row-level security to the app role. The tenant has "
        "16 reps in 3 pools behind 4 rules, the first an account-owner lookup "
        f"among {ACCOUNTS:,} accounts. Latency is the time from {timing_source}, "
        "with nearest-rank percentiles. CPU per lead is the user and system CPU "
        "time of the gunicorn and Celery process trees during the rate, over its "
        "leads. Load after is the 1-minute load average once the rate's leads "
        "were all routed.",
        "",
        "| | |",
        "| --- | --- |",
        f"| git commit | {commit} |",
        *(f"| {name} | {value} |" for name, value in hardware_rows()),
        "| load average before the run (1, 5, 15 min) | "
        + ", ".join(f"{value:.2f}" for value in load_before)
        + " |",
        f"| PostgreSQL | {server} |",
        "",
        "| leads/s | leads | routed | queued | p50 ms | p99 ms | max ms "
        "| POST p50 ms | POST p99 ms | max send lag ms | round-robin spread "
        "| web CPU ms per lead | worker CPU ms per lead | load after "
        "| target | met |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for result in results:
        p50 = percentile(result.latencies_ms, 50)
        p99 = percentile(result.latencies_ms, 99)
        target, met = "", ""
        if result.rate == TARGET_RATE:
            target = f"p50 < {TARGET_P50_MS}, p99 < {TARGET_P99_MS}"
            met = "yes" if p50 < TARGET_P50_MS and p99 < TARGET_P99_MS else "no"
        lines.append(
            f"| {result.rate} | {result.leads} | {result.assignments} "
            f"| {result.queued} | {p50:.1f} | {p99:.1f} "
            f"| {max(result.latencies_ms):.1f} "
            f"| {percentile(result.post_ms, 50):.1f} "
            f"| {percentile(result.post_ms, 99):.1f} | {result.send_lag_ms:.1f} "
            f"| {result.spread} | {result.web_cpu_ms:.1f} "
            f"| {result.worker_cpu_ms:.1f} | {result.load_after:.2f} "
            f"| {target} | {met} |"
        )
    lines += [
        "",
        "| floor | runs | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: |",
        f"| PostgreSQL: one INSERT and COMMIT on an open connection | {len(pg_floor)} "
        f"| {percentile(pg_floor, 50):.2f} | {percentile(pg_floor, 99):.2f} |",
        f"| Redis: one PING on an open connection | {len(redis_floor)} "
        f"| {percentile(redis_floor, 50):.3f} | {percentile(redis_floor, 99):.3f} |",
    ]
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def print_result(result: RateResult) -> None:
    print(
        f"{result.rate} leads/s: {result.leads} accepted, {result.assignments} "
        f"routed, p50 {percentile(result.latencies_ms, 50):.1f} ms, "
        f"p99 {percentile(result.latencies_ms, 99):.1f} ms, "
        f"max send lag {result.send_lag_ms:.1f} ms, CPU per lead "
        f"{result.web_cpu_ms:.1f} ms web + {result.worker_cpu_ms:.1f} ms worker"
    )


def check(result: RateResult) -> None:
    """Stop when a POST failed, or a lead was lost or routed twice."""
    failed = [s.status for s in result.sent if s.status != 201]
    if failed:
        raise SystemExit(f"{len(failed)} POSTs failed, statuses {Counter(failed)}")
    if result.assignments != result.leads:
        raise SystemExit(
            f"{result.leads} leads accepted but {result.assignments} routed"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        help="A running PostgreSQL server as its owner, such as "
        "postgres://postgres@127.0.0.1:5432, instead of a private cluster.",
    )
    parser.add_argument(
        "--seconds", type=int, default=SECONDS, help="Seconds of load per rate."
    )
    parser.add_argument(
        "--rates",
        default=",".join(str(rate) for rate in RATES),
        help="Comma-separated rates in leads/s, such as 10,50.",
    )
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="Print only; leave the docs as they are.",
    )
    arguments = parser.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="attain-bench-routing-") as folder:
        work_dir = Path(folder)
        processes = Processes(work_dir)
        try:
            server_url = arguments.database_url or start_postgres(processes, work_dir)
            broker_url = start_redis(processes, work_dir)
            owner_url, app_url = prepare_database(server_url)
            setup_django(owner_url)
            tenant = create_tenant()
            environment = app_environment(app_url, broker_url)
            port = start_web(processes, environment)
            start_workers(processes, environment)

            print("Warming up")
            warm_up = lead_bodies(tenant, WARM_UP_LEADS, seed=0)
            post_at_rate(port, tenant.api_key, warm_up, 50)
            wait_until_routed(_leads_so_far())

            results = []
            for rate in (int(r) for r in arguments.rates.split(",")):
                result = measure(rate, arguments.seconds, port, tenant, rate, processes)
                print_result(result)
                check(result)
                results.append(result)
            pg_floor = postgres_commit_floor(owner_url)
            redis_floor = redis_round_trip_floor(broker_url)
            print(
                f"Floor: PostgreSQL commit p50 {percentile(pg_floor, 50):.2f} ms, "
                f"Redis round trip p50 {percentile(redis_floor, 50):.3f} ms"
            )
            if not arguments.no_report:
                import report
                from django.db import connection

                with connection.cursor() as cursor:
                    cursor.execute("SHOW server_version")
                    server = cursor.fetchone()[0]
                write_report(
                    results,
                    pg_floor,
                    redis_floor,
                    load_before,
                    server,
                    report._commit(),
                    arguments.seconds,
                )
                print(f"Results appended to {RESULTS}")
        finally:
            from django.db import connections

            with contextlib.suppress(Exception):
                connections.close_all()
            processes.stop_all()


if __name__ == "__main__":
    main()
