"""Record kinds an import can read, and the target fields of each.

A file contains one kind of record. Its columns are mapped to target fields,
and a column mapped to no field is ignored. Kinds are imported in the order of
``IMPORT_ORDER`` so that deals find the products, accounts and members named
in the same job.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from activity.importing import values


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    parse: Callable[[str], Any]
    required: bool = False
    # Normalised header names that map to this field without a preset.
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    fields: tuple[Field, ...]

    def field(self, key: str) -> Field:
        return next(field for field in self.fields if field.key == key)

    @property
    def field_keys(self) -> set[str]:
        return {field.key for field in self.fields}

    @property
    def required(self) -> list[Field]:
        return [field for field in self.fields if field.required]


def _text(max_length: int) -> Callable[[str], str]:
    return values.parse_text(max_length)


DEALS = Kind(
    "deals",
    "Deals",
    (
        Field("external_id", "External id", _text(255), True,
              ("external_id", "id", "deal_id", "opportunity_id", "record_id")),
        Field("name", "Deal name", _text(255), False,
              ("name", "deal_name", "opportunity_name", "title")),
        Field("owner", "Owner (name or email)", values.parse_person, False,
              ("owner", "deal_owner", "owner_email", "owner_name", "sales_agent",
               "sales_rep", "rep")),
        Field("account", "Account name", _text(255), False,
              ("account", "account_name", "company")),
        Field("product", "Product name", _text(255), False,
              ("product", "product_name")),
        Field("stage", "Stage", _text(120), True,
              ("stage", "deal_stage", "stage_name")),
        Field("amount", "Amount", values.parse_money, False,
              ("amount", "value", "deal_value", "close_value")),
        Field("currency", "Currency", values.parse_currency, False,
              ("currency", "currency_code")),
        Field("created_on", "Created or engage date", values.parse_date, False,
              ("created_on", "created", "create_date", "created_date",
               "engage_date")),
        Field("close_date", "Close date", values.parse_date, False,
              ("close_date", "closed_date", "closed_on", "close")),
        Field("pipeline", "Pipeline", _text(120), False, ("pipeline",)),
    ),
)  # fmt: skip

MEMBERS = Kind(
    "members",
    "Members (sales teams)",
    (
        Field("name", "Rep name", _text(150), True,
              ("name", "display_name", "full_name", "sales_agent", "rep",
               "member")),
        Field("manager", "Manager (name or email)", values.parse_person, False,
              ("manager", "manager_name", "reports_to")),
        Field("team", "Team (regional office)", _text(120), False,
              ("team", "regional_office", "office", "region")),
        Field("email", "Email", values.parse_email, False,
              ("email", "email_address")),
        Field("role", "Role", values.parse_role, False, ("role",)),
    ),
)  # fmt: skip

ACCOUNTS = Kind(
    "accounts",
    "Accounts",
    (
        Field("name", "Account name", _text(255), True,
              ("account", "account_name", "name", "company")),
        Field("industry", "Industry (sector)", _text(120), False,
              ("industry", "sector")),
        Field("year_established", "Year established", values.parse_year, False,
              ("year_established", "founded", "year_founded")),
        Field("annual_revenue", "Annual revenue", values.parse_amount, False,
              ("annual_revenue", "revenue")),
        Field("annual_revenue_millions", "Annual revenue, in millions",
              values.parse_millions, False, ("revenue_millions",)),
        Field("employees", "Employees", values.parse_count, False,
              ("employees", "employee_count", "number_of_employees")),
        Field("country", "Country (office location)", _text(120), False,
              ("country", "office_location", "location")),
        Field("parent", "Parent account (subsidiary of)", _text(255), False,
              ("parent", "parent_account", "subsidiary_of")),
    ),
)  # fmt: skip

PRODUCTS = Kind(
    "products",
    "Products",
    (
        Field("name", "Product name", _text(255), True,
              ("product", "product_name", "name")),
        Field("family", "Family (series)", _text(120), False,
              ("family", "product_family", "series")),
        Field("list_price", "List price", values.parse_amount, False,
              ("list_price", "price", "sales_price", "unit_price")),
    ),
)  # fmt: skip

# Stage names that, when not yet known in the pipeline, create a won or a lost
# stage (compared in lowercase). Any other new name creates an open stage.
WON_STAGE_NAMES = frozenset({"won", "closed won"})
LOST_STAGE_NAMES = frozenset({"lost", "closed lost"})

KINDS: dict[str, Kind] = {
    kind.key: kind for kind in (DEALS, MEMBERS, ACCOUNTS, PRODUCTS)
}
IMPORT_ORDER = ("products", "accounts", "members", "deals")


def normalise_header(name: str) -> str:
    """Return the comparable form of a header: "Close Date" -> "close_date"."""
    return re.sub(r"[^0-9a-z]+", "_", name.casefold()).strip("_")


def field_choice(kind: str, field: str) -> str:
    """Return the form value naming a target field, such as "deals.amount"."""
    return f"{kind}.{field}"


def split_choice(choice: str) -> tuple[str, str]:
    kind, _, field = choice.partition(".")
    return kind, field
