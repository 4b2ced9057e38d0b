"""Statement disputes: raise, reply, resolve, and the reads of the dispute pages.

A member disputes a line of their own statement. The reviewers of a
dispute are the people who may approve the statement: an admin, or a
manager of the rep's reporting tree, never the rep. Both sides write in the
dispute's thread. A reviewer resolves it with a root cause, which admins
count by cause and by plan. Resolving is written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from compensation import line_blocks
from compensation.models import (
    Dispute,
    DisputeMessage,
    PlanVersion,
    Statement,
    StatementLine,
)
from compensation.services_statements import can_approve
from notifications.services import notify
from spm.access import visible_member_ids
from spm.models import Membership, User
from spm.services import audit_log_write

MAX_MESSAGE_LENGTH = 4000


class DisputeError(ValueError):
    """A dispute action that the dispute's state or the actor's role forbids."""


class DisputeOpenError(DisputeError):
    """A second dispute on a line whose first dispute is not resolved yet."""


def can_review(viewer: Membership, dispute: Dispute, visible=None) -> bool:
    """Return whether ``viewer`` may reply to and resolve ``dispute``."""
    return can_approve(viewer, dispute.statement, visible)


def can_see(viewer: Membership, dispute: Dispute, visible=None) -> bool:
    if dispute.raised_by_id == viewer.pk:
        return True
    if visible is None:
        visible = visible_member_ids(viewer)
    return dispute.statement.member_id in visible


def _clean_body(body: str) -> str:
    body = body.strip()
    if not body:
        raise DisputeError(
            "The message is empty. Write what is wrong with the line, or the reply."
        )
    if len(body) > MAX_MESSAGE_LENGTH:
        raise DisputeError(
            f"The message has {len(body)} characters, over the maximum of "
            f"{MAX_MESSAGE_LENGTH}. Shorten it."
        )
    return body


def _url(dispute: Dispute, organization) -> str:
    return reverse(
        "compensation:dispute",
        kwargs={"org_slug": organization.slug, "dispute_id": dispute.public_id},
    )


def _reviewers(rep: Membership) -> list[Membership]:
    """Return the rep's manager, or the admins when the rep has no manager."""
    if rep.reports_to_id is not None:
        return [rep.reports_to]
    return list(
        Membership.objects.filter(role=Membership.Role.ADMIN, is_active=True).exclude(
            pk=rep.pk
        )
    )


@transaction.atomic
def dispute_line(statement: Statement, public_id) -> StatementLine | None:
    """Return the statement's line with ``public_id`` as a row, or None.

    A dispute refers to its line's row, so a line of the statement's block
    turns the whole block into rows first, under the statement's row lock.
    """
    Statement.objects.select_for_update().filter(pk=statement.pk).first()
    line = StatementLine.objects.filter(statement=statement, public_id=public_id)
    if not line.exists() and line_blocks.line_in_block(statement, public_id):
        line_blocks.block_expand(statement)
    return line.first()


@transaction.atomic
def dispute_raise(
    *, statement: Statement, line: StatementLine, raiser: Membership, body: str
) -> Dispute:
    """Open a dispute on ``line`` of the raiser's own ``statement``.

    Raises DisputeError when the statement is not the raiser's, the line is
    not on it, or the message is empty, and DisputeOpenError when the line
    already has a dispute that is not resolved.
    """
    if statement.member_id != raiser.pk:
        raise DisputeError("You can dispute only the lines of your own statement.")
    if line.statement_id != statement.pk:
        raise DisputeError("That line is not on this statement.")
    body = _clean_body(body)
    # Locking the line makes a concurrent raise wait, then see the dispute made here.
    StatementLine.objects.select_for_update().filter(pk=line.pk).first()
    unresolved = (
        Dispute.objects.filter(line=line)
        .exclude(status=Dispute.Status.RESOLVED)
        .order_by("created_at")
        .first()
    )
    if unresolved is not None:
        # In a request, the local time is the organisation's.
        raised_on = timezone.localtime(unresolved.created_at)
        raise DisputeOpenError(
            f"this line already has an open dispute, raised on {raised_on:%Y-%m-%d}. "
            "Add your message to that dispute's thread, listed under Disputes on "
            "this page."
        )
    plan_id = None
    if line.plan_version_id is not None:
        plan_id = (
            PlanVersion.objects.filter(pk=line.plan_version_id)
            .values_list("plan_id", flat=True)
            .first()
        )
    dispute = Dispute.objects.create(
        organization_id=statement.organization_id,
        statement=statement,
        line=line,
        line_explanation=line.explanation,
        line_amount=line.amount,
        deal_id=line.deal_id,
        plan_id=plan_id,
        raised_by=raiser,
    )
    DisputeMessage.objects.create(
        organization_id=statement.organization_id,
        dispute=dispute,
        author=raiser,
        body=body,
    )
    organization = raiser.organization
    notify(
        organization,
        "dispute.raised",
        _reviewers(raiser),
        obj=dispute,
        title=f"{raiser.display_name} disputed a line of {statement.period_label}",
        summary=line.explanation,
        url=_url(dispute, organization),
    )
    return dispute


def _locked(dispute: Dispute) -> Dispute:
    return (
        Dispute.objects.select_for_update(of=("self",))
        .select_related("statement", "raised_by")
        .get(pk=dispute.pk)
    )


