"""Disputes: raising on own lines, the thread, resolution, counts and access."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse

from compensation import selectors, services_disputes, services_statements
from compensation.models import Dispute, DisputeMessage, Statement, StatementLine
from goals.calendar import month_range
from notifications.models import Notification
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.compensation.conftest import (
    assign,
    flat_component,
    make_plan,
    publish_version,
    won_deal,
)
from tests.conftest import login

D = dt.date
MARCH = month_range(D(2024, 3, 1))


@pytest.fixture
def statements(personas):
    """March drafts: Rita 1,000.00 on a 10,000.00 deal, Rob 400.00, Rex 900.00."""
    org, won = personas.org, personas.stages["Won"]
    plan = make_plan(org.pk, name="AE plan")
    publish_version(plan, [flat_component("0.10")])
    for rep in (personas.rep1, personas.rep2, personas.rep4):
        assign(rep, plan)
    won_deal(personas.rep1, won, "10000.00", D(2024, 3, 10))
    won_deal(personas.rep2, won, "4000.00", D(2024, 3, 10))
    won_deal(personas.rep4, won, "9000.00", D(2024, 3, 10))
    with tenant_context(org):
        services_statements.statements_calculate(
            organization=org, period=MARCH, actor=personas.admin.user
        )
    return personas


def _statement(personas, member) -> Statement:
    with tenant_context(personas.org):
        return Statement.objects.get(member=member, period_start=MARCH.start)


def _line(personas, member) -> StatementLine:
    """Return the member's one March line, as the statement page lists it."""
    with tenant_context(personas.org):
        [line] = selectors.statement_lines(_statement(personas, member))
        return line


def _raise_url(statement) -> str:
    return reverse(
        "compensation:dispute-raise",
        kwargs={"org_slug": "acme", "statement_id": statement.public_id},
    )


def _dispute_url(dispute, name: str = "dispute") -> str:
    return reverse(
        f"compensation:{name}",
        kwargs={"org_slug": "acme", "dispute_id": dispute.public_id},
    )


def _raise(personas, member=None) -> Dispute:
    member = member or personas.rep1
    client = login(Client(), member)
    statement = _statement(personas, member)
    line = _line(personas, member)
    response = client.post(
        _raise_url(statement),
        {"line": str(line.public_id), "message": "The deal was 12,000, not 10,000."},
    )
    assert response.status_code == 302
    with tenant_context(personas.org):
        return Dispute.objects.filter(statement=statement).latest("created_at", "id")


def test_rep_raises_dispute_on_own_line(statements):
    dispute = _raise(statements)

    assert dispute.status == Dispute.Status.OPEN
    assert dispute.line_amount == Decimal("1000.00")
    assert dispute.line_explanation == "10,000.00 x 10% = 1,000.00"
    assert dispute.plan.name == "AE plan"
    with tenant_context(statements.org):
        assert DisputeMessage.objects.filter(dispute=dispute).count() == 1
        notified = Notification.objects.filter(event__type="dispute.raised")
        assert [n.member_id for n in notified] == [statements.manager.pk]


def test_rep_cannot_dispute_other_reps_statement(statements):
    client = login(Client(), statements.rep1)
    statement = _statement(statements, statements.rep2)
    line = _line(statements, statements.rep2)

    response = client.post(
        _raise_url(statement), {"line": str(line.public_id), "message": "Mine?"}
    )

    assert response.status_code == 404
    with tenant_context(statements.org):
        assert not Dispute.objects.exists()


def test_manager_cannot_raise_for_rep(statements):
    client = login(Client(), statements.manager)
    statement = _statement(statements, statements.rep1)
    line = _line(statements, statements.rep1)

    response = client.post(
        _raise_url(statement), {"line": str(line.public_id), "message": "Check"}
    )

    assert response.status_code == 403
    with tenant_context(statements.org):
        assert not Dispute.objects.exists()


def test_line_of_other_statement_rejected(statements):
    client = login(Client(), statements.rep1)
    statement = _statement(statements, statements.rep1)
    other_line = _line(statements, statements.rep2)

    response = client.post(
        _raise_url(statement), {"line": str(other_line.public_id), "message": "x"}
    )

    assert response.status_code == 400
    content = response.content.decode()
    assert f"line {other_line.public_id} is not on this statement" in content
    with tenant_context(statements.org):
        assert not Dispute.objects.exists()


def test_empty_message_rejected(statements):
    client = login(Client(), statements.rep1)
    statement = _statement(statements, statements.rep1)
    line = _line(statements, statements.rep1)

    response = client.post(
        _raise_url(statement),
        {"line": str(line.public_id), "message": "  "},
        follow=True,
    )

    assert "Dispute not raised: message" in response.content.decode()
    with tenant_context(statements.org):
        assert not Dispute.objects.exists()


