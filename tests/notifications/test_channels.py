"""An event reaches exactly the channels that the member's settings choose."""

from __future__ import annotations

import pytest
from django.core import mail

from notifications.catalog import UnknownEventType
from notifications.models import Delivery, Event, Notification, OrganizationDefault
from notifications.services import notify
from tests.notifications.conftest import at, deliveries_of, prefer, raise_event

SENT = Delivery.Status.SENT
PENDING = Delivery.Status.PENDING
SKIPPED = Delivery.Status.SKIPPED

# lead.assigned: the catalogue's default is in-app only, at normal urgency.
# Columns: the member's preference, the organisation's default (None: no row),
# then the expected deliveries as {channel: status} (None: no notification).
CHANNEL_TABLE = [
    ("catalogue", None, None, {"in_app": SENT}),
    ("org default", None, ["in_app", "email"], {"in_app": SENT, "email": PENDING}),
    ("org off", None, [], None),
    ("pref email only", ["email"], ["in_app"], {"email": PENDING}),
    ("pref in-app only", ["in_app"], ["in_app", "email"], {"in_app": SENT}),
    ("pref off", [], ["in_app", "email"], None),
    ("pref both", ["in_app", "email"], None, {"in_app": SENT, "email": PENDING}),
    # A normal-urgency event never waits for the digest: it is emailed now.
    ("pref digest", ["digest"], None, {"email": PENDING}),
    # Chat has no connection yet, so it delivers nothing.
    ("pref chat", ["chat", "in_app"], None, {"in_app": SENT}),
]


@pytest.mark.parametrize(
    ("case", "preference", "default", "expected"),
    CHANNEL_TABLE,
    ids=[row[0] for row in CHANNEL_TABLE],
)
def test_channels_follow_settings(
    personas, in_org, clock, case, preference, default, expected
):
    clock.set(at("2024-05-14T10:00"))
    rep = personas.rep1
    if preference is not None:
        prefer(rep, "lead.assigned", *preference)
    if default is not None:
        OrganizationDefault.objects.create(
            organization=in_org, event_type="lead.assigned", channels=default
        )

    raise_event(rep)

    notifications = list(Notification.objects.filter(member=rep))
    if expected is None:
        assert notifications == []
        assert Delivery.objects.count() == 0
        return
    [notification] = notifications
    assert notification.in_app == ("in_app" in expected)
    found = deliveries_of(rep)
    assert {channel: row.status for channel, row in found.items()} == expected
    assert all(not row.digest for row in found.values())


def test_preference_of_other_member_not_used(personas, in_org):
    prefer(personas.rep2, "lead.assigned", "email")

    raise_event(personas.rep1)

    assert set(deliveries_of(personas.rep1)) == {"in_app"}


def test_preference_of_other_type_not_used(personas, in_org):
    prefer(personas.rep1, "lead.escalated", "email")

    raise_event(personas.rep1)

    assert set(deliveries_of(personas.rep1)) == {"in_app"}


def test_in_app_delivery_recorded_sent(personas, in_org, clock):
    now = clock.set(at("2024-05-14T10:00"))

    raise_event(personas.rep1)

    in_app = deliveries_of(personas.rep1)["in_app"]
    assert in_app.sent_at == now
    assert in_app.attempts == 1


def test_new_email_waits_for_lost_task(personas, in_org, clock):
    clock.set(at("2024-05-14T10:00"))
    prefer(personas.rep1, "lead.assigned", "email")

    raise_event(personas.rep1)

    email = deliveries_of(personas.rep1)["email"]
    # The beat task sends it two minutes later if its queued task is lost.
    assert email.next_attempt_at == at("2024-05-14T10:02")
    assert email.attempts == 0


def test_email_skipped_without_address(personas, in_org):
    rep = personas.rep1
    rep.user.is_active = False
    rep.user.save()
    prefer(rep, "lead.assigned", "email")

    raise_event(rep)

    email = deliveries_of(rep)["email"]
    assert email.status == SKIPPED
    assert email.last_error == "The member has no active email address."


def test_event_stores_object_and_payload(personas, in_org):
    event = notify(
        in_org,
        "lead.assigned",
        [personas.rep1],
        obj=personas.rep2,
        title="New lead assigned to you: Ann Lee",
        summary="From the website form",
        url="/o/acme/leads/mine/",
        payload={"lead": "Ann Lee", "score": 30},
    )

    event.refresh_from_db()
    assert event.type == "lead.assigned"
    assert event.object_type == "spm.membership"
    assert event.object_public_id == str(personas.rep2.public_id)
    assert event.payload == {"lead": "Ann Lee", "score": 30}
    assert event.urgency == "normal"
    assert event.summary == "From the website form"


def test_recipients_deduplicated_and_filtered(personas, in_org):
    rep2 = personas.rep2
    rep2.is_active = False
    rep2.save()

    notify(
        in_org,
        "lead.assigned",
        [personas.rep1, personas.rep1.pk, None, rep2],
        title="Two copies of one rep, no one, and an inactive rep",
    )

    members = list(Notification.objects.values_list("member_id", flat=True))
    assert members == [personas.rep1.pk]


def test_event_without_recipients_stored(personas, in_org):
    notify(in_org, "import.finished", [], title="Import of deals.csv finished")

    assert Event.objects.get().title == "Import of deals.csv finished"
    assert Notification.objects.count() == 0


def test_unknown_type_raises(personas, in_org):
    with pytest.raises(UnknownEventType, match="lead.assignd"):
        notify(in_org, "lead.assignd", [personas.rep1], title="Typo")


def test_notify_error_logged_not_raised(personas, in_org, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("preference table unreadable")

    monkeypatch.setattr("notifications.selectors.channels_by_member", broken)

    assert raise_event(personas.rep1) is None

    assert "Could not record 1 lead.assigned event(s)" in caplog.text
    # The savepoint rolled back the event row written before the error.
    assert Event.objects.count() == 0
    assert mail.outbox == []


def test_member_of_other_organisation_skipped(personas, in_org):
    notify(
        in_org,
        "lead.assigned",
        [personas.other_rep, personas.other_rep.pk, personas.rep1],
        title="One rep of Acme, and one of Globex twice",
    )

    members = list(Notification.unscoped.values_list("member_id", flat=True))
    assert members == [personas.rep1.pk]
