"""Decide where one lead goes: the live rules top down, first match wins.

A rule matches when the lead meets its territory's conditions and its own.
Then its action decides:

- account_owner: the owner of the lead's account (by domain, then name).
  With no such account, no owner, or an owner who is unavailable, the rule
  does not apply and the next rule is tried.
- pool: the pool's next available rep (routing/engine/pools.py). When every
  rep is unavailable, the lead goes to the fallback queue.
- member: that member, or the fallback queue when they are unavailable.
- fallback: the fallback queue.

A lead that no rule takes goes to the fallback queue. ``trace`` records
each rule tried and why it did or did not apply.

A dry run (``decide(..., dry_run=True)``) makes the same decision without
locking or advancing any pool's rotation, for previews of a lead that is
not stored (routing/engine/preview.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from django.db.models import Subquery

from activity.models import Account, Contact, Lead
from routing.config_cache import cached
from routing.engine import availability
from routing.engine.accounts import account_for_lead
from routing.engine.conditions import conditions_match
from routing.engine.pools import Simulation, candidate, pool_pick
from routing.engine.value import expected_value
from routing.models import (
    Assignment,
    LeadQualification,
    Pool,
    RoutingRule,
    RuleSetVersion,
)
from spm.models import Membership

ASSIGNED = Assignment.Outcome.ASSIGNED
QUEUED = Assignment.Outcome.QUEUED


@dataclass
class Decision:
    outcome: str
    member: Membership | None = None
    version: RuleSetVersion | None = None
    rule: RoutingRule | None = None
    pool_id: int | None = None
    method: str = ""
    reason: str = ""
    candidates: list[dict] = field(default_factory=list)
    trace: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class IntakeMatches:
    """The matches of intake's qualification for a lead, sent to its routing task."""

    customer_account_id: int | None = None
    known_contact_id: int | None = None
    # The accounts on the lead's domain, or None when intake did not read them.
    domain_account_ids: list[int] | None = None

    def as_message(self) -> dict:
        return asdict(self)

    @classmethod
    def from_message(cls, message: dict | None) -> IntakeMatches | None:
        return cls(**message) if message is not None else None


def live_rules() -> list[RoutingRule]:
    """Return the rules of the highest published version, in order, in one query.

    Inside a configuration scope the list is shared, so callers must not
    change it.
    """
    return cached("live_rules", _live_rules_load)


def _live_rules_load() -> list[RoutingRule]:
    latest = RuleSetVersion.objects.order_by("-number").values("pk")[:1]
    return list(
        RoutingRule.objects.filter(version_id=Subquery(latest))
        .select_related("version", "territory", "pool", "member")
        .order_by("order")
    )


def _step(rule: RoutingRule, result: str, detail: str = "") -> dict:
    return {"order": rule.order, "rule": rule.name, "result": result, "detail": detail}


def _rule_mismatch(rule: RoutingRule, lead: Lead) -> str:
    """Return why ``rule`` does not match ``lead``, or "" when it does."""
    if rule.territory is not None:
        outcome = conditions_match(rule.territory.conditions, lead)
        if not outcome.matched:
            return f"territory {rule.territory.name}: {outcome.reason}"
    outcome = conditions_match(rule.conditions, lead)
    return outcome.reason


def _member_reason(member: Membership, day: dt.date) -> str:
    reason = availability.membership_reason(member, day)
    if not reason and availability.away_member_ids([member.pk], day):
        reason = "on time off"
    return reason


def _account_owner(
    rule: RoutingRule,
    lead: Lead,
    day: dt.date,
    decision: Decision,
    domain_account_ids: list[int] | None,
):
    """Return the owner of the lead's account when available, else None."""
    match = account_for_lead(lead, domain_account_ids)
    if match is None:
        decision.trace.append(_step(rule, "passed", "no account matches the lead"))
        return None
    account = match.account
    found = f"account {account.name} (by {match.matched_by})"
    if account.owner is None:
        decision.trace.append(_step(rule, "passed", f"{found} has no owner"))
        return None
    reason = _member_reason(account.owner, day)
    decision.candidates.append(
        candidate(account.owner, chosen=not reason, skipped=reason)
    )
    if reason:
        detail = f"{found}: owner {account.owner.display_name} is {reason}"
        decision.trace.append(_step(rule, "passed", detail))
        return None
    decision.trace.append(_step(rule, "applied", f"{found}, owner {account.owner}"))
    return account.owner


