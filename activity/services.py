"""Writes of the CRM mirror: CSV import jobs and their mapping presets.

An import job moves through these statuses:

    pending -> validating -> validated -> importing -> done
                                \\-> cancelled            \\-> failed

Validation writes nothing but the job row. The import writes every row of
every file in one transaction, so a failure leaves nothing half-written.
Progress is written outside that transaction, so other connections see it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from django.db import InterfaceError, OperationalError, transaction
from django.urls import reverse
from django.utils import timezone

from activity.importing.presets import (
    BUILTIN_PRESETS,
    Preset,
    guess_mapping,
    preset_get,
)
from activity.importing.readers import read_header
from activity.importing.upsert import upsert_records
from activity.importing.validation import JobValidator, ValidationResult
from activity.models import ImportFile, ImportJob, ImportPreset
from goals.selectors import closed_deals_changed
from notifications.services import notify
from spm.models import Membership, Organization, User
from spm.services import audit_log_write

logger = logging.getLogger(__name__)

Status = ImportJob.Status
# Errors a retry may cure, so the task retries them instead of failing the job.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)
# Progress of an import: re-reading the files fills 0-40%, then the write
# transaction runs between 50% and 100%.
IMPORT_READ_PROGRESS = 40
IMPORT_WRITE_PROGRESS = 50


class ImportJobStateError(Exception):
    """The job is not in a status that allows the requested step."""


def _enqueue(task_name: str, job: ImportJob) -> None:
    from activity import tasks

    task = getattr(tasks, task_name)
    organization_id, job_id = job.organization_id, job.pk
    transaction.on_commit(lambda: task.delay(organization_id, job_id))


def _locked(job: ImportJob, allowed: Sequence[str], step: str) -> ImportJob:
    """Lock the job's row and check that its status allows ``step``."""
    locked = ImportJob.objects.select_for_update().get(pk=job.pk)
    if locked.status not in allowed:
        raise ImportJobStateError(
            f"Cannot {step} an import that is {locked.get_status_display().lower()}."
        )
    return locked


@transaction.atomic
def import_job_create(
    *,
    organization: Organization,
    actor: User | None,
    files: Sequence[tuple[str, bytes]],
    preset_name: str = "",
) -> ImportJob:
    """Store the uploaded files and guess each one's kind and mapping.

    Raises PresetNotFound for an unknown preset name.
    """
    preset = preset_get(preset_name) if preset_name else None
    job = ImportJob.objects.create(
        organization=organization, created_by=actor, preset_name=preset_name
    )
    for position, (name, content) in enumerate(files):
        header = read_header(content)
        kind, mapping = guess_mapping(header, preset) if header else ("", [])
        ImportFile.objects.create(
            organization=organization,
            job=job,
            position=position,
            name=name[:255],
            kind=kind,
            header=header,
            mapping=mapping,
            content=content,
            size=len(content),
        )
    return job


@transaction.atomic
def import_job_map(
    *,
    job: ImportJob,
    actor: User | None,
    mappings: dict[int, tuple[str, list[str]]],
    save_preset_as: str = "",
    enqueue: bool = True,
) -> ImportJob:
    """Set each file's kind and mapping, by file id, then start validation.

    With ``save_preset_as``, the mapping is also saved as a preset of that name.
    """
    job = _locked(job, (Status.PENDING, Status.VALIDATED, Status.FAILED), "map")
    files = list(job.files.all())
    for import_file in files:
        import_file.kind, import_file.mapping = mappings[import_file.pk]
        import_file.save(update_fields=["kind", "mapping"])
    if save_preset_as:
        from activity.importing.presets import preset_from_files

        import_preset_save(
            organization=job.organization,
            actor=actor,
            name=save_preset_as,
            mapping=preset_from_files(files),
        )
    job.status = Status.VALIDATING
    job.progress = 0
    job.validated_at = None
    job.save(update_fields=["status", "progress", "validated_at", "updated_at"])
    if enqueue:
        _enqueue("import_job_validate_task", job)
    return job


def _progress_writer(job: ImportJob, start: int, end: int) -> Callable[[float], None]:
    """Return a callback that stores progress between ``start`` and ``end`` percent.

    Each write commits on its own (autocommit), so other connections see it.
    """
    last = [-1]

    def write(fraction: float) -> None:
        percent = start + int((end - start) * fraction)
        if percent != last[0]:
            _set_progress(job, percent)
            last[0] = percent

    return write


def _set_progress(job: ImportJob, percent: int) -> None:
    ImportJob.objects.filter(pk=job.pk).update(
        progress=percent, updated_at=timezone.now()
    )


def import_job_validate(*, job: ImportJob) -> ImportJob:
    """Validate every file of a pending or validating job and store the errors.

    A job in any other status is returned unchanged, so a rerun does nothing.
    """
    claimed = ImportJob.objects.filter(
        pk=job.pk, status__in=(Status.PENDING, Status.VALIDATING)
    ).update(status=Status.VALIDATING, progress=0, updated_at=timezone.now())
    job.refresh_from_db()
    if not claimed:
        return job

    try:
        validator = JobValidator(progress=_progress_writer(job, 0, 100))
        result = validator.validate(job.files.all())
    except TRANSIENT_ERRORS:
        raise
    except Exception as error:
        return _fail(job, error)
    _store_validation(job, result)
    job.status = Status.VALIDATED
    job.progress = 100
    job.validated_at = timezone.now()
    job.save()
    return job


def _store_validation(job: ImportJob, result: ValidationResult) -> None:
    job.total_rows = result.total_rows
    job.valid_rows = result.valid_rows
    job.invalid_rows = result.invalid_rows
    job.errors = [error.as_dict() for error in result.errors]
    job.error_count = result.error_count


