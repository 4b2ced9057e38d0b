"""Pages: the bell, the list, marking read, preferences and organisation defaults."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from notifications.catalog import EVENT_TYPES
from notifications.models import (
    MemberSettings,
    Notification,
    OrganizationDefault,
    Preference,
)
from spm.models import AuditLog
from tests.conftest import login
from tests.notifications.conftest import at, prefer, raise_event

BELL = re.compile(r'<a id="notification-bell"[^>]*>(.*?)</a>', re.S)


def url(name: str, **kwargs) -> str:
    return reverse(f"notifications:{name}", kwargs={"org_slug": "acme", **kwargs})


def bell_text(response) -> str:
    return " ".join(BELL.search(response.content.decode()).group(1).split())


def row_titles(response) -> list[str]:
    return [n.event.title for n in response.context["page"]]


@pytest.fixture
def inbox(personas, in_org, clock):
    """Rita: three unread and one read in-app notification, one email-only."""
    rep = personas.rep1
    for hour in (9, 10, 11, 12):
        clock.set(at(f"2024-05-14T{hour:02}:00"))
        raise_event(rep, title=f"Lead at {hour}:00")
    Notification.objects.filter(event__title="Lead at 9:00").update(
        read_at=at("2024-05-14T13:00")
    )
    prefer(rep, "lead.escalated", "email")
    raise_event(rep, "lead.escalated", title="Escalated by email only")
    # Rob's notification never shows on Rita's pages.
    raise_event(personas.rep2, title="Rob's lead")
    return rep


def test_bell_shows_unread_count(client, inbox):
    login(client, inbox)

    response = client.get(reverse("routing:mine", kwargs={"org_slug": "acme"}))

    assert bell_text(response) == 'Notifications <span class="badge">3</span>'


def test_bell_without_unread_has_no_badge(client, personas, in_org):
    login(client, personas.rep3)

    response = client.get(url("list"))

    assert bell_text(response) == "Notifications"


def test_bell_caps_count(client, personas, in_org):
    for number in range(101):
        raise_event(personas.rep3, title=f"Lead {number}")
    login(client, personas.rep3)

    response = client.get(url("list"))

    assert bell_text(response) == 'Notifications <span class="badge">99+</span>'


def test_bell_counts_in_one_query(client, inbox):
    login(client, inbox)

    with CaptureQueriesContext(connection) as queries:
        client.get(url("list"))

    counts = [
        q["sql"]
        for q in queries
        if "COUNT" in q["sql"] and '"read_at" IS NULL' in q["sql"]
    ]
    assert len(counts) == 1


def test_list_shows_own_in_app_newest_first(client, inbox):
    login(client, inbox)

    response = client.get(url("list"))

    assert response.status_code == 200
    assert row_titles(response) == [
        "Lead at 12:00",
        "Lead at 11:00",
        "Lead at 10:00",
        "Lead at 9:00",
    ]


def test_list_unread_filter(client, inbox):
    login(client, inbox)

    response = client.get(url("list") + "?unread=1")

    assert row_titles(response) == ["Lead at 12:00", "Lead at 11:00", "Lead at 10:00"]


def test_list_query_count_constant(client, inbox, django_assert_max_num_queries):
    for number in range(40):
        raise_event(inbox, title=f"More {number}")
    login(client, inbox)

    # Session, user, membership, paginator count, bell count, the
    # organisation switcher's memberships, page rows.
    with django_assert_max_num_queries(7):
        response = client.get(url("list"))

    assert len(row_titles(response)) == 44


def test_mark_read(client, inbox, clock):
    now = clock.set(at("2024-05-15T09:00"))
    notification = Notification.objects.get(event__title="Lead at 12:00")
    login(client, inbox)

    response = client.post(url("read", notification_id=notification.public_id))

    assert response.status_code == 302
    assert response["Location"] == url("list")
    notification.refresh_from_db()
    assert notification.read_at == now
    assert bell_text(client.get(url("list"))) == (
        'Notifications <span class="badge">2</span>'
    )


def test_mark_read_keeps_first_time(client, inbox, clock):
    clock.set(at("2024-05-15T09:00"))
    notification = Notification.objects.get(event__title="Lead at 9:00")
    login(client, inbox)

    client.post(url("read", notification_id=notification.public_id))

    notification.refresh_from_db()
    assert notification.read_at == at("2024-05-14T13:00")


def test_open_marks_read_and_redirects(client, inbox):
    notification = Notification.objects.get(event__title="Lead at 11:00")
    login(client, inbox)

    response = client.post(
        url("read", notification_id=notification.public_id), {"open": "1"}
    )

    assert response["Location"] == "/o/acme/leads/mine/"
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_open_never_leaves_the_site(client, personas, in_org):
    raise_event(personas.rep3, url="https://evil.example/phish")
    notification = Notification.objects.get(member=personas.rep3)
    login(client, personas.rep3)

    response = client.post(
        url("read", notification_id=notification.public_id), {"open": "1"}
    )

    assert response["Location"] == url("list")


def test_mark_read_returns_to_same_page(client, inbox):
    notification = Notification.objects.get(event__title="Lead at 11:00")
    login(client, inbox)

    response = client.post(
        url("read", notification_id=notification.public_id),
        {"page": "2", "unread": "1"},
    )

    assert response["Location"] == url("list") + "?unread=1&page=2"


@pytest.mark.parametrize("persona", ["rep2", "manager", "admin"])
def test_other_members_notification_is_404(client, inbox, personas, persona):
    notification = Notification.objects.get(event__title="Lead at 12:00")
    login(client, getattr(personas, persona))

    response = client.post(url("read", notification_id=notification.public_id))

    assert response.status_code == 404
    notification.refresh_from_db()
    assert notification.read_at is None


def test_mark_all_read_only_own(client, inbox, personas, clock):
    now = clock.set(at("2024-05-15T09:00"))
    login(client, inbox)

    response = client.post(url("read-all"), follow=True)

    assert "Marked 3 notifications read." in response.content.decode()
    mine = Notification.objects.filter(member=inbox)
    assert mine.filter(in_app=True, read_at__isnull=True).count() == 0
    assert mine.filter(read_at=now).count() == 3
    # The email-only notification is not in the list, so it stays unread.
    assert mine.filter(in_app=False, read_at__isnull=True).count() == 1
    robs = Notification.objects.get(member=personas.rep2)
    assert robs.read_at is None


def test_mark_read_get_not_allowed(client, inbox):
    notification = Notification.objects.get(event__title="Lead at 12:00")
    login(client, inbox)

    assert (
        client.get(url("read", notification_id=notification.public_id)).status_code
        == 405
    )
    assert client.get(url("read-all")).status_code == 405


# Preferences ------------------------------------------------------------------


def field(key: str, part: str) -> str:
    return f"{key.replace('.', '-')}-{part}"


def form_data(**changes) -> dict[str, str]:
    """Return a preferences form equal to the catalogue's defaults, then changes."""
    data = {"time_zone": "", "quiet_start": "", "quiet_end": ""}
    for event_type in EVENT_TYPES:
        channels = event_type.default_channels
        if "in_app" in channels:
            data[field(event_type.key, "in_app")] = "on"
        email = "email" if "email" in channels else "off"
        data[field(event_type.key, "email")] = email
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def test_preferences_page_shows_settings(client, personas, in_org):
    prefer(personas.rep1, "lead.assigned", "email")
    login(client, personas.rep1)

    response = client.get(url("preferences"))

    assert response.status_code == 200
    form = response.context["form"]
    assert form[field("lead.assigned", "in_app")].value() is False
    assert form[field("lead.assigned", "email")].value() == "email"
    assert form[field("lead.escalated", "in_app")].value() is True
    html = response.content.decode()
    # The digest is offered on low-urgency types only.
    assert (
        'value="digest"'
        in html.split('id="type-coaching-alert_opened"')[1].split("</tr>")[0]
    )
    assert (
        'value="digest"'
        not in html.split('id="type-lead-assigned"')[1].split("</tr>")[0]
    )


