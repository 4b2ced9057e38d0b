"""CRM integration pages: connecting, syncing, progress, budget and mappings."""

from __future__ import annotations

import datetime as dt
import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.db import connection as db_connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from activity.models import Deal
from compensation.models import CalculationRun
from integrations import api_usage, selectors, services, sync
from integrations.forms import FieldMappingForm
from integrations.models import (
    ApiTier,
    CrmConnection,
    FieldMapping,
    OwnerMapping,
    SyncRun,
)
from notifications.models import Notification, OutboundSettings
from spm.models import AuditLog
from spm.tenancy import system_context, tenant_context
from tests.conftest import login
from tests.integrations.conftest import TOKEN, seed_portal
from tests.measurement.builders import make_deal

# A full sync of seed_portal sends: owners, pipelines, one listing page per
# object type (seven types, each under 100 records), the archived deals and
# the deleted records of the six other object types.
FULL_SYNC_REQUESTS = 1 + 1 + 7 + 1 + 6


def _url(name: str, **kwargs) -> str:
    return reverse(f"integrations:{name}", kwargs={"org_slug": "acme", **kwargs})


def _connection_url(name: str, connection: CrmConnection) -> str:
    return _url(name, connection_id=connection.public_id)


@pytest.fixture
def admin(personas):
    return login(Client(), personas.admin)


@pytest.fixture
def synced(personas, hubspot, connection, django_capture_on_commit_callbacks):
    """The seeded portal after one sync started from the "Sync now" button."""
    seed_portal(hubspot)
    hubspot.add_token(TOKEN)  # the real clock, as a worker runs
    client = login(Client(), personas.admin)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(_connection_url("sync-now", connection))
    connection.refresh_from_db()
    return connection


def _connect_form(**overrides) -> dict:
    data = {
        "name": "HubSpot EU",
        "base_url": "http://127.0.0.1:9/",
        "access_token": TOKEN,
        "api_tier": "professional",
    }
    data.update(overrides)
    return data


# Connecting


def test_connect_stores_token_encrypted(personas, admin, loopback_allowed, hubspot):
    hubspot.add_token(TOKEN)
    response = admin.post(
        _url("connect-hubspot"), _connect_form(base_url=hubspot.url), follow=True
    )

    assert response.status_code == 200
    with tenant_context(personas.org):
        connection = CrmConnection.objects.get()
        audit = AuditLog.objects.get(action="crm.connection_created")
    assert connection.name == "HubSpot EU"
    assert connection.provider == "hubspot"
    assert connection.api_tier == ApiTier.PROFESSIONAL
    assert connection.credentials == {"access_token": TOKEN}
    assert TOKEN not in connection.credentials_encrypted
    assert TOKEN not in str(audit.new)
    assert audit.new["api_tier"] == "professional"
    assert TOKEN not in response.content.decode()


def test_connect_error_does_not_echo_token(personas, admin):
    response = admin.post(_url("connect-hubspot"), _connect_form(base_url="not a url"))

    assert response.status_code == 200
    message = "API address: &quot;not a url&quot; is not a valid URL"
    assert message in response.content.decode()
    assert TOKEN not in response.content.decode()
    with tenant_context(personas.org):
        assert CrmConnection.objects.count() == 0


def test_connect_rejects_token_with_spaces(personas, admin):
    response = admin.post(
        _url("connect-hubspot"), _connect_form(access_token="pat na1 secret")
    )

    assert "Invalid access token" in response.content.decode()
    assert "pat na1 secret" not in response.content.decode()


def test_connect_second_hubspot_rejected(personas, admin, connection):
    response = admin.post(_url("connect-hubspot"), _connect_form())

    assert "already has a HubSpot connection, &#x27;HubSpot&#x27;" in (
        response.content.decode()
    )
    assert CrmConnection.objects.count() == 1


def test_settings_replace_token_and_audit(personas, admin, connection):
    data = {
        "name": "HubSpot main",
        "base_url": connection.base_url,
        "api_tier": "enterprise",
        "status": "active",
        "access_token": "pat-na1-new-token",
    }
    admin.post(_connection_url("connection-edit", connection), data)

    connection.refresh_from_db()
    audit = AuditLog.objects.get(action="crm.connection_updated")
    assert connection.name == "HubSpot main"
    assert connection.api_tier == "enterprise"
    assert connection.credentials == {"access_token": "pat-na1-new-token"}
    assert audit.old["name"] == "HubSpot"
    assert audit.new["access_token"] == "(replaced)"
    assert "pat-na1-new-token" not in str(audit.new)


