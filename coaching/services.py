"""Writes of coaching: rules, rule evaluation into alerts, alert work, recovery.

Evaluating never resolves an alert. When a rep's condition clears, the open
alert is marked ``cleared`` in its details and left for the manager to
resolve. If the condition returns first, the mark is removed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from coaching.catalog import BUILTIN_RULES
from coaching.engine import RuleResult, Verdict, measure_rule
from coaching.models import (
    Alert,
    AlertNote,
    AlertStatus,
    NoteKind,
    RecoveryStatus,
    Rule,
    Severity,
)
from coaching.readings import EvaluationContext
from notifications.catalog import Urgency
from notifications.services import Notice, notify_each
from spm.models import Membership, Organization, User
from spm.services import audit_log_write
from spm.tenancy import tenant_context

logger = logging.getLogger(__name__)

# Entries kept in an alert's event list (cleared, returned); older ones drop off.
MAX_EVENTS = 20


class AlertStateError(ValueError):
    """An alert action that its status does not allow."""


# Rules -----------------------------------------------------------------------

RULE_FIELDS = (
    "name",
    "metric",
    "comparator",
    "threshold_kind",
    "threshold_value",
    "percentile",
    "min_sample",
    "window",
    "window_days",
    "parameter",
    "activity_type",
    "cooldown_days",
    "recovery_window_days",
    "team",
    "severity",
    "is_active",
)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        # 0.8 and 0.8000 are one setting: compare and show them alike.
        return format(value.normalize(), "f")
    if hasattr(value, "_meta"):
        return str(value)
    return value


def rule_snapshot(rule: Rule) -> dict[str, Any]:
    """Return the rule's settings as JSON values, for the audit log."""
    return {name: _plain(getattr(rule, name)) for name in RULE_FIELDS}


@transaction.atomic
def rule_create(
    *, organization: Organization, actor: User | None, **fields: Any
) -> Rule:
    """Create a rule after validating it. Raises ValidationError on bad settings."""
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise ValueError(f"Unknown rule fields: {', '.join(sorted(unknown))}")
    rule = Rule(organization=organization, created_by=actor, **fields)
    rule.full_clean()
    rule.save()
    audit_log_write(
        organization=organization,
        actor=actor,
        action="coaching_rule.create",
        obj=rule,
        new=rule_snapshot(rule),
    )
    return rule


@transaction.atomic
def rule_update(*, rule: Rule, actor: User | None, **changes: Any) -> Rule:
    """Change a rule's settings and audit the old and new values."""
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise ValueError(f"Unknown rule fields: {', '.join(sorted(unknown))}")
    rule = Rule.objects.select_for_update().get(pk=rule.pk)
    old = rule_snapshot(rule)
    for name, value in changes.items():
        setattr(rule, name, value)
    rule.full_clean()
    rule.save()
    new = rule_snapshot(rule)
    if old != new:
        audit_log_write(
            organization=rule.organization,
            actor=actor,
            action="coaching_rule.update",
            obj=rule,
            old=old,
            new=new,
        )
    return rule


def builtin_rules_create(*, organization: Organization) -> list[Rule]:
    """Create the built-in rules the organisation does not have yet.

    Runs when an organisation is created, and from the migration that added
    the rules for organisations that existed before. A rule an admin edited
    or disabled is kept as it is.
    """
    with tenant_context(organization):
        existing = set(
            Rule.objects.exclude(builtin_key="").values_list("builtin_key", flat=True)
        )
        missing = [
            Rule(organization=organization, **spec.fields())
            for spec in BUILTIN_RULES
            if spec.key not in existing
        ]
        return Rule.objects.bulk_create(missing)


# Evaluation ------------------------------------------------------------------


@dataclass
class EvaluationSummary:
    rules: int = 0
    created: int = 0
    updated: int = 0
    cleared: int = 0


def _active_reps() -> list[Membership]:
    return list(
        Membership.objects.filter(is_active=True, role=Membership.Role.REP).order_by(
            "pk"
        )
    )


