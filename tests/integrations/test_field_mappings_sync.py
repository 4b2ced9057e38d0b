"""Custom-field mappings applied by HubSpot and Salesforce syncs.

Pipedrive's deal fields have their own tests in test_pipedrive_fields.py.
"""

import datetime as dt
from decimal import Decimal

import pytest

from activity.models import Deal, DealProduct, Product
from integrations import sync
from integrations.connectors.base import ConnectorError
from integrations.connectors.ratelimit import RollingWindowLimiter
from integrations.connectors.salesforce import SalesforceConnector
from integrations.models import FieldMapping, SyncRun
from tests.integrations import fake_salesforce
from tests.integrations.conftest import SEEDED_AT, make_connector, run_sync, seed_portal
from tests.integrations.fake_salesforce import FakeSalesforce

HUBSPOT_MAPPINGS = {
    "dealtype": "deal_type",
    "customer_segment": "segment",
    "lead_rating": "lead_score",
    "product_name": "product",
    "commission_eligible": "commission_eligible",
}


def map_fields(connection, mappings: dict[str, str]) -> None:
    for crm_property, target in mappings.items():
        FieldMapping.objects.create(
            organization=connection.organization,
            connection=connection,
            object_type="deals",
            crm_property=crm_property,
            target=target,
        )


def mapped_columns() -> dict[str, tuple]:
    rows = Deal.objects.values_list(
        "external_id", "deal_type", "segment", "lead_score", "commission_eligible"
    )
    return {external_id: tuple(values) for external_id, *values in rows}


def product_lines() -> dict[str, tuple]:
    lines = DealProduct.objects.select_related("deal", "product")
    return {
        line.deal.external_id: (line.product.name, line.quantity, line.amount)
        for line in lines
    }


