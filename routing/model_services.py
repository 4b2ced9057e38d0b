"""The predictive lead score: train and store models, and score received leads.

Labels. A lead counts as converted when its status is "converted" or it
has a conversion time. It counts as not converted when sales disqualified
it, or when it was received at least ``OUTCOME_AFTER_DAYS`` days ago and
has not converted. Other leads are still open and have no label yet.
Leads that qualification disqualified at intake are left out, because
sales never worked them and their outcome is no evidence about the lead.

Features. A model reads only the lead's intake snapshot
(``LeadQualification.intake``), never its current fields, and never a
field that ``routing.predictive.is_post_contact`` names as filled in
after contact.

Replacement. ``model_train`` compares the new model with the active one
on the new model's test split and activates it only when its AUC is at
least as high. Otherwise the new model is stored as rejected.

Scoring. ``lead_predict`` runs at intake for every lead. Each process keeps
the unpickled active model per (organisation id, version), so a lead costs
one small query for the active version and never loads the artifact again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Case, Count, Max, Q, Value, When
from django.utils import timezone

from activity.models import Lead
from routing import predictive
from routing.config_cache import cached
from routing.models import LeadModel, LeadQualification
from spm.models import Organization, User
from spm.services import audit_log_write

logger = logging.getLogger(__name__)

# Fewest labelled leads to train on, and fewest of each outcome. With 20
# of each, the test split (a fifth of each outcome) contains at least 4
# converted and 4 not converted leads.
MIN_LABELLED_LEADS = 200
MIN_PER_OUTCOME = 20
# An open lead received this many days ago or more counts as not converted.
OUTCOME_AFTER_DAYS = 90
# A text field with more distinct values than this is an identifier or free
# text, not a category, so it is not used.
MAX_CATEGORIES = 100
# Intake fields that may be features, besides the custom fields. Names,
# email, phone, company and domain identify the lead rather than describe it.
STANDARD_CATEGORICAL = ("country", "region", "industry", "source")
STANDARD_NUMERIC = ("company_size", "estimated_value")
ACTIVE = LeadModel.Status.ACTIVE


class NotEnoughLeads(ValueError):
    """The organisation has too few labelled leads to train a model."""


# Labelled leads -----------------------------------------------------------------


def _converted_q() -> Q:
    return Q(lead__status=Lead.Status.CONVERTED) | Q(lead__converted_at__isnull=False)


def _labelled_q(now: dt.datetime) -> Q:
    decided_before = now - dt.timedelta(days=OUTCOME_AFTER_DAYS)
    return (
        _converted_q()
        | Q(lead__status=Lead.Status.DISQUALIFIED)
        | Q(lead__received_at__lte=decided_before)
    )


def _labelled_qualifications(now: dt.datetime):
    return LeadQualification.objects.exclude(
        status=LeadQualification.Status.DISQUALIFIED
    ).filter(_labelled_q(now))


@dataclass(frozen=True)
class Readiness:
    """How many labelled leads the organisation has, against the minimum."""

    labelled: int
    converted: int

    @property
    def not_converted(self) -> int:
        return self.labelled - self.converted

    @property
    def ready(self) -> bool:
        return (
            self.labelled >= MIN_LABELLED_LEADS
            and min(self.converted, self.not_converted) >= MIN_PER_OUTCOME
        )

    @property
    def message(self) -> str:
        return (
            f"Training needs at least {MIN_LABELLED_LEADS} leads with a known "
            f"outcome, {MIN_PER_OUTCOME} or more of them converted and "
            f"{MIN_PER_OUTCOME} or more not converted. This organisation has "
            f"{self.labelled}: {self.converted} converted and "
            f"{self.not_converted} not converted."
        )


def training_readiness(*, now: dt.datetime | None = None) -> Readiness:
    """Count the current organisation's labelled leads, in one query."""
    counts = _labelled_qualifications(now or timezone.now()).aggregate(
        labelled=Count("pk"), converted=Count("pk", filter=_converted_q())
    )
    return Readiness(counts["labelled"], counts["converted"])


