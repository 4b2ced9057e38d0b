"""Outbound delivery: signed webhooks, and Slack and Teams messages, with retries.

``notify`` calls ``deliveries_create`` in its savepoint: one row per event
and webhook endpoint subscribed to the event's type, and one per event and
chat connection of the members who chose "chat". When the feature's
transaction commits, a Celery task per row sends it.

Every attempt holds the row lock, checks the URL again on freshly resolved
addresses (``notifications.addresses``), connects to a checked address,
never follows a redirect, and records the outcome on the row. A failed
attempt (no 2xx status, a timeout, a refused connection) waits 1, 2, 4 ...
minutes, doubling each time, and the last retry runs 24 hours after the
row was created. Every retry sends the same body, so the same event id.

A target (endpoint or chat connection) whose attempts have failed with no
success for 24 hours is disabled at the next failure, its waiting rows
fail, and the organisation's admins get an email.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from integrations.crypto import CredentialsUnreadable
from notifications.addresses import (
    Target,
    UnsafeURL,
    url_check,
    url_secrets_removed,
)
from notifications.models import (
    ChatConnection,
    Event,
    OutboundDelivery,
    OutboundSettings,
    WebhookEndpoint,
)
from routing.config_cache import cached
from spm.models import Membership, Organization
from spm.tenancy import get_current_organization, tenant_context

logger = logging.getLogger(__name__)

# Seconds that connecting, sending and each read may take.
# NOTE: the limit applies to each socket operation, not to the whole
# request, so a receiver that sends its response slowly can hold a worker
# (and the row lock) longer than this.
SEND_TIMEOUT = 5
RETRY_BASE_DELAY = dt.timedelta(minutes=1)
RETRY_WINDOW = dt.timedelta(hours=24)
# A target whose attempts have all failed for this long is disabled.
DISABLE_AFTER = dt.timedelta(hours=24)
# A new row is sent at once by its queued task. If that task is lost, the
# beat task sends the row this long after its creation.
LOST_TASK_AFTER = dt.timedelta(minutes=2)
SWEEP_LIMIT = 500
# Characters of the response body and of the error text kept on a row.
EXCERPT_MAX_CHARS = 2000
USER_AGENT = "Attain-Webhooks/1"

EVENT_ID_HEADER = "Attain-Event-Id"
TIMESTAMP_HEADER = "Attain-Timestamp"
SIGNATURE_HEADER = "Attain-Signature"

PENDING = OutboundDelivery.Status.PENDING
SENT = OutboundDelivery.Status.SENT
FAILED = OutboundDelivery.Status.FAILED
Kind = OutboundDelivery.Kind


# Bodies and signatures -------------------------------------------------------


def _absolute(path: str) -> str:
    if not path:
        return ""
    return settings.ATTAIN_BASE_URL.rstrip("/") + path


def _dumps(value: dict) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"))


def webhook_body(event: Event, organization: Organization) -> str:
    """Return the JSON body of ``event`` as webhook endpoints receive it."""
    return _dumps(
        {
            "id": str(event.public_id),
            "type": event.type,
            "created": event.created_at,
            "organization": {"slug": organization.slug, "name": organization.name},
            "data": {
                "title": event.title,
                "summary": event.summary,
                "url": _absolute(event.url),
                "object": {
                    "type": event.object_type,
                    "id": event.object_public_id,
                },
                "urgency": event.urgency,
                "payload": event.payload,
            },
        }
    )


def slack_body(event: Event) -> str:
    lines = [f"*{event.title}*"]
    if event.summary:
        lines.append(event.summary)
    if event.url:
        lines.append(f"<{_absolute(event.url)}|Open in Attain>")
    return _dumps({"text": "\n".join(lines)})


def teams_body(event: Event) -> str:
    """Return a MessageCard, the format that Teams incoming webhooks accept."""
    card: dict = {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": event.title,
        "title": event.title,
        "text": event.summary or event.title,
    }
    if event.url:
        card["potentialAction"] = [
            {
                "@type": "OpenUri",
                "name": "Open in Attain",
                "targets": [{"os": "default", "uri": _absolute(event.url)}],
            }
        ]
    return _dumps(card)


def signature(secret: str, timestamp: str, body: str) -> str:
    """Return the hex HMAC-SHA256 of "<timestamp>.<body>" under ``secret``."""
    message = f"{timestamp}.{body}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_headers(event_id: str, secret: str, body: str, now: dt.datetime):
    timestamp = str(int(now.timestamp()))
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_ID_HEADER: event_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: f"sha256={signature(secret, timestamp, body)}",
    }


# Creating rows inside notify() ------------------------------------------------


def _chat_targets(
    connections: list[ChatConnection], members: list[Membership]
) -> list[ChatConnection]:
    """Return the connections that reach ``members``.

    Each member is reached by their team's connections, or by the
    organisation-wide ones when their team has none.
    """
    by_team: dict[int | None, list[ChatConnection]] = {}
    for connection in connections:
        by_team.setdefault(connection.team_id, []).append(connection)
    chosen: dict[int, ChatConnection] = {}
    for member in members:
        for connection in by_team.get(member.team_id) or by_team.get(None, []):
            chosen[connection.pk] = connection
    return list(chosen.values())


def deliveries_create(
    organization: Organization,
    event_type: str,
    events: list[Event],
    chat_members: dict[int, list[Membership]],
    now: dt.datetime,
) -> list[OutboundDelivery]:
    """Write the outbound rows of ``events``; their sending is queued on commit.

    ``chat_members`` maps an event's id to the members who chose chat for
    it. One query for the endpoints, one more when anyone chose chat, and
    one insert.
    """
    endpoints = [
        endpoint
        for endpoint in cached(
            "webhook_endpoints",
            lambda: list(WebhookEndpoint.objects.filter(is_active=True).order_by("id")),
        )
        if event_type in endpoint.event_types
    ]
    connections: list[ChatConnection] = []
    if any(chat_members.values()):
        connections = cached(
            "chat_connections",
            lambda: list(ChatConnection.objects.filter(is_active=True).order_by("id")),
        )
    common = {
        "organization": organization,
        "created_at": now,
        "next_attempt_at": now + LOST_TASK_AFTER,
    }
    rows = []
    for event in events:
        if endpoints:
            body = webhook_body(event, organization)
            for endpoint in endpoints:
                rows.append(
                    OutboundDelivery(
                        **common,
                        event=event,
                        kind=Kind.WEBHOOK,
                        endpoint=endpoint,
                        request_body=body,
                    )
                )
        for connection in _chat_targets(connections, chat_members.get(event.pk, [])):
            is_slack = connection.kind == ChatConnection.Kind.SLACK
            rows.append(
                OutboundDelivery(
                    **common,
                    event=event,
                    kind=Kind.SLACK if is_slack else Kind.TEAMS,
                    chat=connection,
                    request_body=slack_body(event) if is_slack else teams_body(event),
                )
            )
    if not rows:
        return []
    rows = OutboundDelivery.objects.bulk_create(rows)
    ids = [row.pk for row in rows]
    transaction.on_commit(lambda: deliveries_queue(organization.pk, ids))
    return rows


def deliveries_queue(organization_id: int, delivery_ids: list[int]) -> None:
    from notifications.tasks import outbound_delivery_send_task

    for delivery_id in delivery_ids:
        try:
            outbound_delivery_send_task.delay(organization_id, delivery_id)
        except Exception:
            # The row is pending with a next attempt time: the beat task
            # sends it when that time has passed.
            logger.exception(
                "Could not queue outbound delivery %s; the beat task will send it",
                delivery_id,
                extra={"organization_id": organization_id, "delivery_id": delivery_id},
            )


# Sending ----------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    excerpt: str
    location: str


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a checked address, sending the URL's host as Host."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to a checked address; the certificate must match the host."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def http_post(target: Target, body: bytes, headers: dict[str, str]) -> Response:
    """POST ``body`` to the first checked address of ``target``; follow no redirect.

    The other addresses of the host are not tried when the first one fails.

    Raises OSError (timeouts included) and http.client.HTTPException.
    """
    connection_class = (
        _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    )
    connection = connection_class(
        target.host, target.port, target.addresses[0], SEND_TIMEOUT
    )
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        excerpt = response.read(EXCERPT_MAX_CHARS).decode("utf-8", "replace")
        return Response(response.status, excerpt, response.getheader("Location", ""))
    finally:
        connection.close()


def allow_private_addresses() -> bool:
    """Return the current organisation's setting. One query."""
    return OutboundSettings.objects.filter(allow_private_addresses=True).exists()


