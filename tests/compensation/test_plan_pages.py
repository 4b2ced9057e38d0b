"""Plan builder pages: plans, components, publishing, preview, assignments, FX rates."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from compensation.models import (
    CompPlan,
    FxRate,
    PlanAssignment,
    PlanComponent,
    PlanVersion,
    Statement,
)
from compensation.services_statements import statement_approve, statements_calculate
from goals.calendar import month_range
from spm.models import AuditLog, Organization
from spm.tenancy import tenant_context
from tests.compensation.conftest import (
    assign,
    flat_component,
    make_plan,
    make_rate,
    publish_version,
    won_deal,
)
from tests.conftest import login

D = dt.date
JANUARY_1 = D(2024, 1, 1)
TIER_FORM = {
    "name": "Accelerator",
    "kind": "tiered",
    "order": "1",
    "basis": "attainment",
    "mode": "marginal",
    "tiers": "0, 100, 5\n100, 150, 8\n150, , 12",
}


def _url(name: str, **kwargs) -> str:
    return reverse(f"compensation:{name}", kwargs={"org_slug": "acme", **kwargs})


def _audit(personas, action: str) -> list[AuditLog]:
    return list(
        AuditLog.unscoped.filter(organization=personas.org, action=action).order_by(
            "id"
        )
    )


def _draft(plan: CompPlan, number: int = 1, day: D = JANUARY_1) -> PlanVersion:
    return PlanVersion.unscoped.create(
        organization_id=plan.organization_id,
        plan=plan,
        number=number,
        effective_from=day,
    )


@pytest.fixture
def admin(personas):
    return login(Client(), personas.admin)


@pytest.fixture
def draft(personas):
    return _draft(make_plan(personas.org.pk, "AE plan"))


# Plans ------------------------------------------------------------------------


def test_plan_list_query_count(personas, admin, django_assert_max_num_queries):
    for name in ("AE plan", "SDR plan", "Manager plan"):
        plan = make_plan(personas.org.pk, name)
        publish_version(plan, [flat_component("0.1")])
        assign(personas.rep1, plan)

    with django_assert_max_num_queries(8):
        response = admin.get(_url("plans"))

    assert response.status_code == 200
    rows = [
        (p.name, p.version_count, p.assignment_count) for p in response.context["plans"]
    ]
    assert rows == [("AE plan", 1, 1), ("Manager plan", 1, 1), ("SDR plan", 1, 1)]


def test_plan_create_starts_draft(personas, admin):
    response = admin.post(
        _url("plans"),
        {"name": "AE plan", "currency": "eur", "effective_from": "2024-01-01"},
    )

    assert response.status_code == 302
    with tenant_context(personas.org):
        plan = CompPlan.objects.get()
        version = plan.versions.get()
    assert plan.currency == "EUR"
    assert version.number == 1
    assert version.status == "draft"
    assert response["Location"] == _url("version", version_id=version.public_id)
    [entry] = _audit(personas, "comp_plan.create")
    assert entry.new["name"] == "AE plan"
    assert entry.actor == personas.admin.user


def test_plan_create_rejects_bad_currency(personas, admin):
    response = admin.post(
        _url("plans"),
        {"name": "AE plan", "currency": "XYZ", "effective_from": "2024-01-01"},
    )

    assert response.status_code == 400
    assert response.context["form"].errors["currency"] == [
        "'XYZ' is not an ISO 4217 currency code; use one such as USD."
    ]
    assert not CompPlan.unscoped.exists()


def test_plan_detail_query_count(personas, admin, django_assert_max_num_queries):
    plan = make_plan(personas.org.pk)
    publish_version(plan, [flat_component("0.1")])
    for rep in (personas.rep1, personas.rep2, personas.rep3):
        assign(rep, plan)

    with django_assert_max_num_queries(11):
        response = admin.get(_url("plan", plan_id=plan.public_id))

    assert response.status_code == 200
    assert "Every booking earns 10%." in response.content.decode()
    assert len(response.context["assignments"]) == 3


def test_other_org_plan_is_404(personas, admin):
    other = make_plan(personas.other_org.pk, "Globex plan")
    version = publish_version(other, [flat_component("0.1")])
    component = PlanComponent.unscoped.get(version=version)

    urls = [
        _url("plan", plan_id=other.public_id),
        _url("version", version_id=version.public_id),
        _url("version-preview", version_id=version.public_id),
        _url("version-diff", version_id=version.public_id),
        _url("component", component_id=component.public_id),
    ]
    for url in urls:
        assert admin.get(url).status_code == 404, url
    posted = admin.post(_url("plan-draft", plan_id=other.public_id), {})
    assert posted.status_code == 404
    assert PlanVersion.unscoped.filter(plan=other).count() == 1


@pytest.mark.parametrize("viewer", ["rep1", "manager"])
def test_reps_and_managers_denied(personas, draft, viewer):
    client = login(Client(), getattr(personas, viewer))

    pages = [
        _url("plans"),
        _url("plan", plan_id=draft.plan.public_id),
        _url("version", version_id=draft.public_id),
        _url("fx-rates"),
    ]
    for url in pages:
        assert client.get(url).status_code == 404, url
    created = client.post(_url("component-new", version_id=draft.public_id), TIER_FORM)
    assert created.status_code == 404
    assert not PlanComponent.unscoped.exists()


# Components -------------------------------------------------------------------


def test_component_tiered_saved_as_fractions(personas, admin, draft):
    response = admin.post(
        _url("component-new", version_id=draft.public_id),
        {**TIER_FORM, "threshold": "50", "cap_per_period": "20000"},
    )

    assert response.status_code == 302
    component = PlanComponent.unscoped.get(version=draft)
    assert component.params == {
        "basis": "attainment",
        "mode": "marginal",
        "threshold": "50",
        "tiers": [
            {"from": "0", "to": "100", "rate": "0.05"},
            {"from": "100", "to": "150", "rate": "0.08"},
            {"from": "150", "rate": "0.12"},
        ],
    }
    assert component.cap_per_period == Decimal("20000")
    [entry] = _audit(personas, "comp_plan.component_create")
    assert entry.old is None
    assert entry.new["params"]["tiers"][1]["rate"] == "0.08"


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        (
            "0, 100, 5\n120, , 8",
            "Component &#x27;Accelerator&#x27;: tier line 2: from 120 must equal "
            "the previous tier&#x27;s to, 100, so the tiers leave no gap.",
        ),
        (
            "0, 100, 5\n100, 90, 8\n90, , 9",
            "Component &#x27;Accelerator&#x27;: tier line 2: to 90 must be greater "
            "than from 100, because tiers ascend.",
        ),
        (
            "0, 100, -5\n100, , 8",
            "Component &#x27;Accelerator&#x27;: tier line 1: rate -5% must be from "
            "0% to 100%.",
        ),
        (
            "0, 100, 5\n100, , 800",
            "Component &#x27;Accelerator&#x27;: tier line 2: rate 800% must be from "
            "0% to 100%.",
        ),
        (
            "10, 100, 5\n100, , 8",
            "Component &#x27;Accelerator&#x27;: tier line 1: from 10 must be 0, "
            "where the first tier starts.",
        ),
        (
            "0, 100, abc\n100, , 8",
            "Component &#x27;Accelerator&#x27;: tier line 1: rate &#x27;abc&#x27; "
            "is not a number.",
        ),
    ],
)
def test_component_bad_tiers_named(admin, draft, tiers, message):
    response = admin.post(
        _url("component-new", version_id=draft.public_id),
        {**TIER_FORM, "tiers": tiers},
    )

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not PlanComponent.unscoped.exists()


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        (["basis"], "choose the basis (% of quota or amount)."),
        (["mode"], "choose the mode (marginal or retroactive)."),
        (
            ["basis", "mode"],
            "choose the basis (% of quota or amount) and the mode (marginal or "
            "retroactive).",
        ),
    ],
)
def test_component_tiered_needs_basis_and_mode(admin, draft, missing, message):
    response = admin.post(
        _url("component-new", version_id=draft.public_id),
        {**TIER_FORM, **dict.fromkeys(missing, "")},
    )

    assert response.status_code == 400
    assert f"Component &#x27;Accelerator&#x27;: {message}" in response.content.decode()
    assert not PlanComponent.unscoped.exists()


def test_component_form_basis_starts_empty(admin, draft):
    page = admin.get(
        _url("component-new", version_id=draft.public_id) + "?kind=tiered"
    ).content.decode()

    assert '<option value="" selected>choose</option>' in page
    assert '<option value="attainment" selected>' not in page
    assert '<option value="marginal" selected>' not in page


def test_component_ignores_other_kinds_fields(admin, draft):
    response = admin.post(
        _url("component-new", version_id=draft.public_id),
        {**TIER_FORM, "rate": "zzz", "amount": "x", "levels": "-3"},
    )

    assert response.status_code == 302
    component = PlanComponent.unscoped.get(version=draft)
    assert component.kind == "tiered"
    assert "rate" not in component.params


def test_component_bad_threshold_named(admin, draft):
    response = admin.post(
        _url("component-new", version_id=draft.public_id),
        {**TIER_FORM, "threshold": "1e2"},
    )

    assert response.status_code == 400
    assert (
        "Enter a number in plain digits, such as 50 or 25000.00, not "
        "&#x27;1e2&#x27;." in response.content.decode()
    )
    assert not PlanComponent.unscoped.exists()


def test_component_other_kinds_validated(admin, draft):
    spiff = {
        "name": "Spring SPIFF",
        "kind": "spiff",
        "order": "1",
        "starts_on": "2024-03-31",
        "ends_on": "2024-03-01",
        "amount": "500",
    }
    bonus = {
        "name": "Bonus",
        "kind": "bonus",
        "order": "2",
        "milestones": "100, 2000\n90, 500",
    }
    url = _url("component-new", version_id=draft.public_id)

    spiff_body = admin.post(url, spiff).content.decode()
    bonus_body = admin.post(url, bonus).content.decode()

    assert (
        "Component &#x27;Spring SPIFF&#x27;, ends_on: 2024-03-01 is before "
        "starts_on, 2024-03-31." in spiff_body
    )
    assert (
        "Component &#x27;Bonus&#x27;: milestone line 2: attainment 90% must be "
        "above the previous milestone&#x27;s 100%." in bonus_body
    )
    assert not PlanComponent.unscoped.exists()


def test_component_edit_records_old_and_new(personas, admin, draft):
    admin.post(
        _url("component-new", version_id=draft.public_id),
        {"name": "Base", "kind": "flat", "order": "1", "rate": "8"},
    )
    component = PlanComponent.unscoped.get(version=draft)

    form = admin.get(_url("component", component_id=component.public_id))
    response = admin.post(
        _url("component", component_id=component.public_id),
        {"name": "Base", "kind": "flat", "order": "1", "rate": "10"},
    )

    assert form.context["form"].initial["rate"] == "8"
    assert response.status_code == 302
    component.refresh_from_db()
    assert component.params == {"rate": "0.1"}
    [entry] = _audit(personas, "comp_plan.component_update")
    assert entry.old["params"] == {"rate": "0.08"}
    assert entry.new["params"] == {"rate": "0.1"}


def test_component_order_shown_from_one(personas, admin, draft):
    url = _url("component-new", version_id=draft.public_id)
    admin.post(url, {"name": "Base", "kind": "flat", "order": "1", "rate": "8"})
    admin.post(url, {"name": "Kicker", "kind": "flat", "order": "2", "rate": "2"})
    base = PlanComponent.unscoped.get(version=draft, name="Base")

    page = admin.get(_url("version", version_id=draft.public_id)).content.decode()
    form = admin.get(_url("component", component_id=base.public_id)).context["form"]
    new_form = admin.get(url).context["form"]
    rejected = admin.post(
        url, {"name": "Extra", "kind": "flat", "order": "0", "rate": "1"}
    )

    stored = dict(
        PlanComponent.unscoped.filter(version=draft).values_list("name", "order")
    )
    assert stored == {"Base": 0, "Kicker": 1}
    assert re.search(r'<td class="num">1</td>\s*<td><a [^>]*>Base</a>', page)
    assert re.search(r'<td class="num">2</td>\s*<td><a [^>]*>Kicker</a>', page)
    assert form.initial["order"] == 1
    # A new component goes last: after the two, third.
    assert new_form.initial["order"] == 3
    assert rejected.status_code == 400
    assert rejected.context["form"].errors["order"] == [
        "Order must be from 1 to 1001, not 0."
    ]


def test_version_page_query_count(personas, admin, django_assert_max_num_queries):
    plan = make_plan(personas.org.pk)
    publish_version(plan, [flat_component("0.1")], effective_from=D(2024, 1, 1))
    draft = _draft(plan, number=2, day=D(2024, 7, 1))
    for order, name in enumerate(("Base", "Kicker", "Extra")):
        PlanComponent.unscoped.create(
            organization=personas.org,
            version=draft,
            name=name,
            kind="flat",
            order=order,
            params={"rate": "0.05"},
        )

    with django_assert_max_num_queries(12):
        response = admin.get(_url("version", version_id=draft.public_id))

    assert response.status_code == 200
    names = [section.name for section in response.context["document"].components]
    assert names == ["Base", "Kicker", "Extra"]
    assert [v.number for v in response.context["other_versions"]] == [1]


# Publishing -------------------------------------------------------------------


def test_publish_makes_version_read_only(personas, admin, draft):
    admin.post(
        _url("component-new", version_id=draft.public_id),
        {"name": "Base", "kind": "flat", "order": "1", "rate": "10"},
    )

    response = admin.post(_url("version-publish", version_id=draft.public_id))
    edit = admin.post(
        _url("component-new", version_id=draft.public_id),
        {"name": "Extra", "kind": "flat", "order": "1", "rate": "5"},
    )
    terms = admin.post(
        _url("version", version_id=draft.public_id),
        {
            "effective_from": "2025-01-01",
            "payout_timing": "at_close",
            "fx_rate_date": "close_date",
            "clawback_term_months": "12",
        },
    )

    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == "published"
    assert draft.published_by == personas.admin.user
    assert edit.status_code == 302
    assert terms.status_code == 302
    assert draft.effective_from == D(2024, 1, 1)
    assert PlanComponent.unscoped.filter(version=draft).count() == 1
    [entry] = _audit(personas, "comp_plan.publish")
    assert entry.old == {"status": "draft"}
    assert entry.new == {"status": "published", "effective_from": "2024-01-01"}


def test_plan_page_publish_time_zone(personas, admin):
    plan = make_plan(personas.org.pk)
    publish_version(plan, [flat_component("0.1")])
    version = PlanVersion.unscoped.get(plan=plan)
    Organization.objects.filter(pk=personas.org.pk).update(time_zone="America/New_York")

    page = admin.get(_url("plan", plan_id=plan.public_id)).content.decode()

    local = version.published_at.astimezone(ZoneInfo("America/New_York"))
    assert f"{local:%Y-%m-%d %H:%M %Z}" in page


def test_publish_rejects_empty_or_earlier(personas, admin):
    plan = make_plan(personas.org.pk)
    publish_version(plan, [flat_component("0.1")], effective_from=D(2024, 6, 1))
    draft = _draft(plan, number=2, day=D(2024, 3, 1))

    response = admin.post(
        _url("version-publish", version_id=draft.public_id), follow=True
    )

    body = response.content.decode()
    assert "AE plan v2 has no components; add one to publish." in body
    assert (
        "Effective from 2024-03-01 is not after AE plan v1, which takes effect "
        "on 2024-06-01. Choose a later date." in body
    )
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_publish_warns_of_locked_statements(personas, admin):
    plan = make_plan(personas.org.pk)
    publish_version(plan, [flat_component("0.1")])
    assign(personas.rep1, plan)
    assign(personas.rep2, plan)
    won_deal(personas.rep1, personas.stages["Won"], "1000.00", D(2024, 3, 5))
    won_deal(personas.rep2, personas.stages["Won"], "1000.00", D(2024, 2, 5))
    with tenant_context(personas.org):
        for month in (D(2024, 2, 1), D(2024, 3, 1)):
            statements_calculate(
                organization=personas.org, period=month_range(month), actor=None
            )
        for statement in Statement.objects.all():
            statement_approve(
                statement=statement,
                approver=personas.admin,
                actor=personas.admin.user,
            )
    draft = _draft(plan, number=2, day=D(2024, 3, 1))
    admin.post(
        _url("component-new", version_id=draft.public_id),
        {"name": "Base", "kind": "flat", "order": "1", "rate": "12"},
    )

    response = admin.post(
        _url("version-publish", version_id=draft.public_id), follow=True
    )

    # Rita's and Rob's March statements end after 1 March; February's do not.
    assert (
        "2 approved or paid statements of this plan&#x27;s members end after "
        "2024-03-01." in response.content.decode()
    )


def test_new_draft_copies_published(personas, admin):
    plan = make_plan(personas.org.pk)
    publish_version(
        plan,
        [flat_component("0.1", cap_per_period=Decimal("900"))],
        cap_per_period=Decimal("5000"),
    )

    response = admin.post(
        _url("plan-draft", plan_id=plan.public_id), {"effective_from": "2024-07-01"}
    )
    again = admin.post(
        _url("plan-draft", plan_id=plan.public_id), {"effective_from": "2024-08-01"}
    )

    assert response.status_code == 302
    draft = PlanVersion.unscoped.get(plan=plan, status="draft")
    assert draft.number == 2
    assert draft.cap_per_period == Decimal("5000")
    [component] = PlanComponent.unscoped.filter(version=draft)
    assert component.params == {"rate": "0.1"}
    assert component.cap_per_period == Decimal("900")
    assert again.status_code == 400
    assert "AE plan v2 is already a draft" in again.content.decode()


def test_diff_page_lists_changes(personas, admin):
    plan = make_plan(personas.org.pk)
    tiers = {
        "name": "Accelerator",
        "kind": "tiered",
        "params": {
            "basis": "attainment",
            "mode": "marginal",
            "tiers": [
                {"from": "0", "to": "100", "rate": "0.05"},
                {"from": "100", "to": "150", "rate": "0.08"},
                {"from": "150", "rate": "0.12"},
            ],
        },
        "cap_per_period": Decimal("20000"),
    }
    publish_version(plan, [tiers], effective_from=D(2024, 1, 1))
    raised = {**tiers, "cap_per_period": None}
    raised["params"] = {
        **tiers["params"],
        "tiers": [dict(t) for t in tiers["params"]["tiers"]],
    }
    raised["params"]["tiers"][1]["rate"] = "0.10"
    new = publish_version(plan, [raised], effective_from=D(2024, 7, 1))

    response = admin.get(_url("version-diff", version_id=new.public_id))

    assert response.status_code == 200
    assert response.context["changes"] == [
        "Effective from: 2024-01-01 -> 2024-07-01",
        "Accelerator, tier 100-150%: rate 8% -> 10%",
        "Accelerator, cap per period removed (was 20,000.00)",
    ]


# Preview ----------------------------------------------------------------------


@pytest.fixture
def preview_plan(personas):
    """Published 10% flat, draft v2 at 12%. Rita closes 12,500 in March, Rob 4,000."""
    won = personas.stages["Won"]
    plan = make_plan(personas.org.pk)
    publish_version(plan, [flat_component("0.10")], effective_from=D(2024, 1, 1))
    draft = _draft(plan, number=2, day=D(2024, 6, 1))
    PlanComponent.unscoped.create(
        organization_id=plan.organization_id,
        version=draft,
        name="Commission",
        kind="flat",
        params={"rate": "0.12"},
    )
    assign(personas.rep1, plan)
    assign(personas.rep2, plan)
    won_deal(personas.rep1, won, "10000.00", D(2024, 3, 10))
    won_deal(personas.rep1, won, "2500.00", D(2024, 3, 20))
    won_deal(personas.rep2, won, "4000.00", D(2024, 3, 5))
    won_deal(personas.rep3, won, "7000.00", D(2024, 3, 5))
    return draft


def test_preview_draft_beside_published(
    personas, admin, preview_plan, django_assert_max_num_queries
):
    url = _url("version-preview", version_id=preview_plan.public_id)

    with django_assert_max_num_queries(40):
        response = admin.get(url + "?period=2024-03")

    assert response.status_code == 200
    rows = [
        (r.member.display_name, r.draft_total, r.published_total, r.difference)
        for r in response.context["rows"]
    ]
    # Rita: 12,500 x 12% = 1,500.00 against 12,500 x 10% = 1,250.00.
    # Rob: 4,000 x 12% = 480.00 against 400.00. Remy is not on the plan.
    assert rows == [
        ("Rita Rep", Decimal("1500.00"), Decimal("1250.00"), Decimal("250.00")),
        ("Rob Rep", Decimal("480.00"), Decimal("400.00"), Decimal("80.00")),
    ]
    assert not Statement.unscoped.exists()


def test_preview_chosen_rep_not_on_plan(personas, admin, preview_plan):
    url = _url("version-preview", version_id=preview_plan.public_id)

    response = admin.get(f"{url}?period=2024-03&member={personas.rep3.public_id}")

    [row] = response.context["rows"]
    # Remy is previewed as if on the plan all month: 7,000 x 12% and x 10%.
    assert row.member == personas.rep3
    assert row.draft_total == Decimal("840.00")
    assert row.published_total == Decimal("700.00")
    assert not Statement.unscoped.exists()


def test_preview_bad_period(admin, preview_plan):
    url = _url("version-preview", version_id=preview_plan.public_id)

    response = admin.get(url + "?period=March")

    assert response.status_code == 400
    assert "Period &#x27;March&#x27; is not a month as YYYY-MM." in (
        response.content.decode()
    )


# Assignments ------------------------------------------------------------------


def test_assignment_created_and_overlap_rejected(personas, admin):
    plan = make_plan(personas.org.pk)
    url = _url("plan-assign", plan_id=plan.public_id)
    first = {
        "member": str(personas.rep1.public_id),
        "start_date": "2024-01-01",
        "end_date": "2024-06-30",
        "target_incentive": "60000",
    }

    created = admin.post(url, first)
    overlap = admin.post(url, {**first, "start_date": "2024-06-01", "end_date": ""})
    after = admin.post(url, {**first, "start_date": "2024-07-01", "end_date": ""})

    assert created.status_code == 302
    assert overlap.status_code == 400
    assert (
        "Rita Rep is already on AE plan for some of these days; end the other "
        "assignment first." in overlap.content.decode()
    )
    assert after.status_code == 302
    rows = PlanAssignment.unscoped.filter(plan=plan).order_by("start_date")
    assert [(r.start_date, r.end_date) for r in rows] == [
        (D(2024, 1, 1), D(2024, 6, 30)),
        (D(2024, 7, 1), None),
    ]
    assert rows[0].target_incentive_currency == "USD"
    assert len(_audit(personas, "comp_plan.assignment_create")) == 2


def test_assignment_end_before_start(personas, admin):
    plan = make_plan(personas.org.pk)

    response = admin.post(
        _url("plan-assign", plan_id=plan.public_id),
        {
            "member": str(personas.rep1.public_id),
            "start_date": "2024-03-01",
            "end_date": "2024-02-01",
        },
    )

    assert response.status_code == 400
    assert "End date 2024-02-01 is before the start date 2024-03-01." in (
        response.content.decode()
    )
    assert not PlanAssignment.unscoped.exists()


def test_assignment_end_sets_last_day(personas, admin):
    plan = make_plan(personas.org.pk)
    assignment = assign(personas.rep1, plan, start=D(2024, 3, 1))
    url = _url("assignment-end", assignment_id=assignment.public_id)

    ended = admin.post(url, {"end_date": "2024-06-30"})
    before_start = admin.post(url, {"end_date": "2024-02-01"}, follow=True)

    assert ended.status_code == 302
    assignment.refresh_from_db()
    assert assignment.end_date == D(2024, 6, 30)
    [entry] = _audit(personas, "comp_plan.assignment_end")
    assert entry.old["end_date"] is None
    assert entry.new["end_date"] == "2024-06-30"
    messages = [str(m) for m in before_start.context["messages"]]
    assert messages[-1] == "End date 2024-02-01 is before the start date 2024-03-01."
    assignment.refresh_from_db()
    assert assignment.end_date == D(2024, 6, 30)


def test_assignment_with_statements_not_deleted(personas, admin):
    plan = make_plan(personas.org.pk)
    assignment = assign(personas.rep1, plan, start=D(2024, 3, 1))
    Statement.unscoped.create(
        organization=personas.org,
        member=personas.rep1,
        period_start=D(2024, 3, 1),
        period_end=D(2024, 4, 1),
        currency="USD",
    )

    response = admin.post(
        _url("assignment-delete", assignment_id=assignment.public_id), follow=True
    )

    messages = [str(m) for m in response.context["messages"]]
    assert messages == [
        "Rita Rep has statements since 2024-03-01, so the assignment cannot be "
        "deleted. End it instead."
    ]
    assert PlanAssignment.unscoped.filter(pk=assignment.pk).exists()


# Exchange rates ---------------------------------------------------------------


def _csv(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("rates.csv", text.encode(), content_type="text/csv")


def test_fx_page_query_count(personas, admin, django_assert_max_num_queries):
    for day in range(1, 11):
        make_rate(personas.org.pk, "EUR", "USD", D(2024, 3, day), "1.08")

    with django_assert_max_num_queries(7):
        response = admin.get(_url("fx-rates"))

    assert response.status_code == 200
    assert len(response.context["rates"]) == 10


def test_fx_rate_saved_then_updated(personas, admin):
    values = {
        "date": "2024-03-01",
        "base_currency": "eur",
        "quote_currency": "USD",
        "rate": "1.08",
    }

    admin.post(_url("fx-rates"), values)
    admin.post(_url("fx-rates"), {**values, "rate": "1.09"})

    [rate] = FxRate.unscoped.filter(organization=personas.org)
    assert (rate.base_currency, rate.rate) == ("EUR", Decimal("1.09"))
    [created] = _audit(personas, "fx_rate.create")
    [updated] = _audit(personas, "fx_rate.update")
    assert created.new["rate"] == "1.08"
    assert updated.old["rate"] == "1.0800000000"
    assert updated.new["rate"] == "1.09"


def test_fx_import_all_rows(personas, admin):
    make_rate(personas.org.pk, "EUR", "USD", D(2024, 3, 1), "1.00")
    content = "date,from,to,rate\n2024-03-01,EUR,USD,1.08\n2024-03-01,gbp,USD,1.27\n"

    response = admin.post(_url("fx-import"), {"file": _csv(content)})

    assert response.status_code == 302
    rates = FxRate.unscoped.filter(organization=personas.org).order_by("base_currency")
    assert [(r.base_currency, r.rate) for r in rates] == [
        ("EUR", Decimal("1.08")),
        ("GBP", Decimal("1.27")),
    ]
    [entry] = _audit(personas, "fx_rate.import")
    assert entry.new == {
        "file": "rates.csv",
        "rows": 2,
        "created": 1,
        "updated": 1,
        "changes": [
            {
                "date": "2024-03-01",
                "from": "EUR",
                "to": "USD",
                "old": "1.0000000000",
                "new": "1.08",
            },
            {
                "date": "2024-03-01",
                "from": "GBP",
                "to": "USD",
                "old": None,
                "new": "1.27",
            },
        ],
    }


def test_fx_import_bad_rows_write_nothing(personas, admin):
    content = (
        "date,from,to,rate\n"
        "2024-03-01,EUR,USD,1.08\n"
        "2024-13-01,EUR,USD,1.08\n"
        "2024-03-02,EUR,XXY,1.08\n"
        "2024-03-03,EUR,USD,-2\n"
        "2024-03-04,USD,USD,1\n"
        "2024-03-01,EUR,USD,1.07\n"
    )

    response = admin.post(_url("fx-import"), {"file": _csv(content)})

    assert response.status_code == 400
    assert response.context["import_errors"] == [
        "Row 3, date: '2024-13-01' is not a date: there is no month 13.",
        "Row 4, to: 'XXY' is not an ISO 4217 currency code.",
        "Row 5, rate: '-2' is not a number above 0 with at most 10 decimal places.",
        "Row 6, to: 'USD' is the same currency as from.",
        "Row 7, date: EUR/USD on 2024-03-01 is also on row 2.",
    ]
    assert not FxRate.unscoped.exists()
    assert not _audit(personas, "fx_rate.import")


def test_fx_import_missing_column(personas, admin):
    response = admin.post(_url("fx-import"), {"file": _csv("day,from,to,rate\n")})

    assert response.context["import_errors"] == [
        "Row 1, header: missing column date. The header must be date,from,to,rate."
    ]
    assert not FxRate.unscoped.exists()


# A rep's plan document ----------------------------------------------------------


def test_my_plan_shows_current_terms(personas, django_assert_max_num_queries):
    plan = make_plan(personas.org.pk)
    publish_version(plan, [flat_component("0.08")], effective_from=D(2024, 1, 1))
    assign(personas.rep1, plan)
    client = login(Client(), personas.rep1)

    with django_assert_max_num_queries(8):
        response = client.get(_url("my-plan"), headers={"HX-Request": "true"})
    mine = client.get(_url("mine"))

    body = response.content.decode()
    assert "AE plan v1" in body
    assert "Every booking earns 8%." in body
    assert _url("my-plan") in mine.content.decode()


def test_my_plan_other_rep_not_on_plan(personas):
    plan = make_plan(personas.org.pk)
    publish_version(plan, [flat_component("0.08")])
    assign(personas.rep1, plan)
    client = login(Client(), personas.rep2)

    response = client.get(_url("my-plan"))

    assert response.status_code == 200
    assert "Every booking earns" not in response.content.decode()
    assert "You are on no plan" in response.content.decode()


@pytest.mark.parametrize(
    ("effective_from", "message"),
    [
        ("2026-02-30", "is not a date: February 2026 has 28 days."),
        ("2028-02-30", "is not a date: February 2028 has 29 days."),
        ("2026-04-31", "is not a date: April 2026 has 30 days."),
        ("2026-2-3", "is not a date as YYYY-MM-DD."),
    ],
)
def test_plan_date_bad_day_or_form(personas, admin, effective_from, message):
    response = admin.post(
        _url("plans"),
        {"name": "AE plan", "currency": "EUR", "effective_from": effective_from},
    )

    assert response.status_code == 400
    assert f"Date &#x27;{effective_from}&#x27; {message}" in response.content.decode()
    assert not CompPlan.unscoped.exists()


def test_plan_date_only_as_iso(personas, admin):
    response = admin.post(
        _url("plans"),
        {"name": "AE plan", "currency": "EUR", "effective_from": "01/02/2026"},
    )

    assert response.status_code == 400
    assert "Date &#x27;01/02/2026&#x27; is not a date as YYYY-MM-DD." in (
        response.content.decode()
    )
    assert not CompPlan.unscoped.exists()


def test_preview_future_month_rejected(admin, preview_plan):
    url = _url("version-preview", version_id=preview_plan.public_id)

    response = admin.get(url + "?period=2999-01")

    assert response.status_code == 400
    assert "Period 2999-01 has not started yet." in response.content.decode()


def test_assignment_before_first_version_rejected(personas, admin):
    plan = make_plan(personas.org.pk)
    _draft(plan, day=D(2024, 1, 1))

    response = admin.post(
        _url("plan-assign", plan_id=plan.public_id),
        {"member": str(personas.rep1.public_id), "start_date": "2023-12-01"},
    )

    assert response.status_code == 400
    assert (
        "Start date 2023-12-01 is before the plan&#x27;s first version, effective "
        "from 2024-01-01." in response.content.decode()
    )
    assert not PlanAssignment.unscoped.exists()
