"""Plain-language plan documents and version diffs, written from the engine's rules.

Every sentence is built from the spec that compensation.engine parses for
the calculation (``PlanComponent.to_engine``), so the document cannot state
a rule the engine does not pay. Rates are shown as percentages, amounts
in the plan's currency, and attainment bounds as percentages of quota.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from compensation.engine.bonus import BonusSpec
from compensation.engine.flat import FlatSpec
from compensation.engine.override import OverrideSpec
from compensation.engine.plans import Component
from compensation.engine.spiff import Condition, SpiffSpec
from compensation.engine.tiered import TieredSpec
from compensation.engine.tiers import Tier
from compensation.engine.types import ParamsError
from compensation.engine.values import money, percent, plain
from compensation.models import PlanVersion

OPERATOR_WORDS = {
    "equals": "is",
    "not_equals": "is not",
    "contains": "contains",
    "in": "is one of",
    "gt": "is over",
    "gte": "is at least",
    "lt": "is under",
    "lte": "is at most",
}
TIMING_SENTENCES = {
    "at_close": "Commission is paid in the period the deal is credited.",
    "on_payment": "Commission is paid pro rata as the customer pays.",
    "on_full_payment": "Commission is paid once the customer has paid in full.",
}
LEVEL_WORDS = {1: "your direct reports", 2: "your direct reports and their reports"}


@dataclass(frozen=True)
class ComponentSection:
    name: str
    kind_label: str
    sentences: tuple[str, ...]


@dataclass(frozen=True)
class PlanDocument:
    title: str
    effective_from: str
    general: tuple[str, ...]
    components: tuple[ComponentSection, ...] = field(default_factory=tuple)


def _amount(value: Decimal, currency: str) -> str:
    return f"{money(value)} {currency}"


def _tier_bounds(tier: Tier, basis: str, currency: str) -> str:
    """Write a tier as "from 100% to 150% of quota" or "from 0.00 to 10,000.00 USD"."""
    if basis == "attainment":
        if tier.upper is None:
            return f"from {plain(tier.lower)}% of quota up"
        return f"from {plain(tier.lower)}% to {plain(tier.upper)}% of quota"
    if tier.upper is None:
        return f"from {_amount(tier.lower, currency)} up"
    return f"from {money(tier.lower)} to {_amount(tier.upper, currency)}"


def tier_label(tier: Tier, basis: str) -> str:
    """Name a tier briefly, as "100-150%" or "10,000.00 and up"."""
    write, unit = (plain, "%") if basis == "attainment" else (money, "")
    if tier.upper is None:
        return f"{write(tier.lower)}{unit} and up"
    return f"{write(tier.lower)}-{write(tier.upper)}{unit}"


def _flat_sentences(spec: FlatSpec, currency: str) -> list[str]:
    return [f"Every booking earns {percent(spec.rate)}."]


def _tiered_sentences(spec: TieredSpec, currency: str) -> list[str]:
    sentences = []
    for tier in spec.tiers.tiers:
        bounds = _tier_bounds(tier, spec.basis, currency)
        sentences.append(f"Bookings {bounds} earn {percent(tier.rate)}.")
    if spec.mode == "marginal":
        sentences.append(
            "Each part of the period's bookings earns the rate of the tier it falls in."
        )
    else:
        sentences.append(
            "Once the period's bookings reach a tier, all of them earn that "
            "tier's rate."
        )
    if spec.threshold is not None:
        if spec.basis == "attainment":
            level = f"{plain(spec.threshold)}% of quota"
        else:
            level = _amount(spec.threshold, currency)
        sentences.append(f"Nothing is paid until the period's bookings reach {level}.")
    return sentences


def _bonus_sentences(spec: BonusSpec, currency: str) -> list[str]:
    sentences = []
    for milestone in spec.milestones:
        if milestone.amount is not None:
            pays = f"a bonus of {_amount(milestone.amount, currency)}"
        else:
            pays = (
                f"a bonus of {plain(milestone.target_incentive_percent)}% of the "
                "target incentive"
            )
        sentences.append(
            f"Reaching {plain(milestone.attainment)}% of quota in a period pays {pays}."
        )
    return sentences


def describe_condition(condition: Condition) -> str:
    value = condition.value
    if isinstance(value, tuple):
        value_text = ", ".join(f'"{item}"' for item in value)
    elif isinstance(value, Decimal):
        value_text = money(value)
    else:
        value_text = f'"{value}"'
    return f"{condition.field} {OPERATOR_WORDS[condition.operator]} {value_text}"


def _spiff_sentences(spec: SpiffSpec, currency: str) -> list[str]:
    deals = f"Deals closed from {spec.starts_on:%Y-%m-%d} to {spec.ends_on:%Y-%m-%d}"
    if spec.conditions:
        deals += " where " + " and ".join(
            describe_condition(condition) for condition in spec.conditions
        )
    if spec.amount is not None:
        return [
            f"{deals} earn {_amount(spec.amount, currency)} each, split like the deal."
        ]
    return [f"{deals} earn {percent(spec.rate)} of their amount."]


def _override_sentences(spec: OverrideSpec, currency: str) -> list[str]:
    if spec.levels is None:
        recipients = "everyone in your reporting tree"
    else:
        recipients = LEVEL_WORDS.get(
            spec.levels, f"your reports down to {spec.levels} levels"
        )
    return [f"You earn {percent(spec.rate)} of the bookings credited to {recipients}."]


WRITERS = {
    "flat": _flat_sentences,
    "tiered": _tiered_sentences,
    "bonus": _bonus_sentences,
    "spiff": _spiff_sentences,
    "override": _override_sentences,
}


def component_sentences(component: Component, currency: str) -> list[str]:
    """Write one sentence per rule of ``component``, caps last."""
    sentences = WRITERS[component.kind](component.spec, currency)
    if component.cap_per_deal is not None:
        sentences.append(
            f"One deal earns at most {_amount(component.cap_per_deal, currency)} "
            "from this component, before any split."
        )
    if component.cap_per_period is not None:
        sentences.append(
            f"This component pays at most "
            f"{_amount(component.cap_per_period, currency)} a period."
        )
    return sentences


def general_sentences(version: PlanVersion) -> list[str]:
    currency = version.plan.currency
    sentences = [f"The plan pays in {currency}."]
    if version.cap_per_period is not None:
        sentences.append(
            f"The whole plan pays at most {_amount(version.cap_per_period, currency)} "
            "a period."
        )
    sentences.append(TIMING_SENTENCES[version.payout_timing])
    if version.clawback == PlanVersion.Clawback.FULL:
        sentences.append(
            "If a deal is cancelled within "
            f"{version.clawback_term_months} months, all of its commission is "
            "taken back."
        )
    elif version.clawback == PlanVersion.Clawback.PRORATED:
        sentences.append(
            "If a deal is cancelled within "
            f"{version.clawback_term_months} months, the commission for the "
            "unserved share of that term is taken back."
        )
    return sentences


def engine_components(version: PlanVersion) -> list[tuple[str, Component]]:
    """Return ``(kind label, engine component)`` for each component, in order.

    Raises ParamsError naming the component when its parameters are invalid.
    """
    parsed = []
    for row in version.components.all():
        try:
            parsed.append((row.get_kind_display(), row.to_engine()))
        except ParamsError as error:
            raise ParamsError(f"{row.name}: {error.field}", error.message) from error
    return parsed


def plan_document(version: PlanVersion) -> PlanDocument:
    """Write ``version`` as sentences a rep can check their statement against."""
    currency = version.plan.currency
    sections = tuple(
        ComponentSection(
            component.name, label, tuple(component_sentences(component, currency))
        )
        for label, component in engine_components(version)
    )
    return PlanDocument(
        title=version.label,
        effective_from=f"{version.effective_from:%Y-%m-%d}",
        general=tuple(general_sentences(version)),
        components=sections,
    )


# Diffs ------------------------------------------------------------------------


def _change(label: str, old: str, new: str) -> str | None:
    return None if old == new else f"{label}: {old} -> {new}"


def _cap_change(subject: str, old: Decimal | None, new: Decimal | None) -> str | None:
    if old == new:
        return None
    if new is None:
        return f"{subject} removed (was {money(old)})"
    if old is None:
        return f"{subject} added: {money(new)}"
    return f"{subject}: {money(old)} -> {money(new)}"


def _optional(value: Decimal | None, write=plain) -> str:
    return "none" if value is None else write(value)


def _tier_changes(old: TieredSpec, new: TieredSpec) -> list[str]:
    def keyed(spec: TieredSpec) -> dict[tuple, Tier]:
        return {(tier.lower, tier.upper): tier for tier in spec.tiers.tiers}

    old_tiers, new_tiers = keyed(old), keyed(new)
    lines = []
    for key, tier in new_tiers.items():
        label = tier_label(tier, new.basis)
        if key not in old_tiers:
            lines.append(f"Tier {label} added at {percent(tier.rate)}")
        elif old_tiers[key].rate != tier.rate:
            before = percent(old_tiers[key].rate)
            lines.append(f"Tier {label}: rate {before} -> {percent(tier.rate)}")
    for key, tier in old_tiers.items():
        if key not in new_tiers:
            lines.append(
                f"Tier {tier_label(tier, old.basis)} removed (was {percent(tier.rate)})"
            )
    return lines


def _tiered_changes(old: TieredSpec, new: TieredSpec) -> list[str]:
    lines = [
        _change("Basis", old.basis, new.basis),
        _change("Mode", old.mode, new.mode),
        _change("Threshold", _optional(old.threshold), _optional(new.threshold)),
    ]
    return [line for line in lines if line] + _tier_changes(old, new)


def _flat_changes(old: FlatSpec, new: FlatSpec) -> list[str]:
    line = _change("Rate", percent(old.rate), percent(new.rate))
    return [line] if line else []


def _milestone_pay(milestone) -> str:
    if milestone.amount is not None:
        return money(milestone.amount)
    return f"{plain(milestone.target_incentive_percent)}% of target incentive"


def _bonus_changes(old: BonusSpec, new: BonusSpec) -> list[str]:
    old_rows = {m.attainment: m for m in old.milestones}
    new_rows = {m.attainment: m for m in new.milestones}
    lines = []
    for level, milestone in new_rows.items():
        label = f"Milestone {plain(level)}%"
        if level not in old_rows:
            lines.append(f"{label} added: {_milestone_pay(milestone)}")
            continue
        line = _change(
            label, _milestone_pay(old_rows[level]), _milestone_pay(milestone)
        )
        if line:
            lines.append(line)
    for level, milestone in old_rows.items():
        if level not in new_rows:
            lines.append(
                f"Milestone {plain(level)}% removed (was {_milestone_pay(milestone)})"
            )
    return lines


def _spiff_pay(spec: SpiffSpec) -> str:
    if spec.amount is not None:
        return f"{money(spec.amount)} per deal"
    return f"{percent(spec.rate)} of the amount"


def _spiff_changes(old: SpiffSpec, new: SpiffSpec) -> list[str]:
    def window(spec: SpiffSpec) -> str:
        return f"{spec.starts_on:%Y-%m-%d} to {spec.ends_on:%Y-%m-%d}"

    def conditions(spec: SpiffSpec) -> str:
        return " and ".join(describe_condition(c) for c in spec.conditions) or "none"

    lines = [
        _change("Window", window(old), window(new)),
        _change("Pays", _spiff_pay(old), _spiff_pay(new)),
        _change("Conditions", conditions(old), conditions(new)),
    ]
    return [line for line in lines if line]


def _override_changes(old: OverrideSpec, new: OverrideSpec) -> list[str]:
    def levels(spec: OverrideSpec) -> str:
        return "whole tree" if spec.levels is None else str(spec.levels)

    lines = [
        _change("Rate", percent(old.rate), percent(new.rate)),
        _change("Levels", levels(old), levels(new)),
    ]
    return [line for line in lines if line]


CHANGE_WRITERS = {
    "flat": _flat_changes,
    "tiered": _tiered_changes,
    "bonus": _bonus_changes,
    "spiff": _spiff_changes,
    "override": _override_changes,
}


def _component_changes(old: Component, new: Component) -> list[str]:
    if old.kind != new.kind:
        return [f"Kind: {old.kind} -> {new.kind}"]
    lines = CHANGE_WRITERS[new.kind](old.spec, new.spec)
    for subject, before, after in (
        ("Cap per deal", old.cap_per_deal, new.cap_per_deal),
        ("Cap per period", old.cap_per_period, new.cap_per_period),
    ):
        line = _cap_change(subject, before, after)
        if line:
            lines.append(line)
    return lines


def _plan_changes(old: PlanVersion, new: PlanVersion) -> list[str]:
    lines = [
        _change(
            "Effective from",
            f"{old.effective_from:%Y-%m-%d}",
            f"{new.effective_from:%Y-%m-%d}",
        ),
        _cap_change("Plan cap per period", old.cap_per_period, new.cap_per_period),
        _change(
            "Commission is paid",
            old.get_payout_timing_display(),
            new.get_payout_timing_display(),
        ),
        _change("Clawback", old.get_clawback_display(), new.get_clawback_display()),
    ]
    if old.clawback and new.clawback:
        lines.append(
            _change(
                "Clawback term",
                f"{old.clawback_term_months} months",
                f"{new.clawback_term_months} months",
            )
        )
    return [line for line in lines if line]


def version_diff(old: PlanVersion, new: PlanVersion) -> list[str]:
    """List the changes from ``old`` to ``new``, one plain sentence each.

    Components are matched by name, ignoring case, so a renamed component
    shows as one removed and one added.
    """
    lines = _plan_changes(old, new)
    currency = new.plan.currency
    old_parts = {c.name.casefold(): c for _, c in engine_components(old)}
    new_parts = {c.name.casefold(): c for _, c in engine_components(new)}
    for key, component in new_parts.items():
        if key not in old_parts:
            rules = " ".join(component_sentences(component, currency))
            lines.append(f"{component.name} added: {rules}")
            continue
        for change in _component_changes(old_parts[key], component):
            lines.append(f"{component.name}, {change[0].lower()}{change[1:]}")
    for key, component in old_parts.items():
        if key not in new_parts:
            lines.append(f"{component.name} removed")
    return lines
