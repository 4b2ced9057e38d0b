from django.urls import path  # noqa: F401

from routing import views  # noqa: F401

app_name = "routing"

urlpatterns: list = []
