"""Find the account a lead belongs to: by company domain, then by company name.

Accounts come from CRM imports, so their domains and names are stored as
the source wrote them ("https://www.acme.com/", "Acme, Inc."). The lookups
ask the database for the few spellings that normalise to the lead's value,
through the indexes on the lowercased domain and name, then keep the rows
whose normalised value really is equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models.functions import Lower

from activity.models import Account, Lead
from routing.normalization import normalize_domain

# Legal-form words dropped from the end of a company name before comparing.
LEGAL_SUFFIXES = (
    "ab",
    "ag",
    "as",
    "bv",
    "co",
    "company",
    "corp",
    "corporation",
    "gmbh",
    "inc",
    "incorporated",
    "kg",
    "limited",
    "llc",
    "llp",
    "lp",
    "ltd",
    "nv",
    "oy",
    "plc",
    "pty",
    "sa",
    "sarl",
    "sas",
    "spa",
    "srl",
)
NOT_WORD = re.compile(r"[^\w\s]")


@dataclass(frozen=True)
class AccountMatch:
    account: Account
    matched_by: str  # "domain" or "name"


def company_key(name: str) -> str:
    """Return the comparable form of a company name.

    "Acme, Inc." and "ACME inc" both give "acme"; "&" counts as "and".
    """
    text = NOT_WORD.sub(" ", name.casefold().replace("&", " and "))
    words = text.split()
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def _domain_spellings(domain: str) -> list[str]:
    spellings = []
    for host in (domain, f"www.{domain}"):
        for scheme in ("", "http://", "https://"):
            spellings += [f"{scheme}{host}", f"{scheme}{host}/"]
    return spellings


def _name_spellings(company: str, key: str) -> list[str]:
    """Return the lowercased names that may normalise to ``key``."""
    spellings = {company.strip().lower(), key}
    for suffix in LEGAL_SUFFIXES:
        for joiner in (" ", ", "):
            spellings.add(f"{key}{joiner}{suffix}")
            spellings.add(f"{key}{joiner}{suffix}.")
    return sorted(spellings)


def _same_domain(stored: str, domain: str) -> bool:
    try:
        return normalize_domain(stored) == domain
    except ValueError:
        return False


def accounts_on_domain(domain: str) -> list[Account]:
    """Return the accounts whose domain normalises to ``domain``, oldest first.

    Each comes with its owner, in one query through the lowercased-domain index.
    """
    rows = (
        Account.objects.annotate(domain_lower=Lower("domain"))
        .filter(domain_lower__in=_domain_spellings(domain))
        .select_related("owner")
        .order_by("id")
    )
    return [row for row in rows if _same_domain(row.domain, domain)]


def _owned_first(accounts: list[Account]) -> Account:
    """Return the oldest account with an owner, else the oldest one."""
    return next((row for row in accounts if row.owner_id is not None), accounts[0])


def account_for_lead(
    lead: Lead, domain_account_ids: list[int] | None = None
) -> AccountMatch | None:
    """Return the lead's account, preferring one with an owner, or None.

    The domain is tried first because names are ambiguous. Among several
    accounts with the same domain or name, the oldest owned one wins.
    ``domain_account_ids`` are the ids of the accounts on the lead's domain
    when intake has just read them; an empty list saves the domain query.
    """
    if lead.domain:
        if domain_account_ids is None:
            matches = accounts_on_domain(lead.domain)
        elif domain_account_ids:
            matches = list(
                Account.objects.filter(pk__in=domain_account_ids)
                .select_related("owner")
                .order_by("id")
            )
        else:
            matches = []
        if matches:
            return AccountMatch(_owned_first(matches), "domain")
    key = company_key(lead.company) if lead.company else ""
    if key:
        rows = (
            Account.objects.annotate(name_lower=Lower("name"))
            .filter(name_lower__in=_name_spellings(lead.company, key))
            .select_related("owner")
            .order_by("id")
        )
        matches = [row for row in rows if company_key(row.name) == key]
        if matches:
            return AccountMatch(_owned_first(matches), "name")
    return None
