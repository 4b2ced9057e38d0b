"""The CRM mirror: what happened, as imported from files or synced from a CRM.

Every row that came from outside keeps where it came from
(``external_source``, for example "csv" or "hubspot") and its id there
(``external_id``), unique per organisation, so a re-import or re-sync updates
the row instead of adding a second one.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from spm.models import Membership
from spm.tenancy import TenantModel, organization_key

MONEY = {"max_digits": 18, "decimal_places": 2}


class ExternalRecord(TenantModel):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    external_source = models.CharField(max_length=40, blank=True)
    external_id = models.CharField(max_length=255, blank=True)

    class Meta:
        abstract = True
        base_manager_name = "unscoped"


def external_unique(name: str) -> models.UniqueConstraint:
    return models.UniqueConstraint(
        "organization",
        "external_source",
        "external_id",
        name=f"{name}_external_unique",
        condition=~models.Q(external_id=""),
    )


class Pipeline(ExternalRecord):
    name = models.CharField(max_length=120)
    is_default = models.BooleanField(default=False)

    class Meta:
        constraints = [
            external_unique("pipeline"),
            models.UniqueConstraint(
                "organization", Lower("name"), name="pipeline_name_unique_per_org"
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Stage(ExternalRecord):
    """A pipeline stage. Won and lost come from these flags, never from the name."""

    pipeline = models.ForeignKey(
        Pipeline, on_delete=models.CASCADE, related_name="stages"
    )
    name = models.CharField(max_length=120)
    order = models.PositiveIntegerField(default=0)
    probability = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=Decimal("0"),
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Chance of winning a deal in this stage, from 0 to 1.",
    )
    is_closed = models.BooleanField(default=False)
    is_won = models.BooleanField(default=False)

    class Meta:
        constraints = [
            external_unique("stage"),
            models.UniqueConstraint(
                "organization",
                "pipeline",
                Lower("name"),
                name="stage_name_unique_per_pipeline",
            ),
            models.CheckConstraint(
                condition=models.Q(is_won=False) | models.Q(is_closed=True),
                name="stage_won_is_closed",
            ),
        ]
        ordering = ["pipeline_id", "order", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def status(self) -> str:
        if not self.is_closed:
            return "open"
        return "won" if self.is_won else "lost"


class Account(ExternalRecord):
    # Its indexes on (organization, ...) serve lookups by organisation.
    organization = organization_key(db_index=False)
    name = models.CharField(max_length=255)
    domain = models.CharField(max_length=255, blank=True)
    industry = models.CharField(max_length=120, blank=True)
    employees = models.PositiveIntegerField(null=True, blank=True)
    annual_revenue = models.DecimalField(null=True, blank=True, **MONEY)
    country = models.CharField(max_length=120, blank=True)
    year_established = models.PositiveSmallIntegerField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    owner = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [external_unique("account")]
        indexes = [
            models.Index("organization", Lower("name"), name="account_name"),
            # Lead routing finds the account of a lead by its domain.
            models.Index("organization", Lower("domain"), name="account_domain"),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Contact(ExternalRecord):
    # Its indexes on (organization, ...) serve lookups by organisation.
    organization = organization_key(db_index=False)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_name = models.CharField(max_length=120, blank=True)
    last_name = models.CharField(max_length=120, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    title = models.CharField(max_length=120, blank=True)
    owner = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [external_unique("contact")]
        indexes = [models.Index("organization", Lower("email"), name="contact_email")]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email


class Lead(ExternalRecord):
    """A prospect, imported from a CRM or received by lead intake and routed.

    Leads received by intake (``received_at`` set) wait in ``routing_status``
    "pending" until the routing engine assigns them to a rep ("assigned") or
    puts them in the fallback queue ("queued"). Imported leads keep the
    empty status: the CRM already chose their owner.
    """

    # Its indexes on (organization, ...) serve lookups by organisation.
    organization = organization_key(db_index=False)

    class Status(models.TextChoices):
        NEW = "new", "New"
        WORKING = "working", "Working"
        QUALIFIED = "qualified", "Qualified"
        DISQUALIFIED = "disqualified", "Disqualified"
        CONVERTED = "converted", "Converted"

    class RoutingStatus(models.TextChoices):
        NOT_ROUTED = "", "Not routed"
        PENDING = "pending", "Waiting for routing"
        ASSIGNED = "assigned", "Assigned"
        QUEUED = "queued", "In the fallback queue"

    # A lead in these statuses still needs its owner's work; the routing
    # engine counts them for "fewest open leads" and open-lead caps.
    OPEN_STATUSES = (Status.NEW, Status.WORKING)

    first_name = models.CharField(max_length=120, blank=True)
    last_name = models.CharField(max_length=120, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    company = models.CharField(max_length=255, blank=True)
    # Lowercase host name without "www.", from the company website or the
    # email address (never from a free-mail provider).
    domain = models.CharField(max_length=255, blank=True)
    # ISO 3166-1 alpha-2 code for leads received by intake; imported leads
    # keep the text of their source.
    country = models.CharField(max_length=120, blank=True)
    region = models.CharField("region or state", max_length=120, blank=True)
    industry = models.CharField(max_length=120, blank=True)
    company_size = models.PositiveIntegerField(
        null=True, blank=True, help_text="Number of employees."
    )
    estimated_value = models.DecimalField(
        null=True, blank=True, help_text="Estimated deal size.", **MONEY
    )
    custom = models.JSONField(
        default=dict, blank=True, help_text="Other fields of the source, by name."
    )
    source = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=20, choices=Status, default=Status.NEW)
    received_at = models.DateTimeField(
        null=True, blank=True, help_text="When lead intake accepted the lead."
    )
    routing_status = models.CharField(
        max_length=10,
        choices=RoutingStatus,
        default=RoutingStatus.NOT_ROUTED,
        blank=True,
    )
    owner = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    assigned_at = models.DateTimeField(null=True, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [external_unique("lead")]
        indexes = [
            models.Index(fields=["organization", "owner", "assigned_at"]),
            models.Index("organization", Lower("email"), name="lead_email"),
            # Open-lead counts per owner, read from the index alone.
            models.Index(
                fields=["organization", "owner", "status"], name="lead_owner_status"
            ),
            # The few leads waiting for routing or in the fallback queue. The
            # sweeper reads the pending ones across organisations, which a
            # partial index this small serves even with organisation first.
            models.Index(
                fields=["organization", "received_at"],
                condition=models.Q(routing_status="pending"),
                name="lead_routing_pending",
            ),
            models.Index(
                fields=["organization", "received_at"],
                condition=models.Q(routing_status="queued"),
                name="lead_routing_queued",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email


class Product(ExternalRecord):
    name = models.CharField(max_length=255)
    # Lowercase letters and digits only, so "GTXPro" and "GTX Pro" are one product.
    match_key = models.CharField(max_length=255)
    family = models.CharField(max_length=120, blank=True)
    list_price = models.DecimalField(null=True, blank=True, **MONEY)

    class Meta:
        constraints = [
            external_unique("product"),
            models.UniqueConstraint(
                "organization", "match_key", name="product_match_key_unique"
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def key_for(name: str) -> str:
        return "".join(ch for ch in name.casefold() if ch.isalnum())

    def save(self, *args, **kwargs) -> None:
        self.match_key = self.key_for(self.name)
        super().save(*args, **kwargs)


class Deal(ExternalRecord):
    """An opportunity. Open, won or lost is read from its stage's flags."""

    # Its indexes on (organization, ...) serve lookups by organisation.
    organization = organization_key(db_index=False)
    name = models.CharField(max_length=255, blank=True)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="deals"
    )
    owner = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_deals",
    )
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="+")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="deals")
    amount = models.DecimalField(null=True, blank=True, **MONEY)
    currency = models.CharField(max_length=3, blank=True)
    # Calendar dates in the organisation's time zone. A date-only CRM value is
    # stored as given, never shifted through UTC.
    created_on = models.DateField(
        null=True, blank=True, help_text="Date the deal was created or engaged."
    )
    close_date = models.DateField(null=True, blank=True)
    stage_changed_at = models.DateTimeField(null=True, blank=True)
    # Archived, deleted or cancelled in the source: kept, but out of every metric.
    archived_at = models.DateTimeField(null=True, blank=True)
    # Filled by a CRM sync from the properties mapped to them
    # (integrations.models.FieldMapping), and empty while nothing is mapped.
    # The database defaults serve the bulk inserts that name only some columns.
    deal_type = models.CharField(max_length=120, blank=True, default="", db_default="")
    segment = models.CharField(max_length=120, blank=True, default="", db_default="")
    lead_score = models.IntegerField(null=True, blank=True)
    commission_eligible = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [external_unique("deal")]
        # The trailing columns of the close-date and stage indexes let
        # PostgreSQL aggregate closed deals of a period, and open deals by
        # stage, from the index alone (index-only scans). They are key columns
        # rather than INCLUDE columns because SQLite supports no INCLUDE.
        indexes = [
            models.Index(
                fields=[
                    "organization",
                    "close_date",
                    "owner",
                    "stage",
                    "amount",
                    "created_on",
                    "archived_at",
                    "id",
                ],
                name="deal_close_date_metrics",
            ),
            models.Index(fields=["organization", "owner", "close_date"]),
            models.Index(
                fields=["organization", "stage", "owner", "amount", "archived_at"],
                name="deal_stage_metrics",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.external_id or str(self.public_id)


class DealProduct(TenantModel):
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(max_digits=12, decimal_places=2, default=1)
    unit_price = models.DecimalField(null=True, blank=True, **MONEY)
    amount = models.DecimalField(null=True, blank=True, **MONEY)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization", "deal", "product", name="deal_product_unique"
            ),
        ]


