"""Every page and API endpoint keeps organisations apart.

The URL patterns are read from the resolver, so a new page is covered as
soon as it is routed. A pattern with an object id in its path is tried with
an object of the other organisation. OTHER_ORG_OBJECTS below maps each kind
of id to a function that creates such an object.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from activity.models import Deal, ImportJob, Lead
from coaching.models import Alert, Rule
from compensation.models import (
    CalculationRun,
    CompPlan,
    Dispute,
    PlanAssignment,
    PlanComponent,
    PlanVersion,
    Statement,
)
from followups.models import Enrollment, Sequence
from goals.models import ActivityBenchmark, TimeOff
from integrations.models import CrmConnection, CrmWriteback, FieldMapping, SyncRun
from notifications.models import (
    ChatConnection,
    Event,
    Notification,
    OutboundDelivery,
    WebhookEndpoint,
)
from routing.models import Assignment, LeadModel, Pool, ScoringRule, Territory
from spm.models import Membership
from spm.services import api_key_create
from spm.tenancy import tenant_context
from tests.conftest import Personas, login

MARKER = "GLOBEX-PRIVATE-ROW"


def _other_member(personas: Personas):
    return personas.other_rep.public_id


def _other_import_job(personas: Personas):
    return ImportJob.unscoped.create(organization=personas.other_org).public_id


def _other_api_key(personas: Personas):
    api_key, _ = api_key_create(organization=personas.other_org, name="other")
    return api_key.public_id


def _other_benchmark(personas: Personas):
    return ActivityBenchmark.unscoped.create(
        organization=personas.other_org, activity_type="call", target=Decimal("5")
    ).public_id


def _other_time_off(personas: Personas):
    return TimeOff.unscoped.create(
        organization=personas.other_org,
        member=personas.other_rep,
        start_date=dt.date(2024, 3, 4),
        end_date=dt.date(2024, 3, 8),
    ).public_id


def _other_coaching_rule(personas: Personas):
    with tenant_context(personas.other_org):
        return Rule.objects.get(builtin_key="win_rate_below_team").public_id


def _other_coaching_alert(personas: Personas):
    with tenant_context(personas.other_org):
        rule = Rule.objects.get(builtin_key="win_rate_below_team")
    alert = Alert.unscoped.create(
        organization=personas.other_org,
        rule=rule,
        member=personas.other_rep,
        period_key="rolling",
    )
    return alert.public_id


def _other_lead(personas: Personas):
    return Lead.unscoped.create(
        organization=personas.other_org, first_name=MARKER, routing_status="queued"
    ).public_id


def _other_scoring_rule(personas: Personas):
    return ScoringRule.unscoped.create(
        organization=personas.other_org,
        name=MARKER,
        field="industry",
        operator="equals",
        value="Software",
    ).public_id


def _other_lead_model(personas: Personas):
    return LeadModel.unscoped.create(
        organization=personas.other_org,
        version=1,
        status="active",
        reason=MARKER,
        training_rows=8,
        test_rows=2,
        converted_rows=5,
        auc=0.5,
        artifact=b"",
    ).public_id


def _other_pool(personas: Personas):
    return Pool.unscoped.create(
        organization=personas.other_org, name=MARKER, method="round_robin"
    ).public_id


def _other_territory(personas: Personas):
    return Territory.unscoped.create(
        organization=personas.other_org, name=MARKER
    ).public_id


def _other_notification(personas: Personas):
    event = Event.unscoped.create(
        organization=personas.other_org, type="lead.assigned", title=MARKER
    )
    return Notification.unscoped.create(
        organization=personas.other_org, event=event, member=personas.other_rep
    ).public_id


def _other_webhook_endpoint(personas: Personas):
    return WebhookEndpoint.unscoped.create(
        organization=personas.other_org,
        url="https://127.0.0.1:9/globex",
        description=MARKER,
        event_types=["lead.assigned"],
        secret_encrypted="not-read-by-a-404",
    ).public_id


def _other_chat_connection(personas: Personas):
    return ChatConnection.unscoped.create(
        organization=personas.other_org,
        kind=ChatConnection.Kind.SLACK,
        url_encrypted="not-read-by-a-404",
        url_display=MARKER,
    ).public_id


def _other_outbound_delivery(personas: Personas):
    event = Event.unscoped.create(
        organization=personas.other_org, type="lead.assigned", title=MARKER
    )
    endpoint = WebhookEndpoint.unscoped.create(
        organization=personas.other_org,
        url="https://127.0.0.1:9/globex",
        event_types=["lead.assigned"],
        secret_encrypted="not-read-by-a-404",
    )
    return OutboundDelivery.unscoped.create(
        organization=personas.other_org,
        event=event,
        kind=OutboundDelivery.Kind.WEBHOOK,
        endpoint=endpoint,
        request_body=MARKER,
    ).public_id


def _other_statement(personas: Personas):
    return Statement.unscoped.create(
        organization=personas.other_org,
        member=personas.other_rep,
        period_start=dt.date(2024, 3, 1),
        period_end=dt.date(2024, 4, 1),
        currency="USD",
    ).public_id


def _other_plan_version(personas: Personas) -> PlanVersion:
    plan = CompPlan.unscoped.create(
        organization=personas.other_org, name=MARKER, currency="USD"
    )
    return PlanVersion.unscoped.create(
        organization=personas.other_org,
        plan=plan,
        number=1,
        effective_from=dt.date(2024, 1, 1),
    )


def _other_plan_component(personas: Personas):
    return PlanComponent.unscoped.create(
        organization=personas.other_org,
        version=_other_plan_version(personas),
        name=MARKER,
        kind="flat",
        params={"rate": "0.1"},
    ).public_id


def _other_plan_assignment(personas: Personas):
    return PlanAssignment.unscoped.create(
        organization=personas.other_org,
        member=personas.other_rep,
        plan=_other_plan_version(personas).plan,
        start_date=dt.date(2024, 1, 1),
    ).public_id


def _other_calculation_run(personas: Personas):
    return CalculationRun.unscoped.create(
        organization=personas.other_org,
        period_start=dt.date(2024, 3, 1),
        period_end=dt.date(2024, 4, 1),
        failure=MARKER,
    ).public_id


def _other_sequence(personas: Personas):
    return Sequence.unscoped.create(
        organization=personas.other_org, name=MARKER
    ).public_id


def _other_enrollment(personas: Personas):
    sequence = Sequence.unscoped.create(
        organization=personas.other_org, name=f"{MARKER} enrolled"
    )
    deal = Deal.unscoped.create(
        organization=personas.other_org,
        name=MARKER,
        owner=personas.other_rep,
        pipeline=personas.other_stages["Won"].pipeline,
        stage=personas.other_stages["Won"],
    )
    return Enrollment.unscoped.create(
        organization=personas.other_org,
        sequence=sequence,
        deal=deal,
        member=personas.other_rep,
    ).public_id


def _other_crm_connection(personas: Personas):
    connection, _ = CrmConnection.unscoped.get_or_create(
        organization=personas.other_org,
        provider="hubspot",
        defaults={"name": MARKER, "base_url": "http://127.0.0.1:9/"},
    )
    return connection


def _other_sync_run(personas: Personas):
    connection = _other_crm_connection(personas)
    return SyncRun.unscoped.create(
        organization=personas.other_org,
        connection=connection,
        kind="full",
        failure=MARKER,
    ).public_id


def _other_field_mapping(personas: Personas):
    connection = _other_crm_connection(personas)
    return FieldMapping.unscoped.create(
        organization=personas.other_org,
        connection=connection,
        crm_property=MARKER.lower().replace("-", "_"),
        target="segment",
    ).public_id


def _other_writeback(personas: Personas):
    """Return a failed CRM write-back of the other organisation."""
    at = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    lead = Lead.unscoped.create(
        organization=personas.other_org, first_name=MARKER, received_at=at
    )
    assignment = Assignment.unscoped.create(
        organization=personas.other_org,
        lead=lead,
        outcome="assigned",
        member=personas.other_rep,
        received_at=at,
        routed_at=at,
    )
    return CrmWriteback.unscoped.create(
        organization=personas.other_org,
        assignment=assignment,
        connection=_other_crm_connection(personas),
        status="failed",
        error=MARKER,
    ).public_id


def _other_dispute(personas: Personas):
    statement = Statement.unscoped.create(
        organization=personas.other_org,
        member=personas.other_rep,
        period_start=dt.date(2024, 5, 1),
        period_end=dt.date(2024, 6, 1),
        currency="USD",
    )
    return Dispute.unscoped.create(
        organization=personas.other_org,
        statement=statement,
        line_explanation=MARKER,
        line_amount=Decimal("1.00"),
        raised_by=personas.other_rep,
    ).public_id


# URL parameter name -> the public id of an object of the other organisation.
OTHER_ORG_OBJECTS: dict[str, Callable[[Personas], object]] = {
    "member_id": _other_member,
    "job_id": _other_import_job,
    "key_id": _other_api_key,
    "alert_id": _other_coaching_alert,
    "rule_id": _other_coaching_rule,
    "benchmark_id": _other_benchmark,
    "time_off_id": _other_time_off,
    "lead_id": _other_lead,
    "scoring_rule_id": _other_scoring_rule,
    "pool_id": _other_pool,
    "territory_id": _other_territory,
    "lead_model_id": _other_lead_model,
    "statement_id": _other_statement,
    "run_id": _other_calculation_run,
    "dispute_id": _other_dispute,
    "plan_id": lambda personas: _other_plan_version(personas).plan.public_id,
    "version_id": lambda personas: _other_plan_version(personas).public_id,
    "component_id": _other_plan_component,
    "assignment_id": _other_plan_assignment,
    "notification_id": _other_notification,
    "endpoint_id": _other_webhook_endpoint,
    "chat_id": _other_chat_connection,
    "delivery_id": _other_outbound_delivery,
    "sequence_id": _other_sequence,
    "enrollment_id": _other_enrollment,
    "connection_id": lambda personas: _other_crm_connection(personas).public_id,
    "sync_run_id": _other_sync_run,
    "field_mapping_id": _other_field_mapping,
    "writeback_id": _other_writeback,
}


# URL parameters that name no object, with a value that the route accepts.
# No OAuth 2 app is set up in the tests, so the install page is 404 anyway.
PLAIN_PARAMETERS = {"provider": "hubspot"}


def _walk(patterns, prefix="") -> Iterator[tuple[str, str]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.name or ""


def _routes(startswith: str) -> list[str]:
    routes = [
        route
        for route, _ in _walk(get_resolver().url_patterns)
        if route.startswith(startswith)
    ]
    assert routes, f"no routes under {startswith}"
    return sorted(set(routes))


PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


def _fill(route: str, personas: Personas, org_slug: str = "acme") -> str:
    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name == "org_slug":
            return org_slug
        if name in PLAIN_PARAMETERS:
            return PLAIN_PARAMETERS[name]
        if name not in OTHER_ORG_OBJECTS:
            pytest.fail(
                f"URL parameter <{name}> in {route!r} has no entry in "
                "OTHER_ORG_OBJECTS; add one that returns another organisation's id."
            )
        return str(OTHER_ORG_OBJECTS[name](personas))

    return "/" + PARAMETER.sub(replace, route)


@pytest.fixture
def globex_private_rows(personas):
    with tenant_context(personas.other_org):
        Membership.objects.filter(pk=personas.other_rep.pk).update(
            display_name=f"{MARKER} rep"
        )
        Deal.objects.create(
            organization=personas.other_org,
            name=f"{MARKER} deal",
            owner=personas.other_rep,
            pipeline=personas.other_stages["Won"].pipeline,
            stage=personas.other_stages["Won"],
            amount="999.00",
        )
        Sequence.objects.create(
            organization=personas.other_org, name=f"{MARKER} sequence"
        )


ORG_ROUTES = _routes("o/<slug:org_slug>/")
API_ROUTES = [r for r in _routes("api/v1/") if "<" in r]
# The schema and its documentation page describe the API, they list no rows.
API_DESCRIPTION_ROUTES = {"api/v1/schema/", "api/v1/docs/"}
API_LIST_ROUTES = [
    r for r in _routes("api/v1/") if "<" not in r and r not in API_DESCRIPTION_ROUTES
]


@pytest.mark.parametrize("route", ORG_ROUTES)
def test_non_member_gets_404_on_every_page(client, personas, route):
    login(client, personas.outsider)
    url = _fill(route, personas)
    assert client.get(url).status_code == 404
    assert client.post(url, {}).status_code == 404


@pytest.mark.parametrize("route", [r for r in ORG_ROUTES if r.count("<") > 1])
def test_other_organisations_object_is_404(client, personas, route):
    login(client, personas.admin)
    url = _fill(route, personas)
    statuses = {client.get(url).status_code, client.post(url, {}).status_code}
    # A view that accepts only POST (or only GET) returns 405 for the other method.
    assert statuses <= {404, 405}
    assert 404 in statuses


@pytest.mark.parametrize("route", [r for r in ORG_ROUTES if r.count("<") == 1])
def test_pages_never_show_other_organisations_rows(
    client, personas, globex_private_rows, route
):
    login(client, personas.admin)
    response = client.get(_fill(route, personas))
    if response.status_code == 200:
        assert MARKER not in response.content.decode(errors="replace")


@pytest.mark.parametrize("route", API_ROUTES)
def test_api_object_of_other_organisation_is_404(client, personas, route):
    _, key = api_key_create(organization=personas.org, name="isolation")
    url = _fill(route, personas)
    response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 404


# Query parameters that make each list endpoint return rows over all time.
WIDE_QUERY = "start=2000-01-01&end=2100-01-01&page_size=500"


@pytest.mark.parametrize("route", API_LIST_ROUTES)
def test_api_lists_never_show_other_organisations_rows(
    client, personas, globex_private_rows, route
):
    _, key = api_key_create(organization=personas.org, name="isolation")
    url = f"/{route}?{WIDE_QUERY}"
    response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200, response.content
    assert MARKER not in response.content.decode()
