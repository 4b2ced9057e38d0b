"""Reads behind the CRM integration pages, the API budget and "CRM data as of"."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Count, F, Max, OuterRef, Subquery
from django.utils import timezone

from activity.models import Deal
from compensation.models import CalculationRun
from integrations import api_usage
from integrations.connectors import base, pipedrive, salesforce
from integrations.models import (
    ApiTier,
    CrmConnection,
    FieldMapping,
    OwnerMapping,
    StageMapping,
    SyncRun,
)
from spm.models import Membership, Organization

# HubSpot private app limits per account, by subscription tier: (requests per
# 10 s burst window, requests per day). Professional and Enterprise are from
# HubSpot's developer changelog "Increasing our API limits". The API Limit
# Increase pack raises them further, which this table does not model.
# NOTE: the Free and Starter daily limit of 250,000 comes from third-party
# summaries, not from a HubSpot page; check it against HubSpot's usage guide.
API_LIMITS = {
    ApiTier.STARTER: (100, 250_000),
    ApiTier.PROFESSIONAL: (190, 650_000),
    ApiTier.ENTERPRISE: (190, 1_000_000),
}
LAST_RUNS_SHOWN = 10
DATA_AS_OF_CACHE_SECONDS = 60


def connections_list() -> list[CrmConnection]:
    """Return the connections, each with its latest run, in two queries."""
    latest_run = SyncRun.objects.filter(connection=OuterRef("pk")).order_by(
        "-created_at", "-id"
    )
    connections = list(
        CrmConnection.objects.annotate(
            latest_run_id=Subquery(latest_run.values("pk")[:1])
        ).order_by("name", "pk")
    )
    ids = [c.latest_run_id for c in connections if c.latest_run_id is not None]
    runs = SyncRun.objects.in_bulk(ids) if ids else {}
    for connection in connections:
        connection.latest_run = runs.get(connection.latest_run_id)
    return connections


def connection_get(public_id) -> CrmConnection | None:
    """Return the current organisation's connection with this public id, or None."""
    return CrmConnection.objects.filter(public_id=public_id).first()


def run_get(public_id) -> SyncRun | None:
    return SyncRun.objects.filter(public_id=public_id).first()


def last_runs(connection: CrmConnection) -> list[SyncRun]:
    return list(SyncRun.objects.filter(connection=connection)[:LAST_RUNS_SHOWN])


def active_run(runs: list[SyncRun]) -> SyncRun | None:
    """Return the newest queued or running run among ``runs``."""
    active = (SyncRun.Status.QUEUED, SyncRun.Status.RUNNING)
    return next((run for run in runs if run.status in active), None)


def run_progress(run: SyncRun) -> int:
    """Return the run's progress in percent, by the object types it finished.

    The CRM listings report no totals, so a running run moves one step per
    object type: 0% while it reads owners and pipelines and the first type,
    and 100% only once it succeeded.
    """
    if run.status == SyncRun.Status.SUCCEEDED:
        return 100
    if run.status == SyncRun.Status.QUEUED or not run.current_object_type:
        return 0
    if run.current_object_type == salesforce.LEADS:
        # Salesforce lists its leads between the deals and the activities.
        index = base.OBJECT_TYPES.index(base.DEALS) + 0.5
        return int(100 * index / len(base.OBJECT_TYPES))
    try:
        index = base.OBJECT_TYPES.index(run.current_object_type)
    except ValueError:
        return 0
    return int(100 * index / len(base.OBJECT_TYPES))


def run_duration(run: SyncRun) -> dt.timedelta | None:
    if run.started_at is None:
        return None
    return (run.finished_at or timezone.now()) - run.started_at


def run_totals(run: SyncRun) -> dict[str, int]:
    """Return the run's counts summed over object types."""
    totals = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 0}
    for counts in (run.counts or {}).values():
        for key in totals:
            totals[key] += counts.get(key, 0)
    return totals


def run_progress_data(run: SyncRun) -> dict:
    """Return the run's progress as the JSON progress endpoint sends it."""
    return {
        "run": str(run.public_id),
        "status": run.status,
        "progress": run_progress(run),
        "current_object_type": run.current_object_type,
        "pages_done": run.pages_done,
        "records_done": run.records_done,
        "api_calls": run.api_calls,
        "counts": run.counts,
        "error_count": len(run.errors),
        "failure": run.failure,
        "finished": run.status in SyncRun.FINISHED,
    }


