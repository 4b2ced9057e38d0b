"""Validation of a whole job before anything is written.

Each file is read, its mapping checked, and every row parsed into a record:
a dict of target field -> value holding only the mapped fields (None for a
blank cell), plus "line". A row with any error is left out of the records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from activity.importing.checks import ROW_CHECKS, StageRules
from activity.importing.fields import KINDS, Kind
from activity.importing.readers import FileError, ParsedFile, read_csv
from activity.importing.references import SOURCE
from activity.models import Deal

# Rows validated between two progress updates.
PROGRESS_BATCH_ROWS = 5_000
# Errors kept on the job. error_count still counts every error.
MAX_STORED_ERRORS = 100_000
_VALUE_SHOWN_CHARS = 60


@dataclass
class RowError:
    file: str
    line: int | None
    column: str
    value: str
    message: str
    # A blocking error is about the file, so no row of the job may be imported.
    blocking: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "value": self.value,
            "message": self.message,
            "blocking": self.blocking,
        }


def format_error(error: dict[str, Any]) -> str:
    """Return one error as a line of text.

    For example: ``deals.csv: line 7, column close_date, value "2017-13-45":
    not a date (expected YYYY-MM-DD or M/D/YYYY)``.
    """
    parts = []
    if error.get("line"):
        parts.append(f"line {error['line']}")
    if error.get("column"):
        parts.append(f"column {error['column']}")
    if error.get("line") and error.get("column"):
        parts.append(f'value "{error.get("value", "")}"')
    where = ", ".join(parts)
    text = f"{where}: {error['message']}" if where else error["message"]
    return f"{error['file']}: {text}"


def _shown(value: str) -> str:
    if len(value) <= _VALUE_SHOWN_CHARS:
        return value
    return value[:_VALUE_SHOWN_CHARS] + "…"


@dataclass
class ValidationResult:
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    total_rows: int = 0
    invalid_rows: int = 0
    invalid_by_kind: dict[str, int] = field(default_factory=dict)
    # Every error found, including those past MAX_STORED_ERRORS.
    error_count: int = 0

    @property
    def valid_rows(self) -> int:
        return self.total_rows - self.invalid_rows

    @property
    def blocking(self) -> bool:
        return any(error.blocking for error in self.errors)


@dataclass
class _FileInput:
    name: str
    kind: str
    header: list[str]
    mapping: list[str]
    parsed: ParsedFile


class JobValidator:
    """Validate the files of one job, keeping duplicate keys across its files."""

    def __init__(self, progress: Callable[[float], None] | None = None) -> None:
        self.result = ValidationResult()
        self.stage_rules = StageRules()
        self.progress = progress or (lambda fraction: None)
        self._close_dates: dict[str, Any] | None = None
        # The cells of the row being checked, for the values shown in errors.
        self.cells: list[str] = []
        # kind -> key -> (file name, line) of the row that first had the key.
        self.seen: dict[str, dict[str, tuple[str, int]]] = {}

    def validate(self, files: Iterable[Any]) -> ValidationResult:
        """Validate ``files`` (objects with name, kind, mapping and content)."""
        inputs = [item for item in map(self._read, files) if item is not None]
        total = sum(len(item.parsed.rows) for item in inputs)
        done = 0
        for item in inputs:
            for start in range(0, len(item.parsed.rows), PROGRESS_BATCH_ROWS):
                batch = item.parsed.rows[start : start + PROGRESS_BATCH_ROWS]
                self._validate_rows(item, batch)
                done += len(batch)
                self.progress(done / total)
            if item.kind == "members":
                self._check_reporting_cycles(item)
        return self.result

    def _read(self, import_file) -> _FileInput | None:
        name = import_file.name
        try:
            parsed = read_csv(
                bytes(import_file.content),
                max_field_chars=settings.ATTAIN_IMPORT_MAX_FIELD_CHARS,
            )
            kind = _check_mapping(parsed.header, import_file.kind, import_file.mapping)
        except FileError as error:
            self._add(RowError(name, error.line, error.column, "", error.message, True))
            return None

        self.result.total_rows += len(parsed.rows) + len(parsed.problems)
        self._count_invalid(kind.key, len(parsed.problems))
        for problem in parsed.problems:
            self._add(
                RowError(
                    name,
                    problem.line,
                    problem.column,
                    _shown(problem.value),
                    problem.message,
                    True,
                )
            )
        self.result.records.setdefault(kind.key, [])
        return _FileInput(name, kind.key, parsed.header, import_file.mapping, parsed)

    def _count_invalid(self, kind: str, rows: int) -> None:
        self.result.invalid_rows += rows
        by_kind = self.result.invalid_by_kind
        by_kind[kind] = by_kind.get(kind, 0) + rows

    def _add(self, error: RowError) -> None:
        self.result.error_count += 1
        if len(self.result.errors) < MAX_STORED_ERRORS:
            self.result.errors.append(error)
        else:
            self.result.errors[-1:] = [
                RowError(
                    error.file,
                    None,
                    "",
                    "",
                    f"More than {MAX_STORED_ERRORS:,} errors: the rest are not listed.",
                    error.blocking or self.result.errors[-1].blocking,
                )
            ]

    def _validate_rows(self, item: _FileInput, rows) -> None:
        kind = KINDS[item.kind]
        columns = [
            (index, kind.field(key)) for index, key in enumerate(item.mapping) if key
        ]
        records = self.result.records[item.kind]
        for line, cells in rows:
            errors, record = self._parse_row(item, columns, line, cells)
            if not errors:
                self.cells = cells
                errors = ROW_CHECKS[item.kind](self, item, record)
            if errors:
                self._count_invalid(item.kind, 1)
                for error in errors:
                    self._add(error)
            else:
                records.append(record)

    def _parse_row(self, item: _FileInput, columns, line: int, cells: list[str]):
        record: dict[str, Any] = {"line": line}
        errors = []
        for index, target in columns:
            raw = cells[index].strip()
            if not raw:
                record[target.key] = None
                if target.required:
                    errors.append(
                        RowError(
                            item.name,
                            line,
                            item.header[index],
                            "",
                            f"{target.label} is required",
                        )
                    )
                continue
            try:
                record[target.key] = target.parse(raw)
            except ValueError as error:
                errors.append(
                    RowError(
                        item.name, line, item.header[index], _shown(raw), str(error)
                    )
                )
        return errors, record

    def stored_close_dates(self) -> dict[str, Any]:
        """Return the close dates of imported deals, by external id, loaded once.

        A file without a close date column keeps each deal's stored date,
        which is what a won deal's row is then checked against.
        """
        if self._close_dates is None:
            self._close_dates = dict(
                Deal.objects.filter(external_source=SOURCE, close_date__isnull=False)
                .order_by()
                .values_list("external_id", "close_date")
            )
        return self._close_dates

    def column_of(self, item: _FileInput, key: str) -> str:
        """Return the header of the column mapped to ``key``, or the field's key."""
        if key in item.mapping:
            return item.header[item.mapping.index(key)]
        return key

    def error(self, item: _FileInput, record: dict, key: str, message: str) -> RowError:
        """Return an error on the cell of the row being checked mapped to ``key``."""
        raw = ""
        if key in item.mapping:
            raw = self.cells[item.mapping.index(key)].strip()
        return RowError(
            item.name, record["line"], self.column_of(item, key), _shown(raw), message
        )

    def check_unique(
        self, item: _FileInput, record: dict, key_field: str, key: str, what: str
    ) -> RowError | None:
        """Return an error when ``key`` was already on an earlier row of the job."""
        seen = self.seen.setdefault(item.kind, {})
        if key not in seen:
            seen[key] = (item.name, record["line"])
            return None
        file_name, line = seen[key]
        where = (
            f"line {line}" if file_name == item.name else f"line {line} of {file_name}"
        )
        return self.error(
            item, record, key_field, f"duplicate {what}: already on {where}"
        )

    def _check_reporting_cycles(self, item: _FileInput) -> None:
        """Drop the members of a reporting cycle that lies within this file."""
        records = self.result.records["members"]
        manager_of = {
            record["name"].lower(): (record.get("manager") or "").lower()
            for record in records
        }
        remaining = []
        for record in records:
            if _in_cycle(record["name"].lower(), manager_of):
                self._count_invalid("members", 1)
                self._add(
                    RowError(
                        item.name,
                        record["line"],
                        self.column_of(item, "manager"),
                        _shown(record["manager"]),
                        "reporting cycle: this member ends up reporting to themselves",
                    )
                )
            else:
                remaining.append(record)
        self.result.records["members"] = remaining


