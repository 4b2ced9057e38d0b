import datetime as dt

import pytest

from integrations.connectors.base import ConnectorError, Keyset
from integrations.connectors.pipedrive import PipedriveConnector
from integrations.connectors.ratelimit import RollingWindowLimiter
from tests.integrations.fake_hubspot import SimulatedClock
from tests.integrations.fake_pipedrive import FakePipedrive
from tests.integrations.test_sync_pipedrive import API_TOKEN, make_connector

T10 = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock():
    return SimulatedClock()


@pytest.fixture
def pipedrive(clock):
    fake = FakePipedrive(limit=(20, 2.0)).start()
    fake.add_token(API_TOKEN, clock)
    yield fake
    fake.stop()


def add_tied_deals(fake) -> None:
    # Ids in reverse time order, so id order differs from keyset order.
    seconds = {9: 0, 8: 5, 7: 5, 6: 5, 5: 9}
    for deal_id, second in seconds.items():
        fake.add(
            "deal",
            deal_id,
            at=T10 + dt.timedelta(seconds=second),
            title=f"Deal {deal_id}",
            pipeline_id=1,
            stage_id=11,
        )


def test_changed_pages_sort_recents_by_keyset(pipedrive, clock):
    add_tied_deals(pipedrive)
    connector = make_connector(pipedrive, clock, page_size=2)

    pages = list(connector.changed_pages("deals", None))

    assert [[r.id for r in page.records] for page in pages] == [
        ["9", "6"],
        ["7", "8"],
        ["5"],
    ]


def test_changed_pages_resume_after_tie(pipedrive, clock):
    add_tied_deals(pipedrive)
    connector = make_connector(pipedrive, clock)

    since = Keyset(T10 + dt.timedelta(seconds=5), "7")
    pages = list(connector.changed_pages("deals", since))

    assert [r.id for page in pages for r in page.records] == ["8", "5"]
    (recents,) = [r for r in pipedrive.requests() if r.path == "/v1/recents"]
    assert recents.status == 200


def test_changed_pages_skip_deleted_deals(pipedrive, clock):
    add_tied_deals(pipedrive)
    pipedrive.delete("deal", 8, T10 + dt.timedelta(minutes=1))

    pages = list(make_connector(pipedrive, clock).changed_pages("deals", None))

    assert [r.id for page in pages for r in page.records] == ["9", "6", "7", "5"]


def test_list_pages_follow_next_start(pipedrive, clock):
    for number in range(5):
        pipedrive.add("organization", 100 + number, name=f"Org {number}")
    connector = make_connector(pipedrive, clock, page_size=2)

    pages = list(connector.list_pages("companies"))

    assert [[r.id for r in page.records] for page in pages] == [
        ["100", "101"],
        ["102", "103"],
        ["104"],
    ]
    assert [page.next_after for page in pages] == ["2", "4", None]
    resumed = list(connector.list_pages("companies", after="4"))
    assert [r.id for page in resumed for r in page.records] == ["104"]


def test_activities_list_every_user(pipedrive, clock):
    pipedrive.add("activity", 1, type="call", subject="Mine", user_id=1)
    pipedrive.add("activity", 2, type="call", subject="Rob's", user_id=2)
    pipedrive.add("activity", 3, type="email", subject="Mail", user_id=2)

    pages = list(make_connector(pipedrive, clock).list_pages("calls"))

    assert [r.id for page in pages for r in page.records] == ["1", "2"]


def test_exhausted_window_waits_for_reset(pipedrive, clock):
    pipedrive.limit = (2, 2.0)
    pipedrive.add_user(1, "rita.rep@acme.test", "Rita Rep")
    connector = PipedriveConnector(
        base_url=pipedrive.url,
        api_token=API_TOKEN,
        clock=clock,
        limiter=RollingWindowLimiter(100, 2.0, clock),
    )

    for _ in range(3):
        connector.owners()

    assert len(pipedrive.requests(status=429)) == 0
    assert clock.now() == 2.0


def test_oauth_token_is_a_bearer(pipedrive, clock):
    pipedrive.add_token("oauth-access-token", clock)
    pipedrive.add_user(1, "rita.rep@acme.test", "Rita Rep")
    connector = PipedriveConnector(
        base_url=pipedrive.url,
        access_token="oauth-access-token",
        clock=clock,
        limiter=RollingWindowLimiter(80, 2.0, clock),
    )

    owners = connector.owners()

    assert [(o.id, o.email) for o in owners] == [("1", "rita.rep@acme.test")]


def test_connector_needs_one_kind_of_token():
    with pytest.raises(ConnectorError, match="exactly one"):
        PipedriveConnector(
            base_url="http://127.0.0.1:9", api_token="a", access_token="b"
        )
