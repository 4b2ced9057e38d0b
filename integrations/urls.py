from django.urls import path

from integrations import views, views_oauth, views_webhooks

app_name = "integrations"

urlpatterns = [
    path("", views.connection_list, name="connections"),
    path("hubspot/connect/", views.hubspot_connect, name="connect-hubspot"),
    path("salesforce/connect/", views.salesforce_connect, name="connect-salesforce"),
    path("pipedrive/connect/", views.pipedrive_connect, name="connect-pipedrive"),
    path(
        "<uuid:connection_id>/oauth/",
        views_oauth.oauth_reconnect_start,
        name="oauth-reconnect",
    ),
    path(
        "<slug:provider>/oauth/",
        views_oauth.oauth_install_start,
        name="oauth-install",
    ),
    path("<uuid:connection_id>/", views.connection_detail, name="connection"),
    path(
        "<uuid:connection_id>/settings/",
        views.connection_edit,
        name="connection-edit",
    ),
    path("<uuid:connection_id>/sync/", views.sync_now, name="sync-now"),
    path(
        "<uuid:connection_id>/webhooks/",
        views.webhook_settings,
        name="webhook-settings",
    ),
    path("<uuid:connection_id>/owners/", views.owner_mappings, name="owners"),
    path("<uuid:connection_id>/stages/", views.stage_mappings, name="stages"),
    path("<uuid:connection_id>/fields/", views.field_mappings, name="fields"),
    path(
        "<uuid:connection_id>/fields/<uuid:field_mapping_id>/delete/",
        views.field_mapping_delete,
        name="field-delete",
    ),
    path(
        "writebacks/<uuid:writeback_id>/retry/",
        views.writeback_retry,
        name="writeback-retry",
    ),
    path("runs/<uuid:sync_run_id>/progress/", views.run_progress, name="run-progress"),
    path(
        "runs/<uuid:sync_run_id>/progress.json",
        views.run_progress_json,
        name="run-progress-json",
    ),
]

# The OAuth 2 callback, mounted outside the organisation's URLs (spm/urls.py)
# because the CRM app registers one redirect URL for every organisation.
oauth_urlpatterns = [
    path("<slug:provider>/callback/", views_oauth.oauth_callback, name="callback"),
]

# Public webhook receivers, mounted outside the organisation's URLs (spm/urls.py).
webhook_urlpatterns = [
    path(
        "<uuid:organization_id>/hubspot/<uuid:connection_id>/",
        views_webhooks.hubspot,
        name="hubspot",
    ),
    path(
        "<uuid:organization_id>/pipedrive/<uuid:connection_id>/",
        views_webhooks.pipedrive,
        name="pipedrive",
    ),
    path(
        "<uuid:organization_id>/salesforce/<uuid:connection_id>/<str:token>/",
        views_webhooks.salesforce,
        name="salesforce",
    ),
]
