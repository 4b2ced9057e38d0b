"""Apply custom-field mappings to synced deals.

A ``FieldMapping`` of deals names a CRM property (a HubSpot deal property, a
Salesforce Opportunity field or a Pipedrive deal field) whose value fills one
Attain field of the deal. The connector requests the mapped properties, and
the deal writer converts each value here:

- A record that does not carry the property leaves the field as stored.
- An empty value clears the field.
- A value that does not fit the field (a lead score that is not a whole
  number, say) leaves that field as stored and adds an error naming the
  record, the field and the value to the run. The rest of the record is
  still written.

The product target keeps the deal's first product line (``DealProduct``) on
the named product, as the CSV import does, and creates the product when no
product has that name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from activity.models import Deal, DealProduct, Product
from integrations.connectors import base
from integrations.models import CrmConnection, FieldMapping

if TYPE_CHECKING:
    from integrations.writers import SyncContext, Written

Target = FieldMapping.Target
TEXT_MAX_LENGTH = 120
PRODUCT_NAME_MAX_LENGTH = 255
# PostgreSQL integer bounds, the column type of Deal.lead_score.
INTEGER_MIN = -(2**31)
INTEGER_MAX = 2**31 - 1
TRUE_WORDS = {"true", "yes", "y", "1", "on"}
FALSE_WORDS = {"false", "no", "n", "0", "off"}


class UnfitValue(ValueError):
    """A CRM value that the mapped Attain field cannot store."""


def deal_field_mappings(connection: CrmConnection) -> dict[str, str]:
    """Return the connection's deal mappings as {target: CRM property}."""
    rows = FieldMapping.objects.filter(
        connection=connection, object_type=base.DEALS
    ).values_list("target", "crm_property")
    return dict(rows)


@dataclass
class MappedProduct:
    """The product a deal record names, or None to drop its product line."""

    name: str | None
    amount: Decimal | None


def mapped_values(ctx: SyncContext, record: base.CrmRecord) -> dict[str, Any]:
    """Return the deal columns that ``record``'s mapped properties set.

    The product target is not a column and is left to ``mapped_product``.
    """
    values = {}
    for target, crm_property in ctx.deal_fields.items():
        if target == Target.PRODUCT or crm_property not in record.properties:
            continue
        raw = record.properties[crm_property]
        try:
            values[target] = CONVERTERS[target](raw)
        except UnfitValue as error:
            _unfit(ctx, record, target, crm_property, raw, str(error))
    return values


def mapped_product(
    ctx: SyncContext, record: base.CrmRecord, amount: Decimal | None
) -> MappedProduct | None:
    """Return the product ``record`` maps, or None when it maps none."""
    crm_property = ctx.deal_fields.get(Target.PRODUCT)
    if crm_property is None or crm_property not in record.properties:
        return None
    raw = record.properties[crm_property]
    name = _text_or_empty(raw)
    if len(name) > PRODUCT_NAME_MAX_LENGTH:
        reason = f"is longer than {PRODUCT_NAME_MAX_LENGTH} characters"
        _unfit(ctx, record, Target.PRODUCT, crm_property, raw, reason)
        return None
    if name and not Product.key_for(name):
        reason = "has no letter or digit to match a product by"
        _unfit(ctx, record, Target.PRODUCT, crm_property, raw, reason)
        return None
    return MappedProduct(name or None, amount)


