from __future__ import annotations

import uuid
from decimal import Decimal

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from spm.tenancy import TenantModel


def normalize_email(email: str) -> str:
    """Lowercase the whole address: Attain treats emails as case-insensitive."""
    return (email or "").strip().lower()


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, email: str) -> User:
        return self.get(email__iexact=normalize_email(email))


class User(AbstractBaseUser, PermissionsMixin):
    """A person who can sign in. The email address is the login."""

    email = models.EmailField("email address", max_length=254)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = normalize_email(self.email)

    def save(self, *args, **kwargs) -> None:
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return self.name.split(" ")[0] if self.name else self.email


class Organization(models.Model):
    """A tenant: one sales organisation with its own calendar and currency."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    currency = models.CharField(max_length=3, default="USD")
    fiscal_year_start_month = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(12)]
    )
    fiscal_year_named_by = models.CharField(
        "fiscal years are named by",
        max_length=5,
        choices=[
            ("end", "the calendar year they end in"),
            ("start", "the calendar year they start in"),
        ],
        default="end",
        help_text=(
            "With a February start, 1 February 2024 to 31 January 2025 is FY2025 "
            "when named by the end year, FY2024 when named by the start year."
        ),
    )
    quota_period = models.CharField(
        "quotas are set per",
        max_length=7,
        choices=[("month", "month"), ("quarter", "quarter"), ("year", "year")],
        default="quarter",
    )
    coverage_target_fixed = models.DecimalField(
        "fixed pipeline coverage target",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=(
            "Leave empty to use 1 / trailing win rate for each rep, or the team's "
            "when the rep has too few closed deals."
        ),
    )
    coverage_min_closed_deals = models.PositiveSmallIntegerField(
        "closed deals a rep needs for their own win rate",
        default=20,
        validators=[MinValueValidator(1)],
    )
    reps_see_own_alerts = models.BooleanField(
        "reps see coaching alerts about themselves", default=False
    )
    require_mfa_for_admins = models.BooleanField(
        "require two-factor authentication for admins",
        default=False,
        help_text=(
            "Admins without an authenticator app are sent to set one up before "
            "they can open any page of this organisation."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(fiscal_year_start_month__gte=1)
                & models.Q(fiscal_year_start_month__lte=12),
                name="organization_fiscal_month_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def zoneinfo(self):
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.time_zone)


class Team(TenantModel):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("name"), name="team_name_unique_per_org"
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(TenantModel):
    """A person's place in one organisation: role, team and manager.

    A rep who appears in imported data is a membership with no user until an
    admin invites them by email. The invitation links the user on sign-up.
    """

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MANAGER = "manager", "Manager"
        REP = "rep", "Rep"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="memberships",
    )
    display_name = models.CharField(max_length=150)
    email = models.EmailField(blank=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.REP)
    reports_to = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="direct_reports",
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    is_active = models.BooleanField(default=True)
    start_date = models.DateField(
        null=True,
        blank=True,
        help_text="First day in the role; quotas and ramp schedules count from it.",
    )
    end_date = models.DateField(
        null=True,
        blank=True,
        help_text="Last day in the role; quotas after it are prorated away.",
    )
    employee_id = models.CharField(
        "employee ID",
        max_length=64,
        blank=True,
        help_text="The ID payroll knows this member by, for the payroll export.",
    )
    invited_at = models.DateTimeField(null=True, blank=True)
    external_source = models.CharField(max_length=40, blank=True)
    external_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "user",
                name="membership_user_unique_per_org",
                condition=models.Q(user__isnull=False),
            ),
            models.UniqueConstraint(
                "organization",
                Lower("email"),
                name="membership_email_unique_per_org",
                condition=~models.Q(email=""),
            ),
            models.UniqueConstraint(
                "organization",
                Lower("display_name"),
                name="membership_name_unique_per_org",
            ),
            models.UniqueConstraint(
                "organization",
                "employee_id",
                name="membership_employee_id_unique_per_org",
                condition=~models.Q(employee_id=""),
                violation_error_message="Another member has this employee ID.",
            ),
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True)
                | models.Q(start_date__isnull=True)
                | models.Q(end_date__gte=models.F("start_date")),
                name="membership_end_after_start",
            ),
        ]
        indexes = [models.Index(fields=["organization", "reports_to"])]
        ordering = ["display_name"]

    def __str__(self) -> str:
        return self.display_name

    def save(self, *args, **kwargs) -> None:
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN

    @property
    def is_manager(self) -> bool:
        return self.role == self.Role.MANAGER


class AuditLog(TenantModel):
    """One configuration change: who made it, when, and the values before and after."""

    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=80)
    object_type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=64, blank=True)
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"])]
        ordering = ["-created_at", "-id"]


class ApiKey(TenantModel):
    """A machine credential for one organisation; only the key's SHA-256 is stored."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
