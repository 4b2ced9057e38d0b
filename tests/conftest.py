"""Shared fixtures: two organisations with personas of every role."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.cache import cache

from spm.models import Membership, Organization
from spm.tenancy import tenant_context
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    PipelineFactory,
    TeamFactory,
    UserFactory,
    default_stages,
)

pytest_plugins = ["tests.worker"]

# The lead model's gradient boosting runs an OpenMP thread per core in each
# pytest-xdist process, so on two cores the processes fought over them: the
# model tests took 50 s in two processes, and 17 s with one thread each.
# OpenMP reads this when scikit-learn is first imported, which no test
# module does at import time.
os.environ.setdefault("OMP_NUM_THREADS", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MAVEN_DIR = SHARED_DATA / "maven-crm-sales-opportunities"
PASSWORD = "pw-test-1234"


@pytest.fixture(autouse=True)
def _empty_cache():
    """Start each test with an empty cache, so rate-limit counts do not carry over."""
    cache.clear()
    yield


@pytest.fixture
def maven_dir() -> Path:
    if not (MAVEN_DIR / "sales_pipeline.csv").exists():
        pytest.skip(f"Maven CRM export not found at {MAVEN_DIR}")
    return MAVEN_DIR


@dataclass
class Personas:
    """Organisation ``org`` with this reporting tree, plus ``other_org``.

    admin
    vp (manager)
      manager (manager) -> rep1, rep2
      rep3
    other_manager (manager) -> rep4
    outsider: admin of ``other_org`` with rep ``other_rep``
    """

    org: Organization
    other_org: Organization
    admin: Membership
    vp: Membership
    manager: Membership
    rep1: Membership
    rep2: Membership
    rep3: Membership
    other_manager: Membership
    rep4: Membership
    outsider: Membership
    other_rep: Membership
    stages: dict
    other_stages: dict


def _member(org, role, name, reports_to=None, team=None, with_login=True):
    return MembershipFactory(
        organization=org,
        user=UserFactory(email=f"{name.lower().replace(' ', '.')}@{org.slug}.test")
        if with_login
        else None,
        display_name=name,
        role=role,
        reports_to=reports_to,
        team=team,
    )


@pytest.fixture
def personas(db) -> Personas:
    org = OrganizationFactory(name="Acme", slug="acme")
    other_org = OrganizationFactory(name="Globex", slug="globex")
    east = TeamFactory(organization=org, name="East")
    west = TeamFactory(organization=org, name="West")
    role = Membership.Role

    admin = _member(org, role.ADMIN, "Ada Admin")
    vp = _member(org, role.MANAGER, "Vera VP")
    manager = _member(org, role.MANAGER, "Max Manager", reports_to=vp, team=east)
    rep1 = _member(org, role.REP, "Rita Rep", reports_to=manager, team=east)
    rep2 = _member(org, role.REP, "Rob Rep", reports_to=manager, team=east)
    rep3 = _member(org, role.REP, "Remy Rep", reports_to=vp, team=west)
    other_manager = _member(org, role.MANAGER, "Olga Other", team=west)
    rep4 = _member(org, role.REP, "Rex Rep", reports_to=other_manager, team=west)

    outsider = _member(other_org, role.ADMIN, "Otto Outsider")
    other_rep = _member(other_org, role.REP, "Oona Rep", reports_to=outsider)

    stages = default_stages(PipelineFactory(organization=org))
    other_stages = default_stages(PipelineFactory(organization=other_org))
    return Personas(
        org,
        other_org,
        admin,
        vp,
        manager,
        rep1,
        rep2,
        rep3,
        other_manager,
        rep4,
        outsider,
        other_rep,
        stages,
        other_stages,
    )


@pytest.fixture
def in_org(personas):
    """Run the test body with ``personas.org`` as the current organisation."""
    with tenant_context(personas.org):
        yield personas.org


def login(client, membership: Membership):
    client.login(email=membership.user.email, password=PASSWORD)
    return client