def test_manager_answer_notifies_rep(statements):
    dispute = _raise(statements)
    client = login(Client(), statements.manager)

    response = client.post(_dispute_url(dispute), {"message": "Looking at the CRM."})

    assert response.status_code == 302
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.ANSWERED
    with tenant_context(statements.org):
        notified = Notification.objects.filter(event__type="dispute.answered")
        assert [n.member_id for n in notified] == [statements.rep1.pk]


def test_resolution_audited_and_shown_to_rep(statements):
    dispute = _raise(statements)
    client = login(Client(), statements.manager)

    response = client.post(
        _dispute_url(dispute, "dispute-resolve"),
        {"root_cause": "data", "resolution": "The CRM amount was fixed."},
    )

    assert response.status_code == 302
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.RESOLVED
    assert dispute.root_cause == "data"
    assert dispute.resolved_by_id == statements.manager.pk
    entry = AuditLog.unscoped.get(action="compensation.dispute_resolved")
    assert entry.new["root_cause"] == "data"
    assert entry.old == {"status": "open", "root_cause": ""}
    body = login(Client(), statements.rep1).get(_dispute_url(dispute)).content.decode()
    assert "The deal was 12,000, not 10,000." in body
    assert "The CRM amount was fixed." in body
    assert "CRM data" in body


def test_resolve_needs_valid_root_cause(statements):
    dispute = _raise(statements)
    client = login(Client(), statements.manager)

    response = client.post(
        _dispute_url(dispute, "dispute-resolve"),
        {"root_cause": "weather", "resolution": "No."},
    )

    assert response.status_code == 400
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.OPEN
    assert not AuditLog.unscoped.filter(action="compensation.dispute_resolved").exists()


@pytest.mark.parametrize("root_cause", ["edge_case", "bogus"])
def test_resolve_twice_says_resolved(statements, root_cause):
    dispute = _raise(statements)
    client = login(Client(), statements.manager)
    url = _dispute_url(dispute, "dispute-resolve")
    client.post(url, {"root_cause": "data", "resolution": "Fixed in the CRM."})
    dispute.refresh_from_db()

    response = client.post(url, {"root_cause": root_cause, "resolution": "Again"})

    assert response.status_code == 409
    resolved_on = dispute.resolved_at.astimezone(ZoneInfo(statements.org.time_zone))
    assert (
        f"This dispute was resolved on {resolved_on:%Y-%m-%d}, so it "
        "cannot be resolved again." in response.content.decode()
    )
    dispute.refresh_from_db()
    assert dispute.root_cause == "data"
    assert dispute.resolution == "Fixed in the CRM."


def test_rep_cannot_resolve_own_dispute(statements):
    dispute = _raise(statements)
    client = login(Client(), statements.rep1)

    response = client.post(
        _dispute_url(dispute, "dispute-resolve"),
        {"root_cause": "data", "resolution": "Fine."},
    )

    assert response.status_code == 403
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.OPEN


def test_reply_after_resolution_rejected(statements):
    dispute = _raise(statements)
    manager = login(Client(), statements.manager)
    manager.post(
        _dispute_url(dispute, "dispute-resolve"),
        {"root_cause": "edge_case", "resolution": "Explained."},
    )

    response = login(Client(), statements.rep1).post(
        _dispute_url(dispute), {"message": "One more thing"}
    )

    assert response.status_code == 409
    with tenant_context(statements.org):
        assert DisputeMessage.objects.filter(dispute=dispute).count() == 2


@pytest.mark.parametrize(
    ("viewer", "status"),
    [
        ("rep1", 200),
        ("rep2", 404),
        ("manager", 200),
        ("vp", 200),
        ("other_manager", 404),
        ("admin", 200),
        ("outsider", 404),
    ],
)
def test_dispute_visible_to_both_sides_only(statements, viewer, status):
    dispute = _raise(statements)
    client = login(Client(), getattr(statements, viewer))

    response = client.get(_dispute_url(dispute))

    assert response.status_code == status


def test_rep_list_shows_own_disputes_only(statements):
    _raise(statements)
    _raise(statements, statements.rep2)
    client = login(Client(), statements.rep1)

    response = client.get(reverse("compensation:disputes", kwargs={"org_slug": "acme"}))

    assert [d.raised_by_id for d in response.context["disputes"]] == [
        statements.rep1.pk
    ]
    assert response.context["counts"] is None


