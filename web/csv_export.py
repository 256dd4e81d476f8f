"""CSV downloads that a spreadsheet opens safely.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as
a formula, and some also after a leading tab or carriage return, so such text
cells get a leading apostrophe, which makes them text. Numbers stay numbers.
Bidi controls are removed from text, as on the pages. The file is UTF-8 with
a byte order mark, which Excel needs to read Chinese.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from flask import Response

from .filters import strip_bidi

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
BYTE_ORDER_MARK = "\ufeff"
_FILE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,80}\.csv")


def safe_cell(value: Any) -> Any:
    """Return a cell value that a spreadsheet shows as written.

    None and NaN become empty cells, other numbers and booleans stay as they
    are, and text starting with a formula character gets a leading apostrophe.
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool | int | float):
        return value
    text = strip_bidi(str(value))
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Return the CSV text of a table, the byte order mark first."""
    buffer = io.StringIO()
    buffer.write(BYTE_ORDER_MARK)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(name) for name in header])
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
    return buffer.getvalue()


def csv_response(
    file_name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Response:
    """Return a CSV download of a table.

    ``file_name`` is made by the caller from fixed words and numbers, never
    from user text. A name outside ``[a-z0-9_.-]`` raises ValueError.
    """
    if not _FILE_NAME.fullmatch(file_name):
        raise ValueError(f"invalid CSV file name {file_name!r}")
    body = csv_text(header, rows).encode("utf-8")
    return Response(
        body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{file_name}"',
        },
    )
