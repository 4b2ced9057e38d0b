"""Benchmark coaching rule evaluation: every built-in rule for 200 reps.

    make bench-coaching     # or: .venv/bin/python bench/coaching.py

The database is DATABASE_URL, by default
postgres://postgres@127.0.0.1:5432/attain_bench_coaching. The script migrates
it and creates the tenant "bench-coaching" when missing: 200 reps with two
years of deals, activities and leads from ``activity.generator`` (fixed seed
and base date), plus quotas and activity benchmarks from ``goals.demo``. It
then times ``coaching.services.evaluate_rules`` in process: first with no
alerts (every alert is created), then again over the existing alerts (every
alert is updated), and once per rule. The results, with the hardware, are
appended to docs/benchmarks.md.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

os.environ["DJANGO_SETTINGS_MODULE"] = "spm.settings"
os.environ["DEBUG"] = "1"
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/attain_bench_coaching"
)

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent), str(BENCH_DIR)]

import generate_tenant  # noqa: E402
import report  # noqa: E402

SLUG = "bench-coaching"
# The generated data ends the day before BASE_DATE, and the rules are
# evaluated on BASE_DATE at noon: day 78 of the fiscal quarter that starts
# on 1 April, so the attainment rule judges every rep.
BASE_DATE = dt.date(2025, 6, 17)
FISCAL_YEAR_START_MONTH = 7
SEED = 2025
SCALE = generate_tenant.Scale(reps=200, deals=60_000, activities=600_000, leads=20_000)
RUNS = 5
TARGET_SECONDS = 60


@dataclass(frozen=True)
class Series:
    name: str
    seconds: list[float]
    queries: list[int]
    alerts: int

    def percentile(self, percent: float) -> float:
        """Return the nearest-rank percentile of the run times."""
        ordered = sorted(self.seconds)
        return ordered[max(math.ceil(percent / 100 * len(ordered)) - 1, 0)]


@dataclass(frozen=True)
class Tenant:
    organization: object
    generation_seconds: float | None
    deals: int
    activities: int


def ensure_tenant() -> Tenant:
    """Return the tenant "bench-coaching", generating it first when missing."""
    from django.test.utils import override_settings

    from activity.models import Activity, Deal
    from spm.models import Organization

    organization = Organization.objects.filter(slug=SLUG).first()
    if organization is not None:
        deals = Deal.unscoped.filter(organization=organization).count()
        activities = Activity.unscoped.filter(organization=organization).count()
        return Tenant(organization, None, deals, activities)
    # With DEBUG on, Django would keep the SQL of every inserted row.
    with override_settings(DEBUG=False):
        return _generate()


def _generate() -> Tenant:
    from django.db import transaction

    from activity.generator import generate_organization_data
    from goals.demo import create_demo_targets
    from spm.services import organization_create
    from spm.tenancy import tenant_context

    started = time.perf_counter()
    with transaction.atomic():
        organization = organization_create(
            name="Bench Coaching",
            slug=SLUG,
            time_zone="America/Chicago",
            fiscal_year_start_month=FISCAL_YEAR_START_MONTH,
        )
        summary = generate_organization_data(
            organization=organization,
            today=BASE_DATE,
            reps=SCALE.reps,
            deals=SCALE.deals,
            activities=SCALE.activities,
            leads=SCALE.leads,
            seed=SEED,
        )
        with tenant_context(organization):
            create_demo_targets(
                organization=organization, reps=summary.reps, today=BASE_DATE
            )
    seconds = time.perf_counter() - started
    return Tenant(organization, seconds, summary.deals, summary.activities)


def _now(organization) -> dt.datetime:
    return dt.datetime.combine(BASE_DATE, dt.time(12), tzinfo=organization.zoneinfo)


def _timed_evaluation(organization) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from coaching.services import evaluate_rules

    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        evaluate_rules(organization, today=BASE_DATE, now=_now(organization))
        seconds = time.perf_counter() - started
    return seconds, len(captured.captured_queries)


def _alert_count(organization) -> int:
    from coaching.models import Alert

    return Alert.unscoped.filter(organization=organization).count()


def _clear_alerts(organization) -> None:
    from coaching.models import Alert

    Alert.unscoped.filter(organization=organization).delete()


def evaluation_series(organization) -> list[Series]:
    """Time RUNS evaluations from no alerts, then RUNS over existing alerts."""
    _clear_alerts(organization)
    _timed_evaluation(organization)  # warm-up: caches and connection
    fresh_seconds, fresh_queries = [], []
    for _ in range(RUNS):
        _clear_alerts(organization)
        seconds, queries = _timed_evaluation(organization)
        fresh_seconds.append(seconds)
        fresh_queries.append(queries)
    alerts = _alert_count(organization)
    again_seconds, again_queries = [], []
    for _ in range(RUNS):
        seconds, queries = _timed_evaluation(organization)
        again_seconds.append(seconds)
        again_queries.append(queries)
    reps = SCALE.reps
    fresh = Series(
        f"All rules, {reps} reps, no alerts yet", fresh_seconds, fresh_queries, alerts
    )
    again = Series(
        f"All rules, {reps} reps, alerts exist", again_seconds, again_queries, alerts
    )
    return [fresh, again]


def per_rule(organization) -> list[tuple[str, float, int, int]]:
    """Return (rule, seconds, queries, alerts) of one reading of each rule."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from coaching.engine import measure_rule
    from coaching.models import Rule
    from coaching.services import evaluation_context
    from spm.tenancy import tenant_context

    rows = []
    with tenant_context(organization):
        ctx = evaluation_context(organization, BASE_DATE, _now(organization))
        for rule in Rule.objects.filter(is_active=True).order_by("pk"):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                result = measure_rule(ctx, rule)
                seconds = time.perf_counter() - started
            breached = sum(1 for v in result.verdicts.values() if v.breached)
            rows.append((rule.name, seconds, len(captured.captured_queries), breached))
    return rows


