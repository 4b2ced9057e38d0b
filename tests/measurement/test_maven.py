"""Metrics on the Maven CRM export, checked against sums made with the csv module.

The export goes through the product's importer. The expected numbers are
computed here from the CSV rows with the csv module alone, so they share no
code with the importer or the metrics.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from measurement.selectors import rep_rows
from spm.models import Membership, Organization, User
from spm.services import api_key_create
from spm.tenancy import tenant_context

pytestmark = pytest.mark.maven

WHOLE_RANGE = "whole range"
APRIL_TO_JUNE = (dt.date(2017, 4, 1), dt.date(2017, 7, 1))
REPORTED_AGENTS = ["Darcel Schlecht", "Vicki Laflamme", "Moses Frase"]
TENTH = Decimal("0.1")
MAVEN_FILES = ["products.csv", "accounts.csv", "sales_teams.csv", "sales_pipeline.csv"]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _date(value: str) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


# Expected numbers, computed from the CSV rows alone.


@dataclass
class Expected:
    won: int = 0
    lost: int = 0
    bookings: Decimal = Decimal("0")
    cycle_days: list[int] = field(default_factory=list)

    @property
    def win_rate(self) -> Decimal | None:
        if self.won + self.lost == 0:
            return None
        rate = Decimal(self.won * 100) / Decimal(self.won + self.lost)
        return rate.quantize(TENTH, ROUND_HALF_UP)

    @property
    def avg_cycle_days(self) -> Decimal | None:
        if not self.cycle_days:
            return None
        mean = Decimal(sum(self.cycle_days)) / Decimal(len(self.cycle_days))
        return mean.quantize(TENTH, ROUND_HALF_UP)


def expected_by_agent(
    pipeline_rows: list[dict], agents: list[str], start: dt.date, end: dt.date
) -> dict[str, Expected]:
    expected = {agent: Expected() for agent in agents}
    for row in pipeline_rows:
        close = _date(row["close_date"])
        if close is None or not start <= close < end:
            continue
        numbers = expected[row["sales_agent"]]
        if row["deal_stage"] == "Won":
            numbers.won += 1
            numbers.bookings += Decimal(row["close_value"])
            if row["engage_date"]:
                numbers.cycle_days.append((close - _date(row["engage_date"])).days)
        elif row["deal_stage"] == "Lost":
            numbers.lost += 1
    return expected


# The export goes in through the product's importer, as an admin would bring it.


@pytest.fixture
def maven(db, maven_dir):
    org = Organization.objects.create(name="MavenTech", slug="maven")
    files = [str(maven_dir / name) for name in MAVEN_FILES]
    call_command(
        "import_csv",
        "--organization",
        "maven",
        "--preset",
        "maven",
        *files,
        stdout=io.StringIO(),
    )
    pipeline_rows = _rows(maven_dir / "sales_pipeline.csv")
    with tenant_context(org):
        agents = {
            member.display_name: member
            for member in Membership.objects.filter(role=Membership.Role.REP)
        }
        admin = Membership.objects.create(
            organization=org,
            user=User.objects.create_user("admin@maven.test", "pw-maven-1234"),
            display_name="Maven Admin",
            role=Membership.Role.ADMIN,
        )
    close_dates = [_date(r["close_date"]) for r in pipeline_rows if r["close_date"]]
    whole = (min(close_dates), max(close_dates) + dt.timedelta(days=1))
    return org, pipeline_rows, agents, whole, admin


def _selector_rows(org, agents, start, end):
    with tenant_context(org):
        rows = rep_rows(
            member_ids=[member.pk for member in agents.values()],
            start=start,
            end=end,
            time_zone=ZoneInfo(org.time_zone),
        )
    return {row.member.display_name: row.card for row in rows}


def _api_rows(client, org, start, end):
    _api_key, key = api_key_create(organization=org, name="maven check")
    response = client.get(
        "/api/v1/metrics/reps/",
        {"start": start.isoformat(), "end": end.isoformat()},
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 200
    return {row["name"]: row for row in response.json()}


def _dashboard_rows(client, start, end):
    """Return the team dashboard's table, by rep name, from its CSV export."""
    response = client.get(
        "/o/maven/team/",
        {
            "kind": "custom",
            "start": start.isoformat(),
            "end": end.isoformat(),
            "format": "csv",
        },
    )
    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    return {row["name"]: row for row in csv.DictReader(io.StringIO(text))}


def _optional_decimal(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _report(label: str, expected: dict[str, Expected]) -> None:
    for agent in REPORTED_AGENTS:
        numbers = expected[agent]
        print(
            f"{label}: {agent}: won {numbers.won}, lost {numbers.lost}, "
            f"bookings {numbers.bookings}, win rate {numbers.win_rate}%, "
            f"average cycle {numbers.avg_cycle_days} days"
        )


@pytest.mark.parametrize("period", [WHOLE_RANGE, APRIL_TO_JUNE])
def test_maven_agents_match_csv(client, maven, period):
    org, pipeline_rows, agents, whole, admin = maven
    start, end = whole if period == WHOLE_RANGE else period
    expected = expected_by_agent(pipeline_rows, list(agents), start, end)
    _report(f"{start}..{end}", expected)

    cards = _selector_rows(org, agents, start, end)
    api = _api_rows(client, org, start, end)
    client.force_login(admin.user)
    dashboard = _dashboard_rows(client, start, end)

    assert set(cards) == set(agents)
    assert set(api) == set(agents)
    for agent, numbers in expected.items():
        card, row = cards[agent], api[agent]
        assert (card.won, card.lost) == (numbers.won, numbers.lost), agent
        assert card.bookings == numbers.bookings, agent
        assert card.win_rate == numbers.win_rate, agent
        assert card.avg_cycle_days == numbers.avg_cycle_days, agent
        assert card.credited_units == numbers.won, agent
        assert (row["won"], row["lost"]) == (numbers.won, numbers.lost), agent
        assert Decimal(row["bookings"]) == numbers.bookings, agent
        assert _optional_decimal(row["win_rate"]) == numbers.win_rate, agent
        assert _optional_decimal(row["avg_cycle_days"]) == numbers.avg_cycle_days
        on_page = dashboard[agent]
        assert (int(on_page["won"]), int(on_page["lost"])) == (
            numbers.won,
            numbers.lost,
        )
        assert Decimal(on_page["bookings"]) == numbers.bookings, agent
        assert _optional_decimal(on_page["win_rate"] or None) == numbers.win_rate
        assert _optional_decimal(on_page["avg_cycle"] or None) == numbers.avg_cycle_days


def test_maven_totals_match_published_facts(maven):
    org, _pipeline_rows, agents, whole, _admin = maven

    cards = _selector_rows(org, agents, *whole)

    assert sum(card.won for card in cards.values()) == 4238
    assert sum(card.lost for card in cards.values()) == 2473
    assert sum(card.bookings for card in cards.values()) == Decimal("10005534")
    assert sum(card.open_deals for card in cards.values()) == 1589 + 500
    no_deals = [name for name, card in cards.items() if card.closed == 0]
    assert len(no_deals) == 5
    assert all(cards[name].win_rate is None for name in no_deals)
