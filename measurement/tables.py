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
from measurement.progress import ActivityStatus, CoverageStatus, RepProgress
from measurement.selectors import ACTIVITY_TYPES, RepRow

DEFAULT_SORT = "bookings"
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class CellPart:
    """One line of a cell that lists several statuses, such as activity types."""

    text: str
    status: str


@dataclass(frozen=True)
class Cell:
    """A table cell as the page shows it.

    ``placeholder`` marks text shown in place of a missing value, such as
    "no quota". ``status`` names a CSS class suffix (``status-below``) that
    repeats the status already written in the text.
    """

    text: str
    numeric: bool
    note: str = ""
    marker: str = ""
    status: str = ""
    placeholder: bool = False
    parts: tuple[CellPart, ...] = ()

    @property
    def is_no_data(self) -> bool:
        return self.text == formatting.NO_DATA


@dataclass(frozen=True)
class Column:
    """A table column: ``value`` sorts and ``format`` or ``cell`` displays."""

    key: str
    label: str
    value: Callable[[RepRow], Any]
    format: Callable[[Any], str] = str
    numeric: bool = True
    cell: Callable[[RepRow], Cell] | None = None


def _team_name(row: RepRow) -> str | None:
    return row.member.team.name if row.member.team else None


NO_QUOTA = "no quota"
NO_BENCHMARK = "no benchmark"
# Sort key of a rep whose quota is reached, so "met" comes before any ratio.
MET_SORT_VALUE = Decimal("Infinity")


def _placeholder(text: str) -> Cell:
    return Cell(text, numeric=True, placeholder=True)


def _progress_value(read: Callable[[RepProgress], Any]) -> Callable[[RepRow], Any]:
    """Read a value from the row's progress, ``None`` when it has none."""
    return lambda row: None if row.progress is None else read(row.progress)


def _quota_cell(row: RepRow) -> Cell:
    quota = row.progress.quota if row.progress else None
    if quota is None:
        return _placeholder(NO_QUOTA)
    if not quota.is_prorated:
        return Cell(formatting.money(quota.amount), numeric=True)
    return Cell(
        formatting.money(quota.amount),
        numeric=True,
        note=f"of {formatting.money(quota.original)}",
        marker="prorated",
    )


def _percent_of_quota_cell(read: Callable[[RepProgress], Any]) -> Callable:
    """Show a percentage of quota, or "no quota" rather than 0% without one."""

    def cell(row: RepRow) -> Cell:
        if row.progress is None or row.progress.quota is None:
            return _placeholder(NO_QUOTA)
        return Cell(formatting.percent(read(row.progress)), numeric=True)

    return cell


def _coverage_value(row: RepRow) -> Decimal | None:
    if row.progress is None or row.progress.quota is None:
        return None
    if row.progress.coverage_status == CoverageStatus.MET:
        return MET_SORT_VALUE
    return row.progress.coverage.ratio


def _coverage_cell(row: RepRow) -> Cell:
    progress = row.progress
    if progress is None or progress.coverage_status == CoverageStatus.NO_QUOTA:
        return _placeholder(NO_QUOTA)
    status = progress.coverage_status
    if status == CoverageStatus.MET:
        return Cell("met", numeric=True, note="quota reached", status="met")
    ratio = formatting.multiple(progress.coverage.ratio)
    if status == CoverageStatus.NO_TARGET:
        return Cell(ratio, numeric=True, note="no target", status="none")
    target = progress.coverage_target
    return Cell(
        f"{ratio} vs {formatting.multiple(target.ratio)}",
        numeric=True,
        note=f"{status} ({formatting.target_source(target.source)})",
        status=status,
    )


def activity_text(status: ActivityStatus) -> str:
    """Describe one activity type's status: "Calls: near (85.0%)"."""
    label = f"{status.activity_type.capitalize()}s"
    if status.ratio is None:
        text = f"{label}: none expected"
    else:
        text = f"{label}: {status.status} ({formatting.percent(status.ratio)})"
    return f"{text}, ramping" if status.ramped else text