def append_results(tenant, load_average, series, rules) -> Path:
    intro = (
        "bench/coaching.py: `coaching.services.evaluate_rules` for the tenant "
        f'"{SLUG}" ({SCALE.reps} reps in teams of about five, {SCALE.leads:,} '
        "leads, quotas and activity benchmarks from goals/demo.py), evaluated "
        f"on {BASE_DATE.isoformat()} at noon, in process, {RUNS} timed runs "
        "per series after one warm-up, nearest-rank percentiles. Queries "
        "include the alert writes. Rules on the same date range share one "
        "read of measurement.progress, so the attainment rule reuses the "
        "coverage rule's and runs no query of its own."
    )
    lines = [
        "",
        f"## Coaching rule evaluation, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        *textwrap.wrap(intro, width=79, break_on_hyphens=False),
        "",
        *report._environment_table(tenant, load_average),
        "",
        "| measurement | runs | p50 s | p95 s | max s | queries | alerts "
        "| target | met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for item in series:
        p95 = item.percentile(95)
        queries = sorted(set(item.queries))
        query_text = str(queries[0])
        if len(queries) > 1:
            query_text = f"{queries[0]}-{queries[-1]}"
        met = "yes" if p95 < TARGET_SECONDS else "no"
        lines.append(
            f"| {item.name} | {len(item.seconds)} | {item.percentile(50):.2f} "
            f"| {p95:.2f} | {max(item.seconds):.2f} | {query_text} | {item.alerts} "
            f"| < {TARGET_SECONDS} s | {met} |"
        )
    lines += [
        "",
        "| rule (one reading, no writes) | seconds | queries | reps breaching |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, seconds, queries, breached in rules:
        lines.append(f"| {name} | {seconds:.2f} | {queries} | {breached} |")
    with report.RESULTS.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return report.RESULTS


def main() -> None:
    load_average = os.getloadavg()
    generate_tenant.setup_django()
    generate_tenant.require_postgresql()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    tenant = ensure_tenant()
    if tenant.generation_seconds is not None:
        print(f"Generated the tenant {SLUG!r} in {tenant.generation_seconds:.0f} s.")
    generate_tenant.analyze()

    series = evaluation_series(tenant.organization)
    for item in series:
        print(
            f"{item.name}: p50 {item.percentile(50):.2f} s, p95 "
            f"{item.percentile(95):.2f} s, {item.queries[-1]} queries, "
            f"{item.alerts} alerts"
        )
    rules = per_rule(tenant.organization)
    for name, seconds, queries, breached in rules:
        print(f"  {name}: {seconds:.2f} s, {queries} queries, {breached} breaching")
    path = append_results(tenant, load_average, series, rules)
    print(f"Results appended to {path}.")


if __name__ == "__main__":
    main()
