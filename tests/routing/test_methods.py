"""Pool methods give the sequences worked out by hand below."""

from __future__ import annotations

import datetime as dt

import pytest

from activity.models import Lead
from goals.models import TimeOff
from routing.engine.rotation import Rotation, pick
from routing.models import RotationState
from tests.routing.conftest import (
    local_day,
    make_pool,
    make_rep,
    owners,
    publish_pool,
    route_new_lead,
)

DAY = "2024-03-04"


def _pick_sequence(method: str, weights: list[tuple[str, int]], count: int):
    """Return the names that ``pick`` chooses for ``count`` leads in a row."""
    rotation = Rotation()
    names = [name for name, _ in weights]
    sequence = []
    for _ in range(count):
        slots = [
            rotation.slot(position + 1, position, weight)
            for position, (_, weight) in enumerate(weights)
        ]
        chosen = pick(method, rotation, slots, DAY)
        sequence.append(names[chosen.key - 1])
    return sequence


def test_smooth_weighted_two_one_one():
    # Scores (A, B, C) before each pick, after adding the weights 2, 1, 1;
    # the highest wins (ties to the lower position) and loses the total, 4:
    #   1: (2, 1, 1) -> A, then (-2, 1, 1)
    #   2: (0, 2, 2) -> B, then (0, -2, 2)
    #   3: (2, -1, 3) -> C, then (2, -1, -1)
    #   4: (4, 0, 0) -> A, then (0, 0, 0), the start again
    sequence = _pick_sequence("weighted", [("A", 2), ("B", 1), ("C", 1)], 8)

    assert sequence == ["A", "B", "C", "A", "A", "B", "C", "A"]
    assert sequence.count("A") == 4
    assert sequence.count("B") == 2
    assert sequence.count("C") == 2


def test_smooth_weighted_two_one():
    # Weights 2, 1 (total 3): (2, 1) -> A (-1, 1); (1, 2) -> B (1, -1);
    # (3, 0) -> A (0, 0), the start again.
    sequence = _pick_sequence("capacity", [("A", 20), ("B", 10)], 9)

    assert sequence == ["A", "B", "A", "A", "B", "A", "A", "B", "A"]


def test_round_robin_cycles_in_position_order():
    sequence = _pick_sequence("round_robin", [("A", 1), ("B", 1), ("C", 1)], 7)

    assert sequence == ["A", "B", "C", "A", "B", "C", "A"]


def test_weighted_pool_through_engine(acme):
    a, b, c = make_rep(acme, "A"), make_rep(acme, "B"), make_rep(acme, "C")
    pool = make_pool(acme, "weighted", [a, b, c], weight={"A": 2, "B": 1, "C": 1})
    publish_pool(acme, pool)

    sequence = owners(route_new_lead(acme) for _ in range(8))

    assert sequence == ["A", "B", "C", "A", "A", "B", "C", "A"]


def test_round_robin_alternates_regardless_of_seniority(acme):
    # A joined in 2020 and B in 2023, with equal capacity: 30 runs of one
    # lead each alternate A, B, A, B, ..., 15 each.
    a = make_rep(acme, "A", start_date=dt.date(2020, 1, 6))
    b = make_rep(acme, "B", start_date=dt.date(2023, 5, 2))
    publish_pool(acme, make_pool(acme, "round_robin", [a, b], cap_per_day=100))

    sequence = owners(route_new_lead(acme) for _ in range(30))

    assert sequence == ["A", "B"] * 15
    assert sequence.count("A") == 15
    assert sequence.count("B") == 15


def test_rotation_after_c_continues_d_a(acme):
    # Pool A, B, C, D where C had the last lead: the next two leads go to D
    # and A, and the pointer ends at A.
    reps = [make_rep(acme, name) for name in "ABCD"]
    pool = make_pool(acme, "round_robin", reps)
    publish_pool(acme, pool)
    assert owners(route_new_lead(acme) for _ in range(3)) == ["A", "B", "C"]

    assert owners(route_new_lead(acme) for _ in range(2)) == ["D", "A"]

    state = RotationState.objects.select_related("last_member__member").get(pool=pool)
    assert state.last_member.member.display_name == "A"
    assert state.turns == 5


