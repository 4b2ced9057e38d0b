"""Quota CSV files: the columns, reading and validating rows, and the export.

A file has one quota per row. The owner is a member, named by ``email`` or
by ``member`` (their display name), or a team, named by ``team``. Names and
addresses match case-insensitively. ``period_start`` (YYYY-MM-DD) must be
the first day of one of the organisation's quota periods. ``metric``
defaults to bookings. ``amount`` is read like a grid cell, and a blank amount
leaves the stored quota as it is. ``currency``, when given, must be the
organisation's (and blank for the deal count).

The file is decoded and split by activity.importing.readers, like a CRM
import: UTF-8, UTF-16 or Windows-1252, separated by commas, semicolons or
tabs, with line numbers that count the header as line 1.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.conf import settings

from activity.importing.readers import FileError, read_csv
from activity.importing.validation import RowError
from goals.calendar import DateRange
from goals.grid import QuotaGrid, member_email
from goals.models import QuotaMetric
from goals.periods import (
    in_date_range,
    quota_period_containing,
    quota_period_starting,
)
from goals.services.quotas import QuotaChange
from goals.values import amount_text, parse_amount
from spm.models import Membership, Organization, Team
from spm.spreadsheet import FORMULA_START, spreadsheet_safe

COLUMNS = ("email", "member", "team", "period_start", "metric", "amount", "currency")
REQUIRED = ("period_start", "amount")
OWNER_COLUMNS = ("email", "member", "team")
# Rows read from one file. The whole file is saved within one web request:
# 20,000 new quotas took about 5 seconds on a 2-core development machine, on
# SQLite and PostgreSQL alike.
MAX_ROWS = 20_000
_VALUE_SHOWN_CHARS = 60
# Cells a spreadsheet would run as a formula when the file is opened.


def _column_key(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


def _shown(value: str) -> str:
    if len(value) <= _VALUE_SHOWN_CHARS:
        return value
    return value[:_VALUE_SHOWN_CHARS] + "…"


@dataclass
class QuotaFileCheck:
    """The valid changes of a file, or the errors that stop it."""

    changes: list[QuotaChange] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0
    # Rows with a blank amount, which change nothing.
    blank: int = 0


class _Owners:
    """The organisation's members and teams, by lower-cased address and name."""

    def __init__(self) -> None:
        self.by_email: dict[str, list[Membership]] = {}
        self.by_name: dict[str, Membership] = {}
        for member in Membership.objects.select_related("user").order_by("pk"):
            addresses = {member.email.lower(), member_email(member).lower()} - {""}
            for address in addresses:
                self.by_email.setdefault(address, []).append(member)
            self.by_name[member.display_name.lower()] = member
        self.teams = {team.name.lower(): team for team in Team.objects.all()}


@dataclass
class _Row:
    line: int
    cells: dict[str, str]
    errors: list[RowError]
    file_name: str

    def get(self, column: str) -> str:
        """Return the cell's text, without the quote an export put before it."""
        text = self.cells.get(column, "").strip()
        if text.startswith("'") and FORMULA_START.match(text[1:]):
            return text[1:]
        return text

    def error(self, column: str, message: str) -> None:
        value = _shown(self.get(column))
        self.errors.append(RowError(self.file_name, self.line, column, value, message))


def _read_columns(header: list[str]) -> list[str]:
    """Return the column key of each header cell, or raise FileError."""
    keys = [_column_key(cell) for cell in header]
    pairs = zip(header, keys, strict=True)
    unknown = [cell for cell, key in pairs if key not in COLUMNS]
    if unknown:
        raise FileError(
            f"Unknown column {', '.join(repr(_shown(cell)) for cell in unknown)}: "
            f"the columns are {', '.join(COLUMNS)}.",
            line=1,
        )
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise FileError(f"The column {', '.join(repeated)} appears twice.", line=1)
    for required in REQUIRED:
        if required not in keys:
            raise FileError(f"The required column {required} is missing.", line=1)
    if not set(OWNER_COLUMNS) & set(keys):
        raise FileError(
            "A column email, member or team is needed to say whose quota each row is.",
            line=1,
        )
    return keys


def _owner(row: _Row, owners: _Owners) -> Membership | Team | None:
    email, name, team_name = row.get("email"), row.get("member"), row.get("team")
    if team_name and (email or name):
        row.error("team", "give a member (email or member) or a team, not both")
        return None
    if team_name:
        team = owners.teams.get(team_name.lower())
        if team is None:
            row.error("team", "no team has this name")
        return team
    if not (email or name):
        # The error goes on the file's first owner column.
        column = next(name for name in row.cells if name in OWNER_COLUMNS)
        row.error(column, "an email, member or team is required")
        return None

    by_email = None
    if email:
        matches = owners.by_email.get(email.lower(), [])
        if not matches:
            row.error("email", "no member has this email address")
            return None
        if len(matches) > 1:
            row.error("email", "several members have this email address")
            return None
        by_email = matches[0]
    if name:
        by_name = owners.by_name.get(name.lower())
        if by_name is None:
            row.error("member", "no member has this name")
            return None
        if by_email is not None and by_name != by_email:
            row.error("member", f"the email address belongs to {by_email.display_name}")
            return None
        return by_name
    return by_email


