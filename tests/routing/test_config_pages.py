"""Admin pages of lead routing: territories, pools, the rule set and the lead test."""

from __future__ import annotations

import re

import pytest

from activity.models import Lead
from routing import configuration
from routing.configuration import RuleSpec
from routing.models import (
    Assignment,
    Pool,
    PoolMember,
    RotationState,
    RoutingRule,
    RuleSetVersion,
    Territory,
)
from spm.models import AuditLog
from tests.conftest import login
from tests.routing.conftest import (
    make_pool,
    make_rep,
    publish,
    publish_pool,
    route_new_lead,
)

BASE = "/o/acme/leads/routing"
GERMANY = {"field": "country", "operator": "equals", "value": "DE"}


@pytest.fixture
def admin_client(client, personas, in_org):
    return login(client, personas.admin)


def _audit(action: str) -> list[tuple]:
    return list(
        AuditLog.unscoped.filter(action=action).order_by("id").values_list("old", "new")
    )


def _rows(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    """Return formset POST data for ``rows`` under ``prefix``."""
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
    }
    for index, row in enumerate(rows):
        data.update({f"{prefix}-{index}-{name}": value for name, value in row.items()})
    return data


def _territory_post(name: str, *rows: tuple[str, str, str]) -> dict:
    conditions = [{"field": f, "operator": o, "value": v} for f, o, v in rows]
    return {"name": name, **_rows("conditions", conditions)}


# Territories ------------------------------------------------------------------


def test_territory_created_from_rows_and_audited(admin_client, personas):
    data = _territory_post(
        "DACH",
        ("country", "in", "Germany, AT, che"),
        ("", "", ""),
        ("company_size", "range", "200..1000"),
    )

    response = admin_client.post(f"{BASE}/territories/new/", data)

    assert response.status_code == 302
    territory = Territory.objects.get()
    assert territory.name == "DACH"
    # Countries are stored as alpha-2 codes, and the empty row is skipped.
    assert territory.conditions == [
        {"field": "country", "operator": "in", "value": ["DE", "AT", "CH"]},
        {
            "field": "company_size",
            "operator": "range",
            "value": {"min": "200", "max": "1000"},
        },
    ]
    assert _audit("routing.territory.create") == [
        (None, {"name": "DACH", "conditions": territory.conditions})
    ]


def test_territory_edit_shows_rows_and_audits_change(admin_client, personas):
    territory = configuration.territory_create(
        organization=personas.org, actor=None, name="DE", conditions=[GERMANY]
    )
    url = f"{BASE}/territories/{territory.public_id}/"

    page = admin_client.get(url).content.decode()
    assert 'name="conditions-0-field" value="country"' in page
    assert 'name="conditions-0-value" value="DE"' in page

    response = admin_client.post(
        url, _territory_post("Germany", ("country", "in", "DE, AT"))
    )

    assert response.status_code == 302
    territory.refresh_from_db()
    assert territory.name == "Germany"
    assert _audit("routing.territory.update") == [
        (
            {"name": "DE", "conditions": [GERMANY]},
            {
                "name": "Germany",
                "conditions": [
                    {"field": "country", "operator": "in", "value": ["DE", "AT"]}
                ],
            },
        )
    ]


def test_territory_errors_name_the_row(admin_client):
    data = _territory_post(
        "Broken",
        ("country", "equals", "DE"),
        ("cuntry", "equals", "DE"),
        ("industry", "", "Software"),
        ("industry", "range", "1..5"),
    )

    response = admin_client.post(f"{BASE}/territories/new/", data)

    page = response.content.decode()
    assert response.status_code == 400
    assert "Row 2: Unknown field &#x27;cuntry&#x27;." in page
    assert "Row 3: choose a field and an operator." in page
    assert (
        "Row 4: Range applies to number fields only, and industry is a text field."
        in page
    )
    assert "Row 1:" not in page
    assert not Territory.objects.exists()


def test_territory_name_taken_ignoring_case(admin_client, personas):
    configuration.territory_create(
        organization=personas.org, actor=None, name="DACH", conditions=[]
    )

    response = admin_client.post(
        f"{BASE}/territories/new/", _territory_post("dach", ("country", "equals", "DE"))
    )

    assert response.status_code == 400
    assert (
        "A territory named &#x27;dach&#x27; already exists."
        in response.content.decode()
    )
    assert Territory.objects.count() == 1


