"""Create or update the database role the application connects as, and its grants."""

from __future__ import annotations

import os

import psycopg
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from spm.rls.policies import policy_problems
from spm.rls.roles import AppRole, check_role_name, grant_statements, role_statements


class Command(BaseCommand):
    help = (
        "Create the PostgreSQL role the application connects as (NOSUPERUSER, "
        "NOBYPASSRLS), or update it, and grant it SELECT, INSERT, UPDATE and "
        "DELETE on every table and USAGE, SELECT on every sequence, now and for "
        "tables the owner creates later. Run it after migrate, connected as the "
        "owner of the tables or as a superuser; running it again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "role", help="Name of the application role, for example attain_app."
        )
        parser.add_argument(
            "--owner",
            help="Role that owns the tables and runs migrate; tables it creates "
            "later are granted too. Default: the role running this command.",
        )
        parser.add_argument(
            "--password-env",
            metavar="VARIABLE",
            help="Name of the environment variable that contains the role's "
            "password. Without it the password is not changed (a new role gets "
            "none, which suits trust or peer authentication only).",
        )
        parser.add_argument(
            "--allow-truncate",
            action="store_true",
            help="Also grant TRUNCATE, which Django's flush needs between "
            "transactional tests. TRUNCATE ignores row-level security, so use "
            "it for test databases only.",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="Database alias to connect through. Default: %(default)s.",
        )

    def handle(self, *args, role: str, database: str, **options) -> None:
        connection = connections[database]
        if connection.vendor != "postgresql":
            raise CommandError(
                "Database roles and row-level security exist on PostgreSQL only; "
                "set DATABASE_URL to the PostgreSQL database, as its owner."
            )
        try:
            name = check_role_name(role)
        except ValueError as error:
            raise CommandError(str(error)) from error

        app_role = self._app_role(connection, name, options)
        self._apply(connection, app_role)
        self._report(connection, app_role)

    def _app_role(self, connection, name: str, options: dict) -> AppRole:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user, current_database(), current_schema()")
            current_user, database, schema = cursor.fetchone()
        owner = options["owner"] or current_user
        if name in (owner, current_user):
            raise CommandError(
                f"The application role must not be {name!r}, the role that owns "
                "the tables or runs this command: an owner can turn row-level "
                "security off. Choose another name, e.g. attain_app."
            )
        return AppRole(
            name=name,
            owner=owner,
            database=database,
            schema=schema,
            password=self._password(options["password_env"]),
            truncate=options["allow_truncate"],
        )

    def _password(self, variable: str | None) -> str | None:
        if variable is None:
            return None
        password = os.environ.get(variable)
        if not password:
            raise CommandError(
                f"The environment variable {variable} named by --password-env is "
                "not set or empty."
            )
        return password

    def _apply(self, connection, app_role: AppRole) -> None:
        # The raw psycopg cursor keeps the password out of Django's query log.
        connection.ensure_connection()
        try:
            with transaction.atomic(using=connection.alias):
                with connection.connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT 1 FROM pg_roles WHERE rolname = %s", [app_role.name]
                    )
                    exists = cursor.fetchone() is not None
                    for statement in role_statements(app_role, exists=exists):
                        cursor.execute(statement)
                    for statement in grant_statements(app_role):
                        cursor.execute(statement)
        except psycopg.Error as error:
            raise CommandError(
                f"Could not set up the role {app_role.name!r}: {error}. Run the "
                "command as the owner of the tables with the CREATEROLE attribute, "
                "or as a superuser."
            ) from error

    def _report(self, connection, app_role: AppRole) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FILTER (WHERE tableowner = %s), count(*) "
                "FROM pg_tables WHERE schemaname = %s",
                [app_role.name, app_role.schema],
            )
            owned, tables = cursor.fetchone()
        if owned:
            raise CommandError(
                f"{app_role.name} owns {owned} tables in schema {app_role.schema}, "
                "and an owner can turn row-level security off. Make the owner "
                f"role their owner: ALTER TABLE ... OWNER TO {app_role.owner}."
            )
        privileges = "SELECT, INSERT, UPDATE, DELETE"
        if app_role.truncate:
            privileges += ", TRUNCATE"
        self.stdout.write(
            f"Role {app_role.name}: LOGIN NOSUPERUSER NOBYPASSRLS, {privileges} on "
            f"{tables} tables of schema {app_role.schema} in {app_role.database}, "
            f"and on the tables {app_role.owner} creates later."
        )
        for problem in policy_problems(connection):
            self.stderr.write(f"Warning: {problem}. Run migrate as the owner.")
