"""Coaching pages: the alert inbox, alert detail and actions, and the rules.

An alert or rule the viewer may not see is a 404. A rep who may read an
alert about themselves gets 403 on its actions, and a manager gets 403 when
editing a rule outside their own team.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from coaching import selectors, services
from coaching.forms import AlertNoteForm, InboxFilterForm, RuleForm
from coaching.models import Alert, AlertStatus, NoteKind, Rule
from coaching.selectors import InboxFilters

EVENT_LABELS = {"cleared": "Condition cleared", "returned": "Condition returned"}


def _find(items, public_id: str):
    for item in items:
        if str(item.public_id) == public_id:
            return item
    return None


def _inbox_filters(form: InboxFilterForm, reps, rules) -> InboxFilters:
    data = form.cleaned_data if form.is_valid() else {}
    rep = _find(reps, data.get("rep") or "")
    rule = _find(rules, data.get("rule") or "")
    return InboxFilters(
        status=data.get("status") or AlertStatus.OPEN,
        member_id=rep.pk if rep else None,
        rule_id=rule.pk if rule else None,
        severity=data.get("severity") or "",
    )


@login_required
@require_GET
def inbox(request: HttpRequest, org_slug: str) -> HttpResponse:
    viewer = request.membership
    member_ids = selectors.alert_member_ids(viewer)
    reps = selectors.inbox_reps(member_ids)
    rules = list(Rule.objects.order_by("name", "pk"))
    form = InboxFilterForm(request.GET or None, reps=reps, rules=rules)
    filters = _inbox_filters(form, reps, rules)

    alerts = selectors.inbox_alerts(member_ids, filters)
    page = Paginator(alerts, selectors.INBOX_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    tabs = []
    counts = selectors.inbox_counts(member_ids)
    for status, label in AlertStatus.choices:
        query["status"] = status
        tabs.append(
            {
                "status": status,
                "label": label,
                "count": counts[status],
                "query": query.urlencode(),
            }
        )
    context = {
        "form": form,
        "filters": filters,
        "tabs": tabs,
        "page": page,
        "own_only": selectors.reads_own_alerts_only(viewer),
        "may_see_rules": not selectors.reads_own_alerts_only(viewer),
    }
    return render(request, "coaching/inbox.html", context)


def _alert_history(alert: Alert) -> list[dict]:
    """Return the alert's events, oldest first."""
    events = [{"at": alert.first_seen_at, "text": "First seen"}]
    for event in alert.details.get("events", []):
        text = EVENT_LABELS.get(event["event"], event["event"])
        events.append({"at": parse_datetime(event["at"]), "text": text})
    if alert.acknowledged_at:
        actor = alert.acknowledged_by or "someone no longer a user"
        events.append({"at": alert.acknowledged_at, "text": f"Acknowledged by {actor}"})
    if alert.resolved_at:
        actor = alert.resolved_by or "the system"
        events.append({"at": alert.resolved_at, "text": f"Resolved by {actor}"})
    if alert.recovery_checked_at and alert.recovery_status != "pending":
        text = f"Recovery check: {alert.get_recovery_status_display().lower()}"
        events.append({"at": alert.recovery_checked_at, "text": text})
    return sorted(events, key=lambda event: event["at"])


@login_required
@require_GET
def alert_detail(request: HttpRequest, org_slug: str, alert_id) -> HttpResponse:
    viewer = request.membership
    alert = selectors.alert_for_viewer_or_404(viewer, alert_id)
    may_work = selectors.may_work_alert(viewer)
    notes = alert.notes.select_related("author")
    if not may_work:
        notes = notes.filter(kind=NoteKind.CONVERSATION)
    cleared = alert.details.get("cleared")
    context = {
        "alert": alert,
        "cleared_at": parse_datetime(cleared["at"]) if cleared else None,
        "evidence": _evidence(alert),
        "notes": list(notes),
        "history": _alert_history(alert),
        "earlier": selectors.earlier_alerts(alert),
        "may_work": may_work,
        "note_form": AlertNoteForm() if may_work else None,
    }
    return render(request, "coaching/alert_detail.html", context)


def _evidence(alert: Alert) -> dict:
    """Return the alert's evidence with the lead times as datetimes."""
    evidence = dict(alert.details.get("evidence", {}))
    if "leads" in evidence:
        evidence["leads"] = [
            {
                **lead,
                "assigned_at": parse_datetime(lead["assigned_at"]),
                "responded_at": lead["responded_at"]
                and parse_datetime(lead["responded_at"]),
            }
            for lead in evidence["leads"]
        ]
    return evidence


def _workable_alert(request: HttpRequest, alert_id) -> Alert:
    """Load an alert for an action: 404 when unseen, 403 when read-only."""
    alert = selectors.alert_for_viewer_or_404(request.membership, alert_id)
    if not selectors.may_work_alert(request.membership):
        raise PermissionDenied("Only managers and admins act on alerts.")
    return alert


