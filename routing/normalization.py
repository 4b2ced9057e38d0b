"""Normalise the fields of a received lead: email, company domain, country, phone.

Each function takes the raw text and returns the stored form, or raises
``ValueError`` with a message that says what is wrong and what to send
instead. ``normalize_lead`` applies them all and collects the messages by
field name in ``LeadInputError``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import pycountry
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

# Providers whose addresses say nothing about the lead's company, so the
# email domain is not taken as the company domain.
FREE_MAIL_DOMAINS = frozenset(
    {
        "aol.com",
        "btinternet.com",
        "comcast.net",
        "fastmail.com",
        "gmail.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "googlemail.com",
        "hey.com",
        "hotmail.co.uk",
        "hotmail.com",
        "hotmail.fr",
        "icloud.com",
        "live.com",
        "mac.com",
        "mail.com",
        "mail.ru",
        "me.com",
        "msn.com",
        "naver.com",
        "orange.fr",
        "outlook.com",
        "proton.me",
        "protonmail.com",
        "qq.com",
        "rediffmail.com",
        "sky.com",
        "t-online.de",
        "tutanota.com",
        "web.de",
        "yahoo.co.jp",
        "yahoo.co.uk",
        "yahoo.com",
        "yahoo.fr",
        "yandex.ru",
        "ymail.com",
        "zoho.com",
    }
)

# English names in common use that ISO 3166 spells differently. The ISO
# names, official names and codes come from pycountry.
COUNTRY_ALIASES = {
    "bolivia": "BO",
    "britain": "GB",
    "brunei": "BN",
    "burma": "MM",
    "cape verde": "CV",
    "czech republic": "CZ",
    "england": "GB",
    "great britain": "GB",
    "holland": "NL",
    "iran": "IR",
    "ivory coast": "CI",
    "laos": "LA",
    "macedonia": "MK",
    "micronesia": "FM",
    "moldova": "MD",
    "north korea": "KP",
    "palestine": "PS",
    "russia": "RU",
    "scotland": "GB",
    "south korea": "KR",
    "swaziland": "SZ",
    "syria": "SY",
    "tanzania": "TZ",
    "the netherlands": "NL",
    "turkey": "TR",
    "uk": "GB",
    "usa": "US",
    "united states of america": "US",
    "us": "US",
    "vatican": "VA",
    "venezuela": "VE",
    "vietnam": "VN",
    "wales": "GB",
}

HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
PHONE_CHARACTERS = re.compile(r"^[0-9+().\-/ #*xext]+$", re.IGNORECASE)


class LeadInputError(ValueError):
    """Invalid lead fields: ``errors`` maps each field name to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def _fold(text: str) -> str:
    """Casefold ``text`` and drop accents, so "Türkiye" matches "turkiye"."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.replace(".", "").split())


@cache
def _country_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for country in pycountry.countries:
        code = country.alpha_2
        names = [country.alpha_2, country.alpha_3, country.name]
        names += [
            getattr(country, attribute, "")
            for attribute in ("official_name", "common_name")
        ]
        for name in filter(None, names):
            index.setdefault(_fold(name), code)
        # "Iran, Islamic Republic of" is usually written "Iran".
        short = country.name.split(",")[0]
        index.setdefault(_fold(short), code)
    for alias, code in COUNTRY_ALIASES.items():
        index[_fold(alias)] = code
    return index


def normalize_country(value: str) -> str:
    """Return the ISO 3166-1 alpha-2 code for a country name or code."""
    text = value.strip()
    if not text:
        return ""
    code = _country_index().get(_fold(text))
    if code is None:
        raise ValueError(
            f'Unknown country "{text}": send an ISO 3166 code such as DE or DEU, '
            "or the English name."
        )
    return code


def normalize_email(value: str) -> str:
    """Return the address lowercased, or raise when it is not a valid address."""
    email = value.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValueError(
            f'"{value.strip()}" is not a valid email address: send one such as '
            "name@example.com."
        ) from None
    return email


def normalize_domain(value: str) -> str:
    """Return the host of a domain or website address: lowercase, no "www."."""
    text = value.strip().lower()
    if not text:
        return ""
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    host = re.split(r"[/?#]", host, maxsplit=1)[0]
    host = host.rsplit("@", 1)[-1].split(":", 1)[0].rstrip(".")
    host = host.removeprefix("www.")
    labels = host.split(".")
    if len(labels) < 2 or not all(HOST_LABEL.match(label) for label in labels):
        raise ValueError(
            f'"{value.strip()}" is not a domain name: send one such as example.com.'
        )
    return host


def domain_from_email(email: str) -> str:
    """Return the company domain of an address, or "" for a free-mail provider."""
    domain = email.rsplit("@", 1)[-1].lower()
    if domain in FREE_MAIL_DOMAINS:
        return ""
    try:
        return normalize_domain(domain)
    except ValueError:
        return ""


def normalize_phone(value: str) -> str:
    """Return the number trimmed, with runs of spaces made one."""
    phone = " ".join(value.split())
    if phone and (
        not PHONE_CHARACTERS.match(phone) or not any(ch.isdigit() for ch in phone)
    ):
        raise ValueError(
            f'"{phone}" is not a phone number: use digits, spaces and + ( ) - . only.'
        )
    return phone


def normalize_lead(fields: dict) -> dict:
    """Return ``fields`` with every known field normalised.

    Raises ``LeadInputError`` naming each invalid field. A missing company
    domain is taken from the email address unless that is a free-mail one.
    """
    normalized = dict(fields)
    errors: dict[str, list[str]] = {}
    steps = {
        "email": normalize_email,
        "domain": normalize_domain,
        "country": normalize_country,
        "phone": normalize_phone,
    }
    for name, normalize in steps.items():
        if normalized.get(name):
            try:
                normalized[name] = normalize(normalized[name])
            except ValueError as error:
                errors[name] = [str(error)]
    for name in ("first_name", "last_name", "company", "region", "industry", "source"):
        if isinstance(normalized.get(name), str):
            normalized[name] = " ".join(normalized[name].split())
    if errors:
        raise LeadInputError(errors)
    if not normalized.get("domain") and normalized.get("email"):
        normalized["domain"] = domain_from_email(normalized["email"])
    return normalized
