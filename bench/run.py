"""Benchmark the team dashboard, the rep metrics API and the CSV import.

    make bench            # or: .venv/bin/python bench/run.py

The database is DATABASE_URL, by default
postgres://postgres@127.0.0.1:5432/attain_bench. The script migrates it,
creates the benchmark tenant when missing (bench/generate_tenant.py: 50 reps,
100,000 deals, 1,000,000 activities), then times requests in process with the
Django test client: 3 warm-up requests, then 30 timed ones per URL. It
appends the results, with the commit and the hardware, to docs/benchmarks.md.
No request leaves the process.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ["DJANGO_SETTINGS_MODULE"] = "spm.settings"
os.environ["DEBUG"] = "1"
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/attain_bench")

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent), str(BENCH_DIR)]

import generate_tenant  # noqa: E402
import report  # noqa: E402

WARM_UPS = 3
REQUESTS = 30
IMPORT_DEALS = 100_000
IMPORT_SLUG = "bench-import"
DASHBOARD_TARGET_MS = 300
IMPORT_TARGET_S = 15


@dataclass(frozen=True)
class Timing:
    name: str
    milliseconds: list[float]
    queries: list[int]

    def percentile(self, percent: float) -> float:
        """Return the nearest-rank percentile of the request times."""
        ordered = sorted(self.milliseconds)
        return ordered[max(math.ceil(percent / 100 * len(ordered)) - 1, 0)]


def time_requests(client, name: str, url: str, **headers: str) -> Timing:
    """Request ``url`` WARM_UPS times untimed, then REQUESTS times timed."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(WARM_UPS):
        _check(client.get(url, **headers), url)
    milliseconds, queries = [], []
    for _ in range(REQUESTS):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url, **headers)
            elapsed = time.perf_counter() - started
        _check(response, url)
        milliseconds.append(elapsed * 1000)
        queries.append(len(captured.captured_queries))
    timing = Timing(name, milliseconds, queries)
    print(
        f"{name}: p50 {timing.percentile(50):.0f} ms, "
        f"p95 {timing.percentile(95):.0f} ms, {queries[-1]} queries"
    )
    return timing


def _check(response, url: str) -> None:
    if response.status_code != 200:
        raise SystemExit(
            f"GET {url} returned {response.status_code}, expected 200: "
            "fix the page before benchmarking it."
        )


def dashboard_timings(tenant) -> list[Timing]:
    """Time the team dashboard as the admin, for a quarter, a year and one team."""
    from django.test import Client
    from django.urls import reverse

    from goals.calendar import fiscal_quarter_range, fiscal_year_range
    from spm.models import Team
    from spm.tenancy import tenant_context

    organization = tenant.organization
    last_day = generate_tenant.LAST_DATA_DAY
    start_month = organization.fiscal_year_start_month
    quarter = fiscal_quarter_range(last_day, start_month)
    year = fiscal_year_range(last_day, start_month)
    with tenant_context(organization):
        team = Team.objects.order_by("name").first()
        team_size = team.members.filter(role="rep").count()

    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(tenant.admin)
    url = reverse("measurement:team", kwargs={"org_slug": organization.slug})
    funnel_url = reverse(
        "measurement:team-funnel", kwargs={"org_slug": organization.slug}
    )
    on = last_day.isoformat()
    return [
        time_requests(
            client,
            f"Team dashboard, {quarter.label}, all 50 reps",
            f"{url}?kind=quarter&on={on}",
        ),
        time_requests(
            client,
            f"Team dashboard, {year.label}, all 50 reps",
            f"{url}?kind=year&on={on}",
        ),
        time_requests(
            client,
            f"Team dashboard, {quarter.label}, one team of {team_size} reps",
            f"{url}?kind=quarter&on={on}&team={team.public_id}",
        ),
        # The page loads its conversion funnel in this second request.
        time_requests(
            client,
            f"Conversion funnel of the dashboard, {quarter.label}, all 50 reps",
            f"{funnel_url}?kind=quarter&on={on}",
        ),
        time_requests(
            client,
            f"Conversion funnel of the dashboard, {year.label}, all 50 reps",
            f"{funnel_url}?kind=year&on={on}",
        ),
    ]


def api_timing(tenant) -> Timing:
    """Time the rep metrics API with an API key, for the latest quarter."""
    from django.test import Client
    from django.urls import reverse

    from goals.calendar import fiscal_quarter_range
    from spm.services import api_key_create, api_key_revoke

    organization = tenant.organization
    quarter = fiscal_quarter_range(
        generate_tenant.LAST_DATA_DAY, organization.fiscal_year_start_month
    )
    api_key, key = api_key_create(organization=organization, name="bench/run.py")
    url = (
        f"{reverse('api-rep-metrics')}?start={quarter.start.isoformat()}"
        f"&end={quarter.end.isoformat()}"
    )
    try:
        return time_requests(
            Client(SERVER_NAME="127.0.0.1"),
            f"Rep metrics API, {quarter.label}, all 50 reps",
            url,
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
    finally:
        # The key only served this run.
        api_key_revoke(api_key=api_key)


def import_seconds() -> float | None:
    """Time import_csv on a generated Maven export of 100,000 deals, into a
    fresh organisation. Return None when the command is not installed."""
    from django.core.management import call_command, get_commands
    from maven_csv import write_maven_export

    from spm.models import Organization
    from spm.services import organization_create, organization_delete

    if "import_csv" not in get_commands():
        print("The import_csv command is not installed: import benchmark skipped.")
        return None
    # The organisation of the previous run is kept until now, for inspection.
    for organization in Organization.objects.filter(slug=IMPORT_SLUG):
        organization_delete(organization=organization)
    organization_create(name="Bench import", slug=IMPORT_SLUG)
    with tempfile.TemporaryDirectory(prefix="attain-bench-") as folder:
        paths = write_maven_export(Path(folder), deals=IMPORT_DEALS)
        arguments = ["--organization", IMPORT_SLUG, "--preset", "maven"]
        started = time.perf_counter()
        call_command("import_csv", *arguments, *map(str, paths), "--skip-invalid")
        seconds = time.perf_counter() - started
    print(f"CSV import of {IMPORT_DEALS:,} deals: {seconds:.1f} s")
    return seconds


def main() -> None:
    # Other processes on the machine slow the requests, so the report states
    # the load average from before the run.
    load_average = os.getloadavg()
    generate_tenant.setup_django()
    generate_tenant.require_postgresql()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    tenant = generate_tenant.ensure_bench_tenant()
    if tenant.generation_seconds is not None:
        print(f"Generated the benchmark tenant in {tenant.generation_seconds:.0f} s.")
    generate_tenant.analyze()

    timings = [*dashboard_timings(tenant), api_timing(tenant)]
    path = report.append_run(
        tenant=tenant,
        load_average=load_average,
        timings=timings,
        import_seconds=import_seconds(),
        import_deals=IMPORT_DEALS,
        dashboard_target_ms=DASHBOARD_TARGET_MS,
        import_target_s=IMPORT_TARGET_S,
    )
    print(f"Results appended to {path}.")


if __name__ == "__main__":
    main()
