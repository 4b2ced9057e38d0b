"""Admin pages of lead routing: territories, pools, the rule set, and testing a lead.

Only admins may use them; everyone else gets 404, as on the scoring pages.
Writes go through ``routing.configuration``, which audits each change. The
"test a lead" page and the editor's draft test call
``routing.engine.preview.lead_preview``, which stores nothing.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Prefetch, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from routing import configuration
from routing.engine import backtest as backtest_module
from routing.engine.conditions import FIELDS, describe
from routing.engine.decision import live_rules
from routing.engine.preview import draft_rules, lead_preview
from routing.forms_config import (
    ConditionRowFormSet,
    LeadTestForm,
    PoolForm,
    PoolMemberAddForm,
    PoolMemberEditForm,
    PublishForm,
    RuleFormSet,
    RuleOptions,
    TerritoryForm,
    WorkingHoursForm,
    condition_rows,
    pool_member_candidates,
    rule_rows,
)
from routing.models import Pool, PoolMember, RotationState, RuleSetVersion, Territory
from routing.normalization import LeadInputError
from spm.access import admin_required
from spm.models import Membership

VERSIONS_PER_PAGE = 25
RULES_PREFIX = "rules"
CONDITIONS_PREFIX = "conditions"
LEAD_PREFIX = "lead"


def _add_service_errors(form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form field it names, else on the form."""
    if not hasattr(error, "error_dict"):
        for message in error.messages:
            form.add_error(None, message)
        return
    for name, field_messages in error.message_dict.items():
        for message in field_messages:
            form.add_error(name if name in form.fields else None, message)


def _today(request: HttpRequest):
    return timezone.localdate(timezone.now(), request.organization.zoneinfo)


# Territories ------------------------------------------------------------------


def _territory_or_404(territory_id) -> Territory:
    territory = Territory.objects.filter(public_id=territory_id).first()
    if territory is None:
        raise Http404("Territory not found.")
    return territory


@login_required
@admin_required
@require_GET
def territory_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    """List the territories with their conditions and the live rules using each."""
    used_by: dict[int, list[str]] = {}
    for rule in live_rules():
        if rule.territory_id:
            used_by.setdefault(rule.territory_id, []).append(
                f"{rule.order}. {rule.name}"
            )
    rows = [
        (
            territory,
            [describe(condition) for condition in territory.conditions],
            used_by.get(territory.pk, []),
        )
        for territory in Territory.objects.order_by("name")
    ]
    return render(request, "routing/config/territories.html", {"rows": rows})


def _territory_save(request, territory, form, rows) -> bool:
    """Create or update the territory, or put the service's error on the form."""
    values = {
        "actor": request.user,
        "name": form.cleaned_data["name"],
        "conditions": rows.conditions,
    }
    try:
        if territory is None:
            configuration.territory_create(organization=request.organization, **values)
        else:
            configuration.territory_update(territory=territory, **values)
    except ValidationError as error:
        _add_service_errors(form, error)
        return False
    return True


def _territory_page(request: HttpRequest, territory: Territory | None) -> HttpResponse:
    title = territory.name if territory else "New territory"
    status = 200
    if request.method == "POST":
        form = TerritoryForm(request.POST)
        rows = ConditionRowFormSet(request.POST, prefix=CONDITIONS_PREFIX)
        valid = form.is_valid() and rows.is_valid()
        if valid and _territory_save(request, territory, form, rows):
            messages.success(request, f"Territory {form.cleaned_data['name']} saved.")
            return redirect("routing:territories", org_slug=request.organization.slug)
        status = 400
    else:
        form = TerritoryForm(initial={"name": territory.name} if territory else None)
        initial = condition_rows(territory.conditions) if territory else []
        rows = ConditionRowFormSet(initial=initial, prefix=CONDITIONS_PREFIX)
    context = {
        "title": title,
        "territory": territory,
        "form": form,
        "rows": rows,
        "fields": list(FIELDS),
    }
    return render(request, "routing/config/territory_form.html", context, status=status)


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def territory_create(request: HttpRequest, org_slug: str) -> HttpResponse:
    return _territory_page(request, None)


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def territory_edit(request: HttpRequest, org_slug: str, territory_id) -> HttpResponse:
    return _territory_page(request, _territory_or_404(territory_id))


# Pools ------------------------------------------------------------------------


def _pool_or_404(pool_id) -> Pool:
    pool = Pool.objects.filter(public_id=pool_id).first()
    if pool is None:
        raise Http404("Pool not found.")
    return pool


def _pool_member_or_404(pool: Pool, member_id) -> PoolMember:
    pool_member = (
        PoolMember.objects.select_related("member")
        .filter(pool=pool, member__public_id=member_id)
        .first()
    )
    if pool_member is None:
        raise Http404("This member is not in the pool.")
    pool_member.pool = pool
    return pool_member


