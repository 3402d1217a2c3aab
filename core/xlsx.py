"""Spreadsheets in and out, kept to what imports, exports and reports need.

Reading uses python-calamine (the Rust calamine reader pandas also offers): the first
sheet's values only, no cell objects. Writing uses openpyxl, in write-only mode for large
tables, so a 100,000-row export is never a tree of cell objects in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from io import BytesIO
from typing import Any

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZIP_MAGIC = b"PK\x03\x04"


class Unreadable(Exception):
    """The bytes are not an xlsx workbook openpyxl can read."""


class Sheet:
    """The first worksheet of a workbook, read by calamine (Rust): about ten times faster
    than openpyxl's read-only mode (1.3 s against 16 s for 100,000 rows of 11 columns
    here), for roughly 1 KB of memory a row while the sheet is open."""

    def __init__(self, data: bytes) -> None:
        from python_calamine import CalamineWorkbook

        if not data.startswith(ZIP_MAGIC):
            raise Unreadable("not an xlsx file")
        try:
            self._sheet = CalamineWorkbook.from_filelike(BytesIO(data)).get_sheet_by_index(0)
        except Exception as exc:  # noqa: BLE001 - zip, XML and calamine errors alike
            raise Unreadable(str(exc)) from None

    @property
    def max_row(self) -> int:
        """The number of rows of the sheet, header included."""
        return int(self._sheet.height or 0)

    def header(self) -> list[str]:
        """The first row's texts (empty cells as ""), trailing empties dropped."""
        for values in self._sheet.iter_rows():
            texts = [_text(v) for v in values]
            while texts and not texts[-1]:
                texts.pop()
            return texts
        return []

    def rows(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """(row number, values) of every non-blank row after the header; empty cells are
        None, numbers come as floats (as Excel stores them), dates as date or datetime."""
        rows = self._sheet.iter_rows()
        next(rows, None)
        for number, values in enumerate(rows, start=2):
            if any(v not in ("", None) and (not isinstance(v, str) or v.strip())
                   for v in values):
                yield number, tuple(None if v == "" else v for v in values)

    def close(self) -> None:
        self._sheet = None


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None else str(value).strip()


def table_bytes(title: str, header: list[str], rows: Iterable[list[Any]],
                widths: list[int] | None = None, text_columns: Iterable[int] = ()) -> bytes:
    """One sheet with a bold header row, written in write-only mode (any number of rows).
    `text_columns` (0-based) are stored as text so Excel keeps leading zeros and long
    digit strings (ID numbers) as typed."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet(safe_title(title))
    for i, width in enumerate(widths or [], start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width
    bold = Font(bold=True)
    cells = []
    for text in header:
        cell = WriteOnlyCell(sheet, value=text)
        cell.font = bold
        cells.append(cell)
    sheet.append(cells)
    texts = set(text_columns)
    for row in rows:
        if texts:
            out: list[Any] = []
            for i, value in enumerate(row):
                if i in texts and value is not None:
                    cell = WriteOnlyCell(sheet, value=str(value))
                    cell.number_format = "@"
                    out.append(cell)
                else:
                    out.append(value)
            sheet.append(out)
        else:
            sheet.append(row)
    out_io = BytesIO()
    book.save(out_io)
    return out_io.getvalue()


def safe_title(title: str) -> str:
    """A worksheet title Excel accepts (31 characters, none of []:*?/\\)."""
    cleaned = "".join("_" if c in "[]:*?/\\" else c for c in title).strip() or "Sheet"
    return cleaned[:31]
