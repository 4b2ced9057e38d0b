"""Follow-up emails through a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import pytest

from followups import services
from tests.followups.conftest import MONDAY_10, make_deal, make_sequence
from tests.followups.smtp import start_server
from tests.followups.test_dispatch import EMAIL_TWICE, run_due


@pytest.fixture
def smtp_inbox(settings):
    controller, inbox = start_server()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield inbox
    finally:
        controller.stop()


def test_smtp_server_receives_merged_emails(acme, personas, smtp_inbox):
    deal = make_deal(personas)
    sequence = make_sequence(acme, EMAIL_TWICE)
    enrollment = services.enroll(sequence=sequence, target=deal, now=MONDAY_10)

    run_due(MONDAY_10)
    enrollment.refresh_from_db()
    run_due(enrollment.next_due_at)

    messages = smtp_inbox.messages
    assert len(messages) == 2
    first = messages[0]
    assert first["To"] == "pat@initech.test"
    assert first["Subject"] == "Hello Pat"
    body = first.get_payload(decode=True).decode()
    # SMTP carries lines ending in CRLF.
    assert body.splitlines()[0] == "Hi Pat, about Initech renewal at Initech. Rita Rep"
    assert "/followups/unsubscribe/" in first["List-Unsubscribe"]
    runs = enrollment.runs.order_by("step__order")
    assert [m["Message-ID"] for m in messages] == [r.message_id for r in runs]
