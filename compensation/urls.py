from django.urls import path

from compensation import views

app_name = "compensation"

urlpatterns = [
    path("", views.my_commission, name="mine"),
    path("statements/", views.statement_list, name="statements"),
    path("statements/approve/", views.statements_approve, name="statements-approve"),
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
        "statements/<uuid:statement_id>/",
        views.statement_detail,
        name="statement",
    ),
    path(
        "statements/<uuid:statement_id>/adjust/",
        views.statement_adjust,
        name="statement-adjust",
    ),
]