def evaluation_context(
    organization: Organization,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
) -> EvaluationContext:
    """Return the context of one evaluation. Call it inside the tenant context."""
    now = now or timezone.now()
    today = today or now.astimezone(organization.zoneinfo).date()
    return EvaluationContext(organization, today, now, _active_reps())


def evaluate_rules(
    organization: Organization,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
) -> EvaluationSummary:
    """Evaluate every active rule for every active rep, and create or update alerts.

    ``today`` is the organisation's local date and ``now`` the instant of the
    evaluation; both default to the present. Each rule reads its metric with
    a fixed number of queries, then writes its alerts in one transaction
    that holds the rule's row lock, so two evaluations of the same rule
    cannot both create an alert for the same rep.
    """
    summary = EvaluationSummary()
    with tenant_context(organization):
        ctx = evaluation_context(organization, today, now)
        for rule in Rule.objects.filter(is_active=True).order_by("pk"):
            result = measure_rule(ctx, rule)
            _write_alerts(ctx, rule, result, summary)
            summary.rules += 1
    logger.info(
        "Evaluated %s coaching rules: %s alerts created, %s updated, %s cleared",
        summary.rules,
        summary.created,
        summary.updated,
        summary.cleared,
        extra={"organization_id": organization.pk},
    )
    return summary


