"""Create the demo organisation, its generated data and one login per role."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from allauth.account.models import EmailAddress
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from activity.generator import generate_organization_data
from activity.models import Deal
from coaching.services import evaluate_rules
from compensation.demo import create_demo_plan, create_demo_statements
from goals.demo import create_demo_targets
from routing import demo as routing_demo
from routing.demo import create_demo_routing, receive_demo_leads
from spm.models import Membership, Organization, User
from spm.services import organization_create, organization_delete
from spm.tenancy import tenant_context

PASSWORD = "demo-password"
ADMIN_EMAIL = "admin@demo.attain.test"
MANAGER_EMAIL = "manager@demo.attain.test"
REP_EMAIL = "rep@demo.attain.test"

DEMO = {
    "name": "Demo Sales",
    "slug": "demo",
    "time_zone": "America/New_York",
    "currency": "USD",
    # A February start shows a fiscal year that is not the calendar year.
    "fiscal_year_start_month": 2,
}
# Rows generated for the demo organisation: three teams of four reps.
DEMO_SIZE = {"reps": 12, "deals": 2500, "activities": 30_000, "leads": 500}
SAMPLE = {"name": "MavenTech (sample)", "slug": "maventech", "time_zone": "UTC"}
# The Maven CRM export, in the order its records refer to each other.
SAMPLE_FILES = ["accounts.csv", "products.csv", "sales_teams.csv", "sales_pipeline.csv"]


class Command(BaseCommand):
    help = (
        "Create the organisation 'Demo Sales' with generated CRM data and the "
        "logins admin@, manager@ and rep@demo.attain.test. An existing demo "
        "organisation is kept unless --reset is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--sample",
            type=Path,
            metavar="DIR",
            help="Folder of the Maven CRM export to import into a second "
            "organisation, 'MavenTech (sample)'.",
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete the demo organisations and create them again.",
        )
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000",
            help="Address printed for the server that will serve the demo.",
        )
        parser.add_argument(
            "--seed", type=int, default=7, help="Seed of the data generator."
        )
        parser.add_argument(
            "--today",
            type=dt.date.fromisoformat,
            metavar="YYYY-MM-DD",
            help="Base date of the generated data. Default: today in New York.",
        )

    def handle(self, *args, sample: Path | None, reset: bool, **options) -> None:
        if sample is not None:
            _check_sample_folder(sample)
        if reset:
            self._delete(DEMO["slug"], SAMPLE["slug"] if sample else None)

        users = {
            ADMIN_EMAIL: _login(ADMIN_EMAIL, name="Demo Admin"),
            MANAGER_EMAIL: _login(MANAGER_EMAIL),
            REP_EMAIL: _login(REP_EMAIL),
        }
        today = options["today"] or timezone.localdate(
            timezone=ZoneInfo(DEMO["time_zone"])
        )
        demo = self._demo_organization(users[ADMIN_EMAIL], options["seed"], today)
        manager, rep = _link_logins(demo, users[MANAGER_EMAIL], users[REP_EMAIL])
        sample_org = None
        if sample is not None:
            sample_org = self._sample_organization(sample, users[MANAGER_EMAIL])
        self._print_logins(demo, manager, rep, sample_org, options["url"])

    def _delete(self, *slugs: str | None) -> None:
        for organization in Organization.objects.filter(slug__in=slugs):
            organization_delete(organization=organization)
            self.stdout.write(f"Deleted the organisation {organization.name!r}.")

    def _demo_organization(
        self, admin: User, seed: int, today: dt.date
    ) -> Organization:
        organization = Organization.objects.filter(slug=DEMO["slug"]).first()
        if organization is not None:
            self.stdout.write(
                f"The organisation {organization.name!r} exists: kept as it is. "
                "Run with --reset to generate it again."
            )
            return organization

        self.stdout.write(f"Generating {DEMO['name']!r} as of {today}...")
        with transaction.atomic():
            organization = organization_create(owner=admin, **DEMO)
            summary = generate_organization_data(
                organization=organization, today=today, seed=seed, **DEMO_SIZE
            )
            with tenant_context(organization):
                quotas = create_demo_targets(
                    organization=organization, reps=summary.reps, today=today
                )
                automation = self._automate(
                    organization, admin, summary.reps, today, seed
                )
                # Fill the coaching inbox now rather than at the first hourly
                # run, with the leads' response times in place.
                evaluation = evaluate_rules(organization, today=today)
        self.stdout.write(
            f"Created {summary.teams} teams, {len(summary.reps)} reps, "
            f"{summary.deals:,} deals ({summary.won:,} won, {summary.lost:,} lost, "
            f"{summary.open:,} open), {summary.activities:,} activities and "
            f"{summary.leads:,} leads in {summary.seconds:.1f} s, "
            f"{quotas} quotas and {evaluation.created} coaching alerts."
        )
        for line in automation:
            self.stdout.write(line)
        return organization

    def _automate(
        self,
        organization: Organization,
        admin: User,
        reps: list[Membership],
        today: dt.date,
        seed: int,
    ) -> list[str]:
        """Set up routing, lead intake and commission; return lines to print."""
        create_demo_routing(organization=organization, actor=admin, reps=reps)
        leads = receive_demo_leads(organization=organization, today=today, seed=seed)
        plan = create_demo_plan(
            organization=organization, actor=admin, reps=reps, today=today
        )
        sla_hours = routing_demo.NORTH_AMERICA_SLA_MINUTES // 60
        lines = [
            f"Routing: territories {', '.join(routing_demo.TERRITORIES)}, each "
            f"with a pool (round robin with a {sla_hours}-hour response SLA, "
            "weighted, capacity), a published rule set and "
            f"{len(routing_demo.SCORING_RULES)} scoring rules.",
            f"Leads: {leads.received:,} went through intake and the "
            f"{leads.routed} of the last {routing_demo.ROUTED_WEEKS} weeks "
            "through routing "
            f"({leads.assigned} to pool reps, {leads.taken_from_queue} taken "
            f"from the fallback queue by managers). {leads.queued} wait in the "
            f"queue and {leads.disqualified} were disqualified at intake.",
        ]
        statements = create_demo_statements(
            organization=organization,
            admin=Membership.objects.get(user=admin),
            today=today,
        )
        lines.append(
            f"Commission: {plan.name!r} for {len(reps)} reps, "
            f"{statements.approved} statements approved for last month, "
            f"{statements.drafts} drafts for this month and "
            f"{statements.disputes} open dispute."
        )
        return lines

    def _sample_organization(self, folder: Path, manager: User) -> Organization:
        """Create the sample organisation, with the manager login as its admin,
        and import the export into it unless it already has deals."""
        organization = Organization.objects.filter(slug=SAMPLE["slug"]).first()
        if organization is None:
            organization = organization_create(owner=manager, **SAMPLE)
        if Deal.unscoped.filter(organization=organization).exists():
            self.stdout.write(
                f"The organisation {organization.name!r} already has deals: "
                "import skipped. Run with --reset to import it again."
            )
            return organization
        if "import_csv" not in get_commands():
            self.stderr.write(
                "The import_csv command is not installed, so the sample was not "
                f"imported. {organization.name!r} is empty."
            )
            return organization

        paths = [
            str(folder / name) for name in SAMPLE_FILES if (folder / name).exists()
        ]
        self.stdout.write(f"Importing {len(paths)} files from {folder}...")
        try:
            call_command(
                "import_csv",
                "--organization",
                SAMPLE["slug"],
                "--preset",
                "maven",
                *paths,
                "--skip-invalid",
                stdout=self.stdout,
                stderr=self.stderr,
            )
        except CommandError as error:
            raise CommandError(
                f"Importing the sample failed: {error} The demo organisation is "
                "ready; run without --sample to skip the sample."
            ) from error
        return organization

    def _print_logins(
        self,
        demo: Organization,
        manager: Membership,
        rep: Membership,
        sample: Organization | None,
        url: str,
    ) -> None:
        team = manager.team.name if manager.team_id else "no team"
        manager_role = f"manager of the {team} team in {demo.name}"
        if sample is not None:
            manager_role += f", and admin of {sample.name}"
        rows = [
            (ADMIN_EMAIL, f"admin of {demo.name}"),
            (MANAGER_EMAIL, f"{manager.display_name}, {manager_role}"),
            (REP_EMAIL, f"{rep.display_name}, rep reporting to {manager.display_name}"),
        ]
        home = reverse("measurement:home", kwargs={"org_slug": demo.slug})
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Attain demo: {url}"))
        self.stdout.write(
            f"Organisation {demo.name!r}, slug {demo.slug!r}: {url.rstrip('/')}{home}"
        )
        self.stdout.write(f"Sign in with the password {PASSWORD!r} as:")
        for email, role in rows:
            self.stdout.write(f"  {email:<26} {role}")


def _check_sample_folder(folder: Path) -> None:
    if not (folder / "sales_pipeline.csv").is_file():
        raise CommandError(
            f"{folder} has no sales_pipeline.csv: --sample takes the folder of "
            "the Maven CRM export (sales_pipeline.csv, sales_teams.csv, "
            "accounts.csv, products.csv)."
        )


def _login(email: str, name: str = "") -> User:
    """Create or update a user with the demo password and a verified address."""
    user = User.objects.filter(email=email).first() or User(email=email, name=name)
    user.set_password(PASSWORD)
    user.is_active = True
    user.save()
    EmailAddress.objects.update_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    return user


def _link_logins(
    organization: Organization, manager_user: User, rep_user: User
) -> tuple[Membership, Membership]:
    """Link the manager login to the first team manager, the rep login to one
    of that manager's reps, and name both users after their memberships.

    A login that is already linked keeps its member, so members imported or
    edited since the last run do not move it.
    """
    with tenant_context(organization):
        generated = Membership.objects.exclude(external_id="").select_related("team")
        manager = generated.filter(user=manager_user).first() or (
            generated.filter(role=Membership.Role.MANAGER, team__isnull=False)
            .order_by("external_id")
            .first()
        )
        if manager is None:
            raise CommandError(
                f"{organization.name!r} has no team manager to link the manager "
                "login to. Run with --reset to generate it again."
            )
        rep = generated.filter(user=rep_user).first()
        if rep is None:
            reports = manager.direct_reports.filter(role=Membership.Role.REP)
            rep = reports.exclude(external_id="").order_by("external_id").first()
        for membership, user in ((manager, manager_user), (rep, rep_user)):
            _link(membership, user)
    return manager, rep


def _link(membership: Membership, user: User) -> None:
    if membership.user_id != user.pk:
        # The address goes with the login, because it is unique per organisation.
        Membership.objects.filter(user=user).update(user=None, email="")
        membership.user = user
        membership.email = user.email
        membership.save(update_fields=["user", "email"])
    if user.name != membership.display_name:
        user.name = membership.display_name
        user.save(update_fields=["name"])
