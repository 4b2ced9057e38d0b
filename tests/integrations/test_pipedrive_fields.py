"""Pipedrive deal fields: every /v1/dealFields page is read and mapped.

The fake company has 130 deal fields, served 100 per page. The custom field
"commission_eligible" is the 117th, so it is on the second page.
"""

import datetime as dt

import pytest

from activity.models import Deal
from integrations import sync
from integrations.connectors.pipedrive import PipedriveConnector
from integrations.connectors.ratelimit import RollingWindowLimiter
from integrations.models import FieldMapping, SyncRun
from spm.tenancy import tenant_context
from tests.integrations.fake_hubspot import SimulatedClock
from tests.integrations.fake_pipedrive import FakePipedrive

API_TOKEN = "pd-fields-test-token-7b2d41"
LIMIT = (20, 2.0)
SEEDED_AT = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)
STANDARD_KEYS = (
    "title",
    "value",
    "currency",
    "status",
    "pipeline_id",
    "stage_id",
    "user_id",
    "org_id",
    "person_id",
    "add_time",
    "update_time",
    "expected_close_date",
    "won_time",
    "lost_time",
    "close_time",
)


@pytest.fixture
def clock():
    return SimulatedClock()


@pytest.fixture
def pipedrive(clock):
    fake = FakePipedrive(limit=LIMIT).start()
    fake.add_token(API_TOKEN, clock)
    yield fake
    fake.stop()


@pytest.fixture
def connection(personas, pipedrive, in_org, loopback_allowed):
    return sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="pipedrive",
        name="Pipedrive",
        base_url=pipedrive.url,
        credentials={"api_token": API_TOKEN},
    )


@pytest.fixture
def fields(pipedrive):
    """Add 130 deal fields and return the custom ones the tests use, by name."""
    for key in STANDARD_KEYS:
        pipedrive.add_deal_field(key.replace("_", " ").capitalize(), key=key)
    while len(pipedrive.deal_fields) < 116:
        pipedrive.add_deal_field(f"Custom field {len(pipedrive.deal_fields) + 1}")
    eligible = pipedrive.add_deal_field(
        "commission_eligible", "enum", options=["Yes", "No"]
    )
    segment = pipedrive.add_deal_field("Customer segment")
    score = pipedrive.add_deal_field("Lead score", "double")
    while len(pipedrive.deal_fields) < 130:
        pipedrive.add_deal_field(f"Custom field {len(pipedrive.deal_fields) + 1}")
    return {"eligible": eligible, "segment": segment, "score": score}


def option_id(field: dict, label: str) -> str:
    """Return an enum option's id as a deal stores it (text, as in v1 responses)."""
    return next(str(o["id"]) for o in field["options"] if o["label"] == label)


def seed_deals(fake, fields) -> None:
    """Add three open deals: 301 eligible, 302 not eligible, 303 without a value."""
    fake.add_user(1, "rita.rep@acme.test", "Rita Rep")
    fake.add_pipeline(1, "Sales", [(11, "Qualified", 20), (12, "Proposal", 60)])
    eligible_key = fields["eligible"]["key"]
    segment_key = fields["segment"]["key"]
    score_key = fields["score"]["key"]
    rows = [
        (301, "Globex renewal", option_id(fields["eligible"], "Yes"), "Enterprise", 87),
        (302, "Initech pilot", option_id(fields["eligible"], "No"), "SMB", 41.0),
        (303, "Umbrella trial", None, None, None),
    ]
    for deal_id, title, eligible, segment, score in rows:
        fake.add(
            "deal",
            deal_id,
            at=SEEDED_AT,
            title=title,
            value=1000,
            status="open",
            pipeline_id=1,
            stage_id=11,
            user_id=1,
            org_id=None,
            person_id=None,
            **{eligible_key: eligible, segment_key: segment, score_key: score},
        )


def make_connector(fake, clock) -> PipedriveConnector:
    return PipedriveConnector(
        base_url=fake.url,
        api_token=API_TOKEN,
        clock=clock,
        limiter=RollingWindowLimiter(*LIMIT, clock),
    )


def run_sync(connection, connector, kind=SyncRun.Kind.FULL) -> SyncRun:
    with tenant_context(connection.organization):
        run = sync.sync_run_create(connection=connection, kind=kind)
        return sync.sync_run_execute(run=run, connector=connector)


