"""Statements a run stores from compensation.direct, compared with the engine's.

A run calculates the members on simple plans (flat and tiered components
only, their own whole-cent deals in the plan's currency) straight into the
stored block and snapshot entries. Every other member goes to the engine.
Each test here stores a period twice: once with the direct path, and once
with ``direct.calculate`` patched to return every plan to the engine. It then
compares the stored block bytes, digest, total and line count, the
statement's total, currency and notes, and the snapshot's total, currency,
deal entries and other lines, byte for byte.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
import pytest
from django.db import connection

from activity.models import Deal
from compensation import direct, line_blocks, selectors
from compensation import services as calculation
from compensation import services_disputes as disputes
from compensation import services_statements as services
from compensation.engine.types import CalculationError
from compensation.engine.types import Statement as EngineStatement
from compensation.fields import compact_json_loads
from compensation.models import (
    CalculationRun,
    DealOwnerShare,
    PlanAssignment,
    Statement,
    StatementLine,
    StatementLineBlock,
    StatementSnapshot,
)
from goals.calendar import month_range
from goals.models import Quota
from spm.models import Membership
from tests.compensation.conftest import (
    ATTAINMENT_TIERS,
    assign,
    flat_component,
    make_draw,
    make_plan,
    make_rate,
    publish_version,
    won_deal,
)
from tests.factories import MembershipFactory
from tests.goals.conftest import make_quota

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="compensation.direct runs on PostgreSQL only.",
)

D = dt.date
MARCH = month_range(D(2024, 3, 1))
AMOUNT_BANDS = [
    {"from": "0", "to": "10000", "rate": "0.05"},
    {"from": "10000", "to": "20000", "rate": "0.08"},
    {"from": "20000", "rate": "0.12"},
]


def _tiered(name: str, basis: str, mode: str, tiers: list, **params) -> dict:
    return {
        "name": name,
        "kind": "tiered",
        "params": {"basis": basis, "mode": mode, "tiers": tiers, **params},
    }


# Stored results ---------------------------------------------------------------


def _calculate(personas) -> CalculationRun:
    run = services.statements_calculate(
        organization=personas.org, period=MARCH, actor=personas.admin.user
    )
    assert run.status == CalculationRun.Status.DONE
    return run


def _snapshot_columns() -> dict[int, tuple]:
    """Return each March statement's latest snapshot as stored, raw bytes included."""
    quote = connection.ops.quote_name
    meta = StatementSnapshot._meta
    columns = ", ".join(
        quote(meta.get_field(name).column)
        for name in ("statement", "total", "currency", "deals", "other_lines")
    )
    sql = (
        f"SELECT {columns} FROM {quote(meta.db_table)} "
        f"WHERE {quote(meta.get_field('statement').column)} = ANY(%s::bigint[]) "
        f"ORDER BY {quote(meta.get_field('run').column)}, id"
    )
    ids = list(
        Statement.objects.filter(period_start=MARCH.start).values_list("pk", flat=True)
    )
    latest = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids])
        for statement_id, total, currency, deals, other_lines in cursor.fetchall():
            latest[statement_id] = (total, currency, bytes(deals), bytes(other_lines))
    return latest


def _stored() -> dict[str, dict[str, object]]:
    """Return what the runs stored for March, by member name, field by field."""
    snapshots = _snapshot_columns()
    blocks = {
        block.statement_id: block
        for block in StatementLineBlock.unscoped.filter(
            statement__period_start=MARCH.start
        )
    }
    row_fields = ("order", "kind", *line_blocks.FIELDS)
    result = {}
    statements = Statement.objects.filter(period_start=MARCH.start).select_related(
        "member"
    )
    for statement in statements:
        block = blocks.get(statement.pk)
        snapshot = snapshots.get(statement.pk)
        rows = StatementLine.objects.filter(statement=statement).order_by("order")
        result[str(statement.member)] = {
            "statement.total": statement.total,
            "statement.currency": statement.currency,
            "statement.notes": statement.notes,
            "block.lines": None if block is None else bytes(block.lines),
            "block.digest": None if block is None else bytes(block.digest),
            "block.total": None if block is None else block.total,
            "block.line_count": None if block is None else block.line_count,
            "block.clawback_deal_ids": None
            if block is None
            else block.clawback_deal_ids,
            "snapshot.total": None if snapshot is None else snapshot[0],
            "snapshot.currency": None if snapshot is None else snapshot[1],
            "snapshot.deals": None if snapshot is None else snapshot[2],
            "snapshot.other_lines": None if snapshot is None else snapshot[3],
            "rows": [tuple(values) for values in rows.values_list(*row_fields)],
        }
    return result


def _assert_same(with_direct: dict, with_engine: dict) -> None:
    assert sorted(with_direct) == sorted(with_engine)
    for member, fields in with_engine.items():
        for name, expected in fields.items():
            found = with_direct[member][name]
            assert found == expected, f"{member}: {name} differs"


@contextlib.contextmanager
def _engine_only(monkeypatch):
    """Send every member to the engine, as before compensation.direct existed."""
    with monkeypatch.context() as patch:
        patch.setattr(direct, "calculate", lambda plans, *args: plans)
        yield