def test_territory_list_shows_conditions_and_live_rules(admin_client, personas):
    territory = configuration.territory_create(
        organization=personas.org,
        actor=None,
        name="Large",
        conditions=[
            {"field": "company_size", "operator": "range", "value": {"min": 500}}
        ],
    )
    publish(
        personas.org,
        RuleSpec(name="Hold", action="fallback"),
        RuleSpec(name="Large to queue", action="fallback", territory=territory),
    )

    page = admin_client.get(f"{BASE}/territories/").content.decode()

    assert "company_size range [500, …)" in page
    assert "2. Large to queue" in page


# Pools ------------------------------------------------------------------------


def test_pool_created_with_rotation_state(admin_client, personas):
    response = admin_client.post(
        f"{BASE}/pools/", {"name": "Inbound", "method": "weighted"}
    )

    pool = Pool.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{BASE}/pools/{pool.public_id}/"
    assert pool.method == "weighted"
    assert RotationState.objects.filter(pool=pool).exists()
    assert _audit("routing.pool.create") == [
        (
            None,
            {
                "name": "Inbound",
                "method": "weighted",
                "sla_minutes": None,
                "sla_action": "reassign",
            },
        )
    ]


def test_pool_name_taken_is_an_error(admin_client, personas):
    make_pool(personas.org, "round_robin", [])
    name = Pool.objects.get().name

    response = admin_client.post(
        f"{BASE}/pools/", {"name": name.upper(), "method": "round_robin"}
    )

    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    assert Pool.objects.count() == 1


def test_pool_method_change_is_audited(admin_client, personas):
    pool = make_pool(personas.org, "round_robin", [personas.rep1])

    response = admin_client.post(
        f"{BASE}/pools/{pool.public_id}/", {"name": "Renamed", "method": "fewest_open"}
    )

    assert response.status_code == 302
    pool.refresh_from_db()
    assert (pool.name, pool.method) == ("Renamed", "fewest_open")
    ((old, new),) = _audit("routing.pool.update")
    assert old["method"] == "round_robin"
    assert new == {
        "name": "Renamed",
        "method": "fewest_open",
        "sla_minutes": None,
        "sla_action": "reassign",
    }


def test_capacity_needs_every_daily_cap(admin_client, personas):
    pool = make_pool(
        personas.org,
        "round_robin",
        [personas.rep1, personas.rep2],
        cap_per_day={"Rita Rep": 10},
    )

    response = admin_client.post(
        f"{BASE}/pools/{pool.public_id}/", {"name": pool.name, "method": "capacity"}
    )

    assert response.status_code == 400
    assert "Set a daily cap for Rob Rep first." in response.content.decode()
    pool.refresh_from_db()
    assert pool.method == "round_robin"


def test_add_rep_offers_active_members_outside_pool(admin_client, personas):
    pool = make_pool(personas.org, "round_robin", [personas.rep1])
    inactive = make_rep(personas.org, "Gone Rep", is_active=False)

    page = admin_client.get(f"{BASE}/pools/{pool.public_id}/").content.decode()
    response = admin_client.post(
        f"{BASE}/pools/{pool.public_id}/members/",
        {"member": str(inactive.public_id), "weight": "1"},
    )

    assert f'value="{personas.rep2.public_id}"' in page
    assert f'value="{personas.rep1.public_id}"' not in page
    assert f'value="{inactive.public_id}"' not in page
    assert f'value="{personas.other_rep.public_id}"' not in page
    assert response.status_code == 400
    assert not PoolMember.objects.filter(member=inactive).exists()


def test_add_rep_goes_last_and_is_audited(admin_client, personas):
    pool = make_pool(personas.org, "round_robin", [personas.rep1])

    response = admin_client.post(
        f"{BASE}/pools/{pool.public_id}/members/",
        {"member": str(personas.rep2.public_id), "weight": "3", "cap_per_day": "20"},
    )

    assert response.status_code == 302
    added = PoolMember.objects.get(pool=pool, member=personas.rep2)
    assert (added.position, added.weight, added.cap_per_day) == (1, 3, 20)
    assert _audit("routing.pool_member.add")[-1] == (
        None,
        {
            "member": "Rob Rep",
            "position": 1,
            "weight": 3,
            "cap_open": None,
            "cap_per_day": 20,
            "paused": False,
        },
    )


