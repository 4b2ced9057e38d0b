"""Replay the X Education sample leads through the intake API and routing.

The first 1,000 rows of Leads.csv are posted to POST /api/v1/leads/, one
request each. Three rules route them: India to a pool of three reps, the
Gulf states to one rep, and every other lead, with or without a country,
to a pool of two. The expected counts per territory come from a
hand count of the Country column of those rows, not from the app's country
normalisation.
"""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from activity.models import Lead
from routing import configuration
from routing.configuration import RuleSpec
from routing.models import Assignment
from spm.services import api_key_create
from spm.tenancy import tenant_context
from tests.conftest import SHARED_DATA
from tests.routing.conftest import make_pool, make_rep, publish

LEADS_CSV = SHARED_DATA / "x-education-leads" / "Leads.csv"
ROWS = 1000
URL = "/api/v1/leads/"

# The Country values of the first 1,000 rows and their territory, by hand.
INDIA = {"India": 764}
GULF = {
    "United Arab Emirates": 4,
    "Qatar": 2,
    "Saudi Arabia": 2,
    "Kuwait": 1,
    "Oman": 1,
    "Bahrain": 1,
}
REST = {
    "": 207,
    "United States": 6,
    "United Kingdom": 4,
    "Australia": 2,
    "Ghana": 2,
    "Singapore": 2,
    "Russia": 1,
    "Belgium": 1,
}


@pytest.fixture
def sample_rows() -> list[dict]:
    if not LEADS_CSV.exists():
        pytest.skip(f"X Education leads not found at {LEADS_CSV}")
    with LEADS_CSV.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))[:ROWS]


@pytest.fixture
def territories(personas, settings):
    # One key sends every lead here; its rate limit would stop the replay.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "api_key": None,
        },
    }
    org = personas.org
    with tenant_context(org):
        reps = {name: make_rep(org, name) for name in ("In1", "In2", "In3", "Gu1")}
        reps |= {name: make_rep(org, name) for name in ("Re1", "Re2")}
        india = configuration.territory_create(
            organization=org,
            actor=None,
            name="India",
            conditions=[{"field": "country", "operator": "equals", "value": "IN"}],
        )
        gulf = configuration.territory_create(
            organization=org,
            actor=None,
            name="Gulf",
            conditions=[
                {
                    "field": "country",
                    "operator": "in",
                    "value": ["AE", "SA", "QA", "KW", "OM", "BH"],
                }
            ],
        )
        pools = {
            "India": make_pool(
                org, "round_robin", [reps[n] for n in ("In1", "In2", "In3")]
            ),
            "Gulf": make_pool(org, "round_robin", [reps["Gu1"]]),
            "Rest": make_pool(org, "round_robin", [reps["Re1"], reps["Re2"]]),
        }
        publish(
            org,
            RuleSpec(name="India", action="pool", territory=india, pool=pools["India"]),
            RuleSpec(name="Gulf", action="pool", territory=gulf, pool=pools["Gulf"]),
            RuleSpec(name="Rest", action="pool", pool=pools["Rest"]),
        )
    _, key = api_key_create(organization=org, name="replay")
    return org, key


def _body(row: dict) -> dict:
    body = {
        "email": f"{row['Prospect ID']}@leads.xeducation.example",
        "source": row["Lead Source"],
    }
    if row["Country"]:
        body["country"] = row["Country"]
    return body


def test_hand_count_matches_sample(sample_rows):
    counted = Counter(row["Country"] for row in sample_rows)

    assert counted == Counter(INDIA | GULF | REST)


def test_replay_distribution_per_territory(
    client, sample_rows, territories, django_capture_on_commit_callbacks
):
    org, key = territories
    headers = {"authorization": f"Bearer {key}"}

    # The routing tasks that intake queues on commit run when the block ends,
    # in the order the leads arrived.
    with django_capture_on_commit_callbacks(execute=True):
        statuses = Counter(
            client.post(
                URL, _body(row), content_type="application/json", headers=headers
            ).status_code
            for row in sample_rows
        )

    with tenant_context(org):
        per_rule = Counter(
            Assignment.objects.values_list("rule__name", flat=True).order_by()
        )
        per_rep = Counter(
            Assignment.objects.values_list("member__display_name", flat=True).order_by()
        )
        pending = Lead.objects.filter(routing_status=Lead.RoutingStatus.PENDING).count()
    assert statuses == {201: ROWS}
    assert pending == 0
    assert per_rule == {
        "India": sum(INDIA.values()),
        "Gulf": sum(GULF.values()),
        "Rest": sum(REST.values()),
    }
    # Round robin: 764 = 255 + 255 + 254 and 225 = 113 + 112.
    assert [per_rep[name] for name in ("In1", "In2", "In3")] == [255, 255, 254]
    assert per_rep["Gu1"] == 11
    assert [per_rep[name] for name in ("Re1", "Re2")] == [113, 112]
