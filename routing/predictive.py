"""Predictive lead score: a model trained on the organisation's own leads.

Only what a lead carried when it arrived may be a feature. Fields that sales
fills in after the first contact (tags, quality ratings, the last activity)
describe the outcome rather than predict it, so a model that used them would
score well in testing and be useless at intake. ``check_features`` rejects
them by name, and callers pass the lead's intake snapshot, never its current
fields.

The held-out test split is chosen by a hash of each lead's id, stratified by
outcome, so a lead stays in the same split when the model is retrained. A new
model is compared with the current one on that same split.

Pure functions on plain records: the database layer stores the fitted model
and its report.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

# Field names that are filled in after contact, compared by ``field_key``.
POST_CONTACT_FIELDS = frozenset(
    {
        "tags",
        "lead quality",
        "lead profile",
        "last activity",
        "last notable activity",
        "asymmetrique activity index",
        "asymmetrique profile index",
        "asymmetrique activity score",
        "asymmetrique profile score",
        "status",
        "owner",
        "converted",
        "converted_at",
        "routing_status",
        "assigned_at",
    }
)
SEPARATORS = re.compile(r"[_.\-]+")
# Values that mean "not answered" on a web form.
BLANK_VALUES = frozenset({"", "select", "none", "null", "n/a"})
TEST_SHARE = Decimal("0.2")
DECILES = 10


class LeakingFeatureError(ValueError):
    """A field filled in after contact was offered as a feature."""


def field_key(name: str) -> str:
    """Return the form of a field name compared with ``POST_CONTACT_FIELDS``.

    Lead intake names custom fields ``custom.<name>`` with ``_``, ``-`` or
    ``.`` where a form label has spaces, so "custom.Last_Activity" and
    "Last Activity" compare equal.
    """
    key = name.strip().lower().removeprefix("custom.")
    return " ".join(SEPARATORS.sub(" ", key).split())


_POST_CONTACT_KEYS = frozenset(field_key(name) for name in POST_CONTACT_FIELDS)


def is_post_contact(name: str) -> bool:
    """Return whether the field is filled in after contact, so it leaks the outcome."""
    return field_key(name) in _POST_CONTACT_KEYS


def check_features(fields: Iterable[str]) -> None:
    """Raise ``LeakingFeatureError`` naming every post-contact field in ``fields``."""
    leaking = sorted(name for name in fields if is_post_contact(name))
    if leaking:
        raise LeakingFeatureError(
            "Invalid features: "
            + ", ".join(repr(name) for name in leaking)
            + " are filled in after contact, so they would leak the outcome. "
            "Use only fields known when the lead arrives."
        )


@dataclass(frozen=True)
class FeatureSpec:
    """The fields a model reads: categorical ones and numeric ones."""

    categorical: tuple[str, ...]
    numeric: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_features(self.fields)

    @property
    def fields(self) -> tuple[str, ...]:
        return self.categorical + self.numeric

    def encode(self, record: dict) -> dict[str, float]:
        """Return the one-hot and numeric features of one record."""
        features: dict[str, float] = {}
        for name in self.categorical:
            value = str(record.get(name) or "").strip().lower()
            if value in BLANK_VALUES:
                value = "(blank)"
            features[f"{name}={value}"] = 1.0
        for name in self.numeric:
            number = _number(record.get(name))
            if number is None:
                features[f"{name} (missing)"] = 1.0
            else:
                # Visit counts and seconds on site have long tails.
                features[name] = math.log1p(max(number, 0.0))
        return features


def _number(value) -> float | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _hash_fraction(key: str) -> float:
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_hash(keys: Sequence[str], outcomes: Sequence[int]) -> list[bool]:
    """Return, per record, whether it is in the test split.

    Within each outcome, the records whose key hashes lowest make up 20% of
    that outcome, so both splits keep the overall conversion rate and a record
    keeps its side when more records are added (unless the cut moves past it).
    """
    in_test = [False] * len(keys)
    for outcome in set(outcomes):
        members = [i for i, value in enumerate(outcomes) if value == outcome]
        members.sort(key=lambda i: _hash_fraction(keys[i]))
        count = int((TEST_SHARE * len(members)).to_integral_value(ROUND_HALF_UP))
        for i in members[:count]:
            in_test[i] = True
    return in_test


def roc_auc(outcomes: Sequence[int], scores: Sequence[float]) -> float:
    """Return the area under the ROC curve, ties counted as half."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(outcomes, scores))