def _activity_value(row: RepRow) -> Decimal | None:
    """Sort by the lowest ratio among the benchmarked types."""
    if row.progress is None:
        return None
    ratios = [s.ratio for s in row.progress.activity if s.ratio is not None]
    return min(ratios, default=None)


def _activity_cell(row: RepRow) -> Cell:
    if row.progress is None or not row.progress.activity:
        return Cell(NO_BENCHMARK, numeric=False, placeholder=True)
    parts = tuple(
        CellPart(activity_text(status), status.status)
        for status in row.progress.activity
    )
    return Cell("", numeric=False, parts=parts)


GOAL_COLUMNS = [
    Column(
        "quota",
        "Quota",
        _progress_value(lambda p: p.quota.amount if p.quota else None),
        cell=_quota_cell,
    ),
    Column(
        "attainment",
        "Attainment",
        _progress_value(lambda p: p.attainment),
        cell=_percent_of_quota_cell(lambda p: p.attainment),
    ),
    Column("pace", "Pace", _progress_value(lambda p: p.pace), formatting.percent),
    Column(
        "to_pace",
        "Attainment to pace",
        _progress_value(lambda p: p.attainment_to_pace),
        cell=_percent_of_quota_cell(lambda p: p.attainment_to_pace),
    ),
    Column(
        "forecast",
        "Forecast",
        _progress_value(lambda p: p.forecast),
        formatting.money,
    ),
    Column("coverage", "Coverage vs target", _coverage_value, cell=_coverage_cell),
    Column(
        "activity",
        "Activity vs benchmark",
        _activity_value,
        numeric=False,
        cell=_activity_cell,
    ),
]

BASE_COLUMNS = [
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
# The goal columns follow bookings on the page. The CSV keeps the earlier
# columns in their order and adds the goal fields after them.
BOOKINGS_INDEX = 5
COLUMNS = BASE_COLUMNS[:BOOKINGS_INDEX] + GOAL_COLUMNS + BASE_COLUMNS[BOOKINGS_INDEX:]
COLUMNS_BY_KEY = {column.key: column for column in COLUMNS}
# Name and team lead the CSV as text columns of their own.
METRIC_COLUMNS = BASE_COLUMNS[2:]


def _activity_field(kind: str, read: Callable[[ActivityStatus], Any]):
    def value(progress: RepProgress) -> Any:
        for status in progress.activity:
            if status.activity_type == kind:
                return read(status)
        return None

    return value


GOAL_CSV_FIELDS: list[tuple[str, Callable[[RepProgress], Any]]] = [
    ("quota", lambda p: p.quota.amount if p.quota else None),
    ("quota_original", lambda p: p.quota.original if p.quota else None),
    ("attainment", lambda p: p.attainment),
    ("pace", lambda p: p.pace),
    ("attainment_to_pace", lambda p: p.attainment_to_pace),
    ("forecast", lambda p: p.forecast),
    ("in_period_pipeline", lambda p: p.in_period_pipeline),
    ("coverage", lambda p: p.coverage.ratio),
    ("coverage_target", lambda p: p.coverage_target.ratio),
    ("coverage_target_source", lambda p: p.coverage_target.source),
    ("coverage_status", lambda p: p.coverage_status),
    *(
        field
        for kind in ACTIVITY_TYPES
        for field in (
            (f"benchmark_{kind}_pct", _activity_field(kind, lambda s: s.ratio)),
            (f"benchmark_{kind}_status", _activity_field(kind, lambda s: s.status)),
        )
    ),
]


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
    return [_display_cell(column, row) for column in COLUMNS[1:]]


def _display_cell(column: Column, row: RepRow) -> Cell:
    if column.cell is not None:
        return column.cell(row)
    return Cell(column.format(column.value(row)), column.numeric)


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
    goal_header = [key for key, _read in GOAL_CSV_FIELDS]
    writer.writerow(header + [column.key for column in METRIC_COLUMNS] + goal_header)
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
        goals = [
            _csv_cell(None if row.progress is None else read(row.progress))
            for _key, read in GOAL_CSV_FIELDS
        ]
        writer.writerow(fixed + metrics + goals)
    return response
