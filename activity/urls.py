from django.urls import path

from activity import views

app_name = "activity"

urlpatterns = [
    path("imports/", views.import_list, name="import-list"),
]
