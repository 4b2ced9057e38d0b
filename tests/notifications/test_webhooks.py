"""Webhook and chat delivery to a local receiver: signatures, retries, disabling.

The receiver listens on 127.0.0.1 on a port the OS picks. DEBUG is on in
these tests so that plain http:// is accepted, and the organisation allows
private addresses, because the receiver is on loopback.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import socket

import pytest
from django.core import mail
from django.db import transaction

from notifications import outbound
from notifications import outbound_services as services
from notifications.models import ChatConnection, Event, OutboundDelivery
from spm.models import Team
from tests.notifications.conftest import at, prefer, raise_event
from tests.notifications.receiver import Reply

Status = OutboundDelivery.Status
T0 = "2024-05-14T10:00"


@pytest.fixture
def private_allowed(settings, credentials_key, personas, in_org):
    settings.DEBUG = True
    settings.ATTAIN_BASE_URL = "https://attain.example.test"
    services.outbound_settings_save(
        organization=personas.org, actor=None, allow_private_addresses=True
    )


def endpoint_at(url: str, organization, types=("lead.assigned",)):
    return services.endpoint_create(
        organization=organization,
        actor=None,
        url=url,
        description="Receiver",
        event_types=list(types),
    )


@pytest.fixture
def hook(private_allowed, personas, receiver):
    """An endpoint on the receiver for lead.assigned; returns (endpoint, secret)."""
    return endpoint_at(receiver.url(), personas.org)


def closed_port() -> int:
    """Return a loopback port that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def expected_signature(secret: str, timestamp: str, body: str) -> str:
    message = f"{timestamp}.{body}".encode()
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def test_signed_webhook_verifies(
    hook, receiver, personas, clock, django_capture_on_commit_callbacks
):
    _endpoint, secret = hook
    now = clock.set(at(T0))

    with django_capture_on_commit_callbacks(execute=True):
        event = raise_event(personas.rep1)

    [request] = receiver.requests
    timestamp = request.headers["Attain-Timestamp"]
    assert timestamp == str(int(now.timestamp()))
    assert request.headers["Attain-Signature"] == expected_signature(
        secret, timestamp, request.body
    )
    assert request.headers["Attain-Event-Id"] == str(event.public_id)
    assert request.headers["Content-Type"] == "application/json"
    assert request.path == "/hook"


def test_webhook_body_fields(
    hook, receiver, personas, clock, django_capture_on_commit_callbacks
):
    clock.set(at(T0))

    with django_capture_on_commit_callbacks(execute=True):
        event = raise_event(personas.rep1, payload={"lead": "Ann Lee"})

    body = json.loads(receiver.requests[0].body)
    assert body["id"] == str(event.public_id)
    assert body["type"] == "lead.assigned"
    assert body["created"] == "2024-05-14T10:00:00Z"
    assert body["organization"] == {"slug": "acme", "name": "Acme"}
    assert body["data"]["title"] == "New lead assigned to you: Ann Lee"
    assert body["data"]["url"] == "https://attain.example.test/o/acme/leads/mine/"
    assert body["data"]["payload"] == {"lead": "Ann Lee"}


def test_delivery_records_request_and_response(
    hook, receiver, personas, clock, django_capture_on_commit_callbacks
):
    clock.set(at(T0))
    receiver.replies = [Reply(202, "accepted by receiver")]

    with django_capture_on_commit_callbacks(execute=True):
        raise_event(personas.rep1)

    delivery = OutboundDelivery.objects.get()
    assert delivery.status == Status.SENT
    assert delivery.attempts == 1
    assert delivery.response_status == 202
    assert delivery.response_excerpt == "accepted by receiver"
    assert delivery.request_body == receiver.requests[0].body
    assert (
        delivery.request_headers["Attain-Signature"]
        == (receiver.requests[0].headers["Attain-Signature"])
    )
    assert delivery.sent_at == at(T0)
    assert delivery.next_attempt_at is None


