"""The CRM setup a sales team works in: pipeline, products, accounts, contacts."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal

from activity.generator import catalog
from activity.generator.context import Run, cumulative, insert
from activity.generator.people import SOURCE, RepProfile
from activity.models import Account, Contact, Pipeline, Product, Stage


@dataclass
class AccountInfo:
    """An account's position, id, name, segment and contacts, kept for deals."""

    index: int
    pk: int
    name: str
    segment: str
    contact_ids: list[int]


def create_pipeline(run: Run) -> tuple[Pipeline, list[Stage]]:
    """Create the default pipeline and its stages in ``catalog.STAGES`` order."""
    organization = run.organization
    [pipeline] = insert(
        Pipeline, [Pipeline(organization=organization, name="Sales", is_default=True)]
    )
    stages = [
        Stage(
            organization=organization,
            pipeline=pipeline,
            name=name,
            order=order,
            probability=probability,
            is_closed=is_closed,
            is_won=is_won,
        )
        for order, (name, probability, is_closed, is_won) in enumerate(
            catalog.STAGES, start=1
        )
    ]
    return pipeline, insert(Stage, stages)


def create_products(run: Run) -> list[Product]:
    return insert(
        Product,
        [
            Product(
                organization=run.organization,
                name=name,
                match_key=Product.key_for(name),
                family=family,
                list_price=price,
                external_source=SOURCE,
                external_id=f"P{i + 1:02d}",
            )
            for i, (name, family, price, _segments) in enumerate(catalog.PRODUCTS)
        ],
    )


def company_names(run: Run, count: int) -> list[tuple[str, str]]:
    """Return ``count`` (company name, domain) pairs, unique while combinations last."""
    combos = [
        (prefix + root, suffix)
        for prefix in catalog.COMPANY_PREFIXES
        for root in catalog.COMPANY_ROOTS
        for suffix in catalog.COMPANY_SUFFIXES
    ]
    run.rng.shuffle(combos)
    names = []
    for i in range(count):
        stem, suffix = combos[i % len(combos)]
        # Past the last combination, a round number keeps names unique.
        round_number = i // len(combos)
        tag = f" {round_number + 1}" if round_number else ""
        domain = f"{stem}{suffix}{round_number or ''}".lower() + ".example"
        names.append((f"{stem} {suffix}{tag}", domain))
    return names


def segment_for(employees: int) -> str:
    for segment, limit in catalog.SEGMENT_LIMITS:
        if limit is None or employees < limit:
            return segment
    raise AssertionError("the last segment has no limit")


def create_accounts(
    run: Run, reps: list[RepProfile], count: int
) -> tuple[list[AccountInfo], list[tuple[str, str]]]:
    """Create ``count`` accounts dealt out to reps in turn, each with contacts.

    Returns the accounts and the company names left over for leads.
    """
    rng = run.rng
    names = company_names(run, count * 2)
    countries, country_weights = zip(*catalog.COUNTRIES, strict=True)
    country_cumulative = cumulative(country_weights)
    rows = []
    for i, (name, domain) in enumerate(names[:count]):
        owner = reps[i % len(reps)]
        owner.account_indexes.append(i)
        employees = min(max(int(rng.lognormvariate(math.log(300), 1.6)), 5), 250_000)
        rows.append(
            Account(
                organization=run.organization,
                name=name,
                domain=domain,
                industry=rng.choice(catalog.INDUSTRIES),
                employees=employees,
                annual_revenue=Decimal(employees * rng.randint(80, 400)) * 1000,
                country=run.weighted(countries, country_cumulative),
                year_established=rng.randint(1950, run.last_day.year - 1),
                owner=owner.membership,
                external_source=SOURCE,
                external_id=f"AC{i + 1:06d}",
            )
        )
    accounts = insert(Account, rows)
    return _attach_contacts(run, accounts), names[count:]


def _attach_contacts(run: Run, accounts: list[Account]) -> list[AccountInfo]:
    rng = run.rng
    rows = []
    for account in accounts:
        for _ in range(rng.choice((1, 2, 2, 3, 3, 4))):
            first = rng.choice(catalog.FIRST_NAMES)
            last = rng.choice(catalog.LAST_NAMES)
            created = run.first_day - dt.timedelta(days=rng.randint(1, 400))
            rows.append(
                Contact(
                    organization=run.organization,
                    account=account,
                    first_name=first,
                    last_name=last,
                    email=f"{first}.{last}@{account.domain}".lower(),
                    phone=f"+1 555 01{rng.randrange(100):02d}",
                    title=rng.choice(catalog.CONTACT_TITLES),
                    owner=account.owner,
                    created_at=run.working_time(created),
                    external_source=SOURCE,
                    external_id=f"C{len(rows) + 1:07d}",
                )
            )
    contacts_by_account: dict[int, list[int]] = {a.pk: [] for a in accounts}
    for contact in insert(Contact, rows):
        contacts_by_account[contact.account_id].append(contact.pk)
    return [
        AccountInfo(
            i, a.pk, a.name, segment_for(a.employees), contacts_by_account[a.pk]
        )
        for i, a in enumerate(accounts)
    ]