def _members_in_order():
    return Prefetch(
        "members",
        queryset=PoolMember.objects.select_related(
            "member", "member__working_hours"
        ).order_by("position", "id"),
    )


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def pool_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    """List the pools with their method and members. A POST creates a pool."""
    form = PoolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            pool = configuration.pool_create(
                organization=request.organization,
                actor=request.user,
                **form.cleaned_data,
            )
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            messages.success(request, f"Pool {pool.name} created. Add its reps.")
            return redirect("routing:pool", org_slug=org_slug, pool_id=pool.public_id)
    pools = Pool.objects.prefetch_related(_members_in_order()).order_by("name")
    status = 400 if form.is_bound else 200
    context = {"pools": pools, "form": form}
    return render(request, "routing/config/pools.html", context, status=status)


def _member_rows(request: HttpRequest, pool: Pool) -> list[dict]:
    """Return each rep of the pool with their status and today's leads from the pool."""
    state = RotationState.objects.filter(pool=pool).first()
    counters = state.counters if state else {}
    day = _today(request)
    rows = []
    for pool_member in pool.members.all():
        stored = counters.get(str(pool_member.pk), {})
        today = stored.get("today", 0) if stored.get("day") == day.isoformat() else 0
        member = pool_member.member
        rows.append(
            {
                "pool_member": pool_member,
                "member": member,
                "inactive": not member.is_active,
                "leads_today": today,
            }
        )
    return rows


def _pool_page(
    request: HttpRequest,
    pool: Pool,
    *,
    pool_form: PoolForm | None = None,
    add_form: PoolMemberAddForm | None = None,
    status: int = 200,
) -> HttpResponse:
    pool = Pool.objects.prefetch_related(_members_in_order()).get(pk=pool.pk)
    context = {
        "pool": pool,
        "rows": _member_rows(request, pool),
        "pool_form": pool_form
        or PoolForm(
            initial={
                "name": pool.name,
                "method": pool.method,
                "sla_minutes": pool.sla_minutes,
                "sla_action": pool.sla_action,
            }
        ),
        "add_form": add_form
        or PoolMemberAddForm(candidates=pool_member_candidates(pool)),
    }
    return render(request, "routing/config/pool_detail.html", context, status=status)


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def pool_detail(request: HttpRequest, org_slug: str, pool_id) -> HttpResponse:
    """Show a pool and its reps. A POST renames it or changes its method."""
    pool = _pool_or_404(pool_id)
    if request.method == "GET":
        return _pool_page(request, pool)
    form = PoolForm(request.POST)
    if form.is_valid():
        try:
            configuration.pool_update(
                pool=pool, actor=request.user, **form.cleaned_data
            )
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            messages.success(request, f"Pool {pool.name} saved.")
            return redirect("routing:pool", org_slug=org_slug, pool_id=pool.public_id)
    return _pool_page(request, pool, pool_form=form, status=400)


@login_required
@admin_required
@require_POST
def pool_member_add(request: HttpRequest, org_slug: str, pool_id) -> HttpResponse:
    pool = _pool_or_404(pool_id)
    form = PoolMemberAddForm(request.POST, candidates=pool_member_candidates(pool))
    if form.is_valid():
        member = form.chosen_member()
        try:
            configuration.pool_member_add(
                pool=pool, member=member, actor=request.user, **form.values()
            )
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            messages.success(request, f"{member.display_name} added to {pool.name}.")
            return redirect("routing:pool", org_slug=org_slug, pool_id=pool.public_id)
    return _pool_page(request, pool, add_form=form, status=400)


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def pool_member_edit(
    request: HttpRequest, org_slug: str, pool_id, member_id
) -> HttpResponse:
    """Change a rep's position, weight, caps or pause in one pool."""
    pool = _pool_or_404(pool_id)
    pool_member = _pool_member_or_404(pool, member_id)
    form = PoolMemberEditForm.for_pool_member(pool_member)
    status = 200
    if request.method == "POST":
        form = PoolMemberEditForm(request.POST)
        if form.is_valid():
            try:
                configuration.pool_member_update(
                    pool_member=pool_member, actor=request.user, **form.values()
                )
            except ValidationError as error:
                _add_service_errors(form, error)
            else:
                name = pool_member.member.display_name
                messages.success(request, f"{name} saved in {pool.name}.")
                return redirect(
                    "routing:pool", org_slug=org_slug, pool_id=pool.public_id
                )
        status = 400
    context = {"pool": pool, "pool_member": pool_member, "form": form}
    return render(
        request, "routing/config/pool_member_form.html", context, status=status
    )