def test_preferences_save_email_on(client, personas, in_org):
    login(client, personas.rep1)

    response = client.post(
        url("preferences"), form_data(**{field("lead.assigned", "email"): "email"})
    )

    assert response.status_code == 302
    preference = Preference.objects.get(member=personas.rep1)
    assert preference.event_type == "lead.assigned"
    assert preference.channels == ["in_app", "email"]
    entry = AuditLog.objects.get(action="notifications.preferences.update")
    assert entry.old == {"lead.assigned": "default"}
    assert entry.new == {"lead.assigned": ["in_app", "email"]}
    assert entry.actor == personas.rep1.user


def test_preferences_equal_to_default_follow_it(client, personas, in_org):
    prefer(personas.rep1, "lead.assigned", "in_app", "email")
    login(client, personas.rep1)

    client.post(url("preferences"), form_data())

    assert not Preference.objects.filter(member=personas.rep1).exists()


def test_preferences_turn_type_off(client, personas, in_org):
    login(client, personas.rep1)

    client.post(
        url("preferences"),
        form_data(
            **{
                field("lead.escalated", "in_app"): None,
                field("lead.escalated", "email"): "off",
            }
        ),
    )

    preference = Preference.objects.get(member=personas.rep1)
    assert (preference.event_type, preference.channels) == ("lead.escalated", [])


def test_preferences_digest_for_low_urgency(client, personas, in_org):
    login(client, personas.manager)

    client.post(
        url("preferences"),
        form_data(**{field("coaching.alert_opened", "email"): "digest"}),
    )

    preference = Preference.objects.get(member=personas.manager)
    assert preference.channels == ["in_app", "digest"]


def test_preferences_reject_digest_for_urgent_type(client, personas, in_org):
    login(client, personas.rep1)

    response = client.post(
        url("preferences"), form_data(**{field("lead.escalated", "email"): "digest"})
    )

    assert response.status_code == 400
    assert not Preference.objects.exists()


