from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect


@login_required
def home(request, org_slug):
    if request.membership.role == "rep":
        return redirect("measurement:my-performance", org_slug=org_slug)
    return redirect("measurement:team", org_slug=org_slug)


@login_required
def team_dashboard(request, org_slug):
    return HttpResponse("team dashboard")


@login_required
def my_performance(request, org_slug):
    return HttpResponse("my performance")


@login_required
def rep_performance(request, org_slug, member_id):
    return HttpResponse("rep")