def training_record(intake: dict) -> dict:
    """Return the intake snapshot with each custom field as ``custom.<name>``."""
    record = {key: value for key, value in intake.items() if key != "custom"}
    for name, value in (intake.get("custom") or {}).items():
        record[f"custom.{name}"] = value
    return record


@dataclass(frozen=True)
class LabelledLeads:
    keys: list[str]
    records: list[dict]
    outcomes: list[int]

    @property
    def readiness(self) -> Readiness:
        return Readiness(len(self.outcomes), sum(self.outcomes))


def labelled_leads(*, now: dt.datetime | None = None) -> LabelledLeads:
    """Return the current organisation's labelled leads, keyed by public id.

    NOTE: every labelled lead's snapshot is loaded into memory at once,
    which suits tens of thousands of leads, not millions.
    """
    rows = (
        _labelled_qualifications(now or timezone.now())
        .annotate(converted=Case(When(_converted_q(), then=Value(1)), default=Value(0)))
        .order_by("lead_id")
        .values_list("lead__public_id", "intake", "converted")
    )
    keys, records, outcomes = [], [], []
    for public_id, intake, converted in rows:
        keys.append(str(public_id))
        records.append(training_record(intake or {}))
        outcomes.append(1 if converted else 0)
    return LabelledLeads(keys, records, outcomes)


# Features -----------------------------------------------------------------------


def _present(value) -> str | None:
    """Return the value as compared text, or None when the form left it blank."""
    if value is None:
        return None
    text = str(value).strip().lower()
    return None if text in predictive.BLANK_VALUES else text


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _kind(name: str, records: list[dict]) -> tuple[str, str]:
    """Return ("categorical" or "numeric", "") or ("", why the field is left out)."""
    if predictive.is_post_contact(name):
        return "", "filled in after contact, so it would leak the outcome"
    present = [text for record in records if (text := _present(record.get(name)))]
    if not present:
        return "", "blank on every labelled lead"
    distinct = set(present)
    if len(distinct) == 1 and len(present) == len(records):
        return "", "the same value on every labelled lead"
    if all(_is_number(text) for text in distinct):
        return "numeric", ""
    if len(distinct) > MAX_CATEGORIES:
        return "", (
            f"{len(distinct)} distinct values; a category field may have "
            f"at most {MAX_CATEGORIES}"
        )
    return "categorical", ""


def feature_spec(
    records: list[dict], fields: list[str] | None = None
) -> tuple[predictive.FeatureSpec, list[dict]]:
    """Return the features to train on and the fields left out, with reasons.

    Without ``fields``, every standard intake field and every custom field
    of the records is considered. With ``fields``, exactly those are used,
    and a post-contact field among them raises ``LeakingFeatureError``.
    """
    if fields is not None:
        predictive.check_features(fields)
        numeric = [n for n in fields if _kind(n, records)[0] == "numeric"]
        categorical = [n for n in fields if n not in numeric]
        return predictive.FeatureSpec(tuple(categorical), tuple(numeric)), []

    custom = sorted({name for r in records for name in r if name.startswith("custom.")})
    categorical, numeric, excluded = [], [], []
    for name in [*STANDARD_CATEGORICAL, *STANDARD_NUMERIC, *custom]:
        kind, reason = _kind(name, records)
        if kind == "numeric":
            numeric.append(name)
        elif kind == "categorical":
            categorical.append(name)
        else:
            excluded.append({"field": name, "reason": reason})
    if not categorical and not numeric:
        raise NotEnoughLeads(
            "No intake field varies between the labelled leads, so there is "
            "nothing to learn from."
        )
    return predictive.FeatureSpec(tuple(categorical), tuple(numeric)), excluded


# Training -----------------------------------------------------------------------


def _lock_organization_models(organization: Organization) -> None:
    """Hold a lock until the transaction ends, so versions are taken one at a time.

    PostgreSQL only. SQLite runs one write transaction at a time anyway.
    """
    if connection.vendor != "postgresql":
        return
    text = f"lead-model:{organization.pk}"
    number = int.from_bytes(
        hashlib.sha256(text.encode()).digest()[:8], "big", signed=True
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [number])


