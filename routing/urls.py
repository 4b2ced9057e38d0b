from django.urls import path

from routing import model_views, qualification_views, views, views_config

app_name = "routing"

urlpatterns = [
    path("mine/", views.my_leads, name="mine"),
    path("queue/", views.fallback_queue, name="queue"),
    path("<uuid:lead_id>/", views.lead_detail, name="lead"),
    path("<uuid:lead_id>/assign/", views.lead_assign, name="assign"),
    path(
        "<uuid:lead_id>/requalify/",
        qualification_views.lead_requalify,
        name="requalify",
    ),
    path("scoring/", qualification_views.scoring_rules, name="scoring"),
    path("scoring/sample/", qualification_views.scoring_sample, name="scoring-sample"),
    path(
        "scoring/settings/",
        qualification_views.qualification_settings,
        name="scoring-settings",
    ),
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
    path("model/", model_views.lead_model, name="model"),
    path("model/train/", model_views.lead_model_train, name="model-train"),
    path(
        "model/<uuid:lead_model_id>/",
        model_views.lead_model_version,
        name="model-version",
    ),
    path("routing/rules/", views_config.rule_set, name="rules"),
    path("routing/rules/edit/", views_config.rule_set_edit, name="rules-edit"),
    path("routing/pools/", views_config.pool_list, name="pools"),
    path("routing/pools/<uuid:pool_id>/", views_config.pool_detail, name="pool"),
    path(
        "routing/pools/<uuid:pool_id>/members/",
        views_config.pool_member_add,
        name="pool-member-add",
    ),
    path(
        "routing/pools/<uuid:pool_id>/members/<uuid:member_id>/",
        views_config.pool_member_edit,
        name="pool-member",
    ),
    path(
        "routing/pools/<uuid:pool_id>/members/<uuid:member_id>/pause/",
        views_config.pool_member_pause,
        name="pool-member-pause",
    ),
    path("routing/territories/", views_config.territory_list, name="territories"),
    path(
        "routing/territories/new/",
        views_config.territory_create,
        name="territory-new",
    ),
    path(
        "routing/territories/<uuid:territory_id>/",
        views_config.territory_edit,
        name="territory",
    ),
    path("routing/test/", views_config.lead_test, name="test-lead"),
    path(
        "routing/hours/<uuid:member_id>/",
        views_config.working_hours_edit,
        name="working-hours",
    ),
]
