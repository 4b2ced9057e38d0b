"""Rate limits of sign-in, password reset, sign-up and the API."""

import json
import os
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.urls import reverse

from spm.services import api_key_create
from tests.conftest import PASSWORD, login

TOO_MANY = "Too many failed login attempts. Try again later."
WRONG = "The email address and/or password you specified are not correct."


def _sign_in(client, email, password):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def test_sixth_failed_login_is_refused(client, personas):
    email = personas.rep1.user.email
    for attempt in range(1, 6):
        response = _sign_in(client, email, "wrong-password")
        assert response.status_code == 200, attempt
        assert WRONG in response.content.decode(), attempt

    response = _sign_in(client, email, "wrong-password")
    assert TOO_MANY in response.content.decode()
    # The right password is refused too until the window has passed.
    response = _sign_in(client, email, PASSWORD)
    assert response.status_code == 200
    assert TOO_MANY in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failed_logins_count_per_account(client, personas):
    for _ in range(5):
        _sign_in(client, personas.rep1.user.email, "wrong-password")
    response = _sign_in(client, personas.rep2.user.email, PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(personas.rep2.user.pk)


def test_account_is_released_after_five_minutes(client, personas, monkeypatch):
    email = personas.rep1.user.email
    for _ in range(6):
        _sign_in(client, email, "wrong-password")
    assert TOO_MANY in _sign_in(client, email, PASSWORD).content.decode()

    later = time.time() + 5 * 60 + 1
    monkeypatch.setattr(time, "time", lambda: later)
    response = _sign_in(client, email, PASSWORD)
    assert response.status_code == 302


def test_successful_login_does_not_count(client, personas):
    email = personas.rep1.user.email
    for _ in range(8):
        assert _sign_in(client, email, PASSWORD).status_code == 302
        client.logout()
    for attempt in range(1, 6):
        response = _sign_in(client, email, "wrong-password")
        assert WRONG in response.content.decode(), attempt


def test_sixth_password_reset_is_429(client, personas):
    email = personas.rep1.user.email
    url = reverse("account_reset_password")
    for attempt in range(1, 6):
        response = client.post(url, {"email": email})
        assert response.status_code == 302, attempt
    response = client.post(url, {"email": email})
    assert response.status_code == 429
    # Another address from the same client is still served.
    response = client.post(url, {"email": personas.rep2.user.email})
    assert response.status_code == 302


def test_signups_per_address_are_limited(client, db):
    url = reverse("account_signup")
    for number in range(20):
        response = client.post(url, {"email": f"new{number}@example.test"})
        assert response.status_code == 200, number
    response = client.post(url, {"email": "one-more@example.test"})
    assert response.status_code == 429


THROTTLE_RATES = {"api_key": "3/min", "user": "2/min", "anon": "1/min"}
METRICS = reverse("api-rep-metrics")
PERIOD = {"start": "2024-01-01", "end": "2024-02-01"}


def _with_key(client, key):
    return client.get(METRICS, PERIOD, HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.fixture
def low_throttle_rates(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": THROTTLE_RATES,
    }


def test_api_key_over_its_rate_gets_429(client, personas, low_throttle_rates):
    _, key = api_key_create(organization=personas.org, name="busy")
    for attempt in range(1, 4):
        assert _with_key(client, key).status_code == 200, attempt

    response = _with_key(client, key)
    assert response.status_code == 429
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= 60
    assert "throttled" in response.json()["detail"]


def test_api_keys_have_separate_budgets(client, personas, low_throttle_rates):
    _, busy = api_key_create(organization=personas.org, name="busy")
    _, quiet = api_key_create(organization=personas.org, name="quiet")
    _, other = api_key_create(organization=personas.other_org, name="globex")
    for _ in range(4):
        _with_key(client, busy)
    assert _with_key(client, busy).status_code == 429
    assert _with_key(client, quiet).status_code == 200
    assert _with_key(client, other).status_code == 200


def test_session_user_over_its_rate_gets_429(client, personas, low_throttle_rates):
    login(client, personas.manager)
    query = {**PERIOD, "organization": "acme"}
    assert client.get(METRICS, query).status_code == 200
    assert client.get(METRICS, query).status_code == 200
    response = client.get(METRICS, query)
    assert response.status_code == 429
    assert "Retry-After" in response

    login(client, personas.vp)
    assert client.get(METRICS, query).status_code == 200


def test_anonymous_schema_requests_are_throttled(client, db, low_throttle_rates):
    schema = reverse("api-schema")
    assert client.get(schema).status_code == 200
    response = client.get(schema)
    assert response.status_code == 429
    assert "Retry-After" in response


def test_empty_rate_turns_the_limit_off(client, personas, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**THROTTLE_RATES, "api_key": None},
    }
    _, key = api_key_create(organization=personas.org, name="unlimited")
    statuses = {_with_key(client, key).status_code for _ in range(6)}
    assert statuses == {200}


def test_rates_come_from_environment():
    code = (
        "import json, spm.settings as s;"
        "print(json.dumps(s.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']))"
    )
    env = {
        **os.environ,
        "API_THROTTLE_RATE_KEY": "1000/hour",
        "API_THROTTLE_RATE_USER": "",
    }
    env.pop("API_THROTTLE_RATE_ANON", None)
    output = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rates = json.loads(output)
    assert rates == {"api_key": "1000/hour", "user": None, "anon": "60/min"}