def _in_cycle(name: str, manager_of: dict[str, str]) -> bool:
    seen = {name}
    manager = manager_of.get(name, "")
    while manager:
        if manager == name:
            return True
        if manager in seen:
            return False
        seen.add(manager)
        manager = manager_of.get(manager, "")
    return False


def _check_mapping(header: list[str], kind_key: str, mapping: list[str]) -> Kind:
    """Return the file's kind, or raise FileError for a mapping that cannot work."""
    kind = KINDS.get(kind_key)
    if kind is None or not any(mapping):
        raise FileError(
            f"The header has no known columns (it reads: {_header_text(header)}). "
            "Expected the columns of deals, members, accounts or products, such as "
            "opportunity_id, sales_agent, deal_stage, close_value, account or product."
        )
    if len(mapping) != len(header):
        raise FileError(
            "The column mapping does not match the file's header: map the columns "
            "again."
        )
    for target in kind.required:
        if target.key not in mapping:
            usual = ", ".join(target.aliases[:4])
            raise FileError(
                f'Required column "{target.label}" is missing: {kind.label.lower()} '
                f"need it. Add a column such as {usual}, or map an existing column "
                "to it."
            )
    unknown = set(mapping) - kind.field_keys - {""}
    if unknown:
        raise FileError(f"Unknown target fields: {', '.join(sorted(unknown))}.")
    return kind


def _header_text(header: list[str]) -> str:
    text = ", ".join(_shown(cell) for cell in header[:10])
    return text + (", …" if len(header) > 10 else "")