def test_other_orgs_member_cannot_be_added(admin_client, personas):
    pool = make_pool(personas.org, "round_robin", [])

    response = admin_client.post(
        f"{BASE}/pools/{pool.public_id}/members/",
        {"member": str(personas.other_rep.public_id), "weight": "1"},
    )

    assert response.status_code == 400
    assert not PoolMember.objects.exists()


def test_pool_member_edit_is_audited(admin_client, personas):
    pool = make_pool(personas.org, "round_robin", [personas.rep1])
    url = f"{BASE}/pools/{pool.public_id}/members/{personas.rep1.public_id}/"

    assert admin_client.get(url).status_code == 200
    response = admin_client.post(
        url,
        {
            "position": "5",  # shown from 1, stored from 0
            "weight": "2",
            "cap_per_day": "",
            "cap_open": "7",
            "paused": "on",
        },
    )

    assert response.status_code == 302
    pool_member = PoolMember.objects.get(pool=pool)
    assert (pool_member.position, pool_member.weight) == (4, 2)
    assert (pool_member.cap_open, pool_member.paused) == (7, True)
    ((old, new),) = _audit("routing.pool_member.update")
    assert (old["weight"], old["cap_open"], old["paused"]) == (1, None, False)
    assert (new["weight"], new["cap_open"], new["paused"]) == (2, 7, True)


def test_capacity_pool_keeps_daily_cap(admin_client, personas):
    pool = make_pool(personas.org, "capacity", [personas.rep1], cap_per_day=5)
    url = f"{BASE}/pools/{pool.public_id}/members/{personas.rep1.public_id}/"

    response = admin_client.post(
        url, {"position": "1", "weight": "1", "cap_per_day": "", "cap_open": ""}
    )

    assert response.status_code == 400
    assert "A capacity pool shares leads by daily cap" in response.content.decode()
    assert PoolMember.objects.get(pool=pool).cap_per_day == 5


def test_pause_and_resume(admin_client, personas):
    pool = make_pool(personas.org, "round_robin", [personas.rep1])
    url = f"{BASE}/pools/{pool.public_id}/members/{personas.rep1.public_id}/pause/"

    assert admin_client.post(url, {"paused": "1"}).status_code == 302
    assert PoolMember.objects.get().paused is True
    page = admin_client.get(f"{BASE}/pools/{pool.public_id}/").content.decode()
    assert ">Resume</button>" in page
    assert admin_client.post(url, {"paused": "0"}).status_code == 302
    assert PoolMember.objects.get().paused is False
    assert admin_client.post(url, {"paused": "yes"}).status_code == 400
    changes = [
        (old["paused"], new["paused"])
        for old, new in _audit("routing.pool_member.update")
    ]
    assert changes == [(False, True), (True, False)]


def test_member_outside_pool_is_404(admin_client, personas):
    pool = make_pool(personas.org, "round_robin", [personas.rep1])

    for member in (personas.rep2, personas.other_rep):
        url = f"{BASE}/pools/{pool.public_id}/members/{member.public_id}/"
        assert admin_client.get(url).status_code == 404
        assert admin_client.post(f"{url}pause/", {"paused": "1"}).status_code == 404


def _member_cells(page: str) -> dict[str, list[str]]:
    """Return the number cells of each row of the pool's rep table, by rep name."""
    table = page.split('id="pool-members"')[1].split("</table>")[0]
    rows = {}
    for row in table.split("<tr>")[2:]:
        name = re.search(r"<td>([^<]+)</td>", row).group(1)
        rows[name] = re.findall(r'<td class="num">([^<]*)</td>', row)
    return rows


def test_pool_page_counts_todays_leads(admin_client, personas):
    pool = make_pool(personas.org, "round_robin", [personas.rep1, personas.rep2])
    publish_pool(personas.org, pool)
    for _ in range(3):
        route_new_lead(personas.org)

    page = admin_client.get(f"{BASE}/pools/{pool.public_id}/").content.decode()

    # Position (shown from 1), weight, daily cap, open-lead cap, leads today.
    # Round robin from Rita gives Rita, Rob, Rita.
    assert _member_cells(page) == {
        "Rita Rep": ["1", "1", "—", "—", "2"],
        "Rob Rep": ["2", "1", "—", "—", "1"],
    }


