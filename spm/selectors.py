"""Reads of the core shared by pages: the audit log and API keys."""

from __future__ import annotations

import datetime as dt

from django.apps import apps
from django.db.models import QuerySet

from spm.models import ApiKey, AuditLog, Organization, User


def _start_of_day(day: dt.date, organization: Organization) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=organization.zoneinfo)


def audit_log_list(
    *,
    organization: Organization,
    action: str = "",
    actor: User | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> QuerySet[AuditLog]:
    """Return the organisation's audit log entries, newest first.

    ``start`` and ``end`` are calendar dates in the organisation's time zone,
    both included. An empty ``action`` or a missing bound does not filter,
    and neither do the first and last dates Python can represent, whose
    neighbouring day or UTC time would be out of range.
    """
    entries = AuditLog.objects.filter(organization=organization)
    if action:
        entries = entries.filter(action=action)
    if actor is not None:
        entries = entries.filter(actor=actor)
    if start is not None and start > dt.date.min:
        entries = entries.filter(created_at__gte=_start_of_day(start, organization))
    if end is not None and end < dt.date.max:
        next_day = end + dt.timedelta(days=1)
        entries = entries.filter(created_at__lt=_start_of_day(next_day, organization))
    return entries.select_related("actor").order_by("-created_at", "-id")


def audit_log_actions(*, organization: Organization) -> list[str]:
    """Return the distinct actions recorded for the organisation, sorted."""
    actions = (
        AuditLog.objects.filter(organization=organization)
        .order_by()
        .values_list("action", flat=True)
        .distinct()
    )
    return sorted(actions)


def audit_log_actors(*, organization: Organization) -> QuerySet[User]:
    """Return the users who appear as the actor of an entry of the organisation."""
    actor_ids = AuditLog.objects.filter(
        organization=organization, actor__isnull=False
    ).values("actor_id")
    return User.objects.filter(pk__in=actor_ids).order_by("email")


# Keys of audited old and new values that contain a pipeline stage's primary key,
# such as a sequence's trigger stage or a deal's stage before and after.
AUDIT_STAGE_KEYS = frozenset(
    {
        "stage",
        "stage_id",
        "trigger_stage",
        "trigger_stage_id",
        "from_stage",
        "from_stage_id",
        "to_stage",
        "to_stage_id",
        "stage_at_enrollment",
        "stage_at_enrollment_id",
    }
)


def _stage_id(key: str, value) -> int | None:
    """Return ``value`` when ``key`` contains a stage's primary key, else None."""
    if key not in AUDIT_STAGE_KEYS:
        return None
    # bool is an int subclass, and a stage name stored as text stays as it is.
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _audited_stage_ids(entries: list[AuditLog]) -> set[int]:
    ids = set()
    for entry in entries:
        for values in (entry.old, entry.new):
            if not isinstance(values, dict):
                continue
            for key, value in values.items():
                stage_id = _stage_id(key, value)
                if stage_id is not None:
                    ids.add(stage_id)
    return ids


def _with_stage_names(values, names: dict[int, str]):
    if not isinstance(values, dict):
        return values
    shown = {}
    for key, value in values.items():
        stage_id = _stage_id(key, value)
        if stage_id is None:
            shown[key] = value
        else:
            shown[key] = names.get(stage_id, f"stage {stage_id} (deleted)")
    return shown


def audit_log_stage_names_set(entries: list[AuditLog]) -> None:
    """Set ``old_shown`` and ``new_shown`` on each entry, with stage names for ids.

    A stage id becomes "Stage (Pipeline)", read in one query for all
    entries. An id of a stage that no longer exists reads "stage 42
    (deleted)".
    """
    ids = _audited_stage_ids(entries)
    names = {}
    if ids:
        stage_model = apps.get_model("activity", "Stage")
        stages = stage_model.objects.filter(pk__in=ids).select_related("pipeline")
        names = {stage.pk: f"{stage.name} ({stage.pipeline.name})" for stage in stages}
    for entry in entries:
        entry.old_shown = _with_stage_names(entry.old, names)
        entry.new_shown = _with_stage_names(entry.new, names)


def api_key_list(*, organization: Organization) -> QuerySet[ApiKey]:
    """Return the organisation's API keys, live and revoked, newest first."""
    return (
        ApiKey.objects.filter(organization=organization)
        .select_related("created_by")
        .order_by("-created_at", "-id")
    )
