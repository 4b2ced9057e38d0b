"""CRM webhooks in: verification, deduplication, ordering and the targeted fetch.

Each provider proves a delivery differently, and the connection stores the
shared secret encrypted in its credentials (``webhook_secret``):

- HubSpot signs with the app's client secret (X-HubSpot-Signature-v3: base64
  HMAC-SHA256 over method + URI + body + X-HubSpot-Request-Timestamp), and a
  timestamp more than five minutes old is rejected.
- Pipedrive sends the HTTP Basic credentials set when the webhook was
  created (``webhook_username`` and the secret as the password).
- Salesforce outbound messages carry the organisation id, checked against
  ``salesforce_organization_id``, and the secret travels in the URL path.

The request only verifies and stores: every notification is stored once as
a pending WebhookEvent under its idempotency key, so a redelivery does
nothing, and ``webhook_event_apply_task`` on the "sync" queue applies it
after the commit. Per (object, property) only a value that occurred after
the newest applied one is applied. An applied event fetches that one record
through the connector and writes it with the sync writers, so stage history,
stage-entry side effects and the deal field mappings follow the sync path.
An event whose record the writers reject is FAILED. An event whose record
was written with an unfit mapped value is APPLIED, and its message names the
value. A deletion event fetches nothing: it archives a synced deal, and
deletes a synced company or contact as a sync's listing of deleted records
does (writers.delete_records).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
import logging
import secrets
import xml.etree.ElementTree as ElementTree
import zlib
from dataclasses import dataclass
from urllib.parse import unquote

from django.db import connection as connection_db
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from activity.models import Deal
from integrations.connectors import base
from integrations.connectors.hubspot import HubSpotConnector
from integrations.deal_fields import deal_field_mappings
from integrations.models import CrmConnection, OwnerMapping, StageMapping, WebhookEvent
from integrations.sync import SyncFailed, connector_for, mapped_properties_request
from integrations.writers import (
    DELETED_OBJECT_TYPES,
    SyncContext,
    archive_deals,
    delete_records,
    plan_each_statement,
    write_page,
)
from spm.services import audit_log_write

logger = logging.getLogger(__name__)

# HubSpot's documented maximum age of X-HubSpot-Request-Timestamp.
HUBSPOT_MAX_SIGNATURE_AGE = dt.timedelta(minutes=5)
# Percent-escapes HubSpot decodes in the URI before signing it.
HUBSPOT_DECODED_ESCAPES = "%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B".split()
HUBSPOT_OBJECT_TYPES = {
    "contact": base.CONTACTS,
    "company": base.COMPANIES,
    "deal": base.DEALS,
    "0-1": base.CONTACTS,
    "0-2": base.COMPANIES,
    "0-3": base.DEALS,
}
PIPEDRIVE_OBJECT_TYPES = {
    "deal": base.DEALS,
    "person": base.CONTACTS,
    "organization": base.COMPANIES,
}
SALESFORCE_OBJECT_TYPES = {
    "Opportunity": base.DEALS,
    "Contact": base.CONTACTS,
    "Account": base.COMPANIES,
}
SOAP_ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NAMESPACE = "http://soap.sforce.com/2005/09/outbound"
XSI_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance"
SALESFORCE_ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENVELOPE}"><soapenv:Body>'
    f'<notificationsResponse xmlns="{OUTBOUND_NAMESPACE}"><Ack>true</Ack>'
    "</notificationsResponse></soapenv:Body></soapenv:Envelope>"
)


NO_SECRET = (
    "the connection has no webhook secret, so set one on its Webhooks page "
    "(webhook_settings_set)"
)


class WebhookRejected(Exception):
    """The delivery failed verification. The message names the check, not the secret."""


class InvalidPayload(Exception):
    """The body cannot be read as the provider's webhook format."""


