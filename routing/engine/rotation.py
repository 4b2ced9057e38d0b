"""The distribution methods of a pool, as pure functions over its rotation state.

Each rep in a pool is a ``Slot`` with the values kept in
``RotationState.counters``. ``pick`` chooses among the available slots and
updates the chosen slot and the state. It does not touch unavailable
slots, so a rep who is skipped keeps their place in the rotation.

- Round robin: the rep whose last lead is oldest (``turn`` lowest) goes
  next; ties, such as reps who never had a lead, go by position. With
  everyone available this is the strict cycle A, B, C, A, ...; a rep who
  is away is passed over and is first in line when back.
- Weighted (smooth weighted round robin): every available rep's score
  (``current``) grows by their weight, the highest score wins (ties by
  position), and the winner's score drops by the total weight of the
  available reps. Weights 2:1:1 give A, B, C, A, A, B, C, A over 8 leads;
  weights 2:1 give A, B, A, A, B, A, ...
- Capacity: the weighted method with each rep's daily cap as the weight,
  so caps of 20 and 10 share leads 2:1 in the order A, B, A, and the daily
  caps stop each rep at their cap.
- Fewest open leads: the rep with the fewest open leads; ties go to the rep
  whose last lead is oldest, then by position.
- Value balanced: the rep with the least expected value given so far goes
  next (ties as in round robin), and the lead's expected value is added to
  theirs. A rep new to the pool starts at the lowest value of the others,
  so they share from then on instead of taking every lead until they catch
  up. Leads of equal value make this round robin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ROUND_ROBIN = "round_robin"
WEIGHTED = "weighted"
FEWEST_OPEN = "fewest_open"
CAPACITY = "capacity"
VALUE_BALANCED = "value_balanced"
METHODS = (ROUND_ROBIN, WEIGHTED, FEWEST_OPEN, CAPACITY, VALUE_BALANCED)


@dataclass
class Slot:
    """One rep of the pool, with their rotation values."""

    key: int  # the pool member id; the counters store it as a string
    position: int
    weight: int = 1
    turn: int = 0
    current: int = 0
    day: str = ""
    today: int = 0
    open_leads: int = 0
    # Expected value given so far, for the value-balanced method. None for a
    # rep who has none stored yet.
    value: Decimal | None = None

    def leads_on(self, day: str) -> int:
        """Return the leads this pool gave the rep on ``day``."""
        return self.today if self.day == day else 0


@dataclass
class Rotation:
    """A pool's rotation state: total leads given, and each rep's values."""

    turns: int = 0
    counters: dict[str, dict] = field(default_factory=dict)

    def slot(self, key: int, position: int, weight: int = 1) -> Slot:
        """Return the slot of pool member ``key`` with its stored values."""
        stored = self.counters.get(str(key), {})
        return Slot(
            key=key,
            position=position,
            weight=max(weight, 1),
            turn=stored.get("turn", 0),
            current=stored.get("current", 0),
            day=stored.get("day", ""),
            today=stored.get("today", 0),
            value=Decimal(stored["value"]) if "value" in stored else None,
        )

    def store(self, slot: Slot) -> None:
        values = {
            "turn": slot.turn,
            "current": slot.current,
            "day": slot.day,
            "today": slot.today,
        }
        if slot.value is not None:
            # A string, because JSON numbers would lose the decimal places.
            values["value"] = str(slot.value)
        self.counters[str(slot.key)] = values


def _rotation_order(slot: Slot) -> tuple:
    return (slot.turn, slot.position, slot.key)


def _value_baseline(rotation: Rotation) -> Decimal:
    """Return the lowest expected value stored for any rep of the pool, or 0."""
    values = [
        Decimal(stored["value"])
        for stored in rotation.counters.values()
        if "value" in stored
    ]
    return min(values, default=Decimal(0))


def pick(
    method: str,
    rotation: Rotation,
    available: list[Slot],
    day: str,
    lead_value: Decimal = Decimal(0),
) -> Slot:
    """Choose the next rep among ``available`` (not empty) and record the turn.

    ``day`` is the organisation-local date (ISO format) that daily counts
    belong to. ``lead_value`` is the lead's expected value, which only the
    value-balanced method uses.
    """
    if method in (WEIGHTED, CAPACITY):
        total = sum(slot.weight for slot in available)
        for slot in available:
            slot.current += slot.weight
        chosen = max(available, key=lambda s: (s.current, -s.position, -s.key))
        chosen.current -= total
        # Only the scores changed for the reps not chosen.
        for slot in available:
            if slot is not chosen:
                rotation.store(slot)
    elif method == FEWEST_OPEN:
        chosen = min(available, key=lambda s: (s.open_leads, *_rotation_order(s)))
    elif method == VALUE_BALANCED:
        baseline = _value_baseline(rotation)
        for slot in available:
            if slot.value is None:
                # Stored now, so that the next lead finds the same starting value.
                slot.value = baseline
                rotation.store(slot)
        chosen = min(available, key=lambda s: (s.value, *_rotation_order(s)))
        chosen.value += lead_value
    else:
        chosen = min(available, key=_rotation_order)

    rotation.turns += 1
    chosen.turn = rotation.turns
    chosen.today = chosen.leads_on(day) + 1
    chosen.day = day
    rotation.store(chosen)
    return chosen
