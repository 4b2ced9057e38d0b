from django.urls import path

from notifications import outbound_views, views

app_name = "notifications"

urlpatterns = [
    path("", views.notification_list, name="list"),
    path("read/", views.notifications_read_all, name="read-all"),
    path("<uuid:notification_id>/read/", views.notification_read, name="read"),
    path("preferences/", views.preferences, name="preferences"),
    path("defaults/", views.organization_defaults, name="defaults"),
    path("webhooks/", outbound_views.webhooks, name="webhooks"),
    path(
        "webhooks/settings/",
        outbound_views.outbound_settings,
        name="outbound-settings",
    ),
    path("webhooks/new/", outbound_views.webhook_new, name="webhook-new"),
    path(
        "webhooks/<uuid:endpoint_id>/",
        outbound_views.webhook_detail,
        name="webhook",
    ),
    path(
        "webhooks/<uuid:endpoint_id>/edit/",
        outbound_views.webhook_edit,
        name="webhook-edit",
    ),
    path(
        "webhooks/<uuid:endpoint_id>/rotate/",
        outbound_views.webhook_rotate,
        name="webhook-rotate",
    ),
    path(
        "webhooks/<uuid:endpoint_id>/delete/",
        outbound_views.webhook_delete,
        name="webhook-delete",
    ),
    path(
        "deliveries/<uuid:delivery_id>/resend/",
        outbound_views.delivery_resend,
        name="delivery-resend",
    ),
    path("chat/new/", outbound_views.chat_new, name="chat-new"),
    path("chat/<uuid:chat_id>/", outbound_views.chat_edit, name="chat"),
    path("chat/<uuid:chat_id>/delete/", outbound_views.chat_delete, name="chat-delete"),
]