@dataclass(frozen=True)
class ApiBudget:
    burst_used: int
    burst_limit: int
    burst_window_seconds: int
    day_used: int
    # None where the CRM has no daily request limit that Attain can count.
    day_limit: int | None
    day: dt.date
    # The source of the limits, shown above the budget table.
    limits_note: str
    # The daily usage the CRM itself last reported (Salesforce), if any.
    reported: api_usage.ReportedUsage | None = None

    @property
    def burst_percent(self) -> int:
        return min(100, round(100 * self.burst_used / self.burst_limit))

    @property
    def day_percent(self) -> int | None:
        if self.day_limit is None:
            return None
        return min(100, round(100 * self.day_used / self.day_limit))

    @property
    def reported_percent(self) -> int | None:
        if self.reported is None or not self.reported.limit:
            return None
        return min(100, round(100 * self.reported.used / self.reported.limit))


def api_budget(connection: CrmConnection, organization: Organization) -> ApiBudget:
    """Return the calls counted in the burst window and today against the limits.

    The limits are the provider's: HubSpot's by subscription tier, and the
    request limits the Pipedrive and Salesforce connectors keep to. "Today"
    is the calendar day in the organisation's time zone.
    """
    burst_limit, burst_window, day_limit, note = _provider_limits(connection)
    today = timezone.localdate(timezone=organization.zoneinfo)
    return ApiBudget(
        burst_used=api_usage.calls_in_burst_window(
            connection.pk, window_seconds=burst_window
        ),
        burst_limit=burst_limit,
        burst_window_seconds=burst_window,
        day_used=api_usage.calls_on_day(connection.pk, today),
        day_limit=day_limit,
        day=today,
        limits_note=note,
        reported=api_usage.reported_usage(connection.pk),
    )


def daily_budget(connection: CrmConnection) -> api_usage.DailyBudget | None:
    """Return today's requests against the provider's daily limit, as ``api_budget``.

    For Salesforce, the budget is the organisation's usage and limit from the
    last Sforce-Limit-Info header, exhausted at ``salesforce.MAX_API_USAGE``
    of the limit, where the connector stops too. Returns None for Pipedrive,
    and for Salesforce before a response reported its usage, so such a run
    does not enter priority mode. A sync checks a Salesforce budget only
    after its first request, so an earlier run's report at the stop point
    does not stop it before it learns that usage has fallen.
    """
    if connection.provider == CrmConnection.Provider.SALESFORCE:
        reported = api_usage.reported_usage(connection.pk)
        if reported is None:
            return None
        return api_usage.DailyBudget(
            used=reported.used,
            limit=reported.limit,
            stop_share=salesforce.MAX_API_USAGE,
        )
    _burst_limit, _window, day_limit, _note = _provider_limits(connection)
    if day_limit is None:
        return None
    today = timezone.localdate(timezone=connection.organization.zoneinfo)
    return api_usage.DailyBudget(
        used=api_usage.calls_on_day(connection.pk, today), limit=day_limit
    )


def _provider_limits(connection: CrmConnection) -> tuple[int, int, int | None, str]:
    """Return (burst limit, burst window in seconds, daily limit, note)."""
    provider = connection.provider
    if provider == CrmConnection.Provider.PIPEDRIVE:
        # NOTE: higher Pipedrive plans allow larger bursts, but the
        # connector does not learn the plan, so the lowest plan's limit applies.
        burst_limit, window = pipedrive.API_TOKEN_LIMIT
        return (
            burst_limit,
            int(window),
            None,
            f"Limit: {burst_limit} requests per {window:g} s per API token, "
            "the burst limit the Pipedrive connector keeps to. Pipedrive's daily "
            "limit is a budget of tokens per company, which depends on the plan "
            "and is not counted in requests here.",
        )
    if provider == CrmConnection.Provider.SALESFORCE:
        burst_limit, window = salesforce.REQUEST_LIMIT
        return (
            burst_limit,
            int(window),
            None,
            f"Limit: Attain's own cap of {burst_limit} requests per "
            f"{window:g} s, because Salesforce sets no short-window limit. "
            "Salesforce's daily limit depends on the edition and licences and "
            "counts every integration's requests. With less than "
            f"{api_usage.PRIORITY_BUDGET_SHARE:.0%} of it left a sync syncs "
            "owners and opportunity changes only, and it stops at "
            f"{salesforce.MAX_API_USAGE:.0%} of it.",
        )
    # NOTE: HubSpot resets the daily limit at midnight in the HubSpot
    # account's time zone, which may differ from the organisation's.
    burst_limit, day_limit = API_LIMITS[connection.api_tier]
    return (
        burst_limit,
        api_usage.BURST_WINDOW_SECONDS,
        day_limit,
        f"Limits of a {connection.get_api_tier_display()} HubSpot private app.",
    )