def map_field(connection, crm_property: str, target: str) -> None:
    FieldMapping.objects.create(
        organization=connection.organization,
        connection=connection,
        object_type="deals",
        crm_property=crm_property,
        target=target,
    )


def deal_field_requests(fake) -> int:
    return len([r for r in fake.requests() if r.path == "/v1/dealFields"])


def eligibility() -> dict[str, bool | None]:
    return dict(Deal.objects.values_list("external_id", "commission_eligible"))


def test_deal_fields_read_every_page(pipedrive, clock, fields):
    connector = make_connector(pipedrive, clock)

    read = connector.deal_fields()

    assert len(read) == 130
    assert read[116].name == "commission_eligible"
    assert read[116].key == fields["eligible"]["key"]
    assert len(read[116].key) == 40
    assert deal_field_requests(pipedrive) == 2


def test_commission_eligible_mapped_by_name(pipedrive, clock, connection, fields):
    seed_deals(pipedrive, fields)
    map_field(connection, "commission_eligible", "commission_eligible")

    run = run_sync(connection, make_connector(pipedrive, clock))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.errors == []
    assert deal_field_requests(pipedrive) == 2
    assert eligibility() == {"301": True, "302": False, "303": None}


def test_custom_key_mapping_sets_segment(pipedrive, clock, connection, fields):
    seed_deals(pipedrive, fields)
    map_field(connection, fields["segment"]["key"], "segment")
    map_field(connection, "lead score", "lead_score")

    run = run_sync(connection, make_connector(pipedrive, clock))

    assert run.errors == []
    rows = Deal.objects.values_list("external_id", "segment", "lead_score")
    assert sorted(rows) == [
        ("301", "Enterprise", 87),
        ("302", "SMB", 41),
        ("303", "", None),
    ]


def test_unmapped_fields_not_read(pipedrive, clock, connection, fields):
    seed_deals(pipedrive, fields)

    run = run_sync(connection, make_connector(pipedrive, clock))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert deal_field_requests(pipedrive) == 0
    assert eligibility() == {"301": None, "302": None, "303": None}
    assert set(Deal.objects.values_list("segment", flat=True)) == {""}


def test_incremental_sync_updates_mapped_value(pipedrive, clock, connection, fields):
    seed_deals(pipedrive, fields)
    map_field(connection, "commission_eligible", "commission_eligible")
    run_sync(connection, make_connector(pipedrive, clock))
    # After the cursor, which a full sync leaves 5 minutes before it started.
    later = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)
    eligible_key = fields["eligible"]["key"]
    pipedrive.update(
        "deal", 302, at=later, **{eligible_key: option_id(fields["eligible"], "Yes")}
    )
    pipedrive.update("deal", 301, at=later, **{eligible_key: None})

    run = run_sync(
        connection, make_connector(pipedrive, clock), kind=SyncRun.Kind.INCREMENTAL
    )

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.counts["deals"]["updated"] == 2
    assert eligibility() == {"301": None, "302": True, "303": None}


def test_unknown_field_listed_as_error(pipedrive, clock, connection, fields):
    seed_deals(pipedrive, fields)
    map_field(connection, "commission_eligible", "commission_eligible")
    map_field(connection, "Deal region", "segment")

    run = run_sync(connection, make_connector(pipedrive, clock))

    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.errors == [
        {
            "object_type": "field_mappings",
            "record_id": "Deal region",
            "message": "Pipedrive has no deal field with the key or name "
            "'Deal region'. Map the field's key or its exact name.",
        }
    ]
    assert eligibility() == {"301": True, "302": False, "303": None}


def test_ambiguous_field_name_rejected(pipedrive, clock, connection, fields):
    seed_deals(pipedrive, fields)
    twin = pipedrive.add_deal_field("Customer segment")
    map_field(connection, "customer segment", "segment")

    run = run_sync(connection, make_connector(pipedrive, clock))

    assert len(run.errors) == 1
    message = run.errors[0]["message"]
    assert "2 Pipedrive deal fields are named 'customer segment'" in message
    assert fields["segment"]["key"] in message
    assert twin["key"] in message
    assert set(Deal.objects.values_list("segment", flat=True)) == {""}