# Rule set ---------------------------------------------------------------------


def test_rules_page_shows_live_rules_and_history(admin_client, personas):
    pool = make_pool(personas.org, "round_robin", [personas.rep1])
    configuration.rule_set_publish(
        organization=personas.org,
        actor=personas.admin.user,
        rules=[RuleSpec(name="Old", action="fallback")],
        note="First try",
    )
    configuration.rule_set_publish(
        organization=personas.org,
        actor=personas.admin.user,
        rules=[
            RuleSpec(name="Germany", action="pool", pool=pool, conditions=[GERMANY]),
            RuleSpec(name="VIP", action="member", member=personas.rep2),
            RuleSpec(name="Rest", action="fallback"),
        ],
        note="Germany to the pool",
    )

    page = admin_client.get(f"{BASE}/rules/").content.decode()

    assert "version 2</strong>" in page
    assert page.index("Germany") < page.index("VIP") < page.index("Rest")
    assert "country equals DE" in page
    assert f">{pool.name}</a>" in page
    assert "Rob Rep" in page
    assert "Germany to the pool" in page
    assert "First try" in page
    assert page.count("Ada Admin") == 2
    assert "Old" not in page.split('id="versions"')[0]


def test_editor_starts_from_live_rules(admin_client, personas):
    pool = make_pool(personas.org, "round_robin", [personas.rep1])
    conditions = [
        {"field": "country", "operator": "in", "value": ["DE", "AT"]},
        {"field": "company_size", "operator": "range", "value": {"min": 200}},
    ]
    publish(
        personas.org,
        RuleSpec(name="DACH", action="pool", pool=pool, conditions=conditions),
    )

    page = admin_client.get(f"{BASE}/rules/edit/").content.decode()

    assert 'name="rules-INITIAL_FORMS" value="1"' in page
    assert 'name="rules-TOTAL_FORMS" value="2"' in page
    assert 'name="rules-0-name" value="DACH"' in page
    assert ">\ncountry in DE, AT\ncompany_size range 200..</textarea>" in page
    assert f'<option value="{pool.public_id}" selected>' in page
    assert 'name="based_on" value="1"' in page


def _editor_post(rows: list[dict], based_on: int, initial: int = 0, **extra) -> dict:
    data = _rows("rules", rows, initial)
    return {**data, "based_on": str(based_on), "note": "", **extra}


def _rule_row(order, name, action, conditions="", pool="", member="", territory=""):
    return {
        "order": str(order),
        "name": name,
        "action": action,
        "conditions": conditions,
        "pool": str(pool),
        "member": str(member),
        "territory": str(territory),
    }


def test_editor_publishes_rule_sla(admin_client, personas):
    pool = make_pool(personas.org, "round_robin", [personas.rep1])
    row = _rule_row(1, "Inbound", "pool", pool=pool.public_id)
    data = _editor_post(
        [row | {"sla_minutes": "20", "sla_action": "escalate"}],
        based_on=0,
        publish="1",
    )

    response = admin_client.post(f"{BASE}/rules/edit/", data)

    assert response.status_code == 302
    rule = RoutingRule.objects.get()
    assert rule.sla_minutes == 20
    assert rule.sla_action == "escalate"


def test_editor_publishes_next_version_in_order(admin_client, personas):
    pool = make_pool(personas.org, "round_robin", [personas.rep1])
    publish(personas.org, RuleSpec(name="Old", action="fallback"))
    data = _editor_post(
        [
            _rule_row(1, "Old", "fallback"),
            _rule_row("", "Unnumbered", "fallback"),
            _rule_row(5, "Rest", "fallback"),
            _rule_row(
                2, "Germany", "pool", "country equals Germany", pool=pool.public_id
            ),
            _rule_row(3, "Dropped", "fallback") | {"DELETE": "on"},
            _rule_row("", "", ""),
        ],
        based_on=1,
        initial=1,
        note="Germany first",
        publish="1",
    )
    data["rules-0-DELETE"] = "on"

    response = admin_client.post(f"{BASE}/rules/edit/", data)

    assert response.status_code == 302
    assert response["Location"] == f"{BASE}/rules/"
    version = RuleSetVersion.objects.get(number=2)
    assert (version.note, version.published_by) == (
        "Germany first",
        personas.admin.user,
    )
    rules = list(RoutingRule.objects.filter(version=version).order_by("order"))
    assert [(r.order, r.name, r.action) for r in rules] == [
        (1, "Germany", "pool"),
        (2, "Rest", "fallback"),
        (3, "Unnumbered", "fallback"),
    ]
    assert rules[0].conditions == [GERMANY]
    assert rules[0].pool == pool
    ((old, new),) = _audit("routing.rules.publish")[-1:]
    assert old["version"] == 1
    assert new["version"] == 2


