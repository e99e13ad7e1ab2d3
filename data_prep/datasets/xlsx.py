"""Reading coding spreadsheets (.xlsx, or their .csv conversions) into rows of text cells.

The databases' coding files differ in small ways: SAMM has 13 preamble rows before its header,
CASME II has unnamed empty columns, the SMIC-E workbook holds one sheet per camera, and every file
has trailing empty rows. :func:`read_table` finds the header row by the columns it must contain, so
one function reads all of them, and it turns a truncated, empty or foreign file into one
:class:`~data_prep.errors.AnnotationError` that names the file.
"""

from __future__ import annotations

import csv
import dataclasses
import re
import zipfile
import zlib
from pathlib import Path
from typing import Optional, Sequence

from data_prep.errors import AnnotationError

SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".csv")

# What a damaged workbook raises while it is read: a zip member whose compressed data is corrupt
# gives zlib.error or a CRC mismatch (BadZipFile), one cut short EOFError, garbled XML a ParseError
# (a SyntaxError); openpyxl raises KeyError / ValueError / TypeError on missing or bad parts.
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, SyntaxError, KeyError, ValueError, TypeError,
            NotImplementedError)


def _norm(name) -> str:
    """Column names compared case-insensitively, runs of blanks as one space. ``"OnsetFrame"``
    (CASME II) and ``"Onset Frame"`` (SAMM) stay different, so one database's file given for the
    other fails on its columns instead of being read as the wrong database."""
    return re.sub(r"\s+", " ", str(name or "")).strip().lower()


def cell_text(value) -> str:
    """A cell as stripped text; whole floats lose their ``.0`` (``46.0`` -> ``"46"``)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


@dataclasses.dataclass
class Table:
    """The rows of one sheet below its header.

    Attributes:
        path: the file read (and ``sheet``, the sheet name, for a workbook).
        columns: the header's column names as written.
        rows: ``(row number, {column: text})`` for every non-empty row; the row number is the one a
            spreadsheet program shows (1-based, header included), so messages can point at it.
    """

    path: Path
    sheet: Optional[str]
    columns: list
    rows: list

    def where(self, row_number: int) -> str:
        """``file[sheet] row N``, for messages."""
        sheet = f"[{self.sheet}]" if self.sheet else ""
        return f"{self.path}{sheet} row {row_number}"


def _raw_rows(path: Path, sheet: Optional[str]) -> tuple[Optional[str], list[list]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                return None, [list(row) for row in csv.reader(handle)]
        except UnicodeDecodeError as error:
            raise AnnotationError(path, f"not a text CSV file ({error})") from error
    if suffix not in (".xlsx", ".xlsm"):
        raise AnnotationError(path, f"unsupported annotation file type {suffix!r}: expected .xlsx "
                                    "or .csv (convert an old .xls with a spreadsheet program)")
    import openpyxl  # imported here: reading a .csv should not need it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, OSError, *_DAMAGED) as error:
        raise _workbook_error(path, error, "not a readable .xlsx workbook (truncated or another "
                                           "format?)") from error
    title = sheet
    try:
        if sheet is None:
            title = workbook.sheetnames[0] if workbook.sheetnames else None
            worksheet = workbook.worksheets[0]
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            raise AnnotationError(path, f"no sheet {sheet!r}; the workbook has "
                                        f"{workbook.sheetnames}")
        rows = [list(row) for row in worksheet.iter_rows(values_only=True)]
        return worksheet.title, rows
    except (IndexError, *_DAMAGED) as error:
        where = f"sheet {title!r}" if title else "its first sheet"
        raise _workbook_error(path, error, f"the workbook is damaged: {where} cannot be "
                                           "read") from error
    finally:
        workbook.close()


def _damaged_member(path: Path) -> Optional[str]:
    """The first member of the workbook's zip whose data cannot be decompressed, or ``None``."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                try:
                    with archive.open(info) as member:
                        while member.read(1 << 20):
                            pass
                except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):
                    return info.filename
    except (zipfile.BadZipFile, OSError):
        pass
    return None


