"""Celery tasks of lead routing, on the "routing" queue (CELERY_TASK_ROUTES).

The routing tasks are idempotent: routing takes only a lead still pending,
under its row lock, so a duplicate delivery or a rerun after a lost worker
does nothing. Training a lead model is CPU-heavy, so its tasks go to the
"calc" queue instead, where they never delay a lead. A rerun of training
stores one more model version, which replaces the first only if it is at
least as good.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from routing import model_services, services, sla
from routing.config_cache import cached, config_scope
from routing.engine.decision import IntakeMatches
from spm.models import Organization, User
from spm.tenancy import system_context, tenant_context

logger = logging.getLogger(__name__)

# A lead still pending this long after intake lost its routing task (a task
# normally routes it within milliseconds), so the sweeper routes it.
SWEEP_AFTER = dt.timedelta(seconds=30)
# Leads per sweeper run. Each is one short transaction of about 10 queries,
# so a run stays well under the 15 s between runs.
SWEEP_BATCH = 500

TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_backoff_max": 30,
    "max_retries": 5,
}


# Celery's limit on the argument text that a message carries for monitoring.
ARGS_REPR_MAX = 1024


class RoutingTask(Task):
    """A task whose messages describe their arguments with the built-in repr.

    Celery otherwise renders the arguments of every message with its
    ``saferepr``, for monitoring and logs. That took about a sixth of the
    CPU time of publishing a routing task (cProfile of 1,000 publishes to a
    local Redis, Celery 5.7). The arguments here are ids and small dicts of
    ids, for which ``repr`` gives the same text, cut at the same length.
    """

    def apply_async(self, args=None, kwargs=None, **options):
        options.setdefault("argsrepr", _short_repr(tuple(args or ())))
        options.setdefault("kwargsrepr", _short_repr(kwargs or {}))
        return super().apply_async(args, kwargs, **options)


def _short_repr(value: object) -> str:
    text = repr(value)
    if len(text) > ARGS_REPR_MAX:
        return text[: ARGS_REPR_MAX - 3] + "..."
    return text


@shared_task(base=RoutingTask, **TASK_OPTIONS)
def route_lead_task(
    organization_id: int, lead_id: int, matches: dict | None = None
) -> None:
    """Route the lead, once.

    ``matches`` are what intake's qualification found
    (``IntakeMatches.as_message``). Messages sent without them, and the
    sweeper, read the stored qualification.
    """
    with config_scope(organization_id):
        organization = cached(
            "organization",
            lambda: Organization.objects.filter(pk=organization_id).first(),
        )
        if organization is None:
            logger.warning(
                "Lead %s not routed: organisation %s is gone",
                lead_id,
                organization_id,
                extra={"organization_id": organization_id, "lead_id": lead_id},
            )
            return
        with tenant_context(organization):
            services.lead_route(
                lead_id=lead_id,
                matches=IntakeMatches.from_message(matches),
            )


@shared_task(**TASK_OPTIONS)
def sweep_pending_leads_task() -> int:
    return services.leads_sweep(older_than=SWEEP_AFTER, limit=SWEEP_BATCH)


# Training goes to this queue, not to the "routing" queue that
# CELERY_TASK_ROUTES gives routing.tasks.*: a queue given when a task is sent
# overrides the route. Send training with ``lead_model_train_enqueue``.
TRAIN_QUEUE = "calc"


def lead_model_train_enqueue(organization_id: int, user_id: int | None = None) -> None:
    lead_model_train_task.apply_async((organization_id, user_id), queue=TRAIN_QUEUE)


@shared_task(**TASK_OPTIONS)
def lead_model_train_task(organization_id: int, user_id: int | None = None) -> str:
    """Train and store a lead model. Return the new model's status, or "skipped"."""
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        logger.warning(
            "Lead model not trained: organisation %s is gone",
            organization_id,
            extra={"organization_id": organization_id},
        )
        return "skipped"
    actor = User.objects.filter(pk=user_id).first() if user_id else None
    with tenant_context(organization):
        try:
            model = model_services.model_train(organization=organization, actor=actor)
        except model_services.NotEnoughLeads as error:
            logger.info(
                "Lead model not trained for organisation %s: %s",
                organization_id,
                error,
                extra={"organization_id": organization_id},
            )
            return "skipped"
    logger.info(
        "Lead model version %s of organisation %s is %s (%s)",
        model.version,
        organization_id,
        model.status,
        model.reason,
        extra={"organization_id": organization_id, "lead_model_id": model.pk},
    )
    return model.status


@shared_task(**TASK_OPTIONS)
def lead_model_train_all_task() -> int:
    """Queue training for each organisation with enough labelled leads.

    Returns the number of organisations queued. Celery beat sends this task
    to the "calc" queue (CELERY_BEAT_SCHEDULE).
    """
    with system_context():
        organizations = list(Organization.objects.order_by("pk"))
    queued = 0
    for organization in organizations:
        with tenant_context(organization):
            ready = model_services.training_readiness().ready
        if ready:
            lead_model_train_enqueue(organization.pk)
            queued += 1
    return queued


@shared_task(**TASK_OPTIONS)
def response_timers_sweep_task() -> int:
    """Close the due timers, then warn reps whose timers are about to run out.

    Returns the number of timers closed.
    """
    closed = sla.response_timers_sweep()
    sla.response_timers_warn()
    return closed