@transaction.atomic
def dispute_reply(*, dispute: Dispute, author: Membership, body: str) -> DisputeMessage:
    """Add a message to the thread, by the rep or a reviewer.

    A reviewer's message marks an open dispute answered and notifies the
    rep. Raises DisputeError on a resolved dispute, for anyone else, or for
    an empty message.
    """
    dispute = _locked(dispute)
    reviewer = can_review(author, dispute)
    if dispute.raised_by_id != author.pk and not reviewer:
        raise DisputeError("Only the rep and their reviewers can write here.")
    if dispute.is_resolved:
        raise DisputeError(
            "This dispute is resolved, so it takes no more messages. Raise a new "
            "one on the line."
        )
    message = DisputeMessage.objects.create(
        organization_id=dispute.organization_id,
        dispute=dispute,
        author=author,
        body=_clean_body(body),
    )
    if reviewer and dispute.status == Dispute.Status.OPEN:
        dispute.status = Dispute.Status.ANSWERED
        dispute.save(update_fields=["status"])
    organization = author.organization
    if reviewer:
        notify(
            organization,
            "dispute.answered",
            [dispute.raised_by],
            obj=dispute,
            title=f"{author.display_name} answered your dispute",
            summary=message.body[:200],
            url=_url(dispute, organization),
        )
    return message


@transaction.atomic
def dispute_resolve(
    *,
    dispute: Dispute,
    reviewer: Membership,
    root_cause: str,
    resolution: str,
    actor: User | None,
) -> Dispute:
    """Resolve a dispute with its root cause and a closing message.

    Raises DisputeError when ``reviewer`` may not review it, it is already
    resolved, or the root cause is not one of ``Dispute.RootCause``.
    """
    dispute = _locked(dispute)
    if not can_review(reviewer, dispute):
        raise DisputeError("Only an admin or the rep's manager can resolve this.")
    if dispute.is_resolved:
        raise DisputeError("This dispute is already resolved.")
    if root_cause not in Dispute.RootCause.values:
        raise DisputeError(
            f"Invalid root cause {root_cause!r}: choose one of "
            f"{', '.join(Dispute.RootCause.values)}."
        )
    resolution = _clean_body(resolution)
    old = {"status": dispute.status, "root_cause": dispute.root_cause}
    dispute.status = Dispute.Status.RESOLVED
    dispute.root_cause = root_cause
    dispute.resolution = resolution
    dispute.resolved_by = reviewer
    dispute.resolved_at = timezone.now()
    try:
        dispute.full_clean(exclude=["statement", "line", "raised_by", "plan", "deal"])
    except ValidationError as error:
        raise DisputeError("; ".join(error.messages)) from error
    dispute.save()
    DisputeMessage.objects.create(
        organization_id=dispute.organization_id,
        dispute=dispute,
        author=reviewer,
        body=resolution,
    )
    organization = reviewer.organization
    audit_log_write(
        organization=organization,
        actor=actor,
        action="compensation.dispute_resolved",
        obj=dispute,
        old=old,
        new={
            "status": dispute.status,
            "root_cause": root_cause,
            "resolution": resolution,
            "line": dispute.line_explanation,
        },
    )
    notify(
        organization,
        "dispute.answered",
        [dispute.raised_by],
        obj=dispute,
        title=(
            "Your dispute was resolved (root cause: "
            f"{dispute.get_root_cause_display()})"
        ),
        summary=resolution[:200],
        url=_url(dispute, organization),
    )
    return dispute


# Reads of the dispute pages.


def dispute_get(public_id) -> Dispute | None:
    """Return the dispute with its statement and rep, or None. One query."""
    try:
        return (
            Dispute.objects.select_related(
                "statement__member", "raised_by", "resolved_by", "plan"
            )
            .filter(public_id=public_id)
            .first()
        )
    except ValidationError:
        return None


def dispute_thread(dispute: Dispute) -> list[DisputeMessage]:
    """Return the thread, oldest first, with authors. One query."""
    return list(
        DisputeMessage.objects.filter(dispute=dispute)
        .select_related("author")
        .order_by("created_at", "id")
    )


def disputes_visible(viewer: Membership, visible: set[int]) -> list[Dispute]:
    """Return the disputes ``viewer`` may see, newest first. One query."""
    rows = Dispute.objects.select_related("statement__member", "plan")
    if viewer.is_admin:
        return list(rows)
    return list(rows.filter(statement__member_id__in=visible))


def statement_disputes(statement: Statement) -> list[Dispute]:
    """Return the disputes of one statement, newest first. One query."""
    return list(Dispute.objects.filter(statement=statement))


@dataclass(frozen=True)
class DisputeCounts:
    by_root_cause: list[tuple[str, int]]
    by_plan: list[tuple[str, int, int]]


def dispute_counts() -> DisputeCounts:
    """Return resolved disputes by root cause, and all and open ones by plan.

    Two queries.
    """
    labels = dict(Dispute.RootCause.choices)
    causes = (
        Dispute.objects.filter(status=Dispute.Status.RESOLVED)
        .values_list("root_cause")
        .annotate(count=Count("id"))
        .order_by("root_cause")
    )
    plans = (
        Dispute.objects.values_list("plan__name")
        .annotate(
            count=Count("id"),
            open=Count("id", filter=~Q(status=Dispute.Status.RESOLVED)),
        )
        .order_by("plan__name")
    )
    return DisputeCounts(
        by_root_cause=[(labels.get(cause, cause), count) for cause, count in causes],
        by_plan=[(name or "No plan", count, open_) for name, count, open_ in plans],
    )