def after_cursor() -> dt.datetime:
    """Return a modified time after the keyset a full sync leaves behind."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)


def seed_mapped_values(hubspot) -> None:
    """Give deals 301 and 302 values of the mapped properties, and 303 to 305 none."""
    hubspot.update(
        "deals",
        "301",
        modified_at=SEEDED_AT,
        dealtype="existingbusiness",
        customer_segment="Enterprise",
        lead_rating="87",
        product_name="GTX Pro",
        commission_eligible="true",
    )
    hubspot.update(
        "deals",
        "302",
        modified_at=SEEDED_AT,
        dealtype="newbusiness",
        customer_segment="Mid-market",
        lead_rating="high",
        product_name="gtx-pro",
        commission_eligible="false",
    )


# HubSpot


def test_hubspot_full_sync_sets_mapped_fields(hubspot, clock, connection):
    seed_portal(hubspot)
    seed_mapped_values(hubspot)
    map_fields(connection, HUBSPOT_MAPPINGS)

    run = run_sync(connection, make_connector(hubspot, clock))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert mapped_columns() == {
        "301": ("existingbusiness", "Enterprise", 87, True),
        # "high" is no lead score, and the rest of the deal is still written.
        "302": ("newbusiness", "Mid-market", None, False),
        "303": ("", "", None, None),
        "304": ("", "", None, None),
        "305": ("", "", None, None),
    }
    assert Deal.objects.get(external_id="302").name == "Initech pilot"
    assert run.counts["deals"]["created"] == 5
    assert run.counts["deals"]["failed"] == 0


def test_hubspot_unfit_value_names_record(hubspot, clock, connection):
    seed_portal(hubspot)
    seed_mapped_values(hubspot)
    map_fields(connection, HUBSPOT_MAPPINGS)

    run = run_sync(connection, make_connector(hubspot, clock))

    deal_errors = [e for e in run.errors if e["object_type"] == "deals"]
    assert deal_errors == [
        {
            "object_type": "deals",
            "record_id": "302",
            "message": "Deal 302: the value 'high' of CRM property 'lead_rating' "
            "is not a whole number, so the deal's lead score was left unchanged. "
            "Correct the value in the CRM or map another property.",
        }
    ]


def test_hubspot_product_mapping_adds_lines(hubspot, clock, connection):
    seed_portal(hubspot)
    seed_mapped_values(hubspot)
    map_fields(connection, HUBSPOT_MAPPINGS)

    run_sync(connection, make_connector(hubspot, clock))

    # "GTX Pro" and "gtx-pro" have one match key, so they are one product.
    assert list(Product.objects.values_list("name", flat=True)) == ["GTX Pro"]
    assert product_lines() == {
        "301": ("GTX Pro", Decimal("1.00"), Decimal("10000.00")),
        "302": ("GTX Pro", Decimal("1.00"), Decimal("2500.50")),
    }


def test_hubspot_unmapped_properties_ignored(hubspot, clock, connection):
    seed_portal(hubspot)
    seed_mapped_values(hubspot)

    run = run_sync(connection, make_connector(hubspot, clock))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert set(mapped_columns().values()) == {("", "", None, None)}
    assert product_lines() == {}
    assert not Product.objects.exists()


def test_hubspot_incremental_sync_updates_fields(hubspot, clock, connection):
    seed_portal(hubspot)
    seed_mapped_values(hubspot)
    map_fields(connection, HUBSPOT_MAPPINGS)
    run_sync(connection, make_connector(hubspot, clock))
    changed_at = after_cursor()
    hubspot.update(
        "deals",
        "301",
        modified_at=changed_at,
        customer_segment="SMB",
        lead_rating="not scored",
        product_name="",
    )
    hubspot.update("deals", "303", modified_at=changed_at, dealtype="newbusiness")

    run = run_sync(connection, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)

    assert run.status == SyncRun.Status.SUCCEEDED
    columns = mapped_columns()
    # The unfit lead score leaves 87 in place, and the other changes apply.
    assert columns["301"] == ("existingbusiness", "SMB", 87, True)
    assert columns["303"] == ("newbusiness", "", None, None)
    # An emptied product property removes the deal's product line.
    assert set(product_lines()) == {"302"}
    assert [e["record_id"] for e in run.errors if e["object_type"] == "deals"] == [
        "301"
    ]


def test_hubspot_product_line_change_counts(hubspot, clock, connection):
    seed_portal(hubspot)
    seed_mapped_values(hubspot)
    map_fields(connection, {"product_name": "product"})
    run_sync(connection, make_connector(hubspot, clock))
    hubspot.update("deals", "302", modified_at=after_cursor(), product_name="Widget")

    run = run_sync(connection, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)

    assert run.counts["deals"]["updated"] == 1
    assert run.counts["deals"]["unchanged"] == 0
    assert product_lines()["302"] == ("Widget", Decimal("1.00"), Decimal("2500.50"))
    assert Product.objects.count() == 2


def test_hubspot_invalid_property_name(hubspot, clock, connection):
    seed_portal(hubspot)
    map_fields(connection, {"deal type": "deal_type"})

    run = run_sync(connection, make_connector(hubspot, clock))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.errors[-1] == {
        "object_type": "field_mappings",
        "record_id": "deal type",
        "message": "'deal type' is not a HubSpot property name: internal names "
        "contain only letters, digits and underscores. Map the property's "
        "internal name.",
    }
    assert set(mapped_columns().values()) == {("", "", None, None)}


# Salesforce

SF_CLIENT = ("3MVG9-fields-consumer-key", "sf-fields-secret", "5Aep861-fields-token")


@pytest.fixture
def salesforce(monkeypatch, clock):
    """Return a fake org whose opportunities also have Type and two custom fields."""
    fields = {"Type", "Segment__c", "Lead_Score__c"}
    opportunity = fake_salesforce.SCHEMA["Opportunity"] | fields
    monkeypatch.setitem(fake_salesforce.SCHEMA, "Opportunity", opportunity)
    fake = FakeSalesforce(clock=clock).start()
    fake.add_client(*SF_CLIENT)
    yield fake
    fake.stop()


@pytest.fixture
def sf_connection(personas, salesforce, in_org):
    client_id, client_secret, refresh_token = SF_CLIENT
    return sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="salesforce",
        name="Salesforce",
        base_url=salesforce.url,
        credentials={
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        },
    )


def sf_connector(fake) -> SalesforceConnector:
    client_id, client_secret, refresh_token = SF_CLIENT
    return SalesforceConnector(
        login_url=fake.url,
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
        clock=fake.clock,
        limiter=RollingWindowLimiter(20, 1.0, fake.clock),
    )


def seed_opportunities(fake) -> None:
    fake.add_user("005R1", "rita.rep@acme.test", "Rita", "Rep")
    fake.add_stage("Prospecting", "Prospecting", probability=10)
    rows = [
        ("006A", "Globex renewal", "Existing Customer - Upgrade", "Enterprise", 90.0),
        ("006B", "Initech pilot", "New Customer", "SMB", None),
    ]
    for deal_id, name, deal_type, segment, score in rows:
        fake.add(
            "Opportunity",
            deal_id,
            modstamp=SEEDED_AT,
            Name=name,
            Amount=Decimal("1000"),
            StageName="Prospecting",
            CloseDate=dt.date(2024, 6, 30),
            OwnerId="005R1",
            Type=deal_type,
            Segment__c=segment,
            Lead_Score__c=score,
        )


def test_salesforce_sync_sets_mapped_fields(salesforce, sf_connection):
    seed_opportunities(salesforce)
    mappings = {"Type": "deal_type", "Segment__c": "segment"}
    map_fields(sf_connection, {**mappings, "Lead_Score__c": "lead_score"})

    run = run_sync(sf_connection, sf_connector(salesforce))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.errors == []
    assert mapped_columns() == {
        "006A": ("Existing Customer - Upgrade", "Enterprise", 90, None),
        "006B": ("New Customer", "SMB", None, None),
    }
    deal_queries = [q for q in salesforce.queries() if "FROM Opportunity " in q]
    columns = deal_queries[0].split(" FROM ")[0].removeprefix("SELECT ").split(", ")
    assert {"Type", "Segment__c", "Lead_Score__c"} <= set(columns)
    assert len(columns) == len(set(columns))


def test_salesforce_incremental_sync_updates_fields(salesforce, sf_connection):
    seed_opportunities(salesforce)
    map_fields(sf_connection, {"Type": "deal_type", "Segment__c": "segment"})
    run_sync(sf_connection, sf_connector(salesforce))
    salesforce.update("Opportunity", "006B", modstamp=after_cursor(), Segment__c=None)

    run = run_sync(sf_connection, sf_connector(salesforce), SyncRun.Kind.INCREMENTAL)

    assert run.counts["deals"]["updated"] == 1
    assert mapped_columns()["006B"] == ("New Customer", "", None, None)


def test_salesforce_unknown_field_fails_run(salesforce, sf_connection):
    seed_opportunities(salesforce)
    map_fields(sf_connection, {"Region__c": "segment"})

    with pytest.raises(ConnectorError, match="Region__c"):
        run_sync(sf_connection, sf_connector(salesforce))

    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.FAILED
    assert "No such column 'Region__c' on entity 'Opportunity'" in run.failure


def test_salesforce_standard_field_selected_once(salesforce, sf_connection):
    seed_opportunities(salesforce)
    # SOQL ignores case, so "name" is the Name field the query already selects.
    map_fields(sf_connection, {"name": "deal_type"})

    run = run_sync(sf_connection, sf_connector(salesforce))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert mapped_columns()["006A"] == ("Globex renewal", "", None, None)
    deal_queries = [q for q in salesforce.queries() if "FROM Opportunity " in q]
    assert ", name" not in deal_queries[0]
