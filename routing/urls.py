from django.urls import path

from routing import qualification_views, views

app_name = "routing"

urlpatterns = [
    path("mine/", views.my_leads, name="mine"),
    path("queue/", views.fallback_queue, name="queue"),
    path("<uuid:lead_id>/", views.lead_detail, name="lead"),
    path(
        "<uuid:lead_id>/requalify/",
        qualification_views.lead_requalify,
        name="requalify",
    ),
    path("scoring/", qualification_views.scoring_rules, name="scoring"),
    path("scoring/sample/", qualification_views.scoring_sample, name="scoring-sample"),
    path(
        "scoring/<uuid:scoring_rule_id>/",
        qualification_views.scoring_rule_edit,
        name="scoring-edit",
    ),
    path(
        "scoring/<uuid:scoring_rule_id>/delete/",
        qualification_views.scoring_rule_delete,
        name="scoring-delete",
    ),
]
