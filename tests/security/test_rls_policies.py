"""Every tenant table has its policies; every other model is a known global one."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection, models
from django.test.utils import isolate_apps

from spm.models import Organization
from spm.rls import policies
from spm.rls.policies import (
    RowLevelSecurityError,
    apply_policies,
    policy_problems,
    tenant_tables,
    unprotected_models,
)
from spm.tenancy import TenantModel
from tests.security.conftest import current_role, switch_to_rls_role

POLICY_ROWS_SQL = """
SELECT c.relrowsecurity, c.relforcerowsecurity,
       array_agg(p.policyname::text ORDER BY p.policyname),
       array_agg(p.qual ORDER BY p.policyname),
       array_agg(p.with_check ORDER BY p.policyname)
FROM pg_class AS c
LEFT JOIN pg_policies AS p ON p.tablename = c.relname
WHERE c.oid = %s::regclass
GROUP BY c.relrowsecurity, c.relforcerowsecurity
"""


@pytest.fixture
def owner(postgres) -> str:
    """Skip unless the test's role may change the tables, as their owner would."""
    name, superuser, _bypass = current_role()
    if not superuser:
        pytest.skip(f"{name} is not a superuser, so it cannot alter the tables")
    return name


def test_every_tenant_model_has_a_tenant_table():
    tenant_models = {
        model
        for model in apps.get_models()
        if issubclass(model, TenantModel) and not model._meta.proxy
    }
    assert tenant_models <= {table.model for table in tenant_tables()}
    assert {"spm_membership", "activity_deal", "spm_auditlog"} <= {
        table.table for table in tenant_tables()
    }


def test_every_project_model_is_tenant_or_global():
    assert unprotected_models() == []


@isolate_apps("spm")
def test_model_without_organisation_is_reported():
    class Note(models.Model):  # noqa: DJ008
        text = models.TextField()

        class Meta:
            app_label = "spm"

    class Tagged(TenantModel):
        tag = models.CharField(max_length=20)

        class Meta:
            app_label = "spm"

    class TaggedChild(Tagged):
        extra = models.TextField()

        class Meta:
            app_label = "spm"

    registry = Note._meta.apps
    assert unprotected_models(registry) == ["spm.Note", "spm.TaggedChild"]
    assert [table.table for table in tenant_tables(registry)] == ["spm_tagged"]


def test_every_tenant_table_has_forced_policies(postgres):
    expected = sorted([policies.ALL_TENANTS_POLICY, policies.TENANT_POLICY])
    for table in tenant_tables():
        with connection.cursor() as cursor:
            cursor.execute(POLICY_ROWS_SQL, [table.table])
            enabled, forced, names, quals, checks = cursor.fetchone()
        assert enabled, table.table
        assert forced, table.table
        assert names == expected, table.table
        assert "current_setting('app.all_tenants'" in quals[0], table.table
        assert "current_setting('app.organization_id'" in quals[1], table.table
        assert quals == checks, table.table


def test_policy_check_finds_nothing_to_do(postgres):
    assert policy_problems(connection) == []
    assert apply_policies(connection) == []


def test_missing_policy_is_reported_and_repaired(owner):
    with connection.cursor() as cursor:
        cursor.execute("DROP POLICY attain_tenant ON activity_deal")
        cursor.execute("ALTER TABLE spm_team NO FORCE ROW LEVEL SECURITY")
        cursor.execute("CREATE POLICY leak ON activity_lead USING (true)")

    problems = policy_problems(connection)
    assert problems == [
        "spm_team: row-level security is not forced",
        "activity_lead: permissive policy leak may widen access beyond the "
        "current organisation",
        "activity_deal: policy attain_tenant is missing",
    ]

    assert apply_policies(connection) == ["spm_team", "activity_lead", "activity_deal"]
    assert policy_problems(connection) == [problems[1]]


def test_changed_policy_is_replaced(owner):
    with connection.cursor() as cursor:
        cursor.execute("DROP POLICY attain_all_tenants ON spm_apikey")
        cursor.execute("CREATE POLICY attain_all_tenants ON spm_apikey USING (true)")
    assert policy_problems(connection) == [
        "spm_apikey: policy attain_all_tenants differs from its expected definition"
    ]
    assert apply_policies(connection) == ["spm_apikey"]
    assert policy_problems(connection) == []


@isolate_apps("spm")
def test_new_tenant_model_gets_policies(owner):
    class Widget(models.Model):  # noqa: DJ008
        organization = models.ForeignKey(Organization, on_delete=models.CASCADE)

        class Meta:
            app_label = "spm"

    with connection.schema_editor() as editor:
        editor.create_model(Widget)
    tables = tenant_tables(Widget._meta.apps)
    assert policy_problems(connection, tables)[:2] == [
        "spm_widget: row-level security is not enabled",
        "spm_widget: row-level security is not forced",
    ]

    assert apply_policies(connection, tables) == ["spm_widget"]
    assert policy_problems(connection, tables) == []


def test_role_that_cannot_apply_gets_clear_error(owner):
    with connection.cursor() as cursor:
        cursor.execute("DROP POLICY attain_tenant ON activity_deal")
    switch_to_rls_role()
    with pytest.raises(RowLevelSecurityError, match="Run `manage.py migrate` as"):
        apply_policies(connection)
