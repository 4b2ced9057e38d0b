from __future__ import annotations

from django.http import Http404, HttpRequest
from django.utils import timezone

from spm import tenancy
from spm.models import Membership


class OrganizationMiddleware:
    """Resolve ``/o/<org_slug>/`` to the organisation and the user's membership.

    A visitor who is not a member gets 404 whether or not the organisation
    exists. The organisation becomes the current tenant, and its time zone the
    current one, for the view; both are cleared when the response is done.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        request.organization = None
        request.membership = None
        request._tenant_token = None
        try:
            return self.get_response(request)
        finally:
            if request._tenant_token is not None:
                tenancy.deactivate(request._tenant_token)
                timezone.deactivate()

    def process_view(self, request, view_func, view_args, view_kwargs):
        slug = view_kwargs.get("org_slug")
        if slug is None:
            return None
        if not request.user.is_authenticated:
            from django.contrib.auth.views import redirect_to_login

            return redirect_to_login(request.get_full_path())

        membership = (
            Membership.unscoped.select_related("organization", "team")
            .filter(organization__slug=slug, user=request.user, is_active=True)
            .first()
        )
        if membership is None:
            raise Http404("No such organisation.")
        request.organization = membership.organization
        request.membership = membership
        request._tenant_token = tenancy.activate(membership.organization)
        # Pages show times in the organisation's time zone.
        timezone.activate(membership.organization.zoneinfo)
        return None
