"""Query plans of the sync writers when the planner's statistics are stale.

The statistics of a shared table can predate a tenant's first sync: they
then count the new tenant as about one row. The writers' lookups by external
id must still go through the unique index on (organisation, source, external
id). With a scan of another index that starts with the organisation, each
lookup reads every row the sync has written so far, and a first sync into a
busy database slows down page after page.

Only the table's owner may run ANALYZE, so these tests skip when the suite
connects as the application role (.ci/run runs them as the owner as well).
"""

import datetime as dt
import json

import pytest
from django.db import connection as db

from activity.models import Deal, Pipeline, Stage
from integrations import writers
from integrations.connectors import base
from spm.models import Organization
from spm.tenancy import tenant_context
from tests.integrations.test_sync_bulk_writes import deal_record, synced_context

__all__ = ["synced_context"]

BUSY_TENANT_DEALS = 3000


def _owns_deal_table() -> bool:
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_userbyid(relowner) = current_user "
            "OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
            "FROM pg_class WHERE relname = 'activity_deal'"
        )
        return cursor.fetchone()[0]


@pytest.fixture
def stale_statistics(synced_context):
    """Analyse the deals while another tenant has them all and the synced one none."""
    if not _owns_deal_table():
        pytest.skip("ANALYZE needs the owner of the tables")
    busy = Organization.objects.create(name="Busy", slug="busy")
    with tenant_context(busy):
        pipeline = Pipeline.objects.create(organization=busy, name="Sales")
        stage = Stage.objects.create(
            organization=busy, pipeline=pipeline, name="Open", order=1
        )
        Deal.objects.bulk_create(
            Deal(
                organization=busy,
                pipeline=pipeline,
                stage=stage,
                name=f"Busy {number}",
                external_source="hubspot",
                external_id=str(number),
            )
            for number in range(BUSY_TENANT_DEALS)
        )
    # The synced tenant's first deals arrive after the statistics were taken.
    with tenant_context(synced_context.connection.organization):
        Deal.objects.all().delete()
    with db.cursor() as cursor:
        cursor.execute("ANALYZE activity_deal")
    return synced_context


def _captured_upserts(monkeypatch) -> list:
    statements = []
    original = writers._UpsertStatement._sql

    def capture(self, data):
        sql, params = original(self, data)
        statements.append((self.model, sql, params))
        return sql, params

    monkeypatch.setattr(writers._UpsertStatement, "_sql", capture)
    return statements


def _scans(plan: dict, table: str) -> list[tuple[str, str | None]]:
    """Return (node type, index name) of each scan of ``table`` in ``plan``."""
    found = []
    if plan.get("Relation Name") == table and "Scan" in plan["Node Type"]:
        found.append((plan["Node Type"], plan.get("Index Name")))
    for child in plan.get("Plans", []):
        found.extend(_scans(child, table))
    return found


def test_deal_lookups_use_unique_index(stale_statistics, monkeypatch):
    statements = _captured_upserts(monkeypatch)
    records = [
        deal_record(
            str(7000 + number), modified_at=dt.datetime(2024, 5, 3, tzinfo=dt.UTC)
        )
        for number in range(100)
    ]

    writers.plan_each_statement()
    writers.write_page(stale_statistics, base.DEALS, records)

    [(model, sql, params)] = [s for s in statements if s[0] is Deal]
    with db.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    scans = _scans(plan[0]["Plan"], "activity_deal")
    # The insert's conflict check is not a scan; the one lookup of the
    # stored row, for the created flag and the previous stage, is.
    assert scans == [("Index Scan", "deal_external_unique")]


def test_pages_plan_each_statement_for_its_parameters(synced_context):
    writers.plan_each_statement()

    with db.cursor() as cursor:
        cursor.execute("SELECT current_setting('plan_cache_mode')")
        assert cursor.fetchone()[0] == "force_custom_plan"