def test_settings_page_hides_stored_token(admin, connection):
    response = admin.get(_connection_url("connection-edit", connection))

    assert response.status_code == 200
    assert TOKEN not in response.content.decode()


# Sync now, progress and runs


def test_sync_now_runs_and_lists_counts(synced, admin):
    run = SyncRun.objects.get()
    response = admin.get(_connection_url("connection", synced))
    html = response.content.decode()

    assert run.kind == SyncRun.Kind.FULL
    assert run.status == SyncRun.Status.SUCCEEDED
    # 3 companies + 2 contacts + 5 deals + 2 calls + 1 email + 1 meeting.
    assert selectors.run_totals(run)["created"] == 14
    assert response.context["runs"][0]["totals"]["created"] == 14
    assert response.context["progress"] == 100
    assert 'value="100"' in html
    assert TOKEN not in html


def test_sync_now_counts_api_calls(synced, admin, hubspot):
    run = SyncRun.objects.get()
    response = admin.get(_connection_url("connection", synced))
    budget = response.context["budget"]

    assert len(hubspot.requests(TOKEN)) == FULL_SYNC_REQUESTS
    assert run.api_calls == FULL_SYNC_REQUESTS
    assert budget.day_used == FULL_SYNC_REQUESTS
    assert budget.burst_limit == 100
    assert budget.day_limit == 250_000


def test_second_sync_is_incremental(synced, admin, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(_connection_url("sync-now", synced))

    runs = list(SyncRun.objects.order_by("created_at", "id"))
    assert [run.kind for run in runs] == ["full", "incremental"]
    assert runs[1].status == SyncRun.Status.SUCCEEDED


def test_sync_now_rejects_concurrent_run(personas, admin, connection):
    SyncRun.objects.create(
        connection=connection, kind=SyncRun.Kind.FULL, status=SyncRun.Status.RUNNING
    )

    response = admin.post(_connection_url("sync-now", connection), follow=True)

    assert "already running" in response.content.decode()
    assert SyncRun.objects.count() == 1


def test_sync_now_rejects_paused_connection(admin, connection):
    connection.status = CrmConnection.Status.PAUSED
    connection.save()

    response = admin.post(_connection_url("sync-now", connection), follow=True)

    assert "HubSpot is paused" in response.content.decode()
    assert SyncRun.objects.count() == 0


def test_sync_now_stale_run_does_not_block(admin, connection):
    stale = SyncRun.objects.create(
        connection=connection, kind=SyncRun.Kind.FULL, status=SyncRun.Status.RUNNING
    )
    SyncRun.objects.filter(pk=stale.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=16)
    )

    admin.post(_connection_url("sync-now", connection))

    assert SyncRun.objects.count() == 2


@pytest.mark.parametrize(
    ("status", "current", "expected"),
    [
        ("queued", "", 0),
        ("running", "companies", 0),
        # Seven object types: int(100 * types done / 7).
        ("running", "deals", 28),  # two of seven done: 200 / 7 = 28.6
        # Salesforce leads come between the deals and the calls: 2.5 of 7.
        ("running", "leads", 35),  # 250 / 7 = 35.7
        ("running", "meetings", 71),  # 500 / 7 = 71.4
        ("running", "notes", 85),  # 600 / 7 = 85.7
        ("failed", "contacts", 14),  # 100 / 7 = 14.3
        ("succeeded", "", 100),
    ],
)
def test_progress_json(admin, connection, status, current, expected):
    run = SyncRun.objects.create(
        connection=connection,
        kind=SyncRun.Kind.FULL,
        status=status,
        current_object_type=current,
        records_done=250,
        pages_done=3,
    )

    data = admin.get(_url("run-progress-json", sync_run_id=run.public_id)).json()

    assert data["progress"] == expected
    assert data["status"] == status
    assert data["records_done"] == 250
    assert data["finished"] is (status in ("failed", "succeeded"))


