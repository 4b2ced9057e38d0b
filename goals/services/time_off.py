"""Time off writes, each audited with the entry's values."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from goals.models import TimeOff
from goals.periods import in_date_range
from spm.models import Membership, Organization, User
from spm.services import audit_log_write

NOTE_MAX_CHARS = TimeOff._meta.get_field("note").max_length


class TimeOffError(ValueError):
    """Invalid time off. ``field`` names the form field it concerns."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _time_off_values(entry: TimeOff) -> dict:
    return {
        "member": entry.member.display_name,
        "kind": entry.kind,
        "start_date": entry.start_date.isoformat(),
        "end_date": entry.end_date.isoformat(),
        "note": entry.note,
    }


@transaction.atomic
def time_off_create(
    *,
    organization: Organization,
    actor: User | None,
    member: Membership,
    start_date: dt.date,
    end_date: dt.date,
    kind: str = TimeOff.Kind.VACATION,
    note: str = "",
) -> TimeOff:
    """Record days away for ``member``, from ``start_date`` to ``end_date`` included.

    Raises TimeOffError when the end is before the start, or when another
    entry of the member overlaps these days.
    """
    if member.organization_id != organization.pk:
        raise ValueError(f"{member} is not in {organization.name}.")
    if kind not in TimeOff.Kind.values:
        raise TimeOffError(f"Invalid kind of time off {kind!r}.", "kind")
    for name, day in (("start_date", start_date), ("end_date", end_date)):
        if not in_date_range(day):
            raise TimeOffError(f"{day:%Y-%m-%d} is out of range.", name)
    if end_date < start_date:
        raise TimeOffError(
            f"The last day {end_date:%Y-%m-%d} is before the first day "
            f"{start_date:%Y-%m-%d}.",
            "end_date",
        )
    note = note.strip()
    if len(note) > NOTE_MAX_CHARS:
        raise TimeOffError(f"The note is longer than {NOTE_MAX_CHARS} characters.")

    # Lock the member, so two requests cannot both add overlapping entries.
    Membership.objects.select_for_update().filter(pk=member.pk).first()
    overlap = (
        TimeOff.objects.filter(
            member=member, start_date__lte=end_date, end_date__gte=start_date
        )
        .order_by("start_date")
        .first()
    )
    if overlap is not None:
        raise TimeOffError(
            f"{member.display_name} already has {overlap.get_kind_display().lower()} "
            f"from {overlap.start_date:%Y-%m-%d} to {overlap.end_date:%Y-%m-%d}, "
            "which overlaps these days: change the dates or delete that entry first.",
            "start_date",
        )
    entry = TimeOff.objects.create(
        organization=organization,
        member=member,
        kind=kind,
        start_date=start_date,
        end_date=end_date,
        note=note,
    )
    audit_log_write(
        organization=organization,
        actor=actor,
        action="time_off.create",
        obj=entry,
        new=_time_off_values(entry),
    )
    return entry


@transaction.atomic
def time_off_delete(*, time_off: TimeOff, actor: User | None) -> None:
    audit_log_write(
        organization=time_off.organization,
        actor=actor,
        action="time_off.delete",
        obj=time_off,
        old=_time_off_values(time_off),
    )
    time_off.delete()