def test_failed_then_retried_keeps_event_id(
    hook, receiver, personas, clock, django_capture_on_commit_callbacks
):
    endpoint, secret = hook
    clock.set(at(T0))
    receiver.replies = [Reply(500, "busy"), Reply(200)]

    with django_capture_on_commit_callbacks(execute=True):
        event = raise_event(personas.rep1)

    delivery = OutboundDelivery.objects.get()
    assert delivery.status == Status.PENDING
    assert delivery.response_status == 500
    assert delivery.error == "HTTP 500 from the endpoint."
    assert delivery.next_attempt_at == at("2024-05-14T10:01")

    assert outbound.outbound_deliveries_send_due(now=at("2024-05-14T10:00:59")) == 0
    assert outbound.outbound_deliveries_send_due(now=at("2024-05-14T10:01")) == 1

    first, second = receiver.requests
    assert first.headers["Attain-Event-Id"] == str(event.public_id)
    assert second.headers["Attain-Event-Id"] == str(event.public_id)
    assert second.body == first.body
    assert second.headers["Attain-Timestamp"] == str(
        int(at("2024-05-14T10:01").timestamp())
    )
    assert second.headers["Attain-Signature"] == expected_signature(
        secret, second.headers["Attain-Timestamp"], second.body
    )
    delivery.refresh_from_db()
    assert delivery.status == Status.SENT
    assert delivery.attempts == 2
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0
    assert endpoint.failing_since is None


