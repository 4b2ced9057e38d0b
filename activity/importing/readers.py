"""Decode an uploaded CSV file and split it into a header and rows.

Line numbers count the header as line 1, as a spreadsheet numbers its rows,
so the first data row is line 2. A quoted value that spans several physical
lines still counts as one line.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field

DELIMITERS = (",", ";", "\t")

# Control characters that never occur in text files. Tab, line feed, form
# feed and carriage return are allowed.
_BINARY_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# How much of the decoded text is scanned for binary content.
_BINARY_SCAN_CHARS = 65_536


class FileError(Exception):
    """A problem with the whole file: nothing in it can be imported."""

    def __init__(self, message: str, *, line: int | None = None, column: str = ""):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass
class Problem:
    """A blocking problem on one line: a row of the wrong width or a huge field."""

    line: int
    column: str
    value: str
    message: str


@dataclass
class ParsedFile:
    header: list[str]
    # (line number, cells) for every row that is not blank.
    rows: list[tuple[int, list[str]]]
    delimiter: str
    encoding: str
    problems: list[Problem] = field(default_factory=list)


def decode(content: bytes) -> tuple[str, str]:
    """Return the text of ``content`` and the name of the encoding that read it.

    UTF-16 is read when the file starts with its byte order mark, as Excel
    writes "Unicode text". Otherwise UTF-8 (a leading BOM is dropped) is
    tried first, then Windows-1252, the usual encoding of Excel's CSV files.
    """
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text, encoding = _decode_strict(content, "utf-16"), "utf-16"
    elif b"\x00" in content:
        raise FileError(
            "The file is not a text file: it contains NUL bytes. "
            "Save it as CSV (UTF-8) and upload it again."
        )
    else:
        try:
            text, encoding = content.decode("utf-8-sig"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = _decode_strict(content, "cp1252"), "cp1252"

    if _BINARY_CHARS.search(text, 0, _BINARY_SCAN_CHARS):
        raise FileError(
            "The file is not a text file: it contains control characters. "
            "Save it as CSV (UTF-8) and upload it again."
        )
    return text, encoding


def _decode_strict(content: bytes, encoding: str) -> str:
    try:
        return content.decode(encoding)
    except UnicodeDecodeError:
        raise FileError(
            "The file could not be decoded as UTF-8, UTF-16 or Windows-1252 text. "
            "Save it as CSV (UTF-8) and upload it again."
        ) from None


def detect_delimiter(header_line: str) -> str:
    """Return the comma, semicolon or tab that occurs most often in the header.

    A header with none of them has one column, and the comma is returned.
    """
    counts = {delimiter: header_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def read_csv(content: bytes, *, max_field_chars: int) -> ParsedFile:
    """Parse ``content`` into a header and rows, or raise FileError.

    Rows whose cell count differs from the header's, and fields longer than
    ``max_field_chars``, are returned as problems, which block the import.
    """
    if not content.strip():
        raise FileError("The file is empty.")
    text, encoding = decode(content)
    if not text.strip():
        raise FileError("The file is empty.")

    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = detect_delimiter(first_line)
    # The csv module raises "field larger than field limit" past its limit
    # (131,072 characters by default). Raising the limit to the whole text's
    # length means it never can, and long fields are reported below instead.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    try:
        return _read_rows(reader, delimiter, encoding, max_field_chars)
    except csv.Error as error:
        raise FileError(
            f"Line {reader.line_num} could not be read as CSV: {error}."
        ) from None


def _read_rows(reader, delimiter: str, encoding: str, max_chars: int) -> ParsedFile:
    header, header_line = _read_header(reader, max_chars)
    parsed = ParsedFile(header, [], delimiter, encoding)
    for line, cells in enumerate(reader, start=header_line + 1):
        if not any(cell.strip() for cell in cells):
            continue
        problem = _row_problem(line, cells, header, max_chars)
        if problem is not None:
            parsed.problems.append(problem)
            continue
        parsed.rows.append((line, cells))

    if not parsed.rows and not parsed.problems:
        raise FileError(
            "The file has a header but no data rows: add at least one row below it."
        )
    return parsed


def _read_header(reader, max_chars: int) -> tuple[list[str], int]:
    """Return the first row that is not blank, and its line number."""
    line = 0
    for cells in reader:
        line += 1
        if any(cell.strip() for cell in cells):
            break
    else:
        raise FileError("The file is empty.")

    for index, cell in enumerate(cells):
        if len(cell) > max_chars:
            raise FileError(
                f"Column {index + 1} of the header is {len(cell):,} characters long, "
                f"more than the limit of {max_chars:,}.",
                line=line,
            )
    header = [cell.strip().lstrip("\ufeff").strip() for cell in cells]
    return header, line


def _row_problem(
    line: int, cells: list[str], header: list[str], max_chars: int
) -> Problem | None:
    for index, cell in enumerate(cells):
        if len(cell) > max_chars:
            column = header[index] if index < len(header) else f"#{index + 1}"
            return Problem(
                line,
                column,
                cell,
                f"the value is {len(cell):,} characters long, more than the limit "
                f"of {max_chars:,} (ATTAIN_IMPORT_MAX_FIELD_CHARS)",
            )
    if len(cells) != len(header):
        return Problem(
            line,
            "",
            "",
            f"the row has {len(cells)} cells but the header has {len(header)}",
        )
    return None


def read_header(content: bytes) -> list[str]:
    """Return the header cells of ``content``, or [] when the file cannot be read.

    Only the first row is parsed, so the mapping page can show a large file's
    columns quickly. Validation reports why a file could not be read.
    """
    try:
        text, _ = decode(content)
    except FileError:
        return []
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=detect_delimiter(first_line)
    )
    try:
        header, _ = _read_header(reader, max_chars=len(text) + 1)
    except (FileError, csv.Error):
        return []
    return header