@login_required
@admin_required
@require_POST
def pool_member_pause(
    request: HttpRequest, org_slug: str, pool_id, member_id
) -> HttpResponse:
    """Pause (``paused=1``) or resume (``paused=0``) a rep in one pool."""
    pool = _pool_or_404(pool_id)
    pool_member = _pool_member_or_404(pool, member_id)
    value = request.POST.get("paused")
    if value not in ("0", "1"):
        return HttpResponse(
            'Invalid "paused" value: send 1 to pause or 0 to resume.', status=400
        )
    paused = value == "1"
    configuration.pool_member_update(
        pool_member=pool_member, actor=request.user, paused=paused
    )
    verb = "paused" if paused else "resumed"
    messages.success(
        request, f"{pool_member.member.display_name} {verb} in {pool.name}."
    )
    return redirect("routing:pool", org_slug=org_slug, pool_id=pool.public_id)


# Rule set ---------------------------------------------------------------------


def _version_history():
    """Return the published versions, newest first, with publisher and rule count."""
    publisher = Membership.objects.filter(user_id=OuterRef("published_by_id")).values(
        "display_name"
    )[:1]
    return (
        RuleSetVersion.objects.select_related("published_by")
        .annotate(rule_count=Count("rules"), publisher_name=Subquery(publisher))
        .order_by("-number")
    )


