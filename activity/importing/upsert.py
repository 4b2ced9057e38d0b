"""Write validated records: create new rows, update changed ones, skip the rest.

Every kind loads the organisation's existing rows in one query, then writes
the new and changed rows in bulk: products, accounts and members with
``bulk_create`` and ``bulk_update``, deals through activity.importing.bulk
(COPY on PostgreSQL). Only mapped fields are
compared and written: a column left out of the mapping never clears a value,
but a blank cell in a mapped column does. Run ``upsert_records`` inside one
transaction and the organisation's tenant context.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from activity.importing.deals import DealUpsert
from activity.importing.fields import IMPORT_ORDER
from activity.importing.members import upsert_members
from activity.importing.references import BATCH_SIZE, SOURCE, Counts, References
from activity.models import Account, Product
from spm.models import Organization, User

Record = dict[str, Any]


def upsert_records(
    *,
    organization: Organization,
    records: dict[str, list[Record]],
    actor: User | None,
    now: dt.datetime,
) -> dict[str, Counts]:
    """Write the records of every kind, in IMPORT_ORDER, and return the counts."""
    counts = {kind: Counts() for kind in IMPORT_ORDER}
    references = References(organization, counts)
    writers = {
        "products": lambda rows: _upsert_products(references, rows),
        "accounts": lambda rows: _upsert_accounts(references, rows),
        "members": lambda rows: upsert_members(references, rows, actor, now),
        "deals": lambda rows: DealUpsert(references, now).run(rows),
    }
    for kind in IMPORT_ORDER:
        if records.get(kind):
            writers[kind](records[kind])
    return counts


def _values(record: Record, text: tuple[str, ...], other: tuple[str, ...]) -> dict:
    """Return the mapped fields of ``record``, with "" for blank text fields."""
    values = {key: record[key] or "" for key in text if key in record}
    values.update({key: record[key] for key in other if key in record})
    return values


def _assign(instance, values: dict[str, Any]) -> list[str]:
    """Set ``values`` on ``instance`` and return the names of the changed fields."""
    changed = []
    for name, value in values.items():
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            changed.append(name)
    return changed


def _upsert_products(references: References, records: list[Record]) -> None:
    counts = references.counts["products"]
    existing = {product.match_key: product for product in Product.objects.all()}
    new, changed, fields = [], [], set()
    for record in records:
        values = _values(record, ("name", "family"), ("list_price",))
        key = Product.key_for(record["name"])
        product = existing.get(key)
        if product is None:
            existing[key] = Product(
                organization_id=references.org_id,
                match_key=key,
                external_source=SOURCE,
                **values,
            )
            new.append(existing[key])
        elif changed_fields := _assign(product, values):
            changed.append(product)
            fields.update(changed_fields)
        else:
            counts.unchanged += 1

    Product.objects.bulk_create(new, batch_size=BATCH_SIZE)
    if changed:
        Product.objects.bulk_update(changed, sorted(fields), batch_size=BATCH_SIZE)
    counts.created += len(new)
    counts.updated += len(changed)


ACCOUNT_TEXT = ("industry", "country")
ACCOUNT_OTHER = ("year_established", "annual_revenue", "employees")


def _upsert_accounts(references: References, records: list[Record]) -> None:
    """Upsert accounts by name, then point each at its parent account.

    A parent named in the file but not in it, nor in the database, is created
    with its name only.
    """
    counts = references.counts["accounts"]
    existing: dict[str, Account] = {}
    for account in Account.objects.order_by("id"):
        existing.setdefault(account.name.lower(), account)

    new: list[Account] = []
    changed: dict[int, Account] = {}
    fields: set[str] = set()
    for record in records:
        if "annual_revenue_millions" in record:
            record["annual_revenue"] = record.pop("annual_revenue_millions")
        values = _values(record, ACCOUNT_TEXT, ACCOUNT_OTHER)
        account = existing.get(record["name"].lower())
        if account is None:
            account = Account(
                organization_id=references.org_id,
                name=record["name"],
                external_source=SOURCE,
                **values,
            )
            existing[account.name.lower()] = account
            new.append(account)
        elif changed_fields := _assign(account, values):
            changed[id(account)] = account
            fields.update(changed_fields)

    parents = [r["parent"] for r in records if r.get("parent")]
    for name in parents:
        if name.lower() not in existing:
            existing[name.lower()] = Account(
                organization_id=references.org_id, name=name, external_source=SOURCE
            )
            new.append(existing[name.lower()])
    Account.objects.bulk_create(new, batch_size=BATCH_SIZE)

    for record in records:
        if "parent" not in record:
            continue
        account = existing[record["name"].lower()]
        parent = existing[record["parent"].lower()] if record["parent"] else None
        if account.parent_id != (parent.pk if parent else None):
            account.parent = parent
            changed[id(account)] = account
            fields.add("parent")

    if changed:
        Account.objects.bulk_update(
            changed.values(), sorted(fields), batch_size=BATCH_SIZE
        )
    counts.created += len(new)
    created = {id(account) for account in new}
    for record in records:
        account = existing[record["name"].lower()]
        if id(account) in created:
            continue
        if id(account) in changed:
            counts.updated += 1
        else:
            counts.unchanged += 1