class DealSplit(TenantModel):
    """A member's credited share of a deal. Without splits the owner gets 100%.

    ``amount`` is stored so the shares of a deal add up to its amount to the
    cent (largest-remainder rounding, see activity.services).
    """

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="splits")
    member = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="+")
    percent = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    amount = models.DecimalField(**MONEY)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization", "deal", "member", name="deal_split_unique"
            ),
        ]


class DealStageChange(TenantModel):
    # Its indexes on (organization, ...) serve lookups by organisation.
    organization = organization_key(db_index=False)
    deal = models.ForeignKey(
        Deal, on_delete=models.CASCADE, related_name="stage_changes"
    )
    from_stage = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField()
    source = models.CharField(max_length=40, blank=True)
    # The CRM's id of the history row this change came from, such as a
    # Salesforce OpportunityHistory Id. Empty for changes a sync or an
    # import inferred from a new stage. The database default lets the raw
    # INSERTs of the sync writers and the demo generator leave it out.
    external_id = models.CharField(
        max_length=255, blank=True, default="", db_default=""
    )

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization",
                "source",
                "external_id",
                name="deal_stage_change_external_unique",
                condition=~models.Q(external_id=""),
            ),
        ]
        indexes = [models.Index(fields=["organization", "deal", "changed_at"])]
        ordering = ["changed_at", "id"]


