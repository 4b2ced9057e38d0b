"""A rep's follow-ups page lists the upcoming steps of the next seven local days."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from activity.models import Lead
from followups import selectors, services
from followups.models import Enrollment
from notifications.models import MemberSettings
from tests.conftest import login
from tests.followups.conftest import make_deal, make_sequence


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def enrol_due_at(sequence, target, due_at: dt.datetime) -> Enrollment:
    enrollment = services.enroll(sequence=sequence, target=target)
    Enrollment.objects.filter(pk=enrollment.pk).update(next_due_at=due_at)
    return enrollment


def test_upcoming_covers_seven_local_days(acme, personas):
    # Now is Monday 2024-03-04 23:30 UTC, which is Tuesday 08:30 in Tokyo
    # (JST, UTC+9). Tokyo's Tuesday ends at 15:00 UTC on the 5th, and the
    # seventh day after it (Tuesday the 12th) ends at 15:00 UTC on the 12th.
    MemberSettings.objects.create(
        organization=acme, member=personas.rep1, time_zone="Asia/Tokyo"
    )
    sequence = make_sequence(acme, [(0, "hours", "task")])
    now = utc(2024, 3, 4, 23, 30)
    due_at = {
        "tue_1900_jst": utc(2024, 3, 5, 10, 0),
        "wed_0100_jst": utc(2024, 3, 5, 16, 0),
        "tue_12th_2300_jst": utc(2024, 3, 12, 14, 0),
        "wed_13th_0030_jst": utc(2024, 3, 12, 15, 30),
    }
    ids = {}
    for number, (key, at) in enumerate(due_at.items()):
        deal = make_deal(personas, email=f"t{number}@initech.test")
        ids[key] = enrol_due_at(sequence, deal, at).pk
    # Another rep's enrollment and a finished one never show.
    other = make_deal(personas, owner=personas.rep2, email="rob@initech.test")
    enrol_due_at(sequence, other, utc(2024, 3, 6, 1, 0))
    finished = enrol_due_at(
        sequence, make_deal(personas, email="done@initech.test"), utc(2024, 3, 6)
    )
    Enrollment.objects.filter(pk=finished.pk).update(status="finished")

    tokyo = selectors.followups_due_today(personas.rep1, now)

    assert tokyo["today"] == dt.date(2024, 3, 5)
    assert [e.pk for e in tokyo["due"]] == [ids["tue_1900_jst"]]
    assert [e.pk for e in tokyo["upcoming"]] == [
        ids["wed_0100_jst"],
        ids["tue_12th_2300_jst"],
    ]
    assert tokyo["upcoming_last_day"] == dt.date(2024, 3, 12)
    assert tokyo["upcoming_more"] is False


def test_upcoming_window_in_org_zone_across_dst(acme, personas):
    # Without a zone of their own, the rep's day is New York's Monday the
    # 4th. New York moves to EDT on the 10th, so the window ends at Tuesday
    # the 12th 00:00 EDT = 04:00 UTC, not 05:00.
    sequence = make_sequence(acme, [(0, "hours", "task")])
    now = utc(2024, 3, 4, 23, 30)
    inside = enrol_due_at(
        sequence, make_deal(personas, email="in@initech.test"), utc(2024, 3, 12, 3, 30)
    )
    enrol_due_at(
        sequence, make_deal(personas, email="out@initech.test"), utc(2024, 3, 12, 4, 0)
    )

    new_york = selectors.followups_due_today(personas.rep1, now)

    assert new_york["today"] == dt.date(2024, 3, 4)
    assert new_york["upcoming_last_day"] == dt.date(2024, 3, 11)
    assert [e.pk for e in new_york["upcoming"]] == [inside.pk]


def make_lead(personas, number: int) -> Lead:
    return Lead.objects.create(
        organization=personas.org,
        owner=personas.rep1,
        first_name=f"Lee{number}",
        company=f"Umbrella {number}",
        email=f"lee{number}@umbrella.test",
    )


def page_queries(client) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("followups:mine", args=["acme"]))
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_page_lists_upcoming_with_bounded_queries(acme, personas, client):
    renewal = make_sequence(
        acme,
        [{"delay_amount": 0, "action": "task", "subject": "Call {{ first_name }}"}],
    )
    nurture = make_sequence(
        acme,
        [{"delay_amount": 0, "action": "email", "subject": "Hi {{ company }}"}],
        name="Nurture",
    )
    # Two days on is always after today and within the next seven days.
    soon = timezone.now() + dt.timedelta(days=2)
    first = enrol_due_at(renewal, make_deal(personas), soon)
    login(client, personas.rep1)

    one_row_queries, html = page_queries(client)

    upcoming = html.split('id="followups-upcoming"')[1].split("</table>")[0]
    assert "Call Pat" in upcoming
    assert "Initech renewal" in upcoming
    assert "Renewal" in upcoming
    local_due = timezone.localtime(
        Enrollment.objects.get(pk=first.pk).next_due_at, acme.zoneinfo
    )
    assert local_due.strftime("%Y-%m-%d %H:%M") in upcoming

    for number in range(3):
        deal = make_deal(personas, email=f"d{number}@initech.test")
        enrol_due_at(renewal, deal, soon + dt.timedelta(hours=number + 1))
        enrol_due_at(nurture, make_lead(personas, number), soon)

    many_rows_queries, html = page_queries(client)

    upcoming = html.split('id="followups-upcoming"')[1].split("</table>")[0]
    assert upcoming.count("<tr>") == 1 + 7
    assert "Hi Umbrella 2" in upcoming
    assert "Nurture" in upcoming
    assert many_rows_queries == one_row_queries


def test_upcoming_list_is_capped(acme, personas, monkeypatch):
    monkeypatch.setattr(selectors, "UPCOMING_SHOWN", 2)
    sequence = make_sequence(acme, [(0, "hours", "task")])
    now = utc(2024, 3, 4, 15, 0)
    for number in range(3):
        deal = make_deal(personas, email=f"c{number}@initech.test")
        enrol_due_at(sequence, deal, utc(2024, 3, 6 + number, 15, 0))

    result = selectors.followups_due_today(personas.rep1, now)

    assert len(result["upcoming"]) == 2
    assert result["upcoming"][0].next_due_at == utc(2024, 3, 6, 15, 0)
    assert result["upcoming_more"] is True
