from django.urls import path

from activity import views

app_name = "activity"

urlpatterns = [
    path("imports/", views.import_list, name="import-list"),
    path("imports/<uuid:job_id>/", views.import_detail, name="import-detail"),
    path("imports/<uuid:job_id>/mapping/", views.import_mapping, name="import-mapping"),
    path(
        "imports/<uuid:job_id>/progress/", views.import_progress, name="import-progress"
    ),
    path(
        "imports/<uuid:job_id>/errors.csv",
        views.import_errors_csv,
        name="import-errors",
    ),
    path("imports/<uuid:job_id>/import/", views.import_start, name="import-start"),
    path("imports/<uuid:job_id>/cancel/", views.import_cancel, name="import-cancel"),
]