def _to_alert(org_slug: str, alert: Alert) -> HttpResponse:
    return redirect("coaching:alert", org_slug=org_slug, alert_id=alert.public_id)


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, org_slug: str, alert_id) -> HttpResponse:
    alert = _workable_alert(request, alert_id)
    try:
        services.alert_acknowledge(alert=alert, actor=request.user)
    except services.AlertStateError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Alert acknowledged.")
    return _to_alert(org_slug, alert)


@login_required
@require_POST
def alert_resolve(request: HttpRequest, org_slug: str, alert_id) -> HttpResponse:
    alert = _workable_alert(request, alert_id)
    try:
        services.alert_resolve(alert=alert, actor=request.user)
    except services.AlertStateError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Alert resolved.")
    return _to_alert(org_slug, alert)


@login_required
@require_POST
def alert_note(request: HttpRequest, org_slug: str, alert_id) -> HttpResponse:
    alert = _workable_alert(request, alert_id)
    form = AlertNoteForm(request.POST)
    if form.is_valid():
        try:
            services.alert_note_add(
                alert=alert,
                author=request.user,
                body=form.cleaned_data["body"],
                kind=form.cleaned_data["kind"],
            )
        except ValueError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"{form.cleaned_data['kind'].title()} added.")
    else:
        for field, errors in form.errors.items():
            text = " ".join(errors)
            if field != NON_FIELD_ERRORS:
                text = f"{form[field].label}: {text}"
            messages.error(request, text)
    return _to_alert(org_slug, alert)


# Rules -----------------------------------------------------------------------


def _require_rule_reader(request: HttpRequest) -> None:
    viewer = request.membership
    if not (viewer.is_admin or viewer.is_manager):
        raise Http404("Page not found.")


@login_required
@require_GET
def rule_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    _require_rule_reader(request)
    context = {
        "rows": selectors.rule_rows(request.membership),
        "may_create": selectors.may_edit_rule(request.membership),
    }
    return render(request, "coaching/rule_list.html", context)


def _save_rule(request: HttpRequest, form: RuleForm, rule: Rule | None) -> Rule | None:
    """Create or update the rule from a valid form; return None on a model error."""
    fields = {name: form.cleaned_data[name] for name in services.RULE_FIELDS}
    try:
        if rule is None:
            return services.rule_create(
                organization=request.organization, actor=request.user, **fields
            )
        return services.rule_update(rule=rule, actor=request.user, **fields)
    except ValidationError as error:
        for field, messages_ in error.message_dict.items():
            form.add_error(field if field in form.fields else None, messages_)
        return None


@login_required
@require_http_methods(["GET", "POST"])
def rule_create(request: HttpRequest, org_slug: str) -> HttpResponse:
    _require_rule_reader(request)
    viewer = request.membership
    if not selectors.may_edit_rule(viewer):
        raise PermissionDenied("Managers need a team to create rules for it.")
    form = RuleForm(request.POST or None, viewer=viewer)
    if request.method == "POST" and form.is_valid():
        rule = _save_rule(request, form, None)
        if rule is not None:
            messages.success(request, f"Rule “{rule.name}” created.")
            return redirect("coaching:rules", org_slug=org_slug)
    return render(request, "coaching/rule_form.html", {"form": form, "rule": None})


def _editable_rule(request: HttpRequest, rule_id) -> Rule:
    rule = selectors.rule_for_viewer_or_404(request.membership, rule_id)
    if not selectors.may_edit_rule(request.membership, rule):
        raise PermissionDenied("Managers edit only the rules of their own team.")
    return rule


@login_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, org_slug: str, rule_id) -> HttpResponse:
    rule = _editable_rule(request, rule_id)
    form = RuleForm(request.POST or None, instance=rule, viewer=request.membership)
    if request.method == "POST" and form.is_valid():
        # The form has set the new values on the instance. The service reloads
        # the rule to read the old ones for the audit log.
        if _save_rule(request, form, rule) is not None:
            messages.success(request, f"Rule “{form.cleaned_data['name']}” saved.")
            return redirect("coaching:rules", org_slug=org_slug)
    return render(request, "coaching/rule_form.html", {"form": form, "rule": rule})


@login_required
@require_POST
def rule_toggle(request: HttpRequest, org_slug: str, rule_id) -> HttpResponse:
    rule = _editable_rule(request, rule_id)
    rule = services.rule_update(
        rule=rule, actor=request.user, is_active=not rule.is_active
    )
    state = "enabled" if rule.is_active else "disabled"
    messages.success(request, f"Rule “{rule.name}” {state}.")
    return redirect("coaching:rules", org_slug=org_slug)
