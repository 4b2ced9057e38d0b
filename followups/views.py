"""Pages: the sequence list, builder and results, a rep's due follow-ups, unsubscribe.

Managers and admins build sequences, enrol and unenrol. Reps get 404 on
those pages. Everyone sees their own follow-ups due today and in the next
seven days. Counts and
enrolments cover the reps the viewer can see.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from followups import configuration, selectors, services
from followups.forms import (
    STEPS_PREFIX,
    EnrollForm,
    SequenceForm,
    StepFormSet,
    sequence_initial,
    sequence_spec,
    step_initial,
)
from followups.models import OptOut, Sequence
from routing.views import managers_only
from spm.access import visible_member_ids
from spm.models import Organization
from spm.tenancy import tenant_context


@login_required
@managers_only
@require_GET
def sequence_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    """List the sequences and latest enrolments of the viewer's reps, with counts."""
    member_ids = visible_member_ids(request.membership)
    context = {
        "sequences": selectors.sequences_with_counts(member_ids),
        "enrollments": selectors.recent_enrollments(member_ids),
        "shown": selectors.ENROLLMENTS_SHOWN,
    }
    return render(request, "followups/sequence_list.html", context)


def _sequence_or_404(sequence_id) -> Sequence:
    sequence = selectors.sequence_by_public_id(sequence_id)
    if sequence is None:
        raise Http404("Sequence not found.")
    return sequence


def _add_service_errors(form, error: ValidationError) -> None:
    """Put a service's ValidationError on the named form field, else on the form."""
    for name, field_messages in error.message_dict.items():
        for message in field_messages:
            form.add_error(name if name in form.fields else None, message)


def _steps_with_new_row(data) -> StepFormSet:
    """Return the posted steps with one more blank row, for "Add a step"."""
    data = data.copy()
    key = f"{STEPS_PREFIX}-TOTAL_FORMS"
    total = data.get(key, "")
    data[key] = str(int(total) + 1) if total.isdigit() else "1"
    return StepFormSet(data, prefix=STEPS_PREFIX)


def _save_sequence(request, sequence, form, steps) -> Sequence | None:
    """Create or update the sequence, or put the service's errors on the form."""
    spec = sequence_spec(form, steps)
    try:
        if sequence is None:
            return configuration.sequence_create(
                organization=request.organization, actor=request.user, spec=spec
            )
        return configuration.sequence_update(
            sequence=sequence, actor=request.user, spec=spec
        )
    except ValidationError as error:
        _add_service_errors(form, error)
        return None


def _builder(request: HttpRequest, sequence: Sequence | None) -> HttpResponse:
    status = 200
    if request.method == "POST" and "add_step" in request.POST:
        form = SequenceForm(request.POST)
        steps = _steps_with_new_row(request.POST)
    elif request.method == "POST":
        form = SequenceForm(request.POST)
        steps = StepFormSet(request.POST, prefix=STEPS_PREFIX)
        if form.is_valid() and steps.is_valid():
            saved = _save_sequence(request, sequence, form, steps)
            if saved is not None:
                messages.success(request, f"Sequence {saved.name} saved.")
                return redirect(
                    "followups:detail",
                    org_slug=request.organization.slug,
                    sequence_id=saved.public_id,
                )
        status = 400
    else:
        form = SequenceForm(initial=sequence_initial(sequence) if sequence else None)
        steps = StepFormSet(
            initial=step_initial(sequence) if sequence else None, prefix=STEPS_PREFIX
        )
    context = {"sequence": sequence, "form": form, "steps": steps}
    return render(request, "followups/sequence_form.html", context, status=status)


