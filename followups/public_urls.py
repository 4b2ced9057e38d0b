"""URLs that need no sign-in: the unsubscribe link of follow-up emails."""

from django.urls import path

from followups import views

app_name = "followups-public"

urlpatterns = [
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