def test_timeout_is_a_failure(
    hook, receiver, personas, clock, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(outbound, "SEND_TIMEOUT", 0.3)
    clock.set(at(T0))
    receiver.replies = [Reply(200, delay=1.0)]

    with django_capture_on_commit_callbacks(execute=True):
        raise_event(personas.rep1)

    delivery = OutboundDelivery.objects.get()
    assert delivery.status == Status.PENDING
    assert delivery.error.startswith("Timed out")
    assert delivery.response_status is None
    assert delivery.next_attempt_at == at("2024-05-14T10:01")


def test_redirect_not_followed(
    hook, receiver, personas, clock, django_capture_on_commit_callbacks
):
    clock.set(at(T0))
    elsewhere = receiver.url("/elsewhere")
    receiver.replies = [Reply(302, "", headers={"Location": elsewhere})]

    with django_capture_on_commit_callbacks(execute=True):
        raise_event(personas.rep1)

    assert [request.path for request in receiver.requests] == ["/hook"]
    delivery = OutboundDelivery.objects.get()
    assert delivery.status == Status.PENDING
    assert delivery.response_status == 302
    assert delivery.error == f"HTTP 302: redirect to {elsewhere!r} not followed."


def test_failing_endpoint_leaves_feature_committed(
    private_allowed, personas, clock, django_capture_on_commit_callbacks
):
    endpoint_at(f"http://127.0.0.1:{closed_port()}/hook", personas.org)
    clock.set(at(T0))

    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            Team.objects.create(organization=personas.org, name="Feature row")
            event = raise_event(personas.rep1)

    assert Team.objects.filter(name="Feature row").exists()
    assert event is not None
    delivery = OutboundDelivery.objects.get()
    assert delivery.status == Status.PENDING
    assert delivery.attempts == 1
    assert delivery.error.startswith("ConnectionRefusedError")


def test_rolled_back_feature_sends_nothing(
    hook, receiver, personas, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                raise_event(personas.rep1)
                raise RuntimeError("the feature failed")

    assert receiver.requests == []
    assert not OutboundDelivery.objects.exists()


def test_unsubscribed_type_not_sent(
    hook, receiver, personas, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        raise_event(personas.rep1, "import.failed")

    assert receiver.requests == []
    assert not OutboundDelivery.objects.exists()


def test_event_without_recipients_still_sent(
    hook, receiver, personas, django_capture_on_commit_callbacks
):
    from notifications.services import notify

    with django_capture_on_commit_callbacks(execute=True):
        notify(personas.org, "lead.assigned", [], title="Nobody's lead")

    assert len(receiver.requests) == 1


def test_rebinding_to_loopback_rejected_at_send(
    credentials_key, personas, in_org, resolver, clock, receiver
):
    # Saved while the name pointed at a public address; at send time it
    # resolves to loopback, and private addresses are not allowed.
    resolver.names["hooks.example.test"] = ["93.184.216.34"]
    endpoint_at("https://hooks.example.test/in", personas.org)
    resolver.names["hooks.example.test"] = ["127.0.0.1"]
    clock.set(at(T0))
    raise_event(personas.rep1)
    delivery = OutboundDelivery.objects.get()

    assert outbound.outbound_delivery_send(delivery_id=delivery.pk) == Status.PENDING

    delivery.refresh_from_db()
    assert delivery.error.startswith(
        "UnsafeURL: The URL https://hooks.example.test points at 127.0.0.1, "
        "which is not public (loopback)."
    )
    assert delivery.response_status is None
    assert receiver.requests == []


def test_retry_schedule_doubles_until_window_ends(hook, personas, clock):
    clock.set(at(T0))
    raise_event(personas.rep1)
    delivery = OutboundDelivery.objects.get()

    retries = []
    now = at(T0)
    for attempts in range(1, 13):
        delivery.attempts = attempts
        now = outbound.retry_at(delivery, now)
        if now is None:
            break
        retries.append(round((now - at(T0)).total_seconds() / 60))

    assert retries == [1, 3, 7, 15, 31, 63, 127, 255, 511, 1023, 1440]
    assert attempts == 12


def test_last_retry_failure_fails_for_good(private_allowed, personas, clock):
    endpoint_at(f"http://127.0.0.1:{closed_port()}/hook", personas.org)
    clock.set(at(T0))
    raise_event(personas.rep1)
    delivery = OutboundDelivery.objects.get()
    delivery.attempts = 11
    delivery.next_attempt_at = at("2024-05-15T10:00")
    delivery.save()

    outbound.outbound_deliveries_send_due(now=at("2024-05-15T10:00"))

    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED
    assert delivery.attempts == 12
    assert delivery.next_attempt_at is None


def test_failing_for_a_day_disables_and_emails_admins(
    private_allowed, personas, clock, django_capture_on_commit_callbacks
):
    url = f"http://127.0.0.1:{closed_port()}/hook"
    endpoint, _secret = endpoint_at(url, personas.org)
    clock.set(at(T0))
    with django_capture_on_commit_callbacks(execute=True):
        raise_event(personas.rep1)
    # A second event, raised later, still waits for its first retry.
    clock.set(at("2024-05-15T09:59"))
    raise_event(personas.rep2)
    first, waiting = OutboundDelivery.objects.order_by("created_at")

    with django_capture_on_commit_callbacks(execute=True):
        outbound.outbound_deliveries_send_due(now=at("2024-05-15T09:59:59"))
    endpoint.refresh_from_db()
    assert endpoint.is_active
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        outbound.outbound_deliveries_send_due(now=at("2024-05-15T10:00"))

    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert endpoint.disabled_at == at("2024-05-15T10:00")
    assert "every attempt has failed since 2024-05-14" in endpoint.disabled_reason
    first.refresh_from_db()
    waiting.refresh_from_db()
    assert first.status == Status.FAILED
    assert waiting.status == Status.FAILED
    assert waiting.error.startswith("Not sent: the target was disabled.")
    [message] = mail.outbox
    assert message.to == [personas.admin.user.email]
    assert message.subject == f"Webhook endpoint disabled: {url} · Acme"
    assert "enable it again" in message.body


def test_disabled_endpoint_gets_no_new_rows(
    hook, receiver, personas, django_capture_on_commit_callbacks
):
    endpoint, _secret = hook
    endpoint.is_active = False
    endpoint.save()

    with django_capture_on_commit_callbacks(execute=True):
        raise_event(personas.rep1)

    assert receiver.requests == []
    assert not OutboundDelivery.objects.exists()


def test_resend_keeps_event_id(
    hook, receiver, personas, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        event = raise_event(personas.rep1)
    original = OutboundDelivery.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        copy = services.delivery_resend(delivery=original, actor=None)

    first, second = receiver.requests
    assert second.headers["Attain-Event-Id"] == str(event.public_id)
    assert second.body == first.body
    copy.refresh_from_db()
    assert copy.resend_of == original
    assert copy.status == Status.SENT


def test_resend_of_disabled_endpoint_rejected(hook, personas):
    endpoint, _secret = hook
    raise_event(personas.rep1)
    endpoint.is_active = False
    endpoint.save()

    with pytest.raises(services.ResendRejected, match="is disabled; enable it"):
        services.delivery_resend(delivery=OutboundDelivery.objects.get(), actor=None)


def test_rotated_secret_signs_retries(
    hook, receiver, personas, clock, django_capture_on_commit_callbacks
):
    endpoint, old_secret = hook
    clock.set(at(T0))
    receiver.replies = [Reply(500), Reply(200)]
    with django_capture_on_commit_callbacks(execute=True):
        raise_event(personas.rep1)

    new_secret = services.endpoint_secret_rotate(endpoint=endpoint, actor=None)
    outbound.outbound_deliveries_send_due(now=at("2024-05-14T10:01"))

    retry = receiver.requests[1]
    timestamp = retry.headers["Attain-Timestamp"]
    assert new_secret != old_secret
    assert new_secret.startswith("whsec_")
    assert retry.headers["Attain-Signature"] == expected_signature(
        new_secret, timestamp, retry.body
    )


# The worked example of docs/webhooks.md: the body, timestamp, secret and
# signature there must match what Attain builds and computes.
DOCUMENTED_BODY = (
    '{"id":"5f0c6b1e-8d0a-4c56-9a43-6f5e2d1c0b7a","type":"lead.assigned",'
    '"created":"2024-05-14T10:00:00Z","organization":{"slug":"acme","name":"Acme"},'
    '"data":{"title":"New lead assigned to you: Ann Lee","summary":"",'
    '"url":"https://attain.example.com/o/acme/leads/mine/",'
    '"object":{"type":"activity.lead","id":"0b9e3c52-2f4e-4d8e-9a5b-1c2d3e4f5a6b"},'
    '"urgency":"normal","payload":{"lead":"Ann Lee"}}}'
)
DOCUMENTED_SIGNATURE = (
    "4c98dde27a6afde3192e96e58fc2a2a5509dbb311932a3ee04452707d00d8cab"
)


def test_documented_example_body(settings, personas):
    settings.ATTAIN_BASE_URL = "https://attain.example.com"
    event = Event(
        organization=personas.org,
        public_id="5f0c6b1e-8d0a-4c56-9a43-6f5e2d1c0b7a",
        type="lead.assigned",
        object_type="activity.lead",
        object_public_id="0b9e3c52-2f4e-4d8e-9a5b-1c2d3e4f5a6b",
        url="/o/acme/leads/mine/",
        title="New lead assigned to you: Ann Lee",
        payload={"lead": "Ann Lee"},
        urgency="normal",
        created_at=dt.datetime(2024, 5, 14, 10, tzinfo=dt.UTC),
    )

    assert outbound.webhook_body(event, personas.org) == DOCUMENTED_BODY


def test_documented_example_signature():
    value = outbound.signature("whsec_example", "1715680800", DOCUMENTED_BODY)

    assert value == DOCUMENTED_SIGNATURE


# Chat ---------------------------------------------------------------------------


def chat_at(url: str, kind: str, organization, team=None) -> ChatConnection:
    return services.chat_create(
        organization=organization, actor=None, kind=kind, team=team, url=url
    )


def test_slack_gets_text(
    private_allowed, receiver, personas, django_capture_on_commit_callbacks
):
    chat_at(receiver.url("/slack"), "slack", personas.org)
    prefer(personas.rep1, "lead.assigned", "in_app", "chat")

    with django_capture_on_commit_callbacks(execute=True):
        raise_event(personas.rep1, summary="From the web form")

    [request] = receiver.requests
    assert request.path == "/slack"
    assert json.loads(request.body) == {
        "text": "*New lead assigned to you: Ann Lee*\nFrom the web form\n"
        "<https://attain.example.test/o/acme/leads/mine/|Open in Attain>"
    }
    assert "Attain-Signature" not in request.headers
    delivery = OutboundDelivery.objects.get()
    assert delivery.kind == OutboundDelivery.Kind.SLACK
    assert delivery.status == Status.SENT


def test_teams_gets_message_card(
    private_allowed, receiver, personas, django_capture_on_commit_callbacks
):
    chat_at(receiver.url("/teams"), "teams", personas.org)
    prefer(personas.rep1, "lead.assigned", "chat")

    with django_capture_on_commit_callbacks(execute=True):
        raise_event(personas.rep1)

    assert json.loads(receiver.requests[0].body) == {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": "New lead assigned to you: Ann Lee",
        "title": "New lead assigned to you: Ann Lee",
        "text": "New lead assigned to you: Ann Lee",
        "potentialAction": [
            {
                "@type": "OpenUri",
                "name": "Open in Attain",
                "targets": [
                    {
                        "os": "default",
                        "uri": "https://attain.example.test/o/acme/leads/mine/",
                    }
                ],
            }
        ],
    }


def test_chat_only_for_members_who_chose_it(
    private_allowed, receiver, personas, django_capture_on_commit_callbacks
):
    chat_at(receiver.url("/slack"), "slack", personas.org)

    with django_capture_on_commit_callbacks(execute=True):
        raise_event(personas.rep1)

    assert receiver.requests == []


def test_team_connection_wins_over_organisation(
    private_allowed, receiver, personas, django_capture_on_commit_callbacks
):
    east = personas.rep1.team
    chat_at(receiver.url("/everyone"), "slack", personas.org)
    chat_at(receiver.url("/east"), "slack", personas.org, team=east)
    for rep in (personas.rep1, personas.rep2, personas.rep3):
        prefer(rep, "lead.assigned", "chat")

    with django_capture_on_commit_callbacks(execute=True):
        # Rita and Rob are on East, Remy on West, which has no connection.
        first = raise_event(personas.rep1)
        from notifications.services import notify

        second = notify(
            personas.org,
            "lead.assigned",
            [personas.rep2, personas.rep3],
            title="Shared lead",
        )

    paths = sorted(
        (delivery.event_public_id, delivery.chat.url.rsplit("/", 1)[1])
        for delivery in OutboundDelivery.objects.select_related("event", "chat")
    )
    assert paths == sorted(
        [
            (str(first.public_id), "east"),
            (str(second.public_id), "east"),
            (str(second.public_id), "everyone"),
        ]
    )
    assert len(receiver.requests) == 3


def test_chat_failure_retried_like_webhooks(
    private_allowed, personas, clock, django_capture_on_commit_callbacks
):
    chat_at(f"http://127.0.0.1:{closed_port()}/slack", "slack", personas.org)
    prefer(personas.rep1, "lead.assigned", "chat")
    clock.set(at(T0))

    with django_capture_on_commit_callbacks(execute=True):
        raise_event(personas.rep1)

    delivery = OutboundDelivery.objects.get()
    assert delivery.status == Status.PENDING
    assert delivery.next_attempt_at == at("2024-05-14T10:01")
    assert delivery.error.startswith("ConnectionRefusedError")


def test_events_keep_no_chat_url(private_allowed, receiver, personas):
    connection = chat_at(receiver.url("/slack"), "slack", personas.org)

    assert receiver.url("/slack") not in connection.url_encrypted
    assert connection.url_display == f"127.0.0.1:{receiver.port}/…lack"
    assert not Event.objects.exists()