def _period(row: _Row, organization: Organization) -> DateRange | None:
    text = row.get("period_start")
    if not text:
        row.error("period_start", "period_start is required")
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        day = None
    if day is None or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        row.error("period_start", "not a date (expected YYYY-MM-DD)")
        return None
    if not in_date_range(day):
        row.error("period_start", "the date is out of range")
        return None
    period = quota_period_starting(organization, day)
    if period is None:
        containing = quota_period_containing(organization, day)
        row.error(
            "period_start",
            f"not the start of a quota period: quotas are set per "
            f"{organization.quota_period}, and {containing.label} starts on "
            f"{containing.start:%Y-%m-%d}",
        )
    return period


def _metric(row: _Row) -> str | None:
    text = row.get("metric")
    if not text:
        return QuotaMetric.BOOKINGS
    key = _column_key(text)
    for value, label in QuotaMetric.choices:
        if key in (value, _column_key(label)):
            return value
    row.error("metric", f"unknown metric: use {', '.join(QuotaMetric.values)}")
    return None


def _check_currency(row: _Row, organization: Organization, metric: str) -> None:
    currency = row.get("currency").upper()
    if not currency:
        return
    if metric == QuotaMetric.DEAL_COUNT:
        row.error("currency", "a deal count has no currency: leave it blank")
    elif currency != organization.currency:
        row.error(
            "currency",
            f"not the organisation's currency {organization.currency}: quotas "
            "are set in it, because Attain has no exchange rates",
        )


def _change(row: _Row, organization: Organization, owners: _Owners):
    """Return the row's QuotaChange, "blank" for a blank amount, or None."""
    owner = _owner(row, owners)
    period = _period(row, organization)
    metric = _metric(row)
    amount = None
    if metric is not None:
        _check_currency(row, organization, metric)
        try:
            amount = parse_amount(row.get("amount"), metric)
        except ValueError as error:
            row.error("amount", str(error))
    if row.errors or owner is None or period is None or metric is None:
        return None
    if amount is None:
        return "blank"
    value = row.get("amount")
    return QuotaChange(owner, metric, period, amount, line=row.line, value=value)


def check_quota_file(
    organization: Organization, file_name: str, content: bytes
) -> QuotaFileCheck:
    """Read a quota file of the current organisation and check each row alone.

    The result contains the changes of the valid rows and the errors of the
    others. goals.services.quotas_import then checks the changes against
    each other and the stored quotas.
    """
    check = QuotaFileCheck()
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if len(content) > limit:
        message = (
            f"The file is larger than the limit of {limit:,} bytes "
            "(DATA_UPLOAD_MAX_MEMORY_SIZE): split it into several files."
        )
        check.errors.append(RowError(file_name, None, "", "", message, True))
        return check
    try:
        parsed = read_csv(
            content, max_field_chars=settings.ATTAIN_IMPORT_MAX_FIELD_CHARS
        )
        keys = _read_columns(parsed.header)
    except FileError as error:
        check.errors.append(
            RowError(file_name, error.line, error.column, "", error.message, True)
        )
        return check

    check.rows = len(parsed.rows) + len(parsed.problems)
    if check.rows > MAX_ROWS:
        message = (
            f"The file has {check.rows:,} rows, more than the limit of "
            f"{MAX_ROWS:,}: split it into several files."
        )
        check.errors.append(RowError(file_name, None, "", "", message, True))
        return check
    for problem in parsed.problems:
        check.errors.append(
            RowError(
                file_name,
                problem.line,
                problem.column,
                _shown(problem.value),
                problem.message,
                True,
            )
        )

    owners = _Owners()
    for line, cells in parsed.rows:
        row = _Row(line, dict(zip(keys, cells, strict=True)), [], file_name)
        change = _change(row, organization, owners)
        check.errors.extend(row.errors)
        if change == "blank":
            check.blank += 1
        elif change is not None:
            check.changes.append(change)

    check.errors.sort(key=lambda error: error.line or 0)
    return check


def error_rows(errors: Iterable[dict]) -> Iterator[list[str]]:
    """Yield the header and one row per error, for a CSV download."""
    yield ["file", "line", "column", "value", "message"]
    for error in errors:
        yield [
            error["file"],
            str(error["line"] or ""),
            error["column"],
            error["value"],
            error["message"],
        ]


def export_rows(quota_grid: QuotaGrid) -> Iterator[list[str]]:
    """Yield the header and one row per member and team of the grid.

    The columns are those of the import, so the file imports back unchanged.
    An owner with no quota gets a blank amount, which the import skips.
    """
    yield list(COLUMNS)
    start = quota_grid.period.start.isoformat()
    metric = quota_grid.metric
    for row in quota_grid.members:
        member = row.owner
        yield [
            member_email(member),
            member.display_name,
            "",
            start,
            metric,
            amount_text(row.amount, metric),
            row.quota.currency if row.quota else quota_grid.currency,
        ]
    for row in quota_grid.teams:
        yield [
            "",
            "",
            row.owner.name,
            start,
            metric,
            amount_text(row.amount, metric),
            row.quota.currency if row.quota else quota_grid.currency,
        ]


def write_csv(rows: Iterable[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return buffer.getvalue()
