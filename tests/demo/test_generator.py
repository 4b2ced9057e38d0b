"""The data generator: shape, consistency and determinism of generated tenants."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.db.models import Count, Max, Min, Q

from activity.models import (
    Account,
    Activity,
    Contact,
    Deal,
    DealProduct,
    DealSplit,
    DealStageChange,
    Lead,
    Pipeline,
    Stage,
)
from spm.models import Membership, Team
from spm.tenancy import tenant_context
from tests.demo.conftest import BASE_DATE, generate, won_by_rep
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def test_summary_counts_match_rows(small_tenant):
    with tenant_context(small_tenant.organization):
        assert Team.objects.count() == small_tenant.teams == 2
        assert Membership.objects.count() == 1 + 2 + 6
        assert Account.objects.count() == small_tenant.accounts == 80
        assert Contact.objects.count() == small_tenant.contacts
        assert Deal.objects.count() == small_tenant.deals == 400
        assert DealProduct.objects.count() == 400
        assert DealStageChange.objects.count() == small_tenant.stage_changes
        assert DealSplit.objects.count() == small_tenant.splits
        assert Activity.objects.count() == small_tenant.activities == 3000
        assert Lead.objects.count() == small_tenant.leads == 80
    assert small_tenant.won + small_tenant.lost + small_tenant.open == 400


def test_outcomes_match_stage_flags(small_tenant):
    with tenant_context(small_tenant.organization):
        deals = Deal.objects.all()
        assert deals.filter(stage__is_won=True).count() == small_tenant.won
        lost = deals.filter(stage__is_closed=True, stage__is_won=False)
        assert lost.count() == small_tenant.lost
        assert deals.filter(stage__is_closed=False).count() == small_tenant.open


def test_sales_team_reporting_tree(small_tenant):
    head = small_tenant.head
    assert head.role == Membership.Role.MANAGER
    assert head.reports_to_id is None
    for manager in small_tenant.managers:
        assert manager.role == Membership.Role.MANAGER
        assert manager.reports_to_id == head.pk
        assert manager.team_id is not None
    managers_by_team = {m.team_id: m.pk for m in small_tenant.managers}
    for rep in small_tenant.reps:
        assert rep.role == Membership.Role.REP
        assert rep.team_id is not None
        assert rep.reports_to_id == managers_by_team[rep.team_id]
    names = [m.display_name for m in [head, *small_tenant.managers, *small_tenant.reps]]
    assert len(set(names)) == len(names)


def test_teams_of_about_five_reps(new_york_org):
    summary = generate(new_york_org, reps=12, deals=50, activities=100, leads=5)
    assert summary.teams == 3
    sizes = Counter(rep.team_id for rep in summary.reps)
    assert sorted(sizes.values()) == [4, 4, 4]


def test_pipeline_has_seven_stages(small_tenant):
    with tenant_context(small_tenant.organization):
        pipeline = Pipeline.objects.get()
        stages = list(
            Stage.objects.filter(pipeline=pipeline).values_list(
                "name", "probability", "is_closed", "is_won"
            )
        )
    assert pipeline.is_default
    assert stages == [
        ("Prospecting", Decimal("0.1"), False, False),
        ("Qualification", Decimal("0.2"), False, False),
        ("Demo", Decimal("0.4"), False, False),
        ("Proposal", Decimal("0.6"), False, False),
        ("Negotiation", Decimal("0.8"), False, False),
        ("Closed Won", Decimal("1"), True, True),
        ("Closed Lost", Decimal("0"), True, False),
    ]


def test_same_seed_gives_same_data(db):
    first = OrganizationFactory(slug="first", time_zone="America/New_York")
    second = OrganizationFactory(slug="second", time_zone="America/New_York")
    generate(first, seed=11)
    generate(second, seed=11)

    assert won_by_rep(first) == won_by_rep(second)
    assert _activity_mix(first) == _activity_mix(second)
    assert _lead_statuses(first) == _lead_statuses(second)
    assert _first_and_last_change(first) == _first_and_last_change(second)


def test_other_seed_gives_other_data(db):
    first = OrganizationFactory(slug="first", time_zone="America/New_York")
    second = OrganizationFactory(slug="second", time_zone="America/New_York")
    generate(first, seed=11)
    generate(second, seed=12)
    assert won_by_rep(first) != won_by_rep(second)


def _activity_mix(organization) -> list[tuple[str, str, int]]:
    with tenant_context(organization):
        rows = (
            Activity.objects.values_list("owner__display_name", "type")
            .annotate(count=Count("id"))
            .order_by("owner__display_name", "type")
        )
        return list(rows)


def _lead_statuses(organization) -> dict[str, int]:
    with tenant_context(organization):
        return dict(Counter(Lead.objects.values_list("status", flat=True)))


def _first_and_last_change(organization):
    with tenant_context(organization):
        return DealStageChange.objects.aggregate(
            first=Min("changed_at"), last=Max("changed_at")
        )


def test_split_amounts_add_up_to_deal_amount(new_york_org):
    summary = generate(new_york_org, deals=1000, activities=0, leads=0)
    assert summary.splits > 0
    with tenant_context(new_york_org):
        splits = defaultdict(list)
        for split in DealSplit.objects.select_related("deal"):
            splits[split.deal].append(split)
    assert len(splits) * 2 == summary.splits
    for deal, rows in splits.items():
        assert sum(row.amount for row in rows) == deal.amount
        assert sum(row.percent for row in rows) == 100
        assert deal.owner_id in {row.member_id for row in rows}


def test_line_amount_is_unit_price_times_quantity(small_tenant):
    with tenant_context(small_tenant.organization):
        lines = list(DealProduct.objects.select_related("deal", "product"))
    assert len(lines) == 400
    for line in lines:
        assert line.amount == line.deal.amount
        assert line.unit_price * line.quantity == line.amount
        assert line.amount == line.amount.quantize(Decimal("0.01"))
        assert line.unit_price <= line.product.list_price


def test_stage_history_matches_deal(small_tenant):
    zone = small_tenant.organization.zoneinfo
    with tenant_context(small_tenant.organization):
        changes = defaultdict(list)
        for change in DealStageChange.objects.order_by("changed_at", "id"):
            changes[change.deal_id].append(change)
        deals = list(Deal.objects.select_related("stage"))

    for deal in deals:
        history = changes[deal.pk]
        assert history[0].from_stage_id is None
        assert history[-1].to_stage_id == deal.stage_id
        assert deal.stage_changed_at == history[-1].changed_at
        for before, after in zip(history, history[1:], strict=False):
            assert after.from_stage_id == before.to_stage_id
            assert after.changed_at > before.changed_at
        assert history[0].changed_at.astimezone(zone).date() == deal.created_on
        if deal.stage.is_closed:
            closing_day = history[-1].changed_at.astimezone(zone).date()
            assert closing_day == deal.close_date


def test_won_share_of_closed_deals_near_thirty_percent(new_york_org):
    summary = generate(new_york_org, reps=12, deals=2500, activities=0, leads=0)
    share = summary.won / (summary.won + summary.lost)
    assert 0.25 <= share <= 0.35


def test_old_deals_closed_and_recent_ones_open(small_tenant):
    year_ago = BASE_DATE - dt.timedelta(days=365)
    with tenant_context(small_tenant.organization):
        old = Deal.objects.filter(created_on__lt=year_ago)
        open_deals = Deal.objects.filter(stage__is_closed=False)
        assert old.count() > 0
        assert not old.filter(stage__is_closed=False).exists()
        assert open_deals.count() > 0
        assert not open_deals.filter(close_date__lt=BASE_DATE).exists()


def test_reps_differ_in_win_rate(new_york_org):
    generate(new_york_org, reps=12, deals=2500, activities=0, leads=0)
    with tenant_context(new_york_org):
        closed = Deal.objects.filter(stage__is_closed=True)
        rows = closed.values("owner").annotate(
            closed=Count("id"), won=Count("id", filter=Q(stage__is_won=True))
        )
        rates = [row["won"] / row["closed"] for row in rows]
    assert max(rates) - min(rates) > 0.15


def test_nothing_happens_on_or_after_base_date(small_tenant):
    zone = small_tenant.organization.zoneinfo
    end = dt.datetime.combine(BASE_DATE, dt.time(), tzinfo=zone)
    with tenant_context(small_tenant.organization):
        assert not Activity.objects.filter(occurred_at__gte=end).exists()
        assert not DealStageChange.objects.filter(changed_at__gte=end).exists()
        assert not Lead.objects.filter(created_at__gte=end).exists()
        assert not Deal.objects.filter(created_on__gte=BASE_DATE).exists()
        closed = Deal.objects.filter(stage__is_closed=True)
        assert not closed.filter(close_date__gte=BASE_DATE).exists()


def test_activities_in_working_hours_on_weekdays(small_tenant):
    zone = small_tenant.organization.zoneinfo
    with tenant_context(small_tenant.organization):
        times = list(Activity.objects.values_list("occurred_at", flat=True))
    assert len(times) == 3000
    for moment in times:
        local = moment.astimezone(zone)
        assert local.weekday() < 5, local
        assert 9 <= local.hour < 18, local


def test_deal_activities_fall_within_deal_life(small_tenant):
    zone = small_tenant.organization.zoneinfo
    with tenant_context(small_tenant.organization):
        activities = list(
            Activity.objects.filter(deal__isnull=False).select_related("deal")
        )
    assert len(activities) > 1000
    for activity in activities:
        day = activity.occurred_at.astimezone(zone).date()
        assert day >= activity.deal.created_on
        assert day <= activity.deal.close_date
        assert activity.account_id == activity.deal.account_id
        assert activity.owner_id == activity.deal.owner_id


def test_activity_types_all_present(small_tenant):
    with tenant_context(small_tenant.organization):
        types = set(Activity.objects.values_list("type", flat=True))
    assert types == {"call", "email", "meeting", "note", "task"}


def test_lead_response_follows_assignment(small_tenant):
    with tenant_context(small_tenant.organization):
        leads = list(Lead.objects.all())
        first_touch = dict(
            Activity.objects.filter(lead__isnull=False)
            .values_list("lead_id")
            .annotate(first=Min("occurred_at"))
        )
        touch_owner = dict(
            Activity.objects.filter(lead__isnull=False).values_list(
                "lead_id", "owner_id"
            )
        )
    assert len(first_touch) > 40
    for lead in leads:
        if lead.owner_id is None:
            assert lead.status == Lead.Status.NEW
            assert lead.assigned_at is None
            continue
        assert lead.assigned_at >= lead.created_at
        if lead.pk not in first_touch:
            assert lead.status == Lead.Status.NEW
            continue
        assert first_touch[lead.pk] > lead.assigned_at
        assert touch_owner[lead.pk] == lead.owner_id
        assert lead.status != Lead.Status.NEW
        if lead.status == Lead.Status.CONVERTED:
            assert lead.converted_at > first_touch[lead.pk]


def test_rejects_organization_with_deals(small_tenant):
    with pytest.raises(ValueError, match="already has a pipeline or deals"):
        generate(small_tenant.organization)
    with tenant_context(small_tenant.organization):
        assert Deal.objects.count() == 400
