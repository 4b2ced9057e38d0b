"""Steps follow the rep's own time zone when set, across daylight-saving changes too."""

from __future__ import annotations

import datetime as dt

from followups import selectors, services
from followups.models import Enrollment
from followups.schedule import member_zone
from notifications.models import MemberSettings
from tests.followups.conftest import MONDAY_10, make_deal, make_sequence


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def set_zone(member, zone: str) -> None:
    MemberSettings.objects.create(
        organization=member.organization, member=member, time_zone=zone
    )


def test_zone_falls_back_to_organisation(acme, personas):
    assert member_zone(personas.rep1).key == "America/New_York"
    # A settings row with no zone still means the organisation's.
    set_zone(personas.rep1, "")
    assert member_zone(personas.rep1).key == "America/New_York"


def test_zone_is_the_reps_own(acme, personas):
    set_zone(personas.rep1, "Europe/Berlin")

    assert member_zone(personas.rep1).key == "Europe/Berlin"
    assert member_zone(personas.rep2).key == "America/New_York"


def test_business_hours_counted_in_reps_zone(acme, personas):
    # Monday 2024-03-04 15:00 UTC is 16:00 in Berlin (CET, UTC+1) and 10:00 in
    # New York. Two business hours for Berlin: 16:00-17:00 Monday, then
    # 09:00-10:00 Tuesday, so Tuesday 10:00 CET = 09:00 UTC. For New York:
    # 12:00 EST Monday = 17:00 UTC.
    set_zone(personas.rep1, "Europe/Berlin")
    sequence = make_sequence(acme, [(2, "business_hours", "task")])

    berlin = services.enroll(
        sequence=sequence, target=make_deal(personas), now=MONDAY_10
    )
    new_york = services.enroll(
        sequence=sequence,
        target=make_deal(personas, owner=personas.rep2, email="rob@initech.test"),
        now=MONDAY_10,
    )

    assert berlin.next_due_at == utc(2024, 3, 5, 9, 0)
    assert new_york.next_due_at == utc(2024, 3, 4, 17, 0)


def test_business_day_across_reps_dst_change(acme, personas):
    # London moves to BST on Sunday 2024-03-31, New York moved on 10 March.
    # Friday 2024-03-29 10:00 UTC is 10:00 GMT in London. One business day
    # later is Monday 1 April 10:00 BST = 09:00 UTC, 24 h of wall clock but
    # 71 h elapsed. In New York the start is 06:00 EDT, so Monday 06:00 EDT
    # moves into the window: 09:00 EDT = 13:00 UTC.
    set_zone(personas.rep1, "Europe/London")
    sequence = make_sequence(acme, [(1, "business_days", "task")])
    start = utc(2024, 3, 29, 10, 0)

    london = services.enroll(sequence=sequence, target=make_deal(personas), now=start)
    new_york = services.enroll(
        sequence=sequence,
        target=make_deal(personas, owner=personas.rep2, email="rob@initech.test"),
        now=start,
    )

    assert london.next_due_at == utc(2024, 4, 1, 9, 0)
    assert london.next_due_at - start == dt.timedelta(hours=71)
    assert new_york.next_due_at == utc(2024, 4, 1, 13, 0)


def test_send_window_opens_at_reps_local_nine(acme, personas):
    # Saturday 2024-03-02 12:00 UTC. Tokyo's next window opens Monday 09:00 JST
    # = Monday 00:00 UTC, New York's Monday 09:00 EST = 14:00 UTC.
    set_zone(personas.rep1, "Asia/Tokyo")
    sequence = make_sequence(acme, [(0, "hours", "task")])
    saturday = utc(2024, 3, 2, 12, 0)

    tokyo = services.enroll(sequence=sequence, target=make_deal(personas), now=saturday)
    new_york = services.enroll(
        sequence=sequence,
        target=make_deal(personas, owner=personas.rep2, email="rob@initech.test"),
        now=saturday,
    )

    assert tokyo.next_due_at == utc(2024, 3, 4, 0, 0)
    assert new_york.next_due_at == utc(2024, 3, 4, 14, 0)


def test_due_today_uses_reps_day(acme, personas):
    # Now is Monday 2024-03-04 23:30 UTC: Tuesday 08:30 in Tokyo (JST, UTC+9)
    # but Monday 18:30 in New York. Tokyo's Tuesday ends at 15:00 UTC.
    set_zone(personas.rep1, "Asia/Tokyo")
    sequence = make_sequence(acme, [(0, "hours", "task")])
    now = utc(2024, 3, 4, 23, 30)
    due_at = {
        "tue_0900_jst": utc(2024, 3, 5, 0, 0),
        "tue_1900_jst": utc(2024, 3, 5, 10, 0),
        "wed_0100_jst": utc(2024, 3, 5, 16, 0),
    }
    enrollments = {}
    for number, (key, at) in enumerate(due_at.items()):
        deal = make_deal(personas, email=f"t{number}@initech.test")
        enrollment = services.enroll(sequence=sequence, target=deal, now=now)
        Enrollment.objects.filter(pk=enrollment.pk).update(next_due_at=at)
        enrollments[key] = enrollment.pk

    tokyo = selectors.followups_due_today(personas.rep1, now)

    assert tokyo["today"] == dt.date(2024, 3, 5)
    assert [e.pk for e in tokyo["due"]] == [
        enrollments["tue_0900_jst"],
        enrollments["tue_1900_jst"],
    ]

    # Without the rep's own zone, the day is New York's Monday, which ends at
    # 05:00 UTC on Tuesday.
    MemberSettings.objects.filter(member=personas.rep1).update(time_zone="")
    new_york = selectors.followups_due_today(personas.rep1, now)

    assert new_york["today"] == dt.date(2024, 3, 4)
    assert [e.pk for e in new_york["due"]] == [enrollments["tue_0900_jst"]]
