"""Upsert of deals by external id, with their product line and stage history."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from activity.importing.bulk import insert_rows, update_rows
from activity.importing.references import SOURCE, References
from activity.models import Deal, DealProduct, DealStageChange, Product
from followups import triggers as followup_triggers

Record = dict[str, Any]


# Deal columns loaded to compare with a file's rows, in this order.
DEAL_COLUMNS = (
    "id",
    "external_id",
    "name",
    "account_id",
    "owner_id",
    "pipeline_id",
    "stage_id",
    "amount",
    "currency",
    "created_on",
    "close_date",
    "stage_changed_at",
)


class DealUpsert:
    """Upsert deals by external id, with their product line and stage history.

    Each deal has at most one line, for its product, whose amount is the deal
    amount. A stage that differs from the stored one adds a DealStageChange
    dated now. A deal whose fields or line changed counts as updated, and its
    ``updated_at`` moves. An unchanged deal is not written at all.
    """

    def __init__(self, references: References, now: dt.datetime) -> None:
        self.references = references
        self.org_id = references.org_id
        self.currency = references.organization.currency
        self.now = now
        self.counts = references.counts["deals"]
        # Rows to write, as dicts of attribute name -> value.
        self.new: list[Record] = []
        self.new_products: list[int | None] = []
        self.updates: dict[tuple[str, ...], list[Record]] = defaultdict(list)
        self.stage_changes: list[Record] = []
        self.lines_new: list[Record] = []
        self.lines_changed: list[Record] = []
        self.lines_deleted: list[int] = []

    def run(self, records: list[Record]) -> None:
        self._resolve(records)
        existing = {
            row[1]: dict(zip(DEAL_COLUMNS, row, strict=True))
            for row in Deal.objects.filter(external_source=SOURCE)
            .order_by()
            .values_list(*DEAL_COLUMNS)
        }
        self.lines = self._load_lines()
        for record in records:
            values = self._deal_values(record)
            product_id = self._product_id(record)
            current = existing.get(record["external_id"])
            if current is None:
                self._add_new(record, values, product_id)
            else:
                self._compare(current, values, product_id, "product" in record)
        self._write()

    def _resolve(self, records: list[Record]) -> None:
        """Load or create the pipelines, stages, accounts, products and owners."""
        refs = self.references
        self.pipelines = refs.pipelines(r.get("pipeline") for r in records)
        requested: dict[tuple[int, str], str] = {}
        for record in records:
            pipeline = self.pipelines[(record.get("pipeline") or "").lower()]
            requested.setdefault(
                (pipeline.pk, record["stage"].lower()), record["stage"]
            )
        self.stages = refs.stages(requested)
        self.accounts = refs.account_ids(_distinct(records, "account"))
        self.products = refs.product_ids(_distinct(records, "product"))
        self.owners = refs.member_ids(_distinct(records, "owner"))

    def _load_lines(self) -> dict[int, Record]:
        """Return the first line of each imported deal, by deal id."""
        lines: dict[int, Record] = {}
        rows = (
            DealProduct.objects.filter(deal__external_source=SOURCE)
            .order_by("id")
            .values_list("deal_id", "id", "product_id", "amount")
        )
        for deal_id, pk, product_id, amount in rows:
            lines.setdefault(
                deal_id, {"id": pk, "product_id": product_id, "amount": amount}
            )
        return lines

    def _deal_values(self, record: Record) -> dict[str, Any]:
        pipeline = self.pipelines[(record.get("pipeline") or "").lower()]
        values: dict[str, Any] = {
            "pipeline_id": pipeline.pk,
            "stage_id": self.stages[(pipeline.pk, record["stage"].lower())],
        }
        for key in ("amount", "created_on", "close_date"):
            if key in record:
                values[key] = record[key]
        if "name" in record:
            values["name"] = record["name"] or ""
        if "currency" in record:
            values["currency"] = record["currency"] or self.currency
        if "account" in record:
            account = record["account"]
            values["account_id"] = self.accounts[account.lower()] if account else None
        if "owner" in record:
            owner = record["owner"]
            values["owner_id"] = self.owners[owner.lower()] if owner else None
        return values

    def _product_id(self, record: Record) -> int | None:
        name = record.get("product")
        return self.products[Product.key_for(name)] if name else None

    def _add_new(self, record: Record, values: dict, product_id: int | None) -> None:
        values.setdefault("currency", self.currency)
        values.update(
            organization_id=self.org_id,
            external_source=SOURCE,
            external_id=record["external_id"],
            created_at=self.now,
            updated_at=self.now,
        )
        self.new.append(values)
        self.new_products.append(product_id)

    def _compare(
        self, current: dict, values: dict, product_id: int | None, has_product: bool
    ) -> None:
        fields = [key for key, value in values.items() if current[key] != value]
        if "stage_id" in fields:
            self.stage_changes.append(
                {
                    "organization_id": self.org_id,
                    "deal_id": current["id"],
                    "from_stage_id": current["stage_id"],
                    "to_stage_id": values["stage_id"],
                    "changed_at": self.now,
                    "source": SOURCE,
                }
            )
            values["stage_changed_at"] = self.now
            fields.append("stage_changed_at")

        amount = values.get("amount", current["amount"])
        line_changed = self._sync_line(current["id"], product_id, amount, has_product)
        if not fields and not line_changed:
            self.counts.unchanged += 1
            return
        self.counts.updated += 1
        update = {key: values[key] for key in fields}
        update.update(id=current["id"], updated_at=self.now)
        self.updates[tuple(sorted([*fields, "updated_at"]))].append(update)

    def _sync_line(
        self, deal_id: int, product_id: int | None, amount, has_product: bool
    ) -> bool:
        """Make a stored deal's line match the file, and return whether it changed."""
        line = self.lines.get(deal_id)
        if not has_product:
            product_id = line["product_id"] if line else None
        if product_id is None:
            if line is None:
                return False
            self.lines_deleted.append(line["id"])
            return True
        if line is None:
            self.lines_new.append(self._line(deal_id, product_id, amount))
            return True
        if line["product_id"] == product_id and line["amount"] == amount:
            return False
        self.lines_changed.append(
            {
                "id": line["id"],
                "product_id": product_id,
                "amount": amount,
                "unit_price": amount,
            }
        )
        return True

    def _line(self, deal_id: int, product_id: int, amount: Decimal | None) -> Record:
        return {
            "organization_id": self.org_id,
            "deal_id": deal_id,
            "product_id": product_id,
            "quantity": Decimal(1),
            "unit_price": amount,
            "amount": amount,
        }

    def _write(self) -> None:
        insert_rows(Deal, self.new)
        self.counts.created += len(self.new)
        if any(product_id is not None for product_id in self.new_products):
            ids = dict(
                Deal.objects.filter(external_source=SOURCE).values_list(
                    "external_id", "id"
                )
            )
            for deal, product_id in zip(self.new, self.new_products, strict=True):
                if product_id is not None:
                    deal_id = ids[deal["external_id"]]
                    self.lines_new.append(
                        self._line(deal_id, product_id, deal.get("amount"))
                    )

        for fields, rows in self.updates.items():
            update_rows(Deal, rows, fields, organization_id=self.org_id)
        insert_rows(DealStageChange, self.stage_changes)
        # Deals new to Attain are not "entering" a stage: a first import loads
        # history, which must not start sequences.
        followup_triggers.deals_entered_stage(
            [change["deal_id"] for change in self.stage_changes],
            organization_id=self.org_id,
            now=self.now,
        )
        DealProduct.objects.filter(pk__in=self.lines_deleted).delete()
        update_rows(
            DealProduct,
            self.lines_changed,
            ["product_id", "amount", "unit_price"],
            organization_id=self.org_id,
        )
        insert_rows(DealProduct, self.lines_new)


def _distinct(records: list[Record], key: str) -> list[str]:
    """Return the non-blank values of ``key``, once each, in file order."""
    return list(dict.fromkeys(r[key] for r in records if r.get(key)))
