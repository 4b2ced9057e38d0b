"""Writes of stored statements: calculation runs, approval, payment, adjustments.

``statements_calculate`` stores what ``calculate_statement`` computes, for
every member with a plan assignment in the period. A draft statement's
calculated lines are replaced on each run. An approved or paid statement is
locked: when a new calculation of its period pays a different total, the
difference goes to the member's next draft statement as an adjustment line.
Manual lines and adjustment lines already on a draft are kept by a rerun.

A run works through the members in batches (``batch_size``). Each batch
is calculated from one load of its rows and stored in one transaction by
compensation.statement_store, and the run's progress is saved after each
batch, so the statements page can show how far a run has got. The Celery
task sends each batch to a worker of its own, so a run uses as many cores
as there are workers. Every other write here is one transaction with an
audit log entry.

An approval run ("Approve all drafts") approves a period's drafts in the
Celery task, one statement per transaction, and saves its progress every
few statements (``approval_progress_interval``).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from decimal import Decimal

from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from compensation import line_blocks, selectors
from compensation.engine.types import CalculationError
from compensation.models import (
    ApprovalRun,
    CalculationRun,
    Dispute,
    PlanAssignment,
    Statement,
    StatementLine,
)
from compensation.services import calculate_statements, cyclic_gc_paused
from compensation.statement_store import (
    _next_order,
    _total_refresh,
    store_statements,
)
from goals.calendar import DateRange
from notifications.services import notify
from spm.access import visible_member_ids
from spm.models import Membership, Organization, User
from spm.services import audit_log_write

logger = logging.getLogger(__name__)

Status = Statement.Status
Kind = StatementLine.Kind
ZERO = Decimal("0.00")
# Members per batch of a calculation run (see batch_size).
BATCH_MIN = 50
BATCH_MAX = 1000
# Statements an approval run approves between two saves of its progress
# (see approval_progress_interval).
APPROVAL_PROGRESS_MIN = 10
APPROVAL_PROGRESS_MAX = 50


class StatementError(ValueError):
    """A statement action that the statement's status or the actor's role forbids."""


class StatementLockedError(StatementError):
    """A change to an approved or paid statement, whose lines are final."""


class CalculationBusyError(StatementError):
    """A calculation of the period is already queued or running."""


class ApprovalBusyError(StatementError):
    """The member's approval of the period's drafts is already queued or running."""


class NothingToApproveError(StatementError):
    """The period has no draft statement that the member may approve."""


def period_label(period_start: dt.date, period_end: dt.date) -> str:
    return Statement(period_start=period_start, period_end=period_end).period_label


def _statement_snapshot(statement: Statement) -> dict:
    return {
        "member": str(statement.member),
        "period": statement.period_label,
        "status": statement.status,
        "total": str(statement.total),
        "currency": statement.currency,
    }


def _members_to_calculate(period: DateRange) -> list[int]:
    """Return the ids of the members with a plan assignment overlapping ``period``.

    In order of name, then id. One query.
    """
    assigned = PlanAssignment.objects.filter(start_date__lt=period.end).filter(
        Q(end_date__isnull=True) | Q(end_date__gte=period.start)
    )
    return list(
        Membership.objects.filter(pk__in=assigned.values("member_id"))
        .order_by("display_name", "pk")
        .values_list("pk", flat=True)
    )


def batch_size(member_count: int) -> int:
    """Return how many members to calculate and store per transaction.

    About twenty batches per run, so the progress bar moves, but at least
    BATCH_MIN members, so a small organisation takes one batch, and at most
    BATCH_MAX, which bounds the memory of one batch.
    """
    return min(BATCH_MAX, max(BATCH_MIN, math.ceil(member_count / 20)))


def _store_member(
    member: Membership, period: DateRange, run: CalculationRun, actor
) -> tuple[str, StatementLine | None]:
    """Calculate and store one member's statement, and return what happened.

    Raises CalculationError when the member's data is invalid.
    """
    computed = calculate_statements([member], period, direct=True)[member.pk]
    if isinstance(computed, CalculationError):
        raise computed
    return store_statements([(member, computed)], period, run, actor)[0]


def _run_update(run: CalculationRun, **fields) -> None:
    for name, value in fields.items():
        setattr(run, name, value)
    CalculationRun.objects.filter(pk=run.pk).update(**fields)


@transaction.atomic
def calculation_run_queue(
    *, organization: Organization, period: DateRange, actor: User | None
) -> CalculationRun:
    """Create a queued run for ``period`` and send it to the Celery task on commit.

    Raises CalculationBusyError while another run of the period is queued or
    running.
    """
    from compensation import tasks

    # Lock the organisation row, so two clicks cannot both pass the check.
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    busy = CalculationRun.objects.filter(
        period_start=period.start,
        period_end=period.end,
        status__in=CalculationRun.ACTIVE,
    ).exists()
    if busy:
        raise CalculationBusyError(
            f"A calculation of {period.label} is already running; wait for it to "
            "finish."
        )
    run = CalculationRun.objects.create(
        organization=organization,
        period_start=period.start,
        period_end=period.end,
        created_by=actor,
    )
    organization_id, run_id = organization.pk, run.pk
    transaction.on_commit(
        lambda: tasks.statements_calculate_task.delay(organization_id, run_id)
    )
    return run


def statements_calculate(
    *,
    organization: Organization,
    period: DateRange,
    actor: User | None,
    run: CalculationRun | None = None,
) -> CalculationRun:
    """Calculate and store the statements of ``period`` for every assigned member.

    Runs inside ``organization`` (``tenant_context``), one batch after the
    other in this process. The Celery task sends the batches to workers
    instead (``calculation_run_start`` and ``calculation_batch_run``). Uses
    ``run`` when the caller passes a queued row, or creates one. A member
    whose calculation raises CalculationError is listed in the run's errors
    and the others go on. The run fails only on an unexpected error.
    """
    if run is None:
        run = CalculationRun.objects.create(
            organization=organization,
            period_start=period.start,
            period_end=period.end,
            created_by=actor,
        )
    batches = calculation_run_start(organization=organization, period=period, run=run)
    for number, member_ids in enumerate(batches):
        calculation_batch_run(
            organization=organization,
            period=period,
            run=run,
            number=number,
            member_ids=member_ids,
            actor=actor,
        )
    run.refresh_from_db()
    return run


def calculation_run_start(
    *, organization: Organization, period: DateRange, run: CalculationRun
) -> list[list[int]]:
    """Mark the run running and return its members' ids in batches.

    A run with no member is done at once. Starting a run again (a task
    delivered twice) resets its counts, and each batch then counts once.
    """
    members = _members_to_calculate(period)
    size = batch_size(len(members))
    batches = [members[start : start + size] for start in range(0, len(members), size)]
    _run_update(
        run,
        status=CalculationRun.Status.RUNNING,
        started_at=timezone.now(),
        member_count=len(members),
        progress=0,
        batch_count=len(batches),
        batches_done=[],
        calculated_count=0,
        locked_count=0,
        adjustment_count=0,
        error_count=0,
        errors=[],
    )
    if not batches:
        with transaction.atomic():
            _run_finish(run, organization, period, run.created_by)
    return batches


def calculation_batch_run(
    *,
    organization: Organization,
    period: DateRange,
    run: CalculationRun,
    number: int,
    member_ids: list[int],
    actor: User | None,
) -> None:
    """Calculate and store one batch of a run, then count it in the run.

    The statements are stored in one transaction, and the run's counts in a
    second one, under a lock on the run's row, so batches on several workers
    add up. A batch calculated again after a lost worker stores the same
    statements and is counted once. The batch that completes the run marks
    it done. An unexpected error marks the run failed and is raised again,
    except a lost database connection, which the Celery task retries.
    """
    try:
        # The collector stays paused until the batch's statements are freed,
        # so its first pass after the batch has few objects to look at. A
        # pass over the statements still held took about 5% of a run's CPU
        # time.
        with cyclic_gc_paused():
            counts, errors = _batch_store(organization, period, run, member_ids, actor)
        _batch_count(run, organization, period, actor, number, counts, errors)
    except (OperationalError, InterfaceError):
        # Transient: the Celery task retries the batch, and marks the run
        # failed once the retries are used up.
        raise
    except Exception as error:
        logger.exception(
            "Calculation run %s for %s failed",
            run.pk,
            period.label,
            extra={"organization_id": organization.pk, "run_id": run.pk},
        )
        _run_update(
            run,
            status=CalculationRun.Status.FAILED,
            failure=f"{type(error).__name__}: {error}",
            finished_at=timezone.now(),
        )
        raise


def _batch_store(
    organization: Organization,
    period: DateRange,
    run: CalculationRun,
    member_ids: list[int],
    actor: User | None,
) -> tuple[dict[str, int], list[dict]]:
    """Calculate and store the statements of a batch's members.

    Returns the counts of what happened to them and the calculation errors.
    """
    members = list(
        Membership.objects.filter(pk__in=member_ids)
        .select_related("organization")
        .order_by("display_name", "pk")
    )
    results = calculate_statements(members, period, direct=True)
    computed = []
    errors = []
    for member in members:
        result = results[member.pk]
        if isinstance(result, CalculationError):
            logger.warning(
                "Statement of member %s for %s not calculated: %s",
                member.pk,
                period.label,
                result,
                extra={"organization_id": organization.pk, "run_id": run.pk},
            )
            errors.append({"member": str(member), "message": str(result)})
        else:
            computed.append((member, result))
    counts = {"calculated": 0, "locked": 0, "adjustments": 0}
    for outcome, adjustment in store_statements(computed, period, run, actor):
        counts[outcome] += 1
        counts["adjustments"] += adjustment is not None
    return counts, errors


@transaction.atomic
def _batch_count(
    run: CalculationRun,
    organization: Organization,
    period: DateRange,
    actor: User | None,
    number: int,
    counts: dict[str, int],
    errors: list[dict],
) -> None:
    """Add a stored batch's counts to the run, once.

    The batch that completes the run marks it done.
    """
    locked = CalculationRun.objects.select_for_update().get(pk=run.pk)
    if number in locked.batches_done or not locked.is_active:
        return
    calculated = locked.calculated_count + counts["calculated"]
    locked_count = locked.locked_count + counts["locked"]
    all_errors = [*locked.errors, *errors]
    done = calculated + locked_count + len(all_errors)
    _run_update(
        locked,
        batches_done=[*locked.batches_done, number],
        progress=min(done * 100 // max(locked.member_count, 1), 100),
        calculated_count=calculated,
        locked_count=locked_count,
        adjustment_count=locked.adjustment_count + counts["adjustments"],
        error_count=len(all_errors),
        errors=all_errors,
    )
    if len(locked.batches_done) == locked.batch_count:
        _run_finish(locked, organization, period, actor)


def _run_finish(
    run: CalculationRun,
    organization: Organization,
    period: DateRange,
    actor: User | None,
) -> None:
    """Mark the run done and write its audit log entry. Call inside a transaction."""
    _run_update(
        run,
        status=CalculationRun.Status.DONE,
        progress=100,
        finished_at=timezone.now(),
    )
    audit_log_write(
        organization=organization,
        actor=actor,
        action="compensation.statements_calculated",
        obj=run,
        new={
            "period": period.label,
            "members": run.member_count,
            "calculated": run.calculated_count,
            "locked": run.locked_count,
            "adjustments": run.adjustment_count,
            "errors": run.error_count,
        },
    )


def can_approve(
    approver: Membership, statement: Statement, visible: set[int] | None = None
) -> bool:
    """Return whether ``approver`` may approve: an admin, or the rep's manager.

    A manager may approve the statements of their reporting tree. Nobody
    approves their own statement. ``visible`` is the approver's
    ``visible_member_ids``, when the caller has it already.
    """
    if statement.member_id == approver.pk:
        return False
    if approver.is_admin:
        return True
    if not approver.is_manager:
        return False
    if visible is None:
        visible = visible_member_ids(approver)
    return statement.member_id in visible


def _locked_for_update(statement: Statement) -> Statement:
    return (
        Statement.objects.select_for_update()
        .select_related("member")
        .get(pk=statement.pk)
    )


@transaction.atomic
def statement_approve(
    *,
    statement: Statement,
    approver: Membership,
    actor: User | None,
    visible: set[int] | None = None,
) -> Statement:
    """Approve a draft statement, which locks its lines.

    Raises StatementError when ``approver`` may not approve it or it is not
    a draft.
    """
    statement = _locked_for_update(statement)
    if not can_approve(approver, statement, visible):
        raise StatementError(
            f"You cannot approve the statement of {statement.member}: only an "
            "admin or their manager can."
        )
    if statement.status != Status.DRAFT:
        raise StatementError(
            f"The statement of {statement.member} for {statement.period_label} is "
            f"already {statement.get_status_display().lower()}."
        )
    # An approved statement is locked, so a dispute resolved afterwards could
    # only land as an adjustment in a later period.
    open_disputes = statement.disputes.exclude(status=Dispute.Status.RESOLVED).count()
    if open_disputes:
        raise StatementError(
            f"The statement of {statement.member} for {statement.period_label} has "
            f"{open_disputes} open dispute{'s' if open_disputes != 1 else ''}. "
            "Resolve them before approving it."
        )
    old = _statement_snapshot(statement)
    # Approved lines are rows, which adjustments sum and payouts look up by deal.
    line_blocks.block_expand(statement)
    statement.status = Status.APPROVED
    statement.approved_by = actor
    statement.approved_at = timezone.now()
    statement.save(update_fields=["status", "approved_by", "approved_at"])
    organization = statement.member.organization
    audit_log_write(
        organization=organization,
        actor=actor,
        action="compensation.statement_approved",
        obj=statement,
        old=old,
        new=_statement_snapshot(statement),
    )
    notify(
        organization,
        "statement.approved",
        [statement.member],
        obj=statement,
        title=(
            f"Your statement for {statement.period_label} was approved: "
            f"{statement.total:,.2f} {statement.currency}"
        ),
        url=reverse(
            "compensation:statement",
            kwargs={"org_slug": organization.slug, "statement_id": statement.public_id},
        ),
        payload={"period": statement.period_label, "total": str(statement.total)},
    )
    return statement


@transaction.atomic
def statement_mark_paid(
    *, statement: Statement, payer: Membership, actor: User | None
) -> Statement:
    """Record that an approved statement was paid. Admins only.

    Raises StatementError for a non-admin or a statement that is not approved.
    """
    statement = _locked_for_update(statement)
    if not payer.is_admin:
        raise StatementError("Only an admin can mark a statement paid.")
    if statement.status == Status.PAID:
        paid_on = timezone.localtime(statement.paid_at)
        raise StatementError(
            f"The statement of {statement.member} for {statement.period_label} "
            f"was already marked paid on {paid_on:%Y-%m-%d}."
        )
    if statement.status != Status.APPROVED:
        raise StatementError(
            f"The statement of {statement.member} for {statement.period_label} is "
            f"{statement.get_status_display().lower()}; approve it before marking "
            "it paid."
        )
    old = _statement_snapshot(statement)
    statement.status = Status.PAID
    statement.paid_by = actor
    statement.paid_at = timezone.now()
    statement.save(update_fields=["status", "paid_by", "paid_at"])
    audit_log_write(
        organization=statement.member.organization,
        actor=actor,
        action="compensation.statement_paid",
        obj=statement,
        old=old,
        new=_statement_snapshot(statement),
    )
    return statement


@transaction.atomic
def statement_adjust(
    *,
    statement: Statement,
    amount: Decimal,
    reason: str,
    editor: Membership,
    actor: User | None,
) -> StatementLine:
    """Add a manual line of ``amount`` with its ``reason`` to a draft statement.

    Raises StatementLockedError when the statement is approved or paid, and
    StatementError when the reason is empty, the amount is zero or
    ``editor`` may not change the statement (the same people who may
    approve it).
    """
    statement = _locked_for_update(statement)
    if not can_approve(editor, statement):
        raise StatementError(
            f"You cannot adjust the statement of {statement.member}: only an admin "
            "or their manager can."
        )
    if statement.is_locked:
        raise StatementLockedError(
            f"The statement of {statement.member} for {statement.period_label} is "
            f"{statement.get_status_display().lower()}, so its lines can no longer "
            "change. Add the adjustment to a later draft statement."
        )
    reason = reason.strip()
    if not reason:
        raise StatementError("A manual adjustment needs a reason.")
    amount = amount.quantize(Decimal("0.01"))
    if amount == 0:
        raise StatementError("A manual adjustment needs an amount other than 0.00.")
    old_total = statement.total
    line = StatementLine.objects.create(
        organization_id=statement.organization_id,
        statement=statement,
        order=_next_order(statement),
        kind=Kind.MANUAL,
        line_type="manual",
        explanation=f"manual adjustment: {reason}",
        amount=amount,
        reason=reason,
        created_by=actor,
    )
    _total_refresh(statement)
    audit_log_write(
        organization=statement.member.organization,
        actor=actor,
        action="compensation.statement_manual_line",
        obj=statement,
        old={"total": str(old_total)},
        new={"amount": str(amount), "reason": reason, "total": str(statement.total)},
    )
    return line


# Approve all drafts of a period


def approval_progress_interval(statement_count: int) -> int:
    """Return how many statements an approval run approves between progress saves.

    About twenty saves per run, so the progress bar moves, but at least
    APPROVAL_PROGRESS_MIN statements, which keeps the writes of small runs
    low, and at most APPROVAL_PROGRESS_MAX. At an estimated 25 to 40 ms per
    approval, the largest interval is 1.3 to 2 s, close to the page's
    polling interval of 1 s.
    """
    return min(
        APPROVAL_PROGRESS_MAX,
        max(APPROVAL_PROGRESS_MIN, math.ceil(statement_count / 20)),
    )


@transaction.atomic
def approval_run_queue(
    *, viewer: Membership, period: DateRange, actor: User | None
) -> ApprovalRun:
    """Queue the approval of every draft of ``period`` that ``viewer`` may approve.

    The ids of those drafts are stored on the run now, so the run approves
    what the page offered, and a statement calculated after the click waits
    for the next request. The Celery task starts when the transaction
    commits. Raises ApprovalBusyError while the viewer's approval of the
    period is queued or running, and NothingToApproveError when no draft is
    left to approve.
    """
    from compensation import tasks

    # Lock the viewer's row, so two clicks cannot both pass the check.
    Membership.objects.select_for_update().filter(pk=viewer.pk).first()
    busy = ApprovalRun.objects.filter(
        requested_by=viewer,
        period_start=period.start,
        period_end=period.end,
        status__in=ApprovalRun.ACTIVE,
    ).exists()
    if busy:
        raise ApprovalBusyError(
            f"Your approval of the {period.label} drafts is already running. Wait "
            "for it to finish, then try again."
        )
    # The query applies the rule of can_approve, and the task checks each
    # statement again when it approves it.
    statement_ids = list(
        selectors.drafts_to_approve_query(
            viewer, visible_member_ids(viewer), period.start, period.end
        )
        .select_related(None)
        .values_list("pk", flat=True)
    )
    if not statement_ids:
        raise NothingToApproveError(
            f"There are no draft statements for {period.label} that you can "
            "approve, so nothing was queued."
        )
    run = ApprovalRun.objects.create(
        organization_id=viewer.organization_id,
        period_start=period.start,
        period_end=period.end,
        requested_by=viewer,
        actor=actor,
        statement_ids=statement_ids,
        statement_count=len(statement_ids),
    )
    organization_id, run_id = viewer.organization_id, run.pk
    transaction.on_commit(
        lambda: tasks.statements_approve_task.delay(organization_id, run_id)
    )
    return run


def approval_run_execute(
    *, organization: Organization, run: ApprovalRun, seconds: float | None = None
) -> bool:
    """Approve the run's statements, each in its own transaction, then mark it done.

    Runs inside ``organization`` (``tenant_context``). A statement that
    ``statement_approve`` rejects (no longer a draft, an open dispute, out
    of the requester's reach) is listed in the run's skipped statements
    with the message. The counts and progress are saved every
    ``approval_progress_interval`` statements. With ``seconds``, it stops
    at the first save after that time and returns False, and a later call
    goes on from there. Returns True once the run is done or failed.

    A run delivered again goes on after the last save, and counts the
    statements that its actor approved since the run started as approved.
    An unexpected error marks the run failed and is raised again, except a
    lost database connection, which the Celery task retries.
    """
    deadline = None if seconds is None else time.monotonic() + seconds
    resumed = run.status == ApprovalRun.Status.RUNNING
    _approval_update(
        run,
        status=ApprovalRun.Status.RUNNING,
        started_at=run.started_at or timezone.now(),
    )
    try:
        approver = run.requested_by
        if approver is None or not approver.is_active:
            logger.warning(
                "Approval run %s failed: requesting member not found or inactive",
                run.pk,
                extra={"organization_id": organization.pk, "run_id": run.pk},
            )
            _approval_fail(
                run,
                "The member who requested the approval is no longer active, so "
                "the remaining drafts were not approved.",
            )
            return True
        visible = visible_member_ids(approver)
        interval = approval_progress_interval(run.statement_count)
        pending = run.statement_ids[run.processed_count :]
        for start in range(0, len(pending), interval):
            chunk = pending[start : start + interval]
            approved, skipped = _approve_chunk(run, approver, visible, chunk, resumed)
            processed = run.processed_count + len(chunk)
            _approval_update(
                run,
                processed_count=processed,
                progress=processed * 100 // max(run.statement_count, 1),
                approved_count=run.approved_count + approved,
                skipped_count=run.skipped_count + len(skipped),
                skipped=[*run.skipped, *skipped],
            )
            more = processed < run.statement_count
            if more and deadline is not None and time.monotonic() >= deadline:
                return False
        _approval_finish(run, organization)
        return True
    except (OperationalError, InterfaceError):
        # Transient: the Celery task retries, and marks the run failed once
        # the retries are used up.
        raise
    except Exception as error:
        logger.exception(
            "Approval run %s for %s failed",
            run.pk,
            period_label(run.period_start, run.period_end),
            extra={"organization_id": organization.pk, "run_id": run.pk},
        )
        _approval_fail(run, f"{type(error).__name__}: {error}")
        raise


def _approve_chunk(
    run: ApprovalRun,
    approver: Membership,
    visible: set[int],
    statement_ids: list[int],
    resumed: bool,
) -> tuple[int, list[dict]]:
    """Approve these statements of the run and return (approved, skipped)."""
    statements = Statement.objects.select_related("member").in_bulk(statement_ids)
    approved = 0
    skipped = []
    for statement_id in statement_ids:
        statement = statements.get(statement_id)
        if statement is None:
            skipped.append({"member": "", "message": "The statement no longer exists."})
            continue
        if resumed and _approved_by_run(statement, run):
            approved += 1
            continue
        try:
            statement_approve(
                statement=statement, approver=approver, actor=run.actor, visible=visible
            )
        except StatementError as error:
            logger.info(
                "Approval run %s skipped statement %s: %s",
                run.pk,
                statement.pk,
                error,
                extra={"organization_id": run.organization_id, "run_id": run.pk},
            )
            skipped.append({"member": str(statement.member), "message": str(error)})
        else:
            approved += 1
    return approved, skipped


def _approved_by_run(statement: Statement, run: ApprovalRun) -> bool:
    """Return whether an earlier delivery of ``run`` approved the statement.

    That delivery stopped before it saved its counts. Another approval by
    the same user since the run started counts too.
    """
    return (
        statement.status != Status.DRAFT
        and run.actor_id is not None
        and statement.approved_by_id == run.actor_id
        and statement.approved_at is not None
        and statement.approved_at >= run.started_at
    )


def _approval_update(run: ApprovalRun, **fields) -> None:
    for name, value in fields.items():
        setattr(run, name, value)
    ApprovalRun.objects.filter(pk=run.pk).update(**fields)


@transaction.atomic
def _approval_finish(run: ApprovalRun, organization: Organization) -> None:
    """Mark the run done and write its audit log entry."""
    _approval_update(
        run,
        status=ApprovalRun.Status.DONE,
        progress=100,
        finished_at=timezone.now(),
    )
    audit_log_write(
        organization=organization,
        actor=run.actor,
        action="compensation.drafts_approved",
        obj=run,
        new={
            "period": period_label(run.period_start, run.period_end),
            "statements": run.statement_count,
            "approved": run.approved_count,
            "skipped": run.skipped_count,
        },
    )


def _approval_fail(run: ApprovalRun, failure: str) -> None:
    _approval_update(
        run,
        status=ApprovalRun.Status.FAILED,
        failure=failure,
        finished_at=timezone.now(),
    )
