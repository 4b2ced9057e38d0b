"""CSV cells made safe to open in a spreadsheet."""

from __future__ import annotations

import re

# A cell that a spreadsheet would run: =, +, @, a tab or carriage return
# first, or a minus sign not followed by a number.
FORMULA_START = re.compile(r"^[=+@\t\r]|^-[^\d.]")


def spreadsheet_safe(cell) -> str:
    """Return ``cell`` as text, with a quote before anything a spreadsheet would run.

    A negative amount such as -123.45 is a number, not a formula, and stays
    as it is, so payroll and import files keep their signs.
    """
    text = str(cell)
    return "'" + text if FORMULA_START.match(text) else text
