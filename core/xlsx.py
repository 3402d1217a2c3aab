"""Spreadsheets in and out (openpyxl), kept to what imports, exports and reports need.

Reading streams the first sheet in read-only mode, so a 100,000-row file is never a tree of
cell objects in memory; writing large tables uses write-only mode for the same reason.
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
    """The first worksheet of a workbook, read row by row."""

    def __init__(self, data: bytes) -> None:
        from openpyxl import load_workbook

        if not data.startswith(ZIP_MAGIC):
            raise Unreadable("not an xlsx file")
        try:
            self._book = load_workbook(BytesIO(data), read_only=True, data_only=True)
            self._sheet = self._book.worksheets[0]
        except Exception as exc:  # noqa: BLE001 - zip, XML and openpyxl errors alike
            raise Unreadable(str(exc)) from None

    @property
    def max_row(self) -> int:
        """The last row the file declares (an estimate: some writers omit or pad it)."""
        try:
            return int(self._sheet.max_row or 0)
        except (TypeError, ValueError):
            return 0

    def header(self) -> list[str]:
        """The first row's texts (empty cells as ""), trailing empties dropped."""
        for values in self._sheet.iter_rows(min_row=1, max_row=1, values_only=True):
            texts = ["" if v is None else str(v).strip() for v in values]
            while texts and not texts[-1]:
                texts.pop()
            return texts
        return []

    def rows(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """(row number, values) of every non-blank row after the header."""
        for number, values in enumerate(
                self._sheet.iter_rows(min_row=2, values_only=True), start=2):
            if any(v is not None and (not isinstance(v, str) or v.strip()) for v in values):
                yield number, values

    def close(self) -> None:
        self._book.close()


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
