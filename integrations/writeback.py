"""Write routing assignments back to the CRM as the record's owner.

Routing queues ``crm_writeback_task`` once an assignment to a member is
committed and the organisation has an active CRM connection. The task maps
the member to a CRM owner through ``OwnerMapping``, finds the lead's record
by email and sets its owner:

- HubSpot: the contact (``hubspot_owner_id``), created when missing;
- Salesforce: the unconverted Lead (``OwnerId``);
- Pipedrive: the person (``owner_id``).

Conflict rule: when the record's owner was changed after the assignment's
``routed_at`` and differs from the mapped owner, the CRM wins. The record
keeps its owner and the audit log records both owners and times. HubSpot
reports when the owner property was set. Salesforce and Pipedrive report
only when the record was last modified, so that time is used instead.

Each assignment has one ``CrmWriteback`` row. A 429, 5xx or network error
from Salesforce or Pipedrive marks it "retrying" and raises ``RetryLater``,
which the task turns into a Celery retry. After ``MAX_ATTEMPTS`` tries it is
marked failed, and an admin can retry it from the audit log. Every final
outcome, failures included, writes one audit log entry.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from activity.models import Lead
from integrations import api_usage
from integrations.connectors.base import (
    CONTACTS,
    OWNER_PROPERTY,
    ConnectorError,
    CrmRecord,
    CrmUnavailable,
)
from integrations.models import CrmConnection, CrmWriteback, OwnerMapping
from integrations.sync import SyncFailed, connector_for
from routing.config_cache import cached
from routing.models import Assignment
from spm.models import Organization, User
from spm.services import audit_log_write
from spm.tenancy import tenant_context

logger = logging.getLogger(__name__)

CREATED = "crm.writeback_created"
UPDATED = "crm.writeback_updated"
UNCHANGED = "crm.writeback_unchanged"
CRM_NEWER = "crm.writeback_crm_newer"
FAILED = "crm.writeback_failed"
RETRY_REQUESTED = "crm.writeback_retry_requested"

# Tries per round: the first one and up to five Celery retries.
MAX_ATTEMPTS = 6
# Backoff without Retry-After: 30 s, 60 s, 120 s, 240 s, 480 s.
RETRY_BASE_SECONDS = 30
# A Retry-After above this is capped, so a retry is never days away.
RETRY_MAX_SECONDS = 3600
# A row "running" for longer belongs to a worker that died, because this is
# above the task time limit (CELERY_TASK_TIME_LIMIT, 11 minutes by default).
RUNNING_STALE_AFTER = dt.timedelta(minutes=15)
# Order in which an organisation's active connections are picked when it has
# more than one.
PROVIDER_ORDER = (
    CrmConnection.Provider.HUBSPOT,
    CrmConnection.Provider.SALESFORCE,
    CrmConnection.Provider.PIPEDRIVE,
)


class RetryLater(Exception):
    """The attempt failed with a 429, 5xx or network error and may be retried."""

    def __init__(self, message: str, delay: float):
        super().__init__(message)
        self.delay = delay


class WritebackNotRetryable(Exception):
    """A manual retry was requested for a write-back that has not failed."""


@dataclass
class _CallCounter:
    """The run-like object ``api_usage.count_calls`` adds each request to."""

    connection: CrmConnection
    api_calls: int = 0


def writeback_connection() -> CrmConnection | None:
    """Return the current organisation's active connection that write-backs use.

    NOTE: an organisation with several active connections gets its write-backs
    on the first in ``PROVIDER_ORDER`` only.
    """
    connections = CrmConnection.objects.filter(status=CrmConnection.Status.ACTIVE)
    by_provider = {connection.provider: connection for connection in connections}
    for provider in PROVIDER_ORDER:
        if provider in by_provider:
            return by_provider[provider]
    return None


def retry_delay(attempt: int, retry_after: float | None) -> float:
    """Return the seconds to wait before the try after ``attempt`` (1-based).

    The CRM's Retry-After wins when it sent one. Otherwise the delay doubles
    from ``RETRY_BASE_SECONDS``. Both are capped at ``RETRY_MAX_SECONDS``.
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), RETRY_MAX_SECONDS)
    return float(min(RETRY_BASE_SECONDS * 2 ** (attempt - 1), RETRY_MAX_SECONDS))


