from celery import shared_task
from django.db import connection, transaction

INSERT_ASSIGNMENT = "INSERT INTO floor_assignment (lead_id) VALUES (%s)"


@shared_task(acks_late=True, reject_on_worker_lost=True)
def lead_route_task(lead_id: int) -> None:
    """Commit one assignment row for the lead."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(INSERT_ASSIGNMENT, [lead_id])
