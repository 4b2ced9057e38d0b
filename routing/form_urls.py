from django.urls import path

from routing import webform

app_name = "routing-forms"

urlpatterns = [
    path("<uuid:organization_id>/lead/", webform.lead_form, name="lead"),
    path(
        "<uuid:organization_id>/lead/thanks/", webform.lead_thanks, name="lead-thanks"
    ),
]
