"""Benchmark a full CRM sync of 100,000 records from the fake HubSpot.

    make bench-sync     # or: .venv/bin/python bench/sync.py

The fake HubSpot server of the tests (tests/integrations/fake_hubspot.py)
runs in a child process on 127.0.0.1, with a port the OS picks, as a real
CRM runs on another machine: the fake and the sync then hold separate
Python interpreter locks, but they still share the machine's cores. It
contains 100,000 records (RECORDS) owned by 50 CRM owners, who match the 50
reps of the organisation "bench-sync" by email. The script measures three
things:

- the ceiling: a plain ``requests`` client in this process pages through
  every object type of the fake, as the connector lists them, and writes
  nothing;
- the sync: ``integrations.sync.sync_run_execute`` runs one full sync into
  the empty organisation, in this process, writing to PostgreSQL;
- the sync engine alone: the same full sync into a second empty
  organisation ("bench-sync-engine"), from a connector that serves the same
  records as pages built in memory, so no HTTP request is sent. This
  process fills its own copy of the fake, without serving it, to build them.

The fake filters and sorts every record of an object type for each listing
request, so its time per page grows with the portal. At 100,000 records it
can be slower than the sync engine, and the third measurement then shows
the engine's own rate.

All three lift the rate limits (HubSpot allows 100 or 190 requests per 10 s, see
integrations.selectors.API_LIMITS), so they measure processing speed rather
than the provider's limit. With 100 records per listing page, those limits
alone cap a real full sync at 1,000 or 1,900 records/s.

The database is DATABASE_URL, by default
postgres://postgres@127.0.0.1:5432/attain_bench_sync, created when missing
and migrated. Each run first deletes both organisations and their rows. The
results, with the hardware, are appended to docs/benchmarks.md.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import urlparse

os.environ["DJANGO_SETTINGS_MODULE"] = "spm.settings"
# DEBUG stays off, as in production: with it on, Django formats the SQL of
# every statement, with its page of records, for its query log.
os.environ["DEBUG"] = "0"
os.environ.setdefault("SECRET_KEY", "bench-sync-only-secret-key")
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/attain_bench_sync"
)
os.environ.setdefault("ATTAIN_CREDENTIALS_KEY", "bench-sync-credentials-key")

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent), str(BENCH_DIR)]

import report  # noqa: E402

SLUG = "bench-sync"
ENGINE_SLUG = "bench-sync-engine"
TOKEN = "pat-bench-sync-token"
REPS = 50
# Records per object type, 100,000 in all.
RECORDS = {
    "companies": 10_000,
    "contacts": 30_000,
    "deals": 30_000,
    "calls": 15_000,
    "emails": 10_000,
    "meetings": 5_000,
}
NO_LIMIT = (10**9, 10.0)
STAGES = [
    ("qualified", "Qualified", False, "0.2"),
    ("proposal", "Proposal", False, "0.6"),
    ("closedwon", "Closed Won", True, "1.0"),
    ("closedlost", "Closed Lost", True, "0.0"),
]


def ensure_database() -> None:
    """Create the database that DATABASE_URL names when it does not exist."""
    import psycopg

    url = urlparse(os.environ["DATABASE_URL"])
    name = url.path.lstrip("/")
    server = url._replace(path="/postgres").geturl()
    with psycopg.connect(server, autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not found:
            conn.execute(f'CREATE DATABASE "{name}"')


def fill_fake(fake) -> None:
    """Add owners, one pipeline and RECORDS to the fake, with fixed values."""
    base = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    fake.add_token(TOKEN)
    for number in range(REPS):
        fake.add_owner(
            str(number + 1), f"rep{number}@bench-sync.test", "Rep", str(number)
        )
    fake.add_pipeline("default", "Sales Pipeline", STAGES)
    next_id = 1
    for object_type, count in RECORDS.items():
        for index in range(count):
            owner = str(index % REPS + 1)
            moment = base + dt.timedelta(minutes=index)
            properties = _properties(object_type, index, moment, owner)
            associations = None
            if object_type == "deals":
                associations = {"companies": [str(1 + index % RECORDS["companies"])]}
            fake.add(
                object_type,
                str(next_id),
                modified_at=moment,
                associations=associations,
                **properties,
            )
            next_id += 1


def _properties(object_type: str, index: int, moment: dt.datetime, owner: str):
    stamp = moment.isoformat().replace("+00:00", "Z")
    if object_type == "companies":
        return {
            "name": f"Company {index}",
            "domain": f"company{index}.test",
            "industry": "Software",
            "country": "DE",
            "hubspot_owner_id": owner,
        }
    if object_type == "contacts":
        return {
            "firstname": "Pat",
            "lastname": f"Contact {index}",
            "email": f"pat{index}@company{index % RECORDS['companies']}.test",
            "associatedcompanyid": str(1 + index % RECORDS["companies"]),
            "hubspot_owner_id": owner,
            "createdate": stamp,
        }
    if object_type == "deals":
        return {
            "dealname": f"Deal {index}",
            "amount": str(1000 + index % 9000),
            "deal_currency_code": "USD",
            "pipeline": "default",
            "dealstage": STAGES[index % len(STAGES)][0],
            "closedate": moment.date().isoformat(),
            "createdate": stamp,
            "hubspot_owner_id": owner,
        }
    subject = {
        "calls": "hs_call_title",
        "emails": "hs_email_subject",
        "meetings": "hs_meeting_title",
    }[object_type]
    return {
        subject: f"{object_type} {index}",
        "hs_timestamp": stamp,
        "hubspot_owner_id": owner,
    }


class FakeProcess:
    """The fake HubSpot, filled by ``fill_fake`` and served by a child process."""

    def __init__(self) -> None:
        # A spawned child starts a fresh interpreter, so it shares neither
        # the lock of this one nor its database connection.
        context = multiprocessing.get_context("spawn")
        self._pipe, child_pipe = context.Pipe()
        self._process = context.Process(
            target=serve_fake, args=(child_pipe,), name="fake-hubspot", daemon=True
        )
        self.url = ""

    def start(self) -> FakeProcess:
        self._process.start()
        if not self._pipe.poll(120):
            raise SystemExit("The fake HubSpot process did not start within 120 s.")
        self.url = self._pipe.recv()
        return self

    def stop(self) -> None:
        if not self._process.is_alive():
            return
        self._pipe.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()


def serve_fake(pipe) -> None:
    """Fill the fake HubSpot, send its URL through ``pipe`` and serve it.

    Run in the child process. It serves until the parent sends a message or
    closes its end of the pipe.
    """
    from tests.integrations.fake_hubspot import FakeHubSpot

    fake = FakeHubSpot(burst_limit=NO_LIMIT, search_limit=NO_LIMIT)
    fill_fake(fake)
    fake.start()
    pipe.send(fake.url)
    try:
        pipe.recv()
    except EOFError:
        pass
    fake.stop()


def measure_ceiling(fake) -> tuple[float, int, int]:
    """Page through every object type as the connector does, writing nothing.

    Return (seconds, records, requests).
    """
    import requests

    from integrations.connectors import hubspot

    session = requests.Session()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    records = requests_sent = 0
    started = time.perf_counter()
    for object_type in RECORDS:
        after = None
        while True:
            params = {
                "limit": hubspot.LIST_PAGE_SIZE,
                "archived": "false",
                "properties": ",".join(hubspot.PROPERTIES[object_type]),
            }
            if object_type == "deals":
                params["associations"] = "companies"
            if after:
                params["after"] = after
            response = session.get(
                f"{fake.url}/crm/v3/objects/{object_type}",
                params=params,
                headers=headers,
                timeout=30,
            )
            response.raise_for_status()
            data = response.json()
            requests_sent += 1
            records += len(data["results"])
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
    return time.perf_counter() - started, records, requests_sent


def drop_tenant(slug: str) -> None:
    """Delete the organisation ``slug`` and its rows, children first."""
    from activity.models import (
        Account,
        Activity,
        Contact,
        Deal,
        DealStageChange,
        Pipeline,
        Stage,
    )
    from integrations.models import CrmConnection
    from spm.models import AuditLog, Membership, Organization
    from spm.tenancy import tenant_context

    organization = Organization.objects.filter(slug=slug).first()
    if organization is None:
        return
    with tenant_context(organization):
        for model in (
            Activity,
            DealStageChange,
            Deal,
            Contact,
            Account,
            CrmConnection,  # its cursors, runs and mappings cascade
            Stage,
            Pipeline,
            AuditLog,
            Membership,
        ):
            model.objects.all().delete()
    organization.delete()


def create_tenant(slug: str):
    """Create the organisation ``slug`` with REPS reps whose emails match the owners."""
    from spm.models import Membership, Organization
    from spm.tenancy import tenant_context

    organization = Organization.objects.create(name=f"Bench {slug}", slug=slug)
    with tenant_context(organization):
        Membership.objects.bulk_create(
            Membership(
                organization=organization,
                display_name=f"Rep {number}",
                email=f"rep{number}@bench-sync.test",
                role=Membership.Role.REP,
            )
            for number in range(REPS)
        )
    return organization


def http_connector(fake):
    """Return a HubSpot connector for the fake, with the rate limits lifted."""
    from integrations.connectors.hubspot import HubSpotConnector
    from integrations.connectors.ratelimit import RollingWindowLimiter

    return HubSpotConnector(
        base_url=fake.url,
        token=TOKEN,
        limiter=RollingWindowLimiter(*NO_LIMIT),
        search_limiter=RollingWindowLimiter(*NO_LIMIT),
    )


def prepared_connector(fake):
    """Return a connector that serves the records of ``fake`` from pages in memory.

    ``fake`` is a filled FakeHubSpot, which need not be serving. The pages
    hold what a listing of the fake returns: records in id order,
    LIST_PAGE_SIZE to a page, parsed by the HubSpot connector's own parser.
    """
    from integrations.connectors import base, hubspot

    owners = [
        base.Owner(
            owner["id"],
            owner["email"],
            f"{owner['firstName']} {owner['lastName']}".strip(),
        )
        for owner in fake.owners
    ]
    pipelines = [hubspot._pipeline(item) for item in fake.pipelines]
    pages = {}
    for object_type in RECORDS:
        properties = list(hubspot.PROPERTIES[object_type])
        properties.append(hubspot.modified_property(object_type))
        associations = list(hubspot.ASSOCIATIONS.get(object_type, ()))
        records = sorted(fake.objects[object_type].values(), key=lambda r: int(r.id))
        size = hubspot.LIST_PAGE_SIZE
        chunks = [records[i : i + size] for i in range(0, len(records), size)]
        pages[object_type] = [
            base.Page(
                [hubspot._record(r.as_json(properties, associations)) for r in chunk],
                str(number + 1) if number + 1 < len(chunks) else None,
            )
            for number, chunk in enumerate(chunks)
        ]

    class PreparedConnector(base.Connector):
        provider = "hubspot"

        def owners(self):
            return owners

        def pipelines(self):
            return pipelines

        def list_pages(self, object_type, after=None):
            # Object types without records in RECORDS (notes) list nothing.
            yield from pages.get(object_type, [])[int(after or 0) :]

        def changed_pages(self, object_type, since):
            yield from ()

        def archived_pages(self, object_type):
            yield from ()

    return PreparedConnector()


def measure_sync(url: str, slug: str, connector) -> tuple[float, object]:
    """Run one full sync into the new tenant ``slug`` and return (seconds, run).

    ``url`` is the base URL stored on the connection, the fake HubSpot's.
    """
    from integrations import services, sync
    from integrations.models import SyncRun
    from spm.tenancy import tenant_context

    organization = create_tenant(slug)
    with tenant_context(organization):
        connection = services.hubspot_connect(
            organization=organization,
            actor=None,
            name="Bench HubSpot",
            base_url=url,
            access_token=TOKEN,
            api_tier="starter",
        )
        run = sync.sync_run_create(connection=connection, kind=SyncRun.Kind.FULL)
    started = time.perf_counter()
    sync.sync_run_execute(run=run, connector=connector)
    return time.perf_counter() - started, run


def append_results(load_average, ceiling, synced, engine) -> Path:
    ceiling_seconds, ceiling_records, ceiling_requests = ceiling
    sync_seconds, run = synced
    engine_seconds, engine_run = engine
    intro = (
        "bench/sync.py: one full sync of "
        f"{sum(RECORDS.values()):,} records ("
        + ", ".join(f"{count:,} {kind}" for kind, count in RECORDS.items())
        + f") from the fake HubSpot on 127.0.0.1 into an empty organisation of "
        f"{REPS} reps, with `integrations.sync.sync_run_execute` in the bench "
        "process. The fake runs in a child process, so it does not compete "
        "with the sync for one Python interpreter lock, but both share the "
        "machine's cores with PostgreSQL. The ceiling is a plain requests "
        "client in the bench process that pages through the same fake and "
        "writes nothing. The fake filters and sorts every record of a type for "
        "each listing request, so its time per page grows with the portal. The "
        "last row runs the same full sync into a second empty organisation "
        "from pages built in "
        "memory from the fake's records, which measures the sync engine "
        "without HTTP. All run with the rate limits lifted. HubSpot's own limits "
        "of 100 or 190 requests per 10 s would cap a full sync at 1,000 or "
        "1,900 records/s. Other work shared the two cores during the run (see "
        "the load average)."
    )
    lines = [
        "",
        f"## CRM sync, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
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
        "| measurement | records | requests | seconds | records per second |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| Fake HubSpot serving rate (ceiling), no writes | {ceiling_records:,} "
        f"| {ceiling_requests:,} | {ceiling_seconds:.1f} "
        f"| {ceiling_records / ceiling_seconds:,.0f} |",
        f"| Full sync into PostgreSQL | {run.records_done:,} | {run.api_calls:,} "
        f"| {sync_seconds:.1f} | {run.records_done / sync_seconds:,.0f} |",
        f"| Sync engine alone, pages in memory | {engine_run.records_done:,} | 0 "
        f"| {engine_seconds:.1f} "
        f"| {engine_run.records_done / engine_seconds:,.0f} |",
    ]
    with report.RESULTS.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return report.RESULTS


def main() -> None:
    load_average = os.getloadavg()
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    from tests.integrations.fake_hubspot import FakeHubSpot

    call_command("migrate", interactive=False, verbosity=0)
    drop_tenant(SLUG)
    drop_tenant(ENGINE_SLUG)

    fake = FakeProcess()
    try:
        started = time.perf_counter()
        fake.start()
        print(
            "Started and filled the fake HubSpot process in "
            f"{time.perf_counter() - started:.0f} s."
        )
        ceiling = measure_ceiling(fake)
        seconds, records, requests_sent = ceiling
        print(
            f"Ceiling: {records:,} records in {requests_sent:,} requests, "
            f"{seconds:.1f} s, {records / seconds:,.0f} records/s"
        )
        synced = measure_sync(fake.url, SLUG, http_connector(fake))
        seconds, run = synced
        if run.status != "succeeded":
            raise SystemExit(f"The sync failed: {run.failure}")
        print(
            f"Sync: {run.records_done:,} records in {run.api_calls:,} requests, "
            f"{seconds:.1f} s, {run.records_done / seconds:,.0f} records/s"
        )
        # The engine's pages come from a copy of the fake's records, filled here.
        records = FakeHubSpot()
        fill_fake(records)
        engine = measure_sync(fake.url, ENGINE_SLUG, prepared_connector(records))
        seconds, run = engine
        if run.status != "succeeded":
            raise SystemExit(f"The sync from memory failed: {run.failure}")
        print(
            f"Sync engine alone: {run.records_done:,} records, {seconds:.1f} s, "
            f"{run.records_done / seconds:,.0f} records/s"
        )
    finally:
        fake.stop()
    path = append_results(load_average, ceiling, synced, engine)
    print(f"Results appended to {path}.")


if __name__ == "__main__":
    main()
