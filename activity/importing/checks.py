"""Checks of one parsed row against rules that span fields, rows or stored data.

Each check takes the validator, the file and the parsed record, and returns
a list of RowError. A check may also rewrite the record. For example, the
deal check replaces the parsed (amount, currency) pair by the amount, and
fills a blank currency from the amount's symbol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from activity.importing.fields import WON_STAGE_NAMES
from activity.models import Pipeline, Product, Stage
from spm.tenancy import get_current_organization

if TYPE_CHECKING:
    from activity.importing.validation import JobValidator, RowError, _FileInput


class StageRules:
    """The won flag of each stored stage, by lowercase pipeline and stage name.

    The default pipeline is also under "". A name not yet known in its
    pipeline is won when it is one of WON_STAGE_NAMES, because the import
    creates it as a won stage.
    """

    def __init__(self) -> None:
        self.won: dict[str, dict[str, bool]] = {}
        rows = Stage.objects.values_list(
            "pipeline__name", "pipeline__is_default", "name", "is_won"
        )
        for pipeline, is_default, name, is_won in rows:
            keys = [pipeline.lower(), ""] if is_default else [pipeline.lower()]
            for key in keys:
                self.won.setdefault(key, {})[name.lower()] = is_won
        if "" not in self.won and not Pipeline.objects.filter(is_default=True):
            self.won[""] = self.won.get("sales", {})

    def is_won(self, pipeline: str | None, stage: str) -> bool:
        known = self.won.get((pipeline or "").lower(), {})
        name = stage.lower()
        return known[name] if name in known else name in WON_STAGE_NAMES


def _check_deal(
    validator: JobValidator, item: _FileInput, record: dict
) -> list[RowError]:
    errors = []
    duplicate = validator.check_unique(
        item, record, "external_id", record["external_id"], "external id"
    )
    if duplicate:
        errors.append(duplicate)

    if "amount" in record:
        amount, amount_currency = record["amount"] or (None, "")
        record["amount"] = amount
        currency = record.get("currency")
        if amount_currency and currency and amount_currency != currency:
            errors.append(
                validator.error(
                    item,
                    record,
                    "amount",
                    f"the amount is in {amount_currency} but the currency column "
                    f"says {currency}",
                )
            )
        elif amount_currency:
            record["currency"] = amount_currency
        errors.extend(_check_currency(validator, item, record, bool(amount_currency)))

    won = validator.stage_rules.is_won(record.get("pipeline"), record["stage"])
    if "close_date" in record:
        close_date = record["close_date"]
    else:
        close_date = validator.stored_close_dates().get(record["external_id"])
    if won and close_date is None:
        errors.append(
            validator.error(item, record, "close_date", "a won deal needs a close date")
        )
    return errors


def _check_currency(
    validator: JobValidator, item: _FileInput, record: dict, from_amount: bool
) -> list[RowError]:
    """Reject a deal in another currency than the organisation's.

    Bookings add deal amounts together, so every amount must be in the
    organisation's currency until exchange rates can convert them.
    """
    currency = record.get("currency")
    reporting = get_current_organization().currency
    if not currency or currency == reporting:
        return []
    # NOTE: deals in other currencies are refused until an exchange rate
    # table exists to convert them at their close date.
    column = "amount" if from_amount else "currency"
    return [
        validator.error(
            item,
            record,
            column,
            f"the deal is in {currency} but the organisation reports in "
            f"{reporting}, and Attain does not convert currencies yet: convert "
            f"the amount to {reporting} first",
        )
    ]


def _check_member(
    validator: JobValidator, item: _FileInput, record: dict
) -> list[RowError]:
    errors = []
    name = record["name"]
    duplicate = validator.check_unique(item, record, "name", name.lower(), "member")
    if duplicate:
        errors.append(duplicate)
    email = record.get("email")
    if email:
        duplicate = validator.check_unique(
            item, record, "email", f"@{email}", "email address"
        )
        if duplicate:
            errors.append(duplicate)
    manager = record.get("manager") or ""
    if manager.lower() in {name.lower(), (email or "").lower()}:
        errors.append(
            validator.error(
                item, record, "manager", "a member cannot manage themselves"
            )
        )
    return errors


def _check_account(
    validator: JobValidator, item: _FileInput, record: dict
) -> list[RowError]:
    errors = []
    name = record["name"]
    duplicate = validator.check_unique(item, record, "name", name.lower(), "account")
    if duplicate:
        errors.append(duplicate)
    if (record.get("parent") or "").lower() == name.lower():
        errors.append(
            validator.error(
                item, record, "parent", "an account cannot be its own parent"
            )
        )
    return errors


def _check_product(
    validator: JobValidator, item: _FileInput, record: dict
) -> list[RowError]:
    key = Product.key_for(record["name"])
    if not key:
        return [
            validator.error(
                item, record, "name", "a product name needs a letter or a digit"
            )
        ]
    duplicate = validator.check_unique(item, record, "name", key, "product")
    return [duplicate] if duplicate else []


ROW_CHECKS = {
    "deals": _check_deal,
    "members": _check_member,
    "accounts": _check_account,
    "products": _check_product,
}
