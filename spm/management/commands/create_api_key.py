"""Create an API key for an organisation and print it once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from spm.models import ApiKey, Organization
from spm.services import api_key_create


class Command(BaseCommand):
    help = (
        "Create an API key for an organisation. The key alone goes to standard "
        "output, once: only its hash is stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--organization",
            required=True,
            metavar="SLUG",
            help="Slug of the organisation the key belongs to.",
        )
        parser.add_argument(
            "--name",
            default="Command line",
            help="Label that identifies the key in the audit log and the key list.",
        )

    def handle(self, *args, organization: str, name: str, **options) -> None:
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(
                f"No organisation with slug {organization!r}. Check the slug in "
                "the organisation's URL, /o/<slug>/."
            )
        name = name.strip()
        if not name:
            raise CommandError("The key name must not be empty.")
        max_length = ApiKey._meta.get_field("name").max_length
        if len(name) > max_length:
            raise CommandError(f"The key name is longer than {max_length} characters.")

        api_key, key = api_key_create(organization=org, name=name)
        self.stderr.write(
            f"Created API key {api_key.name!r} ({api_key.prefix}) for {org.name}. "
            "Store it now: it cannot be shown again."
        )
        self.stdout.write(key)
