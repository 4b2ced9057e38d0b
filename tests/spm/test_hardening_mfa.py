"""Two-factor authentication, and organisations that require it of admins."""

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.urls import reverse

from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.conftest import PASSWORD, login

SETUP_URL = reverse("mfa_activate_totp")
ORG_PAGES = ["/o/acme/", "/o/acme/settings/members/", "/o/acme/data/imports/"]


@pytest.fixture
def mfa_required(personas):
    personas.org.require_mfa_for_admins = True
    personas.org.save()
    return personas.org


def _current_code(secret: str) -> str:
    counter = next(yield_hotp_counters_from_time())
    return format_hotp_value(hotp_value(secret, counter))


def _activate_totp(user) -> str:
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def _sign_in(client, user):
    response = client.post(
        reverse("account_login"), {"login": user.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    return response


@pytest.mark.parametrize("path", ORG_PAGES)
def test_admin_without_totp_is_sent_to_setup(client, personas, mfa_required, path):
    login(client, personas.admin)
    response = client.get(path)
    assert response.status_code == 302
    assert response.url == SETUP_URL


def test_admin_post_is_not_carried_out(client, personas, mfa_required):
    login(client, personas.admin)
    url = reverse("spm:settings", kwargs={"org_slug": "acme"})
    data = {
        "name": "Renamed",
        "time_zone": "UTC",
        "currency": "USD",
        "fiscal_year_start_month": 1,
    }
    response = client.post(url, data)
    assert response.url == SETUP_URL
    personas.org.refresh_from_db()
    assert personas.org.name == "Acme"


def test_redirect_says_why(client, personas, mfa_required):
    login(client, personas.admin)
    response = client.get("/o/acme/", follow=True)
    messages = [str(message) for message in response.context["messages"]]
    assert any("Acme requires two-factor authentication" in m for m in messages)


def test_htmx_request_gets_client_redirect(client, personas, mfa_required):
    login(client, personas.admin)
    response = client.get("/o/acme/team/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Redirect"] == SETUP_URL


def test_admin_with_totp_is_let_in(client, personas, mfa_required):
    _activate_totp(personas.admin.user)
    login(client, personas.admin)
    assert client.get("/o/acme/settings/members/").status_code == 200


def test_recovery_codes_alone_do_not_count(client, personas, mfa_required):
    Authenticator.objects.create(
        user=personas.admin.user,
        type=Authenticator.Type.RECOVERY_CODES,
        data={"seed": "00", "used_mask": 0},
    )
    login(client, personas.admin)
    assert client.get("/o/acme/").url == SETUP_URL


@pytest.mark.parametrize("persona", ["vp", "manager", "rep1"])
def test_non_admins_are_not_sent(client, personas, mfa_required, persona):
    login(client, getattr(personas, persona))
    response = client.get(reverse("measurement:my-performance", args=["acme"]))
    assert response.status_code == 200


def test_other_organisation_is_not_affected(client, personas, mfa_required):
    login(client, personas.outsider)
    assert client.get("/o/globex/settings/members/").status_code == 200


def test_requirement_off_by_default(client, personas):
    assert personas.org.require_mfa_for_admins is False
    login(client, personas.admin)
    assert client.get("/o/acme/settings/members/").status_code == 200


def test_setting_is_saved_and_audited(client, personas):
    login(client, personas.admin)
    url = reverse("spm:settings", kwargs={"org_slug": "acme"})
    response = client.post(
        url,
        {
            "name": "Acme",
            "time_zone": "UTC",
            "currency": "USD",
            "fiscal_year_start_month": 1,
            "require_mfa_for_admins": "on",
        },
    )
    assert response.status_code == 302
    personas.org.refresh_from_db()
    assert personas.org.require_mfa_for_admins is True
    with tenant_context(personas.org):
        entry = AuditLog.objects.get(action="organization.update")
    assert entry.old["require_mfa_for_admins"] is False
    assert entry.new["require_mfa_for_admins"] is True
    # The admin who turned it on has no authenticator yet.
    assert client.get(url).url == SETUP_URL


def test_admin_sets_up_totp_then_gets_in(client, personas, mfa_required):
    user = personas.admin.user
    EmailAddress.objects.create(
        user=user, email=user.email, verified=True, primary=True
    )
    _sign_in(client, user)
    assert client.get("/o/acme/").url == SETUP_URL

    # Adding an authenticator asks for the password again first.
    response = client.get(SETUP_URL)
    assert response.url.startswith(reverse("account_reauthenticate"))
    response = client.post(response.url, {"password": PASSWORD})
    assert response.url == SETUP_URL

    page = client.get(SETUP_URL)
    assert page.status_code == 200
    assert 'src="data:image/svg+xml;base64,' in page.content.decode()
    secret = client.session["mfa.totp.secret"]
    response = client.post(SETUP_URL, {"code": _current_code(secret)})
    assert response.status_code == 302
    assert Authenticator.objects.filter(
        user=user, type=Authenticator.Type.TOTP
    ).exists()
    assert Authenticator.objects.filter(
        user=user, type=Authenticator.Type.RECOVERY_CODES
    ).exists()

    assert client.get("/o/acme/settings/members/").status_code == 200


def test_sign_in_asks_for_the_code(client, personas):
    user = personas.rep1.user
    secret = _activate_totp(user)
    response = _sign_in(client, user)
    assert response.url == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session

    response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session

    response = client.post(reverse("mfa_authenticate"), {"code": _current_code(secret)})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
