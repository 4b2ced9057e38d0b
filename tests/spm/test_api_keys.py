"""The API keys page: list, create (the key is shown once) and revoke, audited."""

import datetime as dt
from unittest import mock

import pytest
from django.urls import reverse

from spm.models import ApiKey, AuditLog
from spm.services import api_key_create, api_key_lookup
from spm.tenancy import tenant_context
from tests.conftest import login


def _url(name, org="acme", **kwargs):
    return reverse(name, kwargs={"org_slug": org, **kwargs})


def _create(client, name="BI export"):
    return client.post(_url("spm:api-key-create"), {"name": name})


def _api_get(client, key):
    return client.get(
        reverse("api-rep-metrics"),
        {"start": "2024-01-01", "end": "2024-02-01"},
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


def test_create_shows_the_key_once(client, personas):
    login(client, personas.admin)
    response = _create(client)
    assert response.status_code == 200
    key = response.context["key"]
    assert key.startswith("attn_")
    assert key in response.content.decode()
    assert "no-store" in response["Cache-Control"]

    listing = client.get(_url("spm:api-keys")).content.decode()
    api_key = ApiKey.unscoped.get(organization=personas.org)
    assert api_key.name == "BI export"
    assert f"attn_{api_key.prefix}_" in listing
    assert key not in listing
    assert key.split("_", 2)[2] not in listing


def test_created_key_is_stored_hashed_and_works(client, personas):
    login(client, personas.admin)
    key = _create(client).context["key"]
    api_key = ApiKey.unscoped.get(organization=personas.org)
    assert key not in api_key.key_hash
    assert len(api_key.key_hash) == 64

    client.logout()
    assert _api_get(client, key).status_code == 200
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_create_and_revoke_are_audited(client, personas):
    login(client, personas.admin)
    _create(client)
    api_key = ApiKey.unscoped.get(organization=personas.org)
    response = client.post(_url("spm:api-key-revoke", key_id=api_key.public_id))
    assert response.status_code == 302

    with tenant_context(personas.org):
        created = AuditLog.objects.get(action="api_key.create")
        revoked = AuditLog.objects.get(action="api_key.revoke")
    assert created.actor == personas.admin.user
    assert created.object_id == str(api_key.public_id)
    assert created.new == {"name": "BI export", "prefix": api_key.prefix}
    assert revoked.actor == personas.admin.user
    assert revoked.old == {"revoked_at": None}
    assert revoked.new["revoked_at"] is not None


def test_revoked_key_stops_working_at_once(client, personas):
    login(client, personas.admin)
    key = _create(client).context["key"]
    api_key = ApiKey.unscoped.get(organization=personas.org)
    client.post(_url("spm:api-key-revoke", key_id=api_key.public_id))
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None

    listing = client.get(_url("spm:api-keys")).content.decode()
    assert f"revoked {api_key.revoked_at:%Y-%m-%d}" in listing

    client.logout()
    response = _api_get(client, key)
    assert response.status_code == 401
    assert response.json()["detail"] == "The API key is invalid or revoked."


def test_list_shows_prefix_name_dates(client, personas):
    api_key, _ = api_key_create(
        organization=personas.org, name="Warehouse sync", actor=personas.admin.user
    )
    login(client, personas.admin)
    response = client.get(_url("spm:api-keys"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Warehouse sync" in content
    assert api_key.prefix in content
    assert "never" in content
    assert personas.admin.user.email in content


def test_blank_name_is_rejected(client, personas):
    login(client, personas.admin)
    response = _create(client, name="   ")
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not ApiKey.unscoped.filter(organization=personas.org).exists()


@pytest.mark.parametrize("persona", ["vp", "manager", "rep1"])
def test_non_admins_get_404(client, personas, persona):
    api_key, _ = api_key_create(organization=personas.org, name="live")
    login(client, getattr(personas, persona))
    assert client.get(_url("spm:api-keys")).status_code == 404
    assert _create(client).status_code == 404
    revoke = _url("spm:api-key-revoke", key_id=api_key.public_id)
    assert client.post(revoke).status_code == 404

    assert ApiKey.unscoped.filter(organization=personas.org).count() == 1
    api_key.refresh_from_db()
    assert api_key.revoked_at is None


def test_other_organisations_key_is_404(client, personas):
    other_key, _ = api_key_create(organization=personas.other_org, name="globex")
    login(client, personas.admin)
    response = client.post(_url("spm:api-key-revoke", key_id=other_key.public_id))
    assert response.status_code == 404
    other_key.refresh_from_db()
    assert other_key.revoked_at is None
    listing = client.get(_url("spm:api-keys")).content.decode()
    assert other_key.prefix not in listing


def test_wrong_methods_are_405(client, personas):
    api_key, _ = api_key_create(organization=personas.org, name="live")
    login(client, personas.admin)
    assert client.get(_url("spm:api-key-create")).status_code == 405
    revoke = _url("spm:api-key-revoke", key_id=api_key.public_id)
    assert client.get(revoke).status_code == 405
    assert client.post(_url("spm:api-keys")).status_code == 405
    api_key.refresh_from_db()
    assert api_key.revoked_at is None


def test_last_used_refreshed_once_a_minute(personas):
    # A key used at 09:00:00 and again at 09:00:30 keeps 09:00:00. At
    # 09:01:00 a minute has passed, so the time moves.
    with tenant_context(personas.org):
        api_key, key = api_key_create(
            organization=personas.org, actor=personas.admin.user, name="Busy"
        )
    start = dt.datetime(2024, 3, 4, 9, tzinfo=dt.UTC)
    for seconds, expected in ((0, 0), (30, 0), (60, 60)):
        now = start + dt.timedelta(seconds=seconds)
        with mock.patch("django.utils.timezone.now", return_value=now):
            assert api_key_lookup(key).pk == api_key.pk
        api_key.refresh_from_db()
        assert api_key.last_used_at == start + dt.timedelta(seconds=expected)


def test_kept_key_revoked_stops_at_once(client, personas):
    """A key found before, and kept in memory, stops on the request after revoking."""
    with tenant_context(personas.org):
        api_key, key = api_key_create(
            organization=personas.org, actor=personas.admin.user, name="Kept"
        )
    assert _api_get(client, key).status_code == 200
    assert _api_get(client, key).status_code == 200

    login(client, personas.admin)
    client.post(_url("spm:api-key-revoke", key_id=api_key.public_id))
    client.logout()

    assert _api_get(client, key).status_code == 401


def test_kept_key_found_without_query(personas, django_assert_num_queries):
    with tenant_context(personas.org):
        api_key, key = api_key_create(
            organization=personas.org, actor=personas.admin.user, name="Kept"
        )
    api_key_lookup(key)

    # The version check goes through the raw cursor, which query counts do
    # not see; the key itself is not read again.
    with django_assert_num_queries(0):
        found = api_key_lookup(key)

    assert found.pk == api_key.pk


def test_kept_key_dropped_when_deleted(personas):
    with tenant_context(personas.org):
        api_key, key = api_key_create(
            organization=personas.org, actor=personas.admin.user, name="Gone"
        )
    assert api_key_lookup(key) is not None

    ApiKey.unscoped.filter(pk=api_key.pk).delete()

    assert api_key_lookup(key) is None
