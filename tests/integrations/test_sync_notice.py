"""The notice on the CRM pages when syncs cannot run in the background."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from integrations import services
from tests.conftest import login
from tests.integrations.test_tryout_fixes import SQLITE_NOTICE, on_sqlite  # noqa: F401

INLINE_NOTICE = (
    "No task broker is configured (CELERY_BROKER_URL is empty), so syncs do not "
    "run in the background or every five minutes. Sync now runs the sync inside "
    "the request, and the page waits until it ends."
)
LIST_URL = reverse("integrations:connections", kwargs={"org_slug": "acme"})


@pytest.fixture
def admin(personas):
    return login(Client(), personas.admin)


def test_list_has_no_notice_with_broker_on_postgresql(admin, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False

    html = admin.get(LIST_URL).content.decode()

    assert services.sync_notice() is None
    assert 'id="sync-notice"' not in html


def test_list_says_syncs_run_inline_without_broker(admin, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True

    html = admin.get(LIST_URL).content.decode()

    assert f'<p class="message" id="sync-notice">{INLINE_NOTICE}</p>' in html


def test_list_says_sync_needs_postgresql_on_sqlite(admin, settings, on_sqlite):  # noqa: F811
    settings.CELERY_TASK_ALWAYS_EAGER = True

    html = admin.get(LIST_URL).content.decode()

    # On SQLite no sync runs at all, so that notice wins over the inline one.
    assert f'<p class="message" id="sync-notice">{SQLITE_NOTICE}</p>' in html
    assert INLINE_NOTICE not in html


def test_connection_page_says_sync_runs_inline(admin, settings, connection):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    url = reverse(
        "integrations:connection",
        kwargs={"org_slug": "acme", "connection_id": connection.public_id},
    )

    html = admin.get(url).content.decode()

    assert f'<p class="message" id="sync-inline">{INLINE_NOTICE}</p>' in html
    assert "Sync now" in html
