"""Reads of coaching: who may see which alert, the inbox, the rules list, the badge.

Managers see the alerts about members of their reporting tree, admins every
alert, and a rep the alerts about themselves when the organisation lets reps
see their own. Anyone else gets 404 for an alert id.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.http import Http404

from coaching.models import Alert, AlertStatus, RecoveryStatus, Rule, Severity
from spm.access import visible_member_ids
from spm.models import Membership

INBOX_PAGE_SIZE = 50
SEVERITY_ORDER = [Severity.CRITICAL, Severity.WARNING, Severity.INFO]


def reads_own_alerts_only(viewer: Membership) -> bool:
    return not (viewer.is_admin or viewer.is_manager)


def may_see_coaching(viewer: Membership) -> bool:
    """Say whether the viewer has an inbox: managers, admins, and reps when allowed."""
    if reads_own_alerts_only(viewer):
        return viewer.organization.reps_see_own_alerts
    return True


def alert_member_ids(viewer: Membership) -> set[int] | None:
    """Return the members whose alerts ``viewer`` may see; None means every member.

    Raises 404 for a rep whose organisation keeps alerts from reps.
    """
    if not may_see_coaching(viewer):
        raise Http404("Page not found.")
    if viewer.is_admin:
        return None
    if viewer.is_manager:
        return visible_member_ids(viewer)
    return {viewer.pk}


def visible_alerts(member_ids: set[int] | None) -> QuerySet[Alert]:
    """Return the alerts about ``member_ids``, or every alert for None."""
    alerts = Alert.objects.all()
    if member_ids is not None:
        alerts = alerts.filter(member_id__in=member_ids)
    return alerts


def alert_for_viewer_or_404(viewer: Membership, public_id) -> Alert:
    """Load an alert the viewer may see, or raise 404."""
    try:
        return (
            visible_alerts(alert_member_ids(viewer))
            .select_related("rule", "member", "acknowledged_by", "resolved_by")
            .get(public_id=public_id)
        )
    except (Alert.DoesNotExist, ValueError):
        raise Http404("No such alert.") from None


def may_work_alert(viewer: Membership) -> bool:
    """Say whether the viewer may acknowledge, resolve and note alerts they see."""
    return viewer.is_admin or viewer.is_manager


@dataclass(frozen=True)
class InboxFilters:
    status: str = AlertStatus.OPEN
    member_id: int | None = None
    rule_id: int | None = None
    severity: str = ""


def inbox_alerts(member_ids: set[int] | None, filters: InboxFilters) -> QuerySet[Alert]:
    """Return the visible alerts with one status, filtered, most severe first."""
    alerts = visible_alerts(member_ids).filter(status=filters.status)
    if filters.member_id is not None:
        alerts = alerts.filter(member_id=filters.member_id)
    if filters.rule_id is not None:
        alerts = alerts.filter(rule_id=filters.rule_id)
    if filters.severity:
        alerts = alerts.filter(rule__severity=filters.severity)
    rank = Case(
        *(
            When(rule__severity=severity, then=Value(position))
            for position, severity in enumerate(SEVERITY_ORDER)
        ),
        default=Value(len(SEVERITY_ORDER)),
        output_field=IntegerField(),
    )
    return (
        alerts.select_related("rule", "member")
        .annotate(severity_rank=rank)
        .order_by("severity_rank", "-first_seen_at", "-pk")
    )


def inbox_counts(member_ids: set[int] | None) -> dict[str, int]:
    """Return the number of visible alerts in each status. One query."""
    counts = visible_alerts(member_ids).aggregate(
        **{
            status: Count("pk", filter=Q(status=status))
            for status in AlertStatus.values
        }
    )
    return {status: counts[status] or 0 for status in AlertStatus.values}


def inbox_reps(member_ids: set[int] | None) -> list[Membership]:
    """Return the reps the inbox may be filtered by."""
    members = Membership.objects.filter(role=Membership.Role.REP)
    if member_ids is not None:
        members = members.filter(pk__in=member_ids)
    return list(members.order_by("display_name"))


def open_alert_count(viewer: Membership) -> int:
    """Return the open alerts the viewer may see, in one query, for the nav badge.

    A manager's count walks the reporting tree in Python over one grouped
    query of every member with their manager and open alert count.
    """
    if not may_see_coaching(viewer):
        return 0
    open_alerts = Alert.objects.filter(status=AlertStatus.OPEN)
    if viewer.is_admin:
        return open_alerts.count()
    if not viewer.is_manager:
        return open_alerts.filter(member_id=viewer.pk).count()

    rows = Membership.objects.values("pk", "reports_to_id").annotate(
        open_alerts=Count(
            "coaching_alerts", filter=Q(coaching_alerts__status=AlertStatus.OPEN)
        )
    )
    children: dict[int | None, list[int]] = defaultdict(list)
    counts: dict[int, int] = {}
    for row in rows:
        children[row["reports_to_id"]].append(row["pk"])
        counts[row["pk"]] = row["open_alerts"]
    # The seen set stops a reporting cycle in bad data.
    seen = {viewer.pk}
    stack = [viewer.pk]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return sum(counts.get(pk, 0) for pk in seen)


# Rules -----------------------------------------------------------------------


@dataclass
class RuleRow:
    rule: Rule
    open_alerts: int
    recovered: int
    not_recovered: int
    may_edit: bool

    @property
    def recovery_rate(self) -> Decimal | None:
        """Return recovered / (recovered + not recovered) as a percentage, or None."""
        judged = self.recovered + self.not_recovered
        if not judged:
            return None
        rate = Decimal(100 * self.recovered) / judged
        return rate.quantize(Decimal("0.1"), ROUND_HALF_UP)


def may_edit_rule(viewer: Membership, rule: Rule | None = None) -> bool:
    """Admins edit any rule; managers only the rules scoped to their own team."""
    if viewer.is_admin:
        return True
    if not viewer.is_manager or viewer.team_id is None:
        return False
    return rule is None or rule.team_id == viewer.team_id


def rule_rows(viewer: Membership) -> list[RuleRow]:
    """Return every rule with its figures over the alerts visible to the viewer.

    One query, whatever the number of rules and alerts.
    """
    member_ids = alert_member_ids(viewer)
    visible = Q()
    if member_ids is not None:
        visible = Q(alerts__member_id__in=member_ids)
    rules = Rule.objects.select_related("team").annotate(
        open_alerts=Count(
            "alerts", filter=visible & ~Q(alerts__status=AlertStatus.RESOLVED)
        ),
        recovered=Count(
            "alerts",
            filter=visible & Q(alerts__recovery_status=RecoveryStatus.RECOVERED),
        ),
        not_recovered=Count(
            "alerts",
            filter=visible & Q(alerts__recovery_status=RecoveryStatus.NOT_RECOVERED),
        ),
    )
    return [
        RuleRow(
            rule,
            rule.open_alerts,
            rule.recovered,
            rule.not_recovered,
            may_edit_rule(viewer, rule),
        )
        for rule in rules.order_by("-is_active", "name", "pk")
    ]


def rule_for_viewer_or_404(viewer: Membership, public_id) -> Rule:
    """Load a rule of the organisation for a manager or admin, or raise 404."""
    if not (viewer.is_admin or viewer.is_manager):
        raise Http404("Page not found.")
    try:
        return Rule.objects.select_related("team").get(public_id=public_id)
    except (Rule.DoesNotExist, ValueError):
        raise Http404("No such rule.") from None


def earlier_alerts(alert: Alert, limit: int = 10) -> list[Alert]:
    """Return the rep's other alerts of the same rule, newest first."""
    return list(
        Alert.objects.filter(rule_id=alert.rule_id, member_id=alert.member_id)
        .exclude(pk=alert.pk)
        .order_by("-first_seen_at", "-pk")[:limit]
    )