def _current_auc(
    current: LeadModel | None, records: list[dict], outcomes: list[int]
) -> float | None:
    """Return the active model's AUC on the given records, or None.

    None also when the stored model cannot be loaded or scored, for example
    after an upgrade of scikit-learn: such a model cannot score leads
    either, so any new model replaces it.
    """
    if current is None:
        return None
    try:
        return predictive.auc_on(
            predictive.loads(bytes(current.artifact)), records, outcomes
        )
    except Exception:
        # Unpickling and predicting can fail in many ways, all meaning the
        # stored model is unusable.
        logger.exception(
            "Active lead model %s could not be evaluated; the new model replaces it",
            current.version,
            extra={"organization_id": current.organization_id},
        )
        return None


def _decision(auc: float, current: LeadModel | None, compared: float | None):
    """Return (activate, reason) for a new model with test AUC ``auc``."""
    if current is None:
        return True, f"AUC {auc:.3f}; no model was active"
    if compared is None:
        return True, (
            f"AUC {auc:.3f}; the active version {current.version} could not be "
            "evaluated"
        )
    if auc >= compared:
        return True, (
            f"AUC {auc:.3f} >= version {current.version}'s {compared:.3f} on "
            "the same split"
        )
    return False, (
        f"AUC {auc:.3f} < current {compared:.3f} (version {current.version}) on "
        "the same split"
    )


def _report(trained: predictive.TrainedModel) -> dict:
    return {
        "features": list(trained.spec.fields),
        "training_rows": trained.train_size,
        "test_rows": trained.test_size,
        "auc": trained.auc,
        "calibration": [
            {
                "decile": row.decile,
                "count": row.count,
                "predicted": row.predicted,
                "observed": row.observed,
            }
            for row in trained.calibration
        ],
        "importance": [
            {"field": name, "drop": drop} for name, drop in trained.importance
        ],
    }


@transaction.atomic
def _model_store(
    *,
    organization: Organization,
    actor: User | None,
    trained: predictive.TrainedModel,
    data: LabelledLeads,
    excluded: list[dict],
) -> LeadModel:
    """Store the trained model, activating it only if it is at least as good."""
    _lock_organization_models(organization)
    current = LeadModel.objects.filter(status=ACTIVE).first()
    test_keys = set(trained.test_keys)
    test_rows = [
        (record, outcome)
        for key, record, outcome in zip(
            data.keys, data.records, data.outcomes, strict=True
        )
        if key in test_keys
    ]
    compared = _current_auc(
        current, [r for r, _ in test_rows], [o for _, o in test_rows]
    )
    activate, reason = _decision(trained.auc, current, compared)
    if activate and current is not None:
        current.status = LeadModel.Status.RETIRED
        current.save(update_fields=["status"])

    latest = LeadModel.objects.aggregate(latest=Max("version"))["latest"] or 0
    model = LeadModel.objects.create(
        organization=organization,
        version=latest + 1,
        status=ACTIVE if activate else LeadModel.Status.REJECTED,
        reason=reason,
        trained_by=actor,
        excluded_fields=excluded,
        converted_rows=sum(data.outcomes),
        compared_auc=compared,
        artifact=trained.dumps(),
        **_report(trained),
    )
    summary = {"version": model.version, "auc": model.auc, "reason": reason}
    audit_log_write(
        organization=organization,
        actor=actor,
        action="lead_model.activate" if activate else "lead_model.reject",
        obj=model,
        old=(
            {"version": current.version, "auc": current.auc}
            if activate and current is not None
            else None
        ),
        new={**summary, "features": model.features} if activate else summary,
    )
    return model


