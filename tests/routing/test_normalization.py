"""Normalisation of received leads: email, domain, country, phone."""

from __future__ import annotations

import pytest

from routing.normalization import (
    LeadInputError,
    normalize_country,
    normalize_domain,
    normalize_lead,
)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("DE", "DE"),
        ("deu", "DE"),
        ("Germany", "DE"),
        (" germany ", "DE"),
        ("United States of America", "US"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("United Kingdom", "GB"),
        ("UK", "GB"),
        ("Viet Nam", "VN"),
        ("Vietnam", "VN"),
        ("Türkiye", "TR"),
        ("Turkey", "TR"),
        ("Iran", "IR"),
        ("South Korea", "KR"),
        ("Côte d'Ivoire", "CI"),
        ("Cote d'Ivoire", "CI"),
        ("Czech Republic", "CZ"),
        ("Russia", "RU"),
        ("Taiwan", "TW"),
        ("BOL", "BO"),
        ("Bolivia", "BO"),
    ],
)
def test_country_to_alpha_2(value, code):
    assert normalize_country(value) == code


def test_unknown_country_names_the_value():
    with pytest.raises(ValueError) as error:
        normalize_country("Atlantis")

    assert str(error.value) == (
        'Unknown country "Atlantis": send an ISO 3166 code such as DE or DEU, '
        "or the English name."
    )


@pytest.mark.parametrize(
    ("value", "domain"),
    [
        ("acme.com", "acme.com"),
        ("https://www.Acme.com/pricing?x=1", "acme.com"),
        ("WWW.ACME.CO.UK.", "acme.co.uk"),
        ("http://shop.acme.com:8080", "shop.acme.com"),
    ],
)
def test_domain_normalised(value, domain):
    assert normalize_domain(value) == domain


@pytest.mark.parametrize("value", ["localhost", "not a domain", "acme..com", "-a.com"])
def test_invalid_domain(value):
    with pytest.raises(ValueError):
        normalize_domain(value)


def test_email_lowercased_and_domain_derived():
    fields = normalize_lead(
        {"email": "  Jane.Doe@Bosch.DE ", "phone": " +49  711 \t400 "}
    )

    assert fields["email"] == "jane.doe@bosch.de"
    assert fields["domain"] == "bosch.de"
    assert fields["phone"] == "+49 711 400"


@pytest.mark.parametrize(
    "provider", ["gmail.com", "yahoo.com", "hotmail.com", "outlook.com"]
)
def test_free_mail_gives_no_domain(provider):
    fields = normalize_lead({"email": f"jane@{provider}", "company": ""})

    assert fields["domain"] == ""


def test_given_domain_wins_over_email():
    fields = normalize_lead({"email": "jane@gmail.com", "domain": "www.acme.com"})

    assert fields["domain"] == "acme.com"


def test_errors_name_every_invalid_field():
    with pytest.raises(LeadInputError) as error:
        normalize_lead({"email": "jane@", "country": "Narnia", "phone": "call me"})

    assert set(error.value.errors) == {"email", "country", "phone"}
    assert error.value.errors["email"] == [
        '"jane@" is not a valid email address: send one such as name@example.com.'
    ]
    assert error.value.errors["phone"] == [
        '"call me" is not a phone number: use digits, spaces and + ( ) - . only.'
    ]