def test_capacity_caps_split_two_to_one_then_overflow(acme):
    # A may take 20 leads a day and B 10: the 30 leads of a day split 20 : 10
    # in the order A, B, A, A, B, A, ...; every prefix of 3k leads is 2k : k.
    # Lead 31 finds both at their cap and goes to the fallback queue.
    a, b = make_rep(acme, "A"), make_rep(acme, "B")
    publish_pool(
        acme, make_pool(acme, "capacity", [a, b], cap_per_day={"A": 20, "B": 10})
    )

    sequence = owners(route_new_lead(acme) for _ in range(30))

    assert sequence == ["A", "B", "A"] * 10
    for k in range(1, 11):
        prefix = sequence[: 3 * k]
        assert (prefix.count("A"), prefix.count("B")) == (2 * k, k)

    overflow = route_new_lead(acme)
    assert overflow.member is None
    assert overflow.outcome == "queued"
    assert overflow.lead.routing_status == Lead.RoutingStatus.QUEUED
    skipped = {c["name"]: c["skipped"] for c in overflow.candidates}
    assert skipped == {
        "A": "reached the daily cap of 20",
        "B": "reached the daily cap of 10",
    }


def test_daily_cap_resets_on_the_next_local_day(acme):
    a, b = make_rep(acme, "A"), make_rep(acme, "B")
    pool = make_pool(acme, "round_robin", [a, b], cap_per_day=1)
    publish_pool(acme, pool)
    assert owners(route_new_lead(acme) for _ in range(3)) == ["A", "B", "queue"]

    # Move the stored counts to yesterday: today's caps are free again.
    state = RotationState.objects.get(pool=pool)
    yesterday = (local_day(acme) - dt.timedelta(days=1)).isoformat()
    for values in state.counters.values():
        values["day"] = yesterday
    state.save()

    assert owners(route_new_lead(acme) for _ in range(2)) == ["A", "B"]


def test_away_rep_is_skipped_and_keeps_the_turn(acme):
    a, b, c = make_rep(acme, "A"), make_rep(acme, "B"), make_rep(acme, "C")
    publish_pool(acme, make_pool(acme, "round_robin", [a, b, c]))
    assert owners([route_new_lead(acme)]) == ["A"]

    # B is next but on time off today: C takes the lead, and B stays first
    # in line, so B gets the first lead once back, then the cycle goes on.
    time_off = TimeOff.objects.create(
        organization=acme,
        member=b,
        start_date=local_day(acme),
        end_date=local_day(acme),
    )
    away = route_new_lead(acme)
    assert owners([away]) == ["C"]
    assert {c["name"]: c["skipped"] for c in away.candidates}["B"] == "on time off"

    time_off.delete()
    assert owners(route_new_lead(acme) for _ in range(4)) == ["B", "A", "C", "B"]


def test_paused_rep_is_skipped_and_keeps_the_turn(acme):
    from routing import configuration
    from routing.models import PoolMember

    a, b = make_rep(acme, "A"), make_rep(acme, "B")
    pool = make_pool(acme, "round_robin", [a, b])
    publish_pool(acme, pool)
    paused = PoolMember.objects.get(pool=pool, member=a)
    configuration.pool_member_update(pool_member=paused, actor=None, paused=True)

    assert owners(route_new_lead(acme) for _ in range(2)) == ["B", "B"]

    configuration.pool_member_update(pool_member=paused, actor=None, paused=False)
    assert owners(route_new_lead(acme) for _ in range(3)) == ["A", "B", "A"]


def test_rep_at_open_cap_is_passed_over(acme):
    a, b = make_rep(acme, "A"), make_rep(acme, "B")
    publish_pool(acme, make_pool(acme, "round_robin", [a, b], cap_open={"A": 2}))
    # A owns two open leads and a converted one: 2 open, at the cap of 2.
    for status in ("new", "working", "converted"):
        Lead.objects.create(organization=acme, owner=a, status=status)

    assignment = route_new_lead(acme)

    assert owners([assignment]) == ["B"]
    skipped = {c["name"]: c["skipped"] for c in assignment.candidates}
    assert skipped["A"] == "owns 2 open leads, at the cap of 2"
    assert skipped["B"] == ""


