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

from django.db import connection
from django.db.models import (
    Count,
    IntegerField,
    OuterRef,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from activity.models import DealStageChange, Pipeline, Stage
from spm.tenancy import get_current_organization

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


# Ranks a later change by where it took the deal: a won stage outranks every
# open stage, whose rank is its ``order``. Larger than any PositiveIntegerField.
WON_RANK = 2**31


def _open_stages(scope: MetricScope) -> list[dict]:
    """Return the measured pipeline's open stages in stage order.

    One query when a single pipeline has open stages, as in most
    organisations, and two when the pipeline must be chosen among several.
    """
    stages = list(
        Stage.objects.filter(is_closed=False)
        .order_by("pipeline_id", "order", "pk")
        .values("pk", "name", "pipeline_id", "pipeline__name")
    )
    pipelines = {stage["pipeline_id"] for stage in stages}
    if len(pipelines) > 1:
        measured = _measured_pipeline(scope, pipelines)
        stages = [stage for stage in stages if stage["pipeline_id"] == measured]
    return stages


def _measured_pipeline(scope: MetricScope, pipeline_ids: set[int]) -> int:
    """Return the id of the pipeline the funnel shows, among ``pipeline_ids``.

    That is the pipeline into whose open stages the most of the members'
    deals moved in the period, each deal counted once per pipeline. Ties,
    and a period with no such move, go to the pipeline marked default, then
    by name. One query.
    """
    moved = (
        DealStageChange.objects.filter(
            deal__owner_id__in=scope.member_ids,
            deal__archived_at__isnull=True,
            to_stage__is_closed=False,
            to_stage__pipeline_id=OuterRef("pk"),
            changed_at__gte=scope.start_at,
            changed_at__lt=scope.end_at,
        )
        .values("to_stage__pipeline_id")
        .annotate(deals=Count("deal_id", distinct=True))
        .values("deals")
    )
    ranked = (
        Pipeline.objects.filter(pk__in=pipeline_ids)
        .annotate(
            deals=Coalesce(Subquery(moved, output_field=IntegerField()), Value(0))
        )
        .order_by("-deals", "-is_default", "name", "pk")
    )
    return ranked.values_list("pk", flat=True)[0]


# Each change of the deals that entered a measured stage in the period, with
# whether it is the deal's first entry into its stage, and the highest rank
# among the deal's later changes. Window functions read each deal's changes
# once, instead of two index lookups per entry. The statement runs on
# PostgreSQL and on SQLite 3.30 or later; {stages} and {members} are lists of
# placeholders.
COUNT_SQL = """
WITH entered AS (
    SELECT DISTINCT change.deal_id, deal.owner_id
    FROM "activity_dealstagechange" AS change
    JOIN "activity_deal" AS deal ON deal.id = change.deal_id
    WHERE change.organization_id = %s
      AND change.to_stage_id IN ({stages})
      AND change.changed_at >= %s AND change.changed_at < %s
      AND deal.owner_id IN ({members}) AND deal.archived_at IS NULL
),
ranked AS (
    SELECT entered.owner_id, change.to_stage_id, change.changed_at,
           stage."order" AS stage_order,
           row_number() OVER (
               PARTITION BY change.deal_id, change.to_stage_id
               ORDER BY change.changed_at, change.id
           ) AS entry,
           max(CASE
               WHEN stage.is_won THEN %s
               WHEN NOT stage.is_closed AND stage.pipeline_id = %s
                   THEN stage."order"
           END) OVER (
               PARTITION BY change.deal_id
               ORDER BY change.changed_at DESC, change.id DESC
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
           ) AS later_rank
    FROM entered
    JOIN "activity_dealstagechange" AS change
        ON change.deal_id = entered.deal_id AND change.organization_id = %s
    JOIN "activity_stage" AS stage ON stage.id = change.to_stage_id
)
SELECT owner_id, to_stage_id, count(*),
       count(*) FILTER (WHERE later_rank > stage_order)
FROM ranked
WHERE entry = 1
  AND to_stage_id IN ({stages})
  AND changed_at >= %s AND changed_at < %s
GROUP BY owner_id, to_stage_id
"""


def _count_rows(
    scope: MetricScope, pipeline_id: int, stage_ids: list[int]
) -> list[tuple[int, int, int, int]]:
    """Return (owner id, stage id, entered, progressed) rows. One query."""
    member_ids = list(scope.member_ids)
    if not member_ids:
        return []
    organization_id = get_current_organization().pk
    # As the ORM stores them: SQLite keeps UTC text without an offset.
    start, end = (
        connection.ops.adapt_datetimefield_value(moment)
        for moment in (scope.start_at, scope.end_at)
    )
    sql = COUNT_SQL.format(
        stages=", ".join(["%s"] * len(stage_ids)),
        members=", ".join(["%s"] * len(member_ids)),
    )
    params = [
        organization_id,
        *stage_ids,
        start,
        end,
        *member_ids,
        WON_RANK,
        pipeline_id,
        organization_id,
        *stage_ids,
        start,
        end,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def stage_conversion(scope: MetricScope) -> StageConversion:
    """Return each member's stage conversion in the measured pipeline.

    Two queries, whatever the number of members or stages: one more when
    several pipelines have open stages, and one fewer when none has.
    """
    stages = _open_stages(scope)
    if not stages:
        return StageConversion(pipeline=None, stages=[])
    names = [stage["name"] for stage in stages]
    conversion = StageConversion(stages[0]["pipeline__name"], names)
    position = {stage["pk"]: index for index, stage in enumerate(stages)}

    counts: defaultdict[int, dict[int, StageRate]] = defaultdict(dict)
    rows = _count_rows(scope, stages[0]["pipeline_id"], list(position))
    for owner_id, stage_id, entered, progressed in rows:
        index = position[stage_id]
        counts[owner_id][index] = StageRate(names[index], entered, progressed)
    conversion.counts = dict(counts)
    return conversion
