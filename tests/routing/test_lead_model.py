"""The predictive lead score: stored models, training rules, intake scoring, pages."""

from __future__ import annotations

import csv
import datetime as dt
import re
import uuid

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activity.models import Lead
from routing import model_services, predictive
from routing.engine.conditions import conditions_match
from routing.model_services import NotEnoughLeads, model_train, training_readiness
from routing.models import LeadModel, LeadQualification
from routing.predictive import LeakingFeatureError, roc_auc, split_by_hash
from routing.qualification_services import scoring_rule_create
from routing.tasks import (
    lead_model_train_all_task,
    lead_model_train_enqueue,
    lead_model_train_task,
)
from spm.celery import app as celery_app
from spm.models import AuditLog
from spm.services import api_key_create
from spm.tenancy import tenant_context
from tests.conftest import SHARED_DATA, login

LEADS_CSV = SHARED_DATA / "x-education-leads" / "Leads.csv"
CONVERTED = Lead.Status.CONVERTED
OLD = dt.timedelta(days=120)
MODEL_URL = "/o/acme/leads/model/"
TRAIN_URL = "/o/acme/leads/model/train/"


@pytest.fixture(autouse=True)
def _empty_model_cache():
    model_services.model_cache_clear()
    yield
    model_services.model_cache_clear()


@pytest.fixture
def api_key(personas):
    _, key = api_key_create(organization=personas.org, name="intake")
    return key


def _store_leads(org, rows, *, first_id=1, now=None, public_ids=None):
    """Store leads as intake leaves them, each row ``(intake, converted, age)``.

    Lead ``n`` (from ``first_id``) gets the public id ``UUID(int=n)`` unless
    ``public_ids`` gives them, so the hash split of a data set is the same
    on every run.
    """
    now = now or timezone.now()
    public_ids = public_ids or _uuids(first_id, len(rows))
    leads = []
    for offset, (_intake, converted, age) in enumerate(rows):
        received = now - age
        leads.append(
            Lead(
                organization=org,
                public_id=public_ids[offset],
                email=f"lead{first_id + offset}@example.test",
                status=CONVERTED if converted else Lead.Status.NEW,
                converted_at=received + dt.timedelta(days=5) if converted else None,
                received_at=received,
                created_at=received,
            )
        )
    Lead.objects.bulk_create(leads)
    LeadQualification.objects.bulk_create(
        LeadQualification(organization=org, lead=lead, intake=intake)
        for lead, (intake, _converted, _age) in zip(leads, rows, strict=True)
    )
    return leads


def _two_sources(count: int = 400) -> list[tuple[dict, bool, dt.timedelta]]:
    """Leads alternating webinar/ads: 3 in 4 webinar leads convert, 1 in 4 ads.

    ``region`` alone predicts nothing, because within each region half the
    leads convert. With the source it separates them further (webinar-south all
    convert, ads-south none).
    """
    rows = []
    for number in range(count):
        pair = number // 2
        webinar = number % 2 == 0
        converted = pair % 4 != 0 if webinar else pair % 4 == 0
        region = "north" if pair % 4 in (0, 1) else "south"
        intake = {"source": "webinar" if webinar else "ads", "region": region}
        rows.append((intake, converted, OLD))
    return rows


def _source_only(count: int = 400):
    return [
        ({"source": intake["source"]}, converted, age)
        for intake, converted, age in _two_sources(count)
    ]


def _uuids(first_id: int, count: int) -> list[uuid.UUID]:
    return [uuid.UUID(int=first_id + n) for n in range(count)]


def _keys(first_id: int, count: int) -> list[str]:
    return [str(public_id) for public_id in _uuids(first_id, count)]


# Labels and the minimum ---------------------------------------------------------