def test_fewest_open_leads_then_rotation(acme):
    a, b, c = make_rep(acme, "A"), make_rep(acme, "B"), make_rep(acme, "C")
    publish_pool(acme, make_pool(acme, "fewest_open", [a, b, c]))
    # Open leads: A 2, B 0, C 1.
    for rep, count in ((a, 2), (c, 1)):
        for _ in range(count):
            Lead.objects.create(organization=acme, owner=rep, status="new")

    # Each routed lead is open and adds to its owner's count:
    #   (2, 0, 1) -> B; (2, 1, 1) -> C (tie with B, C waited longer);
    #   (2, 1, 2) -> B; (2, 2, 2) -> A (waited longest).
    sequence = owners(route_new_lead(acme) for _ in range(4))

    assert sequence == ["B", "C", "B", "A"]


def test_every_rep_unavailable_goes_to_fallback(acme):
    from routing import configuration
    from routing.models import PoolMember

    a, b = make_rep(acme, "A"), make_rep(acme, "B", is_active=False)
    pool = make_pool(acme, "round_robin", [a, b])
    publish_pool(acme, pool)
    configuration.pool_member_update(
        pool_member=PoolMember.objects.get(pool=pool, member=a),
        actor=None,
        paused=True,
    )

    assignment = route_new_lead(acme)

    assert assignment.outcome == "queued"
    assert assignment.member is None
    assert assignment.reason == f"every rep in pool {pool.name} is unavailable"
    assert [(c["name"], c["skipped"]) for c in assignment.candidates] == [
        ("A", "paused in this pool"),
        ("B", "no longer an active member"),
    ]
    state = RotationState.objects.get(pool=pool)
    assert state.turns == 0


@pytest.mark.parametrize(
    ("start", "end", "reason"),
    [
        (dt.date(2999, 1, 1), None, "starts on 2999-01-01"),
        (None, dt.date(2000, 1, 31), "left on 2000-01-31"),
    ],
)
def test_rep_outside_their_dates_is_skipped(acme, start, end, reason):
    a = make_rep(acme, "A", start_date=start, end_date=end)
    b = make_rep(acme, "B")
    publish_pool(acme, make_pool(acme, "round_robin", [a, b]))

    assignment = route_new_lead(acme)

    assert owners([assignment]) == ["B"]
    assert assignment.candidates[0]["skipped"] == reason


def test_daily_cap_counts_organisation_local_days(acme, monkeypatch):
    # Auckland is UTC+13 in March 2024: 10:45 UTC on 4 March is 23:45 there,
    # and 11:30 UTC is 00:30 on 5 March, a new local day for the cap, while
    # the UTC date is still 4 March.
    from django.utils import timezone

    acme.time_zone = "Pacific/Auckland"
    acme.save()
    a = make_rep(acme, "A")
    publish_pool(acme, make_pool(acme, "round_robin", [a], cap_per_day=1))

    def route_at(hour: int, minute: int):
        moment = dt.datetime(2024, 3, 4, hour, minute, tzinfo=dt.UTC)
        monkeypatch.setattr(timezone, "now", lambda: moment)
        return route_new_lead(acme)

    assert owners([route_at(10, 30), route_at(10, 45), route_at(11, 30)]) == [
        "A",
        "queue",
        "A",
    ]


def test_time_off_uses_organisation_local_day(acme, monkeypatch):
    # B is away on 5 March. Los Angeles is UTC-8 until 10 March 2024, so at
    # 07:30 UTC on 5 March it is 23:30 on 4 March there and B takes the
    # lead. At 09:30 UTC it is 01:30 on 5 March: B is away and A takes it.
    from django.utils import timezone

    acme.time_zone = "America/Los_Angeles"
    acme.save()
    a, b = make_rep(acme, "A"), make_rep(acme, "B")
    publish_pool(acme, make_pool(acme, "round_robin", [b, a]))
    TimeOff.objects.create(
        organization=acme,
        member=b,
        start_date=dt.date(2024, 3, 5),
        end_date=dt.date(2024, 3, 5),
    )

    def route_at(day: int, hour: int):
        moment = dt.datetime(2024, 3, day, hour, 30, tzinfo=dt.UTC)
        monkeypatch.setattr(timezone, "now", lambda: moment)
        return route_new_lead(acme)

    assert owners([route_at(5, 7)]) == ["B"]
    assert owners([route_at(5, 9)]) == ["A"]
