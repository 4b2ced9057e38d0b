"""Commission pages: who sees which statement, approval, adjustment and payroll CSV."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from compensation import selectors
from compensation import services_statements as services
from compensation.models import CalculationRun, Statement
from goals.calendar import month_range
from goals.periods import organization_today
from spm.spreadsheet import spreadsheet_safe
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
    """March drafts of 1,250.00 for Rita, 400.00 for Rob and 900.00 for Rex."""
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


def _statement(personas, member) -> Statement:
    with tenant_context(personas.org):
        return Statement.objects.get(member=member, period_start=MARCH.start)


def _approved_rita(personas) -> Statement:
    """Approve Rita's March statement, as the admin."""
    rita = _statement(personas, personas.rep1)
    with tenant_context(personas.org):
        services.statement_approve(
            statement=rita, approver=personas.admin, actor=personas.admin.user
        )
    return rita


def _detail_url(statement) -> str:
    return reverse(
        "compensation:statement",
        kwargs={"org_slug": "acme", "statement_id": statement.public_id},
    )


def _url(name: str) -> str:
    return reverse(f"compensation:{name}", kwargs={"org_slug": "acme"})


def test_rep_sees_own_lines_and_total(statements, django_assert_max_num_queries):
    client = login(Client(), statements.rep1)

    # The lines take two: the block of calculated lines and the other lines.
    with django_assert_max_num_queries(8):
        response = client.get(_url("mine") + "?period=2024-03")

    assert response.status_code == 200
    body = response.content.decode()
    assert "10,000.00 x 10%" in body
    assert "1,250.00" in body
    assert "Draft" in body
    assert [line.amount for line in response.context["lines"]] == [
        Decimal("1000.00"),
        Decimal("250.00"),
    ]


def test_rep_past_statements_listed(statements):
    client = login(Client(), statements.rep1)

    response = client.get(_url("mine") + "?period=2024-05")

    assert response.context["statement"] is None
    assert [s.period_label for s in response.context["past"]] == ["March 2024"]


@pytest.mark.parametrize(
    ("viewer", "owner", "status"),
    [
        ("rep1", "rep1", 200),
        ("rep1", "rep2", 404),
        ("manager", "rep1", 200),
        ("manager", "rep2", 200),
        ("manager", "rep4", 404),
        ("vp", "rep1", 200),
        ("vp", "rep4", 404),
        ("other_manager", "rep4", 200),
        ("admin", "rep4", 200),
        ("outsider", "rep1", 404),
    ],
)
def test_statement_detail_follows_tree(statements, viewer, owner, status):
    client = login(Client(), getattr(statements, viewer))
    statement = _statement(statements, getattr(statements, owner))

    response = client.get(_detail_url(statement))

    assert response.status_code == status


def test_detail_query_count(statements, django_assert_max_num_queries):
    client = login(Client(), statements.manager)
    statement = _statement(statements, statements.rep1)

    # One of them reads "CRM data as of", one the statement's disputes, and
    # two its lines: the block of calculated lines and the other lines.
    with django_assert_max_num_queries(13):
        response = client.get(_detail_url(statement))

    assert response.status_code == 200
    assert response.context["can_approve"] is True


def test_manager_list_shows_tree_only(statements, django_assert_max_num_queries):
    client = login(Client(), statements.manager)

    # One of them reads "CRM data as of" and the deals changed since, one
    # the commission paid on deals archived in the period, one counts the
    # page's statements and one sums them all by status. "Approve all
    # drafts" takes two: one counts the drafts the viewer may approve and
    # one reads the latest approval run.
    with django_assert_max_num_queries(14):
        response = client.get(_url("statements") + "?period=2024-03")

    rows = [(s.member.display_name, s.total) for s, _ in response.context["rows"]]
    assert rows == [("Rita Rep", Decimal("1250.00")), ("Rob Rep", Decimal("400.00"))]


def test_list_query_count_fixed(statements, django_assert_max_num_queries):
    client = login(Client(), statements.admin)

    # One of them reads "CRM data as of" and the deals changed since, one
    # the commission paid on deals archived in the period, one counts the
    # page's statements and one sums them all by status. "Approve all
    # drafts" takes two: one counts the drafts the viewer may approve and
    # one reads the latest approval run.
    with django_assert_max_num_queries(15):
        response = client.get(_url("statements") + "?period=2024-03")

    assert len(response.context["rows"]) == 3
    assert response.context["run"].status == "done"


