"""Writes of the core: organisations, members, invitations, API keys, audit log."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from collections import OrderedDict
from decimal import Decimal
from typing import Any

from allauth.usersessions.models import UserSession
from django.apps import apps
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import ProtectedError, QuerySet
from django.db.models.expressions import RawSQL
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from spm.models import (
    ApiKey,
    AuditLog,
    Membership,
    Organization,
    User,
    normalize_email,
)
from spm.tenancy import (
    TenantModel,
    deleted_with_parent,
    system_context,
    tenant_context,
)

API_KEY_PREFIX = "attn"
API_KEY_USE_RESOLUTION = dt.timedelta(minutes=1)


class MembershipChangeError(ValueError):
    """A membership change that would break a rule; ``field`` names the form field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def audit_log_write(
    *,
    organization: Organization,
    actor: User | None,
    action: str,
    obj: Any = None,
    object_type: str = "",
    object_id: str = "",
    old: dict | None = None,
    new: dict | None = None,
) -> AuditLog:
    """Record one configuration change. Call it inside the change's transaction."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(getattr(obj, "public_id", obj.pk))
    return AuditLog.unscoped.create(
        organization=organization,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        old=old,
        new=new,
    )


@transaction.atomic
def organization_create(
    *,
    name: str,
    slug: str,
    owner: User | None = None,
    time_zone: str = "UTC",
    currency: str = "USD",
    fiscal_year_start_month: int = 1,
) -> Organization:
    """Create an organisation, and make ``owner`` its first admin."""
    organization = Organization.objects.create(
        name=name,
        slug=slug,
        time_zone=time_zone,
        currency=currency,
        fiscal_year_start_month=fiscal_year_start_month,
    )
    if owner is not None:
        Membership.unscoped.create(
            organization=organization,
            user=owner,
            display_name=owner.get_full_name(),
            email=owner.email,
            role=Membership.Role.ADMIN,
        )
    audit_log_write(
        organization=organization,
        actor=owner,
        action="organization.create",
        obj=organization,
        new={"name": name, "slug": slug, "time_zone": time_zone},
    )
    return organization


# Rows deleted per statement. Django collects the rows that refer to the
# deleted ones with one IN list per relation, and PostgreSQL takes at most
# 65,535 parameters in one statement.
DELETE_BATCH_SIZE = 10_000


@transaction.atomic
def organization_delete(
    *, organization: Organization, batch_size: int = DELETE_BATCH_SIZE
) -> None:
    """Delete an organisation and every row it owns.

    Some tenant rows refer to others through PROTECT foreign keys (a deal to
    its stage, a split to its member), so one cascade from the organisation
    fails. Each pass deletes the rows of every tenant model that no remaining
    row protects, until none are left. Rows go ``batch_size`` at a time.
    Rows whose organisation key has no database constraint, such as
    statement lines, go with their parent rows (``deleted_with_parent``).
    """
    remaining = [
        model
        for model in apps.get_models()
        if issubclass(model, TenantModel)
        and not model._meta.abstract
        and not deleted_with_parent(model)
    ]
    while remaining:
        blocked = []
        for model in remaining:
            try:
                with transaction.atomic():
                    _delete_in_batches(
                        model.unscoped.filter(organization=organization), batch_size
                    )
            except ProtectedError:
                blocked.append(model)
        if len(blocked) == len(remaining):
            names = ", ".join(model._meta.label for model in blocked)
            raise ValueError(
                f"Cannot delete {organization.name!r}: {names} "
                "refer to each other through protected keys."
            )
        remaining = blocked
    organization.delete()


def _delete_in_batches(rows: QuerySet, batch_size: int) -> None:
    """Delete ``rows`` by primary key, ``batch_size`` at a time."""
    while True:
        batch = list(rows.values_list("pk", flat=True)[:batch_size])
        if not batch:
            return
        rows.model.unscoped.filter(pk__in=batch).delete()


ORGANIZATION_SETTINGS = (
    "name",
    "time_zone",
    "currency",
    "fiscal_year_start_month",
    "fiscal_year_named_by",
    "quota_period",
    "coverage_target_fixed",
    "coverage_min_closed_deals",
    "reps_see_own_alerts",
    "require_mfa_for_admins",
)


def _plain(value: Any) -> Any:
    """Return ``value`` in a form JSON can store: a Decimal or date as a string."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _organization_snapshot(organization: Organization) -> dict:
    snapshot = {}
    for name in ORGANIZATION_SETTINGS:
        value = getattr(organization, name)
        if isinstance(value, Decimal):
            # A form's 3.5 and the stored 3.50 are the same setting.
            places = Organization._meta.get_field(name).decimal_places
            value = value.quantize(Decimal(1).scaleb(-places))
        snapshot[name] = _plain(value)
    return snapshot


@transaction.atomic
def organization_update(
    *, organization: Organization, actor: User | None, **changes: Any
) -> Organization:
    old = _organization_snapshot(organization)
    for field, value in changes.items():
        if field not in ORGANIZATION_SETTINGS:
            raise ValueError(f"Unknown organisation setting: {field}")
        setattr(organization, field, value)
    organization.full_clean()
    organization.save()
    new = _organization_snapshot(organization)
    if old != new:
        audit_log_write(
            organization=organization,
            actor=actor,
            action="organization.update",
            obj=organization,
            old=old,
            new=new,
        )
    return organization