def test_progress_partial_refreshes_when_done(admin, connection):
    run = SyncRun.objects.create(
        connection=connection, kind=SyncRun.Kind.FULL, status="succeeded"
    )

    response = admin.get(
        _url("run-progress", sync_run_id=run.public_id), headers={"HX-Request": "true"}
    )

    assert response.headers["HX-Refresh"] == "true"


def test_run_errors_show_record_id(admin, connection):
    SyncRun.objects.create(
        connection=connection,
        kind=SyncRun.Kind.FULL,
        status="succeeded",
        errors=[
            {
                "object_type": "deals",
                "record_id": "9001",
                "message": "Unknown deal stage 'gone' in pipeline 'default'.",
            }
        ],
    )

    html = admin.get(_connection_url("connection", connection)).content.decode()

    assert "deals 9001: Unknown deal stage" in html


def test_connection_page_query_count(admin, connection, django_assert_max_num_queries):
    for _ in range(12):
        SyncRun.objects.create(
            connection=connection,
            kind=SyncRun.Kind.INCREMENTAL,
            status="succeeded",
            counts={"deals": {"created": 1, "updated": 2, "deleted": 0, "failed": 0}},
        )

    # Session, user, membership, organisation and the nav: about 7 queries,
    # plus the connection and its runs.
    with django_assert_max_num_queries(10):
        response = admin.get(_connection_url("connection", connection))

    assert len(response.context["runs"]) == 10
    assert response.context["runs"][0]["totals"]["updated"] == 2


def test_connection_list_query_count(admin, connection, django_assert_max_num_queries):
    for _ in range(3):
        SyncRun.objects.create(connection=connection, kind="full", status="failed")

    with django_assert_max_num_queries(9):
        response = admin.get(_url("connections"))

    assert response.context["connections"][0].latest_run.status == "failed"


# Budget


def test_budget_counts_window_and_day(connection):
    moment = dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=dt.UTC).timestamp()
    for offset in (0, 0, 3, 9, 10, 25):
        api_usage.record_call(connection.pk, "UTC", at=moment + offset)

    # At moment + 10, the window is the seconds moment + 1 to moment + 10.
    assert api_usage.calls_in_burst_window(connection.pk, at=moment + 10) == 3
    assert api_usage.calls_in_burst_window(connection.pk, at=moment + 9) == 4
    assert api_usage.calls_on_day(connection.pk, dt.date(2024, 3, 1)) == 6


@pytest.mark.parametrize(
    ("tier", "burst", "day"),
    [
        ("starter", 100, 250_000),
        ("professional", 190, 650_000),
        ("enterprise", 190, 1_000_000),
    ],
)
def test_budget_limits_by_tier(personas, connection, tier, burst, day):
    connection.api_tier = tier
    for _ in range(19):
        api_usage.record_call(connection.pk, personas.org.time_zone)

    budget = selectors.api_budget(connection, personas.org)

    assert (budget.burst_limit, budget.day_limit) == (burst, day)
    assert budget.burst_used == 19
    assert budget.burst_percent == round(1900 / burst)


# Mappings


def test_unmapped_owner_shown_as_error(synced, admin):
    html = admin.get(_connection_url("connection", synced)).content.decode()

    assert 'id="mapping-errors"' in html
    assert "ghost@elsewhere.test" in html


def test_owner_mapping_saves_member(personas, synced, admin):
    ghost = OwnerMapping.objects.get(owner_id="3")
    rita = OwnerMapping.objects.get(owner_id="1")
    data = {
        f"owner-{ghost.pk}": str(personas.rep3.public_id),
        f"owner-{rita.pk}": str(personas.rep1.public_id),
        f"owner-{OwnerMapping.objects.get(owner_id='2').pk}": str(
            personas.rep2.public_id
        ),
    }

    admin.post(_connection_url("owners", synced), data)

    ghost.refresh_from_db()
    assert ghost.membership == personas.rep3
    audits = AuditLog.objects.filter(action="crm.owner_mapped")
    assert [(a.old["membership"], a.new["membership"]) for a in audits] == [
        (None, personas.rep3.pk)
    ]


def test_owner_page_lists_unmapped_first(synced, admin, django_assert_max_num_queries):
    with django_assert_max_num_queries(9):
        response = admin.get(_connection_url("owners", synced))

    rows = [mapping.owner_id for mapping, _ in response.context["form"].rows()]
    assert rows[0] == "3"
    assert sorted(rows) == ["1", "2", "3"]