def _direct_spy(monkeypatch) -> list[str]:
    """Record the name of each member whose statement compensation.direct builds."""
    handled = []
    build = direct._statement

    def spy(member, *args):
        handled.append(str(member))
        return build(member, *args)

    monkeypatch.setattr(direct, "_statement", spy)
    return handled


def _both_ways(personas, monkeypatch) -> tuple[dict, dict, list[str], tuple]:
    """Store March with the direct path, then again from scratch with the engine.

    Returns both stored results, the members the direct path built, and the
    two runs' error lists.
    """
    handled = _direct_spy(monkeypatch)
    first = _calculate(personas)
    with_direct = _stored()
    built = list(handled)
    Statement.objects.all().delete()
    with _engine_only(monkeypatch):
        second = _calculate(personas)
    with_engine = _stored()
    assert handled == built, "the engine run went through compensation.direct"
    return with_direct, with_engine, built, (first.errors, second.errors)


def _new_rep(personas, name: str) -> Membership:
    return MembershipFactory(
        organization=personas.org,
        user=None,
        display_name=name,
        role=Membership.Role.REP,
    )


def _deal(owner, personas, amount: str, day: D | None, **changes) -> Deal:
    """Create a won deal of ``owner`` on ``day``, then set ``changes`` on its row.

    ``day`` None leaves the close date empty, so ``stage_changed_at`` dates it.
    """
    deal = won_deal(owner, personas.stages["Won"], amount, day or D(2024, 3, 1))
    if day is None:
        changes["close_date"] = None
    if changes:
        Deal.unscoped.filter(pk=deal.pk).update(**changes)
        deal.refresh_from_db()
    return deal


# A varied organisation, all on simple plans but two -----------------------------


