from django.contrib.auth.decorators import login_required
from django.http import HttpResponse


@login_required
def import_list(request, org_slug):
    return HttpResponse("imports")
