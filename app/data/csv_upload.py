"""Reading an uploaded CSV file into a `RawTable`, within the upload limits.

The text is read at most twice from memory: the first pass parses numbers into compact
arrays (8 bytes a cell, not one Python object a cell) and finds which columns hold text;
the second, only when there are such columns, turns their values into codes.
"""

from __future__ import annotations

import array
import csv
import io
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from app.core.errors import UserError
from app.data.catalog import UploadLimits
from app.data.tables import RawTable, TableColumn

# Cell values read as "missing" (compared in lower case); "?" is the UCI repository's marker.
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
MIN_ROWS = 10
PREVIEW_ROWS = 10
PREVIEW_CELL_CHARS = 100


def read_csv_table(source: bytes | str | Path, limits: UploadLimits = UploadLimits()) -> RawTable:
    """Parse CSV bytes, or the file at a path; raise UserError saying what is wrong."""
    text = _decode(_read_source(source, limits))
    delimiter = _guess_delimiter(text)
    header = _read_header(text, delimiter, limits)
    survey = _survey(text, delimiter, len(header), limits)
    if survey.n_rows < MIN_ROWS:
        raise UserError(f"The file holds {survey.n_rows} data rows; a dataset needs at least {MIN_ROWS}.")
    table = _fill(text, delimiter, header, survey, limits)
    if _header_looks_like_data(table):
        raise _headerless(header, "its numbers and words look like the rows below it")
    return table


def _headerless(header: list[str], why: str) -> UserError:
    shown = ", ".join(header[:4]) + (", ..." if len(header) > 4 else "")
    example = ",".join(f"feature_{i + 1}" for i in range(min(len(header) - 1, 3)))
    return UserError(f"The first row ({shown}) looks like data, not column names: {why}. A CSV file needs "
                       f"a header row naming each column, for example '{example},label'.", field="file")


def _header_looks_like_data(table: RawTable) -> bool:
    """A header like '5.1,3.5,setosa': mostly numbers, and its words are values of their columns."""
    numbers = [c for c in table.columns if _is_number(c.name)]
    words = [c for c in table.columns if not _is_number(c.name)]
    return (2 * len(numbers) >= len(table.columns) and all(c.is_numeric for c in numbers)
            and all(not c.is_numeric and c.name in (c.categories or []) for c in words))


def _read_source(source: bytes | str | Path, limits: UploadLimits) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        limits.check_upload_size(len(source))
        return bytes(source)
    path = Path(source)
    limits.check_upload_size(path.stat().st_size)
    return path.read_bytes()


def _decode(data: bytes) -> str:
    if b"\x00" in data:
        raise UserError("This file holds binary data (NUL bytes); a CSV file must be plain text.", field="file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"The file is not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start}). "
                          f"Save it as 'CSV UTF-8'.", field="file") from None


def _guess_delimiter(text: str) -> str:
    first_line = text.split("\n", 1)[0]
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            if row and any(cell.strip() for cell in row):  # blank lines carry nothing
                yield reader.line_num, row
    except csv.Error as exc:
        raise UserError(f"Line {reader.line_num} is not valid CSV: {exc}.", field="file") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_header(text: str, delimiter: str, limits: UploadLimits) -> list[str]:
    first = next(_rows(text, delimiter), None)
    if first is None:
        raise UserError("The file is empty; a CSV file needs a header row and data rows.", field="file")
    header = [cell.strip() for cell in first[1]]
    if all(cell and _is_number(cell) for cell in header):
        raise _headerless(header, "every field is a number")
    if len(header) > limits.max_columns:
        raise UserError(f"The file has {len(header)} columns; at most {limits.max_columns} are allowed.",
                          field="file")
    if len(header) < 2:
        raise UserError("The file has one column; a dataset needs at least one feature column and a "
                          "target column, separated by commas.", field="file")
    names = [cell or f"column_{i + 1}" for i, cell in enumerate(header)]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UserError(f"Column names must be unique, but {name!r} appears more than once.", field="file")
        seen.add(name)
    return names


