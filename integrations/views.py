"""CRM integration pages, for admins only: connections, their syncs and mappings.

Another organisation's connection or run id is a 404, as is every page for
members who are not admins. Pages that take credentials or a webhook secret
mark those POST fields sensitive, so Django's error reports hide them.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRefresh

from integrations import (
    credentials_check,
    oauth_install,
    selectors,
    services,
    sync,
    webhooks,
    writeback,
)
from integrations.forms import (
    AUTH_TOKEN,
    ConnectionSettingsForm,
    FieldMappingForm,
    HubSpotConnectForm,
    OwnerMappingForm,
    PipedriveConnectForm,
    SalesforceConnectForm,
    WebhookSettingsForm,
    auth_method_of,
)
from integrations.models import CrmConnection, SyncRun, WebhookEvent
from spm.access import admin_required

# Webhook events listed on the webhook settings page, newest first.
WEBHOOK_EVENTS_SHOWN = 20


def _connection_or_404(connection_id) -> CrmConnection:
    connection = selectors.connection_get(connection_id)
    if connection is None:
        raise Http404("No such CRM connection.")
    return connection


def _run_or_404(sync_run_id) -> SyncRun:
    run = selectors.run_get(sync_run_id)
    if run is None:
        raise Http404("No such sync run.")
    return run


@login_required
@admin_required
@require_GET
def connection_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    context = {
        "connections": selectors.connections_list(),
        "sync_notice": services.sync_notice(),
    }
    return render(request, "integrations/connection_list.html", context)


@sensitive_post_parameters("access_token", "client_secret", "refresh_token")
@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def hubspot_connect(request: HttpRequest, org_slug: str) -> HttpResponse:
    auth_method = _auth_method(request)
    form = HubSpotConnectForm(request.POST or None, auth_method=auth_method)
    if request.method == "POST" and form.is_valid():
        try:
            credentials = _hubspot_credentials_checked(form)
        except credentials_check.CredentialsRejected as error:
            form.add_error(None, str(error))
        else:
            connection = services.hubspot_connect(
                organization=request.organization,
                actor=request.user,
                name=form.cleaned_data["name"],
                base_url=form.cleaned_data["base_url"],
                credentials=credentials,
                api_tier=form.cleaned_data["api_tier"],
            )
            messages.success(
                request,
                f"Connected {connection.name}. Run a first sync to load its data.",
            )
            return redirect(
                "integrations:connection",
                org_slug=org_slug,
                connection_id=connection.public_id,
            )
    return _connect_page(request, form, CrmConnection.Provider.HUBSPOT)


def _auth_method(request: HttpRequest) -> str:
    """Return the auth method a connect page shows: POSTed, else ``?auth=``."""
    return auth_method_of(request.POST.get("auth_method") or request.GET.get("auth"))


def _connect_page(request: HttpRequest, form, provider: str) -> HttpResponse:
    context = {
        "form": form,
        "provider": provider,
        "auth_method": getattr(form, "auth_method", ""),
        "oauth_app": oauth_install.oauth_app(provider),
    }
    return render(request, "integrations/connect.html", context)


def _hubspot_credentials_checked(form: HubSpotConnectForm) -> dict:
    """Check the entered HubSpot credentials and return those to store."""
    base_url = form.cleaned_data["base_url"]
    if form.auth_method == AUTH_TOKEN:
        access_token = form.cleaned_data["access_token"]
        credentials_check.hubspot_credentials_check(
            base_url=base_url, access_token=access_token
        )
        return {"access_token": access_token}
    credentials = form.oauth_credentials()
    tokens = credentials_check.hubspot_oauth_credentials_check(
        base_url=base_url, **credentials
    )
    return {**credentials, **tokens.credentials()}


@sensitive_post_parameters("client_secret", "refresh_token")
@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def salesforce_connect(request: HttpRequest, org_slug: str) -> HttpResponse:
    form = SalesforceConnectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        credentials = {
            "client_id": form.cleaned_data["client_id"],
            "client_secret": form.cleaned_data["client_secret"],
            "refresh_token": form.cleaned_data["refresh_token"],
        }
        try:
            credentials_check.salesforce_credentials_check(
                base_url=form.cleaned_data["base_url"], **credentials
            )
        except credentials_check.CredentialsRejected as error:
            form.add_error(None, str(error))
        else:
            provider = CrmConnection.Provider.SALESFORCE
            return _connected(request, form, provider, credentials)
    context = {"form": form, "provider": CrmConnection.Provider.SALESFORCE}
    return render(request, "integrations/connect.html", context)


@sensitive_post_parameters("api_token", "client_secret", "refresh_token")
@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def pipedrive_connect(request: HttpRequest, org_slug: str) -> HttpResponse:
    auth_method = _auth_method(request)
    form = PipedriveConnectForm(request.POST or None, auth_method=auth_method)
    if request.method == "POST" and form.is_valid():
        try:
            credentials = _pipedrive_credentials_checked(form)
        except credentials_check.CredentialsRejected as error:
            form.add_error(None, str(error))
        else:
            provider = CrmConnection.Provider.PIPEDRIVE
            return _connected(request, form, provider, credentials)
    return _connect_page(request, form, CrmConnection.Provider.PIPEDRIVE)


def _pipedrive_credentials_checked(form: PipedriveConnectForm) -> dict:
    """Check the entered Pipedrive credentials and return those to store."""
    base_url = form.cleaned_data["base_url"]
    if form.auth_method == AUTH_TOKEN:
        credentials = {"api_token": form.cleaned_data["api_token"]}
        credentials_check.pipedrive_credentials_check(base_url=base_url, **credentials)
        return credentials
    credentials = {
        **form.oauth_credentials(),
        "token_url": form.cleaned_data["token_url"],
    }
    tokens = credentials_check.pipedrive_oauth_credentials_check(
        base_url=base_url, **credentials
    )
    return {**credentials, **tokens.credentials()}


def _connected(
    request: HttpRequest, form, provider: str, credentials: dict
) -> HttpResponse:
    """Create the checked connection and redirect to its page."""
    with transaction.atomic():
        connection = sync.connection_create(
            organization=request.organization,
            actor=request.user,
            provider=provider,
            name=form.cleaned_data["name"],
            base_url=form.cleaned_data["base_url"],
            credentials=credentials,
        )
    messages.success(
        request, f"Connected {connection.name}. Run a first sync to load its data."
    )
    return redirect(
        "integrations:connection",
        org_slug=request.organization.slug,
        connection_id=connection.public_id,
    )


@login_required
@admin_required
@require_GET
def connection_detail(
    request: HttpRequest, org_slug: str, connection_id
) -> HttpResponse:
    connection = _connection_or_404(connection_id)
    runs = selectors.last_runs(connection)
    active = selectors.active_run(runs)
    context = {
        "connection": connection,
        "runs": [
            {
                "run": run,
                "totals": selectors.run_totals(run),
                "duration": selectors.run_duration(run),
            }
            for run in runs
        ],
        "run": active or (runs[0] if runs else None),
        "progress": selectors.run_progress(active or runs[0]) if runs else 0,
        "budget": selectors.api_budget(connection, request.organization),
        "unmapped_owners": [
            error for error in (runs[0].errors if runs else []) if _owner_error(error)
        ],
        "sync_unsupported": (
            None if services.sync_supported() else services.sync_unsupported_message()
        ),
        "sync_inline": (
            services.sync_inline_message() if services.sync_runs_inline() else None
        ),
        "oauth_app": oauth_install.oauth_app(connection.provider),
    }
    return render(request, "integrations/connection_detail.html", context)


def _owner_error(error: dict) -> bool:
    return error.get("object_type") == "owners"


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def connection_edit(request: HttpRequest, org_slug: str, connection_id) -> HttpResponse:
    connection = _connection_or_404(connection_id)
    initial = {
        "name": connection.name,
        "base_url": connection.base_url,
        "api_tier": connection.api_tier,
        "status": (
            CrmConnection.Status.PAUSED
            if connection.status == CrmConnection.Status.PAUSED
            else CrmConnection.Status.ACTIVE
        ),
    }
    form = ConnectionSettingsForm(request.POST or None, initial=initial)
    hubspot = connection.provider == CrmConnection.Provider.HUBSPOT
    if not hubspot:
        # The subscription tier sets HubSpot's API limits only.
        del form.fields["api_tier"]
    if not hubspot or "refresh_token" in connection.credentials:
        # The token field replaces the credentials with a private app token.
        # OAuth 2, Salesforce and Pipedrive credentials change by connecting
        # again.
        del form.fields["access_token"]
    if request.method == "POST" and form.is_valid():
        services.connection_update(
            connection=connection, actor=request.user, **form.cleaned_data
        )
        messages.success(request, f"Saved the settings of {connection.name}.")
        return redirect(
            "integrations:connection",
            org_slug=org_slug,
            connection_id=connection.public_id,
        )
    context = {"connection": connection, "form": form}
    return render(request, "integrations/connection_edit.html", context)


@login_required
@admin_required
@require_POST
def sync_now(request: HttpRequest, org_slug: str, connection_id) -> HttpResponse:
    connection = _connection_or_404(connection_id)
    try:
        run = services.sync_now(connection=connection, actor=request.user)
    except services.SyncRejectedError as error:
        messages.error(request, str(error))
    else:
        done = "ran" if services.sync_runs_inline() else "queued"
        messages.success(request, f"{run.get_kind_display()} sync {done}.")
    return redirect(
        "integrations:connection", org_slug=org_slug, connection_id=connection_id
    )


@login_required
@admin_required
@require_GET
def run_progress(request: HttpRequest, org_slug: str, sync_run_id) -> HttpResponse:
    """Return the progress bar, or make htmx reload the page once the run stops."""
    run = _run_or_404(sync_run_id)
    finished = run.status in SyncRun.FINISHED
    if request.htmx and finished:
        return HttpResponseClientRefresh()
    context = {"run": run, "progress": selectors.run_progress(run)}
    return render(request, "integrations/_run_progress.html", context)


@login_required
@admin_required
@require_GET
def run_progress_json(request: HttpRequest, org_slug: str, sync_run_id) -> JsonResponse:
    run = _run_or_404(sync_run_id)
    return JsonResponse(selectors.run_progress_data(run))


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def owner_mappings(request: HttpRequest, org_slug: str, connection_id) -> HttpResponse:
    connection = _connection_or_404(connection_id)
    form = OwnerMappingForm(
        request.POST or None,
        mappings=selectors.owner_mappings(connection),
        members=selectors.assignable_members(),
    )
    if request.method == "POST" and form.is_valid():
        changed = services.owner_mappings_save(
            connection=connection, actor=request.user, chosen=form.chosen()
        )
        messages.success(
            request,
            f"Saved {changed} owner mapping{'s' if changed != 1 else ''}. Records "
            "synced earlier get their owner when the CRM lists them again; run a "
            "full sync to update all of them.",
        )
        return redirect(
            "integrations:owners", org_slug=org_slug, connection_id=connection_id
        )
    context = {"connection": connection, "form": form}
    return render(request, "integrations/owner_mappings.html", context)


@login_required
@admin_required
@require_GET
def stage_mappings(request: HttpRequest, org_slug: str, connection_id) -> HttpResponse:
    connection = _connection_or_404(connection_id)
    context = {
        "connection": connection,
        "pipelines": selectors.stage_mappings_by_pipeline(connection),
    }
    return render(request, "integrations/stage_mappings.html", context)


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def field_mappings(request: HttpRequest, org_slug: str, connection_id) -> HttpResponse:
    connection = _connection_or_404(connection_id)
    form = FieldMappingForm(request.POST or None, provider=connection.provider)
    if request.method == "POST" and form.is_valid():
        try:
            services.field_mapping_add(
                connection=connection, actor=request.user, **form.cleaned_data
            )
        except services.FieldMappingError as error:
            form.add_error("target", str(error))
        else:
            messages.success(request, "Field mapping added.")
            return redirect(
                "integrations:fields", org_slug=org_slug, connection_id=connection_id
            )
    context = {
        "connection": connection,
        "form": form,
        "mappings": selectors.field_mappings(connection),
    }
    return render(request, "integrations/field_mappings.html", context)


@login_required
@admin_required
@require_POST
def field_mapping_delete(
    request: HttpRequest, org_slug: str, connection_id, field_mapping_id
) -> HttpResponse:
    connection = _connection_or_404(connection_id)
    mapping = selectors.field_mapping_get(connection, field_mapping_id)
    if mapping is None:
        raise Http404("No such field mapping.")
    services.field_mapping_delete(mapping=mapping, actor=request.user)
    messages.success(request, "Field mapping deleted.")
    return redirect(
        "integrations:fields", org_slug=org_slug, connection_id=connection_id
    )


@login_required
@admin_required
@require_POST
def writeback_retry(request: HttpRequest, org_slug: str, writeback_id) -> HttpResponse:
    """Queue a failed CRM write-back again, then return to the audit log."""
    record = writeback.writeback_get(writeback_id)
    if record is None:
        raise Http404("No such CRM write-back.")
    try:
        writeback.writeback_retry(
            organization=request.organization, actor=request.user, writeback=record
        )
    except writeback.WritebackNotRetryable as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            f"Write-back of lead {record.assignment.lead.public_id} to "
            f"{record.connection.name} queued again.",
        )
    return redirect("spm:audit-log", org_slug=org_slug)


def _webhook_secret_key(connection: CrmConnection) -> str:
    return f"integrations.webhook_secret.{connection.public_id}"


@sensitive_post_parameters("secret")
@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def webhook_settings(
    request: HttpRequest, org_slug: str, connection_id
) -> HttpResponse:
    """Show the receiving URL, set or rotate the secret and list recent events.

    A generated secret is kept in the session and shown once, on the next
    view of this page. HubSpot's secret is the app's client secret, which
    the admin typed, so it is never shown.
    """
    connection = _connection_or_404(connection_id)
    form = WebhookSettingsForm(request.POST or None, connection=connection)
    if request.method == "POST" and form.is_valid():
        secret = webhooks.webhook_settings_set(
            connection=connection, actor=request.user, **form.cleaned_data
        )
        if connection.provider != CrmConnection.Provider.HUBSPOT:
            request.session[_webhook_secret_key(connection)] = secret
        messages.success(
            request,
            "Webhook settings saved. Enter them in the CRM now: deliveries with "
            "the old secret are rejected.",
        )
        return redirect(
            "integrations:webhook-settings",
            org_slug=org_slug,
            connection_id=connection.public_id,
        )
    secret = request.session.pop(_webhook_secret_key(connection), None)
    context = {
        "connection": connection,
        "form": form,
        "secret": secret,
        "has_secret": bool(connection.credentials.get("webhook_secret")),
        "webhook_url": _webhook_url(request, connection, secret),
        "events": WebhookEvent.objects.filter(connection=connection).order_by(
            "-received_at", "-id"
        )[:WEBHOOK_EVENTS_SHOWN],
    }
    return render(request, "integrations/webhook_settings.html", context)


def _webhook_url(
    request: HttpRequest, connection: CrmConnection, secret: str | None
) -> str:
    """Return the URL the CRM posts to.

    The Salesforce URL ends with the secret, so outside the one view that
    shows the new secret it ends with a placeholder instead.
    """
    kwargs = {
        "organization_id": request.organization.public_id,
        "connection_id": connection.public_id,
    }
    if connection.provider == CrmConnection.Provider.SALESFORCE:
        kwargs["token"] = secret or "SECRET"
    path = reverse(f"integrations-webhooks:{connection.provider}", kwargs=kwargs)
    return request.build_absolute_uri(path)
