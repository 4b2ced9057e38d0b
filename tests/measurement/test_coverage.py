"""Pipeline coverage: in-period qualified pipeline over the quota still to go."""

from decimal import Decimal

from measurement.coverage import pipeline_coverage


def test_coverage_counts_only_in_period_pipeline():
    # Quota 2,000,000 with 400,000 won. Open qualified deals: 4,800,000 close
    # this quarter; 1,000,000 next quarter, 300,000 past due and 900,000 in
    # unqualified stages are left out by the caller. Trailing win rate 22%.
    coverage = pipeline_coverage(
        quota=Decimal("2000000"),
        bookings=Decimal("400000"),
        in_period_pipeline=Decimal("4800000"),
        win_rate=Decimal("0.22"),
    )
    assert coverage.remaining == Decimal("1600000")
    assert coverage.ratio == Decimal("3.00")
    assert coverage.required == Decimal("4.55")
    assert coverage.expected_close == Decimal("1056000.00")
    assert coverage.expected_share == Decimal("66")
    assert coverage.at_risk


def test_coverage_met_when_quota_reached():
    coverage = pipeline_coverage(
        quota=Decimal("100"),
        bookings=Decimal("120"),
        in_period_pipeline=Decimal("50"),
        win_rate=Decimal("0.3"),
    )
    assert coverage.met
    assert coverage.ratio is None
    assert not coverage.at_risk


def test_coverage_without_win_rate_has_no_requirement():
    coverage = pipeline_coverage(
        quota=Decimal("100"),
        bookings=Decimal("0"),
        in_period_pipeline=Decimal("250"),
        win_rate=None,
    )
    assert coverage.ratio == Decimal("2.50")
    assert coverage.required is None
    assert not coverage.at_risk