def test_stage_page_shows_outcomes(synced, admin):
    response = admin.get(_connection_url("stages", synced))

    [(name, mappings)] = response.context["pipelines"]
    outcomes = {m.crm_stage_id: m.outcome for m in mappings}
    assert name == "Sales Pipeline"
    assert outcomes == {
        "appointmentscheduled": "open",
        "contractsent": "open",
        "closedwon": "won",
        "closedlost": "lost",
        "renewal_won": "won",
    }


def test_field_mapping_add_and_delete(admin, connection):
    data = {"object_type": "deals", "crm_property": "dealtype", "target": "deal_type"}
    admin.post(_connection_url("fields", connection), data)

    mapping = FieldMapping.objects.get()
    assert (mapping.crm_property, mapping.target) == ("dealtype", "deal_type")
    assert AuditLog.objects.filter(action="crm.field_mapping_added").count() == 1

    admin.post(
        _url(
            "field-delete",
            connection_id=connection.public_id,
            field_mapping_id=mapping.public_id,
        )
    )
    assert FieldMapping.objects.count() == 0
    assert AuditLog.objects.filter(action="crm.field_mapping_deleted").count() == 1


def test_field_mapping_duplicate_target_rejected(admin, connection):
    data = {"object_type": "deals", "crm_property": "dealtype", "target": "deal_type"}
    admin.post(_connection_url("fields", connection), data)

    response = admin.post(
        _connection_url("fields", connection), {**data, "crm_property": "kind"}
    )

    assert "Deal type of deals is already mapped" in response.content.decode()
    assert FieldMapping.objects.count() == 1


def test_field_mapping_invalid_property_rejected(admin, connection):
    data = {"object_type": "deals", "crm_property": "deal type", "target": "segment"}

    response = admin.post(_connection_url("fields", connection), data)

    assert "Invalid property name &#x27;deal type&#x27;" in response.content.decode()
    assert FieldMapping.objects.count() == 0


def test_field_mapping_page_offers_deals_only(admin, connection):
    response = admin.get(_connection_url("fields", connection))

    assert response.status_code == 200
    assert "object_type" not in response.context["form"].fields
    page = response.content.decode()
    assert 'name="object_type"' not in page
    assert "Contacts" not in page
    assert "Companies" not in page


def test_field_mapping_without_object_type_maps_deals(admin, connection):
    data = {"crm_property": "dealtype", "target": "deal_type"}

    admin.post(_connection_url("fields", connection), data)

    mapping = FieldMapping.objects.get()
    assert mapping.object_type == "deals"
    assert mapping.crm_property == "dealtype"


@pytest.mark.parametrize("object_type", ["contacts", "companies"])
def test_field_mapping_other_object_type_rejected(admin, connection, object_type):
    data = {
        "object_type": object_type,
        "crm_property": "industry",
        "target": "segment",
    }

    response = admin.post(_connection_url("fields", connection), data)

    assert response.status_code == 200
    assert (
        f"Invalid object type &#x27;{object_type}&#x27;: only deal properties can "
        "be mapped" in response.content.decode()
    )
    assert FieldMapping.objects.count() == 0
    assert not AuditLog.objects.filter(action="crm.field_mapping_added").exists()


