"""Admin pages of outbound delivery: webhook endpoints, chat connections, resends.

Every page is for admins only; others get 404, as on the other admin pages.
A new or rotated signing secret is kept in the session and shown once, on
the next view of the endpoint's page.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from notifications import outbound_services as services
from notifications import selectors
from notifications.outbound import allow_private_addresses
from notifications.outbound_forms import (
    ChatConnectionForm,
    OutboundSettingsForm,
    WebhookEndpointForm,
)
from spm.access import admin_required

LOG_PAGE_SIZE = 50


def _secret_key(endpoint) -> str:
    return f"notifications.webhook_secret.{endpoint.public_id}"


@login_required
@admin_required
@require_GET
def webhooks(request: HttpRequest, org_slug: str) -> HttpResponse:
    """List the webhook endpoints and chat connections, with the address setting."""
    row = selectors.outbound_settings()
    settings_form = OutboundSettingsForm(
        initial={"allow_private_addresses": bool(row and row.allow_private_addresses)}
    )
    context = {
        "endpoints": selectors.webhook_endpoints(),
        "connections": selectors.chat_connections(),
        "settings_form": settings_form,
    }
    return render(request, "notifications/webhooks.html", context)


@login_required
@admin_required
@require_POST
def outbound_settings(request: HttpRequest, org_slug: str) -> HttpResponse:
    form = OutboundSettingsForm(request.POST)
    if form.is_valid():
        services.outbound_settings_save(
            organization=request.organization,
            actor=request.user,
            allow_private_addresses=form.cleaned_data["allow_private_addresses"],
        )
        messages.success(request, "Outbound settings saved.")
    return redirect("notifications:webhooks", org_slug=org_slug)


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def webhook_new(request: HttpRequest, org_slug: str) -> HttpResponse:
    form = WebhookEndpointForm(
        request.POST or None, allow_private=allow_private_addresses(), editing=False
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        endpoint, secret = services.endpoint_create(
            organization=request.organization,
            actor=request.user,
            url=data["url"],
            description=data["description"],
            event_types=data["event_types"],
        )
        request.session[_secret_key(endpoint)] = secret
        messages.success(request, "Webhook endpoint created.")
        return redirect(
            "notifications:webhook", org_slug=org_slug, endpoint_id=endpoint.public_id
        )
    status = 400 if form.is_bound else 200
    context = {"form": form, "endpoint": None}
    return render(request, "notifications/webhook_form.html", context, status=status)


@login_required
@admin_required
@require_GET
def webhook_detail(request: HttpRequest, org_slug: str, endpoint_id) -> HttpResponse:
    """Show the endpoint, its secret once after a change, and its delivery log."""
    endpoint = selectors.webhook_endpoint_or_404(endpoint_id)
    page = Paginator(selectors.outbound_log(endpoint=endpoint), LOG_PAGE_SIZE)
    context = {
        "endpoint": endpoint,
        "secret": request.session.pop(_secret_key(endpoint), None),
        "page": page.get_page(request.GET.get("page")),
    }
    return render(request, "notifications/webhook_detail.html", context)


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def webhook_edit(request: HttpRequest, org_slug: str, endpoint_id) -> HttpResponse:
    endpoint = selectors.webhook_endpoint_or_404(endpoint_id)
    initial = {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "is_active": endpoint.is_active,
    }
    form = WebhookEndpointForm(
        request.POST or None,
        initial=initial,
        allow_private=allow_private_addresses(),
        editing=True,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services.endpoint_update(
            endpoint=endpoint,
            actor=request.user,
            url=data["url"],
            description=data["description"],
            event_types=data["event_types"],
            is_active=data["is_active"],
        )
        messages.success(request, "Webhook endpoint saved.")
        return redirect(
            "notifications:webhook", org_slug=org_slug, endpoint_id=endpoint.public_id
        )
    status = 400 if form.is_bound else 200
    context = {"form": form, "endpoint": endpoint}
    return render(request, "notifications/webhook_form.html", context, status=status)


@login_required
@admin_required
@require_POST
def webhook_rotate(request: HttpRequest, org_slug: str, endpoint_id) -> HttpResponse:
    endpoint = selectors.webhook_endpoint_or_404(endpoint_id)
    secret = services.endpoint_secret_rotate(endpoint=endpoint, actor=request.user)
    request.session[_secret_key(endpoint)] = secret
    messages.success(request, "Signing secret replaced. Update your receiver now.")
    return redirect(
        "notifications:webhook", org_slug=org_slug, endpoint_id=endpoint.public_id
    )


@login_required
@admin_required
@require_POST
def webhook_delete(request: HttpRequest, org_slug: str, endpoint_id) -> HttpResponse:
    endpoint = selectors.webhook_endpoint_or_404(endpoint_id)
    services.endpoint_delete(endpoint=endpoint, actor=request.user)
    messages.success(request, f"Webhook endpoint {endpoint.url} deleted.")
    return redirect("notifications:webhooks", org_slug=org_slug)


@login_required
@admin_required
@require_POST
def delivery_resend(request: HttpRequest, org_slug: str, delivery_id) -> HttpResponse:
    """Queue a new attempt of a delivery, with the same event id."""
    delivery = selectors.outbound_delivery_or_404(delivery_id)
    try:
        services.delivery_resend(delivery=delivery, actor=request.user)
    except services.ResendRejected as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Event {delivery.event_public_id} queued again.")
    if delivery.endpoint_id is not None:
        return redirect(
            "notifications:webhook",
            org_slug=org_slug,
            endpoint_id=delivery.endpoint.public_id,
        )
    return redirect(
        "notifications:chat", org_slug=org_slug, chat_id=delivery.chat.public_id
    )


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def chat_new(request: HttpRequest, org_slug: str) -> HttpResponse:
    form = ChatConnectionForm(
        request.POST or None, allow_private=allow_private_addresses(), editing=False
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services.chat_create(
            organization=request.organization,
            actor=request.user,
            kind=data["kind"],
            team=data["team"],
            url=data["url"],
        )
        messages.success(request, "Chat connection created.")
        return redirect("notifications:webhooks", org_slug=org_slug)
    status = 400 if form.is_bound else 200
    context = {"form": form, "connection": None}
    return render(request, "notifications/chat_form.html", context, status=status)


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def chat_edit(request: HttpRequest, org_slug: str, chat_id) -> HttpResponse:
    """Edit a chat connection and show its delivery log."""
    connection = selectors.chat_connection_or_404(chat_id)
    initial = {
        "kind": connection.kind,
        "team": connection.team,
        "is_active": connection.is_active,
    }
    form = ChatConnectionForm(
        request.POST or None,
        initial=initial,
        allow_private=allow_private_addresses(),
        editing=True,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services.chat_update(
            connection=connection,
            actor=request.user,
            kind=data["kind"],
            team=data["team"],
            url=data["url"],
            is_active=data["is_active"],
        )
        messages.success(request, "Chat connection saved.")
        return redirect("notifications:chat", org_slug=org_slug, chat_id=chat_id)
    page = Paginator(selectors.outbound_log(chat=connection), LOG_PAGE_SIZE)
    context = {
        "form": form,
        "connection": connection,
        "page": page.get_page(request.GET.get("page")),
    }
    status = 400 if form.is_bound else 200
    return render(request, "notifications/chat_form.html", context, status=status)


@login_required
@admin_required
@require_POST
def chat_delete(request: HttpRequest, org_slug: str, chat_id) -> HttpResponse:
    connection = selectors.chat_connection_or_404(chat_id)
    services.chat_delete(connection=connection, actor=request.user)
    messages.success(request, f"Chat connection {connection} deleted.")
    return redirect("notifications:webhooks", org_slug=org_slug)
