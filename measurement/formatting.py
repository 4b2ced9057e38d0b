"""Display strings for metric values, shared by templates, charts and CSV."""

from __future__ import annotations

from decimal import Decimal

NO_DATA = "no data"


def money(value: Decimal | None) -> str:
    """Format an amount with thousands separators and cents: "12,345.00"."""
    if value is None:
        return NO_DATA
    return f"{value:,.2f}"


def percent(value: Decimal | None) -> str:
    """Format a percentage that is already rounded to 0.1: "40.0%"."""
    if value is None:
        return NO_DATA
    return f"{value:.1f}%"


def days(value: Decimal | None) -> str:
    if value is None:
        return NO_DATA
    return f"{value:.1f} days"


def tenths(value: Decimal | None) -> str:
    if value is None:
        return NO_DATA
    return f"{value:,.1f}"


def quantity(value: Decimal | None) -> str:
    """Format a unit count, dropping zero cents: "10" or "2.50"."""
    if value is None:
        return NO_DATA
    if value == value.to_integral_value():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def multiple(value: Decimal | None) -> str:
    """Format a ratio that is already rounded to 0.01 as a multiple: "3.00x"."""
    if value is None:
        return NO_DATA
    return f"{value:.2f}x"


# Page labels of the coverage target sources of goals.selectors.CoverageTarget.
TARGET_SOURCES = {
    "rep": "own",
    "team": "team",
    "organization": "org",
    "fixed": "fixed",
    "none": "none",
}


def target_source(source: str) -> str:
    return TARGET_SOURCES.get(source, source)
