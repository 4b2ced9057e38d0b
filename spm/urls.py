from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from integrations.urls import oauth_urlpatterns, webhook_urlpatterns
from spm import views

organization_patterns = [
    path("", include("measurement.urls")),
    path("data/", include("activity.urls")),
    path("settings/", include("spm.org_urls")),
    path("goals/", include("goals.urls")),
    path("coaching/", include("coaching.urls")),
    path("leads/", include("routing.urls")),
    path("commission/", include("compensation.urls")),
    path("notifications/", include("notifications.urls")),
    path("followups/", include("followups.urls")),
    path("integrations/", include("integrations.urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("allauth.urls")),
    path("o/<slug:org_slug>/", include(organization_patterns)),
    path("api/v1/", include("measurement.api_urls")),
    path("api/v1/", include("routing.api_urls")),
    path("api/v1/", include("compensation.api_urls")),
    path("forms/", include("routing.form_urls")),
    path("followups/", include("followups.public_urls")),
    path(
        "integrations/oauth/",
        include((oauth_urlpatterns, "integrations-oauth")),
    ),
    path(
        "webhooks/crm/",
        include((webhook_urlpatterns, "integrations-webhooks")),
    ),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", views.api_docs, name="api-docs"),
    path("admin/", admin.site.urls),
]
