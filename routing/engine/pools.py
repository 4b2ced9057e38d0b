"""Give a lead to the next available rep of a pool, under the pool's row lock.

The pool's ``RotationState`` row is read with ``SELECT ... FOR UPDATE`` in
the caller's transaction and written back before it commits. Every worker
routing through the same pool waits for that lock, so each one reads the
rotation as the previous one left it, and no turn is used twice. The lock is taken after
everything that does not depend on the rotation (members, time off, open
leads) is read, to hold it as briefly as possible.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from routing.config_cache import cached
from routing.engine import availability
from routing.engine.rotation import CAPACITY, FEWEST_OPEN, Rotation, Slot, pick
from routing.models import Pool, PoolMember, RotationState
from spm.models import Membership


@dataclass
class Simulation:
    """Rotations kept in memory, to replay many leads without touching the database.

    A backtest routes past leads in the order they arrived. Each pool starts
    from an empty rotation, as a new rule set would, and ``now`` is the
    moment the current lead arrived, for working hours.
    """

    now: dt.datetime
    rotations: dict[int, Rotation] = field(default_factory=dict)
    pool_members: dict[int, list[PoolMember]] = field(default_factory=dict)


@dataclass
class PoolPick:
    member: Membership | None
    candidates: list[dict] = field(default_factory=list)
    reason: str = ""


def candidate(member: Membership, *, chosen: bool = False, skipped: str = "") -> dict:
    """Return one entry of a decision's candidate list.

    ``skipped`` is why the rep could not take the lead; a rep neither chosen
    nor skipped was available but not next in line.
    """
    return {
        "member": str(member.public_id),
        "name": member.display_name,
        "chosen": chosen,
        "skipped": skipped,
    }


def _weight(pool: Pool, pool_member: PoolMember) -> int:
    if pool.method == CAPACITY and pool_member.cap_per_day:
        return pool_member.cap_per_day
    return pool_member.weight


def _static_reasons(
    pool: Pool, pool_members: list[PoolMember], day: dt.date, now: dt.datetime
) -> tuple[dict[int, str], dict[int, int]]:
    """Return the reasons that do not depend on the rotation, and open counts."""
    member_ids = [pm.member_id for pm in pool_members]
    away = availability.away_member_ids(member_ids, day)
    needs_open_counts = pool.method == FEWEST_OPEN or any(
        pm.cap_open is not None for pm in pool_members
    )
    open_counts = availability.open_lead_counts(member_ids) if needs_open_counts else {}
    reasons = {}
    for pm in pool_members:
        reasons[pm.pk] = (
            availability.membership_reason(pm.member, day)
            or ("paused in this pool" if pm.paused else "")
            or ("on time off" if pm.member_id in away else "")
            or availability.working_hours_reason(pm.member, now)
            or availability.open_cap_reason(
                pm.cap_open, open_counts.get(pm.member_id, 0)
            )
        )
    return reasons, open_counts


def _pool_members_load(pool: Pool) -> list[PoolMember]:
    return list(
        PoolMember.objects.filter(pool=pool)
        .select_related("member", "member__working_hours")
        .order_by("position", "id")
    )


def _locked_state(pool: Pool) -> RotationState:
    try:
        return RotationState.objects.select_for_update().get(pool=pool)
    except RotationState.DoesNotExist:
        # A pool made without its state row gets one here. Of two concurrent
        # creators, one loses on the one-to-one key, and both lock the row.
        RotationState.objects.get_or_create(pool=pool)
        return RotationState.objects.select_for_update().get(pool=pool)


def _current_state(pool: Pool) -> RotationState:
    """Return the pool's rotation as stored, without locking it.

    A pool without its state row gets an unsaved one, as if no lead had
    been given yet.
    """
    state = RotationState.objects.filter(pool=pool).first()
    return state or RotationState(organization_id=pool.organization_id, pool=pool)


def pool_pick(
    pool: Pool,
    day: dt.date,
    *,
    dry_run: bool = False,
    exclude: Collection[int] = (),
    lead_value: Decimal = Decimal(0),
    simulation: Simulation | None = None,
    now: dt.datetime | None = None,
) -> PoolPick:
    """Choose the pool's next available rep for ``day`` and advance the rotation.

    Returns no member, with the reason, when the pool is empty or every rep
    is unavailable. The rotation is then left as it was. Members whose ids
    are in ``exclude`` are skipped as reps who missed the lead's response SLA.
    ``lead_value`` is the lead's expected value, for a value-balanced pool.

    With ``dry_run``, the rotation is read without a lock and not written.
    The result is the rep that routing would pick if it ran now. Another
    worker may advance the rotation meanwhile, so a dry run is a preview,
    not a reservation. With a ``simulation``, the rotation is the
    simulation's, advanced in memory, and nothing is written either.
    ``now`` is the moment checked against reps' working hours: the
    simulation's, else ``now``, else the current time.
    """
    if simulation is not None and pool.pk in simulation.pool_members:
        pool_members = simulation.pool_members[pool.pk]
    else:
        pool_members = cached(
            f"pool_members:{pool.pk}", lambda: _pool_members_load(pool)
        )
        if simulation is not None:
            simulation.pool_members[pool.pk] = pool_members
    if not pool_members:
        return PoolPick(None, [], f"pool {pool.name} has no members")
    if simulation is not None:
        now = simulation.now
    now = now or timezone.now()
    reasons, open_counts = _static_reasons(pool, pool_members, day, now)
    for pm in pool_members:
        if pm.member_id in exclude and not reasons[pm.pk]:
            reasons[pm.pk] = "missed the response time on this lead"

    if simulation is not None:
        state = None
        rotation = simulation.rotations.setdefault(pool.pk, Rotation())
    else:
        state = _current_state(pool) if dry_run else _locked_state(pool)
        rotation = Rotation(turns=state.turns, counters=dict(state.counters))
    day_key = day.isoformat()
    slots: dict[int, Slot] = {}
    for pm in pool_members:
        slot = rotation.slot(pm.pk, pm.position, _weight(pool, pm))
        slot.open_leads = open_counts.get(pm.member_id, 0)
        reasons[pm.pk] = reasons[pm.pk] or availability.daily_cap_reason(
            pm.cap_per_day, slot.leads_on(day_key)
        )
        if not reasons[pm.pk]:
            slots[pm.pk] = slot

    if not slots:
        candidates = [
            candidate(pm.member, skipped=reasons[pm.pk]) for pm in pool_members
        ]
        return PoolPick(
            None, candidates, f"every rep in pool {pool.name} is unavailable"
        )

    chosen = pick(pool.method, rotation, list(slots.values()), day_key, lead_value)
    if state is not None and not dry_run:
        state.turns = rotation.turns
        state.counters = rotation.counters
        state.last_member_id = chosen.key
        state.updated_at = timezone.now()
        state.save(update_fields=["turns", "counters", "last_member", "updated_at"])

    candidates = [
        candidate(pm.member, chosen=pm.pk == chosen.key, skipped=reasons[pm.pk])
        for pm in pool_members
    ]
    chosen_member = next(pm.member for pm in pool_members if pm.pk == chosen.key)
    return PoolPick(chosen_member, candidates)
