"""The sync engine: mirror a CRM connection into activity's models.

A run first refreshes owners (mapped to members by email) and pipelines
(stages mapped to open, won or lost), then syncs each object type:

- Until an object type has finished one full listing, the run pages through
  the whole listing. Each page is written in one transaction together with
  the cursor's paging token, so a run that dies resumes after the last
  committed page and writes no record twice.
- After that, the run lists the records modified since the cursor's keyset
  (modified time, id) and moves the keyset with each committed page.

Every run then lists the archived deals and sets ``archived_at`` on the
synced ones, which takes them out of every metric. It also lists the
deleted companies, contacts, calls, emails, meetings and notes (and Salesforce
leads) and deletes their synced rows (writers.delete_records).

When the connection's daily API budget runs low (``api_usage.DailyBudget``),
the run switches to priority mode. It syncs owners, pipelines and the deals
(and Salesforce leads) changed since their cursors, and defers the other
object types, full listings and archive listings with their cursors
unchanged. With no budget left, the run stops after its last committed page.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial

from django.db import DatabaseError, models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from activity.models import Pipeline, Stage
from integrations import api_usage, run_lock, selectors, writers_salesforce
from integrations.connectors import base
from integrations.connectors.hubspot import HubSpotConnector
from integrations.connectors.pipedrive import (
    OAUTH_TOKEN_URL as PIPEDRIVE_OAUTH_TOKEN_URL,
)
from integrations.connectors.pipedrive import PipedriveConnector
from integrations.connectors.salesforce import LEADS, SalesforceConnector
from integrations.deal_fields import deal_field_mappings
from integrations.models import (
    CrmConnection,
    OwnerMapping,
    StageMapping,
    SyncCursor,
    SyncRun,
)
from integrations.writers import (
    DELETED_OBJECT_TYPES,
    Counts,
    SyncContext,
    archive_deals,
    delete_records,
    write_page,
)
from notifications.addresses import UnsafeURL, url_check
from notifications.outbound import allow_private_addresses
from notifications.services import notify
from spm.models import Membership, User
from spm.services import audit_log_write
from spm.tenancy import tenant_context

logger = logging.getLogger(__name__)

# An incremental listing after a full one starts this long before the full
# listing began, so a record modified while it ran, or stamped by a CRM
# clock that runs behind ours, is listed again rather than missed.
FULL_SYNC_OVERLAP = dt.timedelta(minutes=5)
# The cursor fields a committed page moves.
CURSOR_FIELDS = [
    "page_after",
    "full_sync_started_at",
    "full_sync_done_at",
    "modified_at",
    "record_id",
    "updated_at",
]
# The run fields each committed page writes besides its errors, which the
# page's statement appends to instead.
PROGRESS_FIELDS = [
    "pages_done",
    "records_done",
    "counts",
    "current_object_type",
    "api_calls",
    "priority_mode",
    "deferred_object_types",
]
# Settings local to each page's transaction, sent in one statement.
# synchronous_commit off lets the transaction commit before its WAL reaches
# the disk. A server crash can then lose the last pages a run committed, but
# each page goes together with its cursor and progress, so the next run
# lists those pages again and skips no record. PostgreSQL never applies part
# of such a transaction. plan_cache_mode is the setting that
# writers.plan_each_statement sends, for the reason given there.
PAGE_SETTINGS_SQL = (
    "SELECT set_config('synchronous_commit', 'off', true), "
    "set_config('plan_cache_mode', 'force_custom_plan', true)"
)
# The object types a priority-mode run still lists incrementally, because
# their records carry owners and deal stages.
PRIORITY_OBJECT_TYPES = (base.DEALS, LEADS)
# Entries of ``SyncRun.deferred_object_types`` besides object type names.
ARCHIVED_DEALS = "archived deals"
DELETED_LEADS = "deleted leads"


def deleted_entry(object_type: str) -> str:
    """Return the deferred entry of an object type's listing of deleted records."""
    return f"deleted {object_type}"


class SyncFailed(Exception):
    """No connector exists for the connection's provider."""


class ApiBudgetExhausted(base.ConnectorError):
    """The connection used its whole daily API request limit."""


