"""Write-back to Salesforce and Pipedrive, its Celery retries and the manual retry.

The task runs eagerly, so a Celery retry runs at once in the test. The
``countdowns`` fixture records the delay each retry requested.
"""

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from activity.models import Lead
from integrations import sync, tasks, writeback
from integrations.connectors.pipedrive import PipedriveConnector
from integrations.connectors.ratelimit import RollingWindowLimiter
from integrations.connectors.salesforce import SalesforceConnector
from integrations.models import CrmWriteback, OwnerMapping
from routing.models import Assignment
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.conftest import login
from tests.integrations.fake_hubspot import SimulatedClock
from tests.integrations.fake_pipedrive import FakePipedrive
from tests.integrations.fake_salesforce import FakeSalesforce

ROUTED_AT = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
BEFORE = ROUTED_AT - dt.timedelta(days=1)
AFTER = ROUTED_AT + dt.timedelta(minutes=5)
EMAIL = "dana@initech.test"

CLIENT_ID = "3MVG9-test-consumer-key"
CLIENT_SECRET = "sf-test-consumer-secret"
REFRESH_TOKEN = "5Aep861-test-refresh-token"
SF_RITA = "005000000000001AAA"
SF_ROB = "005000000000002AAA"
SF_GUS = "005000000000003AAA"
SF_LEAD_PATH = "/services/data/v59.0/sobjects/Lead/{}"

PD_TOKEN = "pd-test-api-token-4f1c9e"
PD_PERSON = 201


@pytest.fixture(autouse=True)
def eager_retries(monkeypatch):
    """Run Celery retries of eager tasks at once instead of raising ``Retry``."""
    monkeypatch.setitem(
        tasks.crm_writeback_task.app.conf, "task_eager_propagates", False
    )


@pytest.fixture
def clock():
    return SimulatedClock()


@pytest.fixture
def salesforce(clock):
    fake = FakeSalesforce(clock=clock).start()
    fake.add_client(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN)
    fake.add_user(SF_RITA, "rita.rep@acme.test", "Rita", "Rep")
    fake.add_user(SF_ROB, "rob.rep@acme.test", "Rob", "Rep")
    fake.add_user(SF_GUS, "gus@elsewhere.test", "Gus", "Ghost")
    yield fake
    fake.stop()


@pytest.fixture
def pipedrive(clock):
    fake = FakePipedrive(limit=(20, 2.0)).start()
    fake.add_token(PD_TOKEN, clock)
    fake.add_user(1, "rita.rep@acme.test", "Rita Rep")
    fake.add_user(2, "rob.rep@acme.test", "Rob Rep")
    fake.add_user(3, "gus@elsewhere.test", "Gus Ghost")
    yield fake
    fake.stop()


def map_owners(personas, connection, rita: str, rob: str, gus: str) -> None:
    for owner_id, name, member in (
        (rita, "Rita Rep", personas.rep1),
        (rob, "Rob Rep", personas.rep2),
        (gus, "Gus Ghost", None),
    ):
        OwnerMapping.objects.create(
            connection=connection, owner_id=owner_id, name=name, membership=member
        )


@pytest.fixture
def sf_connection(personas, salesforce, clock, in_org, monkeypatch):
    connection = sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="salesforce",
        name="Salesforce",
        base_url=salesforce.url,
        credentials={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
        },
    )
    map_owners(personas, connection, SF_RITA, SF_ROB, SF_GUS)

    def connector_for(connection):
        return SalesforceConnector(
            login_url=salesforce.url,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            refresh_token=REFRESH_TOKEN,
            clock=clock,
            limiter=RollingWindowLimiter(20, 1.0, clock),
        )

    monkeypatch.setattr(writeback, "connector_for", connector_for)
    return connection


@pytest.fixture
def pd_connection(personas, pipedrive, clock, in_org, monkeypatch):
    connection = sync.connection_create(
        organization=personas.org,
        actor=None,
        provider="pipedrive",
        name="Pipedrive",
        base_url=pipedrive.url,
        credentials={"api_token": PD_TOKEN},
    )
    map_owners(personas, connection, "1", "2", "3")

    def connector_for(connection):
        return PipedriveConnector(
            base_url=pipedrive.url,
            api_token=PD_TOKEN,
            clock=clock,
            limiter=RollingWindowLimiter(20, 2.0, clock),
        )

    monkeypatch.setattr(writeback, "connector_for", connector_for)
    return connection


