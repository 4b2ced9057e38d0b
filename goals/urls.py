from django.urls import path

from goals.views import benchmarks, quotas, time_off

app_name = "goals"

urlpatterns = [
    path("quotas/", quotas.quota_grid, name="quotas"),
    path("quotas/copy/", quotas.quota_copy, name="quotas-copy"),
    path("quotas/export.csv", quotas.quota_export, name="quotas-export"),
    path("quotas/import/", quotas.quota_import, name="quotas-import"),
    path(
        "quotas/import/errors.csv",
        quotas.quota_import_errors,
        name="quotas-import-errors",
    ),
    path("benchmarks/", benchmarks.benchmark_list, name="benchmarks"),
    path(
        "benchmarks/<uuid:benchmark_id>/",
        benchmarks.benchmark_edit,
        name="benchmark-edit",
    ),
    path(
        "benchmarks/<uuid:benchmark_id>/delete/",
        benchmarks.benchmark_delete,
        name="benchmark-delete",
    ),
    path("time-off/", time_off.time_off_list, name="time-off"),
    path(
        "time-off/<uuid:time_off_id>/delete/",
        time_off.time_off_delete,
        name="time-off-delete",
    ),
]