@dataclass(frozen=True)
class IncomingEvent:
    key_fields: tuple
    event_id: str
    object_type: str
    object_id: str
    occurred_at: dt.datetime | None
    property_name: str = ""
    property_value: str = ""
    deleted: bool = False

    @property
    def key(self) -> str:
        encoded = json.dumps(self.key_fields, default=str, separators=(",", ":"))
        return hashlib.sha256(encoded.encode()).hexdigest()


# Settings


@transaction.atomic
def webhook_settings_set(
    *,
    connection: CrmConnection,
    actor,
    secret: str | None = None,
    username: str | None = None,
    salesforce_organization_id: str | None = None,
) -> str:
    """Store the connection's webhook secret (a new random one when None).

    Return the secret, which the admin enters in the CRM. The audit entry
    records which settings changed, never the secret.
    """
    secret = secret or secrets.token_urlsafe(32)
    credentials = connection.credentials
    credentials["webhook_secret"] = secret
    changed = ["webhook_secret"]
    if username is not None:
        credentials["webhook_username"] = username
        changed.append("webhook_username")
    if salesforce_organization_id is not None:
        credentials["salesforce_organization_id"] = salesforce_organization_id
        changed.append("salesforce_organization_id")
    connection.credentials = credentials
    connection.save(update_fields=["credentials_encrypted"])
    audit_log_write(
        organization=connection.organization,
        actor=actor,
        action="crm.webhook_settings_changed",
        obj=connection,
        new={"changed": changed},
    )
    return secret


# Verification


def verify_hubspot(
    connection: CrmConnection,
    *,
    method: str,
    uri: str,
    body: bytes,
    signature: str,
    timestamp: str,
    now: dt.datetime | None = None,
) -> None:
    """Raise WebhookRejected unless the v3 signature and its timestamp are valid."""
    secret = connection.credentials.get("webhook_secret", "")
    if not secret:
        raise WebhookRejected(NO_SECRET)
    if not signature or not timestamp:
        raise WebhookRejected("missing X-HubSpot-Signature-v3 or timestamp header")
    try:
        sent_at = dt.datetime.fromtimestamp(int(timestamp) / 1000, tz=dt.UTC)
    except (ValueError, OverflowError):
        raise WebhookRejected(f"invalid timestamp {timestamp[:20]!r}") from None
    now = now or timezone.now()
    if now - sent_at > HUBSPOT_MAX_SIGNATURE_AGE:
        raise WebhookRejected(f"timestamp {sent_at.isoformat()} is too old")
    expected = hubspot_signature(secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected, signature):
        raise WebhookRejected("invalid X-HubSpot-Signature-v3")


def hubspot_signature(
    secret: str, method: str, uri: str, body: bytes, timestamp: str
) -> str:
    """Compute the v3 signature HubSpot sends for a request."""
    signed = method.encode() + _hubspot_uri(uri).encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _hubspot_uri(uri: str) -> str:
    for escape in HUBSPOT_DECODED_ESCAPES:
        decoded = unquote(escape)
        uri = uri.replace(escape, decoded).replace(escape.lower(), decoded)
    return uri


def verify_pipedrive(connection: CrmConnection, authorization: str) -> None:
    """Raise WebhookRejected unless the Basic credentials match the connection's."""
    credentials = connection.credentials
    secret = credentials.get("webhook_secret", "")
    if not secret:
        raise WebhookRejected(NO_SECRET)
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise WebhookRejected("missing HTTP Basic credentials")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected("malformed HTTP Basic credentials") from None
    username, _, password = decoded.partition(":")
    expected_username = credentials.get("webhook_username", "")
    username_ok = hmac.compare_digest(username.encode(), expected_username.encode())
    password_ok = hmac.compare_digest(password.encode(), secret.encode())
    if not (username_ok and password_ok):
        raise WebhookRejected("invalid HTTP Basic credentials")


def verify_salesforce_token(connection: CrmConnection, token: str) -> None:
    secret = connection.credentials.get("webhook_secret", "")
    if not secret:
        raise WebhookRejected(NO_SECRET)
    if not hmac.compare_digest(token.encode(), secret.encode()):
        raise WebhookRejected("invalid token in the URL")


