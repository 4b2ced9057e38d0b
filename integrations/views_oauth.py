"""Pages of the OAuth 2 install flow: the redirect to the CRM and its callback.

The redirect views are admin pages of an organisation, like the connect
pages. The callback is one URL per provider outside the organisation's
URLs, because the app registered with the CRM has one redirect URL for
every organisation. The state in the session names the organisation, and
the signed-in user must still be an active admin of it.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from integrations import oauth_install, selectors
from integrations.models import CrmConnection
from integrations.oauth_install import InstallFailed, OAuthApp
from spm.access import admin_required
from spm.models import Membership
from spm.tenancy import tenant_context

logger = logging.getLogger(__name__)

# Maximum characters of the CRM's error_description that a message repeats.
ERROR_DESCRIPTION_MAX_CHARS = 300


@login_required
@admin_required
@require_POST
def oauth_install_start(request: HttpRequest, org_slug: str, provider: str):
    """Redirect to the provider's authorization URL to connect it."""
    app = oauth_install.oauth_app(provider)
    if app is None:
        raise Http404("No OAuth 2 app is set up for this CRM.")
    connect_page = reverse(f"integrations:connect-{provider}", args=[org_slug])
    return _authorization_redirect(request, app, None, connect_page)


@login_required
@admin_required
@require_POST
def oauth_reconnect_start(request: HttpRequest, org_slug: str, connection_id):
    """Redirect to the provider's authorization URL to renew a connection's tokens."""
    connection = selectors.connection_get(connection_id)
    if connection is None:
        raise Http404("No such CRM connection.")
    app = oauth_install.oauth_app(connection.provider)
    if app is None:
        raise Http404("No OAuth 2 app is set up for this CRM.")
    connection_page = _connection_url(org_slug, connection)
    return _authorization_redirect(request, app, connection, connection_page)


def _authorization_redirect(
    request: HttpRequest,
    app: OAuthApp,
    connection: CrmConnection | None,
    back_url: str,
) -> HttpResponse:
    callback = reverse("integrations-oauth:callback", args=[app.provider])
    try:
        url = oauth_install.authorization_start(
            request.session,
            app=app,
            organization=request.organization,
            redirect_uri=request.build_absolute_uri(callback),
            connection=connection,
        )
    except InstallFailed as error:
        messages.error(request, str(error))
        return redirect(back_url)
    return redirect(url)


@login_required
@require_GET
def oauth_callback(request: HttpRequest, provider: str) -> HttpResponse:
    """Finish the connection the state names: exchange the code, store the tokens."""
    if provider not in oauth_install.PROVIDERS:
        raise Http404("No such CRM.")
    label = CrmConnection.Provider(provider).label
    try:
        entry = oauth_install.state_take(
            request.session, state=request.GET.get("state", ""), provider=provider
        )
    except InstallFailed as error:
        return _failed_page(request, label, str(error))
    membership = (
        Membership.unscoped.select_related("organization")
        .filter(organization_id=entry["organization_id"], user=request.user)
        .filter(is_active=True)
        .first()
    )
    if membership is None or not membership.is_admin:
        return _failed_page(
            request,
            label,
            "This connection request was started in an organisation where you "
            "are not an admin now, so nothing was connected.",
        )
    organization = membership.organization
    back_url = reverse(f"integrations:connect-{provider}", args=[organization.slug])

    error = request.GET.get("error", "")
    if error:
        logger.info(
            "OAuth 2 install of %s for organisation %s not authorised: %s",
            provider,
            organization.pk,
            error[:ERROR_DESCRIPTION_MAX_CHARS],
        )
        messages.error(request, _provider_error_message(request, label, error))
        return redirect(back_url)
    code = request.GET.get("code", "")
    app = oauth_install.oauth_app(provider)
    if not code or app is None:
        reason = (
            "the response has no authorization code"
            if app is not None
            else "its OAuth 2 app is no longer set up in Attain"
        )
        messages.error(request, f"Connecting {label} failed: {reason}.")
        return redirect(back_url)

    try:
        token_response = oauth_install.code_exchange(
            app, code=code, redirect_uri=entry["redirect_uri"]
        )
        with tenant_context(organization):
            connection = oauth_install.connection_install(
                app=app,
                organization=organization,
                actor=request.user,
                token_response=token_response,
                connection_id=entry["connection_id"],
            )
    except InstallFailed as error:
        logger.info(
            "OAuth 2 install of %s for organisation %s failed: %s",
            provider,
            organization.pk,
            error,
        )
        messages.error(request, str(error))
        return redirect(back_url)
    messages.success(
        request,
        f"Connected {connection.name} with OAuth 2. Run a sync to load its data.",
    )
    return redirect(_connection_url(organization.slug, connection))


def _provider_error_message(request: HttpRequest, label: str, error: str) -> str:
    """Return the message for an authorization the provider did not grant."""
    if error in ("access_denied", "user_denied"):
        return (
            f"Access was denied in {label}, so nothing was connected. To "
            f"connect, start again and allow access in {label}."
        )
    description = request.GET.get("error_description", "")[:ERROR_DESCRIPTION_MAX_CHARS]
    detail = f"{error}: {description}" if description else error
    return f"{label} did not authorise the connection ({detail}). Nothing was saved."


def _failed_page(request: HttpRequest, label: str, message: str) -> HttpResponse:
    logger.info(
        "OAuth 2 callback of %s for user %s rejected: %s",
        label,
        request.user.pk,
        message,
    )
    context = {"provider_label": label, "message": message}
    return render(request, "integrations/oauth_failed.html", context, status=400)


def _connection_url(org_slug: str, connection: CrmConnection) -> str:
    return reverse(
        "integrations:connection",
        kwargs={"org_slug": org_slug, "connection_id": connection.public_id},
    )