def _apply(
    rule: RoutingRule,
    lead: Lead,
    day: dt.date,
    decision: Decision,
    dry_run: bool,
    simulation: Simulation | None = None,
    domain_account_ids: list[int] | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Apply a matching rule; return False when the next rule must be tried."""
    action = rule.action
    decision.method = action
    if action == RoutingRule.Action.ACCOUNT_OWNER:
        owner = _account_owner(rule, lead, day, decision, domain_account_ids)
        if owner is None:
            return False
        decision.outcome, decision.member = ASSIGNED, owner
        decision.reason = f"rule {rule.name}: owner of the account"
    elif action == RoutingRule.Action.POOL:
        lead_value = (
            expected_value(lead, day)
            if rule.pool.method == Pool.Method.VALUE_BALANCED
            else Decimal(0)
        )
        picked = pool_pick(
            rule.pool,
            day,
            dry_run=dry_run,
            lead_value=lead_value,
            simulation=simulation,
            now=now,
        )
        decision.pool_id = rule.pool_id
        decision.method = rule.pool.method
        decision.candidates += picked.candidates
        if picked.member is None:
            decision.outcome, decision.reason = QUEUED, picked.reason
        else:
            decision.outcome, decision.member = ASSIGNED, picked.member
            decision.reason = f"rule {rule.name}: pool {rule.pool.name}"
        decision.trace.append(_step(rule, "applied", decision.reason))
    elif action == RoutingRule.Action.MEMBER:
        reason = _member_reason(rule.member, day)
        decision.candidates.append(
            candidate(rule.member, chosen=not reason, skipped=reason)
        )
        if reason:
            decision.outcome = QUEUED
            decision.reason = f"rule {rule.name}: {rule.member} is {reason}"
        else:
            decision.outcome, decision.member = ASSIGNED, rule.member
            decision.reason = f"rule {rule.name}: member {rule.member}"
        decision.trace.append(_step(rule, "applied", decision.reason))
    else:
        decision.outcome = QUEUED
        decision.reason = f"rule {rule.name}: fallback queue"
        decision.trace.append(_step(rule, "applied", decision.reason))
    return True


def _stored_matches(
    lead: Lead, ids: tuple[int | None, int | None] | None
) -> tuple[Account | None, Contact | None]:
    """Return the customer account and known contact that qualification stored.

    ``ids`` are the two ids when the caller has them (intake passes them to
    the routing task). Otherwise, a narrow read of the two ids comes first.
    Most leads have neither, so the rows with their owners are read only when
    one is set.
    """
    if ids is None:
        ids = (
            LeadQualification.objects.filter(lead_id=lead.pk)
            .values_list("customer_account_id", "known_contact_id")
            .first()
        )
    if ids is None or tuple(ids) == (None, None):
        return None, None
    qualification = (
        LeadQualification.objects.select_related(
            "customer_account__owner",
            "known_contact__owner",
            "known_contact__account__owner",
        )
        .filter(lead_id=lead.pk)
        .first()
    )
    return qualification.customer_account, qualification.known_contact


def _contact_owner(contact: Contact | None, day: dt.date, decision: Decision) -> bool:
    """Give the lead to the owner of the contact with its email, when available.

    A lead from a person already in the CRM goes to the contact's owner,
    else to the owner of the contact's account. When that rep is unavailable,
    the customer account and the rules decide.
    """
    if contact is None:
        return False
    owner = contact.owner or (contact.account.owner if contact.account else None)
    if owner is None:
        return False
    reason = _member_reason(owner, day)
    step = {"order": 0, "rule": "Known contact", "result": "", "detail": ""}
    decision.candidates.append(candidate(owner, chosen=not reason, skipped=reason))
    name = " ".join(part for part in (contact.first_name, contact.last_name) if part)
    label = name or contact.email
    if reason:
        detail = f"contact {label}: owner {owner.display_name} is {reason}"
        decision.trace.append({**step, "result": "passed", "detail": detail})
        return False
    decision.outcome, decision.member = ASSIGNED, owner
    decision.method = "contact_owner"
    decision.reason = f"known contact: owner of contact {label}"
    decision.trace.append({**step, "result": "applied", "detail": decision.reason})
    return True


def _customer_owner(account: Account | None, day: dt.date, decision: Decision) -> bool:
    """Give the lead to its customer account's owner when qualification found one.

    Qualification marks a lead from an existing customer's domain (an
    account with a won deal). When that account's owner is available, they
    get the lead before any rule is tried; otherwise the rules decide.
    """
    if account is None or account.owner is None:
        return False
    owner = account.owner
    reason = _member_reason(owner, day)
    step = {"order": 0, "rule": "Existing customer", "result": "", "detail": ""}
    decision.candidates.append(candidate(owner, chosen=not reason, skipped=reason))
    if reason:
        detail = (
            f"customer account {account.name}: owner {owner.display_name} is {reason}"
        )
        decision.trace.append({**step, "result": "passed", "detail": detail})
        return False
    decision.outcome, decision.member = ASSIGNED, owner
    decision.method = RoutingRule.Action.ACCOUNT_OWNER
    decision.reason = f"existing customer: owner of account {account.name}"
    decision.trace.append({**step, "result": "applied", "detail": decision.reason})
    return True


def decide(
    lead: Lead,
    day: dt.date,
    *,
    dry_run: bool = False,
    rules: list[RoutingRule] | None = None,
    customer_account: Account | None = None,
    known_contact: Contact | None = None,
    simulation: Simulation | None = None,
    intake_matches: IntakeMatches | None = None,
    now: dt.datetime | None = None,
) -> Decision:
    """Return the decision for ``lead`` on the organisation-local ``day``.

    Runs inside the caller's transaction: a pool rule locks and advances the
    pool's rotation, which the caller commits with the assignment. With
    ``dry_run``, pools are read without a lock and their rotation is left
    as it was, so nothing is written.

    ``rules`` replaces the live rules, for trying a draft. A stored lead's
    customer account is read from its qualification, unless
    ``intake_matches`` gives what intake's qualification found. A lead that
    is not stored (``pk`` None) uses ``customer_account`` and
    ``known_contact`` instead. The owner
    of a known contact comes first, then the owner of a customer account,
    then the rules. A ``simulation`` replaces the pools' stored rotations,
    for a backtest. ``now`` is the moment of the decision, for reps' working
    hours (default: the current time).
    """
    decision = Decision(outcome=QUEUED)
    if lead.pk:
        ids = (
            (intake_matches.customer_account_id, intake_matches.known_contact_id)
            if intake_matches is not None
            else None
        )
        account, contact = _stored_matches(lead, ids)
    else:
        account, contact = customer_account, known_contact
    if _contact_owner(contact, day, decision):
        return decision
    if _customer_owner(account, day, decision):
        return decision
    for rule in live_rules() if rules is None else rules:
        decision.version = rule.version
        mismatch = _rule_mismatch(rule, lead)
        if mismatch:
            decision.trace.append(_step(rule, "no match", mismatch))
            continue
        decision.rule = rule
        domain_account_ids = (
            intake_matches.domain_account_ids if intake_matches is not None else None
        )
        applied = _apply(
            rule, lead, day, decision, dry_run, simulation, domain_account_ids, now
        )
        if applied:
            return decision
        decision.rule = None
    decision.outcome, decision.member, decision.method = QUEUED, None, ""
    decision.reason = decision.reason or "no rule took the lead"
    if decision.version is None:
        decision.reason = "no routing rules are published"
    return decision
