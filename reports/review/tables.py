"""The tables of the review pages, each also a CSV download (`?csv=<name>` on its page).

A table holds values, not HTML: the template escapes them, and the CSV keeps a spreadsheet from
reading attacker-controlled text (an organisation name, an MX host) as a formula.
"""

import csv
import io
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from stspolicy.base.words import words


@dataclass(frozen=True)
class Cell:
    value: str | int | float | None
    href: str | None = None
    code: bool = False  # a name or value shown as code
    title: str | None = None  # what the value means (a result type's explanation)

    def __str__(self) -> str:
        return "" if self.value is None else str(self.value)

    def __html__(self) -> Markup:
        """The cell's content, escaped: a page shows thousands of cells, a template macro each would be slow."""
        if self.value is None:
            return _EMPTY
        inner = escape(f"{self.value:,}" if isinstance(self.value, int) else self.value)
        if self.code:
            inner = _CODE % inner
        if self.href:
            return (_LINK_TITLED % (self.href, self.title, inner)) if self.title else _LINK % (self.href, inner)
        return _TITLED % (self.title, inner) if self.title else inner


_EMPTY = Markup('<span class="muted">–</span>')
_CODE = Markup("<code>%s</code>")
_LINK = Markup('<a href="%s">%s</a>')
_LINK_TITLED = Markup('<a href="%s" title="%s">%s</a>')
_TITLED = Markup('<span title="%s">%s</span>')


@dataclass
class Table:
    name: str  # its id on the page and its `csv=` value
    title: str
    headers: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    numeric: tuple[int, ...] = ()  # columns of numbers, aligned right
    empty: str = words("Nothing in this range.")

    def add(self, *values) -> None:
        """A row of plain values, or of Cells for links and code."""
        self.rows.append([value if isinstance(value, Cell) else Cell(value) for value in values])


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(table: Table) -> str:
    """The table as CSV (RFC 4180), text that a spreadsheet would take for a formula made inert with a `'`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.headers)
    for row in table.rows:
        writer.writerow([_inert(cell.value) for cell in row])
    return out.getvalue()


def _inert(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value
