"""The values that flow through a rule evaluation: the context, windows and readings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from measurement.progress import activity_status, rep_progress
from spm.models import Membership, Organization


@dataclass(frozen=True)
class RuleWindow:
    """The half-open date range ``[start, end)`` a rule measures, and its alert key.

    ``start`` and ``end`` are None for a metric that looks at the present
    only (open deals today).
    """

    start: dt.date | None
    end: dt.date | None
    key: str
    label: str

    def start_at(self, time_zone: ZoneInfo) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time.min, tzinfo=time_zone)

    def end_at(self, time_zone: ZoneInfo) -> dt.datetime:
        return dt.datetime.combine(self.end, dt.time.min, tzinfo=time_zone)


@dataclass
class Reading:
    """One rep's value of a metric, in the metric's unit.

    ``target`` is the rep's own figure that a target-multiple threshold
    multiplies. ``met`` is true when the condition cannot hold even though
    there is no value: the quota is already reached, so coverage has nothing
    left to cover. ``skip_reason`` is the cause when the rep is not judged.
    """

    value: Decimal | None
    sample: int | None = None
    target: Decimal | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    met: bool = False
    skip_reason: str = ""


@dataclass
class EvaluationContext:
    """One organisation's evaluation: the day, the active reps, and shared reads.

    Progress figures are read once per date range for every active rep and
    shared by all rules on that range, so each rule adds a fixed number of
    queries whatever the number of reps.
    """

    organization: Organization
    today: dt.date
    now: dt.datetime
    reps: list[Membership]
    _progress: dict[tuple, dict] = field(default_factory=dict)
    _activity: dict[tuple, dict] = field(default_factory=dict)

    @property
    def time_zone(self) -> ZoneInfo:
        return self.organization.zoneinfo

    def reps_in_scope(self, team_id: int | None) -> list[Membership]:
        if team_id is None:
            return self.reps
        return [rep for rep in self.reps if rep.team_id == team_id]

    def progress(self, start: dt.date, end: dt.date) -> dict:
        """Return measurement.progress.rep_progress for every active rep."""
        key = (start, end)
        if key not in self._progress:
            self._progress[key] = rep_progress(
                organization=self.organization,
                members=self.reps,
                start=start,
                end=end,
                today=self.today,
            )
        return self._progress[key]

    def activity(self, start: dt.date, end: dt.date) -> dict:
        """Return measurement.progress.activity_status for every active rep."""
        key = (start, end)
        if key not in self._activity:
            self._activity[key] = activity_status(
                organization=self.organization,
                members=self.reps,
                start=start,
                end=end,
            )
        return self._activity[key]
