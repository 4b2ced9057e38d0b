"""Writes of the outbound settings: webhook endpoints, chat connections, resends.

Each change is written to the audit log, with URLs of chat connections and
secrets left out, because either one lets anyone post as Attain or forge
its signature. Forms check URLs before these functions run
(``notifications.addresses``).
"""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from notifications.models import (
    ChatConnection,
    OutboundDelivery,
    OutboundSettings,
    WebhookEndpoint,
)
from notifications.outbound import LOST_TASK_AFTER, deliveries_queue
from spm.models import Organization, Team, User
from spm.services import audit_log_write

SECRET_PREFIX = "whsec_"


class ResendRejected(ValueError):
    """A resend that cannot be made, with the reason as its message."""


def secret_generate() -> str:
    """Return a new signing secret: the prefix and 32 random bytes in base64url."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _endpoint_snapshot(endpoint: WebhookEndpoint) -> dict:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": sorted(endpoint.event_types),
        "is_active": endpoint.is_active,
    }


def _changes(before: dict, after: dict) -> tuple[dict, dict]:
    changed = [key for key in after if before.get(key) != after[key]]
    return {key: before.get(key) for key in changed}, {
        key: after[key] for key in changed
    }


def _reactivate(target, is_active: bool) -> None:
    """Set ``is_active``; enabling clears the failure record of a disabled target."""
    if is_active and not target.is_active:
        target.consecutive_failures = 0
        target.failing_since = None
        target.disabled_at = None
        target.disabled_reason = ""
    target.is_active = is_active


@transaction.atomic
def endpoint_create(
    *,
    organization: Organization,
    actor: User | None,
    url: str,
    description: str,
    event_types: list[str],
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint with a new secret; return it and the secret in clear text."""
    secret = secret_generate()
    endpoint = WebhookEndpoint(
        organization=organization,
        url=url,
        description=description,
        event_types=sorted(event_types),
        created_by=actor,
    )
    endpoint.secret_set(secret)
    endpoint.save()
    audit_log_write(
        organization=organization,
        actor=actor,
        action="notifications.webhook.create",
        obj=endpoint,
        new=_endpoint_snapshot(endpoint),
    )
    return endpoint, secret


@transaction.atomic
def endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    actor: User | None,
    url: str,
    description: str,
    event_types: list[str],
    is_active: bool,
) -> WebhookEndpoint:
    before = _endpoint_snapshot(endpoint)
    endpoint.url = url
    endpoint.description = description
    endpoint.event_types = sorted(event_types)
    _reactivate(endpoint, is_active)
    old, new = _changes(before, _endpoint_snapshot(endpoint))
    if not new:
        return endpoint
    endpoint.save()
    audit_log_write(
        organization=endpoint.organization,
        actor=actor,
        action="notifications.webhook.update",
        obj=endpoint,
        old=old,
        new=new,
    )
    return endpoint


@transaction.atomic
def endpoint_secret_rotate(*, endpoint: WebhookEndpoint, actor: User | None) -> str:
    """Replace the endpoint's secret at once; return the new one in clear text.

    Deliveries attempted from now on, retries included, are signed with the
    new secret.
    """
    secret = secret_generate()
    endpoint.secret_set(secret)
    endpoint.save(update_fields=["secret_encrypted", "updated_at"])
    audit_log_write(
        organization=endpoint.organization,
        actor=actor,
        action="notifications.webhook.rotate_secret",
        obj=endpoint,
        new={"secret": "rotated"},
    )
    return secret


@transaction.atomic
def endpoint_delete(*, endpoint: WebhookEndpoint, actor: User | None) -> None:
    """Delete the endpoint and its delivery log."""
    audit_log_write(
        organization=endpoint.organization,
        actor=actor,
        action="notifications.webhook.delete",
        obj=endpoint,
        old=_endpoint_snapshot(endpoint),
    )
    endpoint.delete()


def _chat_snapshot(connection: ChatConnection) -> dict:
    return {
        "kind": connection.kind,
        "team": connection.team.name if connection.team else "",
        "url": connection.url_display,
        "is_active": connection.is_active,
    }


@transaction.atomic
def chat_create(
    *,
    organization: Organization,
    actor: User | None,
    kind: str,
    team: Team | None,
    url: str,
) -> ChatConnection:
    connection = ChatConnection(
        organization=organization, kind=kind, team=team, created_by=actor
    )
    connection.url_set(url)
    connection.save()
    audit_log_write(
        organization=organization,
        actor=actor,
        action="notifications.chat.create",
        obj=connection,
        new=_chat_snapshot(connection),
    )
    return connection


@transaction.atomic
def chat_update(
    *,
    connection: ChatConnection,
    actor: User | None,
    kind: str,
    team: Team | None,
    url: str,
    is_active: bool,
) -> ChatConnection:
    """Save a connection; an empty ``url`` keeps the stored one."""
    before = _chat_snapshot(connection)
    connection.kind = kind
    connection.team = team
    if url:
        connection.url_set(url)
    _reactivate(connection, is_active)
    after = _chat_snapshot(connection)
    old, new = _changes(before, after)
    if url and "url" not in new:
        # The same display can hide a changed token.
        old["url"], new["url"] = before["url"], f"{after['url']} (replaced)"
    if not new:
        return connection
    connection.save()
    audit_log_write(
        organization=connection.organization,
        actor=actor,
        action="notifications.chat.update",
        obj=connection,
        old=old,
        new=new,
    )
    return connection


@transaction.atomic
def chat_delete(*, connection: ChatConnection, actor: User | None) -> None:
    audit_log_write(
        organization=connection.organization,
        actor=actor,
        action="notifications.chat.delete",
        obj=connection,
        old=_chat_snapshot(connection),
    )
    connection.delete()


@transaction.atomic
def outbound_settings_save(
    *, organization: Organization, actor: User | None, allow_private_addresses: bool
) -> OutboundSettings:
    row = OutboundSettings.objects.select_for_update().first()
    if row is None:
        row = OutboundSettings(organization=organization)
    before = row.allow_private_addresses
    if row.pk is not None and before == allow_private_addresses:
        return row
    row.allow_private_addresses = allow_private_addresses
    row.updated_by = actor
    row.save()
    if before != allow_private_addresses:
        audit_log_write(
            organization=organization,
            actor=actor,
            action="notifications.outbound_settings.update",
            obj=row,
            old={"allow_private_addresses": before},
            new={"allow_private_addresses": allow_private_addresses},
        )
    return row


@transaction.atomic
def delivery_resend(
    *, delivery: OutboundDelivery, actor: User | None
) -> OutboundDelivery:
    """Queue a new attempt of ``delivery``: a new row with the same body and event id.

    Raises ResendRejected when the endpoint or connection is disabled.
    """
    target = delivery.target
    if not target.is_active:
        raise ResendRejected(
            f"{target} is disabled; enable it before resending the event."
        )
    now = timezone.now()
    copy = OutboundDelivery.objects.create(
        organization=delivery.organization,
        event=delivery.event,
        kind=delivery.kind,
        endpoint=delivery.endpoint,
        chat=delivery.chat,
        resend_of=delivery,
        request_body=delivery.request_body,
        created_at=now,
        next_attempt_at=now + LOST_TASK_AFTER,
    )
    audit_log_write(
        organization=delivery.organization,
        actor=actor,
        action="notifications.delivery.resend",
        obj=copy,
        new={
            "event_id": delivery.event_public_id,
            "resend_of": str(delivery.public_id),
        },
    )
    organization_id = delivery.organization_id
    transaction.on_commit(lambda: deliveries_queue(organization_id, [copy.pk]))
    return copy