def _fail(job: ImportJob, error: Exception) -> ImportJob:
    logger.error(
        "Import job %s failed",
        job.public_id,
        exc_info=error,
        extra={"import_job_id": job.pk},
    )
    ImportJob.objects.filter(pk=job.pk).update(
        status=Status.FAILED,
        failure=f"{type(error).__name__}: {error}",
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )
    job.refresh_from_db()
    _notify_starter(job, "import.failed")
    return job


@transaction.atomic
def import_job_start(
    *, job: ImportJob, actor: User | None, enqueue: bool = True
) -> ImportJob:
    """Queue the import of the valid rows of a validated job.

    Raises ImportJobStateError when a file has an error that blocks it, or
    when no row is valid.
    """
    job = _locked(job, (Status.VALIDATED, Status.FAILED), "import")
    if job.validated_at is None:
        raise ImportJobStateError("Validate the files before importing them.")
    if job.has_blocking_errors:
        raise ImportJobStateError(
            "A file has errors that block the import: fix the file and upload it again."
        )
    if not job.valid_rows:
        raise ImportJobStateError("No row is valid, so there is nothing to import.")
    job.status = Status.IMPORTING
    job.skip_invalid = job.invalid_rows > 0
    job.progress = 0
    job.failure = ""
    job.started_at = timezone.now()
    job.save()
    if enqueue:
        _enqueue("import_job_import_task", job)
    return job


def import_job_import(*, job: ImportJob) -> ImportJob:
    """Import the valid rows of an importing job. Any other status does nothing.

    The files are validated again first, against the database as it is now.
    After a crash, a rerun redoes the whole job, because the transaction
    left nothing behind and the upsert matches the rows already there.
    """
    job.refresh_from_db()
    if job.status != Status.IMPORTING:
        return job
    try:
        validator = JobValidator(
            progress=_progress_writer(job, 0, IMPORT_READ_PROGRESS)
        )
        result = validator.validate(job.files.all())
        if result.blocking:
            _store_validation(job, result)
            job.save()
            raise ImportJobStateError("A file has errors that block the import.")
        _set_progress(job, IMPORT_WRITE_PROGRESS)
        job = _write(job, result)
    except TRANSIENT_ERRORS:
        raise
    except Exception as error:
        return _fail(job, error)
    _set_progress(job, 100)
    job.progress = 100
    _notify_starter(job, "import.finished")
    return job


def _notify_starter(job: ImportJob, event_type: str) -> None:
    """Tell the member who started the import that it finished or failed."""
    if job.created_by_id is None:
        return
    member = Membership.objects.filter(user_id=job.created_by_id).first()
    if member is None:
        return
    organization = job.organization
    if event_type == "import.finished":
        title = (
            f"Import finished: {job.created_count:,} created, "
            f"{job.updated_count:,} updated"
        )
    else:
        title = f"Import failed: {job.failure[:200]}"
    notify(
        organization,
        event_type,
        [member],
        obj=job,
        title=title,
        url=reverse(
            "activity:import-detail",
            kwargs={"org_slug": organization.slug, "job_id": job.public_id},
        ),
        payload={"status": job.status},
    )


@transaction.atomic
def _write(job: ImportJob, result: ValidationResult) -> ImportJob:
    # Locking the organisation makes two imports into it run one after the
    # other, so neither inserts a row the other has just inserted.
    Organization.objects.select_for_update().get(pk=job.organization_id)
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status != Status.IMPORTING:
        return job
    now = timezone.now()
    counts = upsert_records(
        organization=job.organization,
        records=result.records,
        actor=job.created_by,
        now=now,
    )
    for kind, rows in result.invalid_by_kind.items():
        counts[kind].skipped += rows
    organization_id = job.organization_id
    transaction.on_commit(lambda: closed_deals_changed(organization_id))

    _store_validation(job, result)
    job.counts = {kind: kind_counts.as_dict() for kind, kind_counts in counts.items()}
    job.created_count = sum(c.created for c in counts.values())
    job.updated_count = sum(c.updated for c in counts.values())
    job.unchanged_count = sum(c.unchanged for c in counts.values())
    job.skipped_count = result.invalid_rows
    job.status = Status.DONE
    job.finished_at = now
    job.save()
    audit_log_write(
        organization=job.organization,
        actor=job.created_by,
        action="import.finish",
        obj=job,
        new={"counts": job.counts, "total_rows": job.total_rows},
    )
    return job


@transaction.atomic
def import_job_cancel(*, job: ImportJob, actor: User | None) -> ImportJob:
    """Cancel a job that is not running or finished: nothing of it is imported."""
    job = _locked(job, (Status.PENDING, Status.VALIDATED, Status.FAILED), "cancel")
    job.status = Status.CANCELLED
    job.finished_at = timezone.now()
    job.save()
    return job


class PresetNameError(ValueError):
    pass


@transaction.atomic
def import_preset_save(
    *, organization: Organization, actor: User | None, name: str, mapping: Preset
) -> ImportPreset:
    """Create or replace the organisation's preset called ``name``."""
    name = name.strip()
    if not name:
        raise PresetNameError("Enter a name for the preset.")
    if name.lower() in BUILTIN_PRESETS:
        raise PresetNameError(
            f'"{name}" is the name of a built-in preset: choose another name.'
        )
    preset = ImportPreset.objects.filter(name__iexact=name).first()
    old = {"name": preset.name, "mapping": preset.mapping} if preset else None
    if preset is None:
        preset = ImportPreset(organization=organization, created_by=actor)
    preset.name = name
    preset.mapping = mapping
    preset.save()
    audit_log_write(
        organization=organization,
        actor=actor,
        action="import_preset.save",
        obj=preset,
        old=old,
        new={"name": name, "mapping": mapping},
    )
    return preset