def connector_for(connection: CrmConnection) -> base.Connector:
    """Build the connection's connector from its decrypted credentials.

    HubSpot reads a private app ``access_token``, or OAuth 2's
    ``client_id``, ``client_secret`` and ``refresh_token`` with the stored
    ``access_token`` and ``access_token_expires_at``. Salesforce reads
    ``client_id``, ``client_secret`` and ``refresh_token``, with the stored
    ``access_token`` and ``instance_url``, and ``base_url`` is its login
    host. Pipedrive reads ``api_token``, a bare OAuth ``access_token``, or
    the OAuth 2 fields as HubSpot does plus ``token_url``. A connector that
    refreshes its token stores the new one in the connection's credentials
    (``TokenSaver``).
    """
    _url_allowed(connection.base_url, "API address")
    credentials = connection.credentials
    connector = _connector(connection, credentials)
    _token_saver_attach(connection, connector)
    return connector


def _url_allowed(url: str, label: str) -> None:
    try:
        # Checked again before each run, as webhook URLs are, in case the
        # host now resolves to another address.
        url_check(url, allow_private=allow_private_addresses())
    except UnsafeURL as error:
        raise SyncFailed(f"The {label} is not allowed: {error}") from None


def _connector(connection: CrmConnection, credentials: dict) -> base.Connector:
    provider = connection.provider
    oauth = {
        "client_id": credentials.get("client_id", ""),
        "client_secret": credentials.get("client_secret", ""),
        "refresh_token": credentials.get("refresh_token", ""),
    }
    expires_at = credentials.get("access_token_expires_at")
    if provider == CrmConnection.Provider.HUBSPOT:
        return HubSpotConnector(
            base_url=connection.base_url,
            token=credentials.get("access_token", ""),
            access_token_expires_at=expires_at,
            **oauth,
        )
    if provider == CrmConnection.Provider.SALESFORCE:
        return SalesforceConnector(
            login_url=connection.base_url,
            access_token=credentials.get("access_token", ""),
            instance_url=credentials.get("instance_url", ""),
            **oauth,
        )
    if provider == CrmConnection.Provider.PIPEDRIVE:
        token_url = credentials.get("token_url") or PIPEDRIVE_OAUTH_TOKEN_URL
        if oauth["refresh_token"]:
            _url_allowed(token_url, "OAuth token URL")
        return PipedriveConnector(
            base_url=connection.base_url,
            api_token=credentials.get("api_token", ""),
            access_token=credentials.get("access_token", ""),
            access_token_expires_at=expires_at,
            token_url=token_url,
            **oauth,
        )
    raise SyncFailed(f"No connector for provider {provider!r}.")


class TokenSaver:
    """Store a connector's refreshed OAuth tokens in its connection's credentials.

    A refresh on the thread that built the saver is stored at once. One on
    another thread, such as the fetch-ahead thread of a sync, which must not
    touch the database, waits in memory until that thread calls ``flush``.
    The sync flushes after each committed page and when the run ends.
    NOTE: tokens stored inside a transaction that rolls back are lost, and
    the next run refreshes again with the refresh token stored before.
    """

    def __init__(self, connection: CrmConnection):
        self.connection = connection
        self._thread_id = threading.get_ident()
        self._pending: base.OAuthTokens | None = None
        self._lock = threading.Lock()

    def __call__(self, tokens: base.OAuthTokens) -> None:
        with self._lock:
            self._pending = tokens
        if threading.get_ident() == self._thread_id:
            self.flush()

    def flush(self) -> None:
        """Store the tokens of the last refresh, if any are not stored yet."""
        with self._lock:
            tokens, self._pending = self._pending, None
        if tokens is not None:
            connection_tokens_save(self.connection, tokens)


@transaction.atomic
def connection_tokens_save(connection: CrmConnection, tokens: base.OAuthTokens) -> None:
    """Merge refreshed tokens into the connection's encrypted credentials.

    The row is locked and its credentials read again, so a webhook secret
    saved meanwhile is kept. ``connection`` gets the new credentials too.
    """
    locked = (
        CrmConnection.unscoped.select_for_update()
        .filter(pk=connection.pk)
        .only("credentials_encrypted")
        .first()
    )
    if locked is None:
        return
    locked.credentials = {**locked.credentials, **tokens.credentials()}
    locked.save(update_fields=["credentials_encrypted"])
    connection.credentials_encrypted = locked.credentials_encrypted
    logger.info("Stored the refreshed OAuth tokens of CRM connection %s", connection.pk)


def _tokens_flush(connector: base.Connector) -> None:
    """Store the tokens a fetch-ahead thread refreshed, from this thread."""
    saver = getattr(getattr(connector, "oauth", None), "on_refresh", None)
    if isinstance(saver, TokenSaver):
        saver.flush()


