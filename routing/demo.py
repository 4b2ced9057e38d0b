"""Lead routing and qualification for a generated organisation.

``create_demo_routing`` sets up territories, pools, a published rule set,
scoring rules and thresholds with the routing services, as an admin would on
the configuration pages. ``receive_demo_leads`` then puts the generated
leads through lead intake in the order they arrived: normalisation and
qualification for every lead, and for the recent ones a routing decision
at the time each was received. So the lead pages, the backtest and the lead
model have history to show.

The generator already chose who worked each lead. After routing, the
lead's calls and emails move to the rep that routing chose, and the lead
gets back the status the generator gave it. A lead that routing sent to the
fallback queue is taken from the queue by its rep's manager, unless the
generator left it unassigned: those leads, and the few submitted through
``lead_intake`` at the end, wait in the queue.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import defaultdict
from dataclasses import dataclass

from activity.models import Activity, Lead
from routing.config_cache import config_scope, config_version
from routing.configuration import (
    RuleSpec,
    pool_create,
    pool_member_add,
    rule_set_publish,
    territory_create,
)
from routing.engine.decision import IntakeMatches
from routing.models import (
    Assignment,
    LeadQualification,
    Pool,
    RoutingRule,
    SlaAction,
    Territory,
)
from routing.qualification import lead_qualify, qualification_store
from routing.qualification_services import (
    qualification_settings_update,
    scoring_rule_create,
)
from routing.reassignment import lead_reassign
from routing.services import LEAD_FIELDS, lead_intake, lead_route
from routing.sla import response_timers_sweep
from spm.models import Membership, Organization, User

TERRITORIES = {
    "North America": ["US", "CA"],
    "Europe": ["GB", "DE", "FR", "NL"],
    "Asia Pacific": ["AU", "IN", "JP"],
}
# Business minutes to the first touch on a North America lead. A miss is
# escalated to the rep's manager rather than reassigned, so that closing
# the timers of past leads does not move leads the reps already worked.
NORTH_AMERICA_SLA_MINUTES = 240
MQL_THRESHOLD, SQL_THRESHOLD = 40, 60
# (name, kind, field, operator, value, points)
SCORING_RULES = [
    ("Referral", "engagement", "source", "equals", "Referral", 40),
    ("Webinar or event", "engagement", "source", "in", ["Webinar", "Event"], 25),
    ("Web form", "engagement", "source", "equals", "Web form", 15),
    ("Paid search", "engagement", "source", "equals", "Paid search", 10),
    ("North America", "fit", "country", "in", ["US", "CA"], 30),
    ("Western Europe", "fit", "country", "in", ["GB", "DE", "FR", "NL"], 20),
    ("Asia Pacific", "fit", "country", "in", ["AU", "JP"], 10),
    ("Test submission", "disqualify", "company", "contains", "test", 0),
]
COMPETITOR_DOMAINS = ["rivalsales.example"]
# Leads received in this many weeks before the demo's base date are routed.
ROUTED_WEEKS = 8
# Routing takes this many milliseconds per lead, at random, in the replay.
ROUTING_MILLISECONDS = (15, 120)
# Configuration versions of replays on databases without version triggers.
_REPLAY_VERSIONS = itertools.count(-1, -1)
# Leads submitted now through lead_intake. Brazil, Mexico and Chile are in
# no territory, so the first three wait in the fallback queue, and the last
# two are disqualified at intake (a disposable address, a test company).
LIVE_LEADS = [
    ("Ana", "Souza", "ana.souza@auroralojas.example", "Aurora Lojas", "Brazil"),
    ("Diego", "Ramos", "diego.ramos@norteagro.example", "Norte Agro", "Mexico"),
    ("Camila", "Rojas", "camila.rojas@andesfoods.example", "Andes Foods", "Chile"),
    ("Sam", "Jones", "sam.jones@mailinator.com", "Jones Consulting", "US"),
    ("Alex", "Kim", "alex.kim@qa-test.example", "QA Test Corp", "Canada"),
]


@dataclass(frozen=True)
class ReceivedLeads:
    """Counts of the leads that went through intake, for the command's output."""

    received: int
    # Of the received leads: routed in the replay, and of those, routed to a
    # rep or taken from the fallback queue by a manager.
    routed: int
    assigned: int
    taken_from_queue: int
    # Leads in the fallback queue now, and leads disqualified at intake.
    queued: int
    disqualified: int


def _teams(reps: list[Membership]) -> list[list[Membership]]:
    """Group the reps by team, in the order of their first rep."""
    teams: dict[int | None, list[Membership]] = {}
    for rep in reps:
        teams.setdefault(rep.team_id, []).append(rep)
    return list(teams.values())


