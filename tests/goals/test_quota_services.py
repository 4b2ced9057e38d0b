"""Quota writes: the grid save, the copy from the previous period, the audit log."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from goals import services
from goals.models import Quota
from goals.services import QuotaCell, QuotaError
from spm.models import AuditLog
from tests.goals.conftest import Q1_END, Q1_START, Q4_START, make_quota

D = dt.date


def _save(personas, cells, metric="bookings", start=Q1_START, end=Q1_END):
    return services.quotas_save(
        organization=personas.org,
        actor=personas.admin.user,
        period_start=start,
        period_end=end,
        metric=metric,
        rows=cells,
    )


def _amounts(metric="bookings", start=Q1_START) -> dict[str, Decimal]:
    quotas = Quota.objects.filter(metric=metric, period_start=start)
    return {str(quota.member or quota.team): quota.amount for quota in quotas}


def test_save_creates_quotas_with_audit(in_org, personas):
    result = _save(
        personas,
        [
            QuotaCell(personas.rep1, Decimal("100000")),
            QuotaCell(personas.rep1.team, Decimal("250000.50")),
        ],
    )

    assert (result.created, result.updated, result.deleted) == (2, 0, 0)
    assert _amounts() == {
        "Rita Rep": Decimal("100000.00"),
        "East": Decimal("250000.50"),
    }
    quota = Quota.objects.get(member=personas.rep1)
    assert quota.period_end == Q1_END
    assert quota.currency == "USD"
    entry = AuditLog.objects.get(action="quota.create", object_id=quota.public_id)
    assert entry.actor == personas.admin.user
    assert entry.old is None
    assert entry.new == {
        "member": "Rita Rep",
        "team": None,
        "metric": "bookings",
        "period_start": "2024-01-01",
        "period_end": "2024-04-01",
        "amount": "100000.00",
        "currency": "USD",
    }


def test_update_audits_old_and_new(in_org, personas):
    quota = make_quota(personas.rep1, "100000.00")

    result = _save(personas, [QuotaCell(personas.rep1, Decimal("120000"))])

    assert result.updated == 1
    quota.refresh_from_db()
    assert quota.amount == Decimal("120000.00")
    entry = AuditLog.objects.get(action="quota.update")
    assert entry.object_id == str(quota.public_id)
    assert entry.old["amount"] == "100000.00"
    assert entry.new["amount"] == "120000.00"


def test_emptied_cell_deletes(in_org, personas):
    make_quota(personas.rep1, "100000.00")

    result = _save(personas, [QuotaCell(personas.rep1, None)])

    assert result.deleted == 1
    assert not Quota.objects.exists()
    entry = AuditLog.objects.get(action="quota.delete")
    assert entry.old["amount"] == "100000.00"
    assert entry.new is None


def test_only_changed_cells_audited(in_org, personas):
    make_quota(personas.rep1, "100000.00")
    make_quota(personas.rep2, "90000.00")

    result = _save(
        personas,
        [
            QuotaCell(personas.rep1, Decimal("100000.00")),
            QuotaCell(personas.rep2, Decimal("95000")),
            QuotaCell(personas.rep3, None),
        ],
    )

    assert (result.updated, result.unchanged) == (1, 2)
    assert list(AuditLog.objects.values_list("action", flat=True)) == ["quota.update"]


def test_one_bad_cell_saves_nothing(in_org, personas):
    make_quota(personas.rep2, "90000.00")

    with pytest.raises(QuotaError) as caught:
        _save(
            personas,
            [
                QuotaCell(personas.rep1, Decimal("100000")),
                QuotaCell(personas.rep2, Decimal("-5"), "-5"),
                QuotaCell(personas.rep3, Decimal("1.005"), "1.005"),
            ],
        )

    messages = [str(problem) for problem in caught.value.problems]
    assert messages == [
        "Rob Rep: “-5” must not be negative",
        "Remy Rep: “1.005” has more than 2 decimal places",
    ]
    assert _amounts() == {"Rob Rep": Decimal("90000.00")}
    assert not AuditLog.objects.exists()


def test_deal_count_must_be_whole(in_org, personas):
    with pytest.raises(QuotaError, match="whole number of deals"):
        _save(personas, [QuotaCell(personas.rep1, Decimal("2.5"))], "deal_count")

    _save(personas, [QuotaCell(personas.rep1, Decimal("12"))], "deal_count")

    quota = Quota.objects.get(metric="deal_count")
    assert quota.amount == Decimal("12")
    assert quota.currency == ""


def test_period_must_be_a_quota_period(in_org, personas):
    # The organisation sets quotas per quarter, so a month is rejected.
    with pytest.raises(ValueError, match="not one of the organisation's quota"):
        _save(
            personas,
            [QuotaCell(personas.rep1, Decimal("1"))],
            start=D(2024, 1, 1),
            end=D(2024, 2, 1),
        )


def test_other_length_quota_blocks_save(in_org, personas):
    # A January quota left from when quotas were set per month.
    make_quota(personas.rep1, "30000.00", D(2024, 1, 1), D(2024, 2, 1))

    with pytest.raises(QuotaError, match="set for 2024-01-01 to 2024-01-31"):
        _save(personas, [QuotaCell(personas.rep1, Decimal("100000"))])

    assert Quota.objects.count() == 1


def test_member_of_other_organisation_rejected(in_org, personas):
    with pytest.raises(ValueError, match="not in Acme"):
        _save(personas, [QuotaCell(personas.other_rep, Decimal("1"))])


# Copy from the previous period ----------------------------------------------


def _copy(personas, metric="bookings"):
    return services.quotas_copy_previous(
        organization=personas.org,
        actor=personas.admin.user,
        period_start=Q1_START,
        period_end=Q1_END,
        metric=metric,
    )


def test_copy_fills_empty_cells_only(in_org, personas):
    east = personas.rep1.team
    make_quota(personas.rep1, "80000.00", Q4_START, Q1_START)
    make_quota(personas.rep2, "70000.00", Q4_START, Q1_START)
    make_quota(east, "160000.00", Q4_START, Q1_START)
    # rep2 already has a Q1 quota, which the copy must keep.
    make_quota(personas.rep2, "75000.00")

    result = _copy(personas)

    assert (result.copied, result.kept) == (2, 1)
    assert result.previous.label == "FY2023 Q4"
    assert _amounts() == {
        "Rita Rep": Decimal("80000.00"),
        "Rob Rep": Decimal("75000.00"),
        "East": Decimal("160000.00"),
    }
    entries = AuditLog.objects.filter(action="quota.copy")
    assert sorted(entry.new["amount"] for entry in entries) == [
        "160000.00",
        "80000.00",
    ]


def test_copy_twice_copies_nothing_more(in_org, personas):
    make_quota(personas.rep1, "80000.00", Q4_START, Q1_START)
    _copy(personas)

    result = _copy(personas)

    assert (result.copied, result.kept) == (0, 1)
    assert Quota.objects.filter(period_start=Q1_START).count() == 1


def test_copy_skips_inactive_and_other_metric(in_org, personas):
    make_quota(personas.rep1, "80000.00", Q4_START, Q1_START)
    make_quota(personas.rep2, "5", Q4_START, Q1_START, metric="deal_count")
    personas.rep1.is_active = False
    personas.rep1.save()

    result = _copy(personas)

    assert result.copied == 0
    assert not Quota.objects.filter(period_start=Q1_START).exists()


def test_copy_skips_quota_in_other_currency(in_org, personas):
    make_quota(personas.rep1, "80000.00", Q4_START, Q1_START, currency="EUR")

    result = _copy(personas)

    assert (result.copied, result.skipped_currency) == (0, 1)