def test_admin_counts_by_cause_and_plan(statements, django_assert_max_num_queries):
    first = _raise(statements)
    _raise(statements, statements.rep2)
    _raise(statements, statements.rep4)
    login(Client(), statements.admin).post(
        _dispute_url(first, "dispute-resolve"),
        {"root_cause": "plan_wording", "resolution": "The plan text was unclear."},
    )
    client = login(Client(), statements.admin)

    with django_assert_max_num_queries(12):
        response = client.get(
            reverse("compensation:disputes", kwargs={"org_slug": "acme"})
        )

    counts = response.context["counts"]
    assert counts.by_root_cause == [("Plan wording", 1)]
    assert counts.by_plan == [("AE plan", 3, 2)]
    assert len(response.context["disputes"]) == 3


def test_detail_query_count(statements, django_assert_max_num_queries):
    dispute = _raise(statements)
    client = login(Client(), statements.manager)
    for number in range(5):
        client.post(_dispute_url(dispute), {"message": f"Note {number}"})

    with django_assert_max_num_queries(13):
        response = client.get(_dispute_url(dispute))

    assert len(response.context["thread"]) == 6


def test_other_organisation_dispute_is_404(statements):
    with tenant_context(statements.other_org):
        statement = Statement.objects.create(
            organization=statements.other_org,
            member=statements.other_rep,
            period_start=MARCH.start,
            period_end=MARCH.end,
            currency="USD",
        )
        dispute = Dispute.objects.create(
            organization=statements.other_org,
            statement=statement,
            line_explanation="private",
            line_amount=Decimal("1.00"),
            raised_by=statements.other_rep,
        )
    client = login(Client(), statements.admin)

    assert client.get(_dispute_url(dispute)).status_code == 404
    assert client.post(_dispute_url(dispute, "dispute-resolve"), {}).status_code == 404


def test_open_dispute_blocks_approval(statements):
    dispute = _raise(statements)
    statement = _statement(statements, statements.rep1)
    manager = login(Client(), statements.manager)
    approve = reverse("compensation:statements-approve", kwargs={"org_slug": "acme"})

    blocked = manager.post(
        approve, {"statement": [str(statement.public_id)]}, follow=True
    )
    statement.refresh_from_db()
    assert statement.status == Statement.Status.DRAFT
    assert (
        "The statement of Rita Rep for March 2024 has 1 open dispute. Resolve "
        "them before approving it." in blocked.content.decode()
    )

    manager.post(
        _dispute_url(dispute, "dispute-resolve"),
        {"root_cause": "edge_case", "resolution": "Paid as the plan says."},
    )
    manager.post(approve, {"statement": [str(statement.public_id)]})
    statement.refresh_from_db()
    assert statement.status == Statement.Status.APPROVED
    # Rita hears of the approval: 10,000.00 x 10% = 1,000.00.
    [event] = Notification.unscoped.filter(
        member=statements.rep1, event__type="statement.approved"
    ).values_list("event__title", flat=True)
    assert event == (
        f"Your statement for March 2024 was approved: 1,000.00 {statement.currency}"
    )


def test_second_open_dispute_rejected(statements):
    first = _raise(statements)
    client = login(Client(), statements.rep1)
    statement = _statement(statements, statements.rep1)
    line = _line(statements, statements.rep1)

    response = client.post(
        _raise_url(statement),
        {"line": str(line.public_id), "message": "Still 12,000, see the order."},
    )

    assert response.status_code == 409
    content = response.content.decode()
    assert "this line already has an open dispute" in content
    # The rep's text stays in the form, with their line selected.
    assert "Still 12,000, see the order.</textarea>" in content
    assert f'value="{line.public_id}" selected' in content
    with tenant_context(statements.org):
        assert list(Dispute.objects.all()) == [first]


def test_resolved_dispute_allows_another(statements):
    first = _raise(statements)
    with tenant_context(statements.org):
        services_disputes.dispute_resolve(
            dispute=first,
            reviewer=statements.manager,
            root_cause=Dispute.RootCause.DATA,
            resolution="The CRM had 10,000.",
            actor=statements.manager.user,
        )

    second = _raise(statements)

    assert second.pk != first.pk
    assert second.line_id == first.line_id


def test_failed_dispute_keeps_text(statements):
    client = login(Client(), statements.rep1)
    statement = _statement(statements, statements.rep1)
    line = _line(statements, statements.rep1)
    text = "x" * 4001

    response = client.post(
        _raise_url(statement), {"line": str(line.public_id), "message": text}
    )

    assert response.status_code == 400
    content = response.content.decode()
    assert "Dispute not raised: message: Ensure this value has at most 4000" in content
    assert f">{text}</textarea>" in content
    assert 'maxlength="4000"' in content
    with tenant_context(statements.org):
        assert not Dispute.objects.exists()
