"""Fixtures of the security tests.

The row-level security tests need PostgreSQL and a database role subject to
the policies, because PostgreSQL skips every policy for superusers and
BYPASSRLS roles. The CI connects as the application role already. A
developer who connects as a superuser gets a throwaway role for each test.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db import connection
from psycopg import sql

from activity.models import Deal
from spm.rls.roles import AppRole, grant_statements, role_statements
from tests.factories import DealFactory

SQLITE_REASON = (
    "Row-level security exists on PostgreSQL only; with SQLite the scoped "
    "manager, spm.tenancy.TenantManager, is the only wall between tenants."
)


def current_role() -> tuple[str, bool, bool]:
    """Return the current role's name, and whether it is superuser and BYPASSRLS."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles "
            "WHERE rolname = current_user"
        )
        return cursor.fetchone()


def switch_to_rls_role() -> str:
    """Make the rest of the test transaction run as a role subject to the policies.

    Returns the role's name. A superuser creates a role with the application
    role's grants and switches to it with SET LOCAL ROLE. The role and the
    switch end with the test's transaction.
    """
    name, superuser, bypass = current_role()
    if not superuser and not bypass:
        return name
    if not superuser:
        pytest.skip(f"{name} bypasses row-level security but cannot create roles")

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database(), current_schema()")
        database, schema = cursor.fetchone()
        role = AppRole(
            name=f"attain_rls_test_{uuid.uuid4().hex[:12]}",
            owner=name,
            database=database,
            schema=schema,
            login=False,
        )
        for statement in role_statements(role, exists=False) + grant_statements(role):
            cursor.execute(statement)
        cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role.name)))
    return role.name


@pytest.fixture
def postgres(db) -> None:
    if connection.vendor != "postgresql":
        pytest.skip(SQLITE_REASON)


@pytest.fixture
def rls_role(postgres) -> str:
    """Run the test as a role subject to row-level security, and return its name."""
    return switch_to_rls_role()


@dataclass
class TenantDeals:
    acme: list[Deal]
    globex: list[Deal]


@pytest.fixture
def deals(personas) -> TenantDeals:
    """Two deals in Acme (``personas.org``) and one in Globex."""
    stages, other_stages = personas.stages, personas.other_stages
    return TenantDeals(
        acme=[
            DealFactory(stage=stages["Won"], owner=personas.rep1, amount=Decimal(100)),
            DealFactory(stage=stages["Engaging"], owner=personas.rep2),
        ],
        globex=[
            DealFactory(
                stage=other_stages["Won"],
                owner=personas.other_rep,
                amount=Decimal(700),
            ),
        ],
    )
