"""The API responds to every request as its OpenAPI schema describes.

schemathesis generates valid and invalid requests for each operation of
``/api/v1/schema/`` and sends them to the Django app in-process with an API
key. No response may be a server error, and every status code, content type
and body must be one that the schema documents. The regular tests
below pin the error responses that the fuzzing found undocumented.
"""

from __future__ import annotations

import datetime as dt

import hypothesis
import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from spm.services import api_key_create
from tests.conftest import login
from tests.measurement.builders import make_activity, make_deal

D = dt.date
METRICS_URL = "/api/v1/metrics/reps/"
DEALS_URL = "/api/v1/deals/"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# The schema is read from the app in-process when the module is collected; the
# schema view reads no table. NOTE: schemathesis.pytest.from_fixture, which
# would load it inside a test, fails under pytest 9.2: schemathesis 4.32.5
# reads Node._nodeid, which pytest 9.2 nodes no longer have.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())


@pytest.fixture(autouse=True)
def empty_cache():
    """Start with no API rate-limit counts left in the cache by earlier tests."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def open_connection():
    """Keep the test's database connection open across the app's requests.

    Django's WSGI handler closes the connection when a request starts and
    finishes, which on PostgreSQL would end the test's transaction. Django's
    test client disconnects the same handler for the same reason.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def acme_key(personas) -> str:
    """Return an API key of ``acme``, with deals of every shape in the organisation."""
    stages = personas.stages
    make_deal(personas.rep1, stages["Won"], "1000.00", D(2024, 1, 5), D(2023, 12, 1))
    make_deal(personas.rep2, stages["Lost"], "0", D(2024, 2, 5), D(2024, 1, 1))
    make_deal(personas.rep3, stages["Engaging"], None)
    make_deal(personas.rep4, stages["Won"], "99999999.99", D(2024, 3, 1), archived=True)
    make_activity(personas.rep1, dt.datetime(2024, 1, 9, 12, tzinfo=dt.UTC))
    _api_key, key = api_key_create(organization=personas.org, name="schema fuzzing")
    return key


# The examples of one operation share its fixtures: every operation is a read.
@schema.parametrize()
@hypothesis.settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
def test_api_conforms_to_schema(case, acme_key, open_connection):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {acme_key}"}, checks=CHECKS
    )


def _get(client, url: str, key: str | None = None, **params):
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return client.get(url, params, headers=headers)


def _documented_codes(client, url: str) -> set[str]:
    document = client.get("/api/v1/schema/", {"format": "json"}).json()
    return set(document["paths"][url]["get"]["responses"])


@pytest.mark.parametrize("url", [METRICS_URL, DEALS_URL])
def test_error_codes_are_documented(client, personas, url):
    assert _documented_codes(client, url) == {"200", "400", "401", "404", "429"}


def test_empty_period_is_documented_400(client, acme_key):
    response = _get(client, METRICS_URL, acme_key, start="2024-01-01", end="2024-01-01")

    assert response.status_code == 400
    assert response.json() == {"end": ["The end date must be after the start date."]}


def test_missing_organization_is_string_400(client, personas):
    login(client, personas.rep1)

    response = _get(client, METRICS_URL, start="2024-01-01", end="2024-02-01")

    assert response.status_code == 400
    assert response.json() == {"organization": "Name the organisation by its slug."}


def test_missing_credentials_is_documented_401(client, personas):
    response = _get(client, DEALS_URL)

    assert response.status_code == 401
    assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize("page", ["0", "2", "last-but-one"])
def test_page_out_of_range_is_documented_404(client, acme_key, page):
    response = _get(client, DEALS_URL, acme_key, page=page)

    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page."}


def test_pagination_parameters_start_at_one(client, personas):
    document = client.get("/api/v1/schema/", {"format": "json"}).json()
    parameters = document["paths"][DEALS_URL]["get"]["parameters"]
    by_name = {parameter["name"]: parameter["schema"] for parameter in parameters}

    assert by_name["page"] == {"type": "integer", "minimum": 1}
    assert by_name["page_size"] == {"type": "integer", "minimum": 1}


def test_page_size_below_one_uses_default(client, acme_key):
    response = _get(client, DEALS_URL, acme_key, page_size="0")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 4


def test_throttled_request_is_documented_429(client, acme_key, settings):
    rest_framework = dict(settings.REST_FRAMEWORK)
    rest_framework["DEFAULT_THROTTLE_RATES"] = {
        **rest_framework["DEFAULT_THROTTLE_RATES"],
        "api_key": "1/min",
    }
    settings.REST_FRAMEWORK = rest_framework

    assert _get(client, DEALS_URL, acme_key).status_code == 200
    response = _get(client, DEALS_URL, acme_key)

    assert response.status_code == 429
    assert isinstance(response.json()["detail"], str)
    assert int(response["Retry-After"]) > 0
