from django.urls import path

from measurement import api

urlpatterns = [
    path("metrics/reps/", api.RepMetricsApi.as_view(), name="api-rep-metrics"),
    path("deals/", api.DealListApi.as_view(), name="api-deals"),
]