def _summary(response) -> dict:
    return {row.status: (row.count, row.totals) for row in response.context["summary"]}


def test_list_summary_counts_every_status(statements):
    _approved_rita(statements)
    admin = login(Client(), statements.admin)
    manager = login(Client(), statements.manager)

    everyone = admin.get(_url("statements") + "?period=2024-03")
    tree = manager.get(_url("statements") + "?period=2024-03")

    usd = "USD"
    # Rob 400.00 and Rex 900.00 are drafts; Rita's 1,250.00 is approved.
    assert _summary(everyone) == {
        "draft": (2, [(usd, Decimal("1300.00"))]),
        "approved": (1, [(usd, Decimal("1250.00"))]),
        "paid": (0, []),
    }
    # Rex reports to another manager.
    assert _summary(tree) == {
        "draft": (1, [(usd, Decimal("400.00"))]),
        "approved": (1, [(usd, Decimal("1250.00"))]),
        "paid": (0, []),
    }
    assert "1,300.00 USD" in everyone.content.decode()


def test_list_pages_statements_by_name(statements, monkeypatch):
    monkeypatch.setattr("compensation.views.STATEMENTS_PER_PAGE", 2)
    client = login(Client(), statements.admin)
    url = _url("statements") + "?period=2024-03"

    pages = {page: client.get(f"{url}&page={page}") for page in ("1", "2", "9", "x")}

    names = {
        page: [s.member.display_name for s, _ in response.context["rows"]]
        for page, response in pages.items()
    }
    assert names == {
        "1": ["Rex Rep", "Rita Rep"],
        "2": ["Rob Rep"],
        # A page past the end shows the last one, and a page that is not a
        # number the first.
        "9": ["Rob Rep"],
        "x": ["Rex Rep", "Rita Rep"],
    }
    assert "statements 3 to 3 of 3" in pages["2"].content.decode()
    # The summary covers every page.
    assert _summary(pages["2"])["draft"][0] == 3


def test_list_filters_by_status(statements):
    _approved_rita(statements)
    client = login(Client(), statements.admin)
    url = _url("statements") + "?period=2024-03"

    approved = client.get(url + "&status=approved")
    unknown = client.get(url + "&status=pending")

    assert [s.member.display_name for s, _ in approved.context["rows"]] == ["Rita Rep"]
    assert len(unknown.context["rows"]) == 3
    assert (
        "There is no statement status &#x27;pending&#x27;; all statements are shown."
        in unknown.content.decode()
    )


def test_approve_returns_to_same_page_and_status(statements):
    client = login(Client(), statements.admin)
    rob = _statement(statements, statements.rep2)

    response = client.post(
        _url("statements-approve"),
        {
            "statement": [str(rob.public_id)],
            "period": "2024-03",
            "status": "draft",
            "page": "2",
        },
    )

    assert response["Location"] == (
        _url("statements") + "?period=2024-03&status=draft&page=2"
    )


def test_rep_cannot_list_or_approve(statements):
    client = login(Client(), statements.rep1)
    statement = _statement(statements, statements.rep1)

    listed = client.get(_url("statements"))
    approved = client.post(
        _url("statements-approve"),
        {"statement": [str(statement.public_id)], "period": "2024-03"},
    )

    assert listed.status_code == 404
    assert approved.status_code == 404
    statement.refresh_from_db()
    assert statement.status == Statement.Status.DRAFT


