"""Previews of a lead's routing: the same pick as real routing, and no writes."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from activity.models import Account, Lead
from routing import configuration, qualification
from routing.configuration import RuleSpec
from routing.engine.preview import draft_rules, lead_preview
from routing.model_services import Prediction
from routing.models import Assignment, PoolMember, RotationState
from routing.normalization import LeadInputError
from spm.tenancy import tenant_context
from tests.measurement.builders import make_deal
from tests.routing.conftest import (
    local_day,
    make_pool,
    make_rep,
    publish,
    publish_pool,
    route_new_lead,
)


def _state(pool) -> tuple:
    state = RotationState.objects.get(pool=pool)
    return (state.turns, state.counters, state.last_member_id, state.updated_at)


def _picked(preview) -> str:
    member = preview.decision.member
    return member.display_name if member else "queue"


def _preview(org, **fields):
    return lead_preview(
        organization=org, fields={"email": "ann@example.test", **fields}
    )


def test_preview_names_next_rep_and_writes_nothing(acme):
    a, b, c = (make_rep(acme, name) for name in "ABC")
    pool = make_pool(acme, "round_robin", [a, b, c])
    publish_pool(acme, pool)
    assert route_new_lead(acme).member == a
    before = _state(pool)
    leads, assignments = Lead.objects.count(), Assignment.objects.count()

    preview = _preview(acme, country="DE")

    # A had the last lead, so B is next in the cycle A, B, C.
    assert _picked(preview) == "B"
    assert preview.decision.reason == f"rule Everyone: pool {pool.name}"
    assert _state(pool) == before
    assert Lead.objects.count() == leads
    assert Assignment.objects.count() == assignments
    assert route_new_lead(acme, country="DE").member == b


def test_preview_candidates_show_who_was_skipped(acme):
    a, b = make_rep(acme, "A"), make_rep(acme, "B")
    pool = make_pool(acme, "round_robin", [a, b])
    configuration.pool_member_update(
        pool_member=PoolMember.objects.get(pool=pool, member=a), actor=None, paused=True
    )
    publish_pool(acme, pool)

    preview = _preview(acme)

    assert _picked(preview) == "B"
    assert preview.decision.candidates == [
        {
            "member": str(a.public_id),
            "name": "A",
            "chosen": False,
            "skipped": "paused in this pool",
        },
        {"member": str(b.public_id), "name": "B", "chosen": True, "skipped": ""},
    ]


def test_weighted_previews_follow_real_routing(acme):
    a, b, c = (make_rep(acme, name) for name in "ABC")
    pool = make_pool(acme, "weighted", [a, b, c], weight={"A": 2, "B": 1, "C": 1})
    publish_pool(acme, pool)

    previewed, routed = [], []
    for _ in range(8):
        previewed.append(_picked(_preview(acme)))
        routed.append(route_new_lead(acme).member.display_name)

    # Smooth weighted round robin with weights 2, 1, 1 (docs/routing.md).
    assert previewed == ["A", "B", "C", "A", "A", "B", "C", "A"]
    assert routed == previewed


def test_preview_of_full_capacity_pool_is_queue(acme):
    a = make_rep(acme, "A")
    pool = make_pool(acme, "capacity", [a], cap_per_day={"A": 1})
    publish_pool(acme, pool)
    assert route_new_lead(acme).member == a

    preview = _preview(acme)

    assert _picked(preview) == "queue"
    assert preview.decision.reason == f"every rep in pool {pool.name} is unavailable"
    assert preview.decision.candidates[0]["skipped"] == "reached the daily cap of 1"


def test_preview_of_disqualified_lead_is_not_routed(acme):
    publish_pool(acme, make_pool(acme, "round_robin", [make_rep(acme, "A")]))

    preview = lead_preview(organization=acme, fields={"email": "bob@mailinator.com"})

    assert not preview.routed
    assert preview.decision is None
    assert preview.qualified.reason == "Disposable email address (mailinator.com)"
    assert preview.status_label == "Disqualified"


def test_preview_gives_customer_to_account_owner(acme, personas):
    owner = make_rep(acme, "Owner")
    account = Account.objects.create(
        organization=acme, name="Bosch", domain="https://www.bosch.de/", owner=owner
    )
    deal = make_deal(owner, personas.stages["Won"], "1000.00")
    deal.account = account
    deal.save(update_fields=["account"])
    publish_pool(acme, make_pool(acme, "round_robin", [make_rep(acme, "A")]))

    preview = lead_preview(organization=acme, fields={"email": "kim@bosch.de"})

    assert _picked(preview) == "Owner"
    assert preview.decision.reason == "existing customer: owner of account Bosch"
    assert preview.decision.rule is None


def test_preview_normalises_and_explains_rules(acme):
    a, b = make_rep(acme, "A"), make_rep(acme, "B")
    publish(
        acme,
        RuleSpec(
            name="Big deals",
            action="member",
            member=a,
            conditions=[
                {
                    "field": "estimated_value",
                    "operator": "range",
                    "value": {"min": 50000},
                }
            ],
        ),
        RuleSpec(
            name="Germany",
            action="member",
            member=b,
            conditions=[{"field": "country", "operator": "equals", "value": "DE"}],
        ),
    )

    preview = _preview(acme, country="Germany", estimated_value="1200.00")

    assert _picked(preview) == "B"
    assert preview.decision.rule.name == "Germany"
    assert preview.decision.version.number == 1
    assert preview.decision.trace == [
        {
            "order": 1,
            "rule": "Big deals",
            "result": "no match",
            "detail": "estimated_value range [50000, …) failed: the lead has '1200.00'",
        },
        {
            "order": 2,
            "rule": "Germany",
            "result": "applied",
            "detail": "rule Germany: member B",
        },
    ]


def test_preview_of_draft_leaves_live_rules(acme):
    a, b = make_rep(acme, "A"), make_rep(acme, "B")
    pool = make_pool(acme, "round_robin", [a])
    version = publish_pool(acme, pool)
    draft = draft_rules(
        [
            RuleSpec(
                name="DACH to B",
                action="member",
                member=b,
                conditions=[
                    {"field": "country", "operator": "in", "value": ["DE", "AT"]}
                ],
            ),
            RuleSpec(name="Everyone", action="pool", pool=pool),
        ],
        version.number + 1,
    )

    drafted = lead_preview(organization=acme, fields={"country": "AT"}, rules=draft)
    live = lead_preview(organization=acme, fields={"country": "AT"})

    assert _picked(drafted) == "B"
    assert drafted.decision.version.number == 2
    assert drafted.decision.version.pk is None
    assert _picked(live) == "A"
    assert live.decision.version == version


def test_preview_rejects_invalid_fields(acme):
    with pytest.raises(LeadInputError) as error:
        _preview(acme, country="Narnia")

    assert list(error.value.errors) == ["country"]


def test_preview_without_rules_is_queue(acme):
    preview = _preview(acme)

    assert _picked(preview) == "queue"
    assert preview.decision.reason == "no routing rules are published"


def test_preview_uses_the_organisation_day(acme):
    preview = _preview(acme)

    assert preview.day == local_day(acme)


@pytest.mark.django_db(transaction=True)
def test_preview_does_not_wait_for_rotation_lock(personas):
    """A worker holding the pool's rotation lock does not delay a preview."""
    if connection.vendor != "postgresql":
        pytest.skip("Row locks need PostgreSQL")
    org = personas.org
    with tenant_context(org):
        a, b = make_rep(org, "A"), make_rep(org, "B")
        pool = make_pool(org, "round_robin", [a, b])
        publish_pool(org, pool)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        try:
            with tenant_context(org), transaction.atomic():
                RotationState.objects.select_for_update().get(pool=pool)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        with tenant_context(org), transaction.atomic():
            with connection.cursor() as cursor:
                # A preview that tried to lock the row would fail here.
                cursor.execute("SET LOCAL lock_timeout = '1s'")
            preview = lead_preview(organization=org, fields={})
    finally:
        release.set()
        holder.join()

    assert _picked(preview) == "A"


def test_preview_reads_predicted_score_condition(acme, monkeypatch):
    monkeypatch.setattr(
        qualification, "lead_predict", lambda **_: Prediction(version=3, score=81)
    )
    a, b = make_rep(acme, "A"), make_rep(acme, "B")
    publish(
        acme,
        RuleSpec(
            name="Likely",
            action="member",
            member=a,
            conditions=[
                {"field": "predicted_score", "operator": "range", "value": {"min": 80}}
            ],
        ),
        RuleSpec(name="Rest", action="member", member=b),
    )

    preview = _preview(acme)

    assert _picked(preview) == "A"
