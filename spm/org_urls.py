from django.urls import path

from spm import views

app_name = "spm"

urlpatterns = [
    path("", views.organization_settings, name="settings"),
    path("members/", views.member_list, name="members"),
    path("members/<uuid:member_id>/", views.member_edit, name="member-edit"),
    path("members/<uuid:member_id>/invite/", views.member_invite, name="member-invite"),
    path("audit/", views.audit_log, name="audit-log"),
]
