"""Reads of import jobs shared by the pages and the command."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from django.db.models import Count, QuerySet

from activity.models import ImportJob

# Errors shown on the job page. The CSV download has every stored error.
ERRORS_SHOWN = 500


def import_jobs_recent(*, limit: int = 50) -> QuerySet[ImportJob]:
    """Return the current organisation's latest jobs, without their error lists."""
    return (
        ImportJob.objects.defer("errors")
        .select_related("created_by")
        .annotate(file_count=Count("files"))
        .order_by("-created_at", "-id")[:limit]
    )


def import_job_get(*, public_id: uuid.UUID) -> ImportJob | None:
    """Return the current organisation's job with ``public_id``, or None."""
    return ImportJob.objects.filter(public_id=public_id).first()


def import_job_error_rows(job: ImportJob) -> Iterator[list]:
    """Yield the header and one row per stored error, for a CSV download."""
    yield ["file", "line", "column", "value", "message"]
    for error in job.errors:
        yield [
            error["file"],
            error["line"] or "",
            error["column"],
            error["value"],
            error["message"],
        ]