def owner_mappings(connection: CrmConnection) -> list[OwnerMapping]:
    """Return the owners, unmatched first, with their members."""
    return list(
        OwnerMapping.objects.filter(connection=connection)
        .select_related("membership")
        .order_by(F("membership_id").asc(nulls_first=True), "name", "owner_id")
    )


def assignable_members() -> list[Membership]:
    return list(Membership.objects.filter(is_active=True).order_by("display_name"))


def stage_mappings_by_pipeline(connection: CrmConnection) -> list[tuple[str, list]]:
    """Return (pipeline name, stage mappings in stage order) per CRM pipeline."""
    mappings = (
        StageMapping.objects.filter(connection=connection)
        .select_related("stage__pipeline")
        .order_by("stage__pipeline__name", "crm_pipeline_id", "stage__order")
    )
    pipelines: dict[str, tuple[str, list]] = {}
    for mapping in mappings:
        name = mapping.stage.pipeline.name
        pipelines.setdefault(mapping.crm_pipeline_id, (name, []))[1].append(mapping)
    return list(pipelines.values())


def field_mappings(connection: CrmConnection) -> list[FieldMapping]:
    return list(FieldMapping.objects.filter(connection=connection))


def field_mapping_get(connection: CrmConnection, public_id) -> FieldMapping | None:
    return (
        FieldMapping.objects.filter(connection=connection, public_id=public_id)
        .select_related("connection__organization")
        .first()
    )


# "CRM data as of"


def _data_as_of_key(organization_id: int, with_changed: bool) -> str:
    return f"crm-data-as-of:{organization_id}:{int(with_changed)}"


def data_as_of_forget(organization_id: int) -> None:
    """Drop the cached "CRM data as of" values, after a run finishes."""
    cache.delete_many(
        [_data_as_of_key(organization_id, flag) for flag in (False, True)]
    )


def data_as_of(organization: Organization, with_changed: bool = False) -> dict | None:
    """Return when the CRM data was last synced, and the deals changed since.

    ``synced_at`` is the end of the latest successful sync of any connection.
    With ``with_changed``, ``changed_since_calculation`` counts the live
    deals changed after the latest finished commission calculation (None
    before the first one). Returns None when the organisation has no CRM
    connection. Costs one query, and none while the value is cached
    (``DATA_AS_OF_CACHE_SECONDS``).
    """
    key = _data_as_of_key(organization.pk, with_changed)
    cached = cache.get(key)
    if cached is not None:
        return cached or None

    synced = (
        CrmConnection.objects.order_by()
        .values("organization")
        .annotate(connections=Count("pk"), synced_at=Max("last_synced_at"))
    )
    # One query: the organisation row with scalar subqueries.
    rows = Organization.objects.filter(pk=organization.pk).annotate(
        connections=Subquery(synced.values("connections")),
        synced_at=Subquery(synced.values("synced_at")),
    )
    if with_changed:
        rows = _annotate_changed_deals(rows)
    row = rows.values().first()

    value: dict = {}
    if row and row["connections"]:
        value = {"synced_at": row["synced_at"]}
        if with_changed:
            changed = None
            if row["calculated_at"] is not None:
                changed = row["changed"] or 0
            value["calculated_at"] = row["calculated_at"]
            value["changed_since_calculation"] = changed
    cache.set(key, value, DATA_AS_OF_CACHE_SECONDS)
    return value or None


def _annotate_changed_deals(rows):
    """Annotate the latest finished calculation and the live deals changed since."""
    calculated_at = (
        CalculationRun.objects.filter(status=CalculationRun.Status.DONE)
        .order_by("-finished_at")
        .values("finished_at")[:1]
    )
    changed = (
        Deal.objects.filter(
            archived_at__isnull=True, updated_at__gt=OuterRef("calculated_at")
        )
        .order_by()
        .values("organization")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return rows.annotate(calculated_at=Subquery(calculated_at)).annotate(
        changed=Subquery(changed)
    )