def _pools(
    organization: Organization, actor: User, reps: list[Membership]
) -> dict[str, Pool]:
    """Create one pool per territory, each with a different method."""
    teams = _teams(reps)
    north_america = teams[0] + (teams[2] if len(teams) > 2 else [])
    europe = teams[1 % len(teams)]
    asia_pacific = teams[-1]

    pools = {
        "North America": pool_create(
            organization=organization,
            actor=actor,
            name="North America",
            method=Pool.Method.ROUND_ROBIN,
            sla_minutes=NORTH_AMERICA_SLA_MINUTES,
            sla_action=SlaAction.ESCALATE,
        ),
        "Europe": pool_create(
            organization=organization,
            actor=actor,
            name="Europe",
            method=Pool.Method.WEIGHTED,
        ),
        "Asia Pacific": pool_create(
            organization=organization,
            actor=actor,
            name="Asia Pacific",
            method=Pool.Method.CAPACITY,
        ),
    }
    for rep in north_america:
        pool_member_add(pool=pools["North America"], member=rep, actor=actor)
    # Weights 3, 2, 1, 1, ...: the first reps of the team take more leads.
    for index, rep in enumerate(europe):
        weight = max(1, 3 - index)
        pool_member_add(pool=pools["Europe"], member=rep, actor=actor, weight=weight)
    # Daily caps 4, 3, 2, 2, ...: shares in proportion to them.
    for index, rep in enumerate(asia_pacific):
        cap = max(2, 4 - index)
        pool_member_add(
            pool=pools["Asia Pacific"], member=rep, actor=actor, cap_per_day=cap
        )
    return pools


def _rule_set(organization: Organization, actor: User, pools: dict[str, Pool]) -> None:
    territories = {
        name: territory_create(
            organization=organization,
            actor=actor,
            name=name,
            conditions=[{"field": "country", "operator": "in", "value": countries}],
        )
        for name, countries in TERRITORIES.items()
    }
    rules = [
        RuleSpec(name="Existing accounts", action=RoutingRule.Action.ACCOUNT_OWNER),
        *(_territory_rule(territories[name], pools[name]) for name in TERRITORIES),
        RuleSpec(name="Everything else", action=RoutingRule.Action.FALLBACK),
    ]
    rule_set_publish(
        organization=organization,
        actor=actor,
        rules=rules,
        note="Account owner first, then territory pools, then the fallback queue.",
    )


def _territory_rule(territory: Territory, pool: Pool) -> RuleSpec:
    return RuleSpec(
        name=territory.name,
        action=RoutingRule.Action.POOL,
        territory=territory,
        pool=pool,
    )


def create_demo_routing(
    *, organization: Organization, actor: User, reps: list[Membership]
) -> None:
    """Create the routing and qualification configuration.

    Call it inside the organisation's tenant context, before
    ``receive_demo_leads``.
    """
    pools = _pools(organization, actor, reps)
    _rule_set(organization, actor, pools)
    for name, kind, field, operator, value, points in SCORING_RULES:
        scoring_rule_create(
            organization=organization,
            actor=actor,
            name=name,
            kind=kind,
            field=field,
            operator=operator,
            value=value,
            points=points,
        )
    qualification_settings_update(
        organization=organization,
        actor=actor,
        mql_threshold=MQL_THRESHOLD,
        sql_threshold=SQL_THRESHOLD,
        competitor_domains=COMPETITOR_DOMAINS,
    )


# Leads -----------------------------------------------------------------------


@dataclass
class _Worked:
    """The generator's owner, assignment time and status of a lead, kept for
    after routing."""

    owner: Membership | None
    assigned_at: dt.datetime | None
    status: str


def _intake_fields(lead: Lead) -> dict:
    return {
        name: getattr(lead, name)
        for name in LEAD_FIELDS
        if getattr(lead, name) not in (None, "", {})
    }


def _receive(
    lead: Lead, organization: Organization, *, route: bool
) -> IntakeMatches | None:
    """Store a generated lead as intake stores a new one.

    The stored fields become the normalised ones (ISO country codes, the
    domain from the email), and the lead is received when it was created.
    A lead to ``route`` loses its generated owner and status, and waits for
    routing. Returns what qualification matched, for routing, or None when
    the lead is not routed.
    """
    qualified = lead_qualify(organization=organization, fields=_intake_fields(lead))
    for name in LEAD_FIELDS:
        if name in qualified.fields:
            setattr(lead, name, qualified.fields[name])
    lead.received_at = lead.created_at
    route = route and qualified.route
    if route:
        lead.owner = None
        lead.assigned_at = None
        lead.status = Lead.Status.NEW
        lead.routing_status = Lead.RoutingStatus.PENDING
    lead.save()
    qualification_store(lead=lead, qualified=qualified)
    if not route:
        return None
    return IntakeMatches(
        customer_account_id=_pk(qualified.customer_account),
        known_contact_id=_pk(qualified.known_contact),
        domain_account_ids=qualified.domain_account_ids,
    )


def _pk(row) -> int | None:
    return row.pk if row is not None else None


