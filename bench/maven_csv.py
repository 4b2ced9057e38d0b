"""Write a synthetic CRM export in the Maven "CRM + Sales + Opportunities" format.

The four files have the Maven columns and quirks: Prospecting deals have no
engage date, open deals have no close date or value, lost deals close at 0,
and some open deals have no account. Names come from the demo generator's
lists, so nothing is copied from the real export.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

from activity.generator import catalog

# Share of each stage in the real Maven export (4,238 won, 2,473 lost, 1,589
# engaging and 500 prospecting of 8,800).
STAGE_WEIGHTS = {"Won": 4238, "Lost": 2473, "Engaging": 1589, "Prospecting": 500}
OFFICES = ["East", "West", "Central"]
AGENTS = 50
MANAGERS = 10
ACCOUNTS = 500
ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def write_maven_export(folder: Path, *, deals: int, seed: int = 1) -> list[Path]:
    """Write the four Maven files into ``folder`` and return their paths in
    import order: accounts, products, sales teams, then the pipeline."""
    rng = random.Random(seed)
    people = rng.sample(
        [f"{f} {last}" for f in catalog.FIRST_NAMES for last in catalog.LAST_NAMES],
        AGENTS + MANAGERS,
    )
    agents, managers = people[:AGENTS], people[AGENTS:]
    accounts = _company_names(rng)
    paths = [
        _write(folder / "accounts.csv", _account_rows(rng, accounts)),
        _write(folder / "products.csv", _product_rows()),
        _write(folder / "sales_teams.csv", _team_rows(agents, managers)),
        _write(
            folder / "sales_pipeline.csv",
            _pipeline_rows(rng, deals, agents, accounts),
        ),
    ]
    return paths


def _write(path: Path, rows) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _company_names(rng: random.Random) -> list[str]:
    names = sorted(
        {
            f"{rng.choice(catalog.COMPANY_PREFIXES)}{rng.choice(catalog.COMPANY_ROOTS)}"
            for _ in range(ACCOUNTS * 3)
        }
    )
    return rng.sample(names, min(ACCOUNTS, len(names)))


def _account_rows(rng: random.Random, accounts: list[str]):
    yield [
        "account",
        "sector",
        "year_established",
        "revenue",
        "employees",
        "office_location",
        "subsidiary_of",
    ]
    countries = [country for country, _weight in catalog.COUNTRIES]
    for name in accounts:
        employees = rng.randint(10, 20_000)
        revenue = f"{employees * rng.randint(80, 400) / 1000:.2f}"
        yield [
            name,
            rng.choice(catalog.INDUSTRIES).lower(),
            rng.randint(1960, 2015),
            revenue,
            employees,
            rng.choice(countries),
            "",
        ]


def _product_rows():
    yield ["product", "series", "sales_price"]
    for name, family, price, _segments in catalog.PRODUCTS:
        yield [name, family, f"{price:.0f}"]


def _team_rows(agents: list[str], managers: list[str]):
    yield ["sales_agent", "manager", "regional_office"]
    for i, agent in enumerate(agents):
        manager_index = i % len(managers)
        yield [agent, managers[manager_index], OFFICES[manager_index % len(OFFICES)]]


def _pipeline_rows(rng, deals: int, agents: list[str], accounts: list[str]):
    yield [
        "opportunity_id",
        "sales_agent",
        "product",
        "account",
        "deal_stage",
        "engage_date",
        "close_date",
        "close_value",
    ]
    stages, weights = list(STAGE_WEIGHTS), list(STAGE_WEIGHTS.values())
    products = catalog.PRODUCTS
    first_day = dt.date(2023, 1, 2)
    for number in range(deals):
        stage = rng.choices(stages, weights)[0]
        name, _family, price, _segments = rng.choice(products)
        engaged = first_day + dt.timedelta(days=rng.randint(0, 700))
        closed = engaged + dt.timedelta(days=rng.randint(5, 120))
        value = {"Won": f"{price * rng.randint(80, 110) / 100:.0f}", "Lost": "0"}
        is_open = stage in ("Engaging", "Prospecting")
        yield [
            _opportunity_id(number),
            rng.choice(agents),
            name,
            "" if is_open and rng.random() < 0.6 else rng.choice(accounts),
            stage,
            "" if stage == "Prospecting" else engaged.isoformat(),
            "" if is_open else closed.isoformat(),
            value.get(stage, ""),
        ]


def _opportunity_id(number: int) -> str:
    """Return an 8-character code, unique per number, like Maven's ids."""
    digits = []
    for _ in range(8):
        number, digit = divmod(number, len(ID_ALPHABET))
        digits.append(ID_ALPHABET[digit])
    return "".join(reversed(digits))