def test_editor_keeps_unchanged_rows(admin_client, personas):
    publish(
        personas.org,
        RuleSpec(name="Germany", action="fallback", conditions=[GERMANY]),
        RuleSpec(name="VIP", action="member", member=personas.rep2),
    )
    rows = [
        _rule_row(1, "Germany", "fallback", "country equals DE"),
        _rule_row(2, "VIP", "member", member=personas.rep2.public_id),
    ]
    data = _editor_post(rows, based_on=1, initial=2, publish="1")

    assert admin_client.post(f"{BASE}/rules/edit/", data).status_code == 302
    rules = RoutingRule.objects.filter(version__number=2).order_by("order")
    assert [(r.name, r.conditions, r.member) for r in rules] == [
        ("Germany", [GERMANY], None),
        ("VIP", [], personas.rep2),
    ]


def test_editor_drops_target_the_action_ignores(admin_client, personas):
    pool = make_pool(personas.org, "round_robin", [personas.rep1])
    data = _editor_post(
        [_rule_row(1, "Hold", "fallback", pool=pool.public_id)], based_on=0, publish="1"
    )

    assert admin_client.post(f"{BASE}/rules/edit/", data).status_code == 302
    rule = RoutingRule.objects.get()
    assert (rule.action, rule.pool) == ("fallback", None)


def test_editor_errors_name_row_and_field(admin_client, personas):
    publish(personas.org, RuleSpec(name="Old", action="fallback"))
    data = _editor_post(
        [
            _rule_row(1, "Bad line", "fallback", "country equals DE\ncuntry equals DE"),
            _rule_row(2, "No pool", "pool"),
            _rule_row(3, "No member", "member"),
            _rule_row(4, "Half", "fallback", "industry"),
        ],
        based_on=1,
        publish="1",
    )

    response = admin_client.post(f"{BASE}/rules/edit/", data)

    page = response.content.decode()
    assert response.status_code == 400
    assert "Row 1, Conditions: Line 2: Unknown field &#x27;cuntry&#x27;." in page
    assert "Row 2, Pool: A pool rule needs a pool." in page
    assert "Row 3, Member: A member rule needs a member." in page
    assert "Row 4, Conditions: Line 1: write &quot;field operator value&quot;" in page
    assert RuleSetVersion.objects.count() == 1


def test_editor_rejects_stale_version(admin_client, personas):
    publish(personas.org, RuleSpec(name="One", action="fallback"))
    publish(personas.org, RuleSpec(name="Two", action="fallback"))
    data = _editor_post([_rule_row(1, "Mine", "fallback")], based_on=1, publish="1")

    response = admin_client.post(f"{BASE}/rules/edit/", data)

    assert response.status_code == 400
    assert (
        "Version 2 was published after you started editing version 1."
        in response.content.decode()
    )
    assert RuleSetVersion.objects.count() == 2


def test_editor_adds_a_row_without_publishing(admin_client, personas):
    data = _editor_post([_rule_row(1, "Typed", "fallback")], based_on=0, add_row="1")

    response = admin_client.post(f"{BASE}/rules/edit/", data)

    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="rules-TOTAL_FORMS" value="2"' in page
    assert 'name="rules-0-name" value="Typed"' in page
    assert 'name="rules-1-name"' in page
    assert not RuleSetVersion.objects.exists()


def test_editor_tests_the_draft(admin_client, personas):
    pool = make_pool(personas.org, "round_robin", [personas.rep1])
    publish_pool(personas.org, pool)
    data = _editor_post(
        [
            _rule_row(
                1,
                "Germany to Rob",
                "member",
                "country equals DE",
                member=personas.rep2.public_id,
            ),
            _rule_row(2, "Everyone", "pool", pool=pool.public_id),
        ],
        based_on=1,
        initial=0,
        preview="1",
        **{"lead-country": "Germany", "lead-email": "ann@example.test"},
    )
    before = RotationState.objects.get(pool=pool).counters

    response = admin_client.post(f"{BASE}/rules/edit/", data)

    page = response.content.decode()
    assert response.status_code == 200
    assert "Would go to Rob Rep" in page
    assert "draft of version 2" in page
    assert RuleSetVersion.objects.count() == 1
    assert RotationState.objects.get(pool=pool).counters == before