@transaction.atomic
def connection_create(
    *,
    organization,
    actor: User | None,
    provider: str,
    name: str,
    base_url: str,
    credentials: dict,
) -> CrmConnection:
    """Create a connection with encrypted credentials and audit it without them."""
    connection = CrmConnection(
        organization=organization, provider=provider, name=name, base_url=base_url
    )
    connection.credentials = credentials
    connection.save()
    audit_log_write(
        organization=organization,
        actor=actor,
        action="crm.connection_created",
        obj=connection,
        new={"provider": provider, "name": name, "base_url": base_url},
    )
    return connection


@transaction.atomic
def sync_run_create(*, connection: CrmConnection, kind: str) -> SyncRun:
    """Queue a run. A full run restarts every object type's full listing."""
    if kind == SyncRun.Kind.FULL:
        SyncCursor.objects.filter(connection=connection).update(
            page_after="", full_sync_started_at=None, full_sync_done_at=None
        )
    return SyncRun.objects.create(
        organization=connection.organization, connection=connection, kind=kind
    )


def sync_run_create_unless_busy(
    *, connection: CrmConnection, kind: str, stale_after: dt.timedelta
) -> SyncRun | None:
    """Queue a run of an active connection unless another run is pending.

    Return None, creating nothing, when the connection is no longer active or
    has a queued or running run younger than ``stale_after``. The check runs
    while the connection row is locked (SELECT ... FOR UPDATE), and "Sync
    now" takes the same lock, so two concurrent starts create one run.
    """
    with transaction.atomic():
        locked = (
            CrmConnection.objects.select_for_update()
            .filter(pk=connection.pk, status=CrmConnection.Status.ACTIVE)
            .first()
        )
        if locked is None:
            return None
        busy = SyncRun.objects.filter(
            connection=connection,
            status__in=[SyncRun.Status.QUEUED, SyncRun.Status.RUNNING],
            created_at__gte=timezone.now() - stale_after,
        ).exists()
        if busy or run_lock.is_executing(connection.pk):
            return None
        return sync_run_create(connection=locked, kind=kind)


def sync_run_execute(
    *, run: SyncRun, connector: base.Connector | None = None
) -> SyncRun:
    """Run (or resume) a sync run and return it, succeeded, failed or skipped.

    The run is skipped, doing nothing, while another run of its connection
    executes (integrations.run_lock). Raise the error that stopped the run
    after recording it on the run and, for rejected credentials, on the
    connection.
    """
    connection = run.connection
    with tenant_context(connection.organization):
        if run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.SKIPPED):
            return run
        with run_lock.executing(connection.pk) as acquired:
            if not acquired:
                return _skip(run)
            return _run_locked(run, connector)


def _skip(run: SyncRun) -> SyncRun:
    """Stop a run that found another run of its connection executing."""
    run.status = SyncRun.Status.SKIPPED
    run.failure = (
        "Another sync of this connection was running, so this one did nothing. "
        "The next sync goes on from where that one stops."
    )
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "failure", "finished_at"])
    logger.info("CRM sync run %s skipped: another run is executing", run.pk)
    return run


def _run_locked(run: SyncRun, connector: base.Connector | None) -> SyncRun:
    """Execute ``run`` while this session holds its connection's run lock."""
    connection = run.connection
    run.status = SyncRun.Status.RUNNING
    run.started_at = run.started_at or timezone.now()
    run.save(update_fields=["status", "started_at"])
    ctx = SyncContext(connection=connection, run=run)
    ctx.counts.update(_previous_counts(run))
    ctx.errors.extend(run.errors)
    try:
        connector = connector or connector_for(connection)
        _token_saver_attach(connection, connector)
        api_usage.count_calls(connector, run)
        _execute(ctx, connector)
    except Exception as exc:
        if connector is not None:
            _tokens_flush_logged(connector)
        _finish_failed(ctx, exc)
        raise
    _tokens_flush(connector)
    _finish_succeeded(ctx)
    return run


def _token_saver_attach(connection: CrmConnection, connector: base.Connector) -> None:
    """Give a refreshing connector a saver bound to the calling thread.

    A sync attaches it again to a connector it was given, such as a test's.
    """
    oauth = getattr(connector, "oauth", None)
    if oauth is not None:
        oauth.on_refresh = TokenSaver(connection)


def _tokens_flush_logged(connector: base.Connector) -> None:
    """Flush the refreshed tokens of a failed run, logging a database error."""
    try:
        _tokens_flush(connector)
    except DatabaseError:
        logger.exception("Storing the refreshed OAuth tokens of a failed run failed")