def _number(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _window_details(result: RuleResult) -> dict[str, Any]:
    window = result.window
    return {
        "start": window.start.isoformat() if window.start else None,
        "end": window.end.isoformat() if window.end else None,
        "label": window.label,
    }


def _cooling_down(rule: Rule, now: dt.datetime) -> set[int]:
    """Return the reps whose last alert of ``rule`` was resolved within the cooldown."""
    if not rule.cooldown_days:
        return set()
    since = now - dt.timedelta(days=rule.cooldown_days)
    return set(
        Alert.objects.filter(
            rule=rule, status=AlertStatus.RESOLVED, resolved_at__gt=since
        ).values_list("member_id", flat=True)
    )


def _new_alert(
    ctx: EvaluationContext,
    rule: Rule,
    member_id: int,
    verdict: Verdict,
    result: RuleResult,
) -> Alert:
    first = {
        "at": ctx.now.isoformat(),
        "value": _number(verdict.value),
        "threshold": _number(verdict.threshold),
    }
    return Alert(
        organization=ctx.organization,
        rule=rule,
        member_id=member_id,
        period_key=result.window.key,
        period_label=result.window.label,
        value=verdict.value,
        threshold=verdict.threshold,
        team_value=verdict.team_value,
        sample_size=verdict.sample,
        details={
            "evidence": verdict.evidence,
            "window": _window_details(result),
            "first": first,
            "events": [],
        },
        first_seen_at=ctx.now,
        last_evaluated_at=ctx.now,
    )


def _add_event(alert: Alert, event: str, at: dt.datetime, **extra: Any) -> None:
    events = alert.details.setdefault("events", [])
    events.append({"event": event, "at": at.isoformat(), **extra})
    del events[:-MAX_EVENTS]


def _refresh_alert(
    ctx: EvaluationContext, alert: Alert, verdict: Verdict, result: RuleResult
) -> str:
    """Bring an unresolved alert up to date and return what changed about it.

    Returns "cleared" when the condition stopped holding, else "updated".
    """
    alert.last_evaluated_at = ctx.now
    alert.details.pop("not_judged", None)
    if verdict.breached is None:
        alert.details["not_judged"] = verdict.reason
        return "updated"
    alert.value = verdict.value
    alert.threshold = verdict.threshold
    alert.team_value = verdict.team_value
    alert.sample_size = verdict.sample
    alert.period_label = result.window.label
    alert.details["evidence"] = verdict.evidence
    alert.details["window"] = _window_details(result)
    cleared = alert.details.get("cleared")
    if verdict.breached and cleared:
        alert.details.pop("cleared")
        _add_event(alert, "returned", ctx.now, value=_number(verdict.value))
    elif not verdict.breached and not cleared:
        alert.details["cleared"] = {
            "at": ctx.now.isoformat(),
            "value": _number(verdict.value),
            "reason": verdict.reason,
        }
        _add_event(alert, "cleared", ctx.now, value=_number(verdict.value))
        return "cleared"
    return "updated"


def _alert_state(alert: Alert) -> tuple:
    """Return what an evaluation may change on an alert, but its evaluation time."""
    return (
        alert.value,
        alert.threshold,
        alert.team_value,
        alert.sample_size,
        alert.period_label,
        json.dumps(alert.details, sort_keys=True, cls=DjangoJSONEncoder),
    )


ALERT_REFRESH_FIELDS = [
    "value",
    "threshold",
    "team_value",
    "sample_size",
    "period_label",
    "details",
    "last_evaluated_at",
]


def _write_alerts(
    ctx: EvaluationContext,
    rule: Rule,
    result: RuleResult,
    summary: EvaluationSummary,
) -> None:
    with transaction.atomic():
        # The lock makes concurrent evaluations of this rule run one at a time.
        locked = Rule.objects.select_for_update().filter(pk=rule.pk, is_active=True)
        if not list(locked.values_list("pk", flat=True)):
            return
        unresolved = {
            alert.member_id: alert
            for alert in Alert.objects.filter(
                rule=rule, period_key=result.window.key
            ).exclude(status=AlertStatus.RESOLVED)
        }
        cooling = _cooling_down(rule, ctx.now)
        created, changed, unchanged = [], [], []
        for member_id, verdict in result.verdicts.items():
            alert = unresolved.get(member_id)
            if alert is not None:
                before = _alert_state(alert)
                outcome = _refresh_alert(ctx, alert, verdict, result)
                if _alert_state(alert) == before:
                    unchanged.append(alert.pk)
                else:
                    changed.append(alert)
                summary.cleared += outcome == "cleared"
                summary.updated += outcome == "updated"
            elif verdict.breached and member_id not in cooling:
                created.append(_new_alert(ctx, rule, member_id, verdict, result))
        Alert.objects.bulk_create(created, batch_size=500)
        _notify_opened(ctx, rule, created)
        # Most alerts read the same as an hour ago: those only get the new
        # evaluation time, in one UPDATE, instead of a row each in the
        # CASE expressions of bulk_update.
        Alert.objects.bulk_update(changed, ALERT_REFRESH_FIELDS, batch_size=500)
        if unchanged:
            Alert.objects.filter(pk__in=unchanged).update(last_evaluated_at=ctx.now)
        summary.created += len(created)


def _notify_opened(ctx: EvaluationContext, rule: Rule, alerts: list[Alert]) -> None:
    """Notify each new alert's rep's manager, and the rep when reps see their own."""
    reps = {rep.pk: rep for rep in ctx.reps}
    organization = ctx.organization
    urgency = Urgency.NORMAL if rule.severity == Severity.CRITICAL else None
    notices = []
    for alert in alerts:
        rep = reps[alert.member_id]
        own = rep.pk if organization.reps_see_own_alerts else None
        path = reverse(
            "coaching:alert",
            kwargs={"org_slug": organization.slug, "alert_id": alert.public_id},
        )
        notices.append(
            Notice(
                members=[rep.reports_to_id, own],
                title=f"{rule.name}: {rep.display_name}",
                obj=alert,
                url=path,
                payload={
                    "rule": rule.name,
                    "rep": rep.display_name,
                    "period": alert.period_label,
                },
                urgency=urgency,
            )
        )
    notify_each(organization, "coaching.alert_opened", notices)


# Alert work ------------------------------------------------------------------


def _locked_alert(alert: Alert) -> Alert:
    return Alert.objects.select_for_update().get(pk=alert.pk)


@transaction.atomic
def alert_acknowledge(*, alert: Alert, actor: User) -> Alert:
    """Mark an open alert as being worked on."""
    alert = _locked_alert(alert)
    if alert.status != AlertStatus.OPEN:
        raise AlertStateError(
            f"This alert is {alert.get_status_display().lower()}: only an open "
            "alert can be acknowledged."
        )
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at = timezone.now()
    alert.acknowledged_by = actor
    alert.save(update_fields=["status", "acknowledged_at", "acknowledged_by"])
    return alert


@transaction.atomic
def alert_resolve(
    *, alert: Alert, actor: User | None, now: dt.datetime | None = None
) -> Alert:
    """Resolve an alert and start its recovery window.

    The rule may alert on the rep again once the cooldown has passed, and the
    daily recovery check measures the metric when the recovery window ends.
    """
    alert = _locked_alert(alert)
    if alert.status == AlertStatus.RESOLVED:
        raise AlertStateError("This alert is already resolved.")
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = now or timezone.now()
    alert.resolved_by = actor
    alert.recovery_status = RecoveryStatus.PENDING
    alert.save(
        update_fields=["status", "resolved_at", "resolved_by", "recovery_status"]
    )
    return alert


@transaction.atomic
def alert_note_add(
    *, alert: Alert, author: User, body: str, kind: str = NoteKind.NOTE
) -> AlertNote:
    """Add a private note, or log a coaching conversation the rep may read."""
    body = body.strip()
    if not body:
        raise ValueError("The note text is missing: write what was said or agreed.")
    if kind not in NoteKind.values:
        raise ValueError(f"Unknown note kind {kind!r}: use note or conversation.")
    return AlertNote.objects.create(
        organization=alert.organization,
        alert=alert,
        author=author,
        body=body,
        kind=kind,
    )


# Recovery --------------------------------------------------------------------


@dataclass
class RecoverySummary:
    recovered: int = 0
    not_recovered: int = 0
    pending: int = 0


def _recovery_due(alert: Alert, now: dt.datetime) -> bool:
    window = dt.timedelta(days=alert.rule.recovery_window_days)
    return alert.resolved_at + window <= now


def _apply_recovery(
    alert: Alert, verdict: Verdict | None, now: dt.datetime, summary: RecoverySummary
) -> None:
    alert.recovery_checked_at = now
    if verdict is not None and verdict.breached is not None:
        alert.recovery_value = verdict.value
        if verdict.breached:
            alert.recovery_status = RecoveryStatus.NOT_RECOVERED
            summary.not_recovered += 1
        else:
            alert.recovery_status = RecoveryStatus.RECOVERED
            alert.recovered_at = now
            summary.recovered += 1
        return
    # No measurement (too small a sample, no target, rep gone): try again
    # daily until twice the window has passed, then count it as not recovered.
    reason = "not an active rep" if verdict is None else verdict.reason
    alert.details["recovery_note"] = reason
    window = dt.timedelta(days=alert.rule.recovery_window_days)
    if alert.resolved_at + 2 * window <= now:
        alert.recovery_status = RecoveryStatus.NOT_RECOVERED
        summary.not_recovered += 1
    else:
        summary.pending += 1


def recovery_check(
    *,
    organization: Organization,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
) -> RecoverySummary:
    """Measure again the metric of every resolved alert whose recovery window ended.

    The rep recovered when the rule's condition no longer holds for them now,
    with the rule's current settings and window.
    """
    summary = RecoverySummary()
    with tenant_context(organization):
        ctx = evaluation_context(organization, today, now)
        pending = Alert.objects.filter(
            status=AlertStatus.RESOLVED, recovery_status=RecoveryStatus.PENDING
        ).select_related("rule")
        by_rule: dict[int, list[Alert]] = {}
        for alert in pending:
            if _recovery_due(alert, ctx.now):
                by_rule.setdefault(alert.rule_id, []).append(alert)
        for alerts in by_rule.values():
            result = measure_rule(ctx, alerts[0].rule)
            for alert in alerts:
                verdict = result.verdicts.get(alert.member_id)
                _apply_recovery(alert, verdict, ctx.now, summary)
            fields = [
                "recovery_status",
                "recovery_value",
                "recovery_checked_at",
                "recovered_at",
                "details",
            ]
            Alert.objects.bulk_update(alerts, fields, batch_size=500)
    return summary
