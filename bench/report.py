"""Append one benchmark run, with the machine it ran on, to docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "benchmarks.md"

HEADER = """# Benchmarks

`make bench` (bench/run.py) appends one section per run, newest last. Each
section names the commit and the machine, then gives every measurement
against its target. Request times are wall-clock milliseconds of the Django
test client in the benchmark process: 3 warm-up requests, then 30 timed
ones, with nearest-rank percentiles. The query count includes the session
and membership lookups of the request. The tenant is bench/generate_tenant.py:
50 reps in 10 teams, 100,000 deals, 1,000,000 activities and 20,000 leads
from 2023-07-01 to 2025-06-30, generated with a fixed seed. The database is
vacuumed and analyzed before the requests.

Targets on a 2-core machine: team dashboard p95 under 300 ms with a query
count independent of the number of reps; CSV import of 100,000 deals under
15 s.
"""


def append_run(
    *,
    tenant,
    load_average: tuple[float, float, float],
    timings: list,
    import_seconds: float | None,
    import_deals: int,
    dashboard_target_ms: float,
    import_target_s: float,
) -> Path:
    """Append a section for this run to RESULTS and return its path."""
    lines = [
        "",
        f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        *_environment_table(tenant, load_average),
        "",
        "| measurement | requests | p50 ms | p95 ms | max ms "
        "| queries per request | target | met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for timing in timings:
        lines.append(_timing_row(timing, dashboard_target_ms))
    lines += ["", *_import_table(import_seconds, import_deals, import_target_s)]

    if not RESULTS.exists():
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(HEADER, encoding="utf-8")
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return RESULTS


def _environment_table(tenant, load_average: tuple[float, ...]) -> list[str]:
    if tenant.generation_seconds is None:
        generation = "reused from an earlier run"
    else:
        generation = f"generated in {tenant.generation_seconds:.0f} s by this run"
    rows = [
        ("git commit", _commit()),
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} cores"),
        ("memory", _memory()),
        (
            "load average before the run (1, 5, 15 min)",
            ", ".join(f"{value:.2f}" for value in load_average),
        ),
        ("PostgreSQL", _postgresql_version()),
        (
            "tenant",
            f"{tenant.deals:,} deals and {tenant.activities:,} activities, "
            f"{generation}",
        ),
    ]
    return ["| | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)]


def _timing_row(timing, target_ms: float) -> str:
    queries = sorted(set(timing.queries))
    query_text = str(queries[0]) if len(queries) == 1 else f"{queries[0]}-{queries[-1]}"
    p95 = timing.percentile(95)
    target, met = "none set", ""
    if timing.name.startswith("Team dashboard"):
        target = f"p95 < {target_ms:.0f} ms"
        met = "yes" if p95 < target_ms else "no"
    return (
        f"| {timing.name} | {len(timing.milliseconds)} "
        f"| {timing.percentile(50):.0f} | {p95:.0f} "
        f"| {max(timing.milliseconds):.0f} | {query_text} | {target} | {met} |"
    )


def _import_table(seconds: float | None, deals: int, target_s: float) -> list[str]:
    name = f"CSV import of {deals:,} deals, Maven format, into a new organisation"
    header = ["| measurement | seconds | rows per second | target | met |"]
    header.append("| --- | ---: | ---: | --- | --- |")
    if seconds is None:
        return [*header, f"| {name} | skipped: import_csv not installed | | | |"]
    met = "yes" if seconds < target_s else "no"
    return [
        *header,
        f"| {name} | {seconds:.1f} | {deals / seconds:,.0f} | < {target_s:.0f} s "
        f"| {met} |",
    ]


def _commit() -> str:
    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    # The results file itself changes with every run, so it does not count.
    if git("status", "--porcelain", "--", ".", ":!docs/benchmarks.md"):
        commit += " with uncommitted changes"
    return commit


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kilobytes = int(line.split()[1])
                return f"{kilobytes / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _postgresql_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]
