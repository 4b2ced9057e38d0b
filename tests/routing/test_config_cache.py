"""The routing configuration cache: versions set by triggers, values per version."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from goals.models import TimeOff
from routing import config_cache
from routing.config_cache import cached, config_scope, config_version
from routing.models import PoolMember, ScoringRule
from routing.tasks import route_lead_task
from tests.routing.conftest import (
    local_day,
    make_pool,
    make_rep,
    pending_lead,
    publish_pool,
)

MIGRATION = importlib.import_module("routing.migrations.0007_config_version")


@pytest.fixture(autouse=True)
def _empty_config_cache():
    config_cache.cache_clear()
    yield
    config_cache.cache_clear()


def _scoring_rule(org, name: str) -> ScoringRule:
    return ScoringRule.objects.create(
        organization=org,
        name=name,
        field="industry",
        operator="equals",
        value="Software",
        points=5,
    )


def test_every_config_table_has_the_trigger(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = 'routing_config_touch'"
        )
        tables = {row[0] for row in cursor.fetchall()}
    assert tables == {table for table, _ in MIGRATION.CONFIG_TABLES}


def test_insert_update_delete_move_version(acme):
    before = config_version(acme.pk)
    rule = _scoring_rule(acme, "Software")
    after_insert = config_version(acme.pk)
    rule.points = 7
    rule.save()
    after_update = config_version(acme.pk)
    rule.delete()
    after_delete = config_version(acme.pk)

    assert after_insert > before
    assert after_update > after_insert
    assert after_delete > after_update


def test_change_leaves_other_organisations_alone(acme, personas):
    other = personas.other_org
    other_before = config_version(other.pk)

    _scoring_rule(acme, "Software")

    assert config_version(other.pk) == other_before


def test_rolled_back_version_never_returns(acme):
    before = config_version(acme.pk)
    with pytest.raises(RuntimeError), transaction.atomic():
        _scoring_rule(acme, "Rolled back")
        rolled_back = config_version(acme.pk)
        raise RuntimeError("roll back")
    assert config_version(acme.pk) == before

    _scoring_rule(acme, "Kept")

    assert config_version(acme.pk) not in (before, rolled_back)


def test_value_loaded_once_per_version(acme):
    calls = []

    def load():
        calls.append(1)
        return len(calls)

    with config_scope(acme.pk):
        first = cached("probe", load)
        second = cached("probe", load)
    with config_scope(acme.pk):
        third = cached("probe", load)
    _scoring_rule(acme, "Software")
    with config_scope(acme.pk):
        fourth = cached("probe", load)

    assert (first, second, third) == (1, 1, 1)
    assert fourth == 2


def test_loader_runs_every_time_outside_scope(acme):
    calls = []
    cached("probe", lambda: calls.append(1))
    cached("probe", lambda: calls.append(1))
    assert len(calls) == 2


def test_value_from_rolled_back_transaction_not_served(acme):
    """A value read inside a transaction that rolled back is not served later."""
    with pytest.raises(RuntimeError), transaction.atomic():
        _scoring_rule(acme, "Rolled back")
        with config_scope(acme.pk):
            inside = cached("rules", _scoring_rule_names)
        raise RuntimeError("roll back")

    with config_scope(acme.pk):
        after = cached("rules", _scoring_rule_names)

    assert inside == ["Rolled back"]
    assert after == []


def _scoring_rule_names() -> list[str]:
    return list(ScoringRule.objects.values_list("name", flat=True))


def _route(org, **fields):
    lead = pending_lead(org, **fields)
    route_lead_task.run(org.pk, lead.pk, {})
    lead.refresh_from_db()
    return lead.owner.display_name if lead.owner else "queue"


def test_routing_sees_pause_made_between_leads(acme):
    reps = [make_rep(acme, name) for name in ("Ann", "Ben")]
    pool = make_pool(acme, "round_robin", reps)
    publish_pool(acme, pool)
    first = _route(acme)

    PoolMember.objects.filter(pool=pool, member=reps[1]).update(paused=True)

    # Round robin would give Ben the second lead, but he is now paused.
    assert first == "Ann"
    assert _route(acme) == "Ann"


def test_routing_sees_time_off_added_between_leads(acme):
    reps = [make_rep(acme, name) for name in ("Ann", "Ben")]
    pool = make_pool(acme, "round_robin", reps)
    publish_pool(acme, pool)
    first = _route(acme)

    today = local_day(acme)
    TimeOff.objects.create(
        organization=acme,
        member=reps[1],
        start_date=today,
        end_date=today + dt.timedelta(days=1),
    )

    assert first == "Ann"
    assert _route(acme) == "Ann"


def test_warm_routing_reads_no_configuration(acme):
    reps = [make_rep(acme, name) for name in ("Ann", "Ben")]
    publish_pool(acme, make_pool(acme, "round_robin", reps))
    _route(acme)
    lead = pending_lead(acme)

    with CaptureQueriesContext(connection) as queries:
        route_lead_task.run(acme.pk, lead.pk, {})

    statements = [query["sql"] for query in queries.captured_queries]
    config_tables = [table for table, _ in MIGRATION.CONFIG_TABLES]
    read_config = [
        sql
        for sql in statements
        if sql.startswith("SELECT")
        and any(f'FROM "{table}"' in sql for table in config_tables)
    ]
    assert read_config == []
    # The savepoint, the lead's lock, the rotation's lock and update, the
    # assignment, the lead's update and the savepoint's release. The version
    # is read on the raw cursor, which query counts do not see, and the
    # notification runs after the commit, which a test never reaches.
    assert len(statements) == 7, "\n".join(statements)


@pytest.fixture
def sent_tasks(monkeypatch):
    """The arguments of the routing tasks that intake sends, instead of sending."""
    sent = []
    monkeypatch.setattr(route_lead_task, "delay", lambda *args: sent.append(args))
    return sent


def _post_lead(client, acme, email: str):
    from spm.services import api_key_create

    _, key = api_key_create(organization=acme, name="intake")
    response = client.post(
        "/api/v1/leads/",
        {"email": email},
        content_type="application/json",
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.content


def test_intake_sends_accounts_on_domain(
    client, acme, sent_tasks, django_capture_on_commit_callbacks
):
    from activity.models import Account
    from routing.configuration import RuleSpec
    from tests.routing.conftest import publish

    owner = make_rep(acme, "Olga")
    account = Account.objects.create(
        organization=acme, name="Bosch", domain="bosch.de", owner=owner
    )
    publish(acme, RuleSpec(name="Accounts", action="account_owner"))
    with django_capture_on_commit_callbacks(execute=True):
        _post_lead(client, acme, "jane@bosch.de")
        _post_lead(client, acme, "max@unknown-company.example")

    (org_id, known_id, known), (_, new_id, new) = sent_tasks

    assert known == {
        "customer_account_id": None,
        "known_contact_id": None,
        "domain_account_ids": [account.pk],
    }
    assert new["domain_account_ids"] == []
    route_lead_task.run(org_id, known_id, known)
    with CaptureQueriesContext(connection) as queries:
        route_lead_task.run(org_id, new_id, new)
    from activity.models import Lead

    assert Lead.objects.get(pk=known_id).owner == owner
    assert Lead.objects.get(pk=new_id).owner is None
    assert not any(
        'FROM "activity_account"' in query["sql"] for query in queries.captured_queries
    )
