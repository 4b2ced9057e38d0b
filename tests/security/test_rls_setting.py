"""The tenant setting follows the context variable and is sent only when it changes."""

from __future__ import annotations

import threading
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activity.models import Deal
from spm.models import Organization
from spm.rls import scope
from spm.tenancy import system_context, tenant_context


@pytest.fixture
def sent_settings(postgres):
    """Record each setting the backend sends to PostgreSQL."""
    with mock.patch.object(
        connection, "_send_tenant_setting", wraps=connection._send_tenant_setting
    ) as send:
        yield send


def test_required_setting_by_context():
    acme = Organization(pk=7)
    assert scope.required_setting() == scope.NO_TENANT
    with scope.orm_statement():
        assert scope.required_setting() == scope.ALL_TENANTS
    with tenant_context(acme):
        assert scope.required_setting() == ("7", "")
        with scope.orm_statement():
            assert scope.required_setting() == ("7", "")
        with system_context():
            assert scope.required_setting() == scope.ALL_TENANTS
            with tenant_context(acme):
                assert scope.required_setting() == ("7", "")


def test_unsaved_organisation_sees_no_tenant():
    with tenant_context(Organization()):
        assert scope.required_setting() == scope.NO_TENANT


def test_other_thread_has_no_organisation():
    seen = []
    thread = threading.Thread(target=lambda: seen.append(scope.required_setting()))
    with tenant_context(Organization(pk=7)):
        thread.start()
        thread.join()
    assert seen == [scope.NO_TENANT]


def test_setting_sent_only_when_it_changes(personas, deals, sent_settings):
    acme = (str(personas.org.pk), "")
    globex = (str(personas.other_org.pk), "")
    with tenant_context(personas.org):
        for _ in range(5):
            list(Deal.objects.all())
    with tenant_context(personas.other_org):
        Deal.objects.count()
        Deal.unscoped.count()
    Deal.unscoped.count()

    sent = [call.args[0] for call in sent_settings.call_args_list]
    assert sent == [acme, globex, scope.ALL_TENANTS]


def test_setting_not_captured_as_a_query(personas, deals, sent_settings):
    with tenant_context(personas.org), CaptureQueriesContext(connection) as queries:
        assert Deal.objects.count() == 2
    assert sent_settings.call_count == 1
    assert len(queries) == 1
    assert "set_config" not in queries[0]["sql"]


def test_connection_records_last_setting(personas, postgres):
    with tenant_context(personas.org):
        Deal.objects.count()
    assert connection.tenant_setting == (str(personas.org.pk), "")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('app.organization_id', true), "
            "current_setting('app.all_tenants', true)"
        )
        assert cursor.fetchone() == ("", "")