def _execute(ctx: SyncContext, connector: base.Connector) -> None:
    # A resumed run decides again, from the budget left now.
    ctx.run.priority_mode = False
    ctx.run.deferred_object_types = []
    if ctx.connection.provider != CrmConnection.Provider.SALESFORCE:
        # Salesforce's budget is the usage its responses report over a
        # rolling 24 hours. A report kept from an earlier run may be out of
        # date, so its first check follows this run's first request.
        _budget_check(ctx)
    ctx.owners = sync_owners(ctx, connector.owners())
    ctx.stages = sync_pipelines(ctx, connector.pipelines())
    ctx.deal_fields = deal_field_mappings(ctx.connection)
    mapped_properties_request(ctx, connector)
    # A connector may sync object types of its own (base.sync_order).
    extra_types = getattr(connector, "extra_object_types", ())
    unsupported = getattr(connector, "unsupported_object_types", ())
    for object_type in base.sync_order(extra_types):
        if object_type in unsupported:
            continue
        cursor, _ = SyncCursor.objects.get_or_create(
            connection=ctx.connection,
            object_type=object_type,
            defaults={"organization": ctx.connection.organization},
        )
        ctx.run.current_object_type = object_type
        _budget_check(ctx)
        _sync_object_type(ctx, connector, cursor)
    _budget_check(ctx)
    if ctx.run.priority_mode:
        _defer(ctx, ARCHIVED_DEALS)
        if LEADS in extra_types:
            _defer(ctx, DELETED_LEADS)
        for object_type in DELETED_OBJECT_TYPES:
            if object_type not in unsupported:
                _defer(ctx, deleted_entry(object_type))
        _deferred_save(ctx)
        return
    for page in connector.archived_pages(base.DEALS):
        _commit(ctx, lambda page=page: archive_deals(ctx, page.records), 0)
    if LEADS in extra_types:
        for page in connector.archived_pages(LEADS):
            delete = partial(writers_salesforce.delete_leads, ctx, page.records)
            _commit(ctx, delete, 0)
    for object_type in DELETED_OBJECT_TYPES:
        if object_type not in unsupported:
            _delete_listed(ctx, connector, object_type)


def _delete_listed(
    ctx: SyncContext, connector: base.Connector, object_type: str
) -> None:
    """Delete the synced rows of the records the CRM lists as deleted.

    Each page is written in its own transaction. An empty page changes
    nothing, so it commits nothing.
    """
    for page in connector.archived_pages(object_type):
        if page.records:
            delete = partial(delete_records, ctx, object_type, page.records)
            _commit(ctx, delete, 0)


def _sync_object_type(
    ctx: SyncContext, connector: base.Connector, cursor: SyncCursor
) -> None:
    """List one object type fully or incrementally, or defer it in priority mode.

    A listing that priority mode interrupts keeps its cursor at the last
    committed page. A deal or lead listing then goes on with the records
    changed since the cursor's keyset, if it has one.
    """
    object_type = cursor.object_type
    if not ctx.run.priority_mode:
        if cursor.full_sync_done_at is None:
            finished = _full_listing(ctx, connector, cursor)
        else:
            deferrable = object_type not in PRIORITY_OBJECT_TYPES
            finished = _incremental_listing(ctx, connector, cursor, deferrable)
        if finished:
            return
    if object_type not in PRIORITY_OBJECT_TYPES or cursor.modified_at is None:
        _defer(ctx, object_type)
        _deferred_save(ctx)
        return
    # A full run has reset this cursor's full listing but kept its keyset.
    # Listing changes from that keyset misses nothing: the full listing,
    # when it finishes on a later run, moves the keyset back to its own start.
    _incremental_listing(ctx, connector, cursor, deferrable=False)
    if cursor.full_sync_done_at is None:
        _defer(ctx, f"{object_type} (full listing)")
        _deferred_save(ctx)


# API budget


