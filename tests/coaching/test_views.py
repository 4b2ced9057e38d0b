"""Coaching pages: alert and rule access by role, actions, audit, query counts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from coaching.models import Alert, AlertNote, AlertStatus, NoteKind, Rule
from coaching.selectors import open_alert_count
from spm.models import AuditLog, Membership
from spm.tenancy import tenant_context
from tests.conftest import login
from tests.factories import MembershipFactory

INBOX = reverse("coaching:inbox", kwargs={"org_slug": "acme"})
RULES = reverse("coaching:rules", kwargs={"org_slug": "acme"})
NEW_RULE = reverse("coaching:rule-create", kwargs={"org_slug": "acme"})


def _url(name: str, **kwargs) -> str:
    return reverse(f"coaching:{name}", kwargs={"org_slug": "acme", **kwargs})


def _rule(organization, key: str = "win_rate_below_team") -> Rule:
    with tenant_context(organization):
        return Rule.objects.get(builtin_key=key)


def make_alert(rule: Rule, member: Membership, **fields) -> Alert:
    defaults = {
        "period_key": "rolling",
        "period_label": "last 90 days",
        "value": Decimal("20"),
        "threshold": Decimal("35"),
        "team_value": Decimal("35"),
        "sample_size": 10,
    }
    return Alert.unscoped.create(
        organization_id=rule.organization_id,
        rule=rule,
        member=member,
        **{**defaults, **fields},
    )


@pytest.fixture
def alerts(personas) -> dict[str, Alert]:
    """One open win-rate alert for each rep of Acme, and one in Globex."""
    rule = _rule(personas.org)
    found = {
        name: make_alert(rule, getattr(personas, name))
        for name in ("rep1", "rep2", "rep3", "rep4")
    }
    found["other"] = make_alert(_rule(personas.other_org), personas.other_rep)
    return found


def _inbox_names(client, **params) -> set[str]:
    response = client.get(INBOX, params)
    assert response.status_code == 200
    return {alert.member.display_name for alert in response.context["page"]}


@pytest.mark.parametrize(
    ("persona", "names"),
    [
        ("admin", {"Rita Rep", "Rob Rep", "Remy Rep", "Rex Rep"}),
        ("vp", {"Rita Rep", "Rob Rep", "Remy Rep"}),
        ("manager", {"Rita Rep", "Rob Rep"}),
        ("other_manager", {"Rex Rep"}),
    ],
)
def test_inbox_shows_reporting_tree(client, personas, alerts, persona, names):
    login(client, getattr(personas, persona))
    assert _inbox_names(client) == names


def test_inbox_filters_and_tabs(client, personas, alerts):
    login(client, personas.admin)
    rep2 = str(personas.rep2.public_id)
    assert _inbox_names(client, rep=rep2) == {"Rob Rep"}
    stale = _rule(personas.org, "stale_open_deal")
    make_alert(stale, personas.rep3, period_key="current", value=Decimal(2))
    assert _inbox_names(client, rule=str(stale.public_id)) == {"Remy Rep"}
    # The stale deal rule is "info", the win rate rule "warning".
    assert _inbox_names(client, severity="info") == {"Remy Rep"}

    with tenant_context(personas.org):
        Alert.objects.filter(pk=alerts["rep1"].pk).update(status=AlertStatus.RESOLVED)
    assert _inbox_names(client, status="resolved") == {"Rita Rep"}
    response = client.get(INBOX)
    counts = {tab["status"]: tab["count"] for tab in response.context["tabs"]}
    assert counts == {"open": 4, "acknowledged": 0, "resolved": 1}


def test_inbox_hidden_from_reps_by_default(client, personas, alerts):
    login(client, personas.rep1)
    assert client.get(INBOX).status_code == 404
    assert (
        client.get(_url("alert", alert_id=alerts["rep1"].public_id)).status_code == 404
    )


@pytest.fixture
def reps_see_alerts(personas):
    personas.org.reps_see_own_alerts = True
    personas.org.save()
    return personas


def test_rep_reads_own_alerts_when_allowed(client, reps_see_alerts, alerts):
    personas = reps_see_alerts
    own = alerts["rep1"]
    AlertNote.unscoped.create(
        organization=personas.org,
        alert=own,
        author=personas.manager.user,
        kind=NoteKind.NOTE,
        body="Private: check pipeline hygiene",
    )
    AlertNote.unscoped.create(
        organization=personas.org,
        alert=own,
        author=personas.manager.user,
        kind=NoteKind.CONVERSATION,
        body="Agreed two demos a week",
    )
    login(client, personas.rep1)

    assert _inbox_names(client) == {"Rita Rep"}
    page = client.get(_url("alert", alert_id=own.public_id))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Agreed two demos a week" in text
    assert "Private: check pipeline hygiene" not in text
    assert "Resolve" not in text
    assert (
        client.get(_url("alert", alert_id=alerts["rep2"].public_id)).status_code == 404
    )


def test_rep_cannot_act_on_own_alert(client, reps_see_alerts, alerts):
    login(client, reps_see_alerts.rep1)
    own = alerts["rep1"].public_id
    for name in ("alert-acknowledge", "alert-resolve"):
        assert client.post(_url(name, alert_id=own)).status_code == 403
    response = client.post(
        _url("alert-note", alert_id=own), {"kind": "note", "body": "x"}
    )
    assert response.status_code == 403
    alert = Alert.unscoped.get(pk=alerts["rep1"].pk)
    assert alert.status == AlertStatus.OPEN
    assert not AlertNote.unscoped.exists()


def test_manager_cannot_see_alerts_outside_tree(client, personas, alerts):
    login(client, personas.manager)
    for key in ("rep3", "rep4", "other"):
        url = _url("alert", alert_id=alerts[key].public_id)
        assert client.get(url).status_code == 404
        resolve = _url("alert-resolve", alert_id=alerts[key].public_id)
        assert client.post(resolve).status_code == 404
    assert Alert.unscoped.filter(status=AlertStatus.RESOLVED).count() == 0


def test_manager_works_an_alert(client, personas, alerts):
    login(client, personas.manager)
    alert_id = alerts["rep1"].public_id

    client.post(_url("alert-acknowledge", alert_id=alert_id))
    client.post(
        _url("alert-note", alert_id=alert_id),
        {"kind": "conversation", "body": "Walked through the lost deals"},
    )
    client.post(_url("alert-resolve", alert_id=alert_id))

    alert = Alert.unscoped.get(pk=alerts["rep1"].pk)
    assert alert.status == AlertStatus.RESOLVED
    assert alert.acknowledged_by == personas.manager.user
    assert alert.resolved_by == personas.manager.user
    assert alert.recovery_status == "pending"
    note = AlertNote.unscoped.get(alert=alert)
    assert note.kind == NoteKind.CONVERSATION
    page = client.get(_url("alert", alert_id=alert_id)).content.decode()
    assert "Walked through the lost deals" in page
    assert "Acknowledged by" in page
    assert "Resolved by" in page


def test_empty_note_is_rejected(client, personas, alerts):
    login(client, personas.manager)
    response = client.post(
        _url("alert-note", alert_id=alerts["rep1"].public_id),
        {"kind": "note", "body": "   "},
        follow=True,
    )
    assert response.status_code == 200
    assert not AlertNote.unscoped.exists()


def test_alert_detail_shows_stale_deal_evidence(client, personas):
    stale = _rule(personas.org, "stale_open_deal")
    alert = make_alert(
        stale,
        personas.rep1,
        period_key="current",
        value=Decimal(1),
        threshold=Decimal(1),
        details={
            "evidence": {
                "idle_days": 14,
                "deals": [
                    {
                        "id": "x",
                        "name": "Idle Corp",
                        "stage": "Engaging",
                        "amount": "500.00",
                        "last_activity": "2024-05-01",
                        "last_touch": "2024-05-01",
                        "idle_days": 14,
                    }
                ],
            }
        },
    )
    login(client, personas.manager)
    page = client.get(_url("alert", alert_id=alert.public_id)).content.decode()
    assert "Idle Corp" in page
    assert "2024-05-01" in page


def _inbox_queries(client) -> int:
    # Each request then reads "CRM data as of" from the database, not the cache.
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        assert client.get(INBOX).status_code == 200
    return len(queries)


def test_inbox_queries_do_not_grow_with_alerts(client, personas):
    rule = _rule(personas.org)
    login(client, personas.manager)
    make_alert(rule, personas.rep1)
    few = _inbox_queries(client)

    for number in range(30):
        rep = MembershipFactory(
            organization=personas.org,
            user=None,
            display_name=f"Extra {number}",
            reports_to=personas.manager,
        )
        make_alert(rule, rep)
    many = _inbox_queries(client)

    assert few == many


def test_badge_counts_open_alerts_in_one_query(
    personas, alerts, django_assert_num_queries
):
    with tenant_context(personas.org):
        Alert.objects.filter(pk=alerts["rep2"].pk).update(
            status=AlertStatus.ACKNOWLEDGED
        )
        for persona, expected in (("manager", 1), ("vp", 2), ("admin", 3)):
            membership = getattr(personas, persona)
            with django_assert_num_queries(1):
                assert open_alert_count(membership) == expected
        with django_assert_num_queries(0):
            assert open_alert_count(personas.rep1) == 0


def test_nav_shows_badge(client, personas, alerts):
    login(client, personas.manager)
    page = client.get(reverse("measurement:team", kwargs={"org_slug": "acme"}))
    assert '<span class="badge" title="2 open alerts">2</span>' in page.content.decode()


# Rules -------------------------------------------------------------------------


def _rule_form(**changes) -> dict:
    data = {
        "name": "Few meetings",
        "metric": "activity_vs_benchmark",
        "comparator": "lt",
        "threshold_kind": "target_multiple",
        "threshold_value": "0.5",
        "percentile": "",
        "min_sample": "0",
        "window": "business_days",
        "window_days": "10",
        "parameter": "",
        "activity_type": "meeting",
        "cooldown_days": "7",
        "recovery_window_days": "14",
        "team": "",
        "severity": "warning",
        "is_active": "on",
    }
    return {**data, **changes}


def test_rules_page_for_managers_and_admins(client, personas):
    login(client, personas.manager)
    response = client.get(RULES)
    assert response.status_code == 200
    assert len(response.context["rows"]) == 6
    assert not any(row.may_edit for row in response.context["rows"])


def test_reps_get_404_on_rules(client, personas):
    builtin = _rule(personas.org)
    login(client, personas.rep1)
    assert client.get(RULES).status_code == 404
    assert client.post(NEW_RULE, _rule_form()).status_code == 404
    edit = _url("rule-edit", rule_id=builtin.public_id)
    assert client.post(edit, _rule_form()).status_code == 404
    toggle = _url("rule-toggle", rule_id=builtin.public_id)
    assert client.post(toggle).status_code == 404
    assert Rule.unscoped.filter(organization=personas.org).count() == 6
    assert Rule.unscoped.get(pk=builtin.pk).is_active


def test_manager_cannot_edit_organisation_rule(client, personas):
    builtin = _rule(personas.org)
    login(client, personas.manager)
    edit = _url("rule-edit", rule_id=builtin.public_id)
    assert client.get(edit).status_code == 403
    assert client.post(edit, _rule_form(name="Mine now")).status_code == 403
    assert (
        client.post(_url("rule-toggle", rule_id=builtin.public_id)).status_code == 403
    )
    builtin.refresh_from_db()
    assert builtin.name == "Win rate below the team median"
    assert builtin.is_active


def test_manager_creates_rule_for_own_team(client, personas):
    login(client, personas.manager)
    # The scope is the manager's team whatever the form sends.
    west = personas.rep4.team
    response = client.post(NEW_RULE, _rule_form(team=str(west.pk)))
    assert response.status_code == 200
    assert "team" in response.context["form"].errors

    east = personas.manager.team
    response = client.post(NEW_RULE, _rule_form(team=str(east.pk)))
    assert response.status_code == 302
    rule = Rule.unscoped.get(organization=personas.org, name="Few meetings")
    assert rule.team == east
    assert rule.created_by == personas.manager.user
    entry = AuditLog.unscoped.get(action="coaching_rule.create")
    assert entry.actor == personas.manager.user
    assert entry.new["threshold_value"] == "0.5"
    assert entry.new["team"] == "East"


def test_manager_without_team_cannot_create(client, personas):
    login(client, personas.vp)
    assert client.post(NEW_RULE, _rule_form()).status_code == 403
    assert not Rule.unscoped.filter(name="Few meetings").exists()


def test_admin_edit_is_audited_with_old_and_new(client, personas):
    builtin = _rule(personas.org)
    login(client, personas.admin)
    edit = _url("rule-edit", rule_id=builtin.public_id)
    form = _rule_form(
        name=builtin.name,
        metric="win_rate",
        threshold_kind="team_median_multiple",
        threshold_value="0.9",
        min_sample="10",
        window="days",
        window_days="90",
        activity_type="",
    )
    assert client.post(edit, form).status_code == 302

    entry = AuditLog.unscoped.get(action="coaching_rule.update")
    assert entry.old["threshold_value"] == "1"
    assert entry.new["threshold_value"] == "0.9"
    assert entry.old["severity"] == entry.new["severity"] == "warning"
    assert entry.object_id == str(builtin.public_id)


def test_toggle_disables_and_audits(client, personas):
    builtin = _rule(personas.org)
    login(client, personas.admin)
    client.post(_url("rule-toggle", rule_id=builtin.public_id))
    builtin.refresh_from_db()
    assert not builtin.is_active
    entry = AuditLog.unscoped.get(action="coaching_rule.update")
    assert (entry.old["is_active"], entry.new["is_active"]) == (True, False)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"metric": "win_rate", "activity_type": ""}, "threshold_kind"),
        ({"threshold_kind": "team_percentile"}, "percentile"),
        ({"window_days": ""}, "window_days"),
        (
            {
                "metric": "stale_open_deals",
                "activity_type": "",
                "threshold_kind": "absolute",
                "parameter": "2.5",
            },
            "parameter",
        ),
        ({"metric": "win_rate", "threshold_kind": "absolute"}, "activity_type"),
    ],
)
def test_invalid_rule_names_the_field(client, personas, changes, field):
    login(client, personas.admin)
    response = client.post(NEW_RULE, _rule_form(**changes))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Rule.unscoped.filter(name="Few meetings").exists()
    assert not AuditLog.unscoped.filter(action="coaching_rule.create").exists()


def test_other_organisations_ids_are_404(client, personas, alerts):
    other_rule = _rule(personas.other_org)
    login(client, personas.admin)
    assert (
        client.get(_url("alert", alert_id=alerts["other"].public_id)).status_code == 404
    )
    assert (
        client.get(_url("rule-edit", rule_id=other_rule.public_id)).status_code == 404
    )
    toggle = _url("rule-toggle", rule_id=other_rule.public_id)
    assert client.post(toggle).status_code == 404
    assert Rule.unscoped.get(pk=other_rule.pk).is_active


def test_manager_edits_own_team_rule(client, personas):
    east = personas.manager.team
    with tenant_context(personas.org):
        rule = Rule.objects.create(
            name="East win rate",
            metric="win_rate",
            comparator="lt",
            threshold_kind="absolute",
            threshold_value=Decimal("25"),
            team=east,
        )
    login(client, personas.manager)
    form = _rule_form(
        name="East win rate",
        metric="win_rate",
        threshold_kind="absolute",
        threshold_value="20",
        activity_type="",
        team=str(east.pk),
    )
    assert (
        client.post(_url("rule-edit", rule_id=rule.public_id), form).status_code == 302
    )
    rule.refresh_from_db()
    assert rule.threshold_value == Decimal("20")
    rows = client.get(RULES).context["rows"]
    assert [row.rule.name for row in rows if row.may_edit] == ["East win rate"]


def test_forbidden_page_explains_reason(client, personas):
    builtin = _rule(personas.org)
    login(client, personas.manager)

    response = client.get(_url("rule-edit", rule_id=builtin.public_id))

    page = response.content.decode()
    assert response.status_code == 403
    assert "Managers edit only the rules of their own team." in page
    assert 'rel="stylesheet"' in page