def _varied_organisation(personas) -> tuple[set[str], dict[str, Membership]]:
    """Create about 40 reps on flat and tiered plans with March deals.

    Returns the names of the reps the direct path must calculate, and every
    rep by name. Three reps must go to the engine: the owner of a split deal,
    the other member of that split, and a rep with a euro deal.
    """
    org = personas.org
    zone = ZoneInfo(org.time_zone)
    lost = personas.stages["Lost"]
    reps: dict[str, Membership] = {}

    def rep(name: str, plan) -> Membership:
        member = reps[name] = _new_rep(personas, name)
        assign(member, plan)
        return member

    flat = make_plan(org.pk, "Flat 10%")
    publish_version(flat, [flat_component("0.10")])
    halves = make_plan(org.pk, "Flat 50%")
    publish_version(halves, [flat_component("0.50")])
    eighth = make_plan(org.pk, "Flat 12.5%")
    publish_version(eighth, [flat_component("0.125")])
    nothing = make_plan(org.pk, "Flat 0%")
    publish_version(nothing, [flat_component("0")])
    marginal = make_plan(org.pk, "Marginal bands")
    publish_version(marginal, [_tiered("Bands", "amount", "marginal", AMOUNT_BANDS)])
    retroactive = make_plan(org.pk, "Retroactive bands")
    publish_version(
        retroactive, [_tiered("Bands", "amount", "retroactive", AMOUNT_BANDS)]
    )
    gated = make_plan(org.pk, "Gated bands")
    publish_version(
        gated,
        [_tiered("Gate", "amount", "marginal", AMOUNT_BANDS, threshold="5000")],
    )
    zero_first = make_plan(org.pk, "Zero first band")
    publish_version(
        zero_first,
        [
            _tiered(
                "Kicker",
                "amount",
                "marginal",
                [
                    {"from": "0", "to": "5000", "rate": "0"},
                    {"from": "5000", "rate": "0.10"},
                ],
            )
        ],
    )
    attainment = make_plan(org.pk, "Attainment marginal")
    publish_version(attainment, [ATTAINMENT_TIERS])
    attainment_retro = make_plan(org.pk, "Attainment retroactive")
    publish_version(
        attainment_retro,
        [
            _tiered(
                "Accelerator",
                "attainment",
                "retroactive",
                [
                    {"from": "0", "to": "100", "rate": "0.06"},
                    {"from": "100", "to": "150", "rate": "0.09"},
                    {"from": "150", "rate": "0.13"},
                ],
                threshold="50",
            )
        ],
    )
    mixed = make_plan(org.pk, "Flat and bands")
    publish_version(
        mixed,
        [
            flat_component("0.02", name="Base"),
            _tiered("Bands", "amount", "marginal", AMOUNT_BANDS),
            flat_component("0.01", name="Kicker"),
        ],
    )
    euro = make_plan(org.pk, "Euro flat", currency="EUR")
    publish_version(euro, [flat_component("0.07")])

    # Flat: plain deals, and deals outside March or not won.
    member = rep("Flat plain", flat)
    _deal(member, personas, "10000.00", D(2024, 3, 5))
    _deal(member, personas, "2500.00", D(2024, 3, 20))
    won_deal(member, lost, "7000.00", D(2024, 3, 21))
    _deal(member, personas, "9000.00", D(2024, 4, 1))
    _deal(member, personas, "9000.00", D(2024, 2, 29))
    rep("Flat no deals", flat)
    member = rep("Flat one cent", flat)
    _deal(member, personas, "0.01", D(2024, 3, 1))
    _deal(member, personas, "99999.99", D(2024, 3, 31))
    # Deals of one date are taken in deal id order, so the 18 March deal is
    # created first and gets the lowest id.
    member = rep("Flat same date", flat)
    _deal(member, personas, "300.00", D(2024, 3, 18))
    _deal(member, personas, "100.00", D(2024, 3, 9))
    _deal(member, personas, "200.00", D(2024, 3, 9))
    _deal(member, personas, "50.00", D(2024, 3, 9))
    # Names: empty falls back to the external id, then to the public id.
    member = rep("Flat names", flat)
    _deal(member, personas, "1000.00", D(2024, 3, 4), name="")
    _deal(member, personas, "2000.00", D(2024, 3, 4), name="", external_id="")
    _deal(member, personas, "3000.00", D(2024, 3, 6), name="Zoë's “deal”, 50% off")
    # No close date: the local date of the move to the won stage counts.
    member = rep("Flat midnight", flat)
    _deal(
        member,
        personas,
        "1100.00",
        None,
        stage_changed_at=dt.datetime(2024, 3, 1, 0, 0, tzinfo=zone),
    )
    _deal(
        member,
        personas,
        "1200.00",
        None,
        stage_changed_at=dt.datetime(2024, 3, 31, 23, 59, 59, tzinfo=zone),
    )
    _deal(
        member,
        personas,
        "1300.00",
        None,
        stage_changed_at=dt.datetime(2024, 4, 1, 0, 0, tzinfo=zone),
    )
    _deal(
        member,
        personas,
        "1400.00",
        None,
        stage_changed_at=dt.datetime(2024, 2, 29, 23, 59, 59, tzinfo=zone),
    )
    # A close date wins over a won-stage move in another month.
    _deal(
        member,
        personas,
        "1500.00",
        D(2024, 3, 15),
        stage_changed_at=dt.datetime(2024, 4, 2, 12, 0, tzinfo=zone),
    )

    # Half cents round away from zero: 0.01 x 50% = 0.005 pays 0.01.
    member = rep("Half cents", halves)
    for amount in ("0.01", "0.03", "0.05", "10.01"):
        _deal(member, personas, amount, D(2024, 3, 11))
    member = rep("Eighths", eighth)
    for amount in ("10.04", "99999.99", "0.04", "0.12"):
        _deal(member, personas, amount, D(2024, 3, 12))
    member = rep("Zero rate", nothing)
    _deal(member, personas, "4000.00", D(2024, 3, 8))

    # Amount bands: one deal crosses two bounds, another stays in a band.
    for plan, prefix in ((marginal, "Marginal"), (retroactive, "Retroactive")):
        member = rep(f"{prefix} crossing", plan)
        _deal(member, personas, "8000.00", D(2024, 3, 2))
        _deal(member, personas, "15000.00", D(2024, 3, 14))
        _deal(member, personas, "1000.00", D(2024, 3, 14))
        member = rep(f"{prefix} exact bound", plan)
        _deal(member, personas, "10000.00", D(2024, 3, 3))
        _deal(member, personas, "0.01", D(2024, 3, 4))
        member = rep(f"{prefix} low", plan)
        _deal(member, personas, "999.99", D(2024, 3, 22))
        rep(f"{prefix} no deals", plan)
    member = rep("Gate reached", gated)
    _deal(member, personas, "3000.00", D(2024, 3, 6))
    _deal(member, personas, "2000.00", D(2024, 3, 7))
    member = rep("Gate missed", gated)
    _deal(member, personas, "3000.00", D(2024, 3, 6))
    _deal(member, personas, "1999.99", D(2024, 3, 7))
    member = rep("Zero band crossed", zero_first)
    _deal(member, personas, "4000.00", D(2024, 3, 10))
    _deal(member, personas, "3000.00", D(2024, 3, 11))
    member = rep("Zero band only", zero_first)
    _deal(member, personas, "4999.99", D(2024, 3, 10))

    # Attainment: quotas from goals, crossing 100% within a deal.
    for name, quota, amounts in (
        ("Attainment crossing", "20000.00", ("12000.00", "11000.00")),
        ("Attainment below", "50000.00", ("12000.00",)),
        ("Attainment odd quota", "33333.33", ("33333.33", "0.01", "16666.67")),
    ):
        member = rep(name, attainment)
        make_quota(member, quota, MARCH.start, MARCH.end)
        for day, amount in enumerate(amounts, start=5):
            _deal(member, personas, amount, D(2024, 3, day))
    # A rep who started on 17 March is measured against 15 of the 31 days.
    member = rep("Attainment late starter", attainment)
    Membership.objects.filter(pk=member.pk).update(start_date=D(2024, 3, 17))
    member.refresh_from_db()
    make_quota(member, "30000.00", MARCH.start, MARCH.end)
    _deal(member, personas, "9000.00", D(2024, 3, 20))
    _deal(member, personas, "9000.00", D(2024, 3, 21))
    for name, quota, amounts in (
        ("Retro gate missed", "20000.00", ("4000.00", "5999.99")),
        ("Retro middle tier", "20000.00", ("15000.00", "10000.00")),
        ("Retro top tier", "10000.00", ("9000.00", "7000.00")),
    ):
        member = rep(name, attainment_retro)
        make_quota(member, quota, D(2024, 1, 1), D(2024, 4, 1))
        for day, amount in enumerate(amounts, start=12):
            _deal(member, personas, amount, D(2024, 3, day))
    # Several components: lines follow the dates, then the component order.
    for name, amounts in (
        ("Mixed", ("9000.00", "4000.00", "12000.00")),
        ("Mixed one deal", ("25000.00",)),
    ):
        member = rep(name, mixed)
        for amount in amounts:
            _deal(member, personas, amount, D(2024, 3, 16))
        _deal(member, personas, "500.00", D(2024, 3, 2))
    member = rep("Euro plan", euro)
    _deal(member, personas, "5000.00", D(2024, 3, 19), currency="EUR")
    _deal(member, personas, "333.33", D(2024, 3, 23), currency="EUR")
    member = rep("Blank currency", flat)
    _deal(member, personas, "700.00", D(2024, 3, 26), currency="")
    for index in range(6):
        member = rep(f"Flat batch {index}", flat)
        for day in range(1, 4 + index):
            _deal(member, personas, f"{day * 111}.{index}5", D(2024, 3, day * 2))

    # Plan changes on 1 March and an assignment ending on 31 March leave one
    # plan version over the whole month.
    member = rep("Switched on 1 March", flat)
    PlanAssignment.unscoped.filter(member=member).update(end_date=D(2024, 2, 29))
    assign(member, marginal, start=MARCH.start, end=D(2024, 3, 31))
    _deal(member, personas, "12000.00", D(2024, 3, 1))
    _deal(member, personas, "9000.00", D(2024, 2, 29))
    versioned = make_plan(org.pk, "New version on 1 March")
    publish_version(versioned, [flat_component("0.04")])
    publish_version(
        versioned,
        [flat_component("0.06"), flat_component("0.015", name="Extra")],
        effective_from=MARCH.start,
    )
    member = rep("New version", versioned)
    _deal(member, personas, "4321.09", D(2024, 3, 13))

    simple = set(reps)
    # Members the engine must calculate in the same run.
    member = rep("Split owner", flat)
    other = rep("Split member", flat)
    _deal(other, personas, "800.00", D(2024, 3, 8))
    won_deal(
        member,
        personas.stages["Won"],
        "6000.00",
        D(2024, 3, 8),
        splits=[(member, "70"), (other, "30")],
    )
    member = rep("Euro deal", flat)
    _deal(member, personas, "2000.00", D(2024, 3, 12), currency="EUR")
    make_rate(org.pk, "EUR", "USD", D(2024, 3, 12), "1.0850")
    return simple, reps


