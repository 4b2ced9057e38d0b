"""Stage conversion per rep across the open stages of one pipeline.

A deal enters a stage with a ``DealStageChange`` whose ``to_stage`` is that
stage. It counts in the period of its first entry into the stage, for its
current owner. It progressed from the stage when a later change (at any time
up to now) took it to a won stage or to an open stage of the same pipeline
with a higher ``order``. "Later" follows ``(changed_at, id)``, so of two
changes stored with the same time, the one with the higher id is later.
Archived deals are left out. Definitions are documented in docs/metrics.md.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from django.db.models import (
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from activity.models import DealStageChange, Pipeline, Stage

if TYPE_CHECKING:
    from measurement.selectors import MetricScope

TENTH = Decimal("0.1")


@dataclass
class StageRate:
    """One member's deals that entered one stage, and those that moved on."""

    stage: str
    entered: int = 0
    progressed: int = 0

    @property
    def rate(self) -> Decimal | None:
        """Return progressed / entered in percent to 0.1, or None if none entered."""
        if not self.entered:
            return None
        percent = Decimal(100 * self.progressed) / self.entered
        return percent.quantize(TENTH, ROUND_HALF_UP)


@dataclass
class MemberConversion:
    """One member's rates in each open stage of the measured pipeline."""

    pipeline: str | None
    stages: list[StageRate]


@dataclass
class StageConversion:
    """The measured pipeline, its open stages, and each member's counts in them.

    ``pipeline`` is None, and ``stages`` empty, when no pipeline of the
    organisation has an open stage.
    """

    pipeline: str | None
    stages: list[str]
    # Counts by member id, then by position in ``stages``.
    counts: dict[int, dict[int, StageRate]] = field(default_factory=dict)

    def of_member(self, member_id: int) -> MemberConversion:
        """Return the member's counts in each stage, in stage order."""
        cells = self.counts.get(member_id, {})
        rates = [
            cells.get(position, StageRate(name))
            for position, name in enumerate(self.stages)
        ]
        return MemberConversion(self.pipeline, rates)


def _earlier_than_outer() -> Q:
    return Q(changed_at__lt=OuterRef("changed_at")) | Q(
        changed_at=OuterRef("changed_at"), pk__lt=OuterRef("pk")
    )


def _later_than_outer() -> Q:
    return Q(changed_at__gt=OuterRef("changed_at")) | Q(
        changed_at=OuterRef("changed_at"), pk__gt=OuterRef("pk")
    )


def first_entries(scope: MetricScope) -> QuerySet[DealStageChange]:
    """Filter the first entries of the members' deals into open stages in the scope.

    An entry is first when the deal has no earlier change into the same
    stage, so a deal that enters a stage again counts once, in the period
    of its first entry.
    """
    earlier_entry = DealStageChange.objects.filter(
        _earlier_than_outer(),
        deal_id=OuterRef("deal_id"),
        to_stage_id=OuterRef("to_stage_id"),
    )
    return DealStageChange.objects.filter(
        ~Exists(earlier_entry),
        deal__owner_id__in=scope.member_ids,
        deal__archived_at__isnull=True,
        to_stage__is_closed=False,
        changed_at__gte=scope.start_at,
        changed_at__lt=scope.end_at,
    )


def _progressed() -> Exists:
    """Test whether a later change of the outer entry's deal moved it forward."""
    forward = Q(to_stage__is_won=True) | Q(
        to_stage__is_closed=False,
        to_stage__pipeline_id=OuterRef("to_stage__pipeline_id"),
        to_stage__order__gt=OuterRef("to_stage__order"),
    )
    return Exists(
        DealStageChange.objects.filter(
            _later_than_outer(), forward, deal_id=OuterRef("deal_id")
        )
    )


def _measured_pipeline(scope: MetricScope) -> Subquery:
    """Select the id of the pipeline the funnel shows.

    That is the pipeline, among those with an open stage, with the most deals
    counted in its funnel for the scope, each deal once. Ties, and a period
    with no entries, go to the pipeline marked default, then by name.
    """
    deals = (
        first_entries(scope)
        .filter(to_stage__pipeline_id=OuterRef("pk"))
        .values("to_stage__pipeline_id")
        .annotate(deals=Count("deal_id", distinct=True))
        .values("deals")
    )
    open_stage = Stage.objects.filter(pipeline_id=OuterRef("pk"), is_closed=False)
    ranked = (
        Pipeline.objects.filter(Exists(open_stage))
        .annotate(
            deals=Coalesce(Subquery(deals, output_field=IntegerField()), Value(0))
        )
        .order_by("-deals", "-is_default", "name", "pk")
    )
    return Subquery(ranked.values("pk")[:1])


def _open_stages(scope: MetricScope) -> list[dict]:
    """Return the measured pipeline's open stages in stage order. One query."""
    return list(
        Stage.objects.filter(pipeline_id=_measured_pipeline(scope), is_closed=False)
        .order_by("order", "pk")
        .values("pk", "name", "pipeline_id", "pipeline__name")
    )


def _count_rows(scope: MetricScope, pipeline_id: int) -> QuerySet:
    """Count entered and progressed deals by owner and stage. One query."""
    return (
        first_entries(scope)
        .filter(to_stage__pipeline_id=pipeline_id)
        .annotate(moved_on=_progressed())
        .values("deal__owner_id", "to_stage_id")
        .annotate(
            entered=Count("pk"),
            progressed=Count("pk", filter=Q(moved_on=True)),
        )
        .order_by()
    )


def stage_conversion(scope: MetricScope) -> StageConversion:
    """Return each member's stage conversion in the measured pipeline.

    Two queries, whatever the number of members or stages, or one when the
    organisation has no open stage to measure.
    """
    stages = _open_stages(scope)
    if not stages:
        return StageConversion(pipeline=None, stages=[])
    names = [stage["name"] for stage in stages]
    conversion = StageConversion(stages[0]["pipeline__name"], names)
    position = {stage["pk"]: index for index, stage in enumerate(stages)}

    counts: defaultdict[int, dict[int, StageRate]] = defaultdict(dict)
    for row in _count_rows(scope, stages[0]["pipeline_id"]):
        index = position[row["to_stage_id"]]
        counts[row["deal__owner_id"]][index] = StageRate(
            names[index], row["entered"], row["progressed"]
        )
    conversion.counts = dict(counts)
    return conversion