@pytest.fixture
def countdowns(monkeypatch) -> list[float]:
    """Record the countdown of every Celery retry the write-back task requests."""
    asked: list[float] = []
    task = tasks.crm_writeback_task
    original = task.retry

    def retry(*args, **kwargs):
        asked.append(kwargs["countdown"])
        return original(*args, **kwargs)

    monkeypatch.setattr(task, "retry", retry)
    return asked


def assign(org, member, email=EMAIL) -> Assignment:
    with tenant_context(org):
        lead = Lead.objects.create(
            first_name="Dana",
            last_name="Diaz",
            email=email,
            company="Initech",
            received_at=ROUTED_AT,
            created_at=ROUTED_AT,
            routing_status=Lead.RoutingStatus.ASSIGNED,
            owner=member,
            assigned_at=ROUTED_AT,
        )
        return Assignment.objects.create(
            lead=lead,
            outcome=Assignment.Outcome.ASSIGNED,
            member=member,
            received_at=ROUTED_AT,
            routed_at=ROUTED_AT,
        )


def run_task(assignment: Assignment) -> None:
    tasks.crm_writeback_task.delay(assignment.organization_id, assignment.pk)


def add_person(pipedrive, owner_id: int, updated_at: dt.datetime) -> None:
    pipedrive.add(
        "person",
        PD_PERSON,
        at=updated_at,
        name="Dana Diaz",
        email=[{"label": "work", "value": "DANA@initech.test", "primary": True}],
        owner_id=owner_id,
    )


def audit_entries(action: str) -> list[AuditLog]:
    return list(AuditLog.objects.filter(action=action).order_by("pk"))


def record_of(assignment: Assignment) -> CrmWriteback:
    return CrmWriteback.objects.get(assignment=assignment)


# Owner written


def test_salesforce_lead_owner_written(personas, salesforce, sf_connection):
    lead_id = salesforce.add_lead(EMAIL, SF_ROB, BEFORE)
    assignment = assign(personas.org, personas.rep1)

    run_task(assignment)

    assert salesforce.objects["Lead"][lead_id]["OwnerId"] == SF_RITA
    assert [r.path for r in salesforce.writes()] == [SF_LEAD_PATH.format(lead_id)]
    [entry] = audit_entries(writeback.UPDATED)
    assert entry.old == {"lead_id": lead_id, "owner_id": SF_ROB}
    assert entry.new["lead_id"] == lead_id
    assert entry.new["owner_id"] == SF_RITA
    assert entry.new["connection"] == "Salesforce"
    # The token request, the SOQL query and the PATCH.
    assert entry.new["api_calls"] == 3
    assert entry.object_id == str(assignment.lead.public_id)
    record = record_of(assignment)
    assert record.status == CrmWriteback.Status.DONE
    assert record.result == writeback.UPDATED
    assert record.attempts == 1


def test_pipedrive_person_owner_written(personas, pipedrive, pd_connection):
    add_person(pipedrive, owner_id=2, updated_at=BEFORE)
    assignment = assign(personas.org, personas.rep1)

    run_task(assignment)

    assert pipedrive.items["person"][PD_PERSON]["owner_id"] == 1
    assert [(r.method, r.path) for r in pipedrive.requests(PD_TOKEN)] == [
        ("GET", "/v1/persons/search"),
        ("GET", f"/v1/persons/{PD_PERSON}"),
        ("PUT", f"/v1/persons/{PD_PERSON}"),
    ]
    [entry] = audit_entries(writeback.UPDATED)
    assert entry.old == {"person_id": str(PD_PERSON), "owner_id": "2"}
    assert entry.new["owner_id"] == "1"
    assert entry.new["api_calls"] == 3
    assert record_of(assignment).status == CrmWriteback.Status.DONE


def test_salesforce_same_owner_sends_no_patch(personas, salesforce, sf_connection):
    salesforce.add_lead(EMAIL, SF_RITA, AFTER)
    assignment = assign(personas.org, personas.rep1)

    run_task(assignment)

    assert salesforce.writes() == []
    assert len(audit_entries(writeback.UNCHANGED)) == 1


# The CRM changed the owner after routing


def test_salesforce_newer_owner_kept(personas, salesforce, sf_connection):
    lead_id = salesforce.add_lead(EMAIL, SF_GUS, AFTER)
    assignment = assign(personas.org, personas.rep1)

    run_task(assignment)

    assert salesforce.objects["Lead"][lead_id]["OwnerId"] == SF_GUS
    assert salesforce.requests(status=204) == []
    [entry] = audit_entries(writeback.CRM_NEWER)
    assert entry.old["owner_id"] == SF_GUS
    assert entry.old["owner_name"] == "Gus Ghost"
    assert entry.old["changed_at"] == "2024-05-01T12:05:00+00:00"
    assert entry.new["owner_id"] == SF_RITA
    assert entry.new["owner_name"] == "Rita Rep"
    assert entry.new["routed_at"] == "2024-05-01T12:00:00+00:00"
    assert record_of(assignment).result == writeback.CRM_NEWER


