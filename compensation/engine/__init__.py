"""The commission calculation engine: pure functions over plain dataclasses.

Nothing here reads the database. compensation.services loads plans,
credits and history, builds a ``Payee`` and calls ``calculate_periods``.
One module per component kind (flat, tiered, bonus, spiff, override), plus
caps, payments, clawback and draws; statement.py puts them in order.
"""

from compensation.engine.components import build_component, parse_params
from compensation.engine.draws import DrawTerms
from compensation.engine.payments import Payment
from compensation.engine.plans import (
    Assignment,
    ClawbackTerms,
    Component,
    FxRateDate,
    PayoutTiming,
    PlanTerms,
    TeamMember,
)
from compensation.engine.statement import (
    Carry,
    Payee,
    calculate_period,
    calculate_periods,
)
from compensation.engine.tiers import TierTable
from compensation.engine.types import (
    CalculationError,
    Credit,
    LineKind,
    ParamsError,
    Statement,
    StatementLine,
)

__all__ = [
    "Assignment",
    "CalculationError",
    "Carry",
    "ClawbackTerms",
    "Component",
    "Credit",
    "DrawTerms",
    "FxRateDate",
    "LineKind",
    "ParamsError",
    "Payee",
    "Payment",
    "PayoutTiming",
    "PlanTerms",
    "Statement",
    "StatementLine",
    "TeamMember",
    "TierTable",
    "build_component",
    "calculate_period",
    "calculate_periods",
    "parse_params",
]