def _workbook_error(path: Path, error: Exception, otherwise: str) -> AnnotationError:
    """One line for an exception raised while reading a workbook: the damaged zip member if one
    is (an intact zip directory with corrupt data inside), else ``otherwise`` and the error."""
    member = _damaged_member(path)
    if member is not None:
        return AnnotationError(path, f"the workbook is damaged: its part {member} cannot be "
                                     f"decompressed ({_describe(error)}); save it again from a "
                                     "spreadsheet program, or give its .csv conversion")
    return AnnotationError(path, f"{otherwise}: {_describe(error)}")


def _describe(error: Exception) -> str:
    """An exception on one line, with its type where the text alone says little (``zlib.error:
    Error -3 while decompressing data: invalid distance too far back``)."""
    text = " ".join(str(error).split())
    module = type(error).__module__
    name = type(error).__name__ if module == "builtins" else (
        f"{module.split('.')[0]}.{type(error).__name__}")
    return f"{name}: {text}" if text else name


def sheet_names(path) -> list[str]:
    """The sheet names of an .xlsx workbook (``[]`` for a .csv)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return []
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(path, read_only=True)
    except (InvalidFileException, OSError, *_DAMAGED) as error:
        raise _workbook_error(path, error, "not a readable .xlsx workbook") from error
    names = list(workbook.sheetnames)
    workbook.close()
    return names


def read_table(path, required: Sequence[str], *, sheet: Optional[str] = None,
               max_header_row: int = 30) -> Table:
    """Read the first sheet (or ``sheet``) of an .xlsx, or a .csv, below the header row.

    The header is the first row, among the first ``max_header_row``, that holds every ``required``
    column (matched case-insensitively). Empty rows are skipped.

    Args:
        path: the .xlsx or .csv file.
        required: column names the file must have.
        sheet: the sheet to read from a workbook (default: the first).
        max_header_row: how far down to look for the header (SAMM has 13 preamble rows).

    Returns:
        a :class:`Table` whose row dicts are keyed by the ``required`` names as given (and every
        other named column as written).

    Raises:
        AnnotationError: the file is missing, empty, not a spreadsheet, or lacks a column.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(path, "annotation file not found")
    if path.stat().st_size == 0:
        raise AnnotationError(path, "the file is empty")
    sheet_title, raw = _raw_rows(path, sheet)
    raw = [[cell_text(value) for value in row] for row in raw]
    if not any(any(row) for row in raw):
        raise AnnotationError(path, "the file has no rows" + (f" (sheet {sheet_title!r})"
                                                              if sheet_title else ""))
    wanted = {_norm(name): name for name in required}
    header_at = None
    best_missing = list(required)
    for number, row in enumerate(raw[:max_header_row]):
        present = {_norm(cell) for cell in row if cell}
        missing = [name for key, name in wanted.items() if key not in present]
        if not missing:
            header_at = number
            break
        if len(missing) < len(best_missing):
            best_missing = missing
    if header_at is None:
        first = next((row for row in raw if any(row)), [])
        raise AnnotationError(
            path, f"missing column(s) {best_missing}: is this the right file, and is it complete? "
                  f"(first row: {[c for c in first if c][:8]})")
    header = raw[header_at]
    index: dict[str, int] = {}
    for position, cell in enumerate(header):
        if not cell:
            continue
        key = wanted.get(_norm(cell), cell)
        index.setdefault(key, position)
    rows = []
    for offset, row in enumerate(raw[header_at + 1:], start=header_at + 2):
        if not any(row):
            continue
        rows.append((offset, {name: (row[pos] if pos < len(row) else "")
                              for name, pos in index.items()}))
    if not rows:
        raise AnnotationError(path, "the file has a header but no data rows (truncated?)")
    return Table(path=path, sheet=sheet_title, columns=[c for c in header if c], rows=rows)


def parse_frame(text: str) -> Optional[int]:
    """A frame-number cell as an int; ``None`` for a blank or ``/`` (the coding's "no value")."""
    text = cell_text(text)
    if text in ("", "/", "-", "?"):
        return None
    try:
        value = float(text)
    except ValueError as error:
        raise ValueError(f"not a frame number: {text!r}") from error
    if not value.is_integer():
        raise ValueError(f"not a whole frame number: {text!r}")
    return int(value)
