"""Two-factor authentication that an organisation requires of its admins."""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from spm.models import User


def user_has_totp(user: User) -> bool:
    """Return whether ``user`` has activated an authenticator app (TOTP)."""
    return Authenticator.objects.filter(
        user=user, type=Authenticator.Type.TOTP
    ).exists()


class AdminMfaMiddleware:
    """Send an admin without an authenticator app to set one up.

    It applies to every page under ``/o/<org_slug>/`` of an organisation with
    ``require_mfa_for_admins`` on, so it must come after OrganizationMiddleware,
    which resolves ``request.membership``. The setup pages live under
    ``/accounts/2fa/``, outside any organisation, so the redirect cannot loop.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        membership = getattr(request, "membership", None)
        if membership is None or not membership.is_admin:
            return None
        if not membership.organization.require_mfa_for_admins:
            return None
        if user_has_totp(request.user):
            return None

        messages.warning(
            request,
            f"{membership.organization.name} requires two-factor authentication "
            "for admins. Activate an authenticator app to continue.",
        )
        setup_url = reverse("mfa_activate_totp")
        if getattr(request, "htmx", False):
            # A plain redirect would swap the setup page into a page fragment.
            return HttpResponseClientRedirect(setup_url)
        return redirect(setup_url)
