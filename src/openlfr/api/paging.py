"""Server-side pagination for the console's long lists (alert queue, audit log)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

PER_PAGE = 25


@dataclass(frozen=True)
class Pager:
    """One page of ``total`` rows, ``per_page`` a page (pages count from 1), and the filters
    (query parameters) every page link keeps."""

    page: int
    total: int
    per_page: int = PER_PAGE
    keep: tuple[tuple[str, str], ...] = ()

    @property
    def pages(self) -> int:
        """How many pages there are (at least one, even when empty)."""
        return max(1, -(-self.total // self.per_page))

    @property
    def offset(self) -> int:
        """Rows skipped before this page."""
        return (self.page - 1) * self.per_page

    @property
    def first_row(self) -> int:
        """The 1-based number of this page's first row (0 when there are none)."""
        return min(self.total, self.offset + 1)

    @property
    def last_row(self) -> int:
        """The 1-based number of this page's last row."""
        return min(self.total, self.offset + self.per_page)

    def link(self, page: int) -> str:
        """The query string of ``page`` with the same filters."""
        return "?" + urlencode([*(kv for kv in self.keep if kv[1]), ("page", str(page))])
