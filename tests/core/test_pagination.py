"""Keyset pagination reads one row more than the page: a cursor only when a row follows the page."""
import pytest

from qcflow.core.pagination import keyset_page

ROWS = [10, 9, 8, 7, 6]


def reader(rows, asked):
    def read(n):
        asked.append(n)
        return iter(rows[:n])
    return read


@pytest.mark.parametrize("rows, limit, page, after", [
    (ROWS, 5, ROWS, None),                # exactly `limit` rows left: the last page, no cursor
    (ROWS, 4, ROWS[:4], 7),               # `limit + 1`: a cursor, after the page's last row
    (ROWS, 2, ROWS[:2], 9),
    ([], 3, [], None),
    (ROWS[:1], 1, ROWS[:1], None),
])
def test_the_page_and_the_key_of_its_last_row_when_more_follow(rows, limit, page, after):
    asked = []
    assert keyset_page(reader(rows, asked), limit, key=lambda row: row) == (page, after)
    assert asked == [limit + 1]


def test_walking_the_pages_returns_every_row_once_and_no_empty_page():
    pages, after = [], None
    while True:
        rest = [row for row in ROWS if after is None or row < after]
        page, after = keyset_page(lambda n: rest[:n], 2, key=lambda row: row)
        pages.append(page)
        if after is None:
            break
    assert pages == [[10, 9], [8, 7], [6]]
