"""Read a rendered page's tables the way a person reads them: one list of cell texts per body
row, whitespace collapsed."""

from html.parser import HTMLParser
from typing import Any


class _Rows(HTMLParser):
    def __init__(self, region: str | None) -> None:
        super().__init__()
        self.region = region
        self.inside = region is None
        self.depth = 0
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None
        self.in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if self.region is not None and tag == "div":
            if self.inside:
                self.depth += 1
            elif found.get("aria-label") == self.region:
                self.inside, self.depth = True, 1
        if not self.inside:
            return
        if tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.rows.append([])
        elif tag == "td" and self.in_body:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if self.region is not None and tag == "div" and self.inside:
            self.depth -= 1
            if self.depth == 0:
                self.inside = False
        if tag == "tbody":
            self.in_body = False
        elif tag == "td" and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table_rows(response: Any, region: str | None = None) -> list[list[str]]:
    """The body rows of the tables on the page (of the one in the region labelled `region`)."""
    parser = _Rows(region)
    parser.feed(response.content.decode())
    return parser.rows
