"""Row-level security policies of the tenant tables, generated from the model registry.

A tenant table is the table of any model with a foreign key to
spm.Organization among its own columns: every concrete ``TenantModel``, and
any other model that names an organisation. Each gets, with
``ENABLE`` and ``FORCE ROW LEVEL SECURITY`` (so the table owner is held too):

- ``attain_tenant``: rows of the organisation in ``app.organization_id``;
- ``attain_all_tenants``: every row while ``app.all_tenants`` is "on".

Both apply to reads and writes (USING and WITH CHECK), so with neither
setting made no row is visible and none can be written.

``apply_after_migrate`` runs after every ``migrate`` (and ``flush``). It
compares each tenant table with the expected state in the catalog and
changes only what differs, so a model added later gets its policies on the
first ``migrate`` after its table is created, with no migration of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    ProgrammingError,
    connections,
    models,
    transaction,
)
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

logger = logging.getLogger(__name__)

TENANT_POLICY = "attain_tenant"
ALL_TENANTS_POLICY = "attain_all_tenants"
TENANT_EXPRESSION = (
    "{column} = NULLIF(current_setting('app.organization_id', true), '')::bigint"
)
ALL_TENANTS_EXPRESSION = "current_setting('app.all_tenants', true) = 'on'"

# Models of this project's apps that belong to no organisation. Every other
# model of this project needs an organisation column, so that its table gets
# the policies. A new global model must be added here on purpose.
GLOBAL_MODELS = frozenset(
    {
        "spm.User",  # a person can be a member of several organisations
        "spm.User_groups",  # Django's permission tables of User
        "spm.User_user_permissions",
        "spm.Organization",  # the tenant itself
        "routing.ConfigVersion",  # numbers only, written by triggers
    }
)


class RowLevelSecurityError(RuntimeError):
    """A tenant table lacks its policies and they could not be applied."""


@dataclass(frozen=True)
class TenantTable:
    model: type[models.Model]
    table: str
    column: str


def organization_field(model: type[models.Model]) -> models.ForeignKey | None:
    """Return the model's own foreign key to spm.Organization, if it has one."""
    fields = [
        field
        for field in model._meta.local_concrete_fields
        if field.many_to_one and _is_organization(field.remote_field.model)
    ]
    if len(fields) > 1:
        names = ", ".join(field.name for field in fields)
        raise RowLevelSecurityError(
            f"{model._meta.label} has several organisation keys ({names}); "
            "row-level security needs exactly one."
        )
    return fields[0] if fields else None


def _is_organization(target: type[models.Model] | str) -> bool:
    # A lazy reference stays a string until the registry resolves it.
    label = target if isinstance(target, str) else target._meta.label
    return label.lower() == "spm.organization"


def tenant_tables(registry: Apps | None = None) -> list[TenantTable]:
    """Return every table that row-level security must cover, in registry order."""
    tables = []
    for model in (registry or global_apps).get_models(include_auto_created=True):
        if model._meta.proxy or not model._meta.managed:
            continue
        field = organization_field(model)
        if field is not None:
            tables.append(TenantTable(model, model._meta.db_table, field.column))
    return tables


def unprotected_models(registry: Apps | None = None) -> list[str]:
    """Name the models whose table would escape row-level security.

    Those are the models of this project's apps that have no organisation
    column of their own and are not in ``GLOBAL_MODELS``. A ``TenantModel``
    whose table gets no policy is named too: an unmanaged model, or a
    multi-table child whose organisation column is in its parent's table.
    """
    from spm.tenancy import TenantModel

    registry = registry or global_apps
    covered = {table.model for table in tenant_tables(registry)}
    names = []
    for model in registry.get_models(include_auto_created=True):
        if model in covered or model._meta.proxy:
            continue
        label = model._meta.label
        is_tenant_model = issubclass(model, TenantModel)
        if is_tenant_model or (_in_project(model) and label not in GLOBAL_MODELS):
            names.append(label)
    return names


def _in_project(model: type[models.Model]) -> bool:
    app_path = Path(model._meta.app_config.path)
    return app_path.parent == Path(settings.BASE_DIR)


def policy_problems(
    connection: BaseDatabaseWrapper, tables: list[TenantTable] | None = None
) -> list[str]:
    """Describe every way the tenant tables differ from their expected policies."""
    tables = tenant_tables() if tables is None else tables
    problems = _problems_by_table(connection, tables)
    return [problem for table in tables for problem in problems[table.table]]


def apply_policies(
    connection: BaseDatabaseWrapper, tables: list[TenantTable] | None = None
) -> list[str]:
    """Enable RLS and create the policies where needed; return the tables changed.

    Tables already as expected are not touched, so no lock is taken on them.
    """
    tables = tenant_tables() if tables is None else tables
    problems = _problems_by_table(connection, tables)
    stale = [table for table in tables if problems[table.table]]
    if not stale:
        return []
    try:
        with transaction.atomic(using=connection.alias):
            with connection.cursor() as cursor:
                for table in stale:
                    for statement in _policy_statements(table):
                        cursor.execute(statement)
    except ProgrammingError as error:
        names = ", ".join(table.table for table in stale)
        raise RowLevelSecurityError(
            f"Row-level security policies are missing or out of date on {names}, "
            f"and this database role could not apply them ({error}). Run "
            "`manage.py migrate` as the role that owns the tables."
        ) from error
    return [table.table for table in stale]