def retry_at(delivery: OutboundDelivery, now: dt.datetime) -> dt.datetime | None:
    """Return when to try ``delivery`` again after a failure, or None to give up.

    The wait doubles from one minute, and the last retry is at the end of
    the 24-hour window that starts at the row's creation.
    """
    deadline = delivery.created_at + RETRY_WINDOW
    if now >= deadline:
        return None
    wait = RETRY_BASE_DELAY * 2 ** min(delivery.attempts - 1, 20)
    return min(now + wait, deadline)


def _attempt(delivery: OutboundDelivery, now: dt.datetime) -> None:
    """Send one delivery of the current organisation and record the outcome."""
    target = delivery.target
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.response_status = None
    delivery.response_excerpt = ""
    delivery.error = ""

    try:
        checked = url_check(target.url, allow_private=allow_private_addresses())
        if delivery.kind == Kind.WEBHOOK:
            headers = webhook_headers(
                delivery.event_public_id, target.secret, delivery.request_body, now
            )
        else:
            headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        delivery.request_headers = headers
        response = http_post(checked, delivery.request_body.encode(), headers)
    except (
        UnsafeURL,
        CredentialsUnreadable,
        OSError,
        http.client.HTTPException,
    ) as error:
        # OSError covers refused connections, DNS failures, TLS errors and
        # timeouts (socket.timeout is TimeoutError).
        name = "Timed out" if isinstance(error, TimeoutError) else type(error).__name__
        # http.client quotes a bad path, which may be a chat URL's token.
        message = url_secrets_removed(f"{name}: {error}", target.url)
        _failed(delivery, message, now)
        return

    delivery.response_status = response.status
    delivery.response_excerpt = response.excerpt
    if 200 <= response.status < 300:
        delivery.status = SENT
        delivery.sent_at = now
        delivery.next_attempt_at = None
        _target_succeeded(delivery)
        return

    if 300 <= response.status < 400:
        error = (
            f"HTTP {response.status}: redirect to {response.location!r} not followed."
        )
    else:
        error = f"HTTP {response.status} from the endpoint."
    _failed(delivery, error, now)


