"""The audit log page: filters, pages, and no way to change an entry."""

import datetime as dt

import pytest
from django.contrib import admin
from django.urls import URLResolver, get_resolver, reverse

from spm.models import AuditLog
from spm.views import AUDIT_LOG_PAGE_SIZE
from tests.conftest import login

URL = reverse("spm:audit-log", kwargs={"org_slug": "acme"})


def _entry(organization, action, actor=None, when=None, object_id=""):
    return AuditLog.unscoped.create(
        organization=organization,
        actor=actor,
        action=action,
        object_type="test.object",
        object_id=object_id,
        created_at=when or dt.datetime(2025, 3, 10, 12, tzinfo=dt.UTC),
    )


def _march(day, hour, minute=0):
    return dt.datetime(2025, 3, day, hour, minute, tzinfo=dt.UTC)


@pytest.fixture
def entries(personas):
    """Five Acme entries in March 2025 and one Globex entry."""
    org, admin_user, vp_user = personas.org, personas.admin.user, personas.vp.user
    AuditLog.unscoped.filter(organization=org).delete()
    _entry(org, "quota.update", admin_user, _march(1, 9), "a")
    _entry(org, "quota.update", vp_user, _march(2, 9), "b")
    _entry(org, "role.update", admin_user, _march(3, 9), "c")
    # 23:30 UTC on 3 March is 00:30 on 4 March in Berlin.
    _entry(org, "role.update", None, _march(3, 23, 30), "d")
    _entry(org, "plan.update", vp_user, _march(5, 9), "e")
    _entry(personas.other_org, "quota.update", personas.outsider.user, None, "x")


def _shown(client, **params) -> list[str]:
    response = client.get(URL, params)
    assert response.status_code == 200
    return [entry.object_id for entry in response.context["page"]]


def test_lists_newest_first_without_other_orgs(client, personas, entries):
    login(client, personas.admin)
    assert _shown(client) == ["e", "d", "c", "b", "a"]


def test_filter_by_action(client, personas, entries):
    login(client, personas.admin)
    assert _shown(client, action="quota.update") == ["b", "a"]
    assert _shown(client, action="role.update") == ["d", "c"]


def test_filter_by_actor(client, personas, entries):
    login(client, personas.admin)
    assert _shown(client, actor=personas.vp.user.pk) == ["e", "b"]
    assert _shown(client, actor=personas.admin.user.pk) == ["c", "a"]


def test_actor_of_other_org_is_not_a_choice(client, personas, entries):
    login(client, personas.admin)
    response = client.get(URL, {"actor": personas.outsider.user.pk})
    assert response.context["form"].errors["actor"]
    assert list(response.context["page"]) == []


def test_filter_by_dates_in_org_time_zone(client, personas, entries):
    login(client, personas.admin)
    assert _shown(client, start="2025-03-02", end="2025-03-03") == ["d", "c", "b"]

    personas.org.time_zone = "Europe/Berlin"
    personas.org.save()
    # Berlin is UTC+1 in March: d (23:30 UTC on the 3rd) falls on the 4th.
    assert _shown(client, start="2025-03-02", end="2025-03-03") == ["c", "b"]
    assert _shown(client, start="2025-03-04", end="2025-03-04") == ["d"]
    assert _shown(client, start="2025-03-05") == ["e"]
    assert _shown(client, end="2025-03-01") == ["a"]


def test_filters_combine(client, personas, entries):
    login(client, personas.admin)
    shown = _shown(
        client, action="quota.update", actor=personas.vp.user.pk, end="2025-03-04"
    )
    assert shown == ["b"]


def test_start_after_end_is_an_error(client, personas, entries):
    login(client, personas.admin)
    response = client.get(URL, {"start": "2025-03-05", "end": "2025-03-01"})
    content = response.content.decode()
    assert "The start date 2025-03-05 is after the end date 2025-03-01" in content
    assert list(response.context["page"]) == []


def test_invalid_date_is_an_error(client, personas, entries):
    login(client, personas.admin)
    response = client.get(URL, {"start": "yesterday"})
    assert (
        "From: &quot;yesterday&quot; is not a valid date (use YYYY-MM-DD)."
        in response.content.decode()
    )
    assert list(response.context["page"]) == []


def test_pages_keep_the_filter(client, personas):
    AuditLog.unscoped.filter(organization=personas.org).delete()
    total = AUDIT_LOG_PAGE_SIZE + 5
    for number in range(total):
        _entry(personas.org, "quota.update", object_id=f"q{number}")
    _entry(personas.org, "role.update", object_id="role")
    login(client, personas.admin)

    first = client.get(URL, {"action": "quota.update"})
    page = first.context["page"]
    assert page.paginator.count == total
    assert len(page) == AUDIT_LOG_PAGE_SIZE
    assert "?action=quota.update&amp;page=2" in first.content.decode()

    second = client.get(URL, {"action": "quota.update", "page": 2})
    shown = [entry.object_id for entry in second.context["page"]]
    assert len(shown) == 5
    assert "role" not in shown


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_writes_to_the_page_change_nothing(client, personas, entries, method):
    login(client, personas.admin)
    before = list(
        AuditLog.unscoped.order_by("pk").values_list("pk", "action", "object_id")
    )
    response = getattr(client, method)(URL, {"action": "tampered"})
    assert response.status_code == 405
    after = list(
        AuditLog.unscoped.order_by("pk").values_list("pk", "action", "object_id")
    )
    assert after == before


@pytest.mark.parametrize("persona", ["vp", "manager", "rep1", "outsider"])
def test_non_admins_get_404(client, personas, entries, persona):
    login(client, getattr(personas, persona))
    assert client.get(URL).status_code == 404
    assert client.post(URL).status_code == 404


def test_audit_log_is_not_in_django_admin():
    assert AuditLog not in admin.site._registry


def _route_names(patterns) -> list[str]:
    names = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            names += _route_names(entry.url_patterns)
        else:
            names.append(entry.name or "")
    return names


def test_no_route_edits_the_audit_log():
    names = _route_names(get_resolver().url_patterns)
    assert [name for name in names if "audit" in name] == ["audit-log"]


def test_audit_values_show_as_fields(client, personas):
    from spm.services import audit_log_write
    from tests.conftest import login

    audit_log_write(
        organization=personas.org,
        actor=personas.admin.user,
        action="organization.update",
        object_type="spm.organization",
        old={"currency": "USD"},
        new={"currency": "EUR"},
    )
    login(client, personas.admin)
    content = client.get("/o/acme/settings/audit/").content.decode()
    assert "<dt>currency</dt>" in content
    assert "<dd>EUR</dd>" in content
    assert "{&#x27;currency&#x27;" not in content