def test_migration_deletes_non_deal_mappings(personas, connection):
    migration = importlib.import_module(
        "integrations.migrations.0008_field_mappings_deals_only"
    )
    with tenant_context(personas.other_org):
        other = sync.connection_create(
            organization=personas.other_org,
            actor=None,
            provider="hubspot",
            name="Globex HubSpot",
            base_url="http://127.0.0.1:9/",
            credentials={"access_token": "globex-token"},
        )
    rows = [
        (connection, "deals", "dealtype", "deal_type"),
        (connection, "contacts", "lifecyclestage", "segment"),
        (other, "companies", "industry", "segment"),
    ]
    for crm_connection, object_type, crm_property, target in rows:
        with tenant_context(crm_connection.organization):
            FieldMapping.objects.create(
                organization=crm_connection.organization,
                connection=crm_connection,
                object_type=object_type,
                crm_property=crm_property,
                target=target,
            )
    with system_context():
        contact_mapping = FieldMapping.unscoped.get(object_type="contacts")

    # The migration runs with no organisation set, as migrate does.
    with system_context():
        migration.non_deal_mappings_delete(
            django_apps, SimpleNamespace(connection=db_connection)
        )

    with system_context():
        remaining = list(
            FieldMapping.unscoped.values_list("object_type", "crm_property")
        )
        entries = list(
            AuditLog.unscoped.filter(action="crm.field_mapping_deleted").order_by("id")
        )
    assert remaining == [("deals", "dealtype")]
    assert [(e.organization_id, e.action) for e in entries] == [
        (personas.org.pk, "crm.field_mapping_deleted"),
        (personas.other_org.pk, "crm.field_mapping_deleted"),
    ]
    first, second = entries
    assert first.actor is None
    assert first.object_id == str(contact_mapping.public_id)
    assert first.old == {
        "connection": "HubSpot",
        "object_type": "contacts",
        "crm_property": "lifecyclestage",
        "target": "segment",
    }
    assert first.new == {"reason": migration.REASON}
    assert second.old["connection"] == "Globex HubSpot"
    assert second.old["object_type"] == "companies"


@pytest.mark.parametrize(
    ("provider", "name", "error"),
    [
        ("hubspot", "dealtype", None),
        (
            "hubspot",
            "Account.Industry",
            "use the internal name, made of letters, digits and underscores",
        ),
        ("salesforce", "Account.Industry", None),
        ("salesforce", "Segment__c", None),
        (
            "salesforce",
            "Account..Industry",
            "use the field's API name, or a path such as Account.Industry",
        ),
        ("pipedrive", "Commission eligible", None),
        (
            "pipedrive",
            "bad\tname",
            "use the field's key or its name, without control characters",
        ),
    ],
)
def test_mapping_form_property_names(provider, name, error):
    form = FieldMappingForm(
        data={"crm_property": name, "target": "segment"}, provider=provider
    )

    assert form.is_valid() is (error is None)
    if error:
        [message] = form.errors["crm_property"]
        assert message == f"Invalid property name {name!r}: {error}."


def test_field_mapping_service_rejects_contacts(connection):
    with pytest.raises(services.FieldMappingError) as rejected:
        services.field_mapping_add(
            connection=connection,
            actor=None,
            object_type="contacts",
            crm_property="hs_lead_score",
            target="lead_score",
        )

    assert str(rejected.value) == (
        "Invalid object type 'contacts': only deal properties can be mapped."
    )
    assert not FieldMapping.objects.exists()


# Access


def test_token_in_no_page(synced, admin):
    mapping = services.field_mapping_add(
        connection=synced,
        actor=None,
        object_type="deals",
        crm_property="segment",
        target="segment",
    )
    run = SyncRun.objects.get()
    urls = [
        _url("connections"),
        *(
            _connection_url(name, synced)
            for name in ("connection", "connection-edit", "owners", "stages", "fields")
        ),
        _url("run-progress", sync_run_id=run.public_id),
        _url("run-progress-json", sync_run_id=run.public_id),
    ]
    assert mapping.pk
    for url in urls:
        response = admin.get(url)
        assert response.status_code == 200, url
        assert TOKEN not in response.content.decode(), url


def test_other_org_connection_is_404(personas):
    other = CrmConnection.unscoped.create(
        organization=personas.other_org,
        provider="hubspot",
        name="Globex HubSpot",
        base_url="http://127.0.0.1:9/",
    )
    run = SyncRun.unscoped.create(
        organization=personas.other_org, connection=other, kind="full"
    )
    client = login(Client(), personas.admin)

    for name in ("connection", "connection-edit", "owners", "stages", "fields"):
        assert client.get(_connection_url(name, other)).status_code == 404, name
    assert client.post(_connection_url("sync-now", other)).status_code == 404
    assert (
        client.get(_url("run-progress", sync_run_id=run.public_id)).status_code == 404
    )
    progress_json = _url("run-progress-json", sync_run_id=run.public_id)
    assert client.get(progress_json).status_code == 404
    assert SyncRun.unscoped.count() == 1


@pytest.mark.parametrize("persona", ["rep1", "manager", "vp"])
def test_non_admins_get_404(personas, connection, persona):
    client = login(Client(), getattr(personas, persona))

    assert client.get(_url("connections")).status_code == 404
    assert client.get(_connection_url("connection", connection)).status_code == 404
    assert client.post(_connection_url("sync-now", connection)).status_code == 404
    assert SyncRun.objects.count() == 0