def test_readiness_counts_only_decided_leads(personas, in_org):
    org = personas.org
    now = timezone.now()
    day = dt.timedelta(days=1)
    rows = (
        [({"source": "ads"}, False, OLD)] * 150  # open, received 120 days ago
        + [({"source": "ads"}, False, 90 * day)]  # exactly 90 days: decided
        + [({"source": "ads"}, False, 90 * day - dt.timedelta(hours=1))]  # open
        + [({"source": "ads"}, True, 10 * day)] * 40  # converted recently
        + [({"source": "ads"}, False, 10 * day)] * 30  # open, recent
    )
    leads = _store_leads(org, rows, now=now)
    # 10 recent leads disqualified by sales count as not converted; 5 recent
    # leads with a conversion time but another status count as converted.
    sales_closed = _store_leads(
        org, [({}, False, 10 * day)] * 10, first_id=1000, now=now
    )
    Lead.objects.filter(pk__in=[lead.pk for lead in sales_closed]).update(
        status=Lead.Status.DISQUALIFIED
    )
    converted_at = _store_leads(
        org, [({}, False, 10 * day)] * 5, first_id=2000, now=now
    )
    Lead.objects.filter(pk__in=[lead.pk for lead in converted_at]).update(
        status=Lead.Status.WORKING, converted_at=now
    )
    # 20 old leads disqualified at intake are left out.
    intake_disqualified = _store_leads(
        org, [({}, False, OLD)] * 20, first_id=3000, now=now
    )
    LeadQualification.objects.filter(
        lead__in=[lead.pk for lead in intake_disqualified]
    ).update(status=LeadQualification.Status.DISQUALIFIED)
    assert len(leads) == 222

    readiness = training_readiness(now=now)

    # 150 + 1 old, 40 + 5 converted, 10 closed by sales.
    assert readiness.labelled == 206
    assert readiness.converted == 45
    assert readiness.not_converted == 161
    assert readiness.ready


def test_below_minimum_raises_and_stores_nothing(personas, in_org):
    rows = [({"source": "ads"}, n < 20, OLD) for n in range(199)]
    _store_leads(personas.org, rows)

    with pytest.raises(NotEnoughLeads) as error:
        model_train(organization=personas.org)

    assert "at least 200 leads" in str(error.value)
    assert "has 199: 20 converted and 179 not converted" in str(error.value)
    assert LeadModel.objects.count() == 0


def test_too_few_of_one_outcome_is_not_ready(personas, in_org):
    rows = [({"source": "ads"}, n < 19, OLD) for n in range(300)]
    _store_leads(personas.org, rows)

    readiness = training_readiness()

    assert readiness.labelled == 300
    assert readiness.converted == 19
    assert not readiness.ready
    with pytest.raises(NotEnoughLeads):
        model_train(organization=personas.org)


# Features -------------------------------------------------------------------------


def test_leaking_field_is_rejected(personas, in_org):
    rows = [
        ({"source": i["source"], "custom": {"Tags": "Will revert"}}, c, a)
        for i, c, a in _two_sources()
    ]
    _store_leads(personas.org, rows)

    with pytest.raises(LeakingFeatureError, match="'custom.Tags'"):
        model_train(organization=personas.org, fields=["source", "custom.Tags"])

    assert LeadModel.objects.count() == 0


def test_automatic_features_leave_out_leaks(personas, in_org):
    rows = []
    for number, (intake, converted, age) in enumerate(_source_only()):
        custom = {
            "last_activity": "Email Opened",
            "lead-quality": "High" if converted else "Low",
            "magazine": "No",
            "visitor_id": f"v{number}",
            "visits": number % 7,
        }
        rows.append(({**intake, "industry": "", "custom": custom}, converted, age))
    _store_leads(personas.org, rows)

    model = model_train(organization=personas.org)

    assert model.features == ["source", "custom.visits"]
    excluded = {row["field"]: row["reason"] for row in model.excluded_fields}
    leak = "filled in after contact, so it would leak the outcome"
    assert excluded["custom.last_activity"] == leak
    assert excluded["custom.lead-quality"] == leak
    assert excluded["custom.magazine"] == "the same value on every labelled lead"
    assert excluded["industry"] == "blank on every labelled lead"
    assert excluded["country"] == "blank on every labelled lead"
    assert excluded["custom.visitor_id"] == (
        "400 distinct values; a category field may have at most 100"
    )