def _budget_check(ctx: SyncContext) -> None:
    """Switch the run to priority mode when the daily budget is low.

    Raise ``ApiBudgetExhausted`` when none is left (for Salesforce, at the
    share of the limit where its connector stops). Providers without a
    daily limit (``selectors.daily_budget`` returns None) pass unchecked.
    """
    budget = selectors.daily_budget(ctx.connection)
    if budget is None:
        return
    run = ctx.run
    if budget.exhausted:
        # NOTE: until the day's counter resets, every run the beat queues
        # fails here, and each failure notifies the admins again.
        if budget.stop_share < 1:
            raise ApiBudgetExhausted(
                f"The CRM reports {budget.used} of its {budget.limit} daily API "
                f"requests used, at or above the {budget.stop_share:.0%} a sync "
                "may use, so the sync stopped after its last committed page. A "
                "later run resumes from there once usage falls."
            )
        raise ApiBudgetExhausted(
            f"The connection sent {budget.used} of its {budget.limit} API requests "
            "allowed today, so the sync stopped after its last committed page. "
            "A later run resumes from there once the daily limit resets."
        )
    if budget.low and not run.priority_mode:
        run.priority_mode = True
        run.save(update_fields=["priority_mode"])
        logger.info(
            "CRM sync run %s switched to priority mode: %s of %s daily API "
            "requests left",
            run.pk,
            budget.remaining,
            budget.limit,
            extra={
                "organization_id": ctx.connection.organization_id,
                "sync_run_id": run.pk,
            },
        )


def _listing_stops(ctx: SyncContext, deferrable: bool) -> bool:
    """Check the budget after a committed page. Return True to stop the listing."""
    _budget_check(ctx)
    return deferrable and ctx.run.priority_mode


def _defer(ctx: SyncContext, entry: str) -> None:
    if entry not in ctx.run.deferred_object_types:
        ctx.run.deferred_object_types.append(entry)


def _deferred_save(ctx: SyncContext) -> None:
    ctx.run.save(update_fields=["deferred_object_types"])


# Owners and pipelines


def sync_owners(ctx: SyncContext, owners: list[base.Owner]) -> dict[str, int | None]:
    """Map each CRM owner to a member by email, ignoring case.

    A mapping, once matched, is kept by owner id even if the email changes
    later. An owner without a member keeps an empty mapping and is listed
    among the run's errors, so an admin can invite the rep.
    """
    mappings = {
        m.owner_id: m for m in OwnerMapping.objects.filter(connection=ctx.connection)
    }
    result = {}
    with transaction.atomic():
        for owner in owners:
            mapping = mappings.get(owner.id) or OwnerMapping(
                organization=ctx.connection.organization,
                connection=ctx.connection,
                owner_id=owner.id,
            )
            mapping.email = owner.email
            mapping.name = owner.name[:255]
            if mapping.membership_id is None:
                mapping.membership = _member_by_email(owner.email)
            mapping.save()
            result[owner.id] = mapping.membership_id
            if mapping.membership_id is None:
                _owner_unmatched(ctx, owner)
    return result


def mapped_properties_request(ctx: SyncContext, connector: base.Connector) -> None:
    """Ask the connector for the mapped deal properties, and list the unusable ones.

    A property the CRM does not have, or a name the connector cannot request,
    is dropped from ``ctx.deal_fields`` and listed once among the run's
    errors. The other mappings still apply.
    """
    request = getattr(connector, "mapped_properties_set", None)
    if request is None or not ctx.deal_fields:
        return
    rejected = request(base.DEALS, list(ctx.deal_fields.values()))
    for target, crm_property in list(ctx.deal_fields.items()):
        if crm_property not in rejected:
            continue
        del ctx.deal_fields[target]
        already = any(
            e["object_type"] == "field_mappings" and e["record_id"] == crm_property
            for e in ctx.errors
        )
        if not already:
            ctx.errors.append(
                {
                    "object_type": "field_mappings",
                    "record_id": crm_property,
                    "message": rejected[crm_property],
                }
            )


def _member_by_email(email: str) -> Membership | None:
    if not email:
        return None
    return (
        Membership.objects.filter(is_active=True)
        .filter(Q(email__iexact=email) | Q(user__email__iexact=email))
        .order_by("id")
        .first()
    )


def _owner_unmatched(ctx: SyncContext, owner: base.Owner) -> None:
    already = any(
        e["object_type"] == "owners" and e["record_id"] == owner.id for e in ctx.errors
    )
    if already:
        return
    ctx.errors.append(
        {
            "object_type": "owners",
            "record_id": owner.id,
            "message": (
                f"No member has the email {owner.email or '(none)'} of CRM owner "
                f"{owner.name or owner.id}; records they own have no owner here. "
                "Invite them with that email and sync again."
            ),
        }
    )


