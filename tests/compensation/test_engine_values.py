"""Engine values built without their ``__init__`` equal those built with it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
from decimal import Decimal

import pytest

from activity.models import Deal
from compensation import selectors
from compensation.crediting import DealInput, FxRates, SplitInput, credit_deal
from compensation.engine import Assignment, Component, StatementLine
from compensation.engine.plans import Segment
from compensation.engine.types import Credit, frozen_instance
from goals.calendar import month_range
from tests.compensation.builders import D, terms
from tests.compensation.conftest import won_deal

MARCH = month_range(D(2024, 3, 1))


def assert_as_built_by_init(value) -> None:
    """Assert that ``value`` has every field, as ``cls(**fields)`` would build it."""
    cls = type(value)
    names = [field.name for field in dataclasses.fields(cls)]
    rebuilt = cls(**{name: getattr(value, name) for name in names})

    assert sorted(vars(value)) == sorted(names)
    assert vars(value) == vars(rebuilt)
    assert repr(value) == repr(rebuilt)
    assert value == rebuilt
    # A value with a dict field (Credit.fields) is unhashable either way.
    try:
        expected_hash = hash(rebuilt)
    except TypeError:
        with pytest.raises(TypeError):
            hash(value)
    else:
        assert hash(value) == expected_hash


def _line_values(**changes) -> dict:
    values = {
        "kind": "commission",
        "amount": Decimal("12.50"),
        "currency": "USD",
        "explanation": "125.00 x 10% = 12.50",
        "gross": Decimal("12.50"),
        "component": "Commission",
        "component_id": 4,
        "plan_version": "AE v1",
        "plan_version_id": 2,
        "deal_id": 9,
        "deal_name": "Acme",
        "date": D(2024, 3, 5),
        "base": Decimal("125.00"),
        "rate": Decimal("0.10"),
    }
    return {**values, **changes}


def test_frozen_instance_equals_init():
    line = frozen_instance(StatementLine, _line_values())

    assert_as_built_by_init(line)
    assert line == StatementLine(**_line_values())


def test_frozen_instance_stays_frozen():
    line = frozen_instance(StatementLine, _line_values())

    with pytest.raises(dataclasses.FrozenInstanceError):
        line.amount = Decimal(0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        del line.amount


def test_frozen_instance_replace_and_pickle():
    line = frozen_instance(StatementLine, _line_values())

    changed = dataclasses.replace(line, amount=Decimal("1.00"))

    assert changed.amount == Decimal("1.00")
    assert changed.gross == Decimal("12.50")
    assert line.amount == Decimal("12.50")
    assert pickle.loads(pickle.dumps(line)) == line


def _segment():
    plan = terms(version_id=2)
    return Segment(
        start=D(2024, 3, 1),
        end=D(2024, 4, 1),
        period_start=D(2024, 3, 1),
        period_end=D(2024, 4, 1),
        terms=plan,
        assignment=Assignment(D(2024, 1, 1), None, (plan,)),
    )


COMPONENT = Component(name="Commission", kind="flat", spec=None, id=4)


def test_segment_line_fills_defaults():
    segment = _segment()

    line = segment.line(
        COMPONENT, "bonus", amount=Decimal("-3.00"), explanation="Bonus"
    )

    assert_as_built_by_init(line)
    assert line == StatementLine(
        kind="bonus",
        amount=Decimal("-3.00"),
        currency="USD",
        explanation="Bonus",
        component="Commission",
        component_id=4,
        plan_version=segment.terms.label,
        plan_version_id=2,
    )
    # The gross defaults to the amount, as StatementLine.__post_init__ sets it.
    assert line.gross == Decimal("-3.00")
    assert line.deal_id is None
    assert line.deal_name == ""


def test_segment_line_keeps_given_values():
    segment = _segment()

    line = segment.line(
        COMPONENT,
        "commission",
        amount=Decimal("5.00"),
        gross=Decimal("7.00"),
        explanation="Capped",
        deal_id=9,
        deal_name="Acme",
        date=D(2024, 3, 5),
        base=Decimal("70.00"),
        rate=Decimal("0.1"),
    )

    assert_as_built_by_init(line)
    assert (line.amount, line.gross) == (Decimal("5.00"), Decimal("7.00"))
    assert str(line.rate) == "0.1"


@pytest.mark.parametrize(
    "values",
    [
        {"explanation": "no amount"},
        {"amount": Decimal(1)},
        {"amount": Decimal(1), "explanation": "x", "currency": "EUR"},
        {"amount": Decimal(1), "explanation": "x", "dael_id": 3},
    ],
)
def test_segment_line_rejects_bad_fields(values):
    with pytest.raises(TypeError, match="Segment.line"):
        _segment().line(COMPONENT, "commission", **values)


EUR_USD = FxRates({("EUR", "USD", D(2024, 3, 28)): Decimal("1.0833")})


@pytest.mark.parametrize(
    ("amount", "currency", "percents", "document"),
    [
        ("1234.56", "USD", (), "deal"),
        ("0.00", "USD", (), "deal"),
        ("100", "USD", (), "deal"),
        ("75.10", "USD", (), "credit_note"),
        ("100.01", "EUR", ("33.3333", "33.3333", "33.3333"), "deal"),
        ("99.99", "USD", ("75", "25"), "credit_note"),
    ],
)
def test_credits_as_built_by_init(amount, currency, percents, document):
    deal = DealInput(
        deal_id=1,
        name="Acme",
        amount=Decimal(amount),
        currency=currency,
        owner_id=1,
        splits=tuple(
            SplitInput(member, Decimal(percent))
            for member, percent in enumerate(percents, start=1)
        ),
        close_date=D(2024, 3, 28),
        document=document,
        fields={"segment": "SMB"},
    )

    credits = credit_deal(
        deal,
        currency="USD",
        rates=EUR_USD,
        time_zone="UTC",
        default_currency="USD",
    )

    assert len(credits) == max(len(percents), 1)
    for credit in credits:
        assert isinstance(credit, Credit)
        assert_as_built_by_init(credit)
        assert credit.fields["segment"] == "SMB"


def test_loaded_deals_match_orm_loader(march):
    personas = march
    won = personas.stages["Won"]
    won_deal(
        personas.rep1,
        won,
        "999.99",
        D(2024, 3, 7),
        splits=[(personas.rep1, "60"), (personas.rep2, "40")],
    )
    # Archived after it closed, so it is a cancellation.
    won_deal(
        personas.rep2,
        won,
        "50.00",
        D(2024, 3, 8),
        archived_at=dt.datetime(2024, 3, 20, 12, tzinfo=dt.UTC),
    )
    undated = won_deal(personas.rep3, won, "75", D(2024, 3, 9))
    Deal.unscoped.filter(pk=undated.pk).update(
        close_date=None, stage_changed_at=dt.datetime(2024, 3, 31, 23, tzinfo=dt.UTC)
    )
    member_ids = [personas.rep1.pk, personas.rep2.pk, personas.rep3.pk]

    loaded = selectors.won_deals_of_members(
        member_ids, MARCH.start, MARCH.end, "America/New_York"
    )
    expected, cancellations = selectors.won_deals(
        member_ids, MARCH.start, MARCH.end, "America/New_York"
    )

    assert len(loaded.deals) == 7
    assert loaded.deals == expected
    assert loaded.cancellations == cancellations
    assert [len(deal.splits) for deal in loaded.deals].count(2) == 1
    for deal in loaded.deals:
        assert_as_built_by_init(deal)
