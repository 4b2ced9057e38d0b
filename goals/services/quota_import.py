"""The CSV import of quotas: all valid rows are saved, or none."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from activity.importing.validation import RowError
from goals.quota_csv import check_quota_file
from goals.services.quotas import (
    QuotaError,
    QuotaSaveResult,
    quota_problems,
    write_changes,
)
from spm.models import Organization, User
from spm.services import audit_log_write


@dataclass
class QuotaImportResult:
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0
    # Rows with a blank amount, which change nothing.
    blank: int = 0
    saved: QuotaSaveResult | None = None


def quotas_import(
    *,
    organization: Organization,
    actor: User | None,
    file_name: str,
    content: bytes,
) -> QuotaImportResult:
    """Validate a quota file and, when every row is valid, upsert its quotas.

    A row for an owner, metric and period start that already has a quota
    updates it, so importing the same file twice changes nothing the second
    time and writes no audit entry. With any invalid row, nothing is saved
    and the result lists every error with its line, column and value.
    """
    check = check_quota_file(organization, file_name, content)
    result = QuotaImportResult(rows=check.rows, blank=check.blank)
    blocked = any(error.blocking for error in check.errors)
    try:
        with transaction.atomic():
            # The stored quotas stay locked from this check to the write.
            problems, stored = [], {}
            if not blocked:
                problems, stored = quota_problems(check.changes, lock=True)
            result.errors = check.errors + [
                RowError(file_name, p.line, p.column, p.value, p.message)
                for p in problems
            ]
            result.errors.sort(key=lambda error: error.line or 0)
            if not result.errors:
                result.saved = _write(organization, actor, check, stored, file_name)
    except QuotaError as error:
        result.errors = [RowError(file_name, None, "", "", str(error))]
    return result


def _write(organization, actor, check, stored, file_name) -> QuotaSaveResult:
    saved = write_changes(
        organization=organization, actor=actor, changes=check.changes, stored=stored
    )
    if saved.changed:
        audit_log_write(
            organization=organization,
            actor=actor,
            action="quota.import",
            object_type="goals.quota",
            new={
                "file": file_name,
                "created": saved.created,
                "updated": saved.updated,
                "unchanged": saved.unchanged,
            },
        )
    return saved
