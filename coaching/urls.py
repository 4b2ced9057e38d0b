from django.urls import path  # noqa: F401

from coaching import views  # noqa: F401

app_name = "coaching"

urlpatterns: list = []