@pytest.mark.parametrize("time_zone", ["America/New_York", "Asia/Tokyo"])
def test_run_stores_engine_results(in_org, personas, monkeypatch, time_zone):
    in_org.time_zone = time_zone
    in_org.save(update_fields=["time_zone"])
    simple, reps = _varied_organisation(personas)

    with_direct, with_engine, built, errors = _both_ways(personas, monkeypatch)

    assert sorted(built) == sorted(simple)
    assert errors == ([], [])
    assert len(with_engine) == len(reps)
    _assert_same(with_direct, with_engine)


def test_direct_statements_of_simple_members(in_org, personas):
    in_org.time_zone = "America/New_York"
    in_org.save(update_fields=["time_zone"])
    simple, reps = _varied_organisation(personas)

    results = calculation.calculate_statements(list(reps.values()), MARCH, direct=True)

    for name, member in reps.items():
        result = results[member.pk]
        if name in simple:
            assert isinstance(result, direct.DirectStatement), name
        else:
            assert type(result) is EngineStatement, name


def test_direct_statements_hand_worked(in_org, personas):
    """Check a few stored values by hand, so equal wrong results cannot pass."""
    in_org.time_zone = "America/New_York"
    in_org.save(update_fields=["time_zone"])
    _varied_organisation(personas)
    _calculate(personas)
    stored = _stored()

    # 0.005, 0.015, 0.025 and 5.005 round up: 0.01 + 0.02 + 0.03 + 5.01.
    assert stored["Half cents"]["block.total"] == Decimal("5.07")
    # 1.255 + 12,499.99875 + 0.005 + 0.015: 1.26 + 12,500.00 + 0.01 + 0.02.
    assert stored["Eighths"]["statement.total"] == Decimal("12501.29")
    # 8,000 x 5% = 400. Then 2,000 x 5% + 10,000 x 8% + 3,000 x 12% = 1,260.
    # Then 1,000 x 12% = 120.
    assert stored["Marginal crossing"]["block.total"] == Decimal("1780.00")
    # 24,000 is in the 12% band, so every deal pays 12%.
    assert stored["Retroactive crossing"]["block.total"] == Decimal("2880.00")
    assert stored["Gate missed"]["block.total"] == Decimal("0.00")
    assert stored["Gate missed"]["block.line_count"] == 2
    # 4,000 at 0%, then 1,000 at 0% and 2,000 at 10%.
    assert stored["Zero band crossed"]["block.total"] == Decimal("200.00")
    assert stored["Flat no deals"]["block.lines"] is None
    assert stored["Flat no deals"]["snapshot.deals"] == b"[]"
    assert stored["Euro plan"]["statement.currency"] == "EUR"
    # 5,000.00 x 7% + 333.33 x 7% = 350.00 + 23.33.
    assert stored["Euro plan"]["snapshot.total"] == Decimal("373.33")
    # The won-stage moves at local midnight of 1 March and one second before
    # 1 April count in March, the two just outside do not.
    midnight = compact_json_loads(stored["Flat midnight"]["snapshot.deals"])
    assert [(deal["deal_amount"], deal["credit_date"]) for deal in midnight] == [
        ("1100.00", "2024-03-01"),
        ("1500.00", "2024-03-15"),
        ("1200.00", "2024-03-31"),
    ]
    same_date = orjson.loads(stored["Flat same date"]["block.lines"])
    deal_index = line_blocks.FIELDS.index("deal_id")
    deal_ids = [line[deal_index] for line in same_date]
    assert deal_ids[:3] == sorted(deal_ids[:3])
    names = [
        line[line_blocks.FIELDS.index("deal_name")]
        for line in orjson.loads(stored["Flat names"]["block.lines"])
    ]
    blank = Deal.objects.get(owner__display_name="Flat names", amount=Decimal("2000"))
    named = Deal.objects.get(owner__display_name="Flat names", amount=Decimal("1000"))
    assert names == [named.external_id, str(blank.public_id), "Zoë's “deal”, 50% off"]


