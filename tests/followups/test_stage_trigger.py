"""The stage trigger fires when a CSV import or a CRM sync moves a deal."""

from __future__ import annotations

import datetime as dt

from activity.models import Deal, Stage
from followups.models import Enrollment
from integrations.models import SyncRun
from spm.tenancy import tenant_context
from tests.activity.conftest import run_import
from tests.followups.conftest import make_sequence
from tests.integrations import conftest as integration
from tests.integrations.conftest import make_connector, run_sync, seed_portal

TASK_ONE = [(0, "business_days", "task")]

# The fake HubSpot server (127.0.0.1) and its connection, from the sync tests.
_credentials_key = integration._credentials_key
hubspot = integration.hubspot
clock = integration.clock
connection = integration.connection
loopback_allowed = integration.loopback_allowed


def deals_csv(*rows: str) -> dict[str, bytes]:
    lines = ["external_id,name,owner,stage", *rows]
    return {"deals.csv": ("\n".join(lines) + "\n").encode()}


def test_import_stage_change_enrols_deal(personas):
    org = personas.org
    run_import(
        org,
        deals_csv(
            "E1,Moves,Rita Rep,Prospecting",
            "E2,Stays,Rita Rep,Prospecting",
            "E3,Filtered out,Rob Rep,Prospecting",
        ),
    )
    with tenant_context(org):
        sequence = make_sequence(
            org,
            TASK_ONE,
            trigger="deal_enters_stage",
            trigger_stage=personas.stages["Engaging"],
            filters={"owners": [personas.rep1.pk]},
        )
        paused = make_sequence(
            org,
            TASK_ONE,
            name="Paused",
            trigger="deal_enters_stage",
            trigger_stage=personas.stages["Engaging"],
            is_active=False,
        )

    # E1 moves to Engaging and E2 is unchanged. E3 moves to Engaging too, but
    # the sequence takes only Rita's deals. E4 is new in Engaging: a first
    # import loads history, so E4 is not enrolled. Only E1 enters, and only
    # the active sequence.
    job = run_import(
        org,
        deals_csv(
            "E1,Moves,Rita Rep,Engaging",
            "E2,Stays,Rita Rep,Prospecting",
            "E3,Filtered out,Rob Rep,Engaging",
            "E4,New,Rob Rep,Engaging",
        ),
    )

    assert job.counts["deals"]["updated"] == 2
    assert job.counts["deals"]["created"] == 1
    with tenant_context(org):
        (enrollment,) = Enrollment.objects.select_related("deal").all()
        moved = Deal.objects.get(external_id="E1")
    assert enrollment.sequence == sequence
    assert enrollment.deal == moved
    assert enrollment.member == personas.rep1
    assert enrollment.stage_at_enrollment == personas.stages["Engaging"]
    assert enrollment.enrolled_at == moved.stage_changed_at
    assert not Enrollment.unscoped.filter(sequence=paused).exists()


def test_import_without_stage_sequences_enrols_nothing(personas):
    org = personas.org
    run_import(org, deals_csv("E1,Moves,Rita Rep,Prospecting"))

    run_import(org, deals_csv("E1,Moves,Rita Rep,Engaging"))

    assert Enrollment.unscoped.count() == 0


def test_crm_sync_stage_change_enrols_deal(personas, hubspot, clock, connection):
    seed_portal(hubspot)
    hubspot.update("deals", "302", dealstage="appointmentscheduled")
    run_sync(connection, make_connector(hubspot, clock))
    contract_sent = Stage.objects.get(external_id="contractsent")
    sequence = make_sequence(
        personas.org,
        TASK_ONE,
        trigger="deal_enters_stage",
        trigger_stage=contract_sent,
    )
    changed_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(
        minutes=1
    )
    # Deal 302 (Rob's) moves into Contract Sent. Deal 306 is new there, and a
    # deal seen for the first time is not enrolled.
    hubspot.update("deals", "302", modified_at=changed_at, dealstage="contractsent")
    hubspot.add(
        "deals",
        "306",
        modified_at=changed_at,
        dealname="Fresh",
        amount="100",
        pipeline="default",
        dealstage="contractsent",
        hubspot_owner_id="1",
    )

    run = run_sync(connection, make_connector(hubspot, clock), SyncRun.Kind.INCREMENTAL)

    assert run.counts["deals"]["created"] == 1
    assert run.counts["deals"]["updated"] == 1
    (enrollment,) = Enrollment.objects.select_related("deal").all()
    assert enrollment.sequence == sequence
    assert enrollment.deal.external_id == "302"
    assert enrollment.member == personas.rep2
    assert enrollment.stage_at_enrollment == contract_sent
    assert enrollment.next_step == 1