def _failed(delivery: OutboundDelivery, error: str, now: dt.datetime) -> None:
    delivery.error = error[:EXCERPT_MAX_CHARS]
    delivery.next_attempt_at = retry_at(delivery, now)
    delivery.status = PENDING if delivery.next_attempt_at else FAILED
    logger.warning(
        "Outbound delivery %s failed (attempt %s): %s",
        delivery.pk,
        delivery.attempts,
        delivery.error,
        extra={
            "organization_id": delivery.organization_id,
            "delivery_id": delivery.pk,
            "event_id": delivery.event_public_id,
        },
    )
    if _target_failed(delivery, now):
        delivery.status = FAILED
        delivery.next_attempt_at = None


def _target_model(delivery: OutboundDelivery):
    return WebhookEndpoint if delivery.endpoint_id else ChatConnection


def _target_succeeded(delivery: OutboundDelivery) -> None:
    _target_model(delivery).objects.filter(pk=delivery.target.pk).update(
        consecutive_failures=0, failing_since=None
    )


def _target_failed(delivery: OutboundDelivery, now: dt.datetime) -> bool:
    """Count a failure against the delivery's target; return whether it was disabled."""
    model = _target_model(delivery)
    target = model.objects.select_for_update().get(pk=delivery.target.pk)
    model.objects.filter(pk=target.pk).update(
        consecutive_failures=F("consecutive_failures") + 1,
        failing_since=Coalesce(F("failing_since"), now),
    )
    if not target.is_active or target.failing_since is None:
        return False
    if now - target.failing_since < DISABLE_AFTER:
        return False
    target_disable(target, now)
    return True


