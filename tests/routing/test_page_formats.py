"""How routing pages print times and positions."""

from __future__ import annotations

import datetime as dt

from routing import services
from routing.models import Assignment
from tests.conftest import login
from tests.routing.conftest import make_pool, make_rep, pending_lead, publish_pool

BASE = "/o/acme/leads/routing"


def test_lead_page_shows_seconds_not_microseconds(client, personas, in_org):
    org = personas.org
    pool = make_pool(org, "round_robin", [make_rep(org, "Ann")])
    publish_pool(org, pool)
    lead = pending_lead(org)
    services.lead_route(lead_id=lead.pk)
    Assignment.objects.filter(lead=lead).update(
        received_at=dt.datetime(2024, 3, 19, 6, 36, 38, 733632, tzinfo=dt.UTC),
        routed_at=dt.datetime(2024, 3, 19, 6, 36, 38, 741132, tzinfo=dt.UTC),
    )
    login(client, personas.admin)

    page = client.get(f"/o/acme/leads/{lead.public_id}/").content.decode()

    # The organisation's time zone is UTC; 741.132 - 733.632 ms = 7.5 ms.
    assert "<dd>2024-03-19 06:36:38</dd>" in page
    assert "<dd>2024-03-19 06:36:38, 7.5 ms later, by the routing task</dd>" in page
    assert "06:36:38.733632" not in page
    assert "06:36:38.741132" not in page


def test_pool_page_numbers_positions_from_one(client, personas, in_org):
    org = personas.org
    pool = make_pool(org, "round_robin", [make_rep(org, "Ann"), make_rep(org, "Ben")])
    login(client, personas.admin)

    page = client.get(f"{BASE}/pools/{pool.public_id}/").content.decode()

    assert '<td class="num">1</td>\n            <td>Ann</td>' in page
    assert '<td class="num">2</td>\n            <td>Ben</td>' in page


def test_pool_member_form_shows_position_from_one(client, personas, in_org):
    org = personas.org
    ann = make_rep(org, "Ann")
    pool = make_pool(org, "round_robin", [ann])
    login(client, personas.admin)
    url = f"{BASE}/pools/{pool.public_id}/members/{ann.public_id}/"

    form = client.get(url).context["form"]
    response = client.post(
        url, {"position": "0", "weight": "1", "cap_per_day": "", "cap_open": ""}
    )

    assert form.initial["position"] == 1
    assert response.status_code == 400
    assert response.context["form"].errors["position"] == [
        "Position must be 1 or more, not 0."
    ]
