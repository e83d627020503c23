"""Keyset pagination: a page is read with one row more than it shows, so the list knows whether
another page follows without a count and never hands out a cursor to an empty page."""
from __future__ import annotations

from typing import Callable, Iterable, TypeVar

Row = TypeVar("Row")
Key = TypeVar("Key")


def keyset_page(read: Callable[[int], Iterable[Row]], limit: int,
                key: Callable[[Row], Key]) -> tuple[list[Row], Key | None]:
    """The page of `limit` rows and the key of its last row when more follow (None on the last page).

    `read(n)` returns at most `n` rows in the list's order, after the previous page's key; it is
    called once, with `limit + 1`.
    """
    rows = list(read(limit + 1))
    page = rows[:limit]
    return page, key(page[-1]) if len(rows) > limit else None
