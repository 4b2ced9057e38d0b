"""Upsert of members from a sales-teams file: reps, their managers and teams.

A member is matched by email when the row has one, else by display name,
both compared in lowercase. A person the organisation does not know becomes
a membership with no login: a rep, or a manager when named in the manager
column. The email of a matched member is filled from the file only when it
was blank, because it may be the address its login was invited with.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from activity.importing.references import References
from spm.models import AuditLog, Membership, Team, User

Role = Membership.Role


class _Directory:
    """The organisation's members by lowercase email and by lowercase name."""

    def __init__(self) -> None:
        self.members = list(Membership.objects.order_by("id"))
        self.by_email: dict[str, Membership] = {}
        self.by_name: dict[str, Membership] = {}
        for member in self.members:
            self.add(member)

    def add(self, member: Membership) -> None:
        if member.email:
            self.by_email.setdefault(member.email.lower(), member)
        self.by_name.setdefault(member.display_name.lower(), member)

    def find(self, name: str, email: str | None = None) -> Membership | None:
        """Find by ``email`` when given, else by ``name`` (which may be an email)."""
        key = (email or "").lower() or (name.lower() if "@" in name else "")
        found = self.by_email.get(key) if key else None
        return found or self.by_name.get(name.lower())

    def snapshot(self, member: Membership) -> dict[str, Any]:
        manager = self.by_pk.get(member.reports_to_id)
        return {
            "role": member.role,
            "email": member.email,
            "reports_to": manager.display_name if manager else None,
            "team": self.team_names.get(member.team_id),
        }

    def index_by_pk(self) -> None:
        """Index members by id, and load team names, for ``snapshot``."""
        self.by_pk = {member.pk: member for member in self.members}
        self.team_names = dict(Team.objects.values_list("id", "name"))


def upsert_members(
    references: References, records: list[dict], actor: User | None, now: dt.datetime
) -> None:
    counts = references.counts["members"]
    directory = _Directory()
    directory.index_by_pk()
    old = {member.pk: directory.snapshot(member) for member in directory.members}
    teams = references.teams(dict.fromkeys(r["team"] for r in records if r.get("team")))

    # Find or create the member of each row, then each manager named.
    pairs, new = [], []
    for record in records:
        member = directory.find(record["name"], record.get("email"))
        if member is None:
            member = references.new_member(
                record["name"], record.get("role") or Role.REP
            )
            member.email = record.get("email") or ""
            new.append(member)
            directory.add(member)
        pairs.append((record, member))
    managers = _managers(references, directory, pairs, teams, new)
    Membership.objects.bulk_create(new)
    directory.members.extend(new)
    directory.index_by_pk()

    changed = _assign_rows(pairs, managers, teams)
    explicit_role = {id(member) for record, member in pairs if record.get("role")}
    for manager in managers.values():
        if manager.role == Role.REP and id(manager) not in explicit_role:
            manager.role = Role.MANAGER
            changed[id(manager)] = manager
    if changed:
        Membership.objects.bulk_update(
            changed.values(), ["role", "email", "team", "reports_to"]
        )

    created = {id(member) for member in new}
    counts.created += len(new)
    counts.updated += len(changed.keys() - created)
    counts.unchanged += sum(
        1 for _, m in pairs if id(m) not in created and id(m) not in changed
    )
    _audit(references, directory, old, changed, created, actor, now)


def _managers(references, directory, pairs, teams, new) -> dict[str, Membership]:
    """Return the members named as managers, by lowercase name or email.

    A manager not yet known is created with the team of the first row that
    names them.
    """
    managers: dict[str, Membership] = {}
    for record, _ in pairs:
        person = record.get("manager")
        if not person or person.lower() in managers:
            continue
        manager = directory.find(person)
        if manager is None:
            manager = references.new_member(person, Role.MANAGER)
            team = record.get("team")
            manager.team = teams[team.lower()] if team else None
            new.append(manager)
            directory.add(manager)
        managers[person.lower()] = manager
    return managers


def _assign_rows(pairs, managers, teams) -> dict[int, Membership]:
    changed: dict[int, Membership] = {}
    for record, member in pairs:
        values: dict[str, Any] = {}
        if "team" in record:
            team = record["team"]
            values["team_id"] = teams[team.lower()].pk if team else None
        if record.get("role"):
            values["role"] = record["role"]
        if record.get("email") and not member.email:
            values["email"] = record["email"]
        if "manager" in record:
            manager = record["manager"]
            values["reports_to_id"] = managers[manager.lower()].pk if manager else None
        if any(getattr(member, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(member, key, value)
            changed[id(member)] = member
    return changed


def _audit(references, directory, old, changed, created, actor, now) -> None:
    """Log the role, email, manager and team changes of members that existed."""
    entries = []
    for key, member in changed.items():
        if key in created:
            continue
        entries.append(
            AuditLog(
                organization_id=references.org_id,
                actor=actor,
                action="membership.import",
                object_type=Membership._meta.label_lower,
                object_id=str(member.public_id),
                old=old[member.pk],
                new=directory.snapshot(member),
                created_at=now,
            )
        )
    AuditLog.objects.bulk_create(entries)
