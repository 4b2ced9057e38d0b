"""The create_app_role command: a role subject to the policies, with DML rights only."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tests.security.conftest import current_role


@pytest.fixture
def superuser(postgres) -> str:
    name, is_superuser, _bypass = current_role()
    if not is_superuser:
        pytest.skip(f"{name} is not a superuser, so it cannot create roles")
    return name


@pytest.fixture
def role_name() -> str:
    # Roles belong to the whole cluster, so each test picks its own name. The
    # test's transaction rolls the role back.
    return f"attain_app_test_{uuid.uuid4().hex[:12]}"


def _attributes(role: str) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreatedb, "
            "rolcreaterole, rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s",
            [role],
        )
        return cursor.fetchone()


def _table_privileges(role: str, table: str) -> dict[str, bool]:
    names = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT " + ", ".join(["has_table_privilege(%s, %s, %s)"] * len(names)),
            [value for name in names for value in (role, table, name)],
        )
        return dict(zip(names, cursor.fetchone(), strict=True))


def test_command_creates_role_with_data_rights(superuser, role_name, capsys):
    call_command("create_app_role", role_name)
    assert _attributes(role_name) == (True, False, False, False, False, False)
    assert _table_privileges(role_name, "activity_deal") == {
        "SELECT": True,
        "INSERT": True,
        "UPDATE": True,
        "DELETE": True,
        "TRUNCATE": False,
        "REFERENCES": False,
    }
    assert f"Role {role_name}: LOGIN NOSUPERUSER NOBYPASSRLS" in capsys.readouterr().out


def test_command_grants_future_tables(superuser, role_name):
    call_command("create_app_role", role_name)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE attain_later (id bigserial PRIMARY KEY)")
        cursor.execute(
            "SELECT has_table_privilege(%s, 'attain_later', 'INSERT'), "
            "has_sequence_privilege(%s, 'attain_later_id_seq', 'USAGE')",
            [role_name, role_name],
        )
        assert cursor.fetchone() == (True, True)


def test_command_run_twice_updates_role(superuser, role_name, monkeypatch):
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role_name} SUPERUSER BYPASSRLS")
    monkeypatch.setenv("ATTAIN_TEST_ROLE_PASSWORD", "s3cret-for-test")
    options = ["--allow-truncate", "--password-env", "ATTAIN_TEST_ROLE_PASSWORD"]
    call_command("create_app_role", role_name, *options)
    call_command("create_app_role", role_name, *options)
    assert _attributes(role_name) == (True, False, False, False, False, True)
    assert _table_privileges(role_name, "spm_membership")["TRUNCATE"]


def test_command_rejects_invalid_name(postgres):
    with pytest.raises(CommandError, match="Invalid role name 'Bad-Name'"):
        call_command("create_app_role", "Bad-Name")


def test_command_rejects_table_owner(postgres):
    name, _superuser, _bypass = current_role()
    with pytest.raises(CommandError, match="must not be"):
        call_command("create_app_role", name)


def test_command_rejects_missing_password_variable(superuser, role_name):
    with pytest.raises(CommandError, match="ATTAIN_TEST_UNSET_VARIABLE"):
        call_command(
            "create_app_role", role_name, "--password-env", "ATTAIN_TEST_UNSET_VARIABLE"
        )


def test_command_needs_postgresql(db):
    if connection.vendor == "postgresql":
        pytest.skip("Checks the message given on other databases")
    with pytest.raises(CommandError, match="PostgreSQL only"):
        call_command("create_app_role", "attain_app")