def verify_salesforce_organization(connection: CrmConnection, org_id: str) -> None:
    """Raise WebhookRejected unless the message names the connection's org id.

    Only the first 15 characters are compared, because the 18-character form
    of a Salesforce id adds a checksum suffix to the 15-character one.
    """
    expected = connection.credentials.get("salesforce_organization_id", "")
    if not expected:
        raise WebhookRejected(
            "the connection has no Salesforce organization id, so set one on its "
            "Webhooks page (webhook_settings_set)"
        )
    if org_id[:15] != expected[:15]:
        raise WebhookRejected(f"unexpected OrganizationId {org_id[:18]!r}")


# Parsing


def parse_hubspot(body: bytes) -> list[IncomingEvent]:
    """Read a HubSpot webhook batch (a JSON array of event objects)."""
    try:
        items = json.loads(body)
    except ValueError as error:
        raise InvalidPayload(f"the body is not JSON: {error}") from None
    if not isinstance(items, list):
        raise InvalidPayload("expected a JSON array of events")
    events = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidPayload(f"event {index} is not an object")
        subscription = str(item.get("subscriptionType") or "")
        prefix = subscription.partition(".")[0]
        if prefix == "object":
            prefix = str(item.get("objectTypeId") or "")
        try:
            occurred_ms = int(item["occurredAt"])
            object_id = str(int(item["objectId"]))
        except (KeyError, TypeError, ValueError):
            raise InvalidPayload(
                f"event {index} ({item.get('eventId')!r}) has a missing or invalid "
                "occurredAt or objectId"
            ) from None
        events.append(
            IncomingEvent(
                key_fields=(
                    item.get("portalId"),
                    subscription,
                    object_id,
                    item.get("propertyName"),
                    item.get("propertyValue"),
                    occurred_ms,
                ),
                event_id=str(item.get("eventId") or ""),
                object_type=HUBSPOT_OBJECT_TYPES.get(prefix, ""),
                object_id=object_id,
                occurred_at=dt.datetime.fromtimestamp(occurred_ms / 1000, tz=dt.UTC),
                property_name=str(item.get("propertyName") or ""),
                property_value=str(item.get("propertyValue") or ""),
                deleted=subscription.endswith(".deletion"),
            )
        )
    return events


def parse_pipedrive(body: bytes) -> IncomingEvent:
    """Read a Pipedrive webhook, v1 (``meta.object``) or v2 (``meta.entity``)."""
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise InvalidPayload(f"the body is not JSON: {error}") from None
    meta = payload.get("meta") if isinstance(payload, dict) else None
    if not isinstance(meta, dict):
        raise InvalidPayload("missing meta object")
    if meta.get("entity"):
        entity, object_id = meta.get("entity"), meta.get("entity_id")
        event_id = meta.get("id")
    else:
        entity, object_id = meta.get("object"), meta.get("id")
        event_id = meta.get("request_id") or ""
    action = str(meta.get("action") or "")
    timestamp = meta.get("timestamp")
    occurred_at = _pipedrive_time(timestamp)
    if object_id in (None, "") or occurred_at is None:
        raise InvalidPayload(
            f"missing or invalid object id {object_id!r} or timestamp {timestamp!r}"
        )
    return IncomingEvent(
        key_fields=(str(entity), str(object_id), action, str(event_id), str(timestamp)),
        event_id=str(event_id),
        object_type=PIPEDRIVE_OBJECT_TYPES.get(str(entity), ""),
        object_id=str(object_id),
        occurred_at=occurred_at,
        deleted=action in ("deleted", "delete"),
    )


