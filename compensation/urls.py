from django.urls import path

from compensation import views, views_disputes, views_plans, views_trust

app_name = "compensation"

urlpatterns = [
    path("", views.my_commission, name="mine"),
    path("statements/", views.statement_list, name="statements"),
    path("statements/approve/", views.statements_approve, name="statements-approve"),
    path(
        "statements/approve-all/",
        views.statements_approve_all,
        name="statements-approve-all",
    ),
    path("statements/paid/", views.statements_mark_paid, name="statements-paid"),
    path(
        "statements/calculate/",
        views.statements_calculate,
        name="statements-calculate",
    ),
    path("statements/payroll.csv", views.payroll_export, name="payroll-export"),
    path(
        "runs/<uuid:run_id>/progress/",
        views.run_progress,
        name="run-progress",
    ),
    path(
        "approval-runs/<uuid:run_id>/progress/",
        views.approval_progress,
        name="approval-progress",
    ),
    path(
        "statements/<uuid:statement_id>/",
        views.statement_detail,
        name="statement",
    ),
    path(
        "statements/<uuid:statement_id>/adjust/",
        views.statement_adjust,
        name="statement-adjust",
    ),
    # Plan builder, assignments and exchange rates (compensation.views_plans).
    path("my-plan/", views_plans.my_plan, name="my-plan"),
    path("plans/", views_plans.plan_list, name="plans"),
    path("plans/<uuid:plan_id>/", views_plans.plan_detail, name="plan"),
    path(
        "plans/<uuid:plan_id>/draft/",
        views_plans.plan_draft_create,
        name="plan-draft",
    ),
    path("plans/<uuid:plan_id>/assign/", views_plans.plan_assign, name="plan-assign"),
    path(
        "assignments/<uuid:assignment_id>/end/",
        views_plans.assignment_end,
        name="assignment-end",
    ),
    path(
        "assignments/<uuid:assignment_id>/delete/",
        views_plans.assignment_delete,
        name="assignment-delete",
    ),
    path("versions/<uuid:version_id>/", views_plans.version_detail, name="version"),
    path(
        "versions/<uuid:version_id>/components/new/",
        views_plans.component_create,
        name="component-new",
    ),
    path(
        "versions/<uuid:version_id>/publish/",
        views_plans.version_publish,
        name="version-publish",
    ),
    path(
        "versions/<uuid:version_id>/preview/",
        views_plans.version_preview,
        name="version-preview",
    ),
    path(
        "versions/<uuid:version_id>/diff/",
        views_plans.version_diff,
        name="version-diff",
    ),
    path(
        "components/<uuid:component_id>/",
        views_plans.component_edit,
        name="component",
    ),
    path(
        "components/<uuid:component_id>/delete/",
        views_plans.component_delete,
        name="component-delete",
    ),
    path("fx-rates/", views_plans.fx_rates, name="fx-rates"),
    path("fx-rates/delete/", views_plans.fx_rate_delete, name="fx-rate-delete"),
    path("fx-rates/import/", views_plans.fx_import, name="fx-import"),
    # Disputes and the pages that explain pay.
    path("disputes/", views_disputes.dispute_list, name="disputes"),
    path(
        "disputes/<uuid:dispute_id>/",
        views_disputes.dispute_detail,
        name="dispute",
    ),
    path(
        "disputes/<uuid:dispute_id>/resolve/",
        views_disputes.dispute_resolve,
        name="dispute-resolve",
    ),
    path(
        "statements/<uuid:statement_id>/dispute/",
        views_disputes.dispute_raise,
        name="dispute-raise",
    ),
    path(
        "statements/<uuid:statement_id>/changes/",
        views_trust.payout_changes,
        name="payout-changes",
    ),
    path(
        "statements/<uuid:statement_id>/credits.csv",
        views_trust.credits_csv,
        name="credits-csv",
    ),
    path("what-if/", views_trust.whatif_estimate, name="whatif"),
    path("cost/", views_trust.cost_of_commission, name="cost"),
    path(
        "crediting-rule/",
        views_trust.crediting_policy,
        name="crediting-policy",
    ),
]