# Members the engine must calculate ---------------------------------------------


def _plan_with(personas, components: list[dict], **version_fields):
    plan = make_plan(personas.org.pk, "Case plan")
    publish_version(plan, components, **version_fields)
    return plan


def _split_deal(personas) -> list[Membership]:
    assign(personas.rep1, _plan_with(personas, [flat_component("0.10")]))
    _deal(personas.rep1, personas, "2000.00", D(2024, 3, 3))
    won_deal(
        personas.rep1,
        personas.stages["Won"],
        "10000.00",
        D(2024, 3, 5),
        splits=[(personas.rep1, "60"), (personas.rep3, "40")],
    )
    return [personas.rep1]


def _split_participant(personas) -> list[Membership]:
    assign(personas.rep1, _plan_with(personas, [flat_component("0.10")]))
    _deal(personas.rep1, personas, "5000.00", D(2024, 3, 3))
    won_deal(
        personas.rep3,
        personas.stages["Won"],
        "8000.00",
        D(2024, 3, 8),
        splits=[(personas.rep3, "50"), (personas.rep1, "50")],
    )
    return [personas.rep1]


def _reassigned_share(personas) -> list[Membership]:
    plan = _plan_with(personas, [flat_component("0.10")])
    assign(personas.rep1, plan)
    assign(personas.rep4, plan)
    _deal(personas.rep1, personas, "5000.00", D(2024, 3, 3))
    deal = _deal(personas.rep4, personas, "9000.00", D(2024, 3, 9))
    for position, member in enumerate((personas.rep1, personas.rep4)):
        DealOwnerShare.unscoped.create(
            organization_id=personas.org.pk,
            deal=deal,
            member=member,
            percent=Decimal("50"),
            amount=Decimal("4500.00"),
            rule="split_even",
            position=position,
        )
    return [personas.rep1, personas.rep4]


def _cancelled_deal(personas) -> list[Membership]:
    assign(personas.rep1, _plan_with(personas, [flat_component("0.10")]))
    zone = ZoneInfo(personas.org.time_zone)
    _deal(personas.rep1, personas, "2000.00", D(2024, 3, 3))
    # Cancelled after it closed, and one cancelled before it closed.
    _deal(
        personas.rep1,
        personas,
        "6000.00",
        D(2024, 3, 4),
        archived_at=dt.datetime(2024, 3, 20, 9, 0, tzinfo=zone),
    )
    _deal(
        personas.rep1,
        personas,
        "7000.00",
        D(2024, 3, 6),
        archived_at=dt.datetime(2024, 3, 1, 9, 0, tzinfo=zone),
    )
    return [personas.rep1]


def _other_currency(personas) -> list[Membership]:
    assign(personas.rep1, _plan_with(personas, [flat_component("0.10")]))
    _deal(personas.rep1, personas, "2000.00", D(2024, 3, 3))
    _deal(personas.rep1, personas, "3000.00", D(2024, 3, 12), currency="EUR")
    make_rate(personas.org.pk, "EUR", "USD", D(2024, 3, 12), "1.0850")
    return [personas.rep1]


def _zero_amount(personas) -> list[Membership]:
    assign(personas.rep1, _plan_with(personas, [flat_component("0.10")]))
    _deal(personas.rep1, personas, "2000.00", D(2024, 3, 3))
    _deal(personas.rep1, personas, "0.00", D(2024, 3, 5))
    return [personas.rep1]


def _plan_cap(personas) -> list[Membership]:
    plan = _plan_with(
        personas, [flat_component("0.10")], cap_per_period=Decimal("700.00")
    )
    assign(personas.rep1, plan)
    _deal(personas.rep1, personas, "5000.00", D(2024, 3, 3))
    _deal(personas.rep1, personas, "4000.00", D(2024, 3, 4))
    return [personas.rep1]


