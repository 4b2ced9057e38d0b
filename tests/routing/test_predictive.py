"""The predictive lead score: leakage guard, stable split, and its report."""

import csv
from pathlib import Path

import pytest

from routing.predictive import (
    FeatureSpec,
    LeakingFeatureError,
    auc_on,
    calibration_table,
    loads,
    roc_auc,
    split_by_hash,
    train,
)
from tests.conftest import SHARED_DATA

LEADS_CSV = SHARED_DATA / "x-education-leads" / "Leads.csv"
# Fields a lead carries when its web form arrives: where it came from, what
# the visitor entered, and what they did on the site before filling it in.
X_EDUCATION_INTAKE = FeatureSpec(
    categorical=(
        "Lead Origin",
        "Lead Source",
        "Do Not Email",
        "Do Not Call",
        "Country",
        "Specialization",
        "How did you hear about X Education",
        "What is your current occupation",
        "What matters most to you in choosing a course",
        "Search",
        "Newspaper Article",
        "X Education Forums",
        "Newspaper",
        "Digital Advertisement",
        "Through Recommendations",
        "City",
        "A free copy of Mastering The Interview",
    ),
    numeric=("TotalVisits", "Total Time Spent on Website", "Page Views Per Visit"),
)


def _x_education() -> tuple[list[str], list[dict], list[int]]:
    if not LEADS_CSV.exists():
        pytest.skip(f"X Education leads not found at {LEADS_CSV}")
    with Path(LEADS_CSV).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    keys = [row["Prospect ID"] for row in rows]
    outcomes = [int(row["Converted"]) for row in rows]
    return keys, rows, outcomes


def test_post_contact_fields_are_rejected():
    with pytest.raises(LeakingFeatureError, match="'Tags'"):
        FeatureSpec(categorical=("Lead Source", "Tags"))
    with pytest.raises(LeakingFeatureError, match="'lead quality'"):
        FeatureSpec(categorical=("lead quality",))
    with pytest.raises(LeakingFeatureError, match="'Last Notable Activity'"):
        FeatureSpec(categorical=(), numeric=("Last Notable Activity",))


def test_intake_fields_hold_no_post_contact_field():
    assert "Tags" not in X_EDUCATION_INTAKE.fields
    assert "Lead Quality" not in X_EDUCATION_INTAKE.fields
    assert "Last Activity" not in X_EDUCATION_INTAKE.fields


def test_auc_by_hand():
    # Positive/negative pairs: (0.35, 0.1) yes, (0.35, 0.4) no, (0.8, 0.1)
    # yes, (0.8, 0.4) yes, so 3 of 4 pairs are ranked right.
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75


def test_split_is_stratified_and_stable():
    keys = [f"lead-{n}" for n in range(1000)]
    outcomes = [1 if n % 4 == 0 else 0 for n in range(1000)]
    in_test = split_by_hash(keys, outcomes)
    # 250 converted and 750 not: 20% of each is 50 and 150.
    assert sum(1 for t, o in zip(in_test, outcomes, strict=True) if t and o) == 50
    assert sum(1 for t, o in zip(in_test, outcomes, strict=True) if t and not o) == 150
    assert split_by_hash(keys, outcomes) == in_test
    reordered = list(reversed(keys))
    again = split_by_hash(reordered, list(reversed(outcomes)))
    assert {k for k, t in zip(reordered, again, strict=True) if t} == {
        k for k, t in zip(keys, in_test, strict=True) if t
    }


def test_calibration_table_by_hand():
    scores = [n / 20 for n in range(20)]
    outcomes = [0] * 10 + [1] * 10
    table = calibration_table(outcomes, scores)
    assert len(table) == 10
    # The lowest tenth has scores 0.00 and 0.05, both not converted.
    assert (table[0].count, table[0].predicted, table[0].observed) == (2, 0.025, 0.0)
    # The top tenth has 0.90 and 0.95, both converted.
    assert table[-1].count == 2
    assert table[-1].predicted == pytest.approx(0.925)
    assert table[-1].observed == 1.0


@pytest.fixture(scope="module")
def x_education_model():
    keys, rows, outcomes = _x_education()
    return (
        keys,
        rows,
        outcomes,
        train(keys=keys, records=rows, outcomes=outcomes, spec=X_EDUCATION_INTAKE),
    )


def test_x_education_auc_on_intake_fields(x_education_model):
    keys, rows, outcomes, model = x_education_model
    # 9,240 leads, 3,561 converted: a stratified fifth is 712 + 1,136 = 1,848.
    assert model.test_size == 1848
    assert model.train_size == 9240 - 1848
    assert model.auc >= 0.85
    used = {name for name, _drop in model.importance}
    assert used == set(X_EDUCATION_INTAKE.fields)
    assert model.importance[0][0] == "Total Time Spent on Website"


def test_x_education_calibration_rises(x_education_model):
    _keys, _rows, _outcomes, model = x_education_model
    observed = [row.observed for row in model.calibration]
    assert sum(row.count for row in model.calibration) == model.test_size
    assert observed[-1] > 0.8
    assert observed[0] < 0.1


def test_stored_model_scores_the_same(x_education_model):
    keys, rows, outcomes, model = x_education_model
    copy = loads(model.dumps())
    sample = rows[:50]
    assert copy.probabilities(sample) == model.probabilities(sample)
    test = set(model.test_keys)
    test_rows = [row for key, row in zip(keys, rows, strict=True) if key in test]
    test_outcomes = [o for key, o in zip(keys, outcomes, strict=True) if key in test]
    assert auc_on(copy, test_rows, test_outcomes) == pytest.approx(model.auc)