def test_manager_bulk_approves_tree(statements):
    client = login(Client(), statements.manager)
    rita = _statement(statements, statements.rep1)
    rob = _statement(statements, statements.rep2)
    rex = _statement(statements, statements.rep4)

    response = client.post(
        _url("statements-approve"),
        {
            "statement": [str(rita.public_id), str(rob.public_id), str(rex.public_id)],
            "period": "2024-03",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == _url("statements") + "?period=2024-03"
    statuses = {}
    for statement in (rita, rob, rex):
        statement.refresh_from_db()
        statuses[statement.member_id] = statement.status
    # Rex reports to another manager, so his id is ignored.
    assert statuses == {
        statements.rep1.pk: "approved",
        statements.rep2.pk: "approved",
        statements.rep4.pk: "draft",
    }


def test_approve_outside_tree_says_so(statements):
    client = login(Client(), statements.manager)
    rex = _statement(statements, statements.rep4)

    response = client.post(
        _url("statements-approve"),
        {"statement": [str(rex.public_id)], "period": "2024-03"},
        follow=True,
    )

    content = response.content.decode()
    assert (
        "1 of the selected statements was not found in your reporting tree, so "
        "you cannot approve it." in content
    )
    assert "Select at least one statement" not in content
    rex.refresh_from_db()
    assert rex.status == Statement.Status.DRAFT


def test_approve_bad_id_counted(statements):
    client = login(Client(), statements.manager)
    rita = _statement(statements, statements.rep1)

    response = client.post(
        _url("statements-approve"),
        {"statement": [str(rita.public_id), "not-a-uuid"], "period": "2024-03"},
        follow=True,
    )

    assert response.status_code == 200
    assert "1 of the selected statements was not found in your reporting tree" in (
        response.content.decode()
    )
    rita.refresh_from_db()
    assert rita.status == Statement.Status.APPROVED


def test_approve_nothing_selected(statements):
    client = login(Client(), statements.manager)

    response = client.post(
        _url("statements-approve"), {"period": "2024-03"}, follow=True
    )

    assert "Select at least one statement to approve." in response.content.decode()


def test_admin_marks_paid(statements):
    rita = _approved_rita(statements)
    client = login(Client(), statements.admin)

    response = client.post(
        _url("statements-paid"),
        {"statement": [str(rita.public_id)], "period": "2024-03"},
    )

    assert response.status_code == 302
    rita.refresh_from_db()
    assert rita.status == Statement.Status.PAID


def test_mark_paid_from_statement_page(statements):
    rita = _approved_rita(statements)
    admin = login(Client(), statements.admin)
    paid_url = _url("statements-paid")

    page = admin.get(_detail_url(rita)).content.decode()
    managers_page = (
        login(Client(), statements.manager).get(_detail_url(rita)).content.decode()
    )
    response = admin.post(
        paid_url,
        {
            "statement": [str(rita.public_id)],
            "period": "2024-03",
            "return_to": "detail",
        },
    )

    assert f'action="{paid_url}"' in page
    assert f'action="{paid_url}"' not in managers_page
    assert response.status_code == 302
    assert response["Location"] == _detail_url(rita)
    rita.refresh_from_db()
    assert rita.status == Statement.Status.PAID
    after = admin.get(_detail_url(rita)).content.decode()
    assert f'action="{paid_url}"' not in after


def test_mark_paid_twice_says_paid(statements):
    rita = _approved_rita(statements)
    admin = login(Client(), statements.admin)
    form = {"statement": [str(rita.public_id)], "period": "2024-03"}
    admin.post(_url("statements-paid"), form)
    rita.refresh_from_db()

    response = admin.post(_url("statements-paid"), form, follow=True)

    # The organisation's time zone is UTC.
    assert (
        f"The statement of Rita Rep for March 2024 was already marked paid on "
        f"{rita.paid_at:%Y-%m-%d}." in response.content.decode()
    )


def test_manual_adjustment_on_draft(statements):
    client = login(Client(), statements.manager)
    rita = _statement(statements, statements.rep1)

    response = client.post(
        _detail_url(rita) + "adjust/", {"amount": "-50.00", "reason": "Chargeback"}
    )

    assert response.status_code == 302
    rita.refresh_from_db()
    assert rita.total == Decimal("1200.00")


def test_manual_adjustment_needs_reason(statements):
    client = login(Client(), statements.admin)
    rita = _statement(statements, statements.rep1)

    response = client.post(_detail_url(rita) + "adjust/", {"amount": "10.00"})

    assert response.status_code == 400
    with tenant_context(statements.org):
        assert len(selectors.statement_lines(rita)) == 2


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("1e3", "not &#x27;1e3&#x27;"),
        ("1,000", "not &#x27;1,000&#x27;"),
        ("Infinity", "not &#x27;Infinity&#x27;"),
        ("abc", "not &#x27;abc&#x27;"),
        ("10.005", "no more than 2 decimal places"),
    ],
)
def test_manual_adjustment_amount_invalid(statements, amount, message):
    client = login(Client(), statements.admin)
    rita = _statement(statements, statements.rep1)

    response = client.post(
        _detail_url(rita) + "adjust/", {"amount": amount, "reason": "Prize"}
    )

    assert response.status_code == 400
    content = response.content.decode()
    assert message in content
    # The page keeps the rest of the statement: its approve button.
    assert "statements/approve/" in content
    with tenant_context(statements.org):
        assert len(selectors.statement_lines(rita)) == 2