# Training and its report ------------------------------------------------------------


def _two_group_auc(keys, records, outcomes) -> float:
    """Return the AUC of any model that ranks every webinar lead above every ads lead.

    Pairs of a converted and a not converted test lead: a converted webinar
    lead beats a not converted ads lead, a tie within one source counts half.
    """
    in_test = split_by_hash(keys, outcomes)
    counts = {(s, o): 0 for s in ("webinar", "ads") for o in (0, 1)}
    for record, outcome, test in zip(records, outcomes, in_test, strict=True):
        if test:
            counts[(record["source"], outcome)] += 1
    positives = counts[("webinar", 1)] + counts[("ads", 1)]
    negatives = counts[("webinar", 0)] + counts[("ads", 0)]
    wins = counts[("webinar", 1)] * counts[("ads", 0)]
    ties = (
        counts[("webinar", 1)] * counts[("webinar", 0)]
        + counts[("ads", 1)] * counts[("ads", 0)]
    )
    return (wins + ties / 2) / (positives * negatives)


def test_model_report_matches_two_group_auc(personas, in_org):
    rows = _source_only()
    _store_leads(personas.org, rows)

    model = model_train(organization=personas.org)

    records = [intake for intake, _c, _a in rows]
    outcomes = [int(converted) for _i, converted, _a in rows]
    assert model.version == 1
    assert model.status == LeadModel.Status.ACTIVE
    assert model.reason == f"AUC {model.auc:.3f}; no model was active"
    assert model.features == ["source"]
    # 200 converted and 200 not: a fifth of each is 40 + 40 test leads.
    assert model.test_rows == 80
    assert model.training_rows == 320
    assert model.converted_rows == 200
    assert model.auc == pytest.approx(_two_group_auc(_keys(1, 400), records, outcomes))
    assert 0.65 < model.auc < 0.85


def test_calibration_and_importance_are_stored(personas, in_org):
    rows = _source_only()
    _store_leads(personas.org, rows)

    model = model_train(organization=personas.org)

    calibration = model.calibration
    assert [row["decile"] for row in calibration] == list(range(1, 11))
    assert sum(row["count"] for row in calibration) == 80
    # 40 of the 80 test leads converted.
    converted = sum(row["observed"] * row["count"] for row in calibration)
    assert converted == pytest.approx(40)
    # The model gives two scores: ads leads fill the lowest deciles and
    # webinar leads the highest, near their conversion rates of 1/4 and 3/4.
    assert calibration[0]["predicted"] == pytest.approx(0.25, abs=0.05)
    assert calibration[-1]["predicted"] == pytest.approx(0.75, abs=0.05)
    assert [row["field"] for row in model.importance] == ["source"]
    assert model.importance[0]["drop"] > 0


def test_stored_artifact_scores_like_the_report(personas, in_org):
    rows = _source_only()
    _store_leads(personas.org, rows)
    model = model_train(organization=personas.org)

    stored = predictive.loads(bytes(LeadModel.objects.get(pk=model.pk).artifact))
    keys = _keys(1, 400)
    outcomes = [int(converted) for _i, converted, _a in rows]
    in_test = split_by_hash(keys, outcomes)
    test = [(rows[n][0], outcomes[n]) for n in range(400) if in_test[n]]

    scores = stored.probabilities([record for record, _o in test])
    assert roc_auc([o for _r, o in test], scores) == pytest.approx(model.auc)


def _x_education_rows():
    if not LEADS_CSV.exists():
        pytest.skip(f"X Education leads not found at {LEADS_CSV}")
    with LEADS_CSV.open(newline="", encoding="utf-8") as handle:
        source = list(csv.DictReader(handle))
    rows, public_ids = [], []
    for row in source:
        # Custom field names allow letters, digits, "_", "." and "-" only.
        custom = {
            re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_"): value
            for name, value in row.items()
            if name != "Lead Number"
        }
        rows.append(({"custom": custom}, row["Converted"] == "1", OLD))
        public_ids.append(uuid.UUID(row["Prospect ID"]))
    return rows, public_ids


