from django.urls import path

from routing import views

app_name = "routing"

urlpatterns = [
    path("mine/", views.my_leads, name="mine"),
    path("queue/", views.fallback_queue, name="queue"),
    path("<uuid:lead_id>/", views.lead_detail, name="lead"),
]