def _pipedrive_time(value) -> dt.datetime | None:
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def parse_salesforce(body: bytes) -> tuple[str, list[IncomingEvent]]:
    """Return the OrganizationId and the notifications of an outbound message."""
    # Outbound messages never declare a DTD, so one is rejected rather than
    # expanded (entity expansion attacks).
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise InvalidPayload("a DOCTYPE or ENTITY declaration is not allowed")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise InvalidPayload(f"the body is not XML: {error}") from None

    ns = {"o": OUTBOUND_NAMESPACE}
    notifications = root.find(f".//{{{OUTBOUND_NAMESPACE}}}notifications")
    if notifications is None:
        raise InvalidPayload("missing notifications element")
    org_id = (notifications.findtext("o:OrganizationId", "", ns) or "").strip()

    events = []
    for notification in notifications.findall("o:Notification", ns):
        notification_id = (notification.findtext("o:Id", "", ns) or "").strip()
        sobject = notification.find("o:sObject", ns)
        if sobject is None or not notification_id:
            raise InvalidPayload("a Notification lacks its Id or sObject")
        sobject_type = sobject.get(f"{{{XSI_NAMESPACE}}}type", "").partition(":")[2]
        fields = {child.tag.rpartition("}")[2]: child.text for child in sobject}
        object_id = (fields.get("Id") or "").strip()
        stamp = fields.get("SystemModstamp") or fields.get("LastModifiedDate")
        events.append(
            IncomingEvent(
                key_fields=(notification_id,),
                event_id=notification_id,
                object_type=SALESFORCE_OBJECT_TYPES.get(sobject_type, ""),
                object_id=object_id,
                occurred_at=_salesforce_time(stamp),
            )
        )
    return org_id, events


def _salesforce_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


# Storing and applying

# Statuses whose event a task still has to apply. A FAILED event is applied
# again by the task's retries.
UNAPPLIED_STATUSES = (WebhookEvent.Status.PENDING, WebhookEvent.Status.FAILED)


def events_store(
    *, connection: CrmConnection, events: list[IncomingEvent]
) -> tuple[list[WebhookEvent], int]:
    """Store each new event and queue its application after the commit.

    Run inside the connection's tenant context. Return the stored events and
    the number of duplicates. The unique (connection, key) constraint and
    get_or_create make a redelivery a duplicate, also when two deliveries of
    one event arrive at the same moment: the second insert fails on the
    constraint and get_or_create then reads the first one's row.
    """
    from integrations import services

    # Without PostgreSQL the events are stored, with the reason, but not
    # queued, because applying one needs the PostgreSQL-only writers.
    unsupported = (
        None if services.sync_supported() else (services.sync_unsupported_message())
    )
    stored: list[WebhookEvent] = []
    duplicates = 0
    with transaction.atomic():
        for event in events:
            fields = _event_fields(connection, event)
            if unsupported:
                fields["message"] = unsupported
            row, created = WebhookEvent.objects.get_or_create(
                connection=connection, key=event.key, defaults=fields
            )
            if created:
                stored.append(row)
                continue
            duplicates += 1
            logger.info(
                "CRM webhook event %s of connection %s is a duplicate and was ignored",
                event.event_id,
                connection.pk,
            )
        for row in [] if unsupported else stored:
            transaction.on_commit(
                functools.partial(_apply_queue, connection.organization_id, row.pk)
            )
    return stored, duplicates


def _event_fields(connection: CrmConnection, event: IncomingEvent) -> dict:
    return {
        "organization": connection.organization,
        "event_id": event.event_id[:255],
        "object_type": event.object_type,
        "object_id": event.object_id[:255],
        "property_name": event.property_name[:255],
        "property_value": event.property_value,
        "occurred_at": event.occurred_at,
        "deleted": event.deleted,
    }


def _apply_queue(organization_id: int, event_pk: int) -> None:
    """Queue the task that applies one stored event.

    A broker error is logged, not raised, because the CRM has already
    received a 200 response for the delivery. Without a broker, Celery runs the task
    here (CELERY_TASK_ALWAYS_EAGER), and its errors are logged the same way.
    """
    from integrations.tasks import webhook_event_apply_task

    try:
        webhook_event_apply_task.delay(organization_id, event_pk)
    except Exception:
        # The event stays pending, and webhook_events_sweep_task queues it
        # again two minutes after it arrived.
        logger.exception(
            "Queuing or running the application of CRM webhook event %s failed",
            event_pk,
            extra={"organization_id": organization_id},
        )


