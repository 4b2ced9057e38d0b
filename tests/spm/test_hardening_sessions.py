"""Removing a member ends their access to the organisation, and their sessions."""

import pytest
from allauth.usersessions.models import UserSession
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from spm.models import AuditLog, Membership
from spm.services import MembershipChangeError, membership_remove, membership_update
from spm.tenancy import tenant_context
from tests.conftest import PASSWORD, login

MY_PAGE = "/o/acme/me/"


@pytest.fixture
def rep_client(personas):
    """Rita, signed in through the sign-in page, so her session is recorded."""
    rep_client = Client()
    response = rep_client.post(
        reverse("account_login"),
        {"login": personas.rep1.user.email, "password": PASSWORD},
    )
    assert response.status_code == 302
    assert rep_client.get(MY_PAGE).status_code == 200
    return rep_client


def _signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_deactivated_member_gets_404(personas):
    client = login(Client(), personas.rep1)
    assert client.get(MY_PAGE).status_code == 200
    Membership.unscoped.filter(pk=personas.rep1.pk).update(is_active=False)
    assert client.get(MY_PAGE).status_code == 404
    assert client.get("/o/acme/team/").status_code == 404


def test_deleted_member_gets_404(personas):
    client = login(Client(), personas.rep3)
    assert client.get(MY_PAGE).status_code == 200
    Membership.unscoped.filter(pk=personas.rep3.pk).delete()
    assert client.get(MY_PAGE).status_code == 404


def test_remove_deactivates_and_audits(personas, rep_client):
    membership_remove(membership=personas.rep1, actor=personas.admin.user)

    personas.rep1.refresh_from_db()
    assert personas.rep1.is_active is False
    with tenant_context(personas.org):
        entry = AuditLog.objects.get(action="membership.remove")
    assert entry.actor == personas.admin.user
    assert entry.object_id == str(personas.rep1.public_id)
    assert entry.old["is_active"] is True
    assert entry.new["is_active"] is False
    assert entry.new["sessions_ended"] == 1


def test_remove_ends_sessions_without_other_org(personas, rep_client):
    session_key = rep_client.session.session_key
    assert UserSession.objects.filter(user=personas.rep1.user).count() == 1

    membership_remove(membership=personas.rep1, actor=personas.admin.user)

    assert not Session.objects.filter(session_key=session_key).exists()
    assert not UserSession.objects.filter(user=personas.rep1.user).exists()
    response = rep_client.get(MY_PAGE)
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
    assert not _signed_in(rep_client)


def test_remove_keeps_sessions_with_other_org(personas, rep_client):
    Membership.unscoped.create(
        organization=personas.other_org,
        user=personas.rep1.user,
        display_name="Rita at Globex",
    )
    membership_remove(membership=personas.rep1, actor=personas.admin.user)

    assert _signed_in(rep_client)
    assert rep_client.get(MY_PAGE).status_code == 404
    assert rep_client.get("/o/globex/me/").status_code == 200
    with tenant_context(personas.org):
        entry = AuditLog.objects.get(action="membership.remove")
    assert entry.new["sessions_ended"] == 0


def test_remove_leaves_other_users_signed_in(personas, rep_client):
    other = Client()
    other.post(
        reverse("account_login"),
        {"login": personas.rep2.user.email, "password": PASSWORD},
    )
    membership_remove(membership=personas.rep1, actor=personas.admin.user)
    assert other.get(MY_PAGE).status_code == 200


def test_second_remove_changes_nothing(personas):
    membership_remove(membership=personas.rep1, actor=personas.admin.user)
    membership_remove(membership=personas.rep1, actor=personas.admin.user)
    with tenant_context(personas.org):
        assert AuditLog.objects.filter(action="membership.remove").count() == 1


def test_only_admin_cannot_be_removed(personas):
    with pytest.raises(MembershipChangeError, match="only active admin"):
        membership_remove(membership=personas.admin, actor=personas.admin.user)
    personas.admin.refresh_from_db()
    assert personas.admin.is_active is True


def test_edit_form_deactivation_ends_sessions(personas, rep_client):
    membership_update(
        membership=personas.rep1, actor=personas.admin.user, is_active=False
    )
    assert not UserSession.objects.filter(user=personas.rep1.user).exists()
    assert rep_client.get(MY_PAGE).status_code == 302


def _remove_url(member, org="acme"):
    return reverse(
        "spm:member-remove", kwargs={"org_slug": org, "member_id": member.public_id}
    )


def test_remove_button_removes(client, personas, rep_client):
    login(client, personas.admin)
    response = client.post(_remove_url(personas.rep1))
    assert response.status_code == 302
    assert response.url == reverse("spm:members", kwargs={"org_slug": "acme"})
    personas.rep1.refresh_from_db()
    assert personas.rep1.is_active is False
    assert rep_client.get(MY_PAGE).status_code == 302

    members = client.get(response.url).content.decode()
    assert "removed" in members


def test_remove_button_keeps_other_org_sessions(client, personas, rep_client):
    # The page runs inside Acme, where row-level security hides the Globex
    # membership unless the service looks across organisations.
    Membership.unscoped.create(
        organization=personas.other_org,
        user=personas.rep1.user,
        display_name="Rita at Globex",
    )
    login(client, personas.admin)
    client.post(_remove_url(personas.rep1))
    assert rep_client.get(MY_PAGE).status_code == 404
    assert rep_client.get("/o/globex/me/").status_code == 200
    assert UserSession.objects.filter(user=personas.rep1.user).count() == 1


def test_remove_button_explains_refusal(client, personas):
    login(client, personas.admin)
    response = client.post(_remove_url(personas.admin), follow=True)
    assert "only active admin" in response.content.decode()
    personas.admin.refresh_from_db()
    assert personas.admin.is_active is True


@pytest.mark.parametrize("persona", ["vp", "manager", "rep2"])
def test_non_admins_cannot_remove(client, personas, persona):
    login(client, getattr(personas, persona))
    assert client.post(_remove_url(personas.rep1)).status_code == 404
    personas.rep1.refresh_from_db()
    assert personas.rep1.is_active is True


def test_other_organisations_member_is_404(client, personas):
    login(client, personas.admin)
    assert client.post(_remove_url(personas.other_rep)).status_code == 404
    personas.other_rep.refresh_from_db()
    assert personas.other_rep.is_active is True


def test_remove_by_get_is_405(client, personas):
    login(client, personas.admin)
    assert client.get(_remove_url(personas.rep1)).status_code == 405
    personas.rep1.refresh_from_db()
    assert personas.rep1.is_active is True