def sync_pipelines(
    ctx: SyncContext, pipelines: list[base.PipelineInfo]
) -> dict[str, Stage]:
    """Upsert pipelines and stages; won and lost come from stage metadata.

    A closed stage with probability 1 is won, any other closed stage is
    lost, whatever the stage is called.
    """
    stages = {}
    with transaction.atomic():
        for info in pipelines:
            pipeline = _pipeline_row(ctx, info)
            for stage_info in info.stages:
                stages[stage_info.id] = _stage_row(ctx, pipeline, stage_info)
    return stages


def _pipeline_row(ctx: SyncContext, info: base.PipelineInfo) -> Pipeline:
    pipeline = _find_external(Pipeline.objects.all(), ctx.source, info.id, info.label)
    if pipeline is None:
        pipeline = Pipeline(
            organization=ctx.connection.organization,
            name=_free_name(Pipeline.objects.all(), info.label, 120),
        )
    pipeline.external_source = ctx.source
    pipeline.external_id = info.id
    pipeline.save()
    return pipeline


def _stage_row(ctx: SyncContext, pipeline: Pipeline, info: base.StageInfo) -> Stage:
    siblings = Stage.objects.filter(pipeline=pipeline)
    stage = _find_external(siblings, ctx.source, info.id, info.label)
    if stage is None:
        stage = Stage(
            organization=ctx.connection.organization,
            pipeline=pipeline,
            name=_free_name(siblings, info.label, 120),
        )
    won = info.is_closed and info.probability >= 1
    stage.external_source = ctx.source
    stage.external_id = info.id
    stage.order = info.display_order
    stage.probability = info.probability
    stage.is_closed = info.is_closed
    stage.is_won = won
    stage.save()
    StageMapping.objects.update_or_create(
        connection=ctx.connection,
        crm_pipeline_id=pipeline.external_id,
        crm_stage_id=info.id,
        defaults={
            "organization": ctx.connection.organization,
            "stage": stage,
            "is_closed": info.is_closed,
            "probability": info.probability,
            "outcome": stage.status,
        },
    )
    return stage


def _find_external(queryset, source: str, external_id: str, name: str):
    """Return the row synced from this id, else an unsynced row of that name."""
    row = queryset.filter(external_source=source, external_id=external_id).first()
    if row is None:
        row = queryset.filter(external_id="", name__iexact=name).first()
    return row


def _free_name(queryset, name: str, max_length: int) -> str:
    """Return ``name``, or "name (2)" and so on when another row has it."""
    candidate = name[:max_length]
    number = 2
    while queryset.filter(name__iexact=candidate).exists():
        suffix = f" ({number})"
        candidate = name[: max_length - len(suffix)] + suffix
        number += 1
    return candidate


# Listings


def _full_listing(
    ctx: SyncContext, connector: base.Connector, cursor: SyncCursor
) -> bool:
    """Page through the whole listing. Return False if priority mode stopped it."""
    if not cursor.page_after:
        cursor.full_sync_started_at = timezone.now()
    listing = connector.list_pages(cursor.object_type, after=cursor.page_after or None)
    with _fetched_ahead(listing) as pages:
        for page in pages:
            _commit_listed_page(ctx, cursor, page)
            _tokens_flush(connector)
            if page.next_after is not None and _listing_stops(ctx, deferrable=True):
                return False
    return True


def _commit_listed_page(ctx: SyncContext, cursor: SyncCursor, page: base.Page) -> None:
    def write() -> None:
        _write_page(ctx, cursor.object_type, page.records)
        cursor.page_after = page.next_after or ""
        if page.next_after is None:
            cursor.full_sync_done_at = timezone.now()
            cursor.modified_at = cursor.full_sync_started_at - FULL_SYNC_OVERLAP
            cursor.record_id = ""

    _commit(ctx, write, len(page.records), cursor)


def _incremental_listing(
    ctx: SyncContext, connector: base.Connector, cursor: SyncCursor, deferrable: bool
) -> bool:
    """List the records changed since the cursor's keyset.

    Return False if priority mode stopped a ``deferrable`` listing. The
    budget is checked after every committed page, so an exhausted budget
    stops any listing there.
    """
    since = None
    if cursor.modified_at is not None:
        since = base.Keyset(cursor.modified_at, cursor.record_id)
    with _fetched_ahead(connector.changed_pages(cursor.object_type, since)) as pages:
        for page in pages:
            if not page.records:
                continue
            _commit_changed_page(ctx, cursor, page)
            _tokens_flush(connector)
            if _listing_stops(ctx, deferrable):
                return False
    return True