@login_required
@admin_required
@require_GET
def rule_set(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Show the live rules in order, and the history of published versions."""
    rules = live_rules()
    history = Paginator(_version_history(), VERSIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    live = rules[0].version if rules else configuration.live_version()
    rows = [
        (rule, [describe(condition) for condition in rule.conditions]) for rule in rules
    ]
    context = {"live": live, "rows": rows, "history": history}
    return render(request, "routing/config/rules.html", context)


def _rule_formset(data, rules) -> RuleFormSet:
    keep = {rule.member_id for rule in rules if rule.member_id}
    options = RuleOptions.load(keep_member_ids=keep)
    kwargs = {"form_kwargs": {"options": options}, "prefix": RULES_PREFIX}
    if data is None:
        return RuleFormSet(initial=rule_rows(rules), **kwargs)
    return RuleFormSet(data, **kwargs)


def _with_added_row(data):
    """Return the posted editor data with one more empty rule row."""
    data = data.copy()
    total = f"{RULES_PREFIX}-TOTAL_FORMS"
    try:
        data[total] = str(int(data.get(total, "0")) + 1)
    except ValueError:
        pass
    return data


DEFAULT_BACKTEST_WEEKS = 4


def _backtest_weeks(text: str) -> int | None:
    """Return the weeks typed for a backtest, or None when out of range."""
    try:
        weeks = int(text)
    except ValueError:
        return None
    return weeks if 1 <= weeks <= backtest_module.MAX_WEEKS else None


def _backtest_weeks_error(text: str) -> str:
    """Return the message for weeks that ``_backtest_weeks`` rejected."""
    limits = f"a whole number from 1 to {backtest_module.MAX_WEEKS}"
    if not text.strip():
        return f"Enter the weeks to backtest, {limits}."
    return f"Weeks to backtest must be {limits}, not {text.strip()}."


def _editor_preview(request, formset, lead_form, based_on: int):
    """Return the preview of the typed lead under the draft rules, or None."""
    if not (formset.is_valid() and lead_form.is_valid()):
        return None
    rules = draft_rules(formset.specs(), based_on + 1)
    try:
        return lead_preview(
            organization=request.organization,
            fields=lead_form.lead_fields(),
            rules=rules,
        )
    except LeadInputError as error:
        lead_form.add_input_errors(error.errors)
        return None


def _publish(request, formset, publish_form) -> list[str]:
    """Publish the editor's rules and return the errors, none on success."""
    if not (formset.is_valid() and publish_form.is_valid()):
        publish_errors = [
            message
            for field_messages in publish_form.errors.values()
            for message in field_messages
        ]
        return formset.error_lines() + publish_errors
    try:
        version = configuration.rule_set_publish(
            organization=request.organization,
            actor=request.user,
            rules=formset.specs(),
            note=publish_form.cleaned_data["note"],
            based_on=publish_form.cleaned_data["based_on"],
        )
    except ValidationError as error:
        return list(error.messages)
    messages.success(request, f"Version {version.number} published and live.")
    return []


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def rule_set_edit(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Edit a copy of the live rules and publish it as the next version.

    The page's buttons post here: "Add a row" shows one more empty row,
    "Test this draft" previews the lead typed below the rules, and
    "Publish" publishes. Only publishing writes.
    """
    rules = live_rules()
    live = rules[0].version if rules else configuration.live_version()
    live_number = live.number if live else 0
    context = {
        "live": live,
        "fields": list(FIELDS),
        "show_errors": False,
        "errors": [],
        "errors_heading": "Nothing was published",
        "preview": None,
        "backtest": None,
        "backtest_weeks": DEFAULT_BACKTEST_WEEKS,
        "backtest_max": backtest_module.MAX_LEADS,
        "backtest_max_weeks": backtest_module.MAX_WEEKS,
    }
    status = 200
    if request.method == "GET":
        formset = _rule_formset(None, rules)
        publish_form = PublishForm(initial={"based_on": live_number})
        lead_form = LeadTestForm(prefix=LEAD_PREFIX)
    elif "add_row" in request.POST:
        formset = _rule_formset(_with_added_row(request.POST), rules)
        publish_form = PublishForm(request.POST)
        lead_form = LeadTestForm(request.POST, prefix=LEAD_PREFIX)
    else:
        formset = _rule_formset(request.POST, rules)
        publish_form = PublishForm(request.POST)
        lead_form = LeadTestForm(request.POST, prefix=LEAD_PREFIX)
        context["show_errors"] = True
        if "backtest" in request.POST:
            based_on = live_number
            if publish_form.is_valid():
                based_on = publish_form.cleaned_data["based_on"]
            typed_weeks = request.POST.get("backtest_weeks", "")
            weeks = _backtest_weeks(typed_weeks)
            context["backtest_weeks"] = weeks or DEFAULT_BACKTEST_WEEKS
            context["errors_heading"] = "The backtest did not run"
            if weeks is None:
                context["backtest_weeks_error"] = _backtest_weeks_error(typed_weeks)
                context["errors"] = [context["backtest_weeks_error"]]
            elif formset.is_valid():
                rules = draft_rules(formset.specs(), based_on + 1)
                context["backtest"] = backtest_module.backtest(rules, weeks)
            else:
                context["errors"] = formset.error_lines()
            status = 200 if context["backtest"] else 400
        elif "preview" in request.POST:
            context["errors_heading"] = "The draft was not tested"
            based_on = live_number
            if publish_form.is_valid():
                based_on = publish_form.cleaned_data["based_on"]
            context["preview"] = _editor_preview(request, formset, lead_form, based_on)
            context["errors"] = formset.error_lines()
            status = 200 if context["preview"] else 400
        else:
            context["errors"] = _publish(request, formset, publish_form)
            if not context["errors"]:
                return redirect("routing:rules", org_slug=org_slug)
            status = 400
    context.update(
        {"formset": formset, "publish_form": publish_form, "lead_form": lead_form}
    )
    return render(request, "routing/config/rules_edit.html", context, status=status)


# Test a lead ------------------------------------------------------------------


@login_required
@admin_required
@require_GET
def lead_test(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Show where a lead with the typed fields would go now, storing nothing."""
    form = LeadTestForm(request.GET or None)
    preview = None
    if form.is_bound and form.is_valid():
        try:
            preview = lead_preview(
                organization=request.organization, fields=form.lead_fields()
            )
        except LeadInputError as error:
            form.add_input_errors(error.errors)
    status = 400 if form.is_bound and preview is None else 200
    context = {"form": form, "preview": preview, "live": configuration.live_version()}
    return render(request, "routing/config/test_lead.html", context, status=status)


def _uuid_or_blank(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return ""


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def working_hours_edit(request: HttpRequest, org_slug: str, member_id) -> HttpResponse:
    """Set or clear the hours in which a rep takes pool leads."""
    member = (
        Membership.objects.select_related("working_hours")
        .filter(public_id=member_id)
        .first()
    )
    if member is None:
        raise Http404("No such member.")
    hours = getattr(member, "working_hours", None)
    back = _uuid_or_blank(request.GET.get("pool", ""))
    status = 200
    if request.method == "POST" and "clear" in request.POST:
        configuration.working_hours_clear(member=member, actor=request.user)
        messages.success(
            request, f"{member.display_name} takes pool leads at any hour."
        )
        return redirect("routing:working-hours", org_slug=org_slug, member_id=member_id)
    if request.method == "POST":
        form = WorkingHoursForm(request.POST)
        if form.is_valid():
            try:
                configuration.working_hours_set(
                    member=member, actor=request.user, **form.cleaned_data
                )
            except ValidationError as error:
                _add_service_errors(form, error)
            else:
                messages.success(
                    request, f"Working hours of {member.display_name} saved."
                )
                return redirect(
                    "routing:working-hours", org_slug=org_slug, member_id=member_id
                )
        status = 400
    else:
        form = WorkingHoursForm.for_hours(hours, request.organization)
    context = {"member": member, "hours": hours, "form": form, "back": back}
    return render(request, "routing/config/working_hours.html", context, status=status)
