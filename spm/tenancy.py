"""
The current organisation, and the model manager that scopes every query to it.

The organisation is held in a context variable so it follows the request (or
task, or command) through threads and async code alike. Tenant-owned models
use ``TenantManager`` as their default manager: a query made while no
organisation is set raises ``TenantNotSet`` instead of returning rows of every
tenant. Code that must see all tenants uses ``Model.unscoped``, which names
that intent.

On PostgreSQL the database enforces the same boundary with row-level
security (``spm.rls``): each statement runs with the current organisation's
id as ``app.organization_id``, so inside an organisation even
``Model.unscoped`` and raw SQL see only its rows. With no organisation set,
ORM statements see every tenant and raw SQL sees none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from spm.models import Organization

_current_organization: ContextVar[Organization | None] = ContextVar(
    "current_organization", default=None
)
_system: ContextVar[bool] = ContextVar("tenancy_system", default=False)


class TenantNotSet(RuntimeError):
    """A tenant-owned model was queried while no organisation was set."""


def get_current_organization() -> Organization:
    organization = _current_organization.get()
    if organization is None:
        raise TenantNotSet(
            "No organisation is set for this query. Wrap the code in "
            "tenant_context(organization), or use Model.unscoped for system code."
        )
    return organization


def current_organization_or_none() -> Organization | None:
    return _current_organization.get()


@contextlib.contextmanager
def tenant_context(organization: Organization) -> Iterator[Organization]:
    """Make ``organization`` the current one inside the block."""
    token = _current_organization.set(organization)
    try:
        yield organization
    finally:
        _current_organization.reset(token)


@contextlib.contextmanager
def system_context() -> Iterator[None]:
    """Clear the current organisation inside the block, for work on every tenant.

    Inside, ``Model.objects`` raises ``TenantNotSet``, and ``Model.unscoped``
    and raw SQL see every organisation's rows, on PostgreSQL too. Use it for
    the few reads that cross organisations while one is current, such as
    listing the organisations of the signed-in user. A ``tenant_context``
    inside the block limits its own statements to its organisation again.
    """
    organization_token = _current_organization.set(None)
    system_token = _system.set(True)
    try:
        yield
    finally:
        _system.reset(system_token)
        _current_organization.reset(organization_token)


def in_system_context() -> bool:
    """Return whether the code runs inside ``system_context()``."""
    return _system.get()


def activate(organization: Organization | None):
    """Set the current organisation and return the token that resets it."""
    return _current_organization.set(organization)


def deactivate(token) -> None:
    _current_organization.reset(token)


class TenantQuerySet(models.QuerySet):
    pass


class _TenantRequired(models.Expression):
    """A filter that fails when compiled: the query was built with no tenant set.

    Building such a query is allowed (Django builds form field querysets at
    import time); running it raises, so nothing is ever read unscoped.
    """

    output_field = models.BooleanField()
    conditional = True

    def as_sql(self, compiler, connection):
        raise TenantNotSet(
            "This query was built while no organisation was set. Build it inside "
            "tenant_context(organization), or use Model.unscoped for system code."
        )


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    """Default manager of tenant-owned models: filters by the current organisation."""

    def get_queryset(self) -> TenantQuerySet:
        queryset = super().get_queryset()
        organization = _current_organization.get()
        if organization is None:
            return queryset.filter(_TenantRequired())
        return queryset.filter(organization_id=organization.pk)


def organization_key(
    *, db_index: bool = True, db_constraint: bool = True
) -> models.ForeignKey:
    """Return the organisation column of a tenant table.

    A table with a full index that starts with the organisation passes
    ``db_index=False``, because that index serves lookups by organisation,
    and an index on the organisation alone only adds work to each insert.
    A table whose rows each belong to a parent row of the same organisation
    may pass ``db_constraint=False``, because the parent's key already ties
    the row to an existing organisation. Such rows are deleted with their
    parent, so deleting the organisation does not look them up by this key.
    """
    return models.ForeignKey(
        "spm.Organization",
        on_delete=models.CASCADE if db_constraint else models.DO_NOTHING,
        related_name="+",
        db_index=db_index,
        db_constraint=db_constraint,
    )


def deleted_with_parent(model: type[models.Model]) -> bool:
    """Return whether ``model``'s rows go with a parent row, not by organisation.

    That is a tenant model whose organisation key has no database
    constraint (see ``organization_key``).
    """
    field = model._meta.get_field("organization")
    return not field.db_constraint


class TenantModel(models.Model):
    """Base of every tenant-owned table: a non-null organisation, scoped by default."""

    organization = organization_key()

    objects = TenantManager()
    unscoped = models.Manager()  # noqa: DJ012 (a manager, not a field)

    class Meta:
        abstract = True
        base_manager_name = "unscoped"

    def save(self, *args, **kwargs) -> None:
        if self.organization_id is None:
            self.organization = get_current_organization()
        super().save(*args, **kwargs)