def product_lines_write(
    ctx: SyncContext, products: dict[str, MappedProduct], written: dict[str, Written]
) -> None:
    """Point each deal's first product line at its mapped product.

    A deal whose line changed while its own row did not is counted as
    updated instead of unchanged.
    """
    if not products:
        return
    deal_ids = dict(
        Deal.objects.filter(
            external_source=ctx.source, external_id__in=list(products)
        ).values_list("external_id", "id")
    )
    first_lines = _first_lines(deal_ids.values())
    product_ids = _product_ids(ctx, [p.name for p in products.values() if p.name])
    new, changed, deleted = [], [], []
    for external_id, mapped in products.items():
        deal_id = deal_ids.get(external_id)
        if deal_id is None:
            continue
        line = first_lines.get(deal_id)
        if mapped.name is None:
            if line is not None:
                deleted.append(line.pk)
                _count_line_change(ctx, written.get(external_id))
            continue
        product_id = product_ids[Product.key_for(mapped.name)]
        if line is None:
            new.append(_line(ctx, deal_id, product_id, mapped.amount))
        elif line.product_id != product_id or line.amount != mapped.amount:
            line.product_id = product_id
            line.amount = line.unit_price = mapped.amount
            changed.append(line)
        else:
            continue
        _count_line_change(ctx, written.get(external_id))
    DealProduct.objects.filter(pk__in=deleted).delete()
    DealProduct.objects.bulk_update(changed, ["product", "amount", "unit_price"])
    DealProduct.objects.bulk_create(new)


def _first_lines(deal_ids) -> dict[int, DealProduct]:
    lines: dict[int, DealProduct] = {}
    for line in DealProduct.objects.filter(deal_id__in=list(deal_ids)).order_by("id"):
        lines.setdefault(line.deal_id, line)
    return lines


def _product_ids(ctx: SyncContext, names: list[str]) -> dict[str, int]:
    """Return {match key: product id} for ``names``, creating missing products."""
    # The first spelling of a product in the page names a new product.
    names_by_key: dict[str, str] = {}
    for name in names:
        names_by_key.setdefault(Product.key_for(name), name)
    rows = Product.objects.filter(match_key__in=list(names_by_key))
    ids = dict(rows.values_list("match_key", "id"))
    for key, name in names_by_key.items():
        if key not in ids:
            product = Product.objects.create(
                organization=ctx.connection.organization,
                name=name,
                external_source=ctx.source,
            )
            ids[key] = product.pk
    return ids


def _line(
    ctx: SyncContext, deal_id: int, product_id: int, amount: Decimal | None
) -> DealProduct:
    return DealProduct(
        organization=ctx.connection.organization,
        deal_id=deal_id,
        product_id=product_id,
        quantity=Decimal(1),
        unit_price=amount,
        amount=amount,
    )


def _count_line_change(ctx: SyncContext, result: Written | None) -> None:
    if result is None or result.changed:
        return
    counts = ctx.counts[base.DEALS]
    counts.unchanged -= 1
    counts.updated += 1
    result.changed = True


def _unfit(
    ctx: SyncContext,
    record: base.CrmRecord,
    target: str,
    crm_property: str,
    raw: Any,
    reason: str,
) -> None:
    label = Target(target).label
    ctx.errors.append(
        {
            "object_type": base.DEALS,
            "record_id": record.id,
            "message": (
                f"Deal {record.id}: the value {raw!r} of CRM property "
                f"{crm_property!r} {reason}, so the deal's {label.lower()} was left "
                "unchanged. Correct the value in the CRM or map another property."
            ),
        }
    )


# Converters: each returns the column value or raises UnfitValue with the
# reason, written to follow "the value ... of CRM property ...".


def _text_or_empty(raw: Any) -> str:
    return "" if raw is None else str(raw).strip()


def _text(raw: Any) -> str:
    text = _text_or_empty(raw)
    if len(text) > TEXT_MAX_LENGTH:
        raise UnfitValue(f"is longer than {TEXT_MAX_LENGTH} characters")
    return text


def _whole_number(raw: Any) -> int | None:
    text = _text_or_empty(raw)
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise UnfitValue("is not a whole number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise UnfitValue("is not a whole number")
    if not INTEGER_MIN <= number <= INTEGER_MAX:
        raise UnfitValue(f"is outside {INTEGER_MIN} to {INTEGER_MAX}")
    return int(number)


def _yes_or_no(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    word = _text_or_empty(raw).casefold()
    if not word:
        return None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise UnfitValue("is not yes or no (true, false, 1 or 0)")


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    Target.DEAL_TYPE: _text,
    Target.SEGMENT: _text,
    Target.LEAD_SCORE: _whole_number,
    Target.COMMISSION_ELIGIBLE: _yes_or_no,
}
