"""Approve all drafts: the approval run, its Celery task and its pages."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from compensation import selectors, tasks
from compensation import services_disputes as disputes
from compensation import services_statements as services
from compensation.models import ApprovalRun, Statement
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
DISPUTE_MESSAGE = (
    "The statement of Rob Rep for March 2024 has 1 open dispute. Resolve them "
    "before approving it."
)


@pytest.fixture
def statements(personas):
    """March drafts of 1,250.00 for Rita, 400.00 for Rob and 900.00 for Rex.

    Rita and Rob report to ``manager``, Rex to ``other_manager``.
    """
    org, won = personas.org, personas.stages["Won"]
    plan = make_plan(org.pk)
    publish_version(plan, [flat_component("0.10")])
    for rep in (personas.rep1, personas.rep2, personas.rep4):
        assign(rep, plan)
    won_deal(personas.rep1, won, "10000.00", D(2024, 3, 10))
    won_deal(personas.rep1, won, "2500.00", D(2024, 3, 10))
    won_deal(personas.rep2, won, "4000.00", D(2024, 3, 10))
    won_deal(personas.rep4, won, "9000.00", D(2024, 3, 10))
    with tenant_context(org):
        services.statements_calculate(
            organization=org, period=MARCH, actor=personas.admin.user
        )
    return personas


def _url(name: str) -> str:
    return reverse(f"compensation:{name}", kwargs={"org_slug": "acme"})


def _progress_url(run: ApprovalRun) -> str:
    return reverse(
        "compensation:approval-progress",
        kwargs={"org_slug": "acme", "run_id": run.public_id},
    )


def _statuses(personas) -> dict[str, str]:
    with tenant_context(personas.org):
        return dict(
            Statement.objects.filter(period_start=MARCH.start).values_list(
                "member__display_name", "status"
            )
        )


def _latest_run(personas) -> ApprovalRun:
    with tenant_context(personas.org):
        return ApprovalRun.objects.latest("created_at", "id")


def _approve_all(client, capture, execute: bool = True, period: str = "2024-03"):
    """Post "Approve all drafts", running the queued task when ``execute`` is set."""
    with capture(execute=execute) as callbacks:
        response = client.post(_url("statements-approve-all"), {"period": period})
    return response, callbacks


def _dispute_rob(personas) -> None:
    with tenant_context(personas.org):
        rob = Statement.objects.get(member=personas.rep2, period_start=MARCH.start)
        line = selectors.statement_lines(rob)[0]
        line = disputes.dispute_line(rob, line.public_id)
        disputes.dispute_raise(
            statement=rob, line=line, raiser=personas.rep2, body="Check the amount."
        )


def _approved_count(personas) -> int:
    with tenant_context(personas.org):
        return AuditLog.objects.filter(action="compensation.statement_approved").count()


def test_manager_approves_tree_only(statements, django_capture_on_commit_callbacks):
    client = login(Client(), statements.manager)

    response, _ = _approve_all(client, django_capture_on_commit_callbacks)

    assert response.status_code == 302
    assert response["Location"] == _url("statements") + "?period=2024-03"
    page = client.get(response["Location"]).content.decode()
    assert "Approval of 2 draft statements for March 2024 queued." in page
    assert _statuses(statements) == {
        "Rita Rep": "approved",
        "Rob Rep": "approved",
        "Rex Rep": "draft",
    }
    run = _latest_run(statements)
    assert run.status == "done"
    assert run.progress == 100
    assert run.statement_count == 2
    assert run.processed_count == 2
    assert run.approved_count == 2
    assert run.skipped_count == 0
    assert run.skipped == []
    assert run.requested_by_id == statements.manager.pk
    with tenant_context(statements.org):
        rita = Statement.objects.get(member=statements.rep1, period_start=MARCH.start)
    assert rita.approved_by_id == statements.manager.user_id


def test_admin_approves_every_draft(statements, django_capture_on_commit_callbacks):
    client = login(Client(), statements.admin)

    _approve_all(client, django_capture_on_commit_callbacks)

    assert _statuses(statements) == {
        "Rita Rep": "approved",
        "Rob Rep": "approved",
        "Rex Rep": "approved",
    }
    run = _latest_run(statements)
    assert (run.statement_count, run.approved_count, run.skipped_count) == (3, 3, 0)
    with tenant_context(statements.org):
        entry = AuditLog.objects.get(action="compensation.drafts_approved")
    assert entry.actor_id == statements.admin.user_id
    assert entry.new == {
        "period": "March 2024",
        "statements": 3,
        "approved": 3,
        "skipped": 0,
    }


def test_open_dispute_skipped_with_message(
    statements, django_capture_on_commit_callbacks
):
    _dispute_rob(statements)
    client = login(Client(), statements.manager)

    response, _ = _approve_all(client, django_capture_on_commit_callbacks)
    page = client.get(response["Location"]).content.decode()

    assert _statuses(statements)["Rita Rep"] == "approved"
    assert _statuses(statements)["Rob Rep"] == "draft"
    run = _latest_run(statements)
    # Rob's dispute was open at the click, so he was offered and then skipped.
    assert run.statement_count == 2
    assert run.approved_count == 1
    assert run.skipped_count == 1
    assert run.skipped == [{"member": "Rob Rep", "message": DISPUTE_MESSAGE}]
    assert "1 approved, 1 skipped" in page
    assert f"<li>Rob Rep: {DISPUTE_MESSAGE}</li>" in page


def test_approved_before_click_not_offered(
    statements, django_capture_on_commit_callbacks
):
    with tenant_context(statements.org):
        rita = Statement.objects.get(member=statements.rep1, period_start=MARCH.start)
        services.statement_approve(
            statement=rita, approver=statements.admin, actor=statements.admin.user
        )
    client = login(Client(), statements.manager)

    _approve_all(client, django_capture_on_commit_callbacks)

    run = _latest_run(statements)
    # Only Rob was still a draft: Rita's approval is not counted again.
    assert (run.statement_count, run.approved_count, run.skipped_count) == (1, 1, 0)
    assert _approved_count(statements) == 2


def test_approved_after_click_skipped(statements, django_capture_on_commit_callbacks):
    client = login(Client(), statements.manager)
    _, callbacks = _approve_all(client, django_capture_on_commit_callbacks, False)
    with tenant_context(statements.org):
        rita = Statement.objects.get(member=statements.rep1, period_start=MARCH.start)
        services.statement_approve(
            statement=rita, approver=statements.admin, actor=statements.admin.user
        )

    [callback] = callbacks
    callback()

    run = _latest_run(statements)
    assert (run.statement_count, run.approved_count, run.skipped_count) == (2, 1, 1)
    assert run.skipped == [
        {
            "member": "Rita Rep",
            "message": "The statement of Rita Rep for March 2024 is already approved.",
        }
    ]
    # The admin's approval and the run's approval of Rob, nothing more.
    assert _approved_count(statements) == 2


def test_second_delivery_approves_nothing(
    statements, django_capture_on_commit_callbacks
):
    client = login(Client(), statements.admin)
    _approve_all(client, django_capture_on_commit_callbacks)
    run = _latest_run(statements)
    with tenant_context(statements.org):
        notifications = Notification.objects.count()

    tasks.statements_approve_task(statements.org.pk, run.pk)

    again = _latest_run(statements)
    assert again.pk == run.pk
    assert (again.approved_count, again.skipped_count) == (3, 0)
    assert again.finished_at == run.finished_at
    assert _approved_count(statements) == 3
    with tenant_context(statements.org):
        assert Notification.objects.count() == notifications
        assert (
            AuditLog.objects.filter(action="compensation.drafts_approved").count() == 1
        )


def test_resumed_run_counts_earlier_approvals(statements):
    """A worker lost after approving Rita, before it saved the counts."""
    with tenant_context(statements.org):
        drafts = Statement.objects.filter(period_start=MARCH.start).order_by(
            "member__display_name"
        )
        ids = [statement.pk for statement in drafts]
        run = ApprovalRun.objects.create(
            period_start=MARCH.start,
            period_end=MARCH.end,
            status="running",
            started_at=timezone.now() - dt.timedelta(minutes=1),
            requested_by=statements.admin,
            actor=statements.admin.user,
            statement_ids=ids,
            statement_count=len(ids),
        )
        rita = Statement.objects.get(member=statements.rep1, period_start=MARCH.start)
        services.statement_approve(
            statement=rita, approver=statements.admin, actor=statements.admin.user
        )

    tasks.statements_approve_task(statements.org.pk, run.pk)

    run.refresh_from_db()
    assert (run.status, run.approved_count, run.skipped_count) == ("done", 3, 0)
    assert set(_statuses(statements).values()) == {"approved"}
    assert _approved_count(statements) == 3


def test_progress_saved_every_interval(statements, monkeypatch):
    monkeypatch.setattr(services, "approval_progress_interval", lambda count: 2)
    saved = []
    update = services._approval_update

    def spy(run, **fields):
        if "processed_count" in fields:
            saved.append((fields["processed_count"], fields["progress"]))
        update(run, **fields)

    monkeypatch.setattr(services, "_approval_update", spy)
    with tenant_context(statements.org):
        run = services.approval_run_queue(
            viewer=statements.admin, period=MARCH, actor=statements.admin.user
        )
        services.approval_run_execute(organization=statements.org, run=run)

    # Three statements, saved after 2 of them (2 x 100 // 3 = 66) and after all 3.
    assert saved == [(2, 66), (3, 100)]


def test_long_run_continues_in_new_task(statements, monkeypatch, settings):
    # No time per task, one statement per save: each task approves one
    # statement and queues the next, which runs at once in the test settings.
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 0
    monkeypatch.setattr(services, "approval_progress_interval", lambda count: 1)
    deliveries = []
    execute = services.approval_run_execute

    def spy(**kwargs):
        deliveries.append(kwargs["run"].processed_count)
        return execute(**kwargs)

    monkeypatch.setattr(services, "approval_run_execute", spy)
    with tenant_context(statements.org):
        run = services.approval_run_queue(
            viewer=statements.admin, period=MARCH, actor=statements.admin.user
        )

    tasks.statements_approve_task(statements.org.pk, run.pk)

    run.refresh_from_db()
    assert deliveries == [0, 1, 2]
    assert (run.status, run.approved_count, run.skipped_count) == ("done", 3, 0)
    assert _approved_count(statements) == 3


def test_progress_interval_bounds():
    assert services.approval_progress_interval(2) == 10
    assert services.approval_progress_interval(400) == 20
    assert services.approval_progress_interval(5000) == 50


def test_unexpected_error_fails_run(statements, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "statement_approve", broken)
    with tenant_context(statements.org):
        run = services.approval_run_queue(
            viewer=statements.admin, period=MARCH, actor=statements.admin.user
        )

    with caplog.at_level(logging.ERROR, logger="compensation.services_statements"):
        with pytest.raises(RuntimeError):
            tasks.statements_approve_task(statements.org.pk, run.pk)

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.failure == "RuntimeError: disk full"
    assert run.finished_at is not None
    [record] = caplog.records
    assert record.organization_id == statements.org.pk
    assert record.run_id == run.pk
    assert set(_statuses(statements).values()) == {"draft"}


def test_rep_cannot_approve_all(statements, django_capture_on_commit_callbacks):
    client = login(Client(), statements.rep1)

    response, callbacks = _approve_all(client, django_capture_on_commit_callbacks)

    assert response.status_code == 404
    assert callbacks == []
    with tenant_context(statements.org):
        assert not ApprovalRun.objects.exists()
    assert set(_statuses(statements).values()) == {"draft"}


def test_nothing_to_approve_queues_nothing(
    statements, django_capture_on_commit_callbacks
):
    client = login(Client(), statements.manager)

    response, callbacks = _approve_all(
        client, django_capture_on_commit_callbacks, period="2024-05"
    )
    page = client.get(response["Location"]).content.decode()

    assert callbacks == []
    with tenant_context(statements.org):
        assert not ApprovalRun.objects.exists()
    assert (
        "There are no draft statements for May 2024 that you can approve, so "
        "nothing was queued." in page
    )


def test_second_click_while_queued_rejected(
    statements, django_capture_on_commit_callbacks
):
    client = login(Client(), statements.manager)
    _approve_all(client, django_capture_on_commit_callbacks, False)

    response, callbacks = _approve_all(
        client, django_capture_on_commit_callbacks, False
    )
    page = client.get(response["Location"]).content.decode()

    assert callbacks == []
    with tenant_context(statements.org):
        assert ApprovalRun.objects.count() == 1
    assert (
        "Your approval of the March 2024 drafts is already running. Wait for it "
        "to finish, then try again." in page
    )
    # The running approval replaces the button.
    assert "Approve all 2 drafts" not in page


@pytest.mark.parametrize(
    ("viewer", "button"),
    [
        ("manager", "Approve all 2 drafts"),
        ("vp", "Approve all 2 drafts"),
        ("other_manager", "Approve the 1 draft"),
        ("admin", "Approve all 3 drafts"),
    ],
)
def test_list_shows_approve_all_button(statements, viewer, button):
    client = login(Client(), getattr(statements, viewer))

    response = client.get(_url("statements") + "?period=2024-03")

    assert f'<button type="submit">{button}</button>' in response.content.decode()


def test_list_hides_button_without_drafts(
    statements, django_capture_on_commit_callbacks
):
    client = login(Client(), statements.manager)
    _approve_all(client, django_capture_on_commit_callbacks)

    response = client.get(_url("statements") + "?period=2024-03")
    page = response.content.decode()

    assert response.context["drafts_to_approve"] == 0
    assert '<button type="submit">Approve' not in page
    assert "Last approval of all drafts by Max Manager" in page
    assert "2 approved, 0 skipped" in page


def _running_run(personas, requester) -> ApprovalRun:
    with tenant_context(personas.org):
        return ApprovalRun.objects.create(
            period_start=MARCH.start,
            period_end=MARCH.end,
            status="running",
            progress=50,
            requested_by=requester,
            statement_ids=[1, 2],
            statement_count=2,
            processed_count=1,
            approved_count=1,
        )


def test_progress_partial_shows_running_run(statements):
    run = _running_run(statements, statements.manager)
    client = login(Client(), statements.manager)

    page = client.get(_url("statements") + "?period=2024-03").content.decode()
    fragment = client.get(_progress_url(run), headers={"HX-Request": "true"})

    body = fragment.content.decode()
    assert fragment.status_code == 200
    assert f'hx-get="{_progress_url(run)}" hx-trigger="every 1s"' in body
    assert '<strong class="run-status">Running</strong>: 1 of 2 statements' in body
    assert '<progress class="progress" max="100" value="50">' in body
    assert '<progress class="progress" max="100" value="50">' in page


def test_progress_lists_first_fifty_skipped(statements):
    run = _running_run(statements, statements.manager)
    run.status = "done"
    run.skipped = [
        {"member": f"Rep {number:02d}", "message": "The statement is already approved."}
        for number in range(53)
    ]
    run.skipped_count = 53
    with tenant_context(statements.org):
        run.save()
    client = login(Client(), statements.manager)

    body = client.get(_progress_url(run)).content.decode()

    assert "Rep 49: The statement is already approved." in body
    assert "Rep 50:" not in body
    assert "and 3 more skipped statements." in body


@pytest.mark.parametrize("skipped", [0, 53])
def test_progress_query_count_fixed(statements, django_assert_num_queries, skipped):
    run = _running_run(statements, statements.manager)
    run.skipped = [
        {"member": f"Rep {number:02d}", "message": "The statement is already approved."}
        for number in range(skipped)
    ]
    run.skipped_count = skipped
    with tenant_context(statements.org):
        run.save()
    client = login(Client(), statements.manager)
    client.get(_progress_url(run))

    # The session, the user, the membership with its organisation, the run.
    with django_assert_num_queries(4):
        response = client.get(_progress_url(run), headers={"HX-Request": "true"})

    assert response.status_code == 200


def test_progress_reloads_page_when_done(
    statements, django_capture_on_commit_callbacks
):
    client = login(Client(), statements.manager)
    _approve_all(client, django_capture_on_commit_callbacks)
    run = _latest_run(statements)

    refresh = client.get(_progress_url(run), headers={"HX-Request": "true"})
    fragment = client.get(_progress_url(run))

    assert refresh["HX-Refresh"] == "true"
    body = fragment.content.decode()
    assert "hx-get" not in body
    assert '<strong class="run-status">Done</strong> at' in body
    assert "2 approved, 0 skipped" in body


@pytest.mark.parametrize(
    ("viewer", "status"),
    [
        ("manager", 200),
        ("admin", 200),
        ("vp", 404),
        ("other_manager", 404),
        ("rep1", 404),
        ("outsider", 404),
    ],
)
def test_progress_only_for_requester_or_admin(statements, viewer, status):
    run = _running_run(statements, statements.manager)
    client = login(Client(), getattr(statements, viewer))

    response = client.get(_progress_url(run))

    assert response.status_code == status


def test_progress_of_other_organisation_404(statements):
    with tenant_context(statements.other_org):
        run = ApprovalRun.objects.create(
            period_start=MARCH.start,
            period_end=MARCH.end,
            requested_by=statements.outsider,
        )
    client = login(Client(), statements.admin)

    response = client.get(_progress_url(run))

    assert response.status_code == 404


def test_totals_unchanged_by_approval(statements, django_capture_on_commit_callbacks):
    client = login(Client(), statements.admin)

    _approve_all(client, django_capture_on_commit_callbacks)

    with tenant_context(statements.org):
        totals = dict(
            Statement.objects.filter(period_start=MARCH.start).values_list(
                "member__display_name", "total"
            )
        )
    # 12,500.00 x 10%, 4,000.00 x 10% and 9,000.00 x 10%.
    assert totals == {
        "Rita Rep": Decimal("1250.00"),
        "Rob Rep": Decimal("400.00"),
        "Rex Rep": Decimal("900.00"),
    }
