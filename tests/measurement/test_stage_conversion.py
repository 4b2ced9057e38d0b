"""Stage conversion per rep, and the conversion funnel on the team dashboard.

The organisation is in America/New_York and the period is the first quarter
of 2024, from 2024-01-01 05:00 UTC to 2024-04-01 04:00 UTC. The Funnel
pipeline has Prospecting (1), Qualified (2), Proposal (3), Won and Lost.
Stage changes by deal, in local time:

Rita
  A  Prospecting 01-10, Qualified 01-20, Proposal 02-01, Won 02-20
  B  Prospecting 01-12, Proposal 01-25 (skips Qualified), Lost 03-01
  C  Prospecting 02-03, Lost 02-10
  D  Prospecting 2023-12-20 (before the period), Qualified 01-05, Lost 01-30
  S  Sales pipeline: Prospecting 01-05, Engaging 01-06
Rob
  E  Prospecting 01-08, Qualified 01-15, back to Prospecting 01-22,
     Qualified 02-05, Proposal 03-31 23:30 (04-01 03:30 UTC)
  F  Prospecting 2023-12-31 22:00 (01-01 03:00 UTC), Qualified 01-03
  G  archived: Prospecting 01-09, Qualified 01-10
Remy
  H  Prospecting 02-01, Won 02-02
  I  Prospecting 02-01, Lost 02-05
  J  Prospecting 02-01, Qualified 03-01, Proposal 04-15 (after the period)
Rex has no stage changes.

Worked out, entered / progressed per stage:

  Rita  Prospecting A B C, A and B moved on: 2 of 3 = 66.7%.
        Qualified A D (B skipped it), A moved on: 1 of 2 = 50.0%.
        Proposal A B, A won: 1 of 2 = 50.0%.
  Rob   Prospecting E (its re-entry on 01-22 is not a new entry, F entered
        before the period): 1 of 1 = 100.0%.
        Qualified E F, E moved on: 1 of 2 = 50.0%.
        Proposal E on the last evening of the period: 0 of 1 = 0.0%.
  Remy  Prospecting H I J, H won and J moved on: 2 of 3 = 66.7%.
        Qualified J, which moved on after the period: 1 of 1 = 100.0%.
        Proposal: J entered it after the period, so no data.
  Rex   no data in every stage.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from activity.models import Pipeline, Stage
from measurement import charts
from measurement.selectors import MetricScope, attach_stage_conversion, rep_rows
from measurement.stage_conversion import StageRate, stage_conversion
from tests.conftest import login
from tests.integrations.test_salesforce_leads_history import (
    stage_conversion as recount_stage_conversion,
)
from tests.measurement.builders import make_deal, make_stage_change

NEW_YORK = ZoneInfo("America/New_York")
Q1_START = dt.date(2024, 1, 1)
Q1_END = dt.date(2024, 4, 1)
TEAM_URL = "/o/acme/team/?kind=quarter&on=2024-01-01"
FUNNEL_URL = "/o/acme/team/funnel/?kind=quarter&on=2024-01-01"
FUNNEL_STAGES = ["Prospecting", "Qualified", "Proposal"]


def _local(year: int, month: int, day: int, hour: int = 12, minute: int = 0):
    return dt.datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


def _funnel_stages(organization_id: int) -> dict[str, Stage]:
    pipeline = Pipeline.unscoped.create(organization_id=organization_id, name="Funnel")
    specs = [
        ("Prospecting", 1, False, False),
        ("Qualified", 2, False, False),
        ("Proposal", 3, False, False),
        ("Won", 4, True, True),
        ("Lost", 5, True, False),
    ]
    return {
        name: Stage.unscoped.create(
            organization_id=organization_id,
            pipeline=pipeline,
            name=name,
            order=order,
            is_closed=closed,
            is_won=won,
            external_source="test",
            external_id=f"funnel-{name}",
        )
        for name, order, closed, won in specs
    }


def _deal(owner, stages, path, archived=False):
    """Create a deal that went through ``path``, (stage name, local time) pairs."""
    deal = make_deal(owner, stages[path[-1][0]], "1000.00", archived=archived)
    for name, at in path:
        make_stage_change(deal, stages[name], at)
    return deal


@pytest.fixture
def history(personas, in_org):
    personas.org.time_zone = "America/New_York"
    personas.org.save(update_fields=["time_zone"])
    stages = _funnel_stages(personas.org.pk)
    rita, rob, remy = personas.rep1, personas.rep2, personas.rep3

    # Rita
    _deal(
        rita,
        stages,
        [
            ("Prospecting", _local(2024, 1, 10)),
            ("Qualified", _local(2024, 1, 20)),
            ("Proposal", _local(2024, 2, 1)),
            ("Won", _local(2024, 2, 20)),
        ],
    )
    _deal(
        rita,
        stages,
        [
            ("Prospecting", _local(2024, 1, 12)),
            ("Proposal", _local(2024, 1, 25)),
            ("Lost", _local(2024, 3, 1)),
        ],
    )
    _deal(
        rita,
        stages,
        [("Prospecting", _local(2024, 2, 3)), ("Lost", _local(2024, 2, 10))],
    )
    _deal(
        rita,
        stages,
        [
            ("Prospecting", _local(2023, 12, 20)),
            ("Qualified", _local(2024, 1, 5)),
            ("Lost", _local(2024, 1, 30)),
        ],
    )
    _deal(
        rita,
        personas.stages,
        [("Prospecting", _local(2024, 1, 5)), ("Engaging", _local(2024, 1, 6))],
    )

    # Rob
    _deal(
        rob,
        stages,
        [
            ("Prospecting", _local(2024, 1, 8)),
            ("Qualified", _local(2024, 1, 15)),
            ("Prospecting", _local(2024, 1, 22)),
            ("Qualified", _local(2024, 2, 5)),
            ("Proposal", _local(2024, 3, 31, 23, 30)),
        ],
    )
    _deal(
        rob,
        stages,
        [
            ("Prospecting", _local(2023, 12, 31, 22)),
            ("Qualified", _local(2024, 1, 3)),
        ],
    )
    _deal(
        rob,
        stages,
        [("Prospecting", _local(2024, 1, 9)), ("Qualified", _local(2024, 1, 10))],
        archived=True,
    )

    # Remy
    _deal(
        remy,
        stages,
        [("Prospecting", _local(2024, 2, 1)), ("Won", _local(2024, 2, 2))],
    )
    _deal(
        remy,
        stages,
        [("Prospecting", _local(2024, 2, 1)), ("Lost", _local(2024, 2, 5))],
    )
    _deal(
        remy,
        stages,
        [
            ("Prospecting", _local(2024, 2, 1)),
            ("Qualified", _local(2024, 3, 1)),
            ("Proposal", _local(2024, 4, 15)),
        ],
    )
    return personas


def _reps(personas):
    return [personas.rep1, personas.rep2, personas.rep3, personas.rep4]


def _q1_scope(personas) -> MetricScope:
    ids = [rep.pk for rep in _reps(personas)]
    return MetricScope(ids, Q1_START, Q1_END, NEW_YORK)


def _counts(rates: list[StageRate]) -> list[tuple]:
    return [(rate.stage, rate.entered, rate.progressed, rate.rate) for rate in rates]


def test_conversion_per_rep_and_stage(history):
    conversion = stage_conversion(_q1_scope(history))

    assert conversion.pipeline == "Funnel"
    assert conversion.stages == FUNNEL_STAGES
    rita = conversion.of_member(history.rep1.pk).stages
    assert _counts(rita) == [
        ("Prospecting", 3, 2, Decimal("66.7")),
        ("Qualified", 2, 1, Decimal("50.0")),
        ("Proposal", 2, 1, Decimal("50.0")),
    ]
    rob = conversion.of_member(history.rep2.pk).stages
    assert _counts(rob) == [
        ("Prospecting", 1, 1, Decimal("100.0")),
        ("Qualified", 2, 1, Decimal("50.0")),
        ("Proposal", 1, 0, Decimal("0.0")),
    ]
    remy = conversion.of_member(history.rep3.pk).stages
    assert _counts(remy) == [
        ("Prospecting", 3, 2, Decimal("66.7")),
        ("Qualified", 1, 1, Decimal("100.0")),
        ("Proposal", 0, 0, None),
    ]
    rex = conversion.of_member(history.rep4.pk).stages
    assert _counts(rex) == [
        ("Prospecting", 0, 0, None),
        ("Qualified", 0, 0, None),
        ("Proposal", 0, 0, None),
    ]


def test_entry_on_last_evening_counts(history):
    """Rob's Proposal entry is at 03:30 UTC on 1 April, 23:30 on 31 March local.

    Remy's J enters Proposal in April, so the Funnel pipeline is measured in
    both months.
    """
    reps = [history.rep2.pk, history.rep3.pk]
    march = MetricScope(reps, dt.date(2024, 3, 1), Q1_END, NEW_YORK)
    april = MetricScope(reps, Q1_END, dt.date(2024, 5, 1), NEW_YORK)

    in_march = stage_conversion(march)
    in_april = stage_conversion(april)

    assert in_march.pipeline == in_april.pipeline == "Funnel"
    assert in_march.of_member(history.rep2.pk).stages[2].entered == 1
    assert in_april.of_member(history.rep2.pk).stages[2].entered == 0
    assert in_april.of_member(history.rep3.pk).stages[2].entered == 1


def test_entry_before_local_midnight_excluded(history):
    """F entered Prospecting at 03:00 UTC on 1 January, still 31 December local."""
    december = MetricScope([history.rep2.pk], dt.date(2023, 12, 1), Q1_START, NEW_YORK)

    rates = stage_conversion(december).of_member(history.rep2.pk).stages

    assert _counts(rates)[0] == ("Prospecting", 1, 1, Decimal("100.0"))


def test_archived_deal_excluded(history):
    """From 01-09 to 01-10, Rita's A and Rob's archived G entered Prospecting."""
    reps = [history.rep1.pk, history.rep2.pk]
    scope = MetricScope(reps, dt.date(2024, 1, 9), dt.date(2024, 1, 11), NEW_YORK)

    conversion = stage_conversion(scope)
    history.rep2.owned_deals.update(archived_at=None)
    unarchived = stage_conversion(scope)

    assert conversion.pipeline == "Funnel"
    rob = conversion.of_member(history.rep2.pk).stages
    assert [rate.entered for rate in rob] == [0, 0, 0]
    rob_unarchived = unarchived.of_member(history.rep2.pk).stages
    assert [rate.entered for rate in rob_unarchived] == [1, 1, 0]


def test_rate_rounds_half_up():
    assert StageRate("Prospecting", 3, 2).rate == Decimal("66.7")
    assert StageRate("Prospecting", 16, 1).rate == Decimal("6.3")
    assert StageRate("Prospecting", 8, 1).rate == Decimal("12.5")
    assert StageRate("Prospecting", 0, 0).rate is None


def test_matches_history_recount(history):
    """Over all time, the reps' summed counts give the rates of the Python
    recount in the Salesforce history tests.

    That recount reads every deal of the organisation, archived ones too, so
    the archived deal is deleted first.
    """
    history.rep2.owned_deals.filter(archived_at__isnull=False).delete()
    scope = MetricScope(
        [rep.pk for rep in _reps(history)],
        dt.date(2000, 1, 1),
        dt.date(2100, 1, 1),
        NEW_YORK,
    )

    conversion = stage_conversion(scope)

    for position, stage in enumerate(FUNNEL_STAGES):
        rates = [
            conversion.of_member(rep.pk).stages[position] for rep in _reps(history)
        ]
        total = StageRate(
            stage,
            sum(rate.entered for rate in rates),
            sum(rate.progressed for rate in rates),
        )
        assert total.rate == recount_stage_conversion(f"funnel-{stage}"), stage


def test_tie_goes_to_default_pipeline(history):
    """In Rita's first week, D entered Funnel's Qualified and S Sales' stages.

    One deal in each pipeline, so the default pipeline, Sales, is measured,
    though Funnel comes first by name.
    """
    first_week = MetricScope([history.rep1.pk], Q1_START, dt.date(2024, 1, 7), NEW_YORK)

    conversion = stage_conversion(first_week)

    assert conversion.pipeline == "Sales"
    rates = conversion.of_member(history.rep1.pk).stages
    assert _counts(rates) == [
        ("Prospecting", 1, 1, Decimal("100.0")),
        ("Engaging", 1, 0, Decimal("0.0")),
    ]


def test_period_without_entries_measures_default(history):
    scope = MetricScope(
        [history.rep1.pk], dt.date(2022, 1, 1), dt.date(2022, 4, 1), NEW_YORK
    )

    conversion = stage_conversion(scope)

    # Funnel comes first by name, but Sales is the default pipeline.
    assert conversion.pipeline == "Sales"
    assert conversion.stages == ["Prospecting", "Engaging"]


def test_no_pipeline_gives_empty_conversion(personas, in_org):
    Stage.unscoped.filter(organization=personas.org).update(is_closed=True)
    scope = MetricScope([personas.rep1.pk], Q1_START, Q1_END, NEW_YORK)

    conversion = stage_conversion(scope)

    assert conversion.pipeline is None
    assert conversion.stages == []
    assert conversion.of_member(personas.rep1.pk).stages == []


def test_query_count_fixed(history, django_assert_num_queries):
    # The open stages, the choice between Sales and Funnel, and the counts.
    with django_assert_num_queries(3):
        stage_conversion(_q1_scope(history))


def test_rows_get_their_conversion(history):
    rows = rep_rows(
        member_ids=[rep.pk for rep in _reps(history)],
        start=Q1_START,
        end=Q1_END,
        time_zone=NEW_YORK,
    )

    conversion = attach_stage_conversion(
        rows, start=Q1_START, end=Q1_END, time_zone=NEW_YORK
    )

    assert conversion.pipeline == "Funnel"
    by_name = {row.member.display_name: row.stage_conversion for row in rows}
    assert by_name["Rita Rep"].pipeline == "Funnel"
    assert [rate.rate for rate in by_name["Remy Rep"].stages] == [
        Decimal("66.7"),
        Decimal("100.0"),
        None,
    ]


def test_funnel_chart_traces_and_table(history):
    rows = rep_rows(
        member_ids=[rep.pk for rep in _reps(history)],
        start=Q1_START,
        end=Q1_END,
        time_zone=NEW_YORK,
    )
    conversion = attach_stage_conversion(
        rows, start=Q1_START, end=Q1_END, time_zone=NEW_YORK
    )

    chart = charts.conversion_funnel_by_rep(conversion, rows)

    assert chart.title == "Conversion funnel by rep: Funnel"
    assert chart.columns == ["Rep", "Stage", "Entered", "Progressed", "Conversion"]
    # Rows come in name order: Remy, Rex, Rita, Rob. Rex entered nothing.
    traces = {trace["name"]: trace for trace in chart.figure["data"]}
    assert list(traces) == ["Remy Rep", "Rita Rep", "Rob Rep"]
    assert traces["Rita Rep"]["x"] == FUNNEL_STAGES
    assert traces["Rita Rep"]["y"] == [66.7, 50.0, 50.0]
    assert traces["Remy Rep"]["y"] == [66.7, 100.0, None]
    assert chart.rows[:6] == [
        ["Remy Rep", "Prospecting", "3", "2", "66.7%"],
        ["Remy Rep", "Qualified", "1", "1", "100.0%"],
        ["Remy Rep", "Proposal", "0", "0", "no data"],
        ["Rex Rep", "Prospecting", "0", "0", "no data"],
        ["Rex Rep", "Qualified", "0", "0", "no data"],
        ["Rex Rep", "Proposal", "0", "0", "no data"],
    ]
    assert len(chart.rows) == 4 * 3
    assert not chart.is_empty


def test_funnel_chart_without_entries_is_empty(history):
    """Rex entered no stage, so the default pipeline, Sales, is measured."""
    scope = MetricScope([history.rep4.pk], Q1_START, Q1_END, NEW_YORK)
    rows = rep_rows(
        member_ids=[history.rep4.pk], start=Q1_START, end=Q1_END, time_zone=NEW_YORK
    )

    chart = charts.conversion_funnel_by_rep(stage_conversion(scope), rows)

    assert chart.title == "Conversion funnel by rep: Sales"
    assert chart.is_empty
    assert chart.figure["data"] == []
    assert chart.rows == [
        ["Rex Rep", "Prospecting", "0", "0", "no data"],
        ["Rex Rep", "Engaging", "0", "0", "no data"],
    ]


def test_team_page_loads_funnel(client, history):
    login(client, history.admin)

    page = client.get(TEAM_URL + "&sort=name&dir=desc").content.decode()
    response = client.get(FUNNEL_URL)

    # The page requests the funnel of its period, without the table's sort.
    assert 'hx-get="/o/acme/team/funnel/?kind=quarter&amp;on=2024-01-01"' in page
    assert response.status_code == 200
    chart = response.context["chart"]
    html = response.content.decode()
    assert "Conversion funnel by rep: Funnel" in html
    assert 'id="chart-conversion-funnel-by-rep-data"' in html
    assert ["Rita Rep", "Prospecting", "3", "2", "66.7%"] in chart.rows
    assert ["Rob Rep", "Proposal", "1", "0", "0.0%"] in chart.rows
    # The numbers table shows the stage as text, not as a number.
    assert "<td>Qualified</td>" in html


def test_api_lists_stage_conversion(client, history):
    login(client, history.admin)

    response = client.get(
        "/api/v1/metrics/reps/",
        {"start": "2024-01-01", "end": "2024-04-01", "organization": "acme"},
    )

    assert response.status_code == 200
    rob = next(row for row in response.json() if row["name"] == "Rob Rep")
    assert rob["stage_conversion"] == {
        "pipeline": "Funnel",
        "stages": [
            {"stage": "Prospecting", "entered": 1, "progressed": 1, "rate": 100.0},
            {"stage": "Qualified", "entered": 2, "progressed": 1, "rate": 50.0},
            {"stage": "Proposal", "entered": 1, "progressed": 0, "rate": 0.0},
        ],
    }


def test_no_members_measures_default(history):
    scope = MetricScope([], Q1_START, Q1_END, NEW_YORK)

    conversion = stage_conversion(scope)

    assert conversion.pipeline == "Sales"
    assert conversion.counts == {}


def test_funnel_invalid_period_named(client, history):
    login(client, history.admin)

    response = client.get("/o/acme/team/funnel/?kind=quarter&on=2024-13-40")

    assert response.status_code == 400
    assert response.content.decode().startswith("Invalid period (on: ")
