"""Benchmark and time-off writes, their rules and their audit entries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from goals import services
from goals.models import ActivityBenchmark, TimeOff
from goals.services import BenchmarkError, TimeOffError
from goals.values import parse_ramp
from spm.models import AuditLog
from tests.goals.conftest import make_time_off

D = dt.date


def _create_benchmark(personas, **fields):
    values = {"activity_type": "call", "unit": "day", "target": Decimal("20")}
    values.update(fields)
    return services.benchmark_create(
        organization=personas.org, actor=personas.admin.user, **values
    )


def test_benchmark_create_audited(in_org, personas):
    benchmark = _create_benchmark(personas, role="rep", ramp=[50, 75])

    entry = AuditLog.objects.get(action="benchmark.create")
    assert entry.object_id == str(benchmark.public_id)
    assert entry.new == {
        "activity_type": "call",
        "unit": "day",
        "target": "20.00",
        "role": "rep",
        "team": None,
        "ramp": [50, 75],
    }


def test_benchmark_update_audits_old_and_new(in_org, personas):
    benchmark = _create_benchmark(personas)
    team = personas.rep1.team

    services.benchmark_update(
        benchmark=benchmark,
        actor=personas.admin.user,
        target=Decimal("25.5"),
        team=team,
        ramp=[50],
    )

    entry = AuditLog.objects.get(action="benchmark.update")
    assert entry.old["target"] == "20.00"
    assert entry.new["target"] == "25.50"
    assert entry.old["team"] is None
    assert entry.new["team"] == "East"
    assert entry.new["ramp"] == [50]


def test_benchmark_noop_update_not_audited(in_org, personas):
    benchmark = _create_benchmark(personas)

    services.benchmark_update(
        benchmark=benchmark, actor=None, target=Decimal("20.00"), ramp=[]
    )

    assert not AuditLog.objects.filter(action="benchmark.update").exists()


def test_benchmark_delete_audited(in_org, personas):
    benchmark = _create_benchmark(personas, unit="week")

    services.benchmark_delete(benchmark=benchmark, actor=personas.admin.user)

    assert not ActivityBenchmark.objects.exists()
    entry = AuditLog.objects.get(action="benchmark.delete")
    assert entry.old["unit"] == "week"
    assert entry.new is None


def test_benchmark_same_scope_rejected(in_org, personas):
    _create_benchmark(personas)

    with pytest.raises(
        BenchmarkError, match="A benchmark of calls for everyone already exists"
    ):
        _create_benchmark(personas, target=Decimal("5"))

    # Another scope or type is fine.
    _create_benchmark(personas, role="rep")
    _create_benchmark(personas, activity_type="email")
    assert ActivityBenchmark.objects.count() == 3


@pytest.mark.parametrize(
    ("ramp", "message"),
    [([50, 101], "Month 2 of the ramp, 101"), ([-1], "Month 1"), ([50.5], "50.5")],
)
def test_benchmark_ramp_values_checked(in_org, personas, ramp, message):
    with pytest.raises(BenchmarkError, match=message):
        _create_benchmark(personas, ramp=ramp)
    assert not ActivityBenchmark.objects.exists()


def test_benchmark_target_must_be_positive(in_org, personas):
    with pytest.raises(BenchmarkError, match="must be from 0.01"):
        _create_benchmark(personas, target=Decimal("0"))


@pytest.mark.parametrize(
    ("text", "ramp"),
    [("50, 75", [50, 75]), ("", []), ("25%, 50%; 100", [25, 50, 100]), ("0", [0])],
)
def test_parse_ramp(text, ramp):
    assert parse_ramp(text) == ramp


@pytest.mark.parametrize("text", ["50, 175", "fifty", "50, -5", "7.5"])
def test_parse_ramp_rejects(text):
    with pytest.raises(ValueError, match="whole percentage from 0 to 100"):
        parse_ramp(text)


# Time off -------------------------------------------------------------------


def _add_time_off(personas, member, start, end, **fields):
    return services.time_off_create(
        organization=personas.org,
        actor=personas.admin.user,
        member=member,
        start_date=start,
        end_date=end,
        **fields,
    )


def test_time_off_create_audited(in_org, personas):
    entry = _add_time_off(
        personas, personas.rep1, D(2024, 2, 5), D(2024, 2, 9), note="Skiing"
    )

    log = AuditLog.objects.get(action="time_off.create")
    assert log.object_id == str(entry.public_id)
    assert log.new == {
        "member": "Rita Rep",
        "kind": "vacation",
        "start_date": "2024-02-05",
        "end_date": "2024-02-09",
        "note": "Skiing",
    }


def test_time_off_one_day(in_org, personas):
    entry = _add_time_off(personas, personas.rep1, D(2024, 2, 5), D(2024, 2, 5))
    assert entry.start_date == entry.end_date


def test_time_off_end_before_start_rejected(in_org, personas):
    with pytest.raises(TimeOffError, match="2024-02-04 is before the first day"):
        _add_time_off(personas, personas.rep1, D(2024, 2, 5), D(2024, 2, 4))
    assert not TimeOff.objects.exists()


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (D(2024, 2, 9), D(2024, 2, 12)),  # starts on the existing last day
        (D(2024, 2, 1), D(2024, 2, 5)),  # ends on the existing first day
        (D(2024, 2, 6), D(2024, 2, 7)),  # inside it
        (D(2024, 2, 1), D(2024, 2, 20)),  # around it
    ],
)
def test_time_off_overlap_rejected(in_org, personas, start, end):
    make_time_off(personas.rep1, D(2024, 2, 5), D(2024, 2, 9))

    with pytest.raises(TimeOffError) as caught:
        _add_time_off(personas, personas.rep1, start, end)

    assert str(caught.value) == (
        "Rita Rep already has vacation from 2024-02-05 to 2024-02-09, which "
        "overlaps these days: change the dates or delete that entry first."
    )
    assert TimeOff.objects.count() == 1


def test_time_off_adjacent_allowed(in_org, personas):
    make_time_off(personas.rep1, D(2024, 2, 5), D(2024, 2, 9))

    _add_time_off(personas, personas.rep1, D(2024, 2, 10), D(2024, 2, 11))
    _add_time_off(personas, personas.rep2, D(2024, 2, 5), D(2024, 2, 9))

    assert TimeOff.objects.count() == 3


def test_time_off_delete_audited(in_org, personas):
    entry = make_time_off(personas.rep1, D(2024, 2, 5), D(2024, 2, 9))

    services.time_off_delete(time_off=entry, actor=personas.manager.user)

    assert not TimeOff.objects.exists()
    log = AuditLog.objects.get(action="time_off.delete")
    assert log.actor == personas.manager.user
    assert log.old["start_date"] == "2024-02-05"
    assert log.new is None
