"""Rule conditions: validated and normalised on save, matched against leads."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError

from routing.engine.conditions import conditions_match, validate_conditions


def _lead(**values):
    fields = {
        "country": "",
        "region": "",
        "industry": "",
        "source": "",
        "company": "",
        "domain": "",
        "company_size": None,
        "estimated_value": None,
        "custom": {},
    }
    return SimpleNamespace(**{**fields, **values})


def test_country_values_become_alpha_2():
    conditions = validate_conditions(
        [{"field": "country", "operator": "in", "value": ["Germany", "aut", "ch"]}]
    )

    assert conditions[0]["value"] == ["DE", "AT", "CH"]


def test_number_values_are_stored_as_decimal_text():
    conditions = validate_conditions(
        [{"field": "estimated_value", "operator": "range", "value": {"min": 1000.5}}]
    )

    assert conditions[0]["value"] == {"min": "1000.5"}


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            "country",
            'Condition 1: Write a condition as {"field": ..., "operator": ..., '
            '"value": ...}.',
        ),
        (
            {"field": "colour", "operator": "equals", "value": "red"},
            "Condition 1: Unknown field 'colour'. Use one of",
        ),
        (
            {"field": "country", "operator": "like", "value": "DE"},
            "Condition 1: Unknown operator 'like' on country. Use one of equals, "
            "in, range, contains.",
        ),
        (
            {"field": "country", "operator": "equals", "value": "Atlantis"},
            'Unknown country "Atlantis"',
        ),
        (
            {"field": "company_size", "operator": "equals", "value": "many"},
            "Condition 1: The value of company_size, 'many', is not a number.",
        ),
        (
            {
                "field": "company_size",
                "operator": "range",
                "value": {"min": 5, "max": 5},
            },
            "Condition 1: The range min of company_size (5) must be below its max (5).",
        ),
        (
            {"field": "industry", "operator": "range", "value": {"min": 1}},
            "Condition 1: Range applies to number fields only, and industry is a text "
            "field.",
        ),
        (
            {"field": "company_size", "operator": "contains", "value": "1"},
            "Condition 1: Contains applies to text fields only, and company_size is a "
            "number field.",
        ),
        (
            {"field": "source", "operator": "in", "value": []},
            "Condition 1: The in operator on source takes a non-empty list of values.",
        ),
        (
            {"field": "source", "operator": "equals", "value": "  "},
            "Condition 1: The value of source is empty.",
        ),
        (
            {"field": "estimated_value", "operator": "equals", "value": "NaN"},
            "Condition 1: The value of estimated_value, 'NaN', is not a finite number.",
        ),
    ],
)
def test_invalid_condition_is_named(condition, message):
    with pytest.raises(ValidationError) as error:
        validate_conditions([condition])

    assert message in str(error.value)


def test_second_condition_is_named_by_position():
    valid = {"field": "source", "operator": "equals", "value": "web"}
    invalid = {"field": "source", "operator": "in", "value": "web"}

    with pytest.raises(ValidationError) as error:
        validate_conditions([valid, invalid])

    assert (
        "Condition 2: The in operator on source takes a non-empty list of values."
        in str(error.value)
    )


def test_text_compares_without_case_or_spaces():
    conditions = validate_conditions(
        [{"field": "industry", "operator": "equals", "value": " Retail "}]
    )

    assert conditions_match(conditions, _lead(industry="RETAIL ")).matched
    assert not conditions_match(conditions, _lead(industry="Retailing")).matched


def test_missing_value_matches_nothing():
    conditions = validate_conditions(
        [{"field": "company_size", "operator": "range", "value": {"max": 50}}]
    )

    outcome = conditions_match(conditions, _lead(company_size=None))

    assert not outcome.matched
    assert outcome.reason == "company_size range […, 50) failed: the lead has empty"


def test_custom_number_compares_as_number():
    conditions = validate_conditions(
        [{"field": "custom.seats", "operator": "range", "value": {"min": 10}}]
    )

    assert conditions_match(conditions, _lead(custom={"seats": 10})).matched
    assert conditions_match(conditions, _lead(custom={"seats": "12"})).matched
    assert not conditions_match(conditions, _lead(custom={"seats": 9.5})).matched
    assert not conditions_match(conditions, _lead(custom={"seats": "ten"})).matched


def test_equals_number_ignores_trailing_zeros():
    conditions = validate_conditions(
        [{"field": "estimated_value", "operator": "equals", "value": 100}]
    )

    assert conditions_match(
        conditions, _lead(estimated_value=Decimal("100.00"))
    ).matched


def test_contains_on_text():
    conditions = validate_conditions(
        [{"field": "domain", "operator": "contains", "value": ".DE"}]
    )

    assert conditions_match(conditions, _lead(domain="shop.example.de")).matched
    assert not conditions_match(conditions, _lead(domain="example.com")).matched


def test_territory_conditions_validated_on_save(acme):
    from routing.models import Territory

    with pytest.raises(ValidationError):
        Territory(
            organization=acme,
            name="Bad",
            conditions=[{"field": "planet", "operator": "equals", "value": "Mars"}],
        ).save()

    assert not Territory.objects.exists()
