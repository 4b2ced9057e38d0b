from django.urls import path

from coaching import views

app_name = "coaching"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("alerts/<uuid:alert_id>/", views.alert_detail, name="alert"),
    path(
        "alerts/<uuid:alert_id>/acknowledge/",
        views.alert_acknowledge,
        name="alert-acknowledge",
    ),
    path("alerts/<uuid:alert_id>/resolve/", views.alert_resolve, name="alert-resolve"),
    path("alerts/<uuid:alert_id>/notes/", views.alert_note, name="alert-note"),
    path("rules/", views.rule_list, name="rules"),
    path("rules/new/", views.rule_create, name="rule-create"),
    path("rules/<uuid:rule_id>/", views.rule_edit, name="rule-edit"),
    path("rules/<uuid:rule_id>/toggle/", views.rule_toggle, name="rule-toggle"),
]