def target_disable(target, now: dt.datetime) -> None:
    """Disable a failing endpoint or chat connection and email the admins.

    Its waiting rows fail, because no attempt will be made for them.
    """
    since = timezone.localtime(
        target.failing_since, get_current_organization().zoneinfo
    )
    reason = (
        f"Disabled on {now:%Y-%m-%d %H:%M} UTC: every attempt has failed since "
        f"{since:%Y-%m-%d %H:%M %Z}."
    )
    type(target).objects.filter(pk=target.pk).update(
        is_active=False, disabled_at=now, disabled_reason=reason
    )
    waiting = OutboundDelivery.objects.filter(status=PENDING)
    if isinstance(target, WebhookEndpoint):
        waiting = waiting.filter(endpoint=target)
    else:
        waiting = waiting.filter(chat=target)
    waiting.update(
        status=FAILED,
        next_attempt_at=None,
        error=f"Not sent: the target was disabled. {reason}",
    )
    organization = get_current_organization()
    logger.warning(
        "Outbound target %s disabled after failing for %s",
        target.public_id,
        DISABLE_AFTER,
        extra={"organization_id": organization.pk},
    )
    transaction.on_commit(lambda: _email_admins(organization, target, reason))


def _email_admins(organization: Organization, target, reason: str) -> None:
    from notifications.delivery import member_address

    with tenant_context(organization):
        admins = list(
            Membership.objects.filter(
                role=Membership.Role.ADMIN, is_active=True
            ).select_related("user")
        )
        name = "Webhook endpoint" if isinstance(target, WebhookEndpoint) else "Chat"
        path = reverse("notifications:webhooks", kwargs={"org_slug": organization.slug})
        subject = f"{name} disabled: {target} · {organization.name}"
        text = (
            f"Attain disabled the {name.lower()} {target} of {organization.name}.\n\n"
            f"{reason}\n\nFix the receiving side, then enable it again on "
            f"{_absolute(path)}\n"
        )
        for admin in admins:
            address = member_address(admin)
            if not address:
                continue
            try:
                send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, [address])
            except Exception:
                # Mail backends raise many types; the target stays disabled
                # and its page shows why.
                logger.exception(
                    "Could not email admin %s about disabled target %s",
                    admin.pk,
                    target.public_id,
                    extra={"organization_id": organization.pk},
                )


def _is_due(delivery: OutboundDelivery, now: dt.datetime) -> bool:
    if delivery.status != PENDING:
        return False
    if delivery.attempts == 0:
        return True
    return delivery.next_attempt_at is not None and delivery.next_attempt_at <= now


def _prepare(delivery: OutboundDelivery, now: dt.datetime) -> bool:
    """Fail a row whose target is disabled; return whether to attempt it."""
    if delivery.target.is_active:
        return True
    delivery.status = FAILED
    delivery.next_attempt_at = None
    delivery.error = "Not sent: the target is disabled."
    return False


RELATED = ("event", "endpoint", "chat")


def outbound_delivery_send(*, delivery_id: int, now: dt.datetime | None = None) -> str:
    """Attempt one outbound delivery of the current organisation if it is due.

    Returns the row's status afterwards, "locked" when another worker has
    locked the row, or "missing".
    """
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (
            OutboundDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related(*RELATED)
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            exists = OutboundDelivery.objects.filter(pk=delivery_id).exists()
            return "locked" if exists else "missing"
        if not _is_due(delivery, now):
            return delivery.status
        if _prepare(delivery, now):
            _attempt(delivery, now)
        delivery.save()
        return delivery.status


def outbound_deliveries_send_due(
    *, now: dt.datetime | None = None, limit: int = SWEEP_LIMIT
) -> int:
    """Attempt the due outbound rows of every organisation. Returns the count.

    Due are the retries whose wait has passed and new rows whose task was
    lost. Each is taken with ``SELECT ... FOR UPDATE SKIP LOCKED`` in its
    own transaction. A row whose attempt raises is logged and skipped for
    the rest of this run.
    """
    now = now or timezone.now()
    handled = 0
    broken: list[int] = []
    while handled + len(broken) < limit:
        delivery_id = None
        try:
            with transaction.atomic():
                delivery = (
                    OutboundDelivery.unscoped.select_for_update(
                        skip_locked=True, of=("self",)
                    )
                    .select_related("organization", *RELATED)
                    .filter(status=PENDING, next_attempt_at__lte=now)
                    .exclude(pk__in=broken)
                    .order_by("next_attempt_at", "id")
                    .first()
                )
                if delivery is None:
                    break
                delivery_id = delivery.pk
                with tenant_context(delivery.organization):
                    if _prepare(delivery, now):
                        _attempt(delivery, now)
                    delivery.save()
        except Exception:
            if delivery_id is None:
                raise
            logger.exception("Outbound delivery %s could not be attempted", delivery_id)
            broken.append(delivery_id)
            continue
        handled += 1
    return handled
