"""Qualification: the step between lead intake and routing.

Intake calls ``lead_qualify`` on every received lead before it stores the
lead and starts routing it. Today the step only normalises the fields.
Scoring, disqualification and deduplication belong here: they can change
the fields, or set ``route`` to False with a ``reason`` to keep the lead
out of routing.
"""

from __future__ import annotations

from dataclasses import dataclass

from routing.normalization import normalize_lead
from spm.models import Organization


@dataclass(frozen=True)
class QualifiedLead:
    fields: dict
    route: bool = True
    reason: str = ""


def lead_qualify(*, organization: Organization, fields: dict) -> QualifiedLead:
    """Return the lead's normalised fields and whether to route it.

    Raises ``routing.normalization.LeadInputError`` naming each invalid field.
    """
    return QualifiedLead(fields=normalize_lead(fields))