def test_pipedrive_newer_owner_kept(personas, pipedrive, pd_connection):
    add_person(pipedrive, owner_id=3, updated_at=AFTER)
    assignment = assign(personas.org, personas.rep1)

    run_task(assignment)

    assert pipedrive.items["person"][PD_PERSON]["owner_id"] == 3
    assert pipedrive.writes() == []
    [entry] = audit_entries(writeback.CRM_NEWER)
    assert entry.old["person_id"] == str(PD_PERSON)
    assert entry.old["owner_name"] == "Gus Ghost"
    assert entry.old["changed_at"] == "2024-05-01T12:05:00+00:00"
    assert entry.new["owner_id"] == "1"


# Retries


def test_server_errors_retry_then_write_once(
    personas, salesforce, sf_connection, countdowns
):
    lead_id = salesforce.add_lead(EMAIL, SF_ROB, BEFORE)
    salesforce.fail_writes(503, count=2)
    assignment = assign(personas.org, personas.rep1)

    run_task(assignment)

    patches = [r for r in salesforce.log if r.method == "PATCH"]
    assert [r.status for r in patches] == [503, 503, 204]
    assert len(salesforce.writes()) == 1
    assert salesforce.objects["Lead"][lead_id]["OwnerId"] == SF_RITA
    # No Retry-After: 30 s, then 60 s.
    assert countdowns == [30.0, 60.0]
    assert len(audit_entries(writeback.UPDATED)) == 1
    assert audit_entries(writeback.FAILED) == []
    record = record_of(assignment)
    assert record.status == CrmWriteback.Status.DONE
    assert record.attempts == 3
    assert CrmWriteback.objects.count() == 1


def test_rate_limit_honours_retry_after(personas, pipedrive, pd_connection, countdowns):
    add_person(pipedrive, owner_id=2, updated_at=BEFORE)
    pipedrive.fail_writes(429, count=1, retry_after=7)
    assignment = assign(personas.org, personas.rep1)

    run_task(assignment)

    assert countdowns == [7.0]
    assert [r.status for r in pipedrive.requests(PD_TOKEN) if r.method == "PUT"] == [
        429,
        200,
    ]
    assert pipedrive.items["person"][PD_PERSON]["owner_id"] == 1
    assert record_of(assignment).attempts == 2


def test_retries_exhausted_marks_failed(
    personas, salesforce, sf_connection, countdowns
):
    salesforce.add_lead(EMAIL, SF_ROB, BEFORE)
    salesforce.fail_writes(503, count=writeback.MAX_ATTEMPTS)
    assignment = assign(personas.org, personas.rep1)

    run_task(assignment)

    patches = [r for r in salesforce.log if r.method == "PATCH"]
    assert len(patches) == 6
    assert countdowns == [30.0, 60.0, 120.0, 240.0, 480.0]
    [entry] = audit_entries(writeback.FAILED)
    assert "failed 6 times" in entry.new["error"]
    assert "HTTP 503" in entry.new["error"]
    assert entry.new["attempts"] == 6
    record = record_of(assignment)
    assert record.status == CrmWriteback.Status.FAILED
    assert record.error == entry.new["error"]


def test_bad_request_fails_at_once(personas, salesforce, sf_connection, countdowns):
    """A 400 is not retried, and the audit entry carries Salesforce's message."""
    salesforce.add_lead(EMAIL, SF_ROB, BEFORE)
    OwnerMapping.objects.filter(owner_id=SF_RITA).update(owner_id="005000000000009AAA")
    assignment = assign(personas.org, personas.rep1)

    run_task(assignment)

    assert countdowns == []
    assert [r.status for r in salesforce.log if r.method == "PATCH"] == [400]
    [entry] = audit_entries(writeback.FAILED)
    assert "HTTP 400" in entry.new["error"]
    assert "FIELD_INTEGRITY_EXCEPTION" in entry.new["error"]
    assert "005000000000009AAA" in entry.new["error"]
    assert record_of(assignment).status == CrmWriteback.Status.FAILED


