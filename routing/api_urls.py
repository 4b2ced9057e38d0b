from django.urls import path, register_converter

from routing import api


class AnyTextConverter:
    """Any non-empty text, slashes and line breaks included."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value) -> str:
        return str(value)


register_converter(AnyTextConverter, "anytext")

urlpatterns = [
    path("leads/", api.LeadListApi.as_view(), name="api-leads"),
    # Any text reaches the view, which returns a JSON 404 for an id that is
    # not a UUID, as for any unknown lead, instead of the resolver's HTML page.
    path("leads/<anytext:lead_id>/", api.LeadDetailApi.as_view(), name="api-lead"),
]
