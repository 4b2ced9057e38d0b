"""Admin pages of webhooks and chat: forms, secret shown once, log, resend, audit."""

from __future__ import annotations

import pytest
from django.urls import reverse

from notifications import outbound_services as services
from notifications.models import (
    ChatConnection,
    Event,
    OutboundDelivery,
    OutboundSettings,
    WebhookEndpoint,
)
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.conftest import login


def url(name: str, **kwargs) -> str:
    return reverse(f"notifications:{name}", kwargs={"org_slug": "acme", **kwargs})


@pytest.fixture
def admin(client, personas, credentials_key):
    login(client, personas.admin)
    return client


def allow_private(organization) -> None:
    with tenant_context(organization):
        services.outbound_settings_save(
            organization=organization, actor=None, allow_private_addresses=True
        )


def make_endpoint(organization, address="https://127.0.0.1:9/hook"):
    with tenant_context(organization):
        endpoint, _secret = services.endpoint_create(
            organization=organization,
            actor=None,
            url=address,
            description="",
            event_types=["lead.assigned"],
        )
    return endpoint


def make_deliveries(endpoint, count: int) -> None:
    organization = endpoint.organization
    with tenant_context(organization):
        for number in range(count):
            event = Event.objects.create(
                organization=organization, type="lead.assigned", title=f"Lead {number}"
            )
            OutboundDelivery.objects.create(
                organization=organization,
                event=event,
                kind=OutboundDelivery.Kind.WEBHOOK,
                endpoint=endpoint,
                request_body='{"id": "x"}',
                request_headers={"Attain-Event-Id": str(event.public_id)},
                response_status=500,
                error="HTTP 500 from the endpoint.",
                attempts=1,
            )


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("https://10.0.0.1/hook", "10.0.0.1, which is not public (private)"),
        ("https://127.0.0.1/hook", "127.0.0.1, which is not public (loopback)"),
        (
            "https://169.254.169.254/hook",
            "169.254.169.254, which is not public (link-local)",
        ),
        ("https://[::1]/hook", "::1, which is not public (loopback)"),
        ("https://[fd00::1]/hook", "fd00::1, which is not public (private)"),
    ],
)
def test_create_form_rejects_private_address(admin, personas, address, shown):
    response = admin.post(
        url("webhook-new"), {"url": address, "event_types": ["lead.assigned"]}
    )

    assert response.status_code == 400
    [error] = response.context["form"].errors["url"]
    # The message names the scheme and host only, never the path.
    origin = address.removesuffix("/hook")
    assert error.startswith(f"The URL {origin} points at {shown}.")
    assert not WebhookEndpoint.unscoped.exists()


def test_create_form_rejects_http(admin, personas):
    allow_private(personas.org)

    response = admin.post(
        url("webhook-new"),
        {"url": "http://127.0.0.1:9/hook", "event_types": ["lead.assigned"]},
    )

    assert response.status_code == 400
    [error] = response.context["form"].errors["url"]
    assert "use an https:// address" in error


def test_create_shows_secret_once(admin, personas):
    allow_private(personas.org)

    response = admin.post(
        url("webhook-new"),
        {
            "url": "https://127.0.0.1:9/hook",
            "description": "CRM bridge",
            "event_types": ["lead.assigned", "import.failed"],
        },
    )

    endpoint = WebhookEndpoint.unscoped.get()
    detail = url("webhook", endpoint_id=endpoint.public_id)
    assert response.status_code == 302
    assert response["Location"] == detail
    with tenant_context(personas.org):
        secret = endpoint.secret
    first = admin.get(detail)
    assert first.context["secret"] == secret
    assert secret in first.content.decode()
    second = admin.get(detail)
    assert second.context["secret"] is None
    assert secret not in second.content.decode()


def test_create_audited_without_secret(admin, personas):
    allow_private(personas.org)

    admin.post(
        url("webhook-new"),
        {"url": "https://127.0.0.1:9/hook", "event_types": ["lead.assigned"]},
    )

    entry = AuditLog.unscoped.get(action="notifications.webhook.create")
    assert entry.actor == personas.admin.user
    assert entry.new == {
        "url": "https://127.0.0.1:9/hook",
        "description": "",
        "event_types": ["lead.assigned"],
        "is_active": True,
    }
    assert "whsec_" not in str(entry.new)


