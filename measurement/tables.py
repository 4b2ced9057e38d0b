"""The team table: its columns, sorting, display cells and CSV export."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.http import HttpResponse

from measurement import formatting
from measurement.periods import Period
from measurement.selectors import ACTIVITY_TYPES, RepRow

DEFAULT_SORT = "bookings"
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    value: Callable[[RepRow], Any]
    format: Callable[[Any], str] = str
    numeric: bool = True


@dataclass(frozen=True)
class Cell:
    text: str
    numeric: bool

    @property
    def is_no_data(self) -> bool:
        return self.text == formatting.NO_DATA


def _team_name(row: RepRow) -> str | None:
    return row.member.team.name if row.member.team else None


COLUMNS = [
    Column("name", "Rep", lambda row: row.member.display_name, numeric=False),
    Column("team", "Team", _team_name, lambda name: name or "—", numeric=False),
    Column("won", "Won", lambda row: row.card.won),
    Column("lost", "Lost", lambda row: row.card.lost),
    Column("bookings", "Bookings", lambda row: row.card.bookings, formatting.money),
    Column(
        "units",
        "Credited units",
        lambda row: row.card.credited_units,
        formatting.quantity,
    ),
    Column("win_rate", "Win rate", lambda row: row.card.win_rate, formatting.percent),
    Column(
        "avg_cycle",
        "Avg. cycle (days)",
        lambda row: row.card.avg_cycle_days,
        formatting.tenths,
    ),
    Column("open_deals", "Open deals", lambda row: row.card.open_deals),
    Column(
        "pipeline", "Pipeline", lambda row: row.card.pipeline_value, formatting.money
    ),
    Column(
        "weighted",
        "Weighted pipeline",
        lambda row: row.card.weighted_pipeline,
        formatting.money,
    ),
    *(
        Column(
            f"activities_{kind}",
            f"{kind.capitalize()}s",
            lambda row, kind=kind: row.card.activities[kind],
        )
        for kind in ACTIVITY_TYPES
    ),
]
COLUMNS_BY_KEY = {column.key: column for column in COLUMNS}
# Name and team lead the CSV as text columns of their own.
METRIC_COLUMNS = COLUMNS[2:]


def _sortable(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def sort_rows(rows: list[RepRow], key: str, direction: str) -> tuple[str, str]:
    """Sort ``rows`` in place and return the sort key and direction applied.

    An unknown key falls back to bookings, descending. Rows with no value
    ("no data", or no team) go last in either direction, and ties keep the
    incoming name order because Python's sort is stable.
    """
    column = COLUMNS_BY_KEY.get(key)
    if column is None:
        column, direction = COLUMNS_BY_KEY[DEFAULT_SORT], "desc"
    if direction not in ("asc", "desc"):
        direction = "desc" if column.numeric else "asc"

    present = [row for row in rows if column.value(row) is not None]
    missing = [row for row in rows if column.value(row) is None]
    present.sort(
        key=lambda row: _sortable(column.value(row)), reverse=direction == "desc"
    )
    rows[:] = present + missing
    return column.key, direction


def display_cells(row: RepRow) -> list[Cell]:
    """Return the row's cells after the name, formatted for the page."""
    return [
        Cell(column.format(column.value(row)), column.numeric) for column in COLUMNS[1:]
    ]


def _text_cell(value: str) -> str:
    """Quote text that a spreadsheet would otherwise evaluate as a formula."""
    return f"'{value}" if value.startswith(FORMULA_PREFIXES) else value


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def csv_response(rows: list[RepRow], period: Period) -> HttpResponse:
    """Write the table as CSV. A metric with no data is an empty cell."""
    filename = f"team-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'

    writer = csv.writer(response)
    header = ["member_id", "name", "email", "team", "period_start", "period_end"]
    writer.writerow(header + [column.key for column in METRIC_COLUMNS])
    for row in rows:
        member = row.member
        fixed = [
            str(member.public_id),
            _text_cell(member.display_name),
            _text_cell(row.email),
            _text_cell(_team_name(row) or ""),
            period.start.isoformat(),
            period.end.isoformat(),
        ]
        metrics = [_csv_cell(column.value(row)) for column in METRIC_COLUMNS]
        writer.writerow(fixed + metrics)
    return response