@dataclass(frozen=True)
class CalibrationRow:
    """One decile of the test split by predicted probability."""

    decile: int
    count: int
    predicted: float
    observed: float


def calibration_table(
    outcomes: Sequence[int], scores: Sequence[float]
) -> list[CalibrationRow]:
    """Return predicted against observed conversion for each tenth of the scores."""
    ranked = sorted(zip(scores, outcomes, strict=True), key=lambda pair: pair[0])
    rows = []
    for decile in range(DECILES):
        chunk = ranked[
            decile * len(ranked) // DECILES : (decile + 1) * len(ranked) // DECILES
        ]
        if not chunk:
            continue
        rows.append(
            CalibrationRow(
                decile=decile + 1,
                count=len(chunk),
                predicted=sum(score for score, _ in chunk) / len(chunk),
                observed=sum(outcome for _, outcome in chunk) / len(chunk),
            )
        )
    return rows


@dataclass
class TrainedModel:
    """A fitted model with the report an admin reads on the model page."""

    spec: FeatureSpec
    estimator: object
    vectorizer: object
    auc: float
    calibration: list[CalibrationRow]
    importance: list[tuple[str, float]]
    train_size: int
    test_size: int
    positive_rate: float
    test_keys: list[str] = field(default_factory=list)

    def probabilities(self, records: Sequence[dict]) -> list[float]:
        matrix = self.vectorizer.transform([self.spec.encode(r) for r in records])
        return [float(p) for p in self.estimator.predict_proba(matrix)[:, 1]]

    def score(self, record: dict) -> int:
        """Return the lead's predicted conversion chance as a whole percentage."""
        return round(self.probabilities([record])[0] * 100)

    def dumps(self) -> bytes:
        return pickle.dumps(self)


def loads(data: bytes) -> TrainedModel:
    """Load a model that this application stored; never load untrusted bytes."""
    return pickle.loads(data)  # noqa: S301 (bytes written by dumps, from the database)


def _field_importance(
    model: TrainedModel, records: list[dict], outcomes: list[int], seed: int
) -> list[tuple[str, float]]:
    """Return each field's drop in test AUC when its values are shuffled."""
    rng = random.Random(seed)
    importance = []
    for name in model.spec.fields:
        values = [record.get(name) for record in records]
        rng.shuffle(values)
        shuffled = [
            {**record, name: value}
            for record, value in zip(records, values, strict=True)
        ]
        drop = model.auc - roc_auc(outcomes, model.probabilities(shuffled))
        importance.append((name, round(drop, 4)))
    importance.sort(key=lambda pair: -pair[1])
    return importance


def train(
    *,
    keys: Sequence[str],
    records: Sequence[dict],
    outcomes: Sequence[int],
    spec: FeatureSpec,
    seed: int = 0,
) -> TrainedModel:
    """Fit a gradient-boosted model on 80% of the records, report on the rest."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_extraction import DictVectorizer

    if len(set(outcomes)) < 2:
        raise ValueError(
            "Training needs leads of both outcomes (converted and not converted)."
        )
    in_test = split_by_hash(keys, outcomes)
    train_records = [r for r, test in zip(records, in_test, strict=True) if not test]
    train_outcomes = [o for o, test in zip(outcomes, in_test, strict=True) if not test]
    test_records = [r for r, test in zip(records, in_test, strict=True) if test]
    test_outcomes = [o for o, test in zip(outcomes, in_test, strict=True) if test]

    vectorizer = DictVectorizer(sparse=False)
    matrix = vectorizer.fit_transform([spec.encode(r) for r in train_records])
    estimator = HistGradientBoostingClassifier(random_state=seed)
    estimator.fit(matrix, train_outcomes)
    model = TrainedModel(
        spec=spec,
        estimator=estimator,
        vectorizer=vectorizer,
        auc=0.0,
        calibration=[],
        importance=[],
        train_size=len(train_records),
        test_size=len(test_records),
        positive_rate=sum(outcomes) / len(outcomes),
        test_keys=[k for k, test in zip(keys, in_test, strict=True) if test],
    )
    scores = model.probabilities(test_records)
    model.auc = roc_auc(test_outcomes, scores)
    model.calibration = calibration_table(test_outcomes, scores)
    model.importance = _field_importance(model, test_records, test_outcomes, seed)
    return model


def auc_on(
    model: TrainedModel, records: Sequence[dict], outcomes: Sequence[int]
) -> float:
    """Return ``model``'s AUC on the given records, to compare two models."""
    return roc_auc(outcomes, model.probabilities(records))
