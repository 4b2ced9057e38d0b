"""PostgreSQL row-level security: the database's own wall between organisations.

- ``spm.rls.base`` is the database engine ("ENGINE": "spm.rls"): Django's
  PostgreSQL backend plus one step. Before a statement runs, it sets
  ``app.organization_id`` and ``app.all_tenants`` on the connection to match
  the current organisation of ``spm.tenancy``, unless the connection already
  has those values.
- ``spm.rls.policies`` finds every tenant table in the model registry and
  gives it the policies; ``migrate`` applies them through a post_migrate
  handler, so a model added later is covered without a migration of its own.
- ``spm.rls.roles`` builds the grants of the application role, which the
  ``create_app_role`` management command runs.

docs/security.md describes the whole tenancy model. Nothing here applies to
SQLite, where ``spm.tenancy.TenantManager`` is the only wall.
"""
