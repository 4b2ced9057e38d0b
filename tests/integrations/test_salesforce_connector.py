import datetime as dt
from decimal import Decimal

import pytest

from integrations.connectors.base import Keyset
from integrations.connectors.salesforce import LEADS
from tests.integrations.fake_hubspot import SimulatedClock
from tests.integrations.fake_salesforce import FakeSalesforce
from tests.integrations.test_sync_salesforce import (
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    make_connector,
)

T10 = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def salesforce():
    fake = FakeSalesforce(clock=SimulatedClock()).start()
    fake.add_client(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN)
    yield fake
    fake.stop()


def add_tied_accounts(fake) -> None:
    seconds = {"001A": 0, "001B": 5, "001C": 5, "001D": 5, "001E": 9}
    for account_id, second in seconds.items():
        fake.add(
            "Account",
            account_id,
            modstamp=T10 + dt.timedelta(seconds=second),
            Name=account_id,
        )


def test_changed_pages_keyset_keeps_ties(salesforce):
    add_tied_accounts(salesforce)
    salesforce.max_batch_size = 2
    connector = make_connector(salesforce)

    pages = list(connector.changed_pages("companies", None))

    assert [[r.id for r in page.records] for page in pages] == [
        ["001A", "001B"],
        ["001C", "001D"],
        ["001E"],
    ]
    last = pages[-1].records[-1]
    assert (last.modified_at, last.id) == (T10 + dt.timedelta(seconds=9), "001E")


def test_changed_pages_resume_after_tie(salesforce):
    add_tied_accounts(salesforce)
    connector = make_connector(salesforce)

    since = Keyset(T10 + dt.timedelta(seconds=5), "001B")
    pages = list(connector.changed_pages("companies", since))

    assert [r.id for page in pages for r in page.records] == ["001C", "001D", "001E"]
    assert "SystemModstamp >= 2024-05-01T10:00:05Z" in salesforce.queries()[-1]


def test_query_follows_every_batch(salesforce):
    for number in range(5989):
        salesforce.add(
            "Opportunity",
            f"006{number:015d}",
            Name=f"Deal {number}",
            Amount=Decimal(100),
            StageName="Prospecting",
        )
    connector = make_connector(salesforce)

    pages = list(connector.list_pages("deals"))

    assert [len(page.records) for page in pages] == [2000, 2000, 1989]
    assert len({r.id for page in pages for r in page.records}) == 5989
    assert [page.next_after for page in pages] == [
        f"006{1999:015d}",
        f"006{3999:015d}",
        None,
    ]
    # The token request, one query and two nextRecordsUrl requests for the
    # opportunities, and one OpportunityHistory query per 200 of them:
    # 10 + 10 + 10 for batches of 2,000, 2,000 and 1,989.
    history = [q for q in salesforce.queries() if "FROM OpportunityHistory" in q]
    assert len(history) == 30
    assert len(salesforce.requests()) == 4 + 30


def test_list_pages_resumes_from_last_id(salesforce):
    add_tied_accounts(salesforce)
    connector = make_connector(salesforce)

    pages = list(connector.list_pages("companies", after="001C"))

    assert [r.id for page in pages for r in page.records] == ["001D", "001E"]
    assert "WHERE (Id > '001C') ORDER BY Id" in salesforce.queries()[-1]


def test_stage_history_lists_each_change(salesforce):
    salesforce.add("Opportunity", "006A", modstamp=T10, StageName="Prospecting")
    salesforce.update(
        "Opportunity",
        "006A",
        modstamp=T10 + dt.timedelta(days=2),
        StageName="Closed Won",
        Amount=Decimal("5000.25"),
    )

    history = make_connector(salesforce).stage_history(["006A"])

    assert [(h.stage, h.changed_at, h.amount) for h in history] == [
        ("Prospecting", T10, None),
        ("Closed Won", T10 + dt.timedelta(days=2), Decimal("5000.25")),
    ]


def test_merged_account_names_its_master(salesforce):
    salesforce.add("Account", "001A", modstamp=T10, Name="Globex")
    salesforce.add("Account", "001B", modstamp=T10, Name="Globex GmbH")
    merged_at = T10 + dt.timedelta(hours=1)
    salesforce.merge("Account", "001A", "001B", merged_at)
    connector = make_connector(salesforce)

    (page,) = connector.archived_pages("companies")
    live = [r.id for p in connector.list_pages("companies") for r in p.records]

    (record,) = page.records
    assert (record.id, record.archived_at) == ("001B", merged_at)
    assert record.properties["master_record_id"] == "001A"
    assert live == ["001A"]


def test_leads_are_listed(salesforce):
    salesforce.add(
        "Lead", "00QA", modstamp=T10, FirstName="Ann", Company="Acme", Status="Open"
    )

    (page,) = make_connector(salesforce).list_pages(LEADS)

    (lead,) = page.records
    assert lead.properties["Company"] == "Acme"
    assert lead.properties["Status"] == "Open"