def _commit_changed_page(ctx: SyncContext, cursor: SyncCursor, page: base.Page) -> None:
    def write() -> None:
        _write_page(ctx, cursor.object_type, page.records)
        last = max(page.records, key=lambda r: r.keyset.sort_key())
        cursor.modified_at = last.modified_at
        cursor.record_id = last.id

    _commit(ctx, write, len(page.records), cursor)


def _write_page(ctx: SyncContext, object_type: str, records: list) -> None:
    """Write one page with its object type's writers, inside the page's transaction."""
    if object_type == LEADS:
        writers_salesforce.write_leads(ctx, records)
        return
    write_page(ctx, object_type, records)
    salesforce = ctx.connection.provider == CrmConnection.Provider.SALESFORCE
    if object_type == base.DEALS and salesforce:
        writers_salesforce.write_stage_history(ctx, records)
        writers_salesforce.link_converted_leads(ctx, records)


@contextlib.contextmanager
def _fetched_ahead(pages: Iterator[base.Page]) -> Iterator[Iterator[base.Page]]:
    """Iterate over ``pages`` while a worker thread requests the next page.

    The next page's HTTP request then overlaps the current page's database
    writes. The worker keeps at most two pages beyond the one being written
    and touches no database, so each page still commits with its cursor, in
    order. An error from the connector is raised here when the page it
    stopped at is due. Leaving the block stops the worker and waits for its
    request in flight.
    """
    slot: queue.Queue = queue.Queue(maxsize=1)
    stopped = threading.Event()

    def hand_over(item: tuple) -> bool:
        while not stopped.is_set():
            try:
                slot.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for page in pages:
                if not hand_over(("page", page)):
                    return
        except BaseException as exc:
            # Anything the connector raises ends the listing in the caller.
            hand_over(("error", exc))
        else:
            hand_over(("done", None))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    def consume() -> Iterator[base.Page]:
        while True:
            kind, value = slot.get()
            if kind == "error":
                raise value
            if kind == "done":
                return
            yield value

    worker = threading.Thread(target=fetch, name="crm-sync-fetch", daemon=True)
    worker.start()
    try:
        yield consume()
    finally:
        stopped.set()
        worker.join()


def _commit(
    ctx: SyncContext,
    write: Callable[[], None],
    records: int,
    cursor: SyncCursor | None = None,
) -> None:
    """Write one page, the cursor it moves and the run's progress in one transaction.

    When the transaction fails, the counts, errors and progress kept in
    memory go back to their committed values. The failed run then records
    what its committed pages did, and a resumed run counts the page once.
    """
    run = ctx.run
    committed = _Progress.of(ctx)
    try:
        with transaction.atomic():
            with transaction.get_connection().cursor() as db_cursor:
                db_cursor.execute(PAGE_SETTINGS_SQL)
            write()
            run.pages_done += 1
            run.records_done += records
            _progress_save(ctx, cursor)
    except BaseException:
        committed.restore(ctx)
        raise


@dataclass(frozen=True)
class _Progress:
    """The counts, number of errors and progress of a run at one moment."""

    counts: dict[str, Counts]
    errors: int
    pages_done: int
    records_done: int

    @classmethod
    def of(cls, ctx: SyncContext) -> _Progress:
        return cls(
            counts={kind: replace(counts) for kind, counts in ctx.counts.items()},
            errors=len(ctx.errors),
            pages_done=ctx.run.pages_done,
            records_done=ctx.run.records_done,
        )

    def restore(self, ctx: SyncContext) -> None:
        ctx.counts.clear()
        ctx.counts.update(self.counts)
        del ctx.errors[self.errors :]
        ctx.run.pages_done = self.pages_done
        ctx.run.records_done = self.records_done


def _progress_save(ctx: SyncContext, cursor: SyncCursor | None) -> None:
    """Write the run's progress, and ``cursor`` if given, in one statement.

    A run only ever appends to its errors, and ``run.errors`` is the list
    last written. The statement appends the entries added since then instead
    of sending the whole list again, and leaves the column alone when there
    are none.
    """
    run = ctx.run
    run.counts = ctx.counts_as_dict()
    values = {name: getattr(run, name) for name in PROGRESS_FIELDS}
    new_errors = ctx.errors[len(run.errors) :]
    appended = {"errors": new_errors} if new_errors else {}
    updates = [(SyncRun, run.pk, values, appended)]
    if cursor is not None:
        cursor.updated_at = timezone.now()
        cursor_values = {name: getattr(cursor, name) for name in CURSOR_FIELDS}
        updates.append((SyncCursor, cursor.pk, cursor_values, {}))
    _rows_update(updates)
    if new_errors:
        run.errors = list(ctx.errors)


