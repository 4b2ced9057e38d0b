from django.urls import path

from measurement import views

app_name = "measurement"

urlpatterns = [
    path("", views.home, name="home"),
    path("team/", views.team_dashboard, name="team"),
    path("team/funnel/", views.team_funnel, name="team-funnel"),
    path("me/", views.my_performance, name="my-performance"),
    path("reps/<uuid:member_id>/", views.rep_performance, name="rep"),
]