def apply_after_migrate(sender, *, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """Apply the policies after ``migrate`` or ``flush`` (a post_migrate receiver).

    Raises ``RowLevelSecurityError`` when a tenant table is still not
    covered afterwards, so that ``migrate`` fails instead of leaving a gap.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    existing = set(connection.introspection.table_names())
    tables = [table for table in tenant_tables() if table.table in existing]
    changed = apply_policies(connection, tables)
    problems = policy_problems(connection, tables)
    if problems:
        raise RowLevelSecurityError(
            "Row-level security is incomplete: " + "; ".join(problems)
        )
    if changed:
        logger.info("Row-level security applied to %s", ", ".join(changed))


def _policy_statements(table: TenantTable) -> list[sql.Composable]:
    name = sql.Identifier(table.table)
    tenant = sql.SQL(TENANT_EXPRESSION).format(column=sql.Identifier(table.column))
    all_tenants = sql.SQL(ALL_TENANTS_EXPRESSION)
    statements = [
        sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(name),
        sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(name),
    ]
    for policy, expression in (
        (TENANT_POLICY, tenant),
        (ALL_TENANTS_POLICY, all_tenants),
    ):
        statements += [
            sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(
                sql.Identifier(policy), name
            ),
            sql.SQL(
                "CREATE POLICY {} ON {} AS PERMISSIVE FOR ALL TO PUBLIC "
                "USING ({}) WITH CHECK ({})"
            ).format(sql.Identifier(policy), name, expression, expression),
        ]
    return statements


@dataclass
class _CatalogEntry:
    enabled: bool
    forced: bool
    # Policy name -> (permissive, command, to PUBLIC only, USING, WITH CHECK).
    policies: dict[str, tuple[bool, str, bool, str | None, str | None]]


CATALOG_SQL = """
SELECT t.name, c.relrowsecurity, c.relforcerowsecurity, p.polname,
       p.polpermissive, p.polcmd, p.polroles = '{0}'::oid[],
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
FROM unnest(%s::text[]) AS t(name)
JOIN pg_class AS c ON c.oid = to_regclass(quote_ident(t.name))
LEFT JOIN pg_policy AS p ON p.polrelid = c.oid
"""


def _read_catalog(
    connection: BaseDatabaseWrapper, tables: list[str]
) -> dict[str, _CatalogEntry]:
    with connection.cursor() as cursor:
        cursor.execute(CATALOG_SQL, [tables])
        rows = cursor.fetchall()
    catalog: dict[str, _CatalogEntry] = {}
    for name, enabled, forced, policy, *definition in rows:
        entry = catalog.setdefault(name, _CatalogEntry(enabled, forced, {}))
        if policy is not None:
            entry.policies[policy] = tuple(definition)
    return catalog


def _problems_by_table(
    connection: BaseDatabaseWrapper, tables: list[TenantTable]
) -> dict[str, list[str]]:
    catalog = _read_catalog(connection, [table.table for table in tables])
    return {
        table.table: _table_problems(connection, table, catalog.get(table.table))
        for table in tables
    }


def _table_problems(
    connection: BaseDatabaseWrapper, table: TenantTable, entry: _CatalogEntry | None
) -> list[str]:
    if entry is None:
        return [f"{table.table}: table not found"]
    problems = []
    if not entry.enabled:
        problems.append(f"{table.table}: row-level security is not enabled")
    if not entry.forced:
        problems.append(f"{table.table}: row-level security is not forced")
    expected = _expected_policies(connection, table.column)
    for policy, definition in expected.items():
        found = entry.policies.get(policy)
        if found is None:
            problems.append(f"{table.table}: policy {policy} is missing")
        elif found != definition:
            problems.append(
                f"{table.table}: policy {policy} differs from its expected definition"
            )
    for policy, (permissive, *_) in entry.policies.items():
        if policy not in expected and permissive:
            problems.append(
                f"{table.table}: permissive policy {policy} may widen access "
                "beyond the current organisation"
            )
    return problems


_expected_cache: dict[tuple[int, str], dict] = {}


def _expected_policies(connection: BaseDatabaseWrapper, column: str) -> dict:
    """Return the catalog's form of both policies for a table with ``column``.

    PostgreSQL stores a policy's expressions in its own normalised form, so
    the expected form is read back from the same policies created on a
    temporary table, once per process.
    """
    key = (connection.pg_version, column)
    if key not in _expected_cache:
        _expected_cache[key] = _probe_policies(connection, column)
    return _expected_cache[key]


def _probe_policies(connection: BaseDatabaseWrapper, column: str) -> dict:
    probe = TenantTable(models.Model, "attain_rls_probe", column)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("CREATE TEMPORARY TABLE {} ({} bigint)").format(
                sql.Identifier(probe.table), sql.Identifier(column)
            )
        )
        for statement in _policy_statements(probe):
            cursor.execute(statement)
        # A temporary table comes first in the search path.
        catalog = _read_catalog(connection, [probe.table])
        cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(probe.table)))
    return next(iter(catalog.values())).policies
