"""Public endpoints that receive CRM webhooks.

The CRM posts with no Attain session, so the views are CSRF-exempt, name
the organisation and connection by public id, and trust a delivery only
after integrations.webhooks verifies it. A failed check gets 401 and a log
line that names the connection and the check, never the secret. A verified
delivery is stored and gets its response at once. A Celery task applies its
events, so the response never waits for the CRM.
"""

from __future__ import annotations

import logging

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations import webhooks
from integrations.models import CrmConnection
from spm.models import Organization
from spm.tenancy import tenant_context

logger = logging.getLogger(__name__)


def _connection_or_404(organization_id, connection_id, provider: str) -> CrmConnection:
    organization = Organization.objects.filter(public_id=organization_id).first()
    connection = None
    if organization is not None:
        connection = (
            CrmConnection.unscoped.filter(
                organization=organization, public_id=connection_id, provider=provider
            )
            .select_related("organization")
            .first()
        )
    if connection is None:
        raise Http404("No such webhook.")
    return connection


def _rejected(connection: CrmConnection, error: Exception) -> JsonResponse:
    logger.warning(
        "CRM webhook for connection %s rejected: %s",
        connection.pk,
        error,
        extra={"organization_id": connection.organization_id},
    )
    return JsonResponse({"detail": "Webhook verification failed."}, status=401)


def _invalid(connection: CrmConnection, error: Exception) -> JsonResponse:
    logger.warning("CRM webhook for connection %s invalid: %s", connection.pk, error)
    return JsonResponse({"detail": f"Invalid webhook payload: {error}"}, status=400)


def _store(connection: CrmConnection, events) -> dict[str, int]:
    """Store the events for the apply task, without calling the CRM."""
    with tenant_context(connection.organization):
        stored, duplicates = webhooks.events_store(connection=connection, events=events)
    return {"received": len(stored), "duplicate": duplicates}


def _unlogged_path(response: HttpResponse) -> HttpResponse:
    """Keep django.request from logging the path, which contains the secret token.

    Django logs every 4xx and 5xx response with its path unless the response
    is marked as logged (``_has_been_logged``, read by
    django.utils.log.log_response in Django 5.2). The views log these
    responses themselves without the path.
    """
    response._has_been_logged = True
    return response


@csrf_exempt
@require_POST
def hubspot(request: HttpRequest, organization_id, connection_id) -> HttpResponse:
    connection = _connection_or_404(organization_id, connection_id, "hubspot")
    try:
        webhooks.verify_hubspot(
            connection,
            method=request.method,
            uri=request.build_absolute_uri(),
            body=request.body,
            signature=request.headers.get("X-HubSpot-Signature-v3", ""),
            timestamp=request.headers.get("X-HubSpot-Request-Timestamp", ""),
        )
        events = webhooks.parse_hubspot(request.body)
    except webhooks.WebhookRejected as error:
        return _rejected(connection, error)
    except webhooks.InvalidPayload as error:
        return _invalid(connection, error)
    return JsonResponse(_store(connection, events))


@csrf_exempt
@require_POST
def pipedrive(request: HttpRequest, organization_id, connection_id) -> HttpResponse:
    connection = _connection_or_404(organization_id, connection_id, "pipedrive")
    try:
        webhooks.verify_pipedrive(connection, request.headers.get("Authorization", ""))
        event = webhooks.parse_pipedrive(request.body)
    except webhooks.WebhookRejected as error:
        return _rejected(connection, error)
    except webhooks.InvalidPayload as error:
        return _invalid(connection, error)
    return JsonResponse(_store(connection, [event]))


@csrf_exempt
@require_POST
def salesforce(
    request: HttpRequest, organization_id, connection_id, token: str
) -> HttpResponse:
    try:
        connection = _connection_or_404(organization_id, connection_id, "salesforce")
    except Http404:
        return _unlogged_path(HttpResponse("No such webhook.", status=404))
    try:
        webhooks.verify_salesforce_token(connection, token)
        org_id, events = webhooks.parse_salesforce(request.body)
        webhooks.verify_salesforce_organization(connection, org_id)
    except webhooks.WebhookRejected as error:
        return _unlogged_path(_rejected(connection, error))
    except webhooks.InvalidPayload as error:
        return _unlogged_path(_invalid(connection, error))
    _store(connection, events)
    # Salesforce resends the message until it receives this acknowledgement.
    return HttpResponse(webhooks.SALESFORCE_ACK, content_type="text/xml")