def test_manual_adjustment_rejected_when_approved(statements):
    rita = _approved_rita(statements)
    client = login(Client(), statements.admin)

    response = client.post(
        _detail_url(rita) + "adjust/", {"amount": "10.00", "reason": "Late fix"}
    )

    assert response.status_code == 409
    assert "can no longer change" in response.content.decode()
    with tenant_context(statements.org):
        assert len(selectors.statement_lines(rita)) == 2


def test_payroll_csv_lists_approved(statements):
    statements.rep1.email = "rita@acme.test"
    statements.rep1.employee_id = "E-1001"
    statements.rep1.save()
    _approved_rita(statements)
    client = login(Client(), statements.admin)

    response = client.get(_url("payroll-export") + "?period=2024-03")

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        'attachment; filename="payroll-2024-03.csv"'
    )
    assert response.content.decode().splitlines() == [
        "rep,employee_id,email,amount,currency",
        "Rita Rep,E-1001,rita@acme.test,1250.00,USD",
    ]


def test_calculate_button_runs_period(statements, django_capture_on_commit_callbacks):
    won_deal(statements.rep2, statements.stages["Won"], "1000.00", D(2024, 3, 30))
    client = login(Client(), statements.admin)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url("statements-calculate"), {"period": "2024-03"})

    assert response.status_code == 302
    rob = _statement(statements, statements.rep2)
    # The test settings run Celery tasks eagerly: (4,000 + 1,000) x 10%.
    assert rob.total == Decimal("500.00")
    page = client.get(response["Location"]).content.decode()
    assert "Calculation of March 2024 queued." in page
    with tenant_context(statements.org):
        run = CalculationRun.objects.latest("created_at")
    # The organisation's time zone is UTC.
    assert f'Done</strong> at <time datetime="{run.finished_at.isoformat()}' in page
    assert f"{run.finished_at:%Y-%m-%d %H:%M} UTC</time>" in page


def test_manual_line_labelled_once(statements):
    rita = _statement(statements, statements.rep1)
    with tenant_context(statements.org):
        services.statement_adjust(
            statement=rita,
            amount=Decimal("25.00"),
            reason="Contest prize",
            editor=statements.admin,
            actor=statements.admin.user,
        )

    page = login(Client(), statements.rep1).get(_detail_url(rita)).content.decode()

    assert "<td>Manual</td>" in page
    assert "(manual)" not in page


def test_list_shows_progress_of_running_run(statements):
    with tenant_context(statements.org):
        run = CalculationRun.objects.create(
            period_start=MARCH.start,
            period_end=MARCH.end,
            status="running",
            progress=40,
        )
    client = login(Client(), statements.admin)

    page = client.get(_url("statements") + "?period=2024-03")
    fragment = client.get(
        reverse(
            "compensation:run-progress",
            kwargs={"org_slug": "acme", "run_id": run.public_id},
        ),
        headers={"HX-Request": "true"},
    )

    assert '<progress class="progress" max="100" value="40">' in page.content.decode()
    assert fragment.status_code == 200
    assert "Running" in fragment.content.decode()


def test_progress_reloads_page_when_done(statements):
    with tenant_context(statements.org):
        run = CalculationRun.objects.get()
    client = login(Client(), statements.admin)

    response = client.get(
        reverse(
            "compensation:run-progress",
            kwargs={"org_slug": "acme", "run_id": run.public_id},
        ),
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    assert response["HX-Refresh"] == "true"


@pytest.mark.parametrize("period", ["2026-13", "abc"])
def test_payroll_csv_bad_period_rejected(statements, period):
    client = login(Client(), statements.admin)

    response = client.get(_url("payroll-export") + f"?period={period}")

    assert response.status_code == 400
    assert response.content.decode() == (
        f"Invalid period '{period}': use a month such as 2024-03."
    )


def test_payroll_csv_keeps_negative_amounts():
    # A clawback is a number, so it keeps its minus sign; a formula does not.
    assert spreadsheet_safe("-123.45") == "-123.45"
    assert spreadsheet_safe("-SUM(A1)") == "'-SUM(A1)"
    assert spreadsheet_safe("=1+1") == "'=1+1"


def test_bad_period_names_month_shown(statements):
    client = login(Client(), statements.rep1)
    with tenant_context(statements.org):
        current = month_range(organization_today(statements.org))

    response = client.get(
        reverse("compensation:whatif", kwargs={"org_slug": "acme"}) + "?period=abc"
    )

    assert response.status_code == 200
    assert (
        f"Invalid period &#x27;abc&#x27;: use a month such as 2024-03. Showing "
        f"{current.label} instead." in response.content.decode()
    )
