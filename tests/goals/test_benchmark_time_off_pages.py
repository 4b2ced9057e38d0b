"""The benchmarks page and the time-off calendar: forms and who may use them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest

from goals.models import ActivityBenchmark, TimeOff
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.conftest import login
from tests.goals.conftest import make_benchmark, make_time_off

D = dt.date
BENCHMARKS = "/o/acme/goals/benchmarks/"
TIME_OFF = "/o/acme/goals/time-off/"
# The pages date "upcoming" and "recent" from the organisation's today.
TODAY = D(2024, 3, 1)


def _benchmarks(org) -> list[tuple]:
    with tenant_context(org):
        return list(
            ActivityBenchmark.objects.order_by("pk").values_list(
                "activity_type", "target", "unit", "role", "team__name", "ramp"
            )
        )


def _time_off(org) -> list[tuple]:
    with tenant_context(org):
        return list(
            TimeOff.objects.order_by("start_date").values_list(
                "member__display_name", "start_date", "end_date"
            )
        )


# Benchmarks -----------------------------------------------------------------


def test_add_benchmark(client, personas):
    login(client, personas.admin)
    team = personas.rep1.team
    data = {
        "activity_type": "call",
        "target": "12.5",
        "unit": "day",
        "applies_to": f"team:{team.public_id}",
        "ramp": "50, 75",
    }

    response = client.post(BENCHMARKS, data)

    assert response.status_code == 302
    assert _benchmarks(personas.org) == [
        ("call", Decimal("12.50"), "day", "", "East", [50, 75])
    ]
    page = client.get(BENCHMARKS).content.decode()
    assert "50%, 75%, then 100%" in page


def test_add_benchmark_bad_ramp(client, personas):
    login(client, personas.admin)
    data = {
        "activity_type": "call",
        "target": "10",
        "unit": "day",
        "applies_to": "everyone",
        "ramp": "50, 120",
    }

    response = client.post(BENCHMARKS, data)

    assert response.status_code == 400
    assert "Month 2 of the ramp, “120”, is not a whole percentage" in (
        response.content.decode()
    )
    assert _benchmarks(personas.org) == []


def test_add_duplicate_benchmark(client, personas):
    make_benchmark(personas.org.pk, "email", role="rep")
    login(client, personas.admin)
    data = {
        "activity_type": "email",
        "target": "10",
        "unit": "week",
        "applies_to": "role:rep",
    }

    response = client.post(BENCHMARKS, data)

    assert response.status_code == 400
    assert "A benchmark of emails for reps already exists" in (
        response.content.decode()
    )


def test_edit_and_delete_benchmark(client, personas):
    benchmark = make_benchmark(personas.org.pk, "call", "10")
    login(client, personas.admin)
    url = f"{BENCHMARKS}{benchmark.public_id}/"

    assert client.get(url).status_code == 200
    data = {
        "activity_type": "call",
        "target": "15",
        "unit": "week",
        "applies_to": "role:manager",
        "ramp": "",
    }
    assert client.post(url, data).status_code == 302
    assert _benchmarks(personas.org) == [
        ("call", Decimal("15.00"), "week", "manager", None, [])
    ]

    assert client.post(f"{url}delete/").status_code == 302
    assert _benchmarks(personas.org) == []
    with tenant_context(personas.org):
        actions = list(AuditLog.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["benchmark.update", "benchmark.delete"]


@pytest.mark.parametrize("persona", ["rep1", "manager", "vp"])
def test_non_admins_cannot_edit_benchmarks(client, personas, persona):
    benchmark = make_benchmark(personas.org.pk)
    login(client, getattr(personas, persona))
    url = f"{BENCHMARKS}{benchmark.public_id}/"
    data = {"activity_type": "call", "target": "1", "unit": "day"}

    assert client.get(BENCHMARKS).status_code == 404
    assert (
        client.post(BENCHMARKS, {**data, "applies_to": "everyone"}).status_code == 404
    )
    assert client.post(url, data).status_code == 404
    assert client.post(f"{url}delete/").status_code == 404
    assert _benchmarks(personas.org) == [
        ("call", Decimal("10.00"), "day", "", None, [])
    ]


def test_other_organisations_benchmark_is_404(client, personas):
    benchmark = make_benchmark(personas.other_org.pk)
    login(client, personas.admin)
    url = f"{BENCHMARKS}{benchmark.public_id}/"

    assert client.get(url).status_code == 404
    assert client.post(f"{url}delete/").status_code == 404
    assert ActivityBenchmark.unscoped.filter(pk=benchmark.pk).exists()


# Time off -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fixed_today():
    with mock.patch("goals.views.time_off.organization_today", return_value=TODAY):
        yield


def _add(client, member, start="2024-03-04", end="2024-03-08"):
    return client.post(
        TIME_OFF,
        {
            "member": str(member.public_id),
            "kind": "vacation",
            "start_date": start,
            "end_date": end,
            "note": "",
        },
    )


def test_admin_adds_time_off(client, personas):
    login(client, personas.admin)

    assert _add(client, personas.rep4).status_code == 302

    assert _time_off(personas.org) == [("Rex Rep", D(2024, 3, 4), D(2024, 3, 8))]


def test_time_off_form_errors(client, personas):
    make_time_off(personas.rep1, D(2024, 3, 6), D(2024, 3, 12))
    login(client, personas.admin)

    backwards = _add(client, personas.rep1, "2024-03-08", "2024-03-04")
    overlapping = _add(client, personas.rep1)

    assert backwards.status_code == 400
    assert "The last day 2024-03-04 is before the first day 2024-03-08." in (
        backwards.content.decode()
    )
    assert overlapping.status_code == 400
    assert "Rita Rep already has vacation from 2024-03-06 to 2024-03-12" in (
        overlapping.content.decode()
    )
    assert len(_time_off(personas.org)) == 1


def test_manager_adds_for_reports_only(client, personas):
    login(client, personas.manager)

    assert _add(client, personas.rep1).status_code == 302
    # rep3 reports to the vp, not to this manager, and a manager cannot add
    # their own.
    assert _add(client, personas.rep3).status_code == 400
    assert _add(client, personas.manager).status_code == 400

    assert _time_off(personas.org) == [("Rita Rep", D(2024, 3, 4), D(2024, 3, 8))]


def test_manager_deletes_for_reports_only(client, personas):
    mine = make_time_off(personas.rep1, D(2024, 3, 4), D(2024, 3, 8))
    other = make_time_off(personas.rep3, D(2024, 3, 4), D(2024, 3, 8))
    own = make_time_off(personas.manager, D(2024, 3, 4), D(2024, 3, 8))
    login(client, personas.manager)

    assert client.post(f"{TIME_OFF}{other.public_id}/delete/").status_code == 404
    assert client.post(f"{TIME_OFF}{own.public_id}/delete/").status_code == 404
    assert client.post(f"{TIME_OFF}{mine.public_id}/delete/").status_code == 302

    names = [name for name, _start, _end in _time_off(personas.org)]
    assert sorted(names) == ["Max Manager", "Remy Rep"]


def test_rep_sees_own_time_off_only(client, personas):
    make_time_off(personas.rep1, D(2024, 3, 4), D(2024, 3, 8))
    make_time_off(personas.rep2, D(2024, 3, 4), D(2024, 3, 8))
    entry = make_time_off(personas.rep1, D(2024, 2, 1), D(2024, 2, 2))
    login(client, personas.rep1)

    response = client.get(TIME_OFF)

    assert response.status_code == 200
    assert [e.member.display_name for e in response.context["upcoming"]] == ["Rita Rep"]
    assert [e.start_date for e in response.context["recent"]] == [D(2024, 2, 1)]
    assert response.context["form"] is None
    assert "Delete" not in response.content.decode()
    assert _add(client, personas.rep1).status_code == 404
    assert client.post(f"{TIME_OFF}{entry.public_id}/delete/").status_code == 404
    assert len(_time_off(personas.org)) == 3


def test_list_upcoming_recent_and_filter(client, personas):
    make_time_off(personas.rep1, D(2024, 2, 26), D(2024, 3, 1))  # ends today
    make_time_off(personas.rep2, D(2024, 4, 1), D(2024, 4, 5))
    make_time_off(personas.rep2, D(2024, 1, 8), D(2024, 1, 9))
    # Ended more than 90 days before today: not listed.
    make_time_off(personas.rep1, D(2023, 11, 1), D(2023, 11, 2))
    login(client, personas.admin)

    response = client.get(TIME_OFF)

    upcoming = [(e.member.display_name, e.days) for e in response.context["upcoming"]]
    recent = [(e.member.display_name, e.days) for e in response.context["recent"]]
    assert upcoming == [("Rita Rep", 5), ("Rob Rep", 5)]
    assert recent == [("Rob Rep", 2)]

    response = client.get(TIME_OFF, {"member": str(personas.rep2.public_id)})

    assert [e.end_date for e in response.context["upcoming"]] == [D(2024, 4, 5)]


def test_other_organisations_time_off_is_404(client, personas):
    entry = make_time_off(personas.other_rep, D(2024, 3, 4), D(2024, 3, 8))
    login(client, personas.admin)

    assert client.post(f"{TIME_OFF}{entry.public_id}/delete/").status_code == 404
    assert _add(client, personas.other_rep).status_code == 400
    assert TimeOff.unscoped.filter(pk=entry.pk).exists()


def test_time_off_page_queries(client, personas, django_assert_max_num_queries):
    for rep in (personas.rep1, personas.rep2, personas.rep3, personas.rep4):
        make_time_off(rep, D(2024, 3, 4), D(2024, 3, 8))
    login(client, personas.manager)

    # Session, user and membership (3), reporting tree, entries and the two
    # member lists (4), and the shared parts of every page.
    with django_assert_max_num_queries(11):
        response = client.get(TIME_OFF)

    assert len(response.context["upcoming"]) == 2


def test_benchmark_targets_drop_zero_cents(client, personas):
    make_benchmark(personas.org.pk, "call", "40")
    make_benchmark(personas.org.pk, "email", "2.5")
    login(client, personas.admin)

    page = client.get(BENCHMARKS).content.decode()

    assert '<td>Call</td>\n            <td class="num">40</td>' in page
    assert '<td>Email</td>\n            <td class="num">2.50</td>' in page
    assert "40.00" not in page
