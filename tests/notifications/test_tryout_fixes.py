"""Chat URL errors hide the token, and preferences list only a role's event types.

Chat sends go only to 127.0.0.1, with the host names resolved from the
test table of ``tests.notifications.conftest.resolver``.
"""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse

from notifications import outbound
from notifications import outbound_services as services
from notifications.addresses import UnsafeURL, url_check, url_origin
from notifications.catalog import CATALOG, RECIPIENT_ROLES
from notifications.models import ChatConnection, OutboundDelivery, Preference
from spm.models import Membership
from tests.conftest import login
from tests.notifications.conftest import at, prefer, raise_event

TOKEN = "T0A1B2C3/B4D5E6F7/s3cr3tT0k3nValue"
SLACK_PATH = f"/services/{TOKEN}"


def url(name: str, **kwargs) -> str:
    return reverse(f"notifications:{name}", kwargs={"org_slug": "acme", **kwargs})


# Chat URLs in errors and logs ------------------------------------------------


@pytest.mark.parametrize(
    ("address", "origin"),
    [
        (f"https://hooks.slack.test{SLACK_PATH}?x=1", "https://hooks.slack.test"),
        (f"https://10.0.0.1:8443{SLACK_PATH}", "https://10.0.0.1:8443"),
        (f"https://user:pw@[fd00::1]{SLACK_PATH}", "https://[fd00::1]"),
        (f"hooks.slack.test{SLACK_PATH}", "hooks.slack.test"),
    ],
)
def test_url_origin_drops_path_and_query(address, origin):
    assert url_origin(address) == origin


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        (
            f"https://10.0.0.1{SLACK_PATH}",
            "The URL https://10.0.0.1 points at 10.0.0.1, which is not public "
            "(private).",
        ),
        (
            f"hooks.slack.test{SLACK_PATH}",
            "Invalid URL hooks.slack.test: use an https:// address.",
        ),
        (
            f"https://user:pw@hooks.slack.test{SLACK_PATH}",
            "Invalid URL https://hooks.slack.test: remove the user name and password",
        ),
        (f"https://[::1{SLACK_PATH}", "Invalid URL: it cannot be parsed"),
    ],
)
def test_rejected_url_message_hides_token(address, reason):
    with pytest.raises(UnsafeURL) as error:
        url_check(address, allow_private=False)

    message = str(error.value)
    assert message.startswith(reason)
    assert "s3cr3t" not in message
    assert "/services" not in message


def test_chat_form_error_hides_token(client, personas, credentials_key):
    login(client, personas.admin)

    response = client.post(
        url("chat-new"),
        {"kind": "slack", "team": "", "url": f"https://10.0.0.1{SLACK_PATH}"},
    )

    assert response.status_code == 400
    [error] = response.context["form"].errors["url"]
    assert error.startswith(
        "The URL https://10.0.0.1 points at 10.0.0.1, which is not public (private)."
    )
    page = response.content.decode()
    assert "s3cr3t" not in page
    assert "/services/" not in page
    assert not ChatConnection.unscoped.exists()


@pytest.fixture
def chat_rep(settings, credentials_key, personas, in_org, resolver, clock):
    """Rita gets lead.assigned in chat; the host name resolves to loopback."""
    settings.DEBUG = True
    resolver.names["hooks.slack.test"] = ["127.0.0.1"]
    prefer(personas.rep1, "lead.assigned", "chat")
    clock.set(at("2024-05-14T10:00"))
    return personas.rep1


def _send_one() -> OutboundDelivery:
    delivery = OutboundDelivery.objects.get()
    outbound.outbound_delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


def test_send_time_rejection_hides_token(chat_rep, personas, caplog):
    # Private addresses are not allowed, so the loopback address is rejected.
    services.chat_create(
        organization=personas.org,
        actor=None,
        kind="slack",
        team=None,
        url=f"https://hooks.slack.test{SLACK_PATH}",
    )
    raise_event(chat_rep)

    with caplog.at_level(logging.INFO):
        delivery = _send_one()

    assert delivery.error.startswith(
        "UnsafeURL: The URL https://hooks.slack.test points at 127.0.0.1, "
        "which is not public (loopback)."
    )
    assert "s3cr3t" not in delivery.error
    assert "s3cr3t" not in caplog.text
    assert "Outbound delivery" in caplog.text


def test_send_error_quoting_path_hides_token(chat_rep, personas, caplog):
    # http.client rejects a path with a space before it connects, and its
    # message quotes the path.
    services.outbound_settings_save(
        organization=personas.org, actor=None, allow_private_addresses=True
    )
    services.chat_create(
        organization=personas.org,
        actor=None,
        kind="slack",
        team=None,
        url="http://hooks.slack.test:9/services/T0 B0/s3cr3tT0k3n",
    )
    raise_event(chat_rep)

    with caplog.at_level(logging.INFO):
        delivery = _send_one()

    assert delivery.error.startswith("InvalidURL: ")
    assert "/…" in delivery.error
    assert "s3cr3t" not in delivery.error
    assert "s3cr3t" not in caplog.text


# Event types offered per role --------------------------------------------------


def test_recipient_roles_cover_catalogue():
    assert set(RECIPIENT_ROLES) == set(CATALOG)
    for key, roles in RECIPIENT_ROLES.items():
        assert roles, key
        assert roles <= set(Membership.Role.values), key


ADMIN_ONLY = {"import.finished", "import.failed", "sync.failed"}


@pytest.mark.parametrize(
    ("persona", "hidden"),
    [
        ("rep1", ADMIN_ONLY | {"dispute.raised"}),
        ("manager", ADMIN_ONLY),
        ("admin", set()),
    ],
)
def test_preferences_offer_role_event_types(client, personas, persona, hidden):
    login(client, getattr(personas, persona))

    response = client.get(url("preferences"))

    assert response.status_code == 200
    shown = {row.setting.event_type.key for row in response.context["form"].rows}
    assert shown == set(CATALOG) - hidden
    html = response.content.decode()
    for key in hidden:
        assert f'id="type-{key.replace(".", "-")}"' not in html
    # Every role keeps the events about its own leads and statements.
    assert 'id="type-lead-assigned"' in html
    assert 'id="type-statement-approved"' in html


def test_rep_save_keeps_hidden_type_preference(client, personas, in_org):
    # A preference set while the member was an admin stays stored, because
    # the rep form neither shows nor clears it.
    prefer(personas.rep1, "sync.failed", "email")
    login(client, personas.rep1)

    response = client.post(
        url("preferences"),
        {
            "time_zone": "",
            "quiet_start": "",
            "quiet_end": "",
            **{
                f"{key.replace('.', '-')}-email": "off"
                for key in CATALOG
                if "rep" in RECIPIENT_ROLES[key]
            },
        },
    )

    assert response.status_code == 302
    kept = Preference.objects.get(member=personas.rep1, event_type="sync.failed")
    assert kept.channels == ["email"]
