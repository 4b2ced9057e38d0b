"""Activity benchmarks: list, add, edit and delete. Only admins, others get 404."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from goals import services
from goals.forms import BenchmarkForm
from goals.models import ActivityBenchmark
from spm.access import admin_required


def _benchmark_or_404(benchmark_id) -> ActivityBenchmark:
    benchmark = (
        ActivityBenchmark.objects.select_related("team")
        .filter(public_id=benchmark_id)
        .first()
    )
    if benchmark is None:
        raise Http404("No such benchmark.")
    return benchmark


def _fields(form: BenchmarkForm) -> dict:
    role, team = form.cleaned_data["applies_to"]
    return {
        "activity_type": form.cleaned_data["activity_type"],
        "unit": form.cleaned_data["unit"],
        "target": form.cleaned_data["target"],
        "role": role,
        "team": team,
        "ramp": form.cleaned_data["ramp"],
    }


def _describe(benchmark: ActivityBenchmark) -> str:
    scope = services.benchmark_scope_label(benchmark.role, benchmark.team)
    return f"{benchmark} for {scope}"


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def benchmark_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    form = BenchmarkForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            benchmark = services.benchmark_create(
                organization=request.organization,
                actor=request.user,
                **_fields(form),
            )
        except services.BenchmarkError as error:
            form.add_error(error.field, str(error))
        else:
            messages.success(request, f"Benchmark added: {_describe(benchmark)}.")
            return redirect("goals:benchmarks", org_slug=org_slug)
    benchmarks = ActivityBenchmark.objects.select_related("team").order_by(
        "activity_type", "team__name", "role", "pk"
    )
    rows = [
        (benchmark, services.benchmark_scope_label(benchmark.role, benchmark.team))
        for benchmark in benchmarks
    ]
    status = 400 if form.is_bound else 200
    context = {"form": form, "rows": rows}
    return render(request, "goals/benchmarks.html", context, status=status)


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def benchmark_edit(request: HttpRequest, org_slug: str, benchmark_id) -> HttpResponse:
    benchmark = _benchmark_or_404(benchmark_id)
    form = BenchmarkForm(request.POST or None, instance=benchmark)
    if request.method == "POST" and form.is_valid():
        try:
            services.benchmark_update(
                benchmark=benchmark, actor=request.user, **_fields(form)
            )
        except services.BenchmarkError as error:
            form.add_error(error.field, str(error))
        else:
            messages.success(request, f"Benchmark saved: {_describe(benchmark)}.")
            return redirect("goals:benchmarks", org_slug=org_slug)
    status = 400 if form.is_bound else 200
    context = {"form": form, "benchmark": benchmark}
    return render(request, "goals/benchmark_edit.html", context, status=status)


@login_required
@admin_required
@require_POST
def benchmark_delete(request: HttpRequest, org_slug: str, benchmark_id) -> HttpResponse:
    benchmark = _benchmark_or_404(benchmark_id)
    description = _describe(benchmark)
    services.benchmark_delete(benchmark=benchmark, actor=request.user)
    messages.success(request, f"Benchmark deleted: {description}.")
    return redirect("goals:benchmarks", org_slug=org_slug)