MEMBERSHIP_FIELDS = (
    "role",
    "reports_to",
    "team",
    "display_name",
    "is_active",
    "start_date",
    "end_date",
    "employee_id",
)


def _membership_snapshot(membership: Membership) -> dict:
    return {
        "role": membership.role,
        "reports_to": str(membership.reports_to.public_id)
        if membership.reports_to_id
        else None,
        "team": membership.team.name if membership.team_id else None,
        "display_name": membership.display_name,
        "is_active": membership.is_active,
        "start_date": _plain(membership.start_date),
        "end_date": _plain(membership.end_date),
        "employee_id": membership.employee_id,
    }


@transaction.atomic
def membership_update(
    *, membership: Membership, actor: User | None, **changes: Any
) -> Membership:
    """Change role, manager, team, name or dates, refusing a reporting cycle."""
    old = _membership_snapshot(membership)
    for field, value in changes.items():
        if field not in MEMBERSHIP_FIELDS:
            raise ValueError(f"Unknown membership field: {field}")
        setattr(membership, field, value)
    start, end = membership.start_date, membership.end_date
    if start and end and end < start:
        raise MembershipChangeError(
            f"The last day {end:%Y-%m-%d} is before the first day {start:%Y-%m-%d}.",
            field="end_date",
        )

    manager = membership.reports_to
    seen = {membership.pk}
    while manager is not None:
        if manager.pk in seen:
            raise MembershipChangeError(
                f"{membership.display_name} cannot report to "
                f"{membership.reports_to.display_name}: that makes a reporting cycle.",
                field="reports_to",
            )
        seen.add(manager.pk)
        manager = manager.reports_to

    was_admin = old["role"] == Membership.Role.ADMIN and old["is_active"]
    if was_admin and not (membership.is_admin and membership.is_active):
        _require_another_admin(membership)

    membership.save()
    new = _membership_snapshot(membership)
    if old != new:
        audit_log_write(
            organization=membership.organization,
            actor=actor,
            action="membership.update",
            obj=membership,
            old=old,
            new=new,
        )
    if old["is_active"] and not membership.is_active:
        _user_sessions_end_unless_member(membership.user)
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: User | None) -> Membership:
    """Deactivate a member, and end their sessions if no organisation is left.

    Every request under /o/<slug>/ checks that the membership is active, so
    the member gets 404 in this organisation from their next request on. A
    user with no other active membership is also signed out everywhere.
    Raises MembershipChangeError for the only active admin. Removing a member
    who is already inactive changes nothing.
    """
    if not membership.is_active:
        return membership
    if membership.is_admin:
        _require_another_admin(membership)
    old = _membership_snapshot(membership)
    membership.is_active = False
    membership.save(update_fields=["is_active"])
    sessions_ended = _user_sessions_end_unless_member(membership.user)
    audit_log_write(
        organization=membership.organization,
        actor=actor,
        action="membership.remove",
        obj=membership,
        old=old,
        new={**_membership_snapshot(membership), "sessions_ended": sessions_ended},
    )
    return membership


def _user_sessions_end_unless_member(user: User | None) -> int:
    """End every recorded session of ``user`` if no active membership is left.

    Returns the number of sessions ended. allauth.usersessions records a
    session when someone signs in through allauth's pages.

    NOTE: a session started by django.contrib.auth.login alone (the Django
    admin's sign-in page) is not recorded, so it is not ended here. It still
    gets 404 under /o/<slug>/ once no membership is active.
    """
    if user is None:
        return 0
    # The memberships of other organisations too, which row-level security
    # hides while one organisation is current.
    with system_context():
        if Membership.unscoped.filter(user=user, is_active=True).exists():
            return 0
    sessions = list(UserSession.objects.filter(user=user))
    for session in sessions:
        session.end()
    return len(sessions)


def _require_another_admin(membership: Membership) -> None:
    """Raise unless the organisation keeps an active admin besides ``membership``.

    The admins' rows are locked, so two admins demoting each other at the same
    time cannot leave the organisation with none.
    """
    others = (
        Membership.unscoped.select_for_update()
        .filter(
            organization_id=membership.organization_id,
            role=Membership.Role.ADMIN,
            is_active=True,
        )
        .exclude(pk=membership.pk)
    )
    if not list(others):
        raise MembershipChangeError(
            f"{membership.display_name} is the only active admin of "
            f"{membership.organization.name}: make another member an admin first."
        )