def test_edit_audits_old_and_new(admin, personas):
    allow_private(personas.org)
    endpoint = make_endpoint(personas.org)

    response = admin.post(
        url("webhook-edit", endpoint_id=endpoint.public_id),
        {
            "url": "https://127.0.0.1:9/v2",
            "description": "",
            "event_types": ["lead.assigned"],
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    entry = AuditLog.unscoped.get(action="notifications.webhook.update")
    assert entry.old == {"url": "https://127.0.0.1:9/hook"}
    assert entry.new == {"url": "https://127.0.0.1:9/v2"}


def test_enabling_clears_failure_record(admin, personas):
    allow_private(personas.org)
    endpoint = make_endpoint(personas.org)
    WebhookEndpoint.unscoped.filter(pk=endpoint.pk).update(
        is_active=False, consecutive_failures=12, disabled_reason="failing"
    )

    admin.post(
        url("webhook-edit", endpoint_id=endpoint.public_id),
        {
            "url": endpoint.url,
            "description": "",
            "event_types": ["lead.assigned"],
            "is_active": "on",
        },
    )

    endpoint.refresh_from_db()
    assert endpoint.is_active
    assert endpoint.consecutive_failures == 0
    assert endpoint.disabled_reason == ""


def test_rotate_shows_new_secret(admin, personas):
    endpoint = make_endpoint(personas.org)
    with tenant_context(personas.org):
        old = endpoint.secret

    admin.post(url("webhook-rotate", endpoint_id=endpoint.public_id))

    endpoint.refresh_from_db()
    with tenant_context(personas.org):
        new = endpoint.secret
    response = admin.get(url("webhook", endpoint_id=endpoint.public_id))
    assert new != old
    assert response.context["secret"] == new
    assert AuditLog.unscoped.filter(
        action="notifications.webhook.rotate_secret"
    ).exists()


def test_delete_removes_endpoint_and_log(admin, personas):
    endpoint = make_endpoint(personas.org)
    make_deliveries(endpoint, 2)

    response = admin.post(url("webhook-delete", endpoint_id=endpoint.public_id))

    assert response.status_code == 302
    assert not WebhookEndpoint.unscoped.exists()
    assert not OutboundDelivery.unscoped.exists()
    entry = AuditLog.unscoped.get(action="notifications.webhook.delete")
    assert entry.old["url"] == "https://127.0.0.1:9/hook"


def test_log_shows_request_and_status(admin, personas):
    endpoint = make_endpoint(personas.org)
    make_deliveries(endpoint, 1)

    response = admin.get(url("webhook", endpoint_id=endpoint.public_id))

    page = response.content.decode()
    assert "HTTP 500" in page
    assert "Attain-Event-Id" in page
    assert "Resend" in page


def test_resend_button_queues_same_event(
    admin, personas, django_capture_on_commit_callbacks
):
    endpoint = make_endpoint(personas.org)
    make_deliveries(endpoint, 1)
    original = OutboundDelivery.unscoped.get()

    response = admin.post(url("delivery-resend", delivery_id=original.public_id))

    assert response.status_code == 302
    assert response["Location"] == url("webhook", endpoint_id=endpoint.public_id)
    copy = OutboundDelivery.unscoped.exclude(pk=original.pk).get()
    assert copy.event_id == original.event_id
    assert copy.resend_of == original
    assert copy.request_body == original.request_body
    assert AuditLog.unscoped.filter(action="notifications.delivery.resend").exists()


@pytest.mark.parametrize("count", [1, 30])
def test_endpoint_page_query_count(
    admin, personas, count, django_assert_max_num_queries
):
    endpoint = make_endpoint(personas.org)
    make_deliveries(endpoint, count)
    admin.get(url("webhook", endpoint_id=endpoint.public_id))

    with django_assert_max_num_queries(10):
        response = admin.get(url("webhook", endpoint_id=endpoint.public_id))

    assert len(response.context["page"]) == count


@pytest.mark.parametrize("count", [1, 20])
def test_list_page_query_count(admin, personas, count, django_assert_max_num_queries):
    for number in range(count):
        make_endpoint(personas.org, f"https://127.0.0.1:9/hook{number}")
        with tenant_context(personas.org):
            services.chat_create(
                organization=personas.org,
                actor=None,
                kind="slack",
                team=personas.rep1.team,
                url=f"https://127.0.0.1:9/chat{number}",
            )
    admin.get(url("webhooks"))

    with django_assert_max_num_queries(9):
        response = admin.get(url("webhooks"))

    assert len(response.context["endpoints"]) == count
    assert len(response.context["connections"]) == count


def test_other_org_endpoint_is_404(admin, personas):
    endpoint = make_endpoint(personas.other_org)

    for name in ("webhook", "webhook-edit"):
        response = admin.get(url(name, endpoint_id=endpoint.public_id))
        assert response.status_code == 404
    response = admin.post(url("webhook-delete", endpoint_id=endpoint.public_id))
    assert response.status_code == 404
    assert WebhookEndpoint.unscoped.filter(pk=endpoint.pk).exists()


@pytest.mark.parametrize("persona", ["rep1", "manager", "vp"])
def test_non_admins_get_404(client, personas, persona, credentials_key):
    endpoint = make_endpoint(personas.org)
    login(client, getattr(personas, persona))

    assert client.get(url("webhooks")).status_code == 404
    assert client.get(url("webhook", endpoint_id=endpoint.public_id)).status_code == 404
    response = client.post(url("webhook-rotate", endpoint_id=endpoint.public_id))
    assert response.status_code == 404


def test_private_address_setting_audited(admin, personas):
    response = admin.post(url("outbound-settings"), {"allow_private_addresses": "on"})

    assert response.status_code == 302
    row = OutboundSettings.unscoped.get(organization=personas.org)
    assert row.allow_private_addresses
    entry = AuditLog.unscoped.get(action="notifications.outbound_settings.update")
    assert entry.old == {"allow_private_addresses": False}
    assert entry.new == {"allow_private_addresses": True}


def test_loopback_accepted_with_setting_on(admin, personas):
    allow_private(personas.org)

    response = admin.post(
        url("webhook-new"),
        {"url": "https://127.0.0.1:8443/hook", "event_types": ["lead.assigned"]},
    )

    assert response.status_code == 302
    assert WebhookEndpoint.unscoped.get().url == "https://127.0.0.1:8443/hook"


def test_chat_create_hides_url(admin, personas):
    allow_private(personas.org)
    east = personas.rep1.team

    response = admin.post(
        url("chat-new"),
        {"kind": "slack", "team": east.pk, "url": "https://127.0.0.1:9/T000/B000/XYZW"},
    )

    assert response.status_code == 302
    connection = ChatConnection.unscoped.get()
    assert connection.team == east
    assert connection.url_display == "127.0.0.1:9/…XYZW"
    entry = AuditLog.unscoped.get(action="notifications.chat.create")
    assert entry.new == {
        "kind": "slack",
        "team": "East",
        "url": "127.0.0.1:9/…XYZW",
        "is_active": True,
    }
    page = admin.get(url("chat", chat_id=connection.public_id)).content.decode()
    assert "T000/B000" not in page


def test_chat_form_rejects_private_address(admin, personas):
    response = admin.post(
        url("chat-new"), {"kind": "teams", "team": "", "url": "https://10.0.0.1/x"}
    )

    assert response.status_code == 400
    [error] = response.context["form"].errors["url"]
    assert error.startswith(
        "The URL https://10.0.0.1 points at 10.0.0.1, which is not public (private)."
    )


def test_chat_edit_keeps_url_when_empty(admin, personas):
    allow_private(personas.org)
    with tenant_context(personas.org):
        connection = services.chat_create(
            organization=personas.org,
            actor=None,
            kind="slack",
            team=None,
            url="https://127.0.0.1:9/keep",
        )

    response = admin.post(
        url("chat", chat_id=connection.public_id),
        {"kind": "teams", "team": "", "url": "", "is_active": "on"},
    )

    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.kind == "teams"
    with tenant_context(personas.org):
        assert connection.url == "https://127.0.0.1:9/keep"


def test_preferences_store_chat_choice(client, personas):
    from notifications.catalog import EVENT_TYPES
    from notifications.models import Preference

    login(client, personas.rep1)
    data = {"time_zone": "", "quiet_start": "", "quiet_end": ""}
    for event_type in EVENT_TYPES:
        prefix = event_type.key.replace(".", "-")
        data[f"{prefix}-email"] = "off"
    data["lead-assigned-in_app"] = "on"
    data["lead-assigned-chat"] = "on"

    response = client.post(url("preferences"), data)

    assert response.status_code == 302
    row = Preference.unscoped.get(member=personas.rep1, event_type="lead.assigned")
    assert row.channels == ["in_app", "chat"]
