from rest_framework.response import Response

from spm.api import OrganizationAPIView


class RepMetricsApi(OrganizationAPIView):
    def get(self, request):
        return Response([])
