"""Write routing assignments back to the CRM as the contact's owner (HubSpot).

Routing queues ``crm_writeback_task`` once an assignment to a member is
committed and the organisation has an active HubSpot connection. The task
maps the member to a HubSpot owner through ``OwnerMapping``, finds the
contact by the lead's email, and creates it with that owner or sets
``hubspot_owner_id`` on it.

Conflict rule: when the contact's owner in HubSpot was changed after the
assignment's ``routed_at`` and differs from the mapped owner, the CRM wins.
The contact keeps its owner and the audit log records both owners and
times. Every outcome, failures included, writes one audit log entry.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from integrations import api_usage
from integrations.connectors.base import CONTACTS, OWNER_PROPERTY, ConnectorError
from integrations.connectors.hubspot import HubSpotConnector
from integrations.models import CrmConnection, OwnerMapping
from integrations.sync import SyncFailed, connector_for
from routing.models import Assignment
from spm.models import Organization
from spm.services import audit_log_write
from spm.tenancy import tenant_context

logger = logging.getLogger(__name__)

CREATED = "crm.writeback_created"
UPDATED = "crm.writeback_updated"
UNCHANGED = "crm.writeback_unchanged"
CRM_NEWER = "crm.writeback_crm_newer"
FAILED = "crm.writeback_failed"


@dataclass
class _CallCounter:
    """The run-like object ``api_usage.count_calls`` adds each request to."""

    connection: CrmConnection
    api_calls: int = 0


def hubspot_connection() -> CrmConnection | None:
    """Return the current organisation's active HubSpot connection, if any."""
    return CrmConnection.objects.filter(
        provider=CrmConnection.Provider.HUBSPOT, status=CrmConnection.Status.ACTIVE
    ).first()


def assignment_writeback_queue(organization: Organization, assignment_id: int) -> None:
    """Queue the write-back of a committed assignment on the "sync" queue.

    Does nothing without an active HubSpot connection. An error from the
    broker is logged instead of raised, so routing does not see it.
    """
    from integrations.tasks import crm_writeback_task

    with tenant_context(organization):
        if hubspot_connection() is None:
            return
    try:
        crm_writeback_task.delay(organization.pk, assignment_id)
    except Exception:
        logger.exception(
            "Could not queue the CRM write-back of assignment %s",
            assignment_id,
            extra={"organization_id": organization.pk},
        )


def assignment_writeback(
    *, assignment_id: int, connector: HubSpotConnector | None = None
) -> str | None:
    """Write one assignment's member to HubSpot as the contact owner.

    Runs in the assignment's organisation context. Returns the audit action
    written, or None when there is nothing to do (no assignment, no member
    or no active HubSpot connection). A ``ConnectorError`` or ``SyncFailed``
    is logged and audited instead of raised.
    """
    assignment = (
        Assignment.objects.select_related("lead", "member", "organization")
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None or assignment.member is None:
        return None
    connection = hubspot_connection()
    if connection is None:
        return None
    writer = _Writer(assignment, connection)
    return writer.run(connector)


class _Writer:
    def __init__(self, assignment: Assignment, connection: CrmConnection):
        self.assignment = assignment
        self.lead = assignment.lead
        self.connection = connection
        self.counter = _CallCounter(connection)

    def run(self, connector: HubSpotConnector | None) -> str:
        owner = self._owner()
        if owner is None:
            return self._fail(
                f"Member {self.assignment.member} has no HubSpot owner in the "
                f"owner mappings of connection {self.connection}. Map the owner "
                "and sync again."
            )
        if not self.lead.email:
            return self._fail(
                f"Lead {self.lead.public_id} has no email, so its HubSpot "
                "contact cannot be found."
            )
        try:
            connector = connector or connector_for(self.connection)
            api_usage.count_calls(connector, self.counter)
            return self._write(connector, owner)
        except (ConnectorError, SyncFailed) as error:
            return self._fail(f"HubSpot write-back failed: {error}")

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

    def _write(self, connector: HubSpotConnector, owner: OwnerMapping) -> str:
        routed_at = self.assignment.routed_at
        contact = connector.contact_find_by_email(self.lead.email)
        if contact is None:
            # NOTE: a contact created since the search makes HubSpot respond
            # 409, which is audited as a failure and not retried.
            created = connector.record_create(
                CONTACTS, {**self._contact_properties(), OWNER_PROPERTY: owner.owner_id}
            )
            return self._audit(
                CREATED, new={"contact_id": created.id, "owner_id": owner.owner_id}
            )

        current = contact.properties.get(OWNER_PROPERTY) or ""
        if current == owner.owner_id:
            return self._audit(
                UNCHANGED, new={"contact_id": contact.id, "owner_id": current}
            )
        changed_at = self._owner_changed_at(connector, contact, routed_at)
        if current and changed_at is not None and changed_at > routed_at:
            return self._crm_newer(contact.id, current, changed_at, owner)

        connector.record_update(CONTACTS, contact.id, {OWNER_PROPERTY: owner.owner_id})
        return self._audit(
            UPDATED,
            old={"contact_id": contact.id, "owner_id": current},
            new={"contact_id": contact.id, "owner_id": owner.owner_id},
        )

    def _owner_changed_at(self, connector, contact, routed_at) -> dt.datetime | None:
        """Return when HubSpot last set the contact's owner.

        A contact last modified before the routing time cannot have a newer
        owner, so the owner's history is fetched only for later ones. Without
        that history, the contact's last-modified time is used instead.
        """
        if contact.modified_at is None or contact.modified_at <= routed_at:
            return contact.modified_at
        fetched = connector.fetch_record_with_history(
            CONTACTS, contact.id, (OWNER_PROPERTY,)
        )
        entries = fetched.history.get(OWNER_PROPERTY) if fetched else None
        if entries:
            return entries[-1][1]
        return contact.modified_at

    def _crm_newer(
        self,
        contact_id: str,
        current: str,
        changed_at: dt.datetime,
        owner: OwnerMapping,
    ) -> str:
        logger.info(
            "HubSpot contact %s got owner %s at %s, after routing at %s, so "
            "it keeps that owner instead of owner %s",
            contact_id,
            current,
            changed_at.isoformat(),
            self.assignment.routed_at.isoformat(),
            owner.owner_id,
        )
        return self._audit(
            CRM_NEWER,
            old={
                "contact_id": contact_id,
                "owner_id": current,
                "owner_name": self._owner_name(current),
                "changed_at": changed_at.isoformat(),
            },
            new={
                "contact_id": contact_id,
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

    def _fail(self, message: str) -> str:
        logger.warning(
            "CRM write-back of assignment %s failed: %s",
            self.assignment.pk,
            message,
            extra={"organization_id": self.assignment.organization_id},
        )
        return self._audit(FAILED, new={"error": message})

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
            },
        )
        return action
