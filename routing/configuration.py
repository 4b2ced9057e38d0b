"""Writes of the routing configuration: territories, pools, their reps, rule sets.

Each is one transaction and writes the audit log with the old and new
values. A rule set is never edited: ``rule_set_publish`` publishes the next
version number with its full list of rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from routing.models import (
    SLA_MINUTES_MAX,
    SLA_MINUTES_MAX_MESSAGE,
    SLA_MINUTES_MIN_MESSAGE,
    Pool,
    PoolMember,
    RotationState,
    RoutingRule,
    RuleSetVersion,
    SlaAction,
    Territory,
    WorkingHours,
)
from spm.models import Membership, Organization, User
from spm.services import audit_log_write

POOL_MEMBER_FIELDS = ("position", "weight", "cap_open", "cap_per_day", "paused")


def _name_taken(model, name: str, exclude_pk: int | None) -> bool:
    """Return whether another row of the organisation has ``name``, ignoring case."""
    return model.objects.filter(name__iexact=name).exclude(pk=exclude_pk).exists()


def _save_named(row, name: str, **save_options) -> None:
    """Save a territory or pool, or raise ValidationError when its name is taken.

    The check before the save gives the usual message. When two admins save
    the same name at once, the unique index on the lowercased name decides.
    """
    label = row._meta.verbose_name
    duplicate_name = ValidationError(
        {"name": f"A {label} named {name!r} already exists. Choose another name."}
    )
    if _name_taken(type(row), name, row.pk):
        raise duplicate_name
    try:
        with transaction.atomic():
            row.save(**save_options)
    except IntegrityError:
        raise duplicate_name from None


def _territory_values(territory: Territory) -> dict:
    return {"name": territory.name, "conditions": territory.conditions}


@transaction.atomic
def territory_create(
    *, organization: Organization, actor: User | None, name: str, conditions: list
) -> Territory:
    territory = Territory(organization=organization, name=name, conditions=conditions)
    _save_named(territory, name)
    audit_log_write(
        organization=organization,
        actor=actor,
        action="routing.territory.create",
        obj=territory,
        new=_territory_values(territory),
    )
    return territory


def _check_sla(minutes: int | None, action: str) -> None:
    if minutes is not None and minutes < 1:
        raise ValidationError(
            {"sla_minutes": SLA_MINUTES_MIN_MESSAGE % {"value": minutes}}
        )
    if minutes is not None and minutes > SLA_MINUTES_MAX:
        message = SLA_MINUTES_MAX_MESSAGE % {
            "limit_value": SLA_MINUTES_MAX,
            "value": minutes,
        }
        raise ValidationError({"sla_minutes": message})
    if action not in SlaAction.values:
        raise ValidationError({"sla_action": f"Unknown action on breach {action!r}."})


@transaction.atomic
def territory_update(
    *, territory: Territory, actor: User | None, name: str, conditions: list
) -> Territory:
    """Rename a territory or change its conditions.

    Rules keep pointing at the territory, so the change applies to every
    published version that uses it, the live one included.
    """
    old = _territory_values(territory)
    territory.name = name
    territory.conditions = conditions
    _save_named(territory, name, update_fields=["name", "conditions"])
    audit_log_write(
        organization=territory.organization,
        actor=actor,
        action="routing.territory.update",
        obj=territory,
        old=old,
        new=_territory_values(territory),
    )
    return territory


def _check_method(method: str) -> None:
    if method not in Pool.Method.values:
        choices = ", ".join(Pool.Method.values)
        raise ValidationError(
            {"method": f"Unknown method {method!r}. Use one of {choices}."}
        )


@transaction.atomic
def pool_create(
    *,
    organization: Organization,
    actor: User | None,
    name: str,
    method: str,
    sla_minutes: int | None = None,
    sla_action: str = SlaAction.REASSIGN,
) -> Pool:
    """Create a pool with its rotation state row, which routing locks."""
    _check_method(method)
    _check_sla(sla_minutes, sla_action)
    pool = Pool(
        organization=organization,
        name=name,
        method=method,
        sla_minutes=sla_minutes,
        sla_action=sla_action,
    )
    _save_named(pool, name)
    RotationState.objects.create(organization=organization, pool=pool)
    audit_log_write(
        organization=organization,
        actor=actor,
        action="routing.pool.create",
        obj=pool,
        new={
            "name": name,
            "method": method,
            "sla_minutes": sla_minutes,
            "sla_action": sla_action,
        },
    )
    return pool


@transaction.atomic
def pool_update(
    *,
    pool: Pool,
    actor: User | None,
    name: str,
    method: str,
    sla_minutes: int | None = None,
    sla_action: str = SlaAction.REASSIGN,
) -> Pool:
    """Rename a pool, or change its method or response SLA.

    The rotation values are kept, so reps keep their place in line. A
    capacity pool needs a daily cap for every rep, so the change to that
    method is rejected while a rep has none.
    """
    _check_method(method)
    if method == Pool.Method.CAPACITY:
        uncapped = [
            pm.member.display_name
            for pm in PoolMember.objects.filter(pool=pool, cap_per_day__isnull=True)
            .select_related("member")
            .order_by("position", "id")
        ]
        if uncapped:
            raise ValidationError(
                {
                    "method": "A capacity pool shares leads by daily cap. Set a "
                    f"daily cap for {', '.join(uncapped)} first."
                }
            )
    _check_sla(sla_minutes, sla_action)
    fields = ["name", "method", "sla_minutes", "sla_action"]
    old = {field: getattr(pool, field) for field in fields}
    pool.name = name
    pool.method = method
    pool.sla_minutes = sla_minutes
    pool.sla_action = sla_action
    _save_named(pool, name, update_fields=fields)
    audit_log_write(
        organization=pool.organization,
        actor=actor,
        action="routing.pool.update",
        obj=pool,
        old=old,
        new={field: getattr(pool, field) for field in fields},
    )
    return pool


def _pool_member_values(pool_member: PoolMember) -> dict:
    values = {name: getattr(pool_member, name) for name in POOL_MEMBER_FIELDS}
    return {"member": pool_member.member.display_name, **values}


@transaction.atomic
def pool_member_add(
    *,
    pool: Pool,
    member: Membership,
    actor: User | None,
    weight: int = 1,
    cap_open: int | None = None,
    cap_per_day: int | None = None,
    position: int | None = None,
) -> PoolMember:
    """Add a rep to a pool, last in position unless ``position`` is given.

    Raises ValidationError for a member of another organisation, a member
    already in the pool, or a capacity pool without a cap. An inactive
    member may be added (routing skips them); the pool page offers only
    active ones.
    """
    if member.organization_id != pool.organization_id:
        raise ValidationError(
            {"member": f"Member {member.display_name} not found in this organisation."}
        )
    if PoolMember.objects.filter(pool=pool, member=member).exists():
        raise ValidationError(
            {"member": f"{member.display_name} is already in pool {pool.name}."}
        )
    if pool.method == Pool.Method.CAPACITY and cap_per_day is None:
        raise ValidationError(
            {"cap_per_day": "A capacity pool shares leads by daily cap: set one."}
        )
    if position is None:
        last = PoolMember.objects.filter(pool=pool).aggregate(last=Max("position"))
        position = 0 if last["last"] is None else last["last"] + 1
    pool_member = PoolMember(
        organization_id=pool.organization_id,
        pool=pool,
        member=member,
        weight=weight,
        cap_open=cap_open,
        cap_per_day=cap_per_day,
        position=position,
    )
    pool_member.full_clean(exclude=["organization", "pool", "member"])
    pool_member.save()
    audit_log_write(
        organization=pool.organization,
        actor=actor,
        action="routing.pool_member.add",
        obj=pool,
        new=_pool_member_values(pool_member),
    )
    return pool_member


@transaction.atomic
def pool_member_update(
    *, pool_member: PoolMember, actor: User | None, **changes
) -> PoolMember:
    """Change a rep's weight, caps, position or pause in a pool."""
    unknown = set(changes) - set(POOL_MEMBER_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown pool member fields: {', '.join(unknown)}.")
    capacity = pool_member.pool.method == Pool.Method.CAPACITY
    if capacity and "cap_per_day" in changes and changes["cap_per_day"] is None:
        raise ValidationError(
            {"cap_per_day": "A capacity pool shares leads by daily cap: set one."}
        )
    old = _pool_member_values(pool_member)
    for name, value in changes.items():
        setattr(pool_member, name, value)
    pool_member.full_clean(exclude=["organization", "pool", "member"])
    pool_member.save(update_fields=list(changes))
    audit_log_write(
        organization=pool_member.pool.organization,
        actor=actor,
        action="routing.pool_member.update",
        obj=pool_member.pool,
        old=old,
        new=_pool_member_values(pool_member),
    )
    return pool_member


@dataclass(frozen=True)
class RuleSpec:
    """One rule to publish, in order. ``pool``/``member`` per the action."""

    name: str
    action: str
    conditions: list | None = None
    territory: Territory | None = None
    pool: Pool | None = None
    member: Membership | None = None
    sla_minutes: int | None = None
    sla_action: str = SlaAction.REASSIGN


def _rule_values(rule: RoutingRule) -> dict:
    return {
        "order": rule.order,
        "name": rule.name,
        "action": rule.action,
        "conditions": rule.conditions,
        "territory": rule.territory.name if rule.territory else None,
        "pool": rule.pool.name if rule.pool else None,
        "member": rule.member.display_name if rule.member else None,
        "sla_minutes": rule.sla_minutes,
        "sla_action": rule.sla_action,
    }


def _error_text(error: ValidationError) -> str:
    """Return a rule's validation errors as "Minutes to first touch: ..." lines."""
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    parts = []
    for field, messages in error.message_dict.items():
        text = " ".join(messages)
        if field == NON_FIELD_ERRORS:
            parts.append(text)
            continue
        label = str(RoutingRule._meta.get_field(field).verbose_name).capitalize()
        parts.append(f"{label}: {text}")
    return " ".join(parts)


def _check_targets(organization: Organization, rules: list[RuleSpec]) -> None:
    """Raise ValidationError when a rule names another organisation's object."""
    for order, spec in enumerate(rules, start=1):
        for target in (spec.territory, spec.pool, spec.member):
            if target is not None and target.organization_id != organization.pk:
                kind = target._meta.verbose_name
                raise ValidationError(
                    f"Rule {order} ({spec.name}): {kind} {target} not found in "
                    "this organisation."
                )


def live_version() -> RuleSetVersion | None:
    return RuleSetVersion.objects.order_by("-number").first()


@transaction.atomic
def rule_set_publish(
    *,
    organization: Organization,
    actor: User | None,
    rules: list[RuleSpec],
    note: str = "",
    based_on: int | None = None,
) -> RuleSetVersion:
    """Publish ``rules`` as the next version; new leads use it from the commit on.

    ``based_on`` is the live version number the rules were edited from (0
    for none). When another version was published since, nothing is
    published, so an editor never overwrites changes they have not seen.
    None skips that check.

    Raises ValidationError naming the rule (from 1) and the field, and
    publishes nothing, when a rule is invalid.
    """
    previous = live_version()
    number = previous.number + 1 if previous else 1
    if based_on is not None and based_on != number - 1:
        raise ValidationError(
            f"Version {number - 1} was published after you started editing "
            f"version {based_on}. Reload the rules, apply your changes again "
            "and publish."
        )
    _check_targets(organization, rules)
    try:
        with transaction.atomic():
            version = RuleSetVersion.objects.create(
                organization=organization, number=number, published_by=actor, note=note
            )
    except IntegrityError:
        raise ValidationError(
            f"Version {number} was published at the same time by someone else. "
            "Reload the rules and publish again."
        ) from None

    created = []
    for order, spec in enumerate(rules, start=1):
        rule = RoutingRule(
            organization=organization,
            version=version,
            order=order,
            name=spec.name,
            action=spec.action,
            conditions=spec.conditions or [],
            territory=spec.territory,
            pool=spec.pool,
            member=spec.member,
            sla_minutes=spec.sla_minutes,
            sla_action=spec.sla_action,
        )
        try:
            rule.full_clean(exclude=["organization", "version"])
            rule.save()
        except ValidationError as error:
            raise ValidationError(
                f"Rule {order} ({spec.name}): {_error_text(error)}"
            ) from None
        created.append(rule)

    old_rules = (
        [
            _rule_values(rule)
            for rule in previous.rules.select_related("territory", "pool", "member")
        ]
        if previous
        else []
    )
    audit_log_write(
        organization=organization,
        actor=actor,
        action="routing.rules.publish",
        obj=version,
        old={"version": previous.number, "rules": old_rules} if previous else None,
        new={"version": number, "rules": [_rule_values(rule) for rule in created]},
    )
    return version


def _hours_values(hours: WorkingHours | None) -> dict | None:
    if hours is None:
        return None
    return {
        "time_zone": hours.time_zone,
        "days": sorted(hours.days),
        "start": hours.start.strftime("%H:%M"),
        "end": hours.end.strftime("%H:%M"),
    }


@transaction.atomic
def working_hours_set(
    *,
    member: Membership,
    actor: User | None,
    time_zone: str,
    days: list[int],
    start: dt.time,
    end: dt.time,
) -> WorkingHours:
    """Set the hours in which ``member`` takes pool leads. Raises ValidationError."""
    hours = WorkingHours.objects.filter(member=member).first()
    old = _hours_values(hours)
    if hours is None:
        hours = WorkingHours(organization_id=member.organization_id, member=member)
    hours.time_zone = time_zone
    hours.days = sorted(set(days))
    hours.start = start
    hours.end = end
    hours.full_clean(exclude=["organization", "member"])
    hours.save()
    audit_log_write(
        organization=member.organization,
        actor=actor,
        action="routing.working_hours.set",
        obj=member,
        old=old,
        new=_hours_values(hours),
    )
    return hours


@transaction.atomic
def working_hours_clear(*, member: Membership, actor: User | None) -> None:
    """Let ``member`` take pool leads at any hour again."""
    hours = WorkingHours.objects.filter(member=member).first()
    if hours is None:
        return
    old = _hours_values(hours)
    hours.delete()
    audit_log_write(
        organization=member.organization,
        actor=actor,
        action="routing.working_hours.clear",
        obj=member,
        old=old,
        new=None,
    )