def test_task_delivered_twice_writes_once(personas, salesforce, sf_connection):
    salesforce.add_lead(EMAIL, SF_ROB, BEFORE)
    assignment = assign(personas.org, personas.rep1)

    run_task(assignment)
    run_task(assignment)

    assert len(salesforce.writes()) == 1
    assert len(audit_entries(writeback.UPDATED)) == 1
    assert record_of(assignment).attempts == 1


def test_missing_lead_fails_with_hint(personas, salesforce, sf_connection):
    assignment = assign(personas.org, personas.rep1)

    run_task(assignment)

    [entry] = audit_entries(writeback.FAILED)
    assert entry.new["error"] == (
        f"Salesforce has no Lead with email {EMAIL}. Create it in Salesforce, "
        "then retry the write-back from the audit log."
    )
    assert salesforce.writes() == []


def test_retry_delay_caps_retry_after():
    assert writeback.retry_delay(1, None) == 30.0
    assert writeback.retry_delay(4, None) == 240.0
    assert writeback.retry_delay(2, 0.5) == 0.5
    assert writeback.retry_delay(1, 86_400) == writeback.RETRY_MAX_SECONDS


# Manual retry from the audit log


def retry_url(record: CrmWriteback, org_slug: str = "acme") -> str:
    return reverse(
        "integrations:writeback-retry",
        kwargs={"org_slug": org_slug, "writeback_id": record.public_id},
    )


@pytest.fixture
def failed(personas, salesforce, sf_connection) -> CrmWriteback:
    """A write-back that failed because the Lead was missing in Salesforce."""
    assignment = assign(personas.org, personas.rep1)
    run_task(assignment)
    record = record_of(assignment)
    assert record.status == CrmWriteback.Status.FAILED
    return record


def test_manual_retry_writes_owner(
    personas, salesforce, failed, django_capture_on_commit_callbacks
):
    lead_id = salesforce.add_lead(EMAIL, SF_ROB, BEFORE)
    client = login(Client(), personas.admin)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(retry_url(failed))

    assert response.status_code == 302
    assert response.url == reverse("spm:audit-log", kwargs={"org_slug": "acme"})
    assert salesforce.objects["Lead"][lead_id]["OwnerId"] == SF_RITA
    failed.refresh_from_db()
    assert failed.status == CrmWriteback.Status.DONE
    assert failed.attempts == 1
    [requested] = audit_entries(writeback.RETRY_REQUESTED)
    assert requested.actor == personas.admin.user
    assert requested.old["status"] == "failed"
    assert requested.new["writeback_id"] == str(failed.public_id)
    assert len(audit_entries(writeback.UPDATED)) == 1


def test_audit_log_offers_retry_while_failed(
    personas, salesforce, failed, django_capture_on_commit_callbacks
):
    client = login(Client(), personas.admin)
    audit_url = reverse("spm:audit-log", kwargs={"org_slug": "acme"})

    page = client.get(audit_url).content.decode()
    assert retry_url(failed) in page
    assert "Retry write-back" in page

    salesforce.add_lead(EMAIL, SF_ROB, BEFORE)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(retry_url(failed))
    page = client.get(audit_url).content.decode()
    assert "Retry write-back" not in page


def test_manual_retry_of_done_is_rejected(
    personas, salesforce, sf_connection, django_capture_on_commit_callbacks
):
    salesforce.add_lead(EMAIL, SF_ROB, BEFORE)
    assignment = assign(personas.org, personas.rep1)
    run_task(assignment)
    record = record_of(assignment)
    client = login(Client(), personas.admin)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(retry_url(record), follow=True)

    assert callbacks == []
    assert "cannot be retried" in response.content.decode()
    assert audit_entries(writeback.RETRY_REQUESTED) == []
    assert len(salesforce.writes()) == 1


@pytest.mark.parametrize("member", ["rep1", "manager", "vp"])
def test_manual_retry_404_for_non_admin(personas, failed, member):
    client = login(Client(), getattr(personas, member))

    response = client.post(retry_url(failed))

    assert response.status_code == 404
    failed.refresh_from_db()
    assert failed.status == CrmWriteback.Status.FAILED
    assert audit_entries(writeback.RETRY_REQUESTED) == []


def test_manual_retry_404_for_other_org(personas, failed):
    outsider = login(Client(), personas.outsider)

    own_slug = outsider.post(retry_url(failed, org_slug="globex"))
    other_slug = outsider.post(retry_url(failed))

    assert own_slug.status_code == 404
    assert other_slug.status_code == 404
    failed.refresh_from_db()
    assert failed.status == CrmWriteback.Status.FAILED


def test_manual_retry_rejects_get(personas, failed):
    client = login(Client(), personas.admin)

    assert client.get(retry_url(failed)).status_code == 405
