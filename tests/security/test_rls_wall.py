"""Row-level security limits queries that skip the application's tenant filter.

Every test runs as a role subject to the policies (the ``rls_role`` fixture),
with two deals in Acme and one in Globex (the ``deals`` fixture).
"""

from __future__ import annotations

import pytest
from django.db import ProgrammingError, connection, transaction

from activity.models import Deal
from spm.models import Membership, Team
from spm.rls.policies import tenant_tables
from spm.tenancy import TenantNotSet, system_context, tenant_context

pytestmark = pytest.mark.usefixtures("rls_role")

RLS_REJECTED = "violates row-level security policy"


def raw_count(table: str = "activity_deal") -> int:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        return cursor.fetchone()[0]


def raw_organizations(table: str = "activity_deal") -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT DISTINCT organization_id FROM "{table}"')
        return {row[0] for row in cursor.fetchall()}


def insert_team(organization_id: int, name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO spm_team (organization_id, public_id, name) "
            "VALUES (%s, gen_random_uuid(), %s)",
            [organization_id, name],
        )


def test_raw_sql_without_organisation_sees_no_rows(deals):
    assert Deal.unscoped.count() == 3
    assert raw_count("activity_deal") == 0
    assert raw_count("spm_membership") == 0


def test_raw_sql_without_organisation_sees_no_table(deals):
    for table in tenant_tables():
        assert raw_count(table.table) == 0, table.table


def test_raw_sql_in_organisation_sees_its_rows(personas, deals):
    with tenant_context(personas.org):
        assert raw_count() == 2
        assert raw_organizations() == {personas.org.pk}
        assert raw_organizations("spm_membership") == {personas.org.pk}


def test_unscoped_in_organisation_hides_other_rows(personas, deals):
    globex_deal = deals.globex[0]
    with tenant_context(personas.org):
        organizations = set(Deal.unscoped.values_list("organization_id", flat=True))
        assert organizations == {personas.org.pk}
        assert not Deal.unscoped.filter(pk=globex_deal.pk).exists()
        assert Membership.unscoped.filter(organization=personas.other_org).count() == 0


def test_foreign_key_to_other_organisation_is_not_followed(personas, deals):
    with tenant_context(personas.other_org):
        globex_deal = Deal.objects.get(pk=deals.globex[0].pk)
    with tenant_context(personas.org), pytest.raises(Membership.DoesNotExist):
        globex_deal.owner  # noqa: B018 (loads the owner through the ORM)


def test_insert_for_other_organisation_is_rejected(personas, deals):
    with tenant_context(personas.org):
        with pytest.raises(ProgrammingError, match=RLS_REJECTED), transaction.atomic():
            Team.unscoped.create(organization=personas.other_org, name="Intruders")
        with pytest.raises(ProgrammingError, match=RLS_REJECTED), transaction.atomic():
            insert_team(personas.other_org.pk, "Raw intruders")
    assert not Team.unscoped.filter(name__contains="ntruders").exists()


def test_update_cannot_move_row_to_other_organisation(personas, deals):
    acme_deal = deals.acme[0]
    with tenant_context(personas.org):
        moved = Deal.unscoped.filter(pk=acme_deal.pk)
        with pytest.raises(ProgrammingError, match=RLS_REJECTED), transaction.atomic():
            moved.update(organization=personas.other_org)
    acme_deal.refresh_from_db()
    assert acme_deal.organization_id == personas.org.pk


def test_update_and_delete_of_other_organisation_change_nothing(personas, deals):
    other = Deal.unscoped.filter(organization=personas.other_org)
    with tenant_context(personas.org):
        assert other.update(name="Renamed") == 0
        assert other.delete()[0] == 0
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE activity_deal SET name = 'Renamed' WHERE organization_id = %s",
                [personas.other_org.pk],
            )
            assert cursor.rowcount == 0
    assert list(other.values_list("name", flat=True)) == [deals.globex[0].name]


def test_raw_insert_without_organisation_is_rejected(personas):
    with pytest.raises(ProgrammingError, match=RLS_REJECTED), transaction.atomic():
        insert_team(personas.org.pk, "Nobody's team")


def test_system_context_sees_every_tenant(personas, deals):
    with tenant_context(personas.org), system_context():
        assert raw_count() == 3
        assert Deal.unscoped.count() == 3
        with pytest.raises(TenantNotSet):
            Deal.objects.count()
        with tenant_context(personas.other_org):
            assert raw_count() == 1


def test_setting_follows_context_switches(personas, deals):
    with tenant_context(personas.org):
        assert raw_count() == 2
        with tenant_context(personas.other_org):
            assert raw_count() == 1
        assert raw_count() == 2
    assert raw_count() == 0


def test_setting_is_sent_again_after_savepoint_rollback(personas, deals):
    """A rollback restores the setting from before the savepoint.

    Before the savepoint, the ORM statements of the fixtures left the
    connection on every tenant. Inside, it is switched to Acme, and the
    rollback switches it back. If the backend still assumed Acme was set, the
    raw count after the rollback would include Globex's deal.
    """
    assert Deal.unscoped.count() == 3
    with tenant_context(personas.org):
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            assert raw_count() == 2
            raise ZeroDivisionError
        assert raw_count() == 2


def test_raw_psycopg_cursor_after_ensure_tenant_setting(personas, deals):
    with tenant_context(personas.org):
        connection.ensure_tenant_setting()
        with connection.connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM activity_deal")
            assert cursor.fetchone()[0] == 2
