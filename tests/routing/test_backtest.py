"""Backtest: a draft rule set replayed over recent leads, beside the live one."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from routing.configuration import RuleSpec
from routing.engine import backtest as backtest_module
from routing.engine.backtest import backtest, backtest_by_member, jain_index
from routing.engine.preview import draft_rules
from routing.models import Assignment, ResponseTimer, RotationState
from tests.conftest import login
from tests.routing.conftest import make_pool, make_rep, publish, route_new_lead

D = Decimal
NOW = dt.datetime(2024, 3, 20, 12, tzinfo=dt.UTC)


@pytest.fixture
def history(acme, monkeypatch):
    """Six leads of 100.00 routed live to pool [A, B] over the last 6 days."""
    reps = {name: make_rep(acme, name) for name in "ABC"}
    live_pool = make_pool(acme, "round_robin", [reps["A"], reps["B"]])
    draft_pool = make_pool(acme, "round_robin", list(reps.values()))
    publish(acme, RuleSpec(name="Live", action="pool", pool=live_pool))
    leads = []
    for days_ago in range(6, 0, -1):
        moment = NOW - dt.timedelta(days=days_ago)
        monkeypatch.setattr(timezone, "now", lambda moment=moment: moment)
        leads.append(route_new_lead(acme, estimated_value="100").lead)
    # A lead from before the window is not replayed.
    monkeypatch.setattr(timezone, "now", lambda: NOW - dt.timedelta(weeks=3))
    route_new_lead(acme, estimated_value="100")
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    draft = draft_rules([RuleSpec(name="All", action="pool", pool=draft_pool)], 2)
    return reps, leads, draft


def test_backtest_counts_and_values(history):
    reps, _leads, draft = history

    result = backtest(draft, weeks=2, now=NOW)
    by_rep = backtest_by_member(result)

    assert (result.received, result.replayed) == (6, 6)
    # Live A, B, A, B, A, B; draft A, B, C, A, B, C: leads 3 to 6 differ.
    assert result.changed == 4
    assert [(by_rep[n].live_leads, by_rep[n].draft_leads) for n in "ABC"] == [
        (3, 2),
        (3, 2),
        (0, 2),
    ]
    assert by_rep["A"].live_value == D("300.00")
    assert by_rep["C"].draft_value == D("200.00")
    assert result.draft_fairness == D("1.00")
    # 600^2 / (3 x (300^2 + 300^2 + 0)) = 0.666...
    assert result.live_fairness == D("0.67")


def test_backtest_writes_nothing(history):
    _reps, _leads, draft = history
    states = list(RotationState.objects.values_list("pk", "turns", "counters"))
    assignments = Assignment.objects.count()

    backtest(draft, weeks=2, now=NOW)

    assert list(RotationState.objects.values_list("pk", "turns", "counters")) == states
    assert Assignment.objects.count() == assignments


def test_backtest_expected_breaches(history):
    reps, leads, draft = history
    for status in (ResponseTimer.Status.BREACHED, ResponseTimer.Status.MET):
        ResponseTimer.objects.create(
            lead=leads[0],
            member=reps["A"],
            assigned_at=NOW,
            due_at=NOW,
            minutes=5,
            on_breach="reassign",
            status=status,
        )

    by_rep = backtest_by_member(backtest(draft, weeks=2, now=NOW))

    # Half of A's closed timers were breached: 2 x 0.5 and 3 x 0.5.
    assert by_rep["A"].draft_breaches == D("1.00")
    assert by_rep["A"].live_breaches == D("1.50")
    assert by_rep["B"].draft_breaches is None


def test_backtest_keeps_newest_leads(history, monkeypatch):
    _reps, _leads, draft = history
    monkeypatch.setattr(backtest_module, "MAX_LEADS", 4)

    result = backtest(draft, weeks=2, now=NOW)

    assert (result.received, result.replayed, result.truncated) == (6, 4, True)


@pytest.mark.parametrize(
    ("values", "index"),
    [(["1", "1", "1"], "1.00"), (["3", "0", "0"], "0.33"), (["0"], None)],
)
def test_jain_index(values, index):
    expected = None if index is None else D(index)
    assert jain_index([D(v) for v in values]) == expected


def _editor_data(pool, weeks: str) -> dict:
    return {
        "rules-TOTAL_FORMS": "1",
        "rules-INITIAL_FORMS": "0",
        "rules-0-order": "1",
        "rules-0-name": "All",
        "rules-0-action": "pool",
        "rules-0-pool": str(pool.public_id),
        "based_on": "1",
        "note": "",
        "backtest": "1",
        "backtest_weeks": weeks,
    }


def test_editor_shows_backtest(client, personas, history, monkeypatch):
    from routing.models import Pool

    login(client, personas.admin)
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    draft_pool = Pool.objects.filter(members__member__display_name="C").get()

    response = client.post(
        "/o/acme/leads/routing/rules/edit/", _editor_data(draft_pool, "2")
    )
    html = response.content.decode()

    assert response.status_code == 200
    assert "Backtest over 2 weeks" in html
    assert "6 leads replayed" in html
    assert "4 would go elsewhere" in html
    assert "draft 1.00, live 0.67" in html
    assert RotationState.objects.filter(pool=draft_pool).get().turns == 0


@pytest.mark.parametrize("weeks", ["0", "-2", "99", "1000", "abc"])
def test_editor_rejects_bad_weeks(client, personas, history, weeks):
    from routing.models import Pool

    login(client, personas.admin)
    draft_pool = Pool.objects.filter(members__member__display_name="C").get()

    response = client.post(
        "/o/acme/leads/routing/rules/edit/", _editor_data(draft_pool, weeks)
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert "<h2>The backtest did not run</h2>" in html
    assert "Nothing was published" not in html
    message = f"Weeks to backtest must be a whole number from 1 to 26, not {weeks}."
    # Once in the summary under the heading, once under the weeks box.
    assert html.count(f"<li>{message}</li>") == 2
    assert f'id="backtest-weeks-error"><li>{message}</li>' in html


def test_editor_asks_for_empty_weeks(client, personas, history):
    from routing.models import Pool

    login(client, personas.admin)
    draft_pool = Pool.objects.filter(members__member__display_name="C").get()

    response = client.post(
        "/o/acme/leads/routing/rules/edit/", _editor_data(draft_pool, " ")
    )

    assert response.status_code == 400
    assert (
        "<li>Enter the weeks to backtest, a whole number from 1 to 26.</li>"
        in response.content.decode()
    )