class Activity(ExternalRecord):
    # Its indexes on (organization, ...) serve lookups by organisation.
    organization = organization_key(db_index=False)

    class Type(models.TextChoices):
        CALL = "call", "Call"
        EMAIL = "email", "Email"
        MEETING = "meeting", "Meeting"
        NOTE = "note", "Note"
        TASK = "task", "Task"

    type = models.CharField(max_length=10, choices=Type)
    subject = models.CharField(max_length=255, blank=True)
    occurred_at = models.DateTimeField()
    owner = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lead = models.ForeignKey(
        Lead, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    deal = models.ForeignKey(
        Deal, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [external_unique("activity")]
        indexes = [
            # Counts by owner and type in a period read one index range each,
            # from the index alone. A query by owner and time alone should
            # filter on the type too, or use the (organization, occurred_at)
            # index, because the type comes before the time.
            models.Index(
                fields=["organization", "owner", "type", "occurred_at"],
                name="activity_owner_type_time",
            ),
            models.Index(fields=["organization", "occurred_at"]),
        ]
        verbose_name_plural = "activities"


class ImportPreset(TenantModel):
    """A saved column mapping, reused for files with the same headers.

    ``mapping`` maps each record kind to ``{normalised header: target field}``,
    for example ``{"deals": {"opportunity_id": "external_id"}}``.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=80)
    mapping = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        "spm.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("name"), name="import_preset_name_unique"
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ImportJob(TenantModel):
    """One CSV import: its files, status, progress, counts and row errors.

    The row is the truth for the tasks that validate and import it, so a task
    run twice, or after a worker died, reads the status and redoes or skips.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for mapping"
        VALIDATING = "validating", "Validating"
        VALIDATED = "validated", "Validated"
        IMPORTING = "importing", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    RUNNING = (Status.VALIDATING, Status.IMPORTING)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_by = models.ForeignKey(
        "spm.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=12, choices=Status, default=Status.PENDING)
    preset_name = models.CharField(max_length=80, blank=True)
    # Whether the user chose to import the valid rows of a file with invalid ones.
    skip_invalid = models.BooleanField(default=False)
    progress = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(100)], help_text="Percent, 0 to 100."
    )
    total_rows = models.PositiveIntegerField(default=0)
    valid_rows = models.PositiveIntegerField(default=0)
    invalid_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    # {kind: {"created": n, "updated": n, "unchanged": n, "skipped": n}}
    counts = models.JSONField(default=dict, blank=True)
    # [{"file", "line", "column", "value", "message", "blocking"}]; a blocking
    # error is about the whole file, so no row of the job may be imported.
    errors = models.JSONField(default=list, blank=True)
    error_count = models.PositiveIntegerField(default=0)
    failure = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    validated_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        base_manager_name = "unscoped"
        indexes = [models.Index(fields=["organization", "-created_at"])]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Import {self.public_id}"

    @property
    def is_running(self) -> bool:
        return self.status in self.RUNNING

    @property
    def has_blocking_errors(self) -> bool:
        return any(error.get("blocking") for error in self.errors)


class ImportFile(TenantModel):
    """One uploaded file of a job, kept in the database so any worker can read it."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="files")
    position = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(max_length=255)
    # "deals", "members", "accounts" or "products"; blank when not recognised.
    kind = models.CharField(max_length=20, blank=True)
    # The header cells as read, and the target field of each column by position
    # ("" for a column that is not imported).
    header = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(default=list, blank=True)
    content = models.BinaryField()
    size = models.PositiveIntegerField(default=0, help_text="Bytes.")

    class Meta:
        base_manager_name = "unscoped"
        ordering = ["job_id", "position", "id"]

    def __str__(self) -> str:
        return self.name
