"""Writes behind the CRM integration pages. Each one is audited.

Access tokens go into the connection's encrypted credentials and nowhere
else: audit entries, log lines and messages name the connection, not the
token.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.utils import timezone

from integrations import run_lock, sync
from integrations.models import CrmConnection, FieldMapping, OwnerMapping, SyncRun
from integrations.tasks import RUN_STALE_AFTER
from spm.models import Membership, Organization, User
from spm.services import audit_log_write


class SyncRejectedError(Exception):
    """The connection cannot start a sync: a run is pending, or it is paused."""


class FieldMappingError(Exception):
    """The field mapping conflicts with one the connection already has."""


def sync_supported() -> bool:
    """Return True when the database can run CRM syncs and webhook events.

    The sync writers and the webhook record lock use PostgreSQL-only SQL
    (``SET LOCAL``, ``json_to_recordset``, ``pg_advisory_xact_lock``).
    """
    return db_connection.vendor == "postgresql"


def sync_runs_inline() -> bool:
    """Return True when no task broker is set, so tasks run in the caller.

    Then "Sync now" runs the sync inside its request, and no beat process
    starts the scheduled syncs.
    """
    return bool(settings.CELERY_TASK_ALWAYS_EAGER)


def sync_inline_message() -> str:
    """Return the notice shown where syncs run inline, with no broker."""
    return (
        "No task broker is configured (CELERY_BROKER_URL is empty), so syncs "
        "do not run in the background or every five minutes. Sync now runs "
        "the sync inside the request, and the page waits until it ends."
    )


def sync_notice() -> str | None:
    """Return why syncs cannot run in the background here, or None when they can."""
    if not sync_supported():
        return sync_unsupported_message()
    if sync_runs_inline():
        return sync_inline_message()
    return None


def sync_unsupported_message() -> str:
    """Return the notice shown where a sync or webhook event cannot run."""
    if db_connection.vendor == "sqlite":
        database = "SQLite (the demo)"
    else:
        database = db_connection.display_name
    return (
        f"CRM sync needs PostgreSQL; this instance runs on {database}. "
        "Connections and mappings can be set up, but syncs and webhook events "
        "are not applied."
    )


def _connection_values(connection: CrmConnection) -> dict:
    return {
        "name": connection.name,
        "base_url": connection.base_url,
        "api_tier": connection.api_tier,
        "status": connection.status,
    }


@transaction.atomic
def hubspot_connect(
    *,
    organization: Organization,
    actor: User | None,
    name: str,
    base_url: str,
    api_tier: str,
    access_token: str = "",
    credentials: dict | None = None,
) -> CrmConnection:
    """Create the organisation's HubSpot connection with encrypted credentials.

    ``credentials`` are the OAuth 2 fields (client_id, client_secret,
    refresh_token and a first access token), else ``access_token`` is a
    private app token. The audit entry names the method, not the values.
    """
    connection = CrmConnection(
        organization=organization,
        provider=CrmConnection.Provider.HUBSPOT,
        name=name,
        base_url=base_url,
        api_tier=api_tier,
    )
    connection.credentials = credentials or {"access_token": access_token}
    connection.save()
    auth_method = "oauth" if "refresh_token" in connection.credentials else "token"
    audit_log_write(
        organization=organization,
        actor=actor,
        action="crm.connection_created",
        obj=connection,
        new={
            "provider": connection.provider,
            **_connection_values(connection),
            "auth_method": auth_method,
        },
    )
    return connection


@transaction.atomic
def connection_update(
    *,
    connection: CrmConnection,
    actor: User | None,
    name: str,
    base_url: str,
    status: str,
    api_tier: str | None = None,
    access_token: str = "",
) -> CrmConnection:
    """Change a connection's settings, and its token when one is given.

    ``api_tier`` None keeps the stored tier, which only HubSpot connections use.
    """
    old = _connection_values(connection)
    connection.name = name
    connection.base_url = base_url
    if api_tier is not None:
        connection.api_tier = api_tier
    connection.status = status
    if status == CrmConnection.Status.ACTIVE:
        connection.status_message = ""
    new = _connection_values(connection)
    if access_token:
        connection.credentials = {"access_token": access_token}
        old["access_token"] = "(stored)"
        new["access_token"] = "(replaced)"
    if old == new:
        return connection
    connection.save()
    audit_log_write(
        organization=connection.organization,
        actor=actor,
        action="crm.connection_updated",
        obj=connection,
        old=old,
        new=new,
    )
    return connection


@transaction.atomic
def connection_credentials_replace(
    *,
    connection: CrmConnection,
    actor: User | None,
    base_url: str,
    credentials: dict,
) -> CrmConnection:
    """Replace a connection's credentials after the admin connected it again.

    A connection in the error state becomes active, because new credentials
    are the fix its error message names. A paused one stays paused. The audit
    entry records that the credentials changed, not their values.
    """
    old = _connection_values(connection)
    connection.base_url = base_url
    connection.credentials = credentials
    if connection.status == CrmConnection.Status.ERROR:
        connection.status = CrmConnection.Status.ACTIVE
        connection.status_message = ""
    connection.save()
    audit_log_write(
        organization=connection.organization,
        actor=actor,
        action="crm.connection_updated",
        obj=connection,
        old={**old, "credentials": "(stored)"},
        new={
            **_connection_values(connection),
            "credentials": "(replaced)",
            "auth_method": "oauth",
        },
    )
    return connection


@transaction.atomic
def sync_now(*, connection: CrmConnection, actor: User | None) -> SyncRun:
    """Queue a sync run of ``connection`` on the "sync" queue.

    The first run of a connection is a full one, later ones incremental.
    Raise SyncRejectedError while another run of the connection is queued or
    running and younger than ``RUN_STALE_AFTER``, and when the database is
    not PostgreSQL.
    """
    from integrations import tasks

    if not sync_supported():
        raise SyncRejectedError(sync_unsupported_message())

    # Lock the connection row, so two clicks cannot both pass the check.
    CrmConnection.objects.select_for_update().filter(pk=connection.pk).first()
    busy = (
        SyncRun.objects.filter(
            connection=connection,
            status__in=[SyncRun.Status.QUEUED, SyncRun.Status.RUNNING],
            created_at__gte=timezone.now() - RUN_STALE_AFTER,
        )
        .order_by("-created_at")
        .first()
    )
    if busy is None and run_lock.is_executing(connection.pk):
        raise SyncRejectedError(
            f"A sync of {connection.name} is still running; wait for it to finish."
        )
    if busy is not None:
        raise SyncRejectedError(
            f"A sync of {connection.name} is already {busy.status} (started "
            f"{busy.created_at:%Y-%m-%d %H:%M} UTC); wait for it to finish."
        )
    if connection.status == CrmConnection.Status.PAUSED:
        raise SyncRejectedError(
            f"{connection.name} is paused; set its status to active to sync it."
        )
    kind = SyncRun.Kind.INCREMENTAL if connection.last_synced_at else SyncRun.Kind.FULL
    run = sync.sync_run_create(connection=connection, kind=kind)
    audit_log_write(
        organization=connection.organization,
        actor=actor,
        action="crm.sync_requested",
        obj=run,
        new={"connection": connection.name, "kind": kind},
    )
    organization_id, run_id = connection.organization_id, run.pk
    transaction.on_commit(lambda: tasks.sync_run_task.delay(organization_id, run_id))
    return run


@transaction.atomic
def owner_mappings_save(
    *,
    connection: CrmConnection,
    actor: User | None,
    chosen: dict[int, Membership | None],
) -> int:
    """Set the member of each owner mapping in ``chosen`` (by mapping id).

    Return how many mappings changed. Records synced before the change keep
    their owner until the CRM lists them again, for example in a full sync.
    """
    mappings = OwnerMapping.objects.select_for_update().filter(
        connection=connection, pk__in=list(chosen)
    )
    changed = 0
    for mapping in mappings:
        member = chosen[mapping.pk]
        member_id = member.pk if member else None
        if mapping.membership_id == member_id:
            continue
        old_member = mapping.membership_id
        mapping.membership = member
        mapping.save(update_fields=["membership", "updated_at"])
        audit_log_write(
            organization=connection.organization,
            actor=actor,
            action="crm.owner_mapped",
            obj=mapping,
            object_id=mapping.owner_id,
            old={"owner_id": mapping.owner_id, "membership": old_member},
            new={"owner_id": mapping.owner_id, "membership": member_id},
        )
        changed += 1
    return changed


@transaction.atomic
def field_mapping_add(
    *,
    connection: CrmConnection,
    actor: User | None,
    object_type: str,
    crm_property: str,
    target: str,
) -> FieldMapping:
    """Map a CRM property to an Attain field; one property per field and type.

    Raise FieldMappingError for an object type other than deals, because
    every target is a field of the deal and only deal mappings are applied.
    """
    if object_type != "deals":
        raise FieldMappingError(
            f"Invalid object type {object_type!r}: only deal properties can be mapped."
        )
    try:
        with transaction.atomic():
            mapping = FieldMapping.objects.create(
                organization=connection.organization,
                connection=connection,
                object_type=object_type,
                crm_property=crm_property,
                target=target,
            )
    except IntegrityError:
        label = FieldMapping.Target(target).label
        raise FieldMappingError(
            f"{label} of {object_type} is already mapped; delete that mapping "
            "first to map another property to it."
        ) from None
    audit_log_write(
        organization=connection.organization,
        actor=actor,
        action="crm.field_mapping_added",
        obj=mapping,
        new={
            "connection": connection.name,
            "object_type": object_type,
            "crm_property": crm_property,
            "target": target,
        },
    )
    return mapping


@transaction.atomic
def field_mapping_delete(*, mapping: FieldMapping, actor: User | None) -> None:
    audit_log_write(
        organization=mapping.connection.organization,
        actor=actor,
        action="crm.field_mapping_deleted",
        obj=mapping,
        old={
            "object_type": mapping.object_type,
            "crm_property": mapping.crm_property,
            "target": mapping.target,
        },
    )
    mapping.delete()
