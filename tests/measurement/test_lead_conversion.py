"""Lead conversion by predictive score band, per rep, on the team dashboard."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from activity.models import Lead
from measurement.lead_conversion import BAND_ORDER, conversion_by_band
from measurement.selectors import MetricScope
from routing.models import LeadQualification
from tests.conftest import login

UTC = ZoneInfo("UTC")
IN_Q1 = dt.datetime(2024, 2, 1, 10, tzinfo=dt.UTC)


def _lead(member, predicted, converted=False, assigned_at=IN_Q1):
    lead = Lead.objects.create(
        organization=member.organization,
        email=f"{member.pk}-{Lead.objects.count()}@example.test",
        owner=member,
        assigned_at=assigned_at,
        status=Lead.Status.CONVERTED if converted else Lead.Status.NEW,
    )
    if predicted is not None:
        LeadQualification.objects.create(
            organization=member.organization, lead=lead, predicted_score=predicted
        )
    return lead


@pytest.fixture
def leads(personas, in_org):
    rep1, rep2 = personas.rep1, personas.rep2
    # rep1: 80 and 75 (one converted), 74.9 converted, 10, and one unscored.
    _lead(rep1, 80, converted=True)
    _lead(rep1, 75)
    _lead(rep1, 74.9, converted=True)
    _lead(rep1, 10)
    _lead(rep1, None, converted=True)
    # rep2: 30 not converted; a lead assigned after the quarter is left out.
    _lead(rep2, 30)
    _lead(rep2, 90, converted=True, assigned_at=dt.datetime(2024, 4, 1, tzinfo=dt.UTC))
    return personas


def test_conversion_by_band(leads):
    scope = MetricScope(
        [leads.rep1.pk, leads.rep2.pk, leads.rep3.pk],
        dt.date(2024, 1, 1),
        dt.date(2024, 4, 1),
        UTC,
    )
    names = {leads.rep1.pk: "Rita", leads.rep2.pk: "Rob", leads.rep3.pk: "Remy"}

    rows = conversion_by_band(scope, names)

    assert BAND_ORDER == ("0-24", "25-49", "50-74", "75-100", "not scored")
    assert [row.name for row in rows] == ["Rita", "Rob"]
    rita = [(cell.converted, cell.leads, cell.rate) for cell in rows[0].ordered_cells()]
    assert rita == [
        (0, 1, Decimal("0.0")),
        (0, 0, None),
        (1, 1, Decimal("100.0")),
        (1, 2, Decimal("50.0")),
        (1, 1, Decimal("100.0")),
    ]
    rob = [(cell.converted, cell.leads) for cell in rows[1].ordered_cells()]
    assert rob == [(0, 0), (0, 1), (0, 0), (0, 0), (0, 0)]


def test_team_page_shows_conversion(client, leads):
    login(client, leads.manager)

    html = client.get("/o/acme/team/?kind=quarter&on=2024-01-01").content.decode()

    assert "Lead conversion by predictive score" in html
    assert "1 of 2 (50.0%)" in html