@transaction.atomic
def membership_invite(
    *,
    membership: Membership,
    email: str,
    actor: User | None,
    signup_url: str = "",
) -> Membership:
    """Send a sign-up invitation to a member who has no login yet.

    The member is linked to the user who signs up (or signs in) with this
    address, compared case-insensitively.
    """
    email = normalize_email(email)
    other_member = (
        Membership.unscoped.filter(
            organization_id=membership.organization_id, email__iexact=email
        )
        .exclude(pk=membership.pk)
        .first()
    )
    if other_member is not None:
        raise MembershipChangeError(
            f"{email} is already the address of {other_member.display_name} in this "
            "organisation.",
            field="email",
        )
    old_email = membership.email
    membership.email = email
    membership.invited_at = timezone.now()
    membership.save(update_fields=["email", "invited_at"])

    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None and membership.user_id is None:
        membership.user = existing
        membership.save(update_fields=["user"])

    audit_log_write(
        organization=membership.organization,
        actor=actor,
        action="membership.invite",
        obj=membership,
        old={"email": old_email},
        new={"email": email},
    )
    context = {
        "membership": membership,
        "organization": membership.organization,
        "inviter": actor,
        "signup_url": signup_url or reverse("account_signup"),
    }
    subject = render_to_string("spm/email/invitation_subject.txt", context).strip()
    body = render_to_string("spm/email/invitation_body.txt", context)
    transaction.on_commit(
        lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email])
    )
    return membership


def memberships_link_user(*, user: User) -> int:
    """Attach every invited, unlinked membership with the user's email to the user."""
    linked = 0
    for membership in Membership.unscoped.filter(
        email__iexact=user.email, user__isnull=True
    ).select_related("organization"):
        membership.user = user
        membership.save(update_fields=["user"])
        linked += 1
    return linked


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *, organization: Organization, name: str, actor: User | None = None
) -> tuple[ApiKey, str]:
    """Create an API key and return it with the plain key, which is shown once."""
    prefix = secrets.token_hex(4)
    key = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    with tenant_context(organization):
        api_key = ApiKey.objects.create(
            organization=organization,
            name=name,
            prefix=prefix,
            key_hash=_hash_key(key),
            created_by=actor,
        )
        audit_log_write(
            organization=organization,
            actor=actor,
            action="api_key.create",
            obj=api_key,
            new={"name": name, "prefix": prefix},
        )
    return api_key, key


def api_key_revoke(*, api_key: ApiKey, actor: User | None = None) -> ApiKey:
    """Revoke a key: it stops authenticating at once and cannot be restored."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_log_write(
            organization=api_key.organization,
            actor=actor,
            action="api_key.revoke",
            obj=api_key,
            old={"revoked_at": None},
            new={"revoked_at": api_key.revoked_at.isoformat()},
        )
    return api_key


def api_key_lookup(key: str) -> ApiKey | None:
    """Find the live key matching ``key``, across all organisations (system code).

    ``last_used_at`` is refreshed at most once a minute. A key found once is
    kept in process memory with its organisation's configuration version
    (``routing.config_cache``), which revoking or deleting the key moves. So
    later requests read only that version, and a revoked key stops working at
    once. The returned key's ``config_version`` is that version, or None on a
    database without the version triggers. The key and its organisation are
    shared between requests, so callers must not change them.
    """
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != API_KEY_PREFIX:
        return None
    key_hash = _hash_key(key)
    api_key = _api_key_kept(key_hash)
    if api_key is None:
        with system_context():
            api_key = (
                ApiKey.unscoped.select_related("organization")
                .annotate(config_version=RawSQL(_KEY_VERSION_SQL, []))
                .filter(key_hash=key_hash, revoked_at__isnull=True)
                .first()
            )
        if api_key is not None and connection.vendor != "postgresql":
            # No triggers move the version there, so nothing is kept.
            api_key.config_version = None
        elif api_key is not None:
            _api_key_keep(key_hash, api_key)
    now = timezone.now()
    if api_key is not None and (
        api_key.last_used_at is None
        or now - api_key.last_used_at >= API_KEY_USE_RESOLUTION
    ):
        # A busy key would otherwise cost a write on every request.
        with system_context():
            ApiKey.unscoped.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


# The key's configuration version, read in the statement that finds the key,
# so the two belong to one snapshot of the database.
_KEY_VERSION_SQL = (
    "SELECT COALESCE(MAX(version), 0) FROM routing_configversion "
    'WHERE organization_id = "spm_apikey"."organization_id"'
)
# API keys kept per process; the least recently used is dropped beyond this.
API_KEYS_KEPT = 1000
_api_keys: OrderedDict[str, ApiKey] = OrderedDict()
_api_keys_lock = threading.Lock()


def _api_key_kept(key_hash: str) -> ApiKey | None:
    """Return the kept key when its organisation's version has not moved."""
    from routing.config_cache import config_version

    with _api_keys_lock:
        api_key = _api_keys.get(key_hash)
    if api_key is None:
        return None
    if config_version(api_key.organization_id) != api_key.config_version:
        with _api_keys_lock:
            _api_keys.pop(key_hash, None)
        return None
    with _api_keys_lock:
        if key_hash in _api_keys:
            _api_keys.move_to_end(key_hash)
    return api_key


def _api_key_keep(key_hash: str, api_key: ApiKey) -> None:
    with _api_keys_lock:
        _api_keys[key_hash] = api_key
        while len(_api_keys) > API_KEYS_KEPT:
            _api_keys.popitem(last=False)
