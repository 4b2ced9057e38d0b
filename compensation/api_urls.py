from django.urls import path

from compensation import api

urlpatterns = [
    path("payroll/", api.PayrollApi.as_view(), name="api-payroll"),
]