def webhook_event_apply(
    *, event_pk: int, connector: base.Connector | None = None
) -> str | None:
    """Apply one stored event and return its new status.

    Run inside the event's tenant context. Return None when the event does
    not exist. An event that is no longer pending or failed keeps its
    status, so a task delivered twice applies it once, because the row lock
    makes the second delivery wait until the first one commits. A ConnectorError
    or SyncFailed rolls the application back, is recorded on the event as
    FAILED with its message, and is raised for the task to retry. When the
    database is not PostgreSQL, the event stays unapplied and its message
    gives the reason.
    """
    from integrations import services

    if not services.sync_supported():
        return _event_keep_unapplied(event_pk, services.sync_unsupported_message())
    try:
        with transaction.atomic():
            # Lock only the event row ("self"), because a lock on the joined
            # connection row would block syncs and the connection's other
            # events during the CRM fetch.
            event = (
                WebhookEvent.objects.select_for_update(of=("self",))
                .select_related("connection__organization")
                .filter(pk=event_pk)
                .first()
            )
            if event is None:
                return None
            if event.status not in UNAPPLIED_STATUSES:
                return event.status
            _object_lock(event)
            status, message = _apply(event.connection, event, connector)
            _event_finish(event, status, message)
            return status
    except (base.ConnectorError, SyncFailed) as error:
        WebhookEvent.objects.filter(pk=event_pk).update(
            status=WebhookEvent.Status.FAILED,
            message=str(error),
            attempts=F("attempts") + 1,
            processed_at=timezone.now(),
        )
        raise


def _event_keep_unapplied(event_pk: int, message: str) -> str | None:
    """Record ``message`` on an unapplied event and return the event's status."""
    event = WebhookEvent.objects.filter(pk=event_pk).first()
    if event is None:
        return None
    if event.status in UNAPPLIED_STATUSES:
        WebhookEvent.objects.filter(pk=event_pk).update(message=message)
    return event.status


def _object_lock(event: WebhookEvent) -> None:
    """Serialise the events of one CRM record until the transaction ends.

    Two workers applying events of the same record would both read the same
    newest applied time, so the staleness check needs this lock. Events of
    other records go on in parallel.
    """
    record = f"{event.object_type}:{event.object_id}".encode()
    # pg_advisory_xact_lock takes two int4 keys. zlib.crc32 is unsigned,
    # so it is shifted into the signed range.
    record_key = zlib.crc32(record) - 2**31
    with connection_db.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)",
            [event.connection_id % 2**31, record_key],
        )


def _event_finish(event: WebhookEvent, status: str, message: str) -> None:
    event.status = status
    event.message = message
    event.attempts += 1
    event.processed_at = timezone.now()
    event.save(update_fields=["status", "message", "attempts", "processed_at"])
    logger.info(
        "CRM webhook event %s of connection %s: %s",
        event.pk,
        event.connection_id,
        status,
        extra={"organization_id": event.organization_id},
    )


