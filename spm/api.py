"""Base class and error handler shared by every API endpoint."""

from __future__ import annotations

import logging

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from spm import tenancy
from spm.models import ApiKey, Membership, Organization

logger = logging.getLogger(__name__)


class OrganizationAPIView(APIView):
    """Resolve the caller's organisation once, and make it current for the handler.

    An API key belongs to one organisation. A signed-in browser session names
    the organisation with ``?organization=<slug>`` and must be a member of it.
    """

    organization: Organization
    membership: Membership | None = None
    _tenant_token = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.organization, self.membership = self._resolve_organization(request)
        self._tenant_token = tenancy.activate(self.organization)

    def finalize_response(self, request, response, *args, **kwargs):
        if self._tenant_token is not None:
            tenancy.deactivate(self._tenant_token)
            self._tenant_token = None
        return super().finalize_response(request, response, *args, **kwargs)

    def _resolve_organization(self, request):
        if isinstance(request.auth, ApiKey):
            return request.auth.organization, None
        slug = request.query_params.get("organization", "")
        if not slug:
            raise exceptions.ValidationError(
                {"organization": "Name the organisation by its slug."}
            )
        membership = (
            Membership.unscoped.select_related("organization")
            .filter(organization__slug=slug, user=request.user, is_active=True)
            .first()
        )
        if membership is None:
            raise Http404("No such organisation.")
        return membership.organization, membership


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.error("Unhandled API error: %s", exc, exc_info=exc)
        return Response(
            {"detail": "Internal server error."},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return response
