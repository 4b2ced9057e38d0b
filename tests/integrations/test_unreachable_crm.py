"""A CRM address that refuses connections fails the sync at once while eager."""

from __future__ import annotations

import socket
import time

import pytest
import requests
from django.test import Client
from django.urls import reverse

from integrations import sync
from integrations.connectors.base import ConnectorError, CrmUnavailable
from integrations.connectors.hubspot import HubSpotConnector
from integrations.connectors.ratelimit import RollingWindowLimiter
from integrations.models import SyncRun
from spm.celery import app as celery_app
from tests.conftest import login
from tests.integrations.conftest import TOKEN
from tests.integrations.fake_hubspot import SimulatedClock

# Well under the 1 + 2 + 4 + 8 + 16 s that five backoff retries sleep.
FAST_SECONDS = 5


@pytest.fixture
def closed_port() -> int:
    """Return a loopback port that nothing listens on, so connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _message(provider: str, port: int, error: str = "ConnectionError") -> str:
    return (
        f"Could not connect to {provider} at http://127.0.0.1:{port} ({error}). "
        "Check the connection's API address and that the server accepts "
        "connections. The next sync tries again."
    )


def _connection(personas, provider: str, port: int, credentials: dict):
    return sync.connection_create(
        organization=personas.org,
        actor=None,
        provider=provider,
        name=f"{provider} down",
        base_url=f"http://127.0.0.1:{port}",
        credentials=credentials,
    )


def test_sync_now_unreachable_fails_fast(
    personas, in_org, loopback_allowed, closed_port, django_capture_on_commit_callbacks
):
    connection = _connection(personas, "hubspot", closed_port, {"access_token": TOKEN})
    client = login(Client(), personas.admin)
    url = reverse(
        "integrations:sync-now",
        kwargs={"org_slug": "acme", "connection_id": connection.public_id},
    )

    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    elapsed = time.monotonic() - started

    assert response.status_code == 302
    assert elapsed < FAST_SECONDS
    run = SyncRun.objects.get(connection=connection)
    assert run.status == SyncRun.Status.FAILED
    assert run.failure == "CrmUnavailable: " + _message("HubSpot", closed_port)


def test_pipedrive_unreachable_fails_fast(
    personas, in_org, loopback_allowed, closed_port
):
    connection = _connection(
        personas, "pipedrive", closed_port, {"api_token": "pd-test-token"}
    )
    run = sync.sync_run_create(connection=connection, kind=SyncRun.Kind.FULL)

    started = time.monotonic()
    with pytest.raises(CrmUnavailable):
        sync.sync_run_execute(run=run)
    elapsed = time.monotonic() - started

    assert elapsed < FAST_SECONDS
    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED
    assert run.failure == "CrmUnavailable: " + _message("Pipedrive", closed_port)


def _connector(port: int, clock: SimulatedClock, **extra) -> HubSpotConnector:
    return HubSpotConnector(
        base_url=f"http://127.0.0.1:{port}",
        token=TOKEN,
        clock=clock,
        limiter=RollingWindowLimiter(100, 10.0, clock),
        search_limiter=RollingWindowLimiter(5, 1.0, clock),
        **extra,
    )


@pytest.fixture
def worker_mode():
    """Run as a Celery worker does, with tasks not eager."""
    celery_app.conf.task_always_eager = False
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = True


def test_worker_retries_refused_connection(closed_port, worker_mode):
    clock = SimulatedClock()
    connector = _connector(closed_port, clock)

    with pytest.raises(ConnectorError) as caught:
        connector.owners()

    assert str(caught.value) == (
        "HubSpot request GET /crm/v3/owners failed 6 times, last with "
        f"ConnectionError connecting to http://127.0.0.1:{closed_port}."
    )
    # Backoff of 1, 2, 4, 8 and 16 s between the six attempts.
    assert clock.now() == 31.0


class _ConnectTimeoutSession(requests.Session):
    """A session whose every request times out while connecting."""

    def __init__(self):
        super().__init__()
        self.timeouts: list = []

    def request(self, method, url, **kwargs):
        self.timeouts.append(kwargs.get("timeout"))
        raise requests.ConnectTimeout(f"connect to {url} timed out")


def test_connect_timeout_is_short_and_not_retried(closed_port):
    session = _ConnectTimeoutSession()
    connector = _connector(closed_port, SimulatedClock(), session=session)

    with pytest.raises(CrmUnavailable) as caught:
        connector.owners()

    assert str(caught.value) == _message("HubSpot", closed_port, "ConnectTimeout")
    # 3 s to connect, then 30 s for each read.
    assert session.timeouts == [(3, 30)]