@login_required
@managers_only
@require_http_methods(["GET", "POST"])
def sequence_create(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Build a new sequence: settings, filters and ordered steps."""
    return _builder(request, None)


@login_required
@managers_only
@require_http_methods(["GET", "POST"])
def sequence_edit(request: HttpRequest, org_slug: str, sequence_id) -> HttpResponse:
    """Edit a sequence's settings and steps."""
    return _builder(request, _sequence_or_404(sequence_id))


def _detail_context(request, sequence: Sequence, enroll_form=None) -> dict:
    member_ids = visible_member_ids(request.membership)
    if enroll_form is None:
        deals, leads = selectors.enrol_candidates(member_ids)
        enroll_form = EnrollForm(deals=deals, leads=leads)
    return {
        "sequence": sequence,
        "steps": list(sequence.steps.all()),
        "results": selectors.sequence_results(sequence, member_ids),
        "enrollments": selectors.sequence_enrollments(sequence, member_ids),
        "enroll_form": enroll_form,
        "shown": selectors.ENROLLMENTS_SHOWN,
    }


@login_required
@managers_only
@require_GET
def sequence_detail(request: HttpRequest, org_slug: str, sequence_id) -> HttpResponse:
    """Show a sequence's steps, results and enrolments, with manual enrolment."""
    sequence = _sequence_or_404(sequence_id)
    context = _detail_context(request, sequence)
    return render(request, "followups/sequence_detail.html", context)


@login_required
@managers_only
@require_POST
def sequence_enroll(request: HttpRequest, org_slug: str, sequence_id) -> HttpResponse:
    """Enrol one deal or lead of a visible rep by hand."""
    sequence = _sequence_or_404(sequence_id)
    deals, leads = selectors.enrol_candidates(visible_member_ids(request.membership))
    form = EnrollForm(request.POST, deals=deals, leads=leads)
    if form.is_valid():
        target = form.cleaned_data["target"]
        try:
            enrollment = services.enroll(
                sequence=sequence, target=target, actor=request.user
            )
        except services.EnrollmentError as error:
            form.add_error("target", str(error))
        else:
            if enrollment is None:
                form.add_error("target", f"{target} is already in this sequence.")
            else:
                messages.success(request, f"{target} enrolled.")
                return redirect(
                    "followups:detail",
                    org_slug=request.organization.slug,
                    sequence_id=sequence.public_id,
                )
    context = _detail_context(request, sequence, enroll_form=form)
    return render(request, "followups/sequence_detail.html", context, status=400)


@login_required
@managers_only
@require_POST
def enrollment_unenroll(
    request: HttpRequest, org_slug: str, sequence_id, enrollment_id
) -> HttpResponse:
    """Exit an active enrolment by hand."""
    sequence = _sequence_or_404(sequence_id)
    member_ids = visible_member_ids(request.membership)
    enrollment = selectors.enrollment_by_public_id(sequence, enrollment_id, member_ids)
    if enrollment is None:
        raise Http404("Enrolment not found.")
    services.unenroll(enrollment=enrollment, actor=request.user)
    messages.success(request, "Enrolment removed from the sequence.")
    return redirect(
        "followups:detail",
        org_slug=request.organization.slug,
        sequence_id=sequence.public_id,
    )


@login_required
@require_GET
def my_followups(request: HttpRequest, org_slug: str) -> HttpResponse:
    """List the signed-in member's follow-up steps due today and upcoming, and tasks."""
    context = selectors.followups_due_today(request.membership, timezone.now())
    return render(request, "followups/mine.html", context)


# Mail clients send the one-click unsubscribe (RFC 8058) as a POST with no
# CSRF token; the signed token in the URL is what authorises it.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """Show a confirmation button (GET) or record the opt-out (POST), with no sign-in.

    A GET changes nothing, because link scanners in mail systems fetch links.
    """
    try:
        organization_id, email = services.unsubscribe_token_read(token)
    except (signing.BadSignature, KeyError, ValueError):
        return render(request, "followups/unsubscribe_invalid.html", status=400)
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return render(request, "followups/unsubscribe_invalid.html", status=400)
    if request.method == "POST":
        with tenant_context(organization):
            services.opt_out_record(
                organization=organization,
                email=email,
                reason=OptOut.Reason.UNSUBSCRIBED,
            )
        done = True
    else:
        done = False
    context = {"sender": organization.name, "email": email, "done": done}
    return render(request, "followups/unsubscribe.html", context)