def test_x_education_model(personas, in_org):
    rows, public_ids = _x_education_rows()
    _store_leads(personas.org, rows, public_ids=public_ids)

    model = model_train(organization=personas.org)

    # 9,240 leads, 3,561 converted: a fifth of each is 712 + 1,136 = 1,848.
    assert model.converted_rows == 3561
    assert model.test_rows == 1848
    assert model.training_rows == 9240 - 1848
    assert model.auc >= 0.85
    excluded = {row["field"]: row["reason"] for row in model.excluded_fields}
    leaking = {
        "custom.converted",
        "custom.tags",
        "custom.lead_quality",
        "custom.lead_profile",
        "custom.last_activity",
        "custom.last_notable_activity",
        "custom.asymmetrique_activity_index",
        "custom.asymmetrique_profile_index",
        "custom.asymmetrique_activity_score",
        "custom.asymmetrique_profile_score",
    }
    assert {f for f, reason in excluded.items() if "after contact" in reason} == leaking
    constant = {
        "custom.magazine",
        "custom.receive_more_updates_about_our_courses",
        "custom.update_me_on_supply_chain_content",
        "custom.get_updates_on_dm_content",
        "custom.i_agree_to_pay_the_amount_through_cheque",
    }
    assert {f for f, r in excluded.items() if "same value" in r} == constant
    assert excluded["custom.prospect_id"].startswith("9240 distinct values")
    # The 20 fields a lead has on arrival, as in the predictive module's test.
    assert len(model.features) == 20
    assert model.importance[0]["field"] == "custom.total_time_spent_on_website"
    assert sum(row["count"] for row in model.calibration) == 1848
    assert model.calibration[-1]["observed"] > 0.8
    assert model.calibration[0]["observed"] < 0.1


# Keep unless at least as good -------------------------------------------------------


def test_retrain_keeps_the_better_model(personas, in_org):
    org = personas.org
    _store_leads(org, _two_sources())

    weak = model_train(organization=org, fields=["region"])
    strong = model_train(organization=org, fields=["source", "region"])
    weak_again = model_train(organization=org, fields=["region"])
    strong_again = model_train(organization=org, fields=["source", "region"])

    for model in (weak, strong, weak_again, strong_again):
        model.refresh_from_db()
    assert strong.auc > weak.auc
    # Better: the region-only model (version 1) is retired.
    assert weak.status == LeadModel.Status.RETIRED
    assert strong.compared_auc == pytest.approx(weak.auc)
    # Worse on the same split: rejected, and version 2 stays active.
    assert weak_again.status == LeadModel.Status.REJECTED
    assert weak_again.compared_auc == pytest.approx(strong.auc)
    assert weak_again.reason == (
        f"AUC {weak_again.auc:.3f} < current {weak_again.compared_auc:.3f} "
        "(version 2) on the same split"
    )
    # Equal (the same data and features train the same model): replaces it.
    assert strong_again.auc == strong.auc
    assert strong_again.compared_auc == strong.auc
    assert strong_again.status == LeadModel.Status.ACTIVE
    assert strong.status == LeadModel.Status.RETIRED
    assert [m.version for m in LeadModel.objects.filter(status="active")] == [4]


def test_activation_and_rejection_are_audited(personas, in_org):
    org = personas.org
    _store_leads(org, _two_sources())
    first = model_train(
        organization=org, actor=personas.admin.user, fields=["source", "region"]
    )
    second = model_train(organization=org, fields=["region"])
    third = model_train(organization=org, fields=["source", "region"])

    entries = list(
        AuditLog.objects.filter(action__startswith="lead_model.").order_by("id")
    )

    assert [e.action for e in entries] == [
        "lead_model.activate",
        "lead_model.reject",
        "lead_model.activate",
    ]
    assert entries[0].actor == personas.admin.user
    assert entries[0].object_id == str(first.public_id)
    assert entries[0].old is None
    assert entries[0].new["features"] == ["source", "region"]
    assert entries[1].object_id == str(second.public_id)
    assert entries[2].old == {"version": 1, "auc": first.auc}
    assert entries[2].new["version"] == third.version == 3
    assert first.trained_by == personas.admin.user


