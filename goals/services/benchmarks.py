"""Activity benchmark writes, each audited with its old and new values."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.db import IntegrityError, transaction

from activity.models import Activity
from goals.models import ActivityBenchmark, BenchmarkUnit
from goals.values import MAX_RAMP_MONTHS
from spm.models import Membership, Organization, Team, User
from spm.services import audit_log_write

# ActivityBenchmark.target has max_digits=8 and decimal_places=2.
MAX_BENCHMARK_TARGET = Decimal("999999.99")


class BenchmarkError(ValueError):
    """An invalid benchmark. ``field`` names the form field it concerns."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _benchmark_values(benchmark: ActivityBenchmark) -> dict:
    return {
        "activity_type": benchmark.activity_type,
        "unit": benchmark.unit,
        "target": str(Decimal(benchmark.target).quantize(Decimal("0.01"))),
        "role": benchmark.role or None,
        "team": benchmark.team.name if benchmark.team_id else None,
        "ramp": list(benchmark.ramp),
    }


def benchmark_scope_label(role: str, team: Team | None) -> str:
    if team is not None and role:
        return f"{Membership.Role(role).label.lower()}s of {team.name}"
    if team is not None:
        return team.name
    if role:
        return f"{Membership.Role(role).label.lower()}s"
    return "everyone"


def _check_benchmark(benchmark: ActivityBenchmark) -> None:
    if benchmark.activity_type not in Activity.Type.values:
        raise BenchmarkError(
            f"Invalid activity type {benchmark.activity_type!r}.", "activity_type"
        )
    if benchmark.unit not in BenchmarkUnit.values:
        raise BenchmarkError(f"Invalid unit {benchmark.unit!r}.", "unit")
    target = Decimal(benchmark.target)
    if not Decimal("0.01") <= target <= MAX_BENCHMARK_TARGET:
        raise BenchmarkError(
            f"The target {target} must be from 0.01 to {MAX_BENCHMARK_TARGET}.",
            "target",
        )
    if target != target.quantize(Decimal("0.01")):
        raise BenchmarkError(
            f"The target {target} has more than 2 decimal places.", "target"
        )
    if benchmark.team is not None:
        if benchmark.team.organization_id != benchmark.organization_id:
            raise ValueError(f"The team {benchmark.team} is in another organisation.")
    if benchmark.role and benchmark.role not in Membership.Role.values:
        raise BenchmarkError(f"Invalid role {benchmark.role!r}.", "applies_to")
    _check_ramp(benchmark.ramp)

    same_scope = ActivityBenchmark.objects.filter(
        activity_type=benchmark.activity_type,
        role=benchmark.role,
        team=benchmark.team,
    ).exclude(pk=benchmark.pk)
    if same_scope.exists():
        kind = Activity.Type(benchmark.activity_type).label.lower()
        scope = benchmark_scope_label(benchmark.role, benchmark.team)
        raise BenchmarkError(
            f"A benchmark of {kind}s for {scope} already exists: edit that one "
            "instead.",
            "applies_to",
        )


def _check_ramp(ramp: list) -> None:
    if not isinstance(ramp, list) or len(ramp) > MAX_RAMP_MONTHS:
        raise BenchmarkError(
            f"The ramp must list at most {MAX_RAMP_MONTHS} monthly percentages.",
            "ramp",
        )
    for month, value in enumerate(ramp, start=1):
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not (0 <= value <= 100)
        ):
            raise BenchmarkError(
                f"Month {month} of the ramp, {value!r}, is not a whole percentage "
                "from 0 to 100.",
                "ramp",
            )


def _save(benchmark: ActivityBenchmark) -> None:
    """Save ``benchmark``, raising BenchmarkError when another request saved
    one of the same scope at the same moment."""
    try:
        with transaction.atomic():
            benchmark.save()
    except IntegrityError:
        raise BenchmarkError(
            "A benchmark of this activity type and scope was saved at the same "
            "time: reload the page.",
            "applies_to",
        ) from None


@transaction.atomic
def benchmark_create(
    *,
    organization: Organization,
    actor: User | None,
    activity_type: str,
    unit: str,
    target: Decimal,
    role: str = "",
    team: Team | None = None,
    ramp: Sequence[int] = (),
) -> ActivityBenchmark:
    """Create a benchmark for a role, a team, or everyone (neither given).

    Raises BenchmarkError for an invalid value, or when a benchmark of the
    same activity type and scope exists.
    """
    benchmark = ActivityBenchmark(
        organization=organization,
        activity_type=activity_type,
        unit=unit,
        target=target,
        role=role,
        team=team,
        ramp=list(ramp),
    )
    _check_benchmark(benchmark)
    _save(benchmark)
    audit_log_write(
        organization=organization,
        actor=actor,
        action="benchmark.create",
        obj=benchmark,
        new=_benchmark_values(benchmark),
    )
    return benchmark


BENCHMARK_FIELDS = ("activity_type", "unit", "target", "role", "team", "ramp")


@transaction.atomic
def benchmark_update(
    *, benchmark: ActivityBenchmark, actor: User | None, **changes
) -> ActivityBenchmark:
    """Change a benchmark's fields, with an audit entry only when a value changes."""
    old = _benchmark_values(benchmark)
    for name, value in changes.items():
        if name not in BENCHMARK_FIELDS:
            raise ValueError(f"Unknown benchmark field: {name}")
        setattr(benchmark, name, list(value) if name == "ramp" else value)
    _check_benchmark(benchmark)
    new = _benchmark_values(benchmark)
    if new != old:
        _save(benchmark)
        audit_log_write(
            organization=benchmark.organization,
            actor=actor,
            action="benchmark.update",
            obj=benchmark,
            old=old,
            new=new,
        )
    return benchmark


@transaction.atomic
def benchmark_delete(*, benchmark: ActivityBenchmark, actor: User | None) -> None:
    audit_log_write(
        organization=benchmark.organization,
        actor=actor,
        action="benchmark.delete",
        obj=benchmark,
        old=_benchmark_values(benchmark),
    )
    benchmark.delete()