def assignment_writeback_queue(organization: Organization, assignment_id: int) -> None:
    """Queue the write-back of a committed assignment on the "sync" queue.

    Does nothing without an active CRM connection. An error from the broker
    is logged instead of raised, so routing does not see it.
    """
    from integrations.tasks import crm_writeback_task

    with tenant_context(organization):
        # Routing calls this for every lead. The result changes only with
        # the connections, and their changes move the configuration version.
        connected = cached(
            "writeback_connected", lambda: writeback_connection() is not None
        )
        if not connected:
            return
    try:
        crm_writeback_task.delay(organization.pk, assignment_id)
    except Exception:
        logger.exception(
            "Could not queue the CRM write-back of assignment %s",
            assignment_id,
            extra={"organization_id": organization.pk},
        )


def assignment_writeback(*, assignment_id: int, connector=None) -> str | None:
    """Write one assignment's member to the CRM as the record owner.

    Runs in the assignment's organisation context. Returns the audit action
    written, or None when there is nothing to do: no assignment or member,
    no active connection, or a write-back that is finished, failed or running
    in another worker. A ``ConnectorError`` or ``SyncFailed`` is logged and
    audited instead of raised. Raises ``RetryLater`` when a Salesforce or
    Pipedrive request failed with 429, 5xx or a network error and attempts
    remain.
    """
    assignment = (
        Assignment.objects.select_related("lead", "member", "organization")
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None or assignment.member is None:
        return None
    record = _writeback_claim(assignment)
    if record is None:
        return None
    writer = _Writer(assignment, record)
    return writer.run(connector)


def _writeback_claim(assignment: Assignment) -> CrmWriteback | None:
    """Mark the assignment's write-back running and count the attempt.

    Return None when another worker runs it, or it is done or failed, so a
    task delivered twice never writes twice.
    """
    record = CrmWriteback.objects.filter(assignment=assignment).first()
    if record is None:
        connection = writeback_connection()
        if connection is None:
            return None
        record, _created = CrmWriteback.objects.get_or_create(
            assignment=assignment, defaults={"connection": connection}
        )
    if record.connection.status != CrmConnection.Status.ACTIVE:
        return None

    now = timezone.now()
    claimable = Q(
        status__in=(CrmWriteback.Status.PENDING, CrmWriteback.Status.RETRYING)
    ) | Q(status=CrmWriteback.Status.RUNNING, updated_at__lt=now - RUNNING_STALE_AFTER)
    claimed = CrmWriteback.objects.filter(claimable, pk=record.pk).update(
        status=CrmWriteback.Status.RUNNING,
        attempts=F("attempts") + 1,
        updated_at=now,
    )
    if not claimed:
        return None
    record.refresh_from_db()
    return record


def writeback_retry(
    *, organization: Organization, actor: User, writeback: CrmWriteback
) -> None:
    """Queue a failed write-back again with a new round of attempts.

    Raises ``WritebackNotRetryable`` unless the write-back has failed, so two
    clicks queue one retry.
    """
    from integrations.tasks import crm_writeback_task

    with transaction.atomic():
        reset = CrmWriteback.objects.filter(
            pk=writeback.pk, status=CrmWriteback.Status.FAILED
        ).update(
            status=CrmWriteback.Status.PENDING, attempts=0, updated_at=timezone.now()
        )
        if not reset:
            writeback.refresh_from_db()
            raise WritebackNotRetryable(
                f"The write-back of lead {writeback.assignment.lead.public_id} is "
                f"{writeback.get_status_display().lower()}, so it cannot be "
                "retried. Only a failed write-back can."
            )
        audit_log_write(
            organization=organization,
            actor=actor,
            action=RETRY_REQUESTED,
            obj=writeback.assignment.lead,
            old={"status": CrmWriteback.Status.FAILED, "error": writeback.error},
            new={
                "status": CrmWriteback.Status.PENDING,
                "writeback_id": str(writeback.public_id),
                "connection": writeback.connection.name,
            },
        )
        assignment_id = writeback.assignment_id
        transaction.on_commit(
            lambda: crm_writeback_task.delay(organization.pk, assignment_id)
        )


def writeback_get(public_id) -> CrmWriteback | None:
    """Return the current organisation's write-back with ``public_id``, or None."""
    return (
        CrmWriteback.objects.select_related("assignment__lead", "connection")
        .filter(public_id=public_id)
        .first()
    )


def writebacks_failed(public_ids: list[str]) -> set[str]:
    """Return which of ``public_ids`` are failed write-backs, in one query."""
    if not public_ids:
        return set()
    rows = CrmWriteback.objects.filter(
        public_id__in=public_ids, status=CrmWriteback.Status.FAILED
    ).values_list("public_id", flat=True)
    return {str(public_id) for public_id in rows}


class _HubSpotTarget:
    """HubSpot contacts, found by email and created when missing."""

    label = "HubSpot"
    record_label = "contact"
    id_key = "contact_id"
    can_create = True

    def __init__(self, connector):
        self.connector = connector

    def find(self, email: str) -> CrmRecord | None:
        return self.connector.contact_find_by_email(email)

    def create(self, properties: dict[str, str]) -> CrmRecord:
        return self.connector.record_create(CONTACTS, properties)

    def update_owner(self, record_id: str, owner_id: str) -> None:
        self.connector.record_update(CONTACTS, record_id, {OWNER_PROPERTY: owner_id})

    def owner_changed_at(
        self, record: CrmRecord, routed_at: dt.datetime
    ) -> dt.datetime | None:
        """Return when HubSpot last set the contact's owner.

        A contact last modified before the routing time cannot have a newer
        owner, so the owner's history is fetched only for later ones. Without
        that history, the contact's last-modified time is used instead.
        """
        if record.modified_at is None or record.modified_at <= routed_at:
            return record.modified_at
        fetched = self.connector.fetch_record_with_history(
            CONTACTS, record.id, (OWNER_PROPERTY,)
        )
        entries = fetched.history.get(OWNER_PROPERTY) if fetched else None
        if entries:
            return entries[-1][1]
        return record.modified_at


class _SalesforceTarget:
    """Salesforce Leads, whose last modification is used as the owner change."""

    label = "Salesforce"
    record_label = "Lead"
    id_key = "lead_id"
    can_create = False

    def __init__(self, connector):
        self.connector = connector

    def find(self, email: str) -> CrmRecord | None:
        return self.connector.lead_find_by_email(email)

    def update_owner(self, record_id: str, owner_id: str) -> None:
        self.connector.lead_owner_update(record_id, owner_id)

    def owner_changed_at(self, record: CrmRecord, routed_at) -> dt.datetime | None:
        return record.modified_at


class _PipedriveTarget(_SalesforceTarget):
    """Pipedrive persons, whose ``update_time`` is used as the owner change."""

    label = "Pipedrive"
    record_label = "person"
    id_key = "person_id"

    def find(self, email: str) -> CrmRecord | None:
        return self.connector.person_find_by_email(email)

    def update_owner(self, record_id: str, owner_id: str) -> None:
        self.connector.person_owner_update(record_id, owner_id)


TARGETS = {
    CrmConnection.Provider.HUBSPOT: _HubSpotTarget,
    CrmConnection.Provider.SALESFORCE: _SalesforceTarget,
    CrmConnection.Provider.PIPEDRIVE: _PipedriveTarget,
}


class _Writer:
    def __init__(self, assignment: Assignment, record: CrmWriteback):
        self.assignment = assignment
        self.lead: Lead = assignment.lead
        self.record = record
        self.connection = record.connection
        self.label = TARGETS[self.connection.provider].label
        self.counter = _CallCounter(self.connection)

    def run(self, connector) -> str:
        owner = self._owner()
        if owner is None:
            return self._fail(
                f"Member {self.assignment.member} has no {self.label} owner in the "
                f"owner mappings of connection {self.connection}. Map the owner "
                "and sync again."
            )
        if not self.lead.email:
            return self._fail(
                f"Lead {self.lead.public_id} has no email, so its {self.label} "
                "record cannot be found."
            )
        try:
            connector = connector or connector_for(self.connection)
            api_usage.count_calls(connector, self.counter)
            target = TARGETS[self.connection.provider](connector)
            return self._write(target, owner)
        except CrmUnavailable as error:
            return self._retry_or_fail(error)
        except (ConnectorError, SyncFailed) as error:
            return self._fail(f"{self.label} write-back failed: {error}")

    def _owner(self) -> OwnerMapping | None:
        # NOTE: when several owners map to one member, the most recently
        # updated mapping is used.
        return (
            OwnerMapping.objects.filter(
                connection=self.connection, membership=self.assignment.member
            )
            .order_by("-updated_at", "-pk")
            .first()
        )

    def _write(self, target, owner: OwnerMapping) -> str:
        id_key = target.id_key
        found = target.find(self.lead.email)
        if found is None:
            return self._create(target, owner)

        current = found.properties.get(OWNER_PROPERTY) or ""
        if current == owner.owner_id:
            return self._done(UNCHANGED, new={id_key: found.id, "owner_id": current})
        routed_at = self.assignment.routed_at
        changed_at = target.owner_changed_at(found, routed_at)
        if current and changed_at is not None and changed_at > routed_at:
            return self._crm_newer(target, found.id, current, changed_at, owner)

        target.update_owner(found.id, owner.owner_id)
        return self._done(
            UPDATED,
            old={id_key: found.id, "owner_id": current},
            new={id_key: found.id, "owner_id": owner.owner_id},
        )

    def _create(self, target, owner: OwnerMapping) -> str:
        if not target.can_create:
            # NOTE: Salesforce Leads and Pipedrive persons are not created;
            # the lead must exist in the CRM before routing writes its owner.
            return self._fail(
                f"{self.label} has no {target.record_label} with email "
                f"{self.lead.email}. Create it in {self.label}, then retry the "
                "write-back from the audit log."
            )
        # NOTE: a HubSpot contact created since the search makes HubSpot
        # respond 409, which is audited as a failure.
        properties = {**self._contact_properties(), OWNER_PROPERTY: owner.owner_id}
        created = target.create(properties)
        return self._done(
            CREATED, new={target.id_key: created.id, "owner_id": owner.owner_id}
        )

    def _crm_newer(
        self,
        target,
        record_id: str,
        current: str,
        changed_at: dt.datetime,
        owner: OwnerMapping,
    ) -> str:
        logger.info(
            "%s %s %s got owner %s at %s, after routing at %s, so it keeps that "
            "owner instead of owner %s",
            self.label,
            target.record_label,
            record_id,
            current,
            changed_at.isoformat(),
            self.assignment.routed_at.isoformat(),
            owner.owner_id,
        )
        return self._done(
            CRM_NEWER,
            old={
                target.id_key: record_id,
                "owner_id": current,
                "owner_name": self._owner_name(current),
                "changed_at": changed_at.isoformat(),
            },
            new={
                target.id_key: record_id,
                "owner_id": owner.owner_id,
                "owner_name": owner.name,
                "routed_at": self.assignment.routed_at.isoformat(),
            },
        )

    def _owner_name(self, owner_id: str) -> str:
        mapping = OwnerMapping.objects.filter(
            connection=self.connection, owner_id=owner_id
        ).first()
        return mapping.name if mapping else ""

    def _contact_properties(self) -> dict[str, str]:
        lead = self.lead
        properties = {
            "email": lead.email,
            "firstname": lead.first_name,
            "lastname": lead.last_name,
            "company": lead.company,
        }
        return {name: value for name, value in properties.items() if value}

    def _retry_or_fail(self, error: CrmUnavailable) -> str:
        attempts = self.record.attempts
        if attempts >= MAX_ATTEMPTS:
            return self._fail(
                f"{self.label} write-back failed {attempts} times, last with: {error}"
            )
        delay = retry_delay(attempts, error.retry_after)
        logger.warning(
            "CRM write-back of assignment %s failed (attempt %s of %s): %s "
            "Retrying in %.0f s.",
            self.assignment.pk,
            attempts,
            MAX_ATTEMPTS,
            error,
            delay,
            extra={"organization_id": self.assignment.organization_id},
        )
        self._save_record(CrmWriteback.Status.RETRYING, error=str(error))
        raise RetryLater(str(error), delay)

    def _fail(self, message: str) -> str:
        logger.warning(
            "CRM write-back of assignment %s failed: %s",
            self.assignment.pk,
            message,
            extra={"organization_id": self.assignment.organization_id},
        )
        self._save_record(CrmWriteback.Status.FAILED, result=FAILED, error=message)
        return self._audit(FAILED, new={"error": message})

    def _done(self, action: str, *, old: dict | None = None, new: dict) -> str:
        self._save_record(CrmWriteback.Status.DONE, result=action, error="")
        return self._audit(action, old=old, new=new)

    def _save_record(self, status: str, **fields) -> None:
        record = self.record
        record.status = status
        for name, value in fields.items():
            setattr(record, name, value)
        record.updated_at = timezone.now()
        record.save(update_fields=["status", "updated_at", *fields])

    def _audit(self, action: str, *, old: dict | None = None, new: dict) -> str:
        audit_log_write(
            organization=self.assignment.organization,
            actor=None,
            action=action,
            obj=self.lead,
            old=old,
            new={
                **new,
                "connection": self.connection.name,
                "member": str(self.assignment.member),
                "api_calls": self.counter.api_calls,
                "attempts": self.record.attempts,
                "writeback_id": str(self.record.public_id),
            },
        )
        return action