def _rows_update(updates: list[tuple[type[models.Model], int, dict, dict]]) -> None:
    """Update one row per (model, primary key, values, appended) in one statement.

    Each row is an UPDATE in a WITH clause. ``values`` replace the fields
    named, and ``appended`` gives JSON arrays to append to array fields.
    Raise ``DatabaseError`` when a row is missing, as ``Model.save`` with
    ``update_fields`` does.
    """
    db = transaction.get_connection()
    quote = db.ops.quote_name
    clauses = []
    params = []
    for number, (model, pk, values, appended) in enumerate(updates):
        assignments = []
        for name, value in values.items():
            field = model._meta.get_field(name)
            assignments.append(f"{quote(field.column)} = %s")
            params.append(field.get_db_prep_save(value, db))
        for name, value in appended.items():
            column = quote(model._meta.get_field(name).column)
            assignments.append(f"{column} = {column} || %s")
            params.append(model._meta.get_field(name).get_db_prep_save(value, db))
        params.append(pk)
        clauses.append(
            f"updated_{number} AS (UPDATE {quote(model._meta.db_table)} "
            f"SET {', '.join(assignments)} WHERE {quote(model._meta.pk.column)} = %s "
            "RETURNING 1)"
        )
    found = ", ".join(
        f"(SELECT count(*) FROM updated_{number})" for number in range(len(updates))
    )
    with db.cursor() as db_cursor:
        db_cursor.execute(f"WITH {', '.join(clauses)} SELECT {found}", params)
        counts = db_cursor.fetchone()
    for (model, pk, _values, _appended), count in zip(updates, counts, strict=True):
        if count != 1:
            raise DatabaseError(
                f"Updating {model._meta.label} {pk} failed: the row was not found, "
                "so the page was rolled back."
            )


def _previous_counts(run: SyncRun) -> dict[str, Counts]:
    """Return the counts a resumed run had committed before it stopped."""
    return {kind: Counts(**values) for kind, values in (run.counts or {}).items()}


# Finishing


def _finish_succeeded(ctx: SyncContext) -> None:
    run = ctx.run
    now = timezone.now()
    run.status = SyncRun.Status.SUCCEEDED
    run.finished_at = now
    run.current_object_type = ""
    run.counts = ctx.counts_as_dict()
    run.errors = ctx.errors
    run.save()
    connection = ctx.connection
    connection.last_synced_at = now
    connection.status = CrmConnection.Status.ACTIVE
    connection.status_message = ""
    connection.save(update_fields=["last_synced_at", "status", "status_message"])
    logger.info(
        "CRM sync run %s succeeded: %s records in %s pages",
        run.pk,
        run.records_done,
        run.pages_done,
        extra={"organization_id": connection.organization_id, "sync_run_id": run.pk},
    )


def _notify_failed(connection: CrmConnection, run: SyncRun) -> None:
    organization = connection.organization
    admins = Membership.objects.filter(
        role=Membership.Role.ADMIN, is_active=True
    ).exclude(user=None)
    notify(
        organization,
        "sync.failed",
        list(admins),
        obj=run,
        title=f"CRM sync of {connection.name} failed: {run.failure[:200]}",
        url=reverse(
            "integrations:connection",
            kwargs={
                "org_slug": organization.slug,
                "connection_id": connection.public_id,
            },
        ),
        payload={"connection": connection.name, "error": run.failure[:500]},
    )


def _finish_failed(ctx: SyncContext, exc: Exception) -> None:
    run = ctx.run
    run.status = SyncRun.Status.FAILED
    run.finished_at = timezone.now()
    run.failure = f"{type(exc).__name__}: {exc}"
    run.counts = ctx.counts_as_dict()
    run.errors = ctx.errors
    run.save()
    if isinstance(exc, base.AuthenticationFailed):
        connection = ctx.connection
        connection.status = CrmConnection.Status.ERROR
        connection.status_message = str(exc)
        connection.save(update_fields=["status", "status_message"])
    _notify_failed(ctx.connection, run)
    logger.error(
        "CRM sync run %s failed: %s",
        run.pk,
        run.failure,
        extra={
            "organization_id": ctx.connection.organization_id,
            "sync_run_id": run.pk,
        },
    )
