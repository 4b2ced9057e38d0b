from django.urls import path

from measurement import views

app_name = "measurement"

urlpatterns = [
    path("", views.home, name="home"),
    path("team/", views.team_dashboard, name="team"),
    path("me/", views.my_performance, name="my-performance"),
    path("reps/<uuid:member_id>/", views.rep_performance, name="rep"),
]