def _component_caps(personas) -> list[Membership]:
    plan = _plan_with(
        personas,
        [
            flat_component("0.10", cap_per_deal=Decimal("300.00")),
            {
                **_tiered("Bands", "amount", "marginal", AMOUNT_BANDS),
                "cap_per_period": Decimal("400.00"),
            },
        ],
    )
    assign(personas.rep1, plan)
    _deal(personas.rep1, personas, "5000.00", D(2024, 3, 3))
    _deal(personas.rep1, personas, "4000.00", D(2024, 3, 4))
    return [personas.rep1]


def _spiff(personas) -> list[Membership]:
    spiff = {
        "name": "Spring",
        "kind": "spiff",
        "params": {"starts_on": "2024-03-01", "ends_on": "2024-03-31", "amount": "300"},
    }
    assign(personas.rep1, _plan_with(personas, [flat_component("0.10"), spiff]))
    _deal(personas.rep1, personas, "5000.00", D(2024, 3, 3))
    return [personas.rep1]


def _bonus(personas) -> list[Membership]:
    bonus = {
        "name": "Club",
        "kind": "bonus",
        "params": {"milestones": [{"attainment": "100", "amount": "2000"}]},
    }
    assign(personas.rep1, _plan_with(personas, [flat_component("0.10"), bonus]))
    make_quota(personas.rep1, "4000.00", MARCH.start, MARCH.end)
    _deal(personas.rep1, personas, "5000.00", D(2024, 3, 3))
    return [personas.rep1]


def _plan_change(personas) -> list[Membership]:
    plan = _plan_with(personas, [flat_component("0.10")])
    publish_version(plan, [flat_component("0.12")], effective_from=D(2024, 3, 15))
    assign(personas.rep1, plan)
    _deal(personas.rep1, personas, "5000.00", D(2024, 3, 3))
    _deal(personas.rep1, personas, "4000.00", D(2024, 3, 24))
    return [personas.rep1]


def _late_assignment(personas) -> list[Membership]:
    plan = _plan_with(personas, [_tiered("Bands", "amount", "marginal", AMOUNT_BANDS)])
    assign(personas.rep1, plan, start=D(2024, 3, 10))
    _deal(personas.rep1, personas, "5000.00", D(2024, 3, 3))
    _deal(personas.rep1, personas, "8000.00", D(2024, 3, 24))
    return [personas.rep1]


def _draw(personas) -> list[Membership]:
    assign(personas.rep1, _plan_with(personas, [flat_component("0.10")]))
    make_draw(personas.rep1, "1500.00", D(2024, 3, 1))
    _deal(personas.rep1, personas, "5000.00", D(2024, 3, 3))
    return [personas.rep1]


def _clawback_term(personas) -> list[Membership]:
    plan = _plan_with(
        personas, [flat_component("0.10")], clawback="full", clawback_term_months=6
    )
    assign(personas.rep1, plan)
    _deal(personas.rep1, personas, "5000.00", D(2024, 3, 3))
    return [personas.rep1]


def _year_schedule(personas) -> list[Membership]:
    plan = _plan_with(
        personas,
        [flat_component("0.10")],
        year_payout_tiers=[
            {"from": "0", "rate": "0.75"},
            {"from": "100000", "rate": "1"},
        ],
    )
    assign(personas.rep1, plan)
    _deal(personas.rep1, personas, "5000.00", D(2024, 3, 3))
    return [personas.rep1]


def _paid_on_payment(personas) -> list[Membership]:
    plan = _plan_with(personas, [flat_component("0.10")], payout_timing="on_payment")
    assign(personas.rep1, plan)
    _deal(personas.rep1, personas, "5000.00", D(2024, 3, 3))
    return [personas.rep1]


ENGINE_CASES = {
    "split deal": _split_deal,
    "split participant": _split_participant,
    "reassigned lead share": _reassigned_share,
    "cancelled deal": _cancelled_deal,
    "other currency": _other_currency,
    "zero amount": _zero_amount,
    "plan cap": _plan_cap,
    "component caps": _component_caps,
    "spiff": _spiff,
    "bonus": _bonus,
    "plan change": _plan_change,
    "late assignment": _late_assignment,
    "draw": _draw,
    "clawback term": _clawback_term,
    "year schedule": _year_schedule,
    "paid on payment": _paid_on_payment,
}


@pytest.mark.parametrize("case", list(ENGINE_CASES))
def test_engine_members_stored_alike(in_org, personas, monkeypatch, case):
    in_org.time_zone = "America/New_York"
    in_org.save(update_fields=["time_zone"])
    engine_members = ENGINE_CASES[case](personas)
    # Rob is on a simple plan in every case, so the run uses both paths.
    control = make_plan(in_org.pk, "Control plan")
    publish_version(control, [flat_component("0.10")])
    assign(personas.rep2, control)
    _deal(personas.rep2, personas, "3000.00", D(2024, 3, 7))
    members = [*engine_members, personas.rep2]

    results = calculation.calculate_statements(members, MARCH, direct=True)

    for member in engine_members:
        assert type(results[member.pk]) is EngineStatement, str(member)
    assert isinstance(results[personas.rep2.pk], direct.DirectStatement)

    with_direct, with_engine, built, errors = _both_ways(personas, monkeypatch)

    assert built == [str(personas.rep2)]
    assert errors == ([], [])
    _assert_same(with_direct, with_engine)


