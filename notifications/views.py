"""Pages: the member's notifications, their preferences, and the organisation defaults.

Every member has a list and preferences of their own. Another member's
notification id is a 404, for admins too. The defaults page is for admins
only.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from notifications import selectors, services
from notifications.forms import ChannelsForm, PreferencesForm
from spm.access import admin_required

PAGE_SIZE = 50


def _list_url(org_slug: str, data) -> str:
    """Return the list's URL with the page and filter the form came from."""
    url = reverse("notifications:list", kwargs={"org_slug": org_slug})
    query = {name: data[name] for name in ("unread", "page") if data.get(name)}
    return f"{url}?{urlencode(query)}" if query else url


@login_required
@require_GET
def notification_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    """List the member's notifications, newest first, unread ones marked."""
    unread_only = request.GET.get("unread") == "1"
    notifications = selectors.member_notifications(
        request.membership, unread_only=unread_only
    )
    page = Paginator(notifications, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "unread_only": unread_only}
    return render(request, "notifications/list.html", context)


@login_required
@require_POST
def notification_read(
    request: HttpRequest, org_slug: str, notification_id
) -> HttpResponse:
    """Mark one notification read, then open its page or go back to the list."""
    notification = selectors.notification_for_member_or_404(
        request.membership, notification_id
    )
    services.notification_mark_read(notification=notification)
    target = notification.event.url
    if "open" in request.POST and target:
        safe = url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=False
        )
        if safe:
            return redirect(target)
    return redirect(_list_url(org_slug, request.POST))


@login_required
@require_POST
def notifications_read_all(request: HttpRequest, org_slug: str) -> HttpResponse:
    count = services.notifications_mark_all_read(member=request.membership)
    messages.success(
        request, f"Marked {count} notification{'s' if count != 1 else ''} read."
    )
    return redirect("notifications:list", org_slug=org_slug)


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Edit the member's channels per event type, time zone and quiet hours."""
    member = request.membership
    member_settings = selectors.member_settings(member)
    initial = {}
    if member_settings is not None:
        initial = {
            "time_zone": member_settings.time_zone,
            "quiet_start": member_settings.quiet_start,
            "quiet_end": member_settings.quiet_end,
        }
    form = PreferencesForm(
        request.POST or None,
        initial=initial,
        settings=selectors.member_channel_settings(member),
        organization_time_zone=request.organization.time_zone,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.preferences_save(
                member=member,
                actor=request.user,
                channels_by_type=form.channels_by_type(),
                time_zone=data["time_zone"],
                quiet_start=data["quiet_start"],
                quiet_end=data["quiet_end"],
            )
        except services.SettingsError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Notification preferences saved.")
            return redirect("notifications:preferences", org_slug=org_slug)
    status = 400 if form.is_bound else 200
    return render(
        request, "notifications/preferences.html", {"form": form}, status=status
    )


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def organization_defaults(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Edit the channels of members who set no preference for an event type."""
    form = ChannelsForm(
        request.POST or None, settings=selectors.organization_settings()
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.organization_defaults_save(
                organization=request.organization,
                actor=request.user,
                channels_by_type=form.channels_by_type(),
            )
        except services.SettingsError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Notification defaults saved.")
            return redirect("notifications:defaults", org_slug=org_slug)
    status = 400 if form.is_bound else 200
    return render(request, "notifications/defaults.html", {"form": form}, status=status)
