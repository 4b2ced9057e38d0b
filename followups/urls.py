from django.urls import path

from followups import views

app_name = "followups"

urlpatterns = [
    path("", views.sequence_list, name="list"),
]
