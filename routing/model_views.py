"""Pages of the predictive lead score: the model report and on-demand training.

Managers and admins read the reports. Only admins start training.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from kombu.exceptions import OperationalError as BrokerError

from routing import model_services
from routing.models import LeadModel
from routing.tasks import lead_model_train_enqueue
from routing.views import managers_only
from spm.access import admin_required

logger = logging.getLogger(__name__)


def _page(request: HttpRequest, selected_model: LeadModel | None) -> HttpResponse:
    context = {
        "selected_model": selected_model,
        "history": model_services.model_history(),
        "readiness": model_services.training_readiness(),
        "outcome_after_days": model_services.OUTCOME_AFTER_DAYS,
        "can_train": request.membership.is_admin,
    }
    return render(request, "routing/model.html", context)


@login_required
@managers_only
@require_GET
def lead_model(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Show the active model's report and the history of models."""
    return _page(request, model_services.active_model())


@login_required
@managers_only
@require_GET
def lead_model_version(
    request: HttpRequest, org_slug: str, lead_model_id
) -> HttpResponse:
    """Show the report of one model version, active or not."""
    selected_model = model_services.model_by_public_id(lead_model_id)
    if selected_model is None:
        raise Http404("Lead model not found.")
    return _page(request, selected_model)


@login_required
@admin_required
@require_POST
def lead_model_train(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Queue training of a new model, when there are enough labelled leads."""
    readiness = model_services.training_readiness()
    if not readiness.ready:
        messages.error(request, readiness.message)
        return redirect("routing:model", org_slug=org_slug)
    try:
        lead_model_train_enqueue(request.organization.pk, request.user.pk)
    except BrokerError:
        logger.exception(
            "Could not queue lead model training",
            extra={"organization_id": request.organization.pk},
        )
        messages.error(
            request,
            "Training could not be queued because the task queue is unavailable. "
            "Try again later.",
        )
    else:
        messages.success(
            request,
            "Training queued. The new model appears in the history when "
            "training finishes.",
        )
    return redirect("routing:model", org_slug=org_slug)
