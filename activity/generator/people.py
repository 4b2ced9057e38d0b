"""Teams and the sales organisation: a head of sales, managers and reps."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from activity.generator import catalog
from activity.generator.context import Run, insert
from spm.models import Membership, Team

REPS_PER_TEAM = 5
SOURCE = "demo"


@dataclass
class RepProfile:
    """A rep and the traits that make their numbers differ from their peers'.

    Each factor multiplies the organisation-wide baseline: ``win_factor`` the
    chance of winning, ``size_factor`` deal size, ``cycle_factor`` days to
    close, ``activity_factor`` activity volume, ``capacity`` the share of new
    deals. ``response_minutes`` is the median delay before a first touch on an
    assigned lead.
    """

    membership: Membership
    team_index: int
    win_factor: float
    size_factor: float
    cycle_factor: float
    activity_factor: float
    capacity: float
    response_minutes: float
    # Positions in the generated account list of the accounts this rep owns.
    account_indexes: list[int] = field(default_factory=list)


@dataclass
class SalesOrganization:
    teams: list[Team]
    head: Membership
    managers: list[Membership]
    reps: list[RepProfile]


def person_names(run: Run, count: int) -> list[tuple[str, str]]:
    """Return ``count`` distinct (first, last) name pairs."""
    pairs = [
        (first, last) for first in catalog.FIRST_NAMES for last in catalog.LAST_NAMES
    ]
    if count > len(pairs):
        raise ValueError(
            f"Invalid rep count: {count} people need names, but the name lists "
            f"give only {len(pairs)}. Generate fewer reps."
        )
    return run.rng.sample(pairs, count)


def team_names(count: int) -> list[str]:
    names = catalog.TEAM_NAMES
    return [
        names[i % len(names)] + (f" {i // len(names) + 1}" if i >= len(names) else "")
        for i in range(count)
    ]


def create_sales_organization(run: Run, *, reps: int) -> SalesOrganization:
    """Create teams of about five reps, each with a manager under one head."""
    if reps < 1:
        raise ValueError(f"Invalid rep count {reps}: generate at least one rep.")
    team_count = math.ceil(reps / REPS_PER_TEAM)
    names = person_names(run, 1 + team_count + reps)
    organization = run.organization
    teams = insert(
        Team, [Team(organization=organization, name=n) for n in team_names(team_count)]
    )

    def member(index: int, role: str, **extra) -> Membership:
        first, last = names[index]
        domain = f"{organization.slug}.example"
        return Membership(
            organization=organization,
            display_name=f"{first} {last}",
            email=f"{first}.{last}@{domain}".lower(),
            role=role,
            external_source=SOURCE,
            external_id=f"M{index + 1:04d}",
            **extra,
        )

    [head] = insert(Membership, [member(0, Membership.Role.MANAGER)])
    managers = insert(
        Membership,
        [
            member(1 + i, Membership.Role.MANAGER, reports_to=head, team=team)
            for i, team in enumerate(teams)
        ],
    )
    rep_rows = [
        member(
            1 + team_count + i,
            Membership.Role.REP,
            reports_to=managers[i % team_count],
            team=teams[i % team_count],
        )
        for i in range(reps)
    ]
    profiles = [
        _profile(run, rep, i % team_count)
        for i, rep in enumerate(insert(Membership, rep_rows))
    ]
    return SalesOrganization(teams, head, managers, profiles)


def _profile(run: Run, membership: Membership, team_index: int) -> RepProfile:
    rng = run.rng
    return RepProfile(
        membership=membership,
        team_index=team_index,
        win_factor=rng.uniform(0.6, 1.5),
        size_factor=rng.uniform(0.7, 1.4),
        cycle_factor=rng.uniform(0.8, 1.3),
        activity_factor=rng.uniform(0.6, 1.6),
        capacity=rng.uniform(0.7, 1.3),
        response_minutes=rng.lognormvariate(math.log(45), 1.0),
    )