def test_preferences_save_quiet_hours(client, personas, in_org):
    login(client, personas.rep1)

    client.post(
        url("preferences"),
        form_data(time_zone="Europe/Berlin", quiet_start="22:00", quiet_end="07:00"),
    )

    saved = MemberSettings.objects.get(member=personas.rep1)
    assert saved.time_zone == "Europe/Berlin"
    assert saved.quiet_start == dt.time(22)
    assert saved.quiet_end == dt.time(7)
    entry = AuditLog.objects.get(action="notifications.preferences.update")
    assert entry.new == {
        "time_zone": "Europe/Berlin",
        "quiet_start": "22:00",
        "quiet_end": "07:00",
    }


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("22:00", "", "Set both the start and the end of quiet hours, or neither."),
        ("22:00", "22:00", "Quiet hours must not start and end at the same time."),
    ],
)
def test_preferences_reject_bad_quiet_hours(
    client, personas, in_org, start, end, message
):
    login(client, personas.rep1)

    response = client.post(
        url("preferences"), form_data(quiet_start=start, quiet_end=end)
    )

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not MemberSettings.objects.exists()


def test_preferences_reject_unknown_time_zone(client, personas, in_org):
    login(client, personas.rep1)

    response = client.post(url("preferences"), form_data(time_zone="Mars/Olympus"))

    assert response.status_code == 400
    assert not MemberSettings.objects.exists()


def test_preferences_unchanged_writes_nothing(client, personas, in_org):
    login(client, personas.rep1)

    client.post(url("preferences"), form_data())

    assert not Preference.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="notifications.").exists()


def test_preferences_page_query_count(
    client, personas, in_org, django_assert_max_num_queries
):
    prefer(personas.rep1, "lead.assigned", "email")
    login(client, personas.rep1)

    # Session, user, membership, member settings, preferences, defaults,
    # bell count, switcher.
    with django_assert_max_num_queries(8):
        assert client.get(url("preferences")).status_code == 200


def test_preferences_change_delivery(client, personas, in_org):
    login(client, personas.rep1)
    client.post(
        url("preferences"), form_data(**{field("lead.assigned", "email"): "email"})
    )

    raise_event(personas.rep1)

    channels = set(
        Notification.objects.get(member=personas.rep1).deliveries.values_list(
            "channel", flat=True
        )
    )
    assert channels == {"in_app", "email"}


# Organisation defaults ----------------------------------------------------------


def test_defaults_save(client, personas, in_org):
    login(client, personas.admin)

    response = client.post(
        url("defaults"), form_data(**{field("lead.assigned", "email"): "email"})
    )

    assert response.status_code == 302
    default = OrganizationDefault.objects.get()
    assert (default.event_type, default.channels) == (
        "lead.assigned",
        ["in_app", "email"],
    )
    assert default.updated_by == personas.admin.user
    entry = AuditLog.objects.get(action="notifications.defaults.update")
    assert entry.old == {"lead.assigned": ["in_app"]}
    assert entry.new == {"lead.assigned": ["in_app", "email"]}


def test_defaults_back_to_catalogue_remove_row(client, personas, in_org):
    OrganizationDefault.objects.create(
        organization=in_org, event_type="lead.assigned", channels=["email"]
    )
    login(client, personas.admin)

    client.post(url("defaults"), form_data())

    assert not OrganizationDefault.objects.exists()


def test_defaults_apply_to_members_without_preference(client, personas, in_org):
    prefer(personas.rep2, "lead.assigned", "in_app")
    login(client, personas.admin)
    client.post(
        url("defaults"), form_data(**{field("lead.assigned", "email"): "email"})
    )

    raise_event(personas.rep1)
    raise_event(personas.rep2)

    def channels(member):
        return set(
            Notification.objects.get(member=member).deliveries.values_list(
                "channel", flat=True
            )
        )

    assert channels(personas.rep1) == {"in_app", "email"}
    assert channels(personas.rep2) == {"in_app"}


def test_defaults_page_query_count(
    client, personas, in_org, django_assert_max_num_queries
):
    login(client, personas.admin)

    # Session, user, membership, defaults, the coaching badge, bell count,
    # switcher.
    with django_assert_max_num_queries(7):
        assert client.get(url("defaults")).status_code == 200


@pytest.mark.parametrize("persona", ["rep1", "manager", "vp"])
def test_defaults_hidden_from_non_admins(client, personas, in_org, persona):
    login(client, getattr(personas, persona))

    assert client.get(url("defaults")).status_code == 404
    assert client.post(url("defaults"), form_data()).status_code == 404
    assert not OrganizationDefault.objects.exists()


def test_preferences_invalid_time_named_once(client, personas, in_org):
    login(client, personas.rep1)

    response = client.post(
        url("preferences"), form_data(quiet_start="25:00", quiet_end="07:00")
    )

    body = response.content.decode()
    assert response.status_code == 400
    message = "Time &#x27;25:00&#x27; is not a time of day as HH:MM, such as 22:00."
    assert message in body
    # Both times were given, so the both-or-neither rule stays silent.
    assert "Set both the start and the end" not in body
    assert not MemberSettings.objects.exists()
