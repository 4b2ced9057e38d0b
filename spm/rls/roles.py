"""The application role: logs in, reads and writes rows, and is held by every policy.

It is created NOSUPERUSER and NOBYPASSRLS (PostgreSQL lets superusers and
BYPASSRLS roles skip every policy) and gets data rights only: no ownership,
so it can neither change the tables nor turn row-level security off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
ROLE_ATTRIBUTES = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")


@dataclass(frozen=True)
class AppRole:
    name: str
    owner: str
    database: str
    schema: str
    login: bool = True
    password: str | None = None
    # Django's flush empties tables with TRUNCATE, which ignores row-level
    # security, so only a test database's role gets it.
    truncate: bool = False


def check_role_name(name: str) -> str:
    """Return ``name`` when it is a plain lowercase PostgreSQL role name."""
    if not ROLE_NAME.match(name):
        raise ValueError(
            f"Invalid role name {name!r}: use lowercase letters, digits and "
            "underscores, starting with a letter or underscore."
        )
    return name


def role_statements(role: AppRole, *, exists: bool) -> list[sql.Composable]:
    """Return the statements that create or update ``role`` and its attributes."""
    verb = "ALTER" if exists else "CREATE"
    login = "LOGIN" if role.login else "NOLOGIN"
    statement = sql.SQL("{} ROLE {} {} {}").format(
        sql.SQL(verb),
        sql.Identifier(role.name),
        sql.SQL(login),
        sql.SQL(ROLE_ATTRIBUTES),
    )
    if role.password is not None:
        statement += sql.SQL(" PASSWORD {}").format(sql.Literal(role.password))
    return [statement]


def grant_statements(role: AppRole) -> list[sql.Composable]:
    """Return the grants of data rights on every table, now and created later."""
    grantee = sql.Identifier(role.name)
    schema = sql.Identifier(role.schema)
    owner = sql.Identifier(role.owner)
    table_privileges = list(TABLE_PRIVILEGES) + (["TRUNCATE"] if role.truncate else [])
    tables = sql.SQL(", ".join(table_privileges))
    sequences = sql.SQL("USAGE, SELECT")
    return [
        sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
            sql.Identifier(role.database), grantee
        ),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, grantee),
        sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(
            tables, schema, grantee
        ),
        sql.SQL("GRANT {} ON ALL SEQUENCES IN SCHEMA {} TO {}").format(
            sequences, schema, grantee
        ),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON TABLES TO {}"
        ).format(owner, schema, tables, grantee),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} "
            "GRANT {} ON SEQUENCES TO {}"
        ).format(owner, schema, sequences, grantee),
    ]
