"""Query plans of the foreign key checks of stored statement lines.

PostgreSQL checks the foreign keys of new lines and snapshots at commit,
with plans it keeps for the connection's life. When the statistics of
compensation_statement show an empty table, the plan made at a run's first
commit must still look statements up by primary key, because a
sequential scan would read every statement that later batches add.

Only the table's owner may run ANALYZE, so this test skips when the suite
connects as the application role.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction

from compensation.models import CalculationRun
from compensation.services import calculate_statements
from compensation.statement_store import store_statements
from goals.calendar import month_range
from spm.models import Membership
from spm.tenancy import tenant_context
from tests.compensation.conftest import (
    assign,
    flat_component,
    make_plan,
    publish_version,
    won_deal,
)
from tests.factories import MembershipFactory

D = dt.date
MARCH = month_range(D(2024, 3, 1))


def _owns_statement_table() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_userbyid(relowner) = current_user "
            "OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
            "FROM pg_class WHERE relname = 'compensation_statement'"
        )
        return cursor.fetchone()[0]


def _add_reps(personas, plan, count: int) -> list[Membership]:
    """Assign ``count`` new reps with two won deals each."""
    won = personas.stages["Won"]
    reps = []
    for _ in range(count):
        rep = MembershipFactory(organization=personas.org, role=Membership.Role.REP)
        assign(rep, plan)
        won_deal(rep, won, "1000.00", D(2024, 3, 5))
        won_deal(rep, won, "2000.00", D(2024, 3, 20))
        reps.append(rep)
    return reps


def _store(reps: list[Membership], run: CalculationRun) -> None:
    results = calculate_statements(reps, MARCH)
    store_statements([(rep, results[rep.pk]) for rep in reps], MARCH, run, None)


def _statement_scans() -> tuple[int, int]:
    """Return the (sequential, index) scans of statements in this transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables "
            "WHERE relname = 'compensation_statement'"
        )
        return cursor.fetchone()


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's plans of the checks."
)
@pytest.mark.django_db(transaction=True)
def test_line_checks_use_primary_key(personas):
    if not _owns_statement_table():
        pytest.skip("ANALYZE needs the owner of the tables")
    plan = make_plan(personas.org.pk)
    publish_version(
        plan, [flat_component("0.10"), flat_component("0.05", name="Kicker")]
    )
    first_batch = _add_reps(personas, plan, 6)
    second_batch = _add_reps(personas, plan, 2)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE compensation_statement")
    # A new connection has no cached plans of foreign key checks yet.
    connection.close()

    with tenant_context(personas.org):
        run = CalculationRun.objects.create(
            organization=personas.org,
            period_start=MARCH.start,
            period_end=MARCH.end,
        )
        # Six blocks of lines and six snapshots, so the checks of their
        # statement get their generic plans (PostgreSQL makes one on the
        # sixth run) at this commit.
        _store(first_batch, run)
        with transaction.atomic():
            _store(second_batch, run)
            before = _statement_scans()
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            after = _statement_scans()

    # Two reps, each with one block of 2 deals x 2 components = 4 lines, and
    # one snapshot: 4 rows whose statement is checked.
    assert after[0] - before[0] == 0
    assert after[1] - before[1] == 4
