"""Small-cell suppression: no hidden count can be worked out from what is published.

The reader's knowledge is rebuilt from the published strings only: a number is exact, `<5` is
0–4, `—` is at least 5 (it would be `<5` otherwise), and the total, when published, is the sum.
Every value a hidden cell could take is then enumerated (a sum over boxes, by dynamic programming,
independent of the module's interval arithmetic).
"""
import pytest
from hypothesis import given, settings, strategies as st

from qcflow.reports.suppression import suppress

K = 5


def knowledge(published: list[str], total: str):
    """(boxes per cell, total or None) as a reader sees them."""
    known_total = int(total) if total.isdigit() else None
    boxes = []
    for text in published:
        if text.isdigit():
            boxes.append((int(text), int(text)))
        elif text == f"<{K}":
            boxes.append((0, K - 1))
        else:
            assert text == "—"
            boxes.append((K, known_total if known_total is not None else 10**6))
    return boxes, known_total


def possible_values(boxes, total, index) -> set[int]:
    """Every value cell `index` can take with the other cells inside their boxes and the sum = total."""
    lo, hi = boxes[index]
    if total is None:
        return set(range(lo, min(hi, lo + 30) + 1))  # no equation: the whole box (cut short when unbounded)
    sums = {0}
    for j, (a, b) in enumerate(boxes):
        if j != index:
            sums = {s + x for s in sums for x in range(a, b + 1) if s + x <= total}
    return {v for v in range(lo, hi + 1) if total - v in sums}


def published(values, **options):
    result = suppress(values, k=K, **options)
    return [result.display(values, i) for i in range(len(values))], result.display(values)


tables = st.lists(st.integers(min_value=0, max_value=14), min_size=1, max_size=6)


@settings(max_examples=400, deadline=None)
@given(values=tables, public_total=st.booleans())
def test_no_hidden_count_is_recoverable_from_the_total(values, public_total):
    cells, total = published(values, total_is_public=public_total)
    boxes, known_total = knowledge(cells, total)
    assert known_total is None or known_total == sum(values)
    recovered = []
    for i, text in enumerate(cells):
        if text.isdigit():
            assert int(text) == values[i] and values[i] >= K
            continue
        assert values[i] < K if text == f"<{K}" else values[i] >= K  # what is shown is true
        options = possible_values(boxes, known_total, i)
        assert values[i] in options
        if values[i] > 0 and len(options) == 1:
            recovered.append(i)
    if recovered:
        # Only a total published anyway (hospital level, or shown in the department's other tables)
        # can still give a cell away, and only once every cell is hidden (every cell exactly 4).
        assert public_total and all(not text.isdigit() for text in cells), (values, cells, total)


@settings(max_examples=200, deadline=None)
@given(values=tables)
def test_every_count_below_k_is_hidden_below_the_hospital_level(values):
    cells, total = published(values)
    assert all(text == f"<{K}" for text, v in zip(cells, values) if v < K)
    assert (total == f"<{K}") == (sum(values) < K)


@given(values=tables)
def test_nothing_is_hidden_at_the_hospital_level(values):
    cells, total = published(values, below_hospital_level=False)
    assert cells == [str(v) for v in values] and total == str(sum(values))


@pytest.mark.parametrize("values, cells, total", [
    ([6, 1], ["—", "<5"], "7"),             # the 1 would be 7 − 6: the 6 is hidden too
    ([6, 1, 0], ["6", "<5", "<5"], "7"),    # the zero next to the 1 is enough to hide it
    ([4, 4], ["<5", "<5"], "—"),            # 8 = 4 + 4 at the upper bounds: the total goes
    ([12, 1], ["—", "<5"], "13"),
    ([9, 0, 0], ["9", "<5", "<5"], "9"),    # zeros that can be worked out give nobody away
    ([3, 1], ["<5", "<5"], "<5"),
])
def test_examples(values, cells, total):
    assert published(values) == (cells, total)