# CRM data as of


def test_data_as_of_one_query_then_cached(
    personas, connection, django_assert_num_queries
):
    with django_assert_num_queries(1):
        first = selectors.data_as_of(personas.org)
    with django_assert_num_queries(0):
        second = selectors.data_as_of(personas.org)

    assert first == second
    assert first == {"synced_at": None}


def test_data_as_of_changed_count_one_query(
    personas, connection, django_assert_num_queries
):
    with django_assert_num_queries(1):
        value = selectors.data_as_of(personas.org, with_changed=True)

    # No calculation has finished, so there is nothing to compare with.
    assert value["calculated_at"] is None
    assert value["changed_since_calculation"] is None


def test_data_as_of_absent_without_connection(personas, in_org):
    assert selectors.data_as_of(personas.org) is None


def test_data_as_of_on_manager_pages(personas, connection):
    synced_at = dt.datetime(2024, 3, 5, 14, 30, tzinfo=dt.UTC)
    connection.last_synced_at = synced_at
    connection.save()
    client = login(Client(), personas.manager)
    pages = [
        reverse("measurement:team", kwargs={"org_slug": "acme"}),
        reverse("compensation:statements", kwargs={"org_slug": "acme"}),
        reverse("coaching:inbox", kwargs={"org_slug": "acme"}),
    ]

    for url in pages:
        html = client.get(url).content.decode()
        assert "CRM data as of" in html, url
        assert 'datetime="2024-03-05T14:30:00+00:00"' in html, url


def test_statements_flag_deals_changed_since_calculation(personas, connection):
    calculated = dt.datetime(2024, 3, 31, 18, 0, tzinfo=dt.UTC)
    CalculationRun.objects.create(
        period_start=dt.date(2024, 3, 1),
        period_end=dt.date(2024, 4, 1),
        status="done",
        finished_at=calculated,
    )
    stage = personas.stages["Won"]
    before = make_deal(personas.rep1, stage, "100.00", dt.date(2024, 3, 10))
    after = make_deal(personas.rep1, stage, "200.00", dt.date(2024, 3, 11))
    archived = make_deal(personas.rep1, stage, "300.00", dt.date(2024, 3, 12))
    Deal.objects.filter(pk=before.pk).update(updated_at=calculated)
    Deal.objects.filter(pk__in=[after.pk, archived.pk]).update(
        updated_at=calculated + dt.timedelta(minutes=1)
    )
    Deal.objects.filter(pk=archived.pk).update(archived_at=calculated)
    client = login(Client(), personas.admin)

    html = client.get(
        reverse("compensation:statements", kwargs={"org_slug": "acme"})
    ).content.decode()

    # Only the live deal updated after 18:00 counts: not the one at 18:00
    # exactly, nor the archived one.
    assert "1 deal changed since the last calculation (2024-03-31 18:00)" in html


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("ftp://127.0.0.1/", "use an https:// address"),
        ("https://127.0.0.1/", "not public (loopback)"),
        ("https://169.254.169.254/", "not public (link-local)"),
        ("https://10.0.0.1/", "not public (private)"),
    ],
)
def test_connect_rejects_unsafe_api_address(personas, admin, base_url, message):
    response = admin.post(_url("connect-hubspot"), _connect_form(base_url=base_url))

    assert message in response.content.decode()
    assert not CrmConnection.unscoped.exists()


def test_sync_refuses_address_no_longer_allowed(personas, admin, connection):
    # The organisation turned the private-address setting off after connecting.
    OutboundSettings.objects.update(allow_private_addresses=False)

    run = sync.sync_run_create(connection=connection, kind=SyncRun.Kind.FULL)
    with pytest.raises(sync.SyncFailed):
        sync.sync_run_execute(run=run)

    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED
    assert "The API address is not allowed" in run.failure
    assert "not public (loopback)" in run.failure
    # The admins hear of it.
    [notice] = Notification.objects.filter(event__type="sync.failed")
    assert notice.member == personas.admin
    assert notice.event.title.startswith(
        "CRM sync of HubSpot failed: SyncFailed: The API address is not allowed"
    )
