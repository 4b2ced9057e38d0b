"""Benchmark the stack floor of lead routing: the same path with no product code.

    make bench-routing-floor    # or: .venv/bin/python bench/routing_floor.py

bench/routing.py measures lead routing from the intake's commit to the
routing's commit. This script runs the same harness with that script's
functions and settings. It starts a private PostgreSQL cluster with
``track_commit_timestamp`` on, Redis as the Celery broker, gunicorn with the
same number of sync workers, and the same number of Celery worker processes
(solo pool) on the "routing" queue. The open-loop senders, lead bodies,
rates and seconds per rate are the same too. Everything talks over loopback
(127.0.0.1) only.

The application is bench/floor_app instead of the product: one Django view
with no middleware reads the JSON body, INSERTs one row into floor_lead with
the request's Idempotency-Key and COMMITs, and on commit publishes one Celery
task with the row id. The task INSERTs one floor_assignment row that refers
to the lead and COMMITs. The script creates both tables; there are no
migrations. Both processes connect as the database owner, so no row-level
security applies.

The latency of a lead is the commit time of its floor_assignment row minus
the commit time of its floor_lead row, both from ``pg_xact_commit_timestamp``,
as bench/routing.py computes it. For each rate the script also reports the
CPU time per lead of the gunicorn and Celery process trees, and how busy all
CPUs of the machine were (from /proc/stat), which includes any other work on
the machine.

It appends the results, with the machine (``lscpu``, ``free -g``), to
docs/benchmarks.md unless ``--no-report`` is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import sys
import tempfile
import time
from dataclasses import dataclass
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

DATABASE = "attain_bench_routing_floor"
# The floor view ignores the Authorization header. The senders send one all
# the same, so each request has the product's headers.
API_KEY = "floor-bench-unused"
RESULTS = routing_bench.RESULTS
percentile = routing_bench.percentile

SCHEMA = [
    """
    CREATE TABLE floor_lead (
        id bigserial PRIMARY KEY,
        key text NOT NULL UNIQUE,
        email text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE floor_assignment (
        id bigserial PRIMARY KEY,
        lead_id bigint NOT NULL REFERENCES floor_lead (id),
        routed_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX floor_assignment_lead_id ON floor_assignment (lead_id)",
]

LATENCY_SQL = """
SELECT l.key, pg_xact_commit_timestamp(l.xmin), pg_xact_commit_timestamp(a.xmin)
FROM floor_lead AS l
JOIN floor_assignment AS a ON a.lead_id = l.id
WHERE l.key = ANY(%s)
"""


# Set-up -----------------------------------------------------------------------


def prepare_database(owner_server_url: str) -> str:
    """Create the database and its two tables afresh, and return the owner URL."""
    import psycopg

    with psycopg.connect(f"{owner_server_url}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    owner_url = f"{owner_server_url}/{DATABASE}"
    with psycopg.connect(owner_url, autocommit=True) as conn:
        for statement in SCHEMA:
            conn.execute(statement)
    return owner_url


def floor_environment(database_url: str, broker_url: str) -> dict[str, str]:
    """Return bench/routing.py's process environment, set for bench/floor_app."""
    environment = routing_bench.app_environment(database_url, broker_url)
    python_path = [str(BENCH_DIR)]
    if environment.get("PYTHONPATH"):
        python_path.append(environment["PYTHONPATH"])
    environment |= {
        "DJANGO_SETTINGS_MODULE": "floor_app.settings",
        "PYTHONPATH": os.pathsep.join(python_path),
    }
    return environment


def lead_bodies(count: int, seed: int) -> list[dict]:
    """Return bench/routing.py's lead bodies, so each POST carries the same JSON."""
    domains = [f"customer{n:04d}.example" for n in range(routing_bench.ACCOUNTS)]
    tenant = routing_bench.Tenant(API_KEY, domains)
    return routing_bench.lead_bodies(tenant, count, seed)


# Load and measurement ---------------------------------------------------------


def leads_so_far(conn) -> int:
    return conn.execute("SELECT count(*) FROM floor_lead").fetchone()[0]


def wait_until_routed(conn, expected: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    routed = 0
    while time.monotonic() < deadline:
        routed = conn.execute("SELECT count(*) FROM floor_assignment").fetchone()[0]
        if routed >= expected:
            return
        time.sleep(0.2)
    raise SystemExit(f"Only {routed} of {expected} leads were routed in {timeout} s")


def _cpu_jiffies() -> tuple[int, int]:
    """Return (busy, total) clock ticks of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(value) for value in handle.readline().split()[1:9]]
    # user nice system idle iowait irq softirq steal: guest time is already
    # counted in user and nice, so the first eight fields are the total.
    idle = fields[3] + fields[4]
    total = sum(fields)
    return total - idle, total


class MachineCpu:
    """CPU use of the whole machine and of the processes outside CpuMeter.

    Shares are percentages of all CPU time of the machine between start and
    stop: ``busy_percent`` of every process, ``benchmark_percent`` of the
    gunicorn, Celery, PostgreSQL and Redis trees and this script (its sender
    threads). The difference is other work on the machine.
    """

    def __init__(self, processes) -> None:
        self.pids = {name: process.pid for name, process in processes.started}
        self.start_jiffies = _cpu_jiffies()
        self.start_seconds = self._read()
        self.used: dict[str, float] = {}
        self.busy_percent = 0.0
        self.benchmark_percent = 0.0

    def _read(self) -> dict[str, float]:
        own = os.times()
        tree = routing_bench._cpu_seconds_of_tree
        return {
            "database": tree(self.pids["postgres"]) + tree(self.pids["redis"]),
            "sender": own.user + own.system,
            "app": sum(
                tree(pid)
                for name, pid in self.pids.items()
                if name == "gunicorn" or name.startswith("celery")
            ),
        }

    def stop(self) -> None:
        busy, total = _cpu_jiffies()
        end = self._read()
        self.used = {name: end[name] - self.start_seconds[name] for name in end}
        elapsed_ticks = max(total - self.start_jiffies[1], 1)
        self.busy_percent = 100 * (busy - self.start_jiffies[0]) / elapsed_ticks
        benchmark_ticks = sum(self.used.values()) * routing_bench.CLOCK_TICKS
        self.benchmark_percent = 100 * benchmark_ticks / elapsed_ticks

    def per_lead_ms(self, name: str, leads: int) -> float:
        return self.used[name] * 1000 / max(leads, 1)


@dataclass
class RateResult:
    rate: int
    sent: list
    latencies_ms: list[float]
    post_ms: list[float]
    send_lag_ms: float
    leads: int
    assignments: int
    web_cpu_ms: float
    worker_cpu_ms: float
    database_cpu_ms: float
    sender_cpu_ms: float
    machine_busy_percent: float
    benchmark_busy_percent: float
    load_after: float


def measure(rate: int, seconds: int, port: int, conn, processes) -> RateResult:
    """Send ``rate * seconds`` leads at ``rate`` leads/s and time their routing."""
    bodies = lead_bodies(rate * seconds, seed=rate)
    cpu = routing_bench.CpuMeter(processes)
    machine = MachineCpu(processes)
    sent = routing_bench.post_at_rate(port, API_KEY, bodies, rate)
    accepted = [s for s in sent if s.status == 201]
    wait_until_routed(conn, leads_so_far(conn))
    cpu.stop()
    machine.stop()

    rows = conn.execute(LATENCY_SQL, [[s.key for s in accepted]]).fetchall()
    if any(
        lead_commit is None or route_commit is None
        for _, lead_commit, route_commit in rows
    ):
        raise SystemExit(
            "pg_xact_commit_timestamp returned NULL: the server must run with "
            "track_commit_timestamp=on from before the leads were sent"
        )
    latencies = [
        (route_commit - lead_commit).total_seconds() * 1000
        for _, lead_commit, route_commit in rows
    ]
    return RateResult(
        rate=rate,
        sent=sent,
        latencies_ms=latencies,
        post_ms=[(s.answered - s.sent) * 1000 for s in accepted],
        send_lag_ms=max((s.sent - s.due) * 1000 for s in sent),
        leads=len(accepted),
        assignments=len(rows),
        web_cpu_ms=cpu.web_ms(len(accepted)),
        worker_cpu_ms=cpu.worker_ms(len(accepted)),
        database_cpu_ms=machine.per_lead_ms("database", len(accepted)),
        sender_cpu_ms=machine.per_lead_ms("sender", len(accepted)),
        machine_busy_percent=machine.busy_percent,
        benchmark_busy_percent=machine.benchmark_percent,
        load_after=os.getloadavg()[0],
    )


def check(result: RateResult) -> None:
    """Stop when a POST failed, or a lead was lost or routed twice."""
    failed = [s.status for s in result.sent if s.status != 201]
    if failed:
        raise SystemExit(f"{len(failed)} POSTs failed, statuses {sorted(set(failed))}")
    if result.assignments != result.leads:
        raise SystemExit(
            f"{result.leads} leads accepted but {result.assignments} routed"
        )


def print_result(result: RateResult) -> None:
    print(
        f"{result.rate} leads/s: {result.leads} accepted, {result.assignments} "
        f"routed, p50 {percentile(result.latencies_ms, 50):.1f} ms, "
        f"p99 {percentile(result.latencies_ms, 99):.1f} ms, "
        f"max {max(result.latencies_ms):.1f} ms, "
        f"POST p50 {percentile(result.post_ms, 50):.1f} ms, "
        f"max send lag {result.send_lag_ms:.1f} ms, CPU per lead "
        f"{result.web_cpu_ms:.1f} ms web + {result.worker_cpu_ms:.1f} ms worker + "
        f"{result.database_cpu_ms:.1f} ms PostgreSQL and Redis + "
        f"{result.sender_cpu_ms:.1f} ms sender, CPU busy "
        f"{result.benchmark_busy_percent:.0f}% benchmark, "
        f"{result.machine_busy_percent:.0f}% machine"
    )


# Report -----------------------------------------------------------------------

FLOOR_EXPLANATION = (
    "The floor is what the fixed stack costs a lead when no product code "
    "runs. That is gunicorn's HTTP handling, Django's WSGI handler and URL "
    "resolution, one INSERT and COMMIT through psycopg 3, and a Celery "
    "publish to Redis on commit. Then come the worker's consume, decode and "
    "ack, and the task's own INSERT and COMMIT. Lead routing built this way "
    "(a request that commits, then a task that commits) cannot be faster or "
    "cheaper than this on the same machine. The product adds its middleware, "
    "API key authentication, validation, qualification, routing rules and "
    "row-level security. So at a rate that saturates neither, a Lead "
    "routing section's latency and CPU per lead minus this section's, under "
    "similar load, estimate the product's share. Machine CPU busy counts "
    "every process. Benchmark CPU busy counts the gunicorn, Celery, "
    "PostgreSQL and Redis trees and the sender threads, so the difference "
    "between the two is other work on the machine."
)


def write_report(results, pg_floor, redis_floor, load_before, server, commit, seconds):
    lines = [
        "",
        f"## Lead routing stack floor, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "bench/routing_floor.py: the harness of bench/routing.py around a minimal "
        "application (bench/floor_app) in place of the product. Leads were POSTed "
        f"over loopback at a fixed rate for {seconds} s each, open loop, by "
        f"{routing_bench.SENDERS} sender threads. gunicorn ran "
        f"{routing_bench.WEB_WORKERS} sync workers of a Django view with no "
        "middleware, which INSERTs and COMMITs one row and publishes one Celery "
        f"task on commit. {routing_bench.ROUTING_PROCESSES} Celery worker "
        "processes (solo pool) took the routing queue from Redis, and each task "
        "INSERTs and COMMITs one row that refers to the first. Both connect as "
        "the database owner, without row-level security. Latency is the time "
        "from the view's commit to the task's commit (pg_xact_commit_timestamp), "
        "with nearest-rank percentiles. CPU per lead is the user and system CPU "
        "time of a process tree during the rate, over its leads: gunicorn (web), "
        "Celery (worker), PostgreSQL and Redis together, and this script with "
        "its sender threads (sender). CPU busy is the share of all CPU time of "
        "the machine over the same time: benchmark for those processes, "
        "machine for every process (from /proc/stat). Load after is the "
        "1-minute load average once the rate's leads were all routed.",
        "",
        FLOOR_EXPLANATION,
        "",
        "| | |",
        "| --- | --- |",
        f"| git commit | {commit} |",
        *(f"| {name} | {value} |" for name, value in routing_bench.hardware_rows()),
        "| load average before the run (1, 5, 15 min) | "
        + ", ".join(f"{value:.2f}" for value in load_before)
        + " |",
        f"| PostgreSQL | {server} |",
        "",
        "| leads/s | leads | routed | p50 ms | p99 ms | max ms | POST p50 ms "
        "| POST p99 ms | max send lag ms | web CPU ms per lead "
        "| worker CPU ms per lead | PostgreSQL and Redis CPU ms per lead "
        "| sender CPU ms per lead | benchmark CPU busy % | machine CPU busy % "
        "| load after |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        lines.append(
            f"| {result.rate} | {result.leads} | {result.assignments} "
            f"| {percentile(result.latencies_ms, 50):.1f} "
            f"| {percentile(result.latencies_ms, 99):.1f} "
            f"| {max(result.latencies_ms):.1f} "
            f"| {percentile(result.post_ms, 50):.1f} "
            f"| {percentile(result.post_ms, 99):.1f} | {result.send_lag_ms:.1f} "
            f"| {result.web_cpu_ms:.1f} | {result.worker_cpu_ms:.1f} "
            f"| {result.database_cpu_ms:.1f} | {result.sender_cpu_ms:.1f} "
            f"| {result.benchmark_busy_percent:.0f} "
            f"| {result.machine_busy_percent:.0f} | {result.load_after:.2f} |"
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


# Main -------------------------------------------------------------------------


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds",
        type=int,
        default=routing_bench.SECONDS,
        help="Seconds of load per rate.",
    )
    parser.add_argument(
        "--rates",
        default=",".join(str(rate) for rate in routing_bench.RATES),
        help="Comma-separated rates in leads/s, such as 10,50.",
    )
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="Print the results only, without appending them to docs/benchmarks.md.",
    )
    arguments = parser.parse_args()
    try:
        arguments.rates = [int(rate) for rate in arguments.rates.split(",")]
    except ValueError:
        parser.error(
            f"--rates: expected integers separated by commas, got {arguments.rates!r}"
        )
    if any(rate <= 0 for rate in arguments.rates) or arguments.seconds <= 0:
        parser.error("--rates and --seconds must be positive")
    return arguments


def run(arguments, processes, work_dir: Path, load_before) -> None:
    import psycopg

    server_url = routing_bench.start_postgres(processes, work_dir)
    broker_url = routing_bench.start_redis(processes, work_dir)
    owner_url = prepare_database(server_url)
    environment = floor_environment(owner_url, broker_url)
    port = routing_bench.start_web(processes, environment, application="floor_app.wsgi")
    routing_bench.start_workers(processes, environment, celery_app="floor_app")

    with psycopg.connect(owner_url, autocommit=True) as conn:
        print("Warming up")
        warm_up = lead_bodies(routing_bench.WARM_UP_LEADS, seed=0)
        routing_bench.post_at_rate(port, API_KEY, warm_up, 50)
        wait_until_routed(conn, leads_so_far(conn))

        results = []
        for rate in arguments.rates:
            result = measure(rate, arguments.seconds, port, conn, processes)
            print_result(result)
            check(result)
            results.append(result)
        server = conn.execute("SHOW server_version").fetchone()[0]

    pg_floor = routing_bench.postgres_commit_floor(owner_url)
    redis_floor = routing_bench.redis_round_trip_floor(broker_url)
    print(
        f"PostgreSQL commit p50 {percentile(pg_floor, 50):.2f} ms, "
        f"Redis round trip p50 {percentile(redis_floor, 50):.3f} ms"
    )
    if not arguments.no_report:
        import report

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


def main() -> None:
    arguments = parse_arguments()
    load_before = os.getloadavg()
    print("Load average before the run: " + ", ".join(f"{v:.2f}" for v in load_before))
    with tempfile.TemporaryDirectory(prefix="attain-bench-floor-") as folder:
        work_dir = Path(folder)
        processes = routing_bench.Processes(work_dir)
        try:
            run(arguments, processes, work_dir, load_before)
        finally:
            processes.stop_all()


if __name__ == "__main__":
    main()