def _take_from_queue(lead: Lead, worked: _Worked) -> bool:
    """Let the generator's rep's manager give a queued lead to that rep."""
    rep = worked.owner
    manager = rep.reports_to if rep is not None else None
    if rep is None or manager is None or worked.assigned_at is None:
        return False
    lead_reassign(
        lead_id=lead.pk,
        member=rep,
        actor=manager,
        expected_owner_id=None,
        reason="Taken from the fallback queue",
        now=worked.assigned_at,
    )
    return True


def _restore_work(worked: dict[int, _Worked]) -> None:
    """Give each routed lead its generated status, and its activities to its owner."""
    by_status: dict[str, list[int]] = defaultdict(list)
    for lead_id, outcome in worked.items():
        by_status[outcome.status].append(lead_id)
    for status, lead_ids in by_status.items():
        Lead.objects.filter(pk__in=lead_ids).update(status=status)

    by_owner: dict[int, list[int]] = defaultdict(list)
    owners = Lead.objects.filter(pk__in=list(worked), owner__isnull=False)
    for lead_id, owner_id in owners.values_list("pk", "owner_id"):
        by_owner[owner_id].append(lead_id)
    for owner_id, lead_ids in by_owner.items():
        others = Activity.objects.filter(lead_id__in=lead_ids).exclude(
            owner_id=owner_id
        )
        others.update(owner_id=owner_id)


def _submit_live_leads(organization: Organization) -> int:
    """Send LIVE_LEADS through ``lead_intake`` and route them now.

    Intake sends the routing task only once the transaction commits, which
    never happens when a test rolls the demo back. So the leads are routed
    here, and the task, when it runs, finds them routed and leaves them.
    """
    for first, last, email, company, country in LIVE_LEADS:
        fields = {
            "first_name": first,
            "last_name": last,
            "email": email,
            "company": company,
            "country": country,
            "source": "Web form",
        }
        result = lead_intake(
            organization=organization,
            fields=fields,
            render=lambda lead: {"id": str(lead.public_id)},
        )
        if result.lead is not None:
            lead_route(lead_id=result.lead.pk)
    return len(LIVE_LEADS)


def _replay_scope(organization: Organization):
    """Return a configuration scope that serves every lead of the replay.

    The replay changes no configuration, so values loaded for its first lead
    hold for the last. SQLite has no version triggers, so the scope gets a
    negative version of its own, which no other unit of work uses.
    """
    version = config_version(organization.pk)
    if version is None:
        version = next(_REPLAY_VERSIONS)
    return config_scope(organization.pk, version)


def receive_demo_leads(
    *, organization: Organization, today: dt.date, seed: int
) -> ReceivedLeads:
    """Put the generated leads through intake, oldest first, and route the recent.

    Every lead is normalised and qualified, so the lead model has outcomes
    to learn from. Leads received in the ROUTED_WEEKS before ``today`` are
    routed too. Older ones keep their generated owner, with an empty
    routing status, like leads assigned before the rule set existed.
    Response timers due before ``today`` are then closed as the sweeper
    would have closed them.

    Call it inside the organisation's tenant context, after
    ``create_demo_routing``.
    """
    rng = random.Random(seed)
    start_of_today = dt.datetime.combine(today, dt.time(), organization.zoneinfo)
    routed_since = start_of_today - dt.timedelta(weeks=ROUTED_WEEKS)
    worked: dict[int, _Worked] = {}
    counts: dict[str, int] = defaultdict(int)
    leads = Lead.objects.select_related("owner__reports_to").order_by(
        "created_at", "external_id"
    )
    with _replay_scope(organization):
        for lead in leads:
            counts["received"] += 1
            outcome = _Worked(lead.owner, lead.assigned_at, lead.status)
            route = lead.created_at >= routed_since
            matches = _receive(lead, organization, route=route)
            if matches is None:
                continue
            delay = dt.timedelta(milliseconds=rng.randint(*ROUTING_MILLISECONDS))
            assignment = lead_route(
                lead_id=lead.pk, matches=matches, now=lead.received_at + delay
            )
            worked[lead.pk] = outcome
            if assignment.outcome == Assignment.Outcome.ASSIGNED:
                counts["assigned"] += 1
            elif _take_from_queue(lead, outcome):
                counts["taken_from_queue"] += 1
        _restore_work(worked)
        counts["received"] += _submit_live_leads(organization)

    response_timers_sweep(now=start_of_today)
    return ReceivedLeads(
        received=counts["received"],
        routed=len(worked),
        assigned=counts["assigned"],
        taken_from_queue=counts["taken_from_queue"],
        queued=Lead.objects.filter(routing_status=Lead.RoutingStatus.QUEUED).count(),
        disqualified=LeadQualification.objects.filter(
            status=LeadQualification.Status.DISQUALIFIED
        ).count(),
    )