# Errors -------------------------------------------------------------------------


@pytest.mark.parametrize("quota_currency", [None, "EUR"])
def test_attainment_error_same_message(in_org, personas, monkeypatch, quota_currency):
    assign(personas.rep1, _plan_with(personas, [ATTAINMENT_TIERS]))
    _deal(personas.rep1, personas, "5000.00", D(2024, 3, 3))
    if quota_currency is not None:
        make_quota(
            personas.rep1, "20000.00", MARCH.start, MARCH.end, currency=quota_currency
        )
    handled = _direct_spy(monkeypatch)

    found = calculation.calculate_statements([personas.rep1], MARCH, direct=True)
    with _engine_only(monkeypatch):
        expected = calculation.calculate_statements([personas.rep1], MARCH)

    error = found[personas.rep1.pk]
    assert isinstance(error, CalculationError)
    assert isinstance(expected[personas.rep1.pk], CalculationError)
    assert str(error) == str(expected[personas.rep1.pk])
    if quota_currency is None:
        # The direct path raised the missing quota itself.
        assert handled == [str(personas.rep1)]
    with_direct, with_engine, _, errors = _both_ways(personas, monkeypatch)
    assert errors[0] == errors[1]
    assert len(errors[0]) == 1
    _assert_same(with_direct, with_engine)


# Drafts whose lines are rows ----------------------------------------------------


def _disputed_rerun(personas, monkeypatch, engine: bool) -> tuple[dict, dict]:
    """Run March, dispute Rita's first line, change her second deal and run again.

    The second run uses the engine alone when ``engine`` is set. Returns the
    stored results and the disputed line's values after the second run.
    """
    _calculate(personas)
    rita = Statement.objects.get(member=personas.rep1, period_start=MARCH.start)
    first = selectors.statement_lines(rita)[0]
    line = disputes.dispute_line(rita, first.public_id)
    dispute = disputes.dispute_raise(
        statement=rita, line=line, raiser=personas.rep1, body="Check the amount."
    )
    Deal.objects.filter(owner=personas.rep1, amount=Decimal("2500.00")).update(
        amount=Decimal("3100.00")
    )
    handled = _direct_spy(monkeypatch)
    if engine:
        with _engine_only(monkeypatch):
            _calculate(personas)
    else:
        _calculate(personas)
    assert (str(personas.rep1) in handled) is not engine

    dispute.refresh_from_db()
    assert dispute.line_id == line.pk
    assert not StatementLineBlock.objects.filter(statement=rita).exists()
    disputed_line = StatementLine.objects.filter(pk=line.pk).values(
        "order", "kind", *line_blocks.FIELDS
    )
    return _stored(), disputed_line.get()


def test_disputed_draft_rerun_alike(in_org, personas, monkeypatch):
    plan = _plan_with(
        personas,
        [
            flat_component("0.10"),
            _tiered("Bands", "amount", "marginal", AMOUNT_BANDS),
        ],
    )
    assign(personas.rep1, plan)
    assign(personas.rep2, plan)
    _deal(personas.rep1, personas, "10000.00", D(2024, 3, 5))
    _deal(personas.rep1, personas, "2500.00", D(2024, 3, 20))
    _deal(personas.rep2, personas, "4000.00", D(2024, 3, 12))

    with_direct, disputed_direct = _disputed_rerun(personas, monkeypatch, engine=False)
    Statement.objects.all().delete()
    Deal.objects.filter(owner=personas.rep1, amount=Decimal("3100.00")).update(
        amount=Decimal("2500.00")
    )
    with_engine, disputed_engine = _disputed_rerun(personas, monkeypatch, engine=True)

    assert disputed_direct == disputed_engine
    rita = with_engine[str(personas.rep1)]
    # 10,000 x 10%, 10,000 x 5%, 3,100 x 10%, 3,100 x 8%.
    assert [row[-1] for row in rita["rows"]] == [
        Decimal("1000.00"),
        Decimal("500.00"),
        Decimal("310.00"),
        Decimal("248.00"),
    ]
    _assert_same(with_direct, with_engine)


def _change_before_store(monkeypatch, change) -> None:
    """Run ``change`` after a run's calculation and before its store.

    It acts as a CRM sync that lands while a batch is calculated.
    """
    store = services.store_statements

    def changed_then_stored(*args, **kwargs):
        change()
        return store(*args, **kwargs)

    monkeypatch.setattr(services, "store_statements", changed_then_stored)


def _disputed_rita(personas, components: list[dict]) -> Statement:
    plan = _plan_with(personas, components)
    assign(personas.rep1, plan)
    make_quota(personas.rep1, "20000.00", MARCH.start, MARCH.end)
    _deal(personas.rep1, personas, "10000.00", D(2024, 3, 5))
    _deal(personas.rep1, personas, "2500.00", D(2024, 3, 20))
    _calculate(personas)
    rita = Statement.objects.get(member=personas.rep1, period_start=MARCH.start)
    line = disputes.dispute_line(rita, selectors.statement_lines(rita)[0].public_id)
    disputes.dispute_raise(
        statement=rita, line=line, raiser=personas.rep1, body="Check the amount."
    )
    return rita


