from django.urls import path

from spm import views

app_name = "spm"

urlpatterns = [
    path("", views.organization_settings, name="settings"),
    path("members/", views.member_list, name="members"),
    path("members/<uuid:member_id>/", views.member_edit, name="member-edit"),
    path("members/<uuid:member_id>/invite/", views.member_invite, name="member-invite"),
    path("members/<uuid:member_id>/remove/", views.member_remove, name="member-remove"),
    path("audit/", views.audit_log, name="audit-log"),
    path("api-keys/", views.api_key_list, name="api-keys"),
    path("api-keys/new/", views.api_key_create, name="api-key-create"),
    path("api-keys/<uuid:key_id>/revoke/", views.api_key_revoke, name="api-key-revoke"),
]