def _apply(
    connection: CrmConnection,
    event: WebhookEvent,
    connector: base.Connector | None,
) -> tuple[str, str]:
    if not event.object_type or not event.object_id:
        return WebhookEvent.Status.IGNORED, "Unsupported object type."
    newest = WebhookEvent.objects.filter(
        connection=connection,
        object_type=event.object_type,
        object_id=event.object_id,
        property_name=event.property_name,
        status=WebhookEvent.Status.APPLIED,
    ).aggregate(newest=Max("occurred_at"))["newest"]
    if newest is not None and (
        event.occurred_at is None or event.occurred_at <= newest
    ):
        return (
            WebhookEvent.Status.STALE,
            f"Occurred at {event.occurred_at}, not after the applied {newest}.",
        )
    ctx = _context(connection)
    if event.deleted:
        deleted = base.CrmRecord(
            id=event.object_id,
            modified_at=event.occurred_at or timezone.now(),
            properties={},
            archived=True,
            archived_at=event.occurred_at,
        )
        if event.object_type == base.DEALS:
            archive_deals(ctx, [deleted])
        elif event.object_type in DELETED_OBJECT_TYPES:
            delete_records(ctx, event.object_type, [deleted])
        return WebhookEvent.Status.APPLIED, "Deleted in the CRM."
    connector = connector or connector_for(connection)
    if event.object_type == base.DEALS:
        # As a sync does, the fetch requests the mapped properties and the
        # writer converts their values.
        ctx.deal_fields = deal_field_mappings(connection)
        mapped_properties_request(ctx, connector)
    found = _fetch_and_write(ctx, connector, event)
    if not found:
        return WebhookEvent.Status.IGNORED, "The CRM has no such record."
    message = _errors_message(ctx)
    if any(counts.failed for counts in ctx.counts.values()):
        return WebhookEvent.Status.FAILED, message
    # The record was written. An unfit mapped value or an unusable mapping
    # left only that field unchanged, as in a sync, and fetching the record
    # again would bring the same value, so the event is not retried.
    return WebhookEvent.Status.APPLIED, message


def _errors_message(ctx: SyncContext) -> str:
    """Join the distinct error messages of ``ctx`` in the order they were added."""
    # A replayed stage history writes the record once per step, and each
    # write reports the same unfit value again.
    messages = dict.fromkeys(error["message"] for error in ctx.errors)
    return "; ".join(messages)


def _context(connection: CrmConnection) -> SyncContext:
    """Build the writers' lookups from the mappings the last sync stored."""
    # NOTE: a webhook has no SyncRun. The writers read only the connection,
    # lookups, counts and errors of the context, so ``run`` stays None.
    ctx = SyncContext(connection=connection, run=None)
    ctx.owners = dict(
        OwnerMapping.objects.filter(connection=connection).values_list(
            "owner_id", "membership_id"
        )
    )
    ctx.stages = {
        mapping.crm_stage_id: mapping.stage
        for mapping in StageMapping.objects.filter(
            connection=connection
        ).select_related("stage")
    }
    return ctx


def _fetch_and_write(
    ctx: SyncContext, connector: base.Connector, event: WebhookEvent
) -> bool:
    """Fetch the event's record and write it. Return False when the CRM has none."""
    plan_each_statement()
    history: list = []
    if isinstance(connector, HubSpotConnector) and event.object_type == base.DEALS:
        fetched = connector.fetch_record_with_history(
            base.DEALS, event.object_id, ("dealstage",)
        )
        record = fetched.record if fetched else None
        history = fetched.history.get("dealstage", []) if fetched else []
    else:
        record = connector.fetch_record(event.object_type, event.object_id)
    if record is None:
        return False
    if record.archived and event.object_type == base.DEALS:
        archive_deals(ctx, [record])
        return True
    if history:
        _replay_stage_history(ctx, record, history)
    write_page(ctx, event.object_type, [record])
    return True


def _replay_stage_history(ctx: SyncContext, record: base.CrmRecord, history) -> None:
    """Write each stage the deal passed through since its last recorded change.

    Each past stage is written as a copy of the record with that stage and
    the time it was set, so the writer records one stage change per step at
    its real time. A deal not synced yet is only created from its current
    state, as a first sync would.
    """
    deal = Deal.objects.filter(
        external_source=ctx.source, external_id=record.id
    ).first()
    if deal is None:
        return
    floor = deal.stage_changed_at
    for value, changed_at in history:
        if floor is not None and changed_at <= floor:
            continue
        step = base.CrmRecord(
            id=record.id,
            modified_at=changed_at,
            properties={**record.properties, "dealstage": value},
            associations=record.associations,
        )
        write_page(ctx, base.DEALS, [step])
