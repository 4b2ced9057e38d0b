import json
import logging

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_POST

from .tasks import lead_route_task

logger = logging.getLogger(__name__)

INSERT_LEAD = "INSERT INTO floor_lead (key, email) VALUES (%s, %s) RETURNING id"


@require_POST
def lead_create(request: HttpRequest) -> HttpResponse:
    """Store the lead under its Idempotency-Key and queue its routing on commit."""
    key = request.headers.get("Idempotency-Key", "")
    try:
        body = json.loads(request.body)
        email = str(body["email"])
    except (ValueError, TypeError, KeyError) as error:
        logger.warning("Lead rejected: invalid JSON body (%r)", error)
        return JsonResponse(
            {"detail": "Invalid JSON body: expected an object with an email."},
            status=400,
        )
    if not key:
        logger.warning("Lead rejected: missing Idempotency-Key header")
        return JsonResponse({"detail": "Missing Idempotency-Key header."}, status=400)

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(INSERT_LEAD, [key, email])
            lead_id = cursor.fetchone()[0]
        transaction.on_commit(lambda: lead_route_task.delay(lead_id))
    return JsonResponse({"id": lead_id}, status=201)
