"""The row-level security setting that a statement needs, from the tenant context.

Two custom settings drive the policies of every tenant table:

- ``app.organization_id``: the id of the current organisation. Rows of that
  organisation are visible and writable.
- ``app.all_tenants``: "on" lets system code read and write every
  organisation's rows.

With neither set, no tenant row is visible or writable. Inside an
organisation, every statement gets that organisation. With no organisation
set, statements built by the ORM get ``app.all_tenants``, matching
``Model.unscoped`` (``Model.objects`` raises before it reaches the database),
while raw SQL gets no tenant rows at all unless it runs inside
``spm.tenancy.system_context()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

# (app.organization_id, app.all_tenants), as the strings sent to PostgreSQL.
TenantSetting = tuple[str, str]

NO_TENANT: TenantSetting = ("", "")
ALL_TENANTS: TenantSetting = ("", "on")

_orm_statement: ContextVar[bool] = ContextVar("rls_orm_statement", default=False)


@contextlib.contextmanager
def orm_statement() -> Iterator[None]:
    """Mark the statements run inside the block as built by the ORM."""
    token = _orm_statement.set(True)
    try:
        yield
    finally:
        _orm_statement.reset(token)


def required_setting() -> TenantSetting:
    """Return the setting the next statement must run with."""
    # Imported here: spm.tenancy defines models, which need this backend.
    from spm import tenancy

    organization = tenancy.current_organization_or_none()
    if organization is not None:
        if organization.pk is None:
            return NO_TENANT
        return (str(organization.pk), "")
    if _orm_statement.get() or tenancy.in_system_context():
        return ALL_TENANTS
    return NO_TENANT
