from django.urls import path

from followups import views

app_name = "followups"

urlpatterns = [
    path("", views.sequence_list, name="list"),
    path("mine/", views.my_followups, name="mine"),
    path("new/", views.sequence_create, name="create"),
    path("<uuid:sequence_id>/", views.sequence_detail, name="detail"),
    path("<uuid:sequence_id>/edit/", views.sequence_edit, name="edit"),
    path("<uuid:sequence_id>/enroll/", views.sequence_enroll, name="enroll"),
    path(
        "<uuid:sequence_id>/enrollments/<uuid:enrollment_id>/unenroll/",
        views.enrollment_unenroll,
        name="unenroll",
    ),
]
