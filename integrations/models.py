"""CRM connections and the state of their syncs.

A connection stores its API credentials encrypted (integrations.crypto). A
sync run mirrors the CRM into activity's models, one page per transaction,
and saves each object type's cursor in the same transaction as its page, so
a run that dies resumes after the last committed page.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.utils import timezone

from integrations import crypto
from spm.models import Membership
from spm.tenancy import TenantModel


class ApiTier(models.TextChoices):
    STARTER = "starter", "Free or Starter"
    PROFESSIONAL = "professional", "Professional"
    ENTERPRISE = "enterprise", "Enterprise"


class CrmConnection(TenantModel):
    class Provider(models.TextChoices):
        HUBSPOT = "hubspot", "HubSpot"
        SALESFORCE = "salesforce", "Salesforce"
        PIPEDRIVE = "pipedrive", "Pipedrive"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        ERROR = "error", "Error"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    provider = models.CharField(max_length=20, choices=Provider)
    name = models.CharField(max_length=120)
    # No default: the admin enters the provider's API address (for HubSpot,
    # https://api.hubapi.com), and tests point it at a local fake server.
    base_url = models.URLField(max_length=300)
    # A Fernet token of the JSON credentials; read and write them through
    # the ``credentials`` property.
    credentials_encrypted = models.TextField(blank=True, editable=False)
    status = models.CharField(max_length=10, choices=Status, default=Status.ACTIVE)
    status_message = models.TextField(blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    # The CRM subscription tier, which sets the API limits the budget view
    # compares the counted calls against (integrations.selectors.API_LIMITS).
    api_tier = models.CharField(max_length=20, choices=ApiTier, default=ApiTier.STARTER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            # The provider name is the ``external_source`` of the synced
            # rows, so one connection per provider keeps their ids apart.
            models.UniqueConstraint(
                "organization", "provider", name="crm_connection_provider_unique"
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<CrmConnection {self.pk} {self.provider}>"

    @property
    def credentials(self) -> dict:
        if not self.credentials_encrypted:
            return {}
        return crypto.decrypt_json(self.credentials_encrypted)

    @credentials.setter
    def credentials(self, value: dict) -> None:
        self.credentials_encrypted = crypto.encrypt_json(value)

    @property
    def source(self) -> str:
        """Return the ``external_source`` written on the rows this connection syncs."""
        return self.provider


class SyncCursor(TenantModel):
    """The sync position of one object type.

    ``modified_at`` and ``record_id`` are a keyset: the next incremental
    listing returns records with (modified time, id) greater than it.
    ``page_after`` is the paging token of a full listing still in progress.
    """

    connection = models.ForeignKey(
        CrmConnection, on_delete=models.CASCADE, related_name="cursors"
    )
    object_type = models.CharField(max_length=40)
    modified_at = models.DateTimeField(null=True, blank=True)
    record_id = models.CharField(max_length=255, blank=True)
    page_after = models.CharField(max_length=255, blank=True)
    full_sync_started_at = models.DateTimeField(null=True, blank=True)
    full_sync_done_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "connection", "object_type", name="sync_cursor_unique"
            ),
        ]


class SyncRun(TenantModel):
    class Kind(models.TextChoices):
        FULL = "full", "Full"
        INCREMENTAL = "incremental", "Incremental"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        # Another run of the connection was executing (integrations.run_lock).
        SKIPPED = "skipped", "Skipped"

    # The statuses of a run that has stopped.
    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    connection = models.ForeignKey(
        CrmConnection, on_delete=models.CASCADE, related_name="runs"
    )
    kind = models.CharField(max_length=12, choices=Kind)
    status = models.CharField(max_length=10, choices=Status, default=Status.QUEUED)
    # {object type: {"created": n, "updated": n, "unchanged": n,
    #  "deleted": n, "failed": n}}
    counts = models.JSONField(default=dict, blank=True)
    # [{"object_type", "record_id", "message"}], owner mapping errors included.
    errors = models.JSONField(default=list, blank=True)
    # The object type being synced and the pages and records committed so far.
    current_object_type = models.CharField(max_length=40, blank=True)
    pages_done = models.PositiveIntegerField(default=0)
    records_done = models.PositiveIntegerField(default=0)
    # HTTP requests the connector sent during the run, 429 responses included.
    api_calls = models.PositiveIntegerField(default=0)
    # Set when the connection's daily API budget ran low, so the run synced
    # owners, pipelines and changed deals (and Salesforce leads) only.
    priority_mode = models.BooleanField(default=False)
    # What a priority-mode run left for a later run, in sync order, such as
    # ["companies", "contacts", "calls", "archived deals"]. Their cursors
    # stay where the last committed page left them.
    deferred_object_types = models.JSONField(default=list, blank=True)
    failure = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        base_manager_name = "unscoped"
        indexes = [models.Index(fields=["organization", "connection", "-created_at"])]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Sync {self.public_id}"


class OwnerMapping(TenantModel):
    """A CRM owner and the member it stands for; no member while unmatched."""

    connection = models.ForeignKey(
        CrmConnection, on_delete=models.CASCADE, related_name="owner_mappings"
    )
    owner_id = models.CharField(max_length=255)
    email = models.EmailField(blank=True)
    name = models.CharField(max_length=255, blank=True)
    membership = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "connection", "owner_id", name="owner_mapping_unique"
            ),
        ]


class StageMapping(TenantModel):
    """A CRM pipeline stage, its outcome and the local stage it maps to."""

    class Outcome(models.TextChoices):
        OPEN = "open", "Open"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    connection = models.ForeignKey(
        CrmConnection, on_delete=models.CASCADE, related_name="stage_mappings"
    )
    crm_pipeline_id = models.CharField(max_length=255)
    crm_stage_id = models.CharField(max_length=255)
    stage = models.ForeignKey(
        "activity.Stage", on_delete=models.CASCADE, related_name="+"
    )
    outcome = models.CharField(max_length=4, choices=Outcome)
    is_closed = models.BooleanField(default=False)
    probability = models.DecimalField(
        max_digits=5, decimal_places=4, default=Decimal("0")
    )

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "connection",
                "crm_pipeline_id",
                "crm_stage_id",
                name="stage_mapping_unique",
            ),
        ]


class FieldMapping(TenantModel):
    """A CRM property whose value fills an Attain field of synced records."""

    class Target(models.TextChoices):
        DEAL_TYPE = "deal_type", "Deal type"
        SEGMENT = "segment", "Segment"
        PRODUCT = "product", "Product"
        LEAD_SCORE = "lead_score", "Lead score"
        COMMISSION_ELIGIBLE = "commission_eligible", "Commission eligible"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    connection = models.ForeignKey(
        CrmConnection, on_delete=models.CASCADE, related_name="field_mappings"
    )
    object_type = models.CharField(max_length=40, default="deals")
    crm_property = models.CharField(max_length=255)
    target = models.CharField(max_length=20, choices=Target)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "connection", "object_type", "target", name="field_mapping_unique"
            ),
        ]
        ordering = ["object_type", "target"]

    def __str__(self) -> str:
        return f"{self.object_type}.{self.crm_property} -> {self.target}"


class WebhookEvent(TenantModel):
    """One CRM webhook notification, stored once per idempotency key.

    ``key`` is a SHA-256 hex digest of the fields that identify the change
    (for HubSpot: portalId, subscriptionType, objectId, propertyName,
    propertyValue and occurredAt), so a redelivery of the same change finds
    the existing row and does nothing.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be applied"
        APPLIED = "applied", "Applied"
        STALE = "stale", "Older than the stored value"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    connection = models.ForeignKey(
        CrmConnection, on_delete=models.CASCADE, related_name="webhook_events"
    )
    key = models.CharField(max_length=64)
    # The provider's own event or notification id, for support requests.
    event_id = models.CharField(max_length=255, blank=True)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=255, blank=True)
    property_name = models.CharField(max_length=255, blank=True)
    property_value = models.TextField(blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    # The CRM reported the record deleted, so applying archives it.
    deleted = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    # The outcome of the last application, or the error that failed it.
    message = models.TextField(blank=True)
    # Applications tried, failed ones included.
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    # When the sweep of pending events last queued this one's application.
    swept_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint("connection", "key", name="webhook_event_unique"),
        ]
        indexes = [
            models.Index(
                fields=["connection", "object_type", "object_id", "property_name"],
                name="webhook_event_property",
            ),
            # The sweep of events whose application task was lost reads the
            # few pending ones among all the events kept.
            models.Index(
                fields=["received_at"],
                condition=models.Q(status="pending"),
                name="webhook_event_pending",
            ),
        ]

    def __repr__(self) -> str:
        return f"<WebhookEvent {self.pk} {self.object_type} {self.object_id}>"


class CrmWriteback(TenantModel):
    """The write-back of one routing assignment's owner to the CRM.

    One row per assignment, so a task delivered twice, a Celery retry and a
    manual retry all find the same row, and a write-back that finished is
    never sent again. ``attempts`` counts the tries of the current round: a
    manual retry starts a new round from zero.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        RUNNING = "running", "Running"
        RETRYING = "retrying", "Waiting to retry"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    assignment = models.OneToOneField(
        "routing.Assignment", on_delete=models.CASCADE, related_name="+"
    )
    connection = models.ForeignKey(
        CrmConnection, on_delete=models.CASCADE, related_name="writebacks"
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # The audit action of the outcome, such as "crm.writeback_updated".
    result = models.CharField(max_length=40, blank=True)
    # The last failure, as written to the audit log.
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        base_manager_name = "unscoped"

    def __repr__(self) -> str:
        return f"<CrmWriteback {self.pk} {self.status}>"