class _NumberColumns:
    """First pass: numbers are parsed once, into compact arrays, while checking the rows.

    A column stays numeric while every value parses as a number or is missing; the first
    other value turns it into a text column, which the second pass reads.
    """

    def __init__(self, width: int):
        self.values: list[array.array | None] = [array.array("d") for _ in range(width)]
        self.missing = [0] * width
        self.first_rows: list[list[str]] = []
        self.n_rows = 0

    def add(self, row: list[str]) -> None:
        if self.n_rows < PREVIEW_ROWS:
            self.first_rows.append([cell[:PREVIEW_CELL_CHARS] for cell in row])
        self.n_rows += 1
        for j, cell in enumerate(row):
            column = self.values[j]
            if column is None:
                continue
            try:
                number = float(cell)  # accepts surrounding spaces, and "nan", counted as missing below
            except ValueError:
                if cell.strip().lower() not in MISSING_MARKERS:
                    self.values[j] = None
                    continue
                number = math.nan
            if not math.isfinite(number):  # missing, or inf, which cannot be standardised
                self.missing[j] += 1
                number = math.nan
            column.append(number)


def _survey(text: str, delimiter: str, width: int, limits: UploadLimits) -> _NumberColumns:
    columns = _NumberColumns(width)
    rows = _rows(text, delimiter)
    next(rows)  # the header
    for line, row in rows:
        if len(row) != width:
            raise UserError(f"Line {line} has {len(row)} fields but the header has {width}. Every row "
                              f"needs one value per column (leave a value empty if it is missing).", field="file")
        if columns.n_rows >= limits.max_csv_rows:
            raise UserError(f"The file has more than {limits.max_csv_rows} data rows, the most allowed.",
                              field="file")
        columns.add(row)
    return columns


def _fill(text: str, delimiter: str, header: list[str], survey: _NumberColumns, limits: UploadLimits) -> RawTable:
    """Second pass, over text columns only: values become codes, at most `keep_distinct` kinds."""
    keep_distinct = max(limits.max_classes, limits.max_categories)
    text_columns = [j for j, values in enumerate(survey.values) if values is None]
    codes: dict[int, dict[str, int]] = {j: {} for j in text_columns}
    cells: dict[int, array.array] = {j: array.array("i") for j in text_columns}
    overflow = dict.fromkeys(text_columns, False)
    missing = dict.fromkeys(text_columns, 0)
    if text_columns:
        rows = _rows(text, delimiter)
        next(rows)  # the header
        for _, row in rows:
            for j in text_columns:
                value = row[j].strip()
                if value.lower() in MISSING_MARKERS:
                    missing[j] += 1
                    code = -1
                else:
                    code = codes[j].get(value, -2)
                    if code == -2 and len(codes[j]) < keep_distinct:
                        code = codes[j][value] = len(codes[j])
                    overflow[j] = overflow[j] or code == -2  # too many kinds to be classes or categories
                cells[j].append(code)
    columns = []
    for j, name in enumerate(header):
        numbers = survey.values[j]
        if numbers is not None:
            columns.append(TableColumn(name, np.frombuffer(numbers, dtype=np.float64).copy(), None, survey.missing[j]))
        else:
            values = np.frombuffer(cells[j], dtype=np.int32).copy()
            columns.append(_sorted_text_column(name, values, codes[j], missing[j], overflow[j]))
    return RawTable(columns, survey.first_rows)


def _sorted_text_column(name: str, values: np.ndarray, codes: dict[str, int], missing: int,
                        overflow: bool) -> TableColumn:
    """Number categories in sorted order, so the same file always gives the same classes."""
    categories = sorted(codes)
    new_code = np.empty(len(codes) + 2, np.int32)  # the last two slots map -2 and -1 to themselves
    for rank, category in enumerate(categories):
        new_code[codes[category]] = rank
    new_code[-2], new_code[-1] = -2, -1
    return TableColumn(name, new_code[values], categories, missing, overflow)
