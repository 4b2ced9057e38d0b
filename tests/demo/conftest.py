"""Fixtures for the generator and demo command tests: small generated tenants."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Count, Sum

from activity.generator import GeneratedSummary, generate_organization_data
from activity.models import Deal
from spm.models import Organization
from spm.tenancy import tenant_context
from tests.factories import OrganizationFactory

BASE_DATE = dt.date(2025, 6, 16)
# Small enough to generate in about a second on SQLite.
SMALL = {"reps": 6, "deals": 400, "activities": 3000, "leads": 80}


def generate(organization: Organization, **options) -> GeneratedSummary:
    arguments = {**SMALL, "today": BASE_DATE, **options}
    return generate_organization_data(organization=organization, **arguments)


def won_by_rep(organization: Organization) -> list[tuple[str, int, object]]:
    """Return (rep name, deals won, bookings) per rep, sorted by name."""
    with tenant_context(organization):
        rows = (
            Deal.objects.filter(stage__is_won=True)
            .values("owner__display_name")
            .annotate(won=Count("id"), bookings=Sum("amount"))
            .order_by("owner__display_name")
        )
        return [(r["owner__display_name"], r["won"], r["bookings"]) for r in rows]


@pytest.fixture
def new_york_org(db) -> Organization:
    return OrganizationFactory(
        name="Generated", slug="generated", time_zone="America/New_York"
    )


@pytest.fixture
def small_tenant(new_york_org) -> GeneratedSummary:
    return generate(new_york_org)
