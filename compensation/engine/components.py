"""The component kinds, each a module with ``parse(params)`` and ``calculate``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from types import ModuleType
from typing import Any

from compensation.engine import bonus, flat, override, spiff, tiered
from compensation.engine.plans import Component, Segment
from compensation.engine.types import ParamsError, StatementLine

KINDS: Mapping[str, ModuleType] = {
    "flat": flat,
    "tiered": tiered,
    "bonus": bonus,
    "spiff": spiff,
    "override": override,
}
# A cap per deal limits a deal's commission; bonuses and overrides are not
# paid per deal, so it does not apply to them.
KINDS_WITH_DEAL_CAP = frozenset({"flat", "tiered", "spiff"})


def parse_params(kind: str, params: Any) -> Any:
    """Validate ``params`` of a component of ``kind`` and return its parsed spec."""
    module = KINDS.get(kind)
    if module is None:
        raise ParamsError("kind", f"{kind!r} is not one of {', '.join(KINDS)}.")
    return module.parse(params if params is not None else {})


def build_component(
    *,
    name: str,
    kind: str,
    params: Any,
    cap_per_deal: Decimal | None = None,
    cap_per_period: Decimal | None = None,
    id: int | None = None,
) -> Component:
    if cap_per_deal is not None and kind not in KINDS_WITH_DEAL_CAP:
        raise ParamsError("cap_per_deal", f"does not apply to a {kind} component.")
    return Component(
        name=name,
        kind=kind,
        spec=parse_params(kind, params),
        cap_per_deal=cap_per_deal,
        cap_per_period=cap_per_period,
        id=id,
    )


def calculator(kind: str) -> Callable[[Component, Segment], list[StatementLine]]:
    return KINDS[kind].calculate
