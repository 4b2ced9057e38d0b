"""Sign-up, sign-in and invitations with case-insensitive email addresses."""

from django.core import mail
from django.urls import reverse

from spm.models import Membership, User
from spm.services import membership_invite
from spm.tenancy import tenant_context
from tests.factories import MembershipFactory


def _invite_dana(personas):
    with tenant_context(personas.org):
        dana = MembershipFactory(
            organization=personas.org, user=None, display_name="Dana Rep"
        )
        membership_invite(
            membership=dana,
            email="Dana.Rep@Example.test",
            actor=personas.admin.user,
            signup_url="http://testserver/accounts/signup/",
        )
    return dana


def test_invitation_email_is_sent(personas, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _invite_dana(personas)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["dana.rep@example.test"]
    assert "Acme" in mail.outbox[0].subject
    assert "http://testserver/accounts/signup/" in mail.outbox[0].body


def test_signup_links_invited_membership_case_insensitively(client, personas):
    dana = _invite_dana(personas)
    response = client.post(
        reverse("account_signup"),
        {
            "email": "dana.rep@example.test",
            "password1": "a-Long-passw0rd",
            "password2": "a-Long-passw0rd",
        },
    )
    assert response.status_code == 302

    assert User.objects.filter(email__iexact="dana.rep@example.test").count() == 1
    dana.refresh_from_db()
    assert dana.user.email == "dana.rep@example.test"
    with tenant_context(personas.org):
        assert Membership.objects.filter(user=dana.user).count() == 1


def test_second_signup_with_other_casing_is_rejected(client, personas):
    _invite_dana(personas)
    for email in ("dana.rep@example.test", "DANA.REP@EXAMPLE.TEST"):
        client.post(
            reverse("account_signup"),
            {
                "email": email,
                "password1": "a-Long-passw0rd",
                "password2": "a-Long-passw0rd",
            },
        )
        client.logout()
    assert User.objects.filter(email__iexact="dana.rep@example.test").count() == 1


def test_sign_in_works_with_any_casing(client, personas):
    User.objects.create_user("dana.rep@example.test", "a-Long-passw0rd")
    for email in ("Dana.Rep@Example.test", "DANA.REP@EXAMPLE.TEST"):
        response = client.post(
            reverse("account_login"),
            {"login": email, "password": "a-Long-passw0rd"},
        )
        assert response.status_code == 302, email
        client.logout()


def test_invite_of_existing_user_links_at_once(personas):
    existing = User.objects.create_user("dana.rep@example.test", "a-Long-passw0rd")
    dana = _invite_dana(personas)
    dana.refresh_from_db()
    assert dana.user_id == existing.pk


def test_login_page_uses_app_layout(client, db):
    response = client.get(reverse("account_login"))
    assert response.status_code == 200
    assert b"css/attain.css" in response.content


def test_home_sends_member_to_their_organisation(client, personas):
    client.force_login(personas.rep1.user)
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url == "/o/acme/"


def test_home_without_organisation_explains(client, db):
    user = User.objects.create_user("lonely@example.test", "a-Long-passw0rd")
    client.force_login(user)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert b"not in an organisation" in response.content
