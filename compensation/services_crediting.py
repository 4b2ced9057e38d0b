"""Writes of the reassigned-lead crediting rule: the policy, deal links, shares.

A won deal converted from a lead that routing reassigned is credited by the
organisation's ``CreditingPolicy``. The owners of a lead are read from
routing: the member of its routing assignment, then the member of each
response timer in the order the lead reached them (a missed SLA reassigns
the lead and starts the next owner's timer). The shares are stored as
``DealOwnerShare`` rows, which compensation.selectors reads as the deal's
splits when the deal has none of its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from activity.models import Deal, DealSplit, Lead
from compensation.crediting import reassigned_owner_shares
from compensation.models import CreditingPolicy, DealLeadLink, DealOwnerShare
from routing.models import Assignment, Reassignment, ResponseTimer
from spm.models import Organization, User
from spm.services import audit_log_write
from spm.tenancy import get_current_organization


def crediting_policy_get() -> CreditingPolicy:
    """Return the current organisation's policy, or an unsaved default one."""
    return CreditingPolicy.objects.first() or CreditingPolicy(
        reassigned_lead_rule=CreditingPolicy.Rule.LAST_OWNER,
        first_owner_percent=Decimal(50),
    )


def lead_owners(lead_ids: Collection[int]) -> dict[int, list[int]]:
    """Return each lead's owners in the order they got the lead.

    Routing gives the first owner. Later owners come from the response
    timers (an SLA breach that reassigned the lead) and from the changes a
    manager or admin made by hand, merged by time. Three queries. A lead
    with no routing record and no change by hand has no entry.
    """
    owners: dict[int, list[int]] = defaultdict(list)
    first = dict(
        Assignment.objects.filter(
            lead_id__in=lead_ids, member__isnull=False
        ).values_list("lead_id", "member_id")
    )
    timers = ResponseTimer.objects.filter(lead_id__in=lead_ids).values_list(
        "lead_id", "assigned_at", "member_id"
    )
    by_hand = Reassignment.objects.filter(
        lead_id__in=lead_ids, to_member__isnull=False
    ).values_list("lead_id", "assigned_at", "to_member_id")
    for lead_id, member_id in first.items():
        owners[lead_id].append(member_id)
    # A change by hand starts the new owner's timer at the same instant, and
    # sorts before it, so the two give one entry.
    changes = sorted(
        [(lead_id, at, 0, member_id) for lead_id, at, member_id in by_hand]
        + [(lead_id, at, 1, member_id) for lead_id, at, member_id in timers]
    )
    for lead_id, _, _, member_id in changes:
        chain = owners[lead_id]
        # The first timer belongs to the routing assignment's member.
        if not chain or chain[-1] != member_id:
            chain.append(member_id)
    return dict(owners)


@transaction.atomic
def deal_owner_shares_record(
    deal_ids: Collection[int], policy: CreditingPolicy | None = None
) -> int:
    """Store the reassigned-lead shares of the linked deals; return how many deals.

    A deal gets shares only when its lead had two or more owners and the
    deal has no splits of its own. Any other deal loses its old shares.
    Six queries, whatever the number of deals.
    """
    policy = policy or crediting_policy_get()
    organization_id = get_current_organization().pk
    links = dict(
        DealLeadLink.objects.filter(deal_id__in=deal_ids).values_list(
            "deal_id", "lead_id"
        )
    )
    split_deals = set(
        DealSplit.objects.filter(deal_id__in=links).values_list("deal_id", flat=True)
    )
    amounts = dict(
        Deal.objects.filter(pk__in=links, amount__isnull=False).values_list(
            "pk", "amount"
        )
    )
    owners = lead_owners(set(links.values()))
    now = timezone.now()
    rows = []
    for deal_id, lead_id in links.items():
        chain = owners.get(lead_id, [])
        if deal_id in split_deals or deal_id not in amounts or len(set(chain)) < 2:
            continue
        shares = reassigned_owner_shares(
            chain,
            amounts[deal_id],
            policy.reassigned_lead_rule,
            policy.first_owner_percent,
        )
        rows += [
            DealOwnerShare(
                organization_id=organization_id,
                deal_id=deal_id,
                member_id=share.member_id,
                percent=share.percent,
                amount=share.amount,
                rule=policy.reassigned_lead_rule,
                position=share.position,
                recorded_at=now,
            )
            for share in shares
        ]
    DealOwnerShare.objects.filter(deal_id__in=deal_ids).delete()
    DealOwnerShare.objects.bulk_create(rows)
    return len({row.deal_id for row in rows})


@transaction.atomic
def deal_lead_link(*, deal: Deal, lead: Lead) -> DealLeadLink:
    """Record that ``deal`` was converted from ``lead``, and credit it by the rule."""
    link, _ = DealLeadLink.objects.update_or_create(
        deal=deal, defaults={"lead": lead, "organization_id": deal.organization_id}
    )
    deal_owner_shares_record([deal.pk])
    return link


def _policy_snapshot(policy: CreditingPolicy) -> dict:
    return {
        "reassigned_lead_rule": policy.reassigned_lead_rule,
        "first_owner_percent": str(policy.first_owner_percent),
    }


@transaction.atomic
def crediting_policy_update(
    *,
    organization: Organization,
    rule: str,
    first_owner_percent: Decimal,
    actor: User | None,
) -> CreditingPolicy:
    """Save the reassigned-lead rule, audit it, and record every linked deal again.

    Statements already calculated keep their lines until the next run.
    """
    policy = CreditingPolicy.objects.select_for_update().first()
    old = _policy_snapshot(policy) if policy else None
    if policy is None:
        policy = CreditingPolicy(organization=organization)
    policy.reassigned_lead_rule = rule
    policy.first_owner_percent = first_owner_percent
    policy.updated_at = timezone.now()
    policy.full_clean()
    policy.save()
    audit_log_write(
        organization=organization,
        actor=actor,
        action="compensation.crediting_policy_updated",
        obj=policy,
        object_id=str(policy.pk),
        old=old,
        new=_policy_snapshot(policy),
    )
    linked = DealLeadLink.objects.values_list("deal_id", flat=True)
    deal_owner_shares_record(list(linked), policy)
    return policy
