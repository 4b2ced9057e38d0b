from django.urls import path

from . import views

urlpatterns = [path("api/v1/leads/", views.lead_create)]