def test_unloadable_active_model_is_replaced(personas, in_org):
    org = personas.org
    _store_leads(org, _source_only())
    broken = _stored_model(org, version=1, artifact=b"not a pickle")

    model = model_train(organization=org)

    broken.refresh_from_db()
    assert model.status == LeadModel.Status.ACTIVE
    assert model.compared_auc is None
    assert "the active version 1 could not be evaluated" in model.reason
    assert broken.status == LeadModel.Status.RETIRED


def _stored_model(org, *, version, status="active", artifact=b"", **values):
    return LeadModel.objects.create(
        organization=org,
        version=version,
        status=status,
        training_rows=8,
        test_rows=2,
        converted_rows=5,
        auc=0.5,
        artifact=artifact,
        **values,
    )


def test_one_active_model_per_organisation(personas, in_org):
    from django.db import IntegrityError, transaction

    _stored_model(personas.org, version=1)

    with pytest.raises(IntegrityError), transaction.atomic():
        _stored_model(personas.org, version=2)
    with tenant_context(personas.other_org):
        _stored_model(personas.other_org, version=1)
        assert LeadModel.objects.filter(status="active").count() == 1
    assert LeadModel.objects.filter(status="active").count() == 1


# Scoring at intake -----------------------------------------------------------------


def _post(client, key, body):
    response = client.post(
        "/api/v1/leads/",
        body,
        content_type="application/json",
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _qualification(public_id) -> LeadQualification:
    return LeadQualification.objects.get(lead__public_id=public_id)


@pytest.fixture
def source_model(personas, in_org):
    _store_leads(personas.org, _source_only())
    return model_train(organization=personas.org)


def test_new_lead_gets_the_active_models_score(client, personas, api_key, source_model):
    webinar = _qualification(
        _post(client, api_key, {"email": "w@co.example", "source": "webinar"})
    )
    ads = _qualification(
        _post(client, api_key, {"email": "a@co.example", "source": "ads"})
    )

    stored = predictive.loads(bytes(LeadModel.objects.get(pk=source_model.pk).artifact))
    [p_webinar, p_ads] = stored.probabilities(
        [{"source": "webinar"}, {"source": "ads"}]
    )
    assert webinar.model_version == ads.model_version == 1
    assert webinar.predicted_score == round(p_webinar * 100)
    assert ads.predicted_score == round(p_ads * 100)
    # Near the conversion rates of the training leads: 3 in 4 and 1 in 4.
    assert 70 <= webinar.predicted_score <= 80
    assert 20 <= ads.predicted_score <= 30


def test_model_is_loaded_once_per_process(client, personas, api_key, source_model):
    def artifact_reads(queries):
        return [q for q in queries if '"artifact"' in q["sql"]]

    with CaptureQueriesContext(connection) as first:
        _post(client, api_key, {"email": "one@co.example", "source": "webinar"})
    with CaptureQueriesContext(connection) as second:
        _post(client, api_key, {"email": "two@co.example", "source": "webinar"})

    assert len(artifact_reads(first.captured_queries)) == 1
    assert artifact_reads(second.captured_queries) == []
    # The first request also records the API key's first use.
    assert len(second) <= len(first) - 1


def test_new_version_is_used_for_the_next_lead(client, personas, api_key, source_model):
    _post(client, api_key, {"email": "one@co.example", "source": "ads"})
    model_train(organization=personas.org)

    lead_id = _post(client, api_key, {"email": "two@co.example", "source": "ads"})

    assert _qualification(lead_id).model_version == 2


def test_no_active_model_leaves_score_empty(client, personas, api_key, in_org):
    _stored_model(personas.org, version=1, status="rejected")

    qualification = _qualification(_post(client, api_key, {"email": "n@co.example"}))

    assert qualification.predicted_score is None
    assert qualification.model_version is None


def test_broken_model_does_not_stop_intake(client, personas, api_key, in_org):
    _stored_model(personas.org, version=1, artifact=b"not a pickle")

    first = _qualification(_post(client, api_key, {"email": "b1@co.example"}))
    with CaptureQueriesContext(connection) as second_queries:
        second = _qualification(_post(client, api_key, {"email": "b2@co.example"}))

    assert first.predicted_score is None
    assert second.predicted_score is None
    # The failed load is remembered, not retried for every lead.
    assert not [q for q in second_queries if '"artifact"' in q["sql"]]


def test_scoring_rule_reads_predicted_score(client, personas, api_key, source_model):
    scoring_rule_create(
        organization=personas.org,
        actor=None,
        name="likely to convert",
        field="predicted_score",
        operator="range",
        value={"min": 50},
        points=20,
    )

    webinar = _post(client, api_key, {"email": "w@co.example", "source": "webinar"})
    ads = _post(client, api_key, {"email": "a@co.example", "source": "ads"})

    assert _qualification(webinar).score == 20
    assert _qualification(ads).score == 0


def test_routing_condition_reads_predicted_score(personas, in_org):
    condition = [
        {"field": "predicted_score", "operator": "range", "value": {"min": "50"}}
    ]
    scored = Lead.objects.create(organization=personas.org, email="s@co.example")
    LeadQualification.objects.create(
        organization=personas.org, lead=scored, predicted_score=72, model_version=1
    )
    unscored = Lead.objects.create(organization=personas.org, email="u@co.example")

    assert conditions_match(condition, Lead.objects.get(pk=scored.pk)).matched
    outcome = conditions_match(condition, Lead.objects.get(pk=unscored.pk))
    assert not outcome.matched
    assert outcome.reason == "predicted_score range [50, …) failed: the lead has empty"


# Tasks -----------------------------------------------------------------------------


def test_train_task_trains_and_skips(personas):
    with tenant_context(personas.org):
        _store_leads(personas.org, _source_only())

    assert lead_model_train_task(personas.org.pk, personas.admin.user.pk) == "active"
    assert lead_model_train_task(personas.other_org.pk) == "skipped"
    with tenant_context(personas.org):
        model = LeadModel.objects.get()
    assert model.trained_by == personas.admin.user
    assert LeadModel.unscoped.count() == 1


def test_weekly_task_trains_only_ready_organisations(personas):
    with tenant_context(personas.org):
        _store_leads(personas.org, _source_only())
    with tenant_context(personas.other_org):
        _store_leads(personas.other_org, _source_only(100), first_id=5000)

    assert lead_model_train_all_task() == 1
    assert list(LeadModel.unscoped.values_list("organization", flat=True)) == [
        personas.org.pk
    ]


def test_training_is_weekly_on_the_calc_queue(personas, monkeypatch):
    entry = settings.CELERY_BEAT_SCHEDULE["routing-lead-model-train"]
    assert entry["task"] == lead_model_train_all_task.name
    assert entry["schedule"] == 7 * 24 * 3600
    assert entry["options"] == {"queue": "calc"}
    sent = []
    monkeypatch.setattr(
        lead_model_train_task,
        "apply_async",
        lambda args, **options: sent.append((args, options)),
    )

    lead_model_train_enqueue(personas.org.pk, 7)

    assert sent == [((personas.org.pk, 7), {"queue": "calc"})]
    router = celery_app.amqp.router
    # Without the queue option, CELERY_TASK_ROUTES would pick "routing".
    assert router.route({}, lead_model_train_task.name)["queue"].name == "routing"
    assert (
        router.route({"queue": "calc"}, lead_model_train_task.name)["queue"].name
        == "calc"
    )


# Pages -------------------------------------------------------------------------------


def test_model_page_shows_the_report(client, personas, source_model):
    login(client, personas.manager)

    response = client.get(MODEL_URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Version 1: active" in page
    assert f'<dd id="auc">{source_model.auc:.3f}</dd>' in page
    assert "320 to train, 80 to test (200 converted in all)" in page
    assert page.count("<tr><td>") >= 10 + 1  # ten deciles, one field
    assert "<td>source</td>" in page
    assert "blank on every labelled lead" in page
    assert 'id="train-now"' not in page


def test_model_page_for_admin_has_train_button(client, personas, source_model):
    login(client, personas.admin)

    page = client.get(MODEL_URL).content.decode()

    assert 'id="train-now"' in page
    assert "400 leads with a known outcome: 200 converted, 200 not converted" in page


def test_model_page_is_404_for_reps(client, personas, source_model):
    login(client, personas.rep1)

    assert client.get(MODEL_URL).status_code == 404


def test_model_page_without_a_model(client, personas, in_org):
    login(client, personas.admin)

    page = client.get(MODEL_URL).content.decode()

    assert "No active model" in page
    assert "No model trained yet." in page
    assert "This organisation has 0: 0 converted and 0 not converted." in page


def test_version_page_of_rejected_model(client, personas, in_org):
    rejected = _stored_model(
        personas.org, version=3, status="rejected", reason="AUC 0.600 < current 0.700"
    )
    login(client, personas.manager)

    page = client.get(f"{MODEL_URL}{rejected.public_id}/").content.decode()

    assert "Version 3: rejected" in page
    assert "AUC 0.600 &lt; current 0.700" in page


def test_other_organisations_model_is_404(client, personas):
    with tenant_context(personas.other_org):
        other = _stored_model(personas.other_org, version=1, reason="GLOBEX-ONLY")
    login(client, personas.admin)

    assert client.get(f"{MODEL_URL}{other.public_id}/").status_code == 404
    assert "GLOBEX-ONLY" not in client.get(MODEL_URL).content.decode()


def test_model_page_query_count(
    client, personas, source_model, django_assert_max_num_queries
):
    for version in range(2, 30):
        _stored_model(personas.org, version=version, status="rejected")
    login(client, personas.admin)
    client.get(MODEL_URL)

    # Session, user and membership (3); the active model, the history and
    # the labelled-lead counts (3); the navigation bar's own reads (3).
    with django_assert_max_num_queries(9):
        response = client.get(MODEL_URL)
    assert response.status_code == 200


def test_train_now_trains_inline_in_tests(client, personas, in_org):
    _store_leads(personas.org, _source_only())
    login(client, personas.admin)

    response = client.post(TRAIN_URL, follow=True)

    assert response.redirect_chain == [(MODEL_URL, 302)]
    model = LeadModel.objects.get()
    assert model.trained_by == personas.admin.user
    assert "Training queued." in response.content.decode()


def test_train_now_below_minimum_shows_why(client, personas, in_org):
    login(client, personas.admin)

    response = client.post(TRAIN_URL, follow=True)

    assert "Training needs at least 200 leads" in response.content.decode()
    assert LeadModel.objects.count() == 0


@pytest.mark.parametrize("member", ["manager", "rep1"])
def test_train_now_is_admin_only(client, personas, in_org, member):
    _store_leads(personas.org, _source_only())
    login(client, getattr(personas, member))

    assert client.post(TRAIN_URL).status_code == 404
    assert LeadModel.objects.count() == 0


def test_train_now_get_is_405(client, personas):
    login(client, personas.admin)

    assert client.get(TRAIN_URL).status_code == 405


def test_lead_page_shows_predicted_score(client, personas, api_key, source_model):
    lead_id = _post(client, api_key, {"email": "w@co.example", "source": "webinar"})
    score = _qualification(lead_id).predicted_score
    login(client, personas.manager)

    page = client.get(f"/o/acme/leads/{lead_id}/").content.decode()

    assert f"{score:.0f}% (model version 1)" in page
