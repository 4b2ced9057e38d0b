"""Readable text for the audit log entries of follow-up sequences."""

from __future__ import annotations

from followups.models import Step


def step_audit_text(values: dict) -> str:
    """Describe one audited step as a sentence for the audit log.

    ``values`` is one item of the "steps" list in the entries that
    ``followups.configuration`` writes. The text reads, for example,
    "Step 1: after 2 business days, send an email, subject 'Intro', body
    'Hi {{ first_name }}'". Empty fields are left out, and an unknown delay
    unit or action shows as stored.
    """
    delay_unit = values.get("delay_unit", "")
    amount = values.get("delay_amount", 0)
    nouns = Step.DELAY_UNIT_NOUNS.get(delay_unit, (delay_unit, delay_unit))
    delay = f"{amount} {nouns[0] if amount == 1 else nouns[1]}"
    action = values.get("action", "")
    action_label = dict(Step.Action.choices).get(action, action)
    parts = [f"Step {values.get('order', '?')}: after {delay}, {action_label.lower()}"]
    if values.get("field_name"):
        parts.append(f"set {values['field_name']} to {values.get('field_value')!r}")
    for field in ("subject", "body"):
        if values.get(field):
            parts.append(f"{field} {values[field]!r}")
    return ", ".join(parts)