def test_disputed_rows_match_snapshot_after_change(in_org, personas, monkeypatch):
    rita = _disputed_rita(personas, [flat_component("0.10")])
    _change_before_store(
        monkeypatch,
        lambda: Deal.objects.filter(
            owner=personas.rep1, amount=Decimal("2500.00")
        ).update(amount=Decimal("3100.00")),
    )

    run = _calculate(personas)

    rita.refresh_from_db()
    snapshot = StatementSnapshot.objects.get(statement=rita, run=run)
    rows = StatementLine.objects.filter(statement=rita).order_by("order")
    # The run read 10,000.00 and 2,500.00 at 10%, before the change.
    assert [line.amount for line in rows] == [Decimal("1000.00"), Decimal("250.00")]
    assert rita.total == Decimal("1250.00")
    assert snapshot.total == Decimal("1250.00")
    assert [deal["deal_amount"] for deal in snapshot.deals] == ["10000.00", "2500.00"]


def test_disputed_member_error_spares_run(in_org, personas, monkeypatch):
    _disputed_rita(personas, [ATTAINMENT_TIERS])
    plan = make_plan(personas.org.pk, "Rob's plan")
    publish_version(plan, [flat_component("0.10")])
    assign(personas.rep2, plan)
    _deal(personas.rep2, personas, "4000.00", D(2024, 3, 12))
    _change_before_store(
        monkeypatch,
        lambda: Quota.unscoped.filter(member=personas.rep1).delete(),
    )

    run = _calculate(personas)

    assert run.status == CalculationRun.Status.DONE
    assert run.error_count == 0
    rob = Statement.objects.get(member=personas.rep2, period_start=MARCH.start)
    assert rob.total == Decimal("400.00")


# One member recalculated ---------------------------------------------------------


def test_one_member_store_matches_run(in_org, personas, monkeypatch):
    in_org.time_zone = "Asia/Tokyo"
    in_org.save(update_fields=["time_zone"])
    simple, reps = _varied_organisation(personas)
    run = _calculate(personas)
    member = reps["Retroactive crossing"]
    Deal.objects.filter(owner=member, amount=Decimal("15000.00")).update(
        amount=Decimal("9000.00")
    )
    handled = _direct_spy(monkeypatch)

    services._store_member(member, MARCH, run, personas.admin.user)

    assert handled == [str(member)]
    after_one = _stored()[str(member)]
    Statement.objects.all().delete()
    with _engine_only(monkeypatch):
        _calculate(personas)
    expected = _stored()[str(member)]
    # 18,000 is in the 8% band, so every deal pays 8%.
    assert expected["block.total"] == Decimal("1440.00")
    _assert_same({str(member): after_one}, {str(member): expected})


# Approved statements -------------------------------------------------------------


def _locked_rerun(personas, monkeypatch, engine: bool) -> tuple[dict, list]:
    """Run March, approve Rita's statement, raise her second deal and run again.

    The second run uses the engine alone when ``engine`` is set. Returns the
    stored March results and the adjustment lines of later periods.
    """
    _calculate(personas)
    rita = Statement.objects.get(member=personas.rep1, period_start=MARCH.start)
    services.statement_approve(
        statement=rita, approver=personas.manager, actor=personas.manager.user
    )
    Deal.objects.filter(owner=personas.rep1, amount=Decimal("2500.00")).update(
        amount=Decimal("26000.00")
    )
    handled = _direct_spy(monkeypatch)
    if engine:
        with _engine_only(monkeypatch):
            _calculate(personas)
    else:
        _calculate(personas)
    assert (str(personas.rep1) in handled) is not engine
    adjustments = StatementLine.objects.filter(
        kind=StatementLine.Kind.ADJUSTMENT
    ).values_list(
        "statement__member_id",
        "statement__period_start",
        "line_type",
        "explanation",
        "reason",
        "amount",
        "adjusts_period_start",
    )
    return _stored(), list(adjustments)


def test_approved_statement_adjusted_alike(in_org, personas, monkeypatch):
    plan = _plan_with(
        personas,
        [_tiered("Bands", "amount", "retroactive", AMOUNT_BANDS)],
    )
    assign(personas.rep1, plan)
    _deal(personas.rep1, personas, "10000.00", D(2024, 3, 5))
    _deal(personas.rep1, personas, "2500.00", D(2024, 3, 20))

    with_direct, adjusted_direct = _locked_rerun(personas, monkeypatch, False)
    Statement.objects.all().delete()
    Deal.objects.filter(owner=personas.rep1, amount=Decimal("26000.00")).update(
        amount=Decimal("2500.00")
    )
    with_engine, adjusted_engine = _locked_rerun(personas, monkeypatch, True)

    # 12,500 x 8% = 1,000.00 was approved. 36,000 x 12% = 4,320.00 now.
    assert [row[-2] for row in adjusted_engine] == [Decimal("3320.00")]
    assert adjusted_direct == adjusted_engine
    _assert_same(with_direct, with_engine)
