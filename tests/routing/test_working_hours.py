"""Working hours: a rep takes pool leads only inside them, in their time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from routing import configuration
from routing.engine.preview import lead_preview
from routing.models import WorkingHours
from spm.models import AuditLog
from tests.conftest import login
from tests.routing.conftest import make_pool, make_rep, publish_pool, route_new_lead

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NINE, FIVE = dt.time(9), dt.time(17)


def at(moment: dt.datetime, monkeypatch) -> None:
    monkeypatch.setattr(timezone, "now", lambda: moment.astimezone(dt.UTC))


@pytest.fixture
def pool(acme):
    """Berta works 09:00-17:00 Berlin, Nora 09:00-17:00 New York, Al any time."""
    berta, nora, al = (make_rep(acme, name) for name in ("Berta", "Nora", "Al"))
    for rep, zone in ((berta, "Europe/Berlin"), (nora, "America/New_York")):
        configuration.working_hours_set(
            member=rep,
            actor=None,
            time_zone=zone,
            days=[1, 2, 3, 4, 5],
            start=NINE,
            end=FIVE,
        )
    pool = make_pool(acme, "round_robin", [berta, nora, al])
    publish_pool(acme, pool)
    return pool


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # Tuesday 10:00 Berlin is 04:00 in New York: Berta, then Al.
        (dt.datetime(2024, 3, 19, 10, tzinfo=BERLIN), ["Berta", "Al", "Berta"]),
        # Tuesday 16:00 in New York is 21:00 in Berlin: Nora, then Al.
        (dt.datetime(2024, 3, 19, 16, tzinfo=NEW_YORK), ["Nora", "Al", "Nora"]),
        # 15:30 Berlin on Tuesday 19 March is 10:30 in New York (EDT since
        # 10 March, while Berlin changes on 31 March): all three.
        (dt.datetime(2024, 3, 19, 15, 30, tzinfo=BERLIN), ["Berta", "Nora", "Al"]),
        # Saturday: only Al.
        (dt.datetime(2024, 3, 23, 11, tzinfo=BERLIN), ["Al", "Al", "Al"]),
    ],
)
def test_pool_respects_working_hours(acme, pool, monkeypatch, moment, expected):
    at(moment, monkeypatch)

    owners = [route_new_lead(acme).member.display_name for _ in expected]

    assert owners == expected


def test_end_of_hours_is_excluded(acme, pool, monkeypatch):
    at(dt.datetime(2024, 3, 19, 17, tzinfo=BERLIN), monkeypatch)
    assignment = route_new_lead(acme)

    berta = next(c for c in assignment.candidates if c["name"] == "Berta")
    assert berta["skipped"] == (
        "outside working hours (Mon, Tue, Wed, Thu, Fri 09:00-17:00 Europe/Berlin)"
    )


def test_everyone_outside_hours_goes_to_queue(acme, monkeypatch):
    rep = make_rep(acme, "Berta")
    configuration.working_hours_set(
        member=rep,
        actor=None,
        time_zone="Europe/Berlin",
        days=[1],
        start=NINE,
        end=FIVE,
    )
    publish_pool(acme, make_pool(acme, "round_robin", [rep]))
    at(dt.datetime(2024, 3, 19, 10, tzinfo=BERLIN), monkeypatch)

    assignment = route_new_lead(acme)

    assert assignment.member is None
    assert assignment.outcome == "queued"


def test_preview_agrees_with_hours(acme, pool, monkeypatch):
    at(dt.datetime(2024, 3, 19, 16, tzinfo=NEW_YORK), monkeypatch)

    preview = lead_preview(organization=acme, fields={"email": "x@example.test"})

    assert preview.decision.member.display_name == "Nora"


def test_working_hours_audited(acme):
    rep = make_rep(acme, "Berta")
    configuration.working_hours_set(
        member=rep,
        actor=None,
        time_zone="Europe/Berlin",
        days=[5, 1],
        start=NINE,
        end=FIVE,
    )
    configuration.working_hours_clear(member=rep, actor=None)

    set_entry, clear_entry = AuditLog.objects.filter(
        action__startswith="routing.working_hours"
    ).order_by("id")
    assert set_entry.old is None
    assert set_entry.new == {
        "time_zone": "Europe/Berlin",
        "days": [1, 5],
        "start": "09:00",
        "end": "17:00",
    }
    assert clear_entry.old == set_entry.new
    assert clear_entry.new is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"time_zone": "Mars/Olympus"}, "Unknown time zone 'Mars/Olympus'."),
        ({"days": [0, 8]}, "Days must be ISO weekdays 1 to 7"),
        ({"start": FIVE, "end": NINE}, "The end must be after the start."),
    ],
)
def test_invalid_working_hours(acme, values, message):
    rep = make_rep(acme, "Berta")
    arguments = {
        "time_zone": "Europe/Berlin",
        "days": [1],
        "start": NINE,
        "end": FIVE,
        **values,
    }

    with pytest.raises(ValidationError, match=message):
        configuration.working_hours_set(member=rep, actor=None, **arguments)


def _hours_url(member) -> str:
    return f"/o/acme/leads/routing/hours/{member.public_id}/"


def test_hours_page_saves_and_clears(client, personas):
    login(client, personas.admin)
    url = _hours_url(personas.rep1)

    form = client.get(url + "?pool=not-a-uuid")
    saved = client.post(
        url,
        {
            "time_zone": "Asia/Tokyo",
            "days": ["1", "3"],
            "start": "08:30",
            "end": "12:00",
        },
    )
    hours = WorkingHours.unscoped.get(member=personas.rep1)
    page = client.get(url).content.decode()
    cleared = client.post(url, {"clear": "1"})

    assert form.status_code == 200
    # The organisation's time zone and Monday to Friday are the defaults.
    assert f'value="{personas.org.time_zone}"' in form.content.decode()
    assert saved.status_code == 302
    assert hours.describe() == "Mon, Wed 08:30-12:00 Asia/Tokyo"
    assert "Now: Mon, Wed 08:30-12:00 Asia/Tokyo." in page
    assert cleared.status_code == 302
    assert not WorkingHours.unscoped.filter(member=personas.rep1).exists()


def test_hours_page_rejects_bad_zone(client, personas):
    login(client, personas.admin)

    response = client.post(
        _hours_url(personas.rep1),
        {"time_zone": "Mars/Olympus", "days": ["1"], "start": "09:00", "end": "17:00"},
    )

    assert response.status_code == 400
    assert "Unknown time zone &#x27;Mars/Olympus&#x27;." in response.content.decode()
    assert not WorkingHours.unscoped.exists()


def test_hours_page_query_count(client, personas, django_assert_max_num_queries):
    login(client, personas.admin)
    url = _hours_url(personas.rep1)
    client.get(url)

    # Session, user and membership (3); the member with their hours (1); the
    # navigation bar's own reads (3).
    with django_assert_max_num_queries(7):
        response = client.get(url)

    assert response.status_code == 200