def model_train(
    *,
    organization: Organization,
    actor: User | None = None,
    fields: list[str] | None = None,
    now: dt.datetime | None = None,
) -> LeadModel:
    """Train a model on the current organisation's labelled leads and store it.

    The new model is active when its test AUC is at least the active
    model's on the same split, and rejected otherwise (see ``_decision``).
    ``fields`` fixes the features instead of choosing them from the data.

    Raises ``NotEnoughLeads`` below the minimum of labelled leads, and
    ``routing.predictive.LeakingFeatureError`` for a post-contact field in
    ``fields``.
    """
    data = labelled_leads(now=now)
    readiness = data.readiness
    if not readiness.ready:
        raise NotEnoughLeads(readiness.message)
    spec, excluded = feature_spec(data.records, fields)
    trained = predictive.train(
        keys=data.keys, records=data.records, outcomes=data.outcomes, spec=spec
    )
    return _model_store(
        organization=organization,
        actor=actor,
        trained=trained,
        data=data,
        excluded=excluded,
    )


# Scoring at intake ---------------------------------------------------------------

# Unpickled models by (organisation id, version), least recently used first.
# Each entry is (the model's public id, the model or None when it failed to
# load). The public id check makes a reused organisation id or version (a
# test database, a restored backup) load the model again.
MODEL_CACHE_SIZE = 64
_model_cache: OrderedDict[tuple[int, int], tuple[str, object]] = OrderedDict()
_model_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Prediction:
    """A lead's predicted chance of converting, in whole percent, and the model."""

    version: int
    score: int


def model_cache_clear() -> None:
    with _model_cache_lock:
        _model_cache.clear()


def _cached_model(organization_id: int, version: int, public_id: str):
    key = (organization_id, version)
    with _model_cache_lock:
        entry = _model_cache.get(key)
        if entry is not None and entry[0] == public_id:
            _model_cache.move_to_end(key)
            return entry[1]
    artifact = (
        LeadModel.objects.filter(public_id=public_id)
        .values_list("artifact", flat=True)
        .first()
    )
    try:
        model = predictive.loads(bytes(artifact))
    except Exception:
        # Remembered as None, so a broken artifact is not read again per lead.
        logger.exception(
            "Lead model version %s could not be loaded; leads get no predicted score",
            version,
            extra={"organization_id": organization_id},
        )
        model = None
    with _model_cache_lock:
        for stale in [k for k in _model_cache if k[0] == organization_id]:
            del _model_cache[stale]
        _model_cache[key] = (public_id, model)
        while len(_model_cache) > MODEL_CACHE_SIZE:
            _model_cache.popitem(last=False)
    return model


def lead_predict(*, organization: Organization, intake: dict) -> Prediction | None:
    """Return the active model's score of an intake snapshot, or None.

    None when the organisation has no active model, or when the model
    fails (logged): intake never fails because of the predictive score.
    """
    active = cached(
        "active_lead_model",
        lambda: (
            LeadModel.objects.filter(status=ACTIVE)
            .values_list("version", "public_id")
            .first()
        ),
    )
    if active is None:
        return None
    version, public_id = active
    model = _cached_model(organization.pk, version, str(public_id))
    if model is None:
        return None
    try:
        score = model.score(training_record(intake))
    except Exception:
        logger.exception(
            "Lead model version %s failed to score a lead",
            version,
            extra={"organization_id": organization.pk},
        )
        return None
    return Prediction(version=version, score=score)


# Reads for the model page ---------------------------------------------------------

# Newest models listed in the history.
HISTORY_SIZE = 100


def model_history() -> list[LeadModel]:
    """Return the newest models of the organisation, without their artifacts."""
    return list(
        LeadModel.objects.defer("artifact").select_related("trained_by")[:HISTORY_SIZE]
    )


def model_by_public_id(public_id) -> LeadModel | None:
    return (
        LeadModel.objects.defer("artifact")
        .select_related("trained_by")
        .filter(public_id=public_id)
        .first()
    )


def active_model() -> LeadModel | None:
    return (
        LeadModel.objects.defer("artifact")
        .select_related("trained_by")
        .filter(status=ACTIVE)
        .first()
    )
