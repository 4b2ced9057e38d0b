"""The lead form that organisations embed in their website.

A visitor's browser posts the form to ``/forms/<organisation id>/lead/``
with no Attain session, so the view is CSRF-exempt and names the
organisation by its public id. Three defences stand in for a session:

- a honeypot field (HONEYPOT_FIELD) that the site hides with its own CSS.
  People leave it empty. A bot that fills every field gets the normal
  success response and nothing is stored, so the bot learns nothing and
  the database gets no spam;
- a rate limit per client address and organisation (FORM_RATE_LIMIT posts
  per FORM_RATE_WINDOW seconds, counted in the cache);
- the same validation and normalisation as the API.

A browser form gets a 303 redirect to a thank-you page; a request that
accepts JSON (``Accept: application/json``) gets JSON instead.
"""

from __future__ import annotations

import json
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from routing import services
from routing.config_cache import config_scope
from routing.normalization import LeadInputError
from routing.serializers import LeadInputSerializer
from spm.models import Organization
from spm.tenancy import tenant_context

logger = logging.getLogger(__name__)

HONEYPOT_FIELD = "fax_number"
FORM_RATE_LIMIT = 10
FORM_RATE_WINDOW = 60  # seconds
WEB_FORM_SOURCE = "web form"


def _organization_or_404(organization_id) -> Organization:
    organization = Organization.objects.filter(public_id=organization_id).first()
    if organization is None:
        raise Http404("No such form.")
    return organization


def client_address(request: HttpRequest) -> str:
    """Return the client's IP address, trusting as many proxies as sign-in does."""
    proxies = settings.ALLAUTH_TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
    if proxies and len(addresses) >= proxies:
        return addresses[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def _rate_limited(organization: Organization, address: str) -> int:
    """Count this post; return the seconds to wait when over the limit, else 0.

    Fixed windows of FORM_RATE_WINDOW seconds, so a client may send up to
    twice the limit across a window boundary.
    """
    now = time.time()
    window = int(now // FORM_RATE_WINDOW)
    key = f"routing:form:{organization.pk}:{address}:{window}"
    cache.add(key, 0, timeout=FORM_RATE_WINDOW * 2)
    try:
        count = cache.incr(key)
    except ValueError:  # the entry expired between add and incr
        cache.set(key, 1, timeout=FORM_RATE_WINDOW * 2)
        count = 1
    if count <= FORM_RATE_LIMIT:
        return 0
    return max(int((window + 1) * FORM_RATE_WINDOW - now) + 1, 1)


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def _form_data(request: HttpRequest):
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None
    return request.POST


def _accepted(request: HttpRequest, organization: Organization) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"status": "received"}, status=201)
    # 303 See Other: the browser follows it with a GET, so a reload of the
    # thank-you page does not post the form again.
    response = redirect(
        "routing-forms:lead-thanks", organization_id=organization.public_id
    )
    response.status_code = 303
    return response


def _as_list(messages) -> list:
    return messages if isinstance(messages, list) else [messages]


def _error_lines(errors: dict) -> list[str]:
    """Return the errors as "Company size: ..." lines, with the fields' labels."""
    fields = LeadInputSerializer().fields
    lines = []
    for name, messages in errors.items():
        if isinstance(messages, dict):
            # The custom fields' errors, keyed by the custom field's name.
            for key, nested in messages.items():
                lines += [f"Custom field {key}: {text}" for text in _as_list(nested)]
            continue
        if name in ("detail", "non_field_errors"):
            prefix = ""
        elif name in fields:
            prefix = f"{fields[name].label}: "
        else:
            prefix = f"{name.replace('_', ' ').capitalize()}: "
        lines += [f"{prefix}{text}" for text in _as_list(messages)]
    return lines


def _rejected(request: HttpRequest, errors: dict) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(errors, status=400)
    context = {"error_lines": _error_lines(errors)}
    return render(request, "routing/form_errors.html", context, status=400)


@csrf_exempt
@require_POST
def lead_form(request: HttpRequest, organization_id) -> HttpResponse:
    organization = _organization_or_404(organization_id)
    retry_after = _rate_limited(organization, client_address(request))
    if retry_after:
        response = (
            JsonResponse({"detail": "Too many submissions."}, status=429)
            if _wants_json(request)
            else render(request, "429.html", status=429)
        )
        response["Retry-After"] = str(retry_after)
        return response

    data = _form_data(request)
    if data is None:
        return _rejected(request, {"detail": ["Send a JSON object or form fields."]})
    if str(data.get(HONEYPOT_FIELD) or "").strip():
        logger.info(
            "Lead form: honeypot filled, submission dropped",
            extra={"organization_id": organization.pk},
        )
        return _accepted(request, organization)

    payload = LeadInputSerializer(data=data)
    if not payload.is_valid():
        return _rejected(request, payload.errors)
    fields = {"source": WEB_FORM_SOURCE, **payload.validated_data}
    if not fields["source"]:
        fields["source"] = WEB_FORM_SOURCE
    with tenant_context(organization), config_scope(organization.pk):
        try:
            services.lead_intake(
                organization=organization, fields=fields, render=lambda lead: {}
            )
        except LeadInputError as error:
            return _rejected(request, error.errors)
    return _accepted(request, organization)


@require_GET
def lead_thanks(request: HttpRequest, organization_id) -> HttpResponse:
    organization = _organization_or_404(organization_id)
    return render(request, "routing/form_thanks.html", {"form_owner": organization})