# Test a lead ------------------------------------------------------------------


def test_lead_test_shows_rep_and_stores_nothing(admin_client, personas):
    pool = make_pool(personas.org, "round_robin", [personas.rep1, personas.rep2])
    publish(
        personas.org,
        RuleSpec(name="Germany", action="pool", pool=pool, conditions=[GERMANY]),
    )
    state = RotationState.objects.get(pool=pool)

    response = admin_client.get(
        f"{BASE}/test/", {"email": "ann@example.test", "country": "Germany"}
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "Would go to Rita Rep" in page
    assert "1. Germany" in page
    assert "available, not next in line" in page
    assert not Lead.objects.exists()
    assert not Assignment.objects.exists()
    state_after = RotationState.objects.get(pool=pool)
    assert (state_after.turns, state_after.counters) == (state.turns, state.counters)


def test_lead_test_shows_field_errors(admin_client):
    response = admin_client.get(f"{BASE}/test/", {"country": "Narnia"})

    assert response.status_code == 400
    assert "Unknown country &quot;Narnia&quot;" in response.content.decode()


def test_nav_links_routing_for_admins_only(client, personas, in_org):
    link = f'<a href="{BASE}/rules/">Lead routing</a>'

    login(client, personas.admin)
    assert link in client.get("/o/acme/leads/queue/").content.decode()
    login(client, personas.manager)
    assert link not in client.get("/o/acme/leads/queue/").content.decode()


# Query counts -----------------------------------------------------------------


def _configuration_of_size(org, size: int) -> Pool:
    """Create ``size`` reps, territories and pools, and ``size`` rule versions.

    Each pool contains every rep, and each version has ``size`` + 1 rules.
    """
    reps = [make_rep(org, f"Size rep {number}") for number in range(size)]
    pools = [make_pool(org, "round_robin", reps) for _ in range(size)]
    territories = [
        configuration.territory_create(
            organization=org,
            actor=None,
            name=f"Territory {number}",
            conditions=[GERMANY],
        )
        for number in range(size)
    ]
    specs = [
        RuleSpec(
            name=f"Rule {number}",
            action="pool",
            pool=pools[number],
            territory=territories[number],
            conditions=[{"field": "industry", "operator": "equals", "value": "Other"}],
        )
        for number in range(size)
    ]
    specs.append(RuleSpec(name="Member", action="member", member=reps[0]))
    for _ in range(size):
        publish(org, *specs)
    return pools[0]


# Page -> the maximum number of queries, the same for 2 and for 10 of each
# thing. Each is the count measured with 2, plus one; the navigation bar's
# unread notification count is one of them. The lead test matches
# the first rule, so it also reads that pool's reps, time off and rotation,
# and qualification looks for a contact with the lead's email.
PAGE_QUERIES = {
    "rules/": 9,
    "rules/edit/": 10,
    "pools/": 8,
    "pools/{pool}/": 11,
    "pools/{pool}/members/{member}/": 8,
    "territories/": 8,
    "territories/{territory}/": 7,
    "test/?email=a@example.test&country=DE&industry=Other": 17,
}


@pytest.mark.parametrize("size", [2, 10])
@pytest.mark.parametrize("page", PAGE_QUERIES)
def test_page_queries_do_not_grow(
    admin_client, personas, django_assert_max_num_queries, size, page
):
    pool = _configuration_of_size(personas.org, size)
    member = (
        PoolMember.objects.filter(pool=pool).select_related("member").first().member
    )
    territory = Territory.objects.first()
    url = f"{BASE}/" + page.format(
        pool=pool.public_id, member=member.public_id, territory=territory.public_id
    )

    with django_assert_max_num_queries(PAGE_QUERIES[page]):
        response = admin_client.get(url)

    assert response.status_code == 200
    if page.startswith("test/"):
        assert "Would go to Size rep 0" in response.content.decode()
