"""Import CRM data from CSV files into one organisation.

Every file is validated first. When any row is invalid, every error is
printed and the command exits with status 1 having imported nothing, unless
--skip-invalid is given, which imports the valid rows. An error about a
whole file (empty, unreadable, wrong header) always stops the import.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from activity import services
from activity.importing.fields import IMPORT_ORDER
from activity.importing.presets import PresetNotFound
from activity.importing.validation import format_error
from activity.models import ImportJob
from spm.models import Organization
from spm.tenancy import tenant_context


class Command(BaseCommand):
    help = (
        "Validate and import CSV files of deals, members, accounts or products. "
        "Exits with status 1, importing nothing, when a row is invalid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
        parser.add_argument(
            "--organization", required=True, help="Slug of the organisation."
        )
        parser.add_argument(
            "--preset",
            default="",
            help='Column mapping preset: "maven", or a preset saved on the '
            "imports page. Without it, columns are matched by header name.",
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Import the valid rows even when some rows are invalid.",
        )

    def handle(self, *args, **options) -> None:
        organization = Organization.objects.filter(slug=options["organization"]).first()
        if organization is None:
            raise CommandError(
                f'No organisation has the slug "{options["organization"]}".'
            )
        files = [(path.name, _read(path)) for path in options["files"]]
        with tenant_context(organization):
            job = self._validate(organization, files, options["preset"])
            self._report_errors(job, options["skip_invalid"])
            services.import_job_start(job=job, actor=None, enqueue=False)
            job = services.import_job_import(job=job)
            if job.status != ImportJob.Status.DONE:
                raise CommandError(f"The import failed: {job.failure}")
            self._report_counts(job)

    def _validate(self, organization, files, preset: str) -> ImportJob:
        try:
            job = services.import_job_create(
                organization=organization, actor=None, files=files, preset_name=preset
            )
        except PresetNotFound as error:
            raise CommandError(str(error)) from None
        job = services.import_job_validate(job=job)
        if job.status == ImportJob.Status.FAILED:
            raise CommandError(f"Validation failed: {job.failure}")
        self.stdout.write(
            f"Read {job.total_rows:,} rows: {job.valid_rows:,} valid, "
            f"{job.invalid_rows:,} invalid."
        )
        return job

    def _report_errors(self, job: ImportJob, skip_invalid: bool) -> None:
        for error in job.errors:
            self.stderr.write(format_error(error))
        if job.error_count > len(job.errors):
            self.stderr.write(f"… {job.error_count - len(job.errors):,} more errors.")

        if job.has_blocking_errors:
            services.import_job_cancel(job=job, actor=None)
            raise CommandError("A file cannot be imported: nothing was imported.")
        if job.invalid_rows and not skip_invalid:
            services.import_job_cancel(job=job, actor=None)
            raise CommandError(
                f"{job.invalid_rows:,} rows are invalid: nothing was imported. "
                "Fix them, or pass --skip-invalid to import the valid rows."
            )

    def _report_counts(self, job: ImportJob) -> None:
        for kind in IMPORT_ORDER:
            counts = job.counts.get(kind)
            if counts and any(counts.values()):
                self.stdout.write(
                    f"{kind}: {counts['created']:,} created, "
                    f"{counts['updated']:,} updated, "
                    f"{counts['unchanged']:,} unchanged, "
                    f"{counts['skipped']:,} skipped"
                )
        self.stdout.write(self.style.SUCCESS(f"Import {job.public_id} done."))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise CommandError(f"Cannot read {path}: {error.strerror}.") from None
