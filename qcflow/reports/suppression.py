"""Small-cell suppression: counts that could single out an anonymous reporter are shown as `<k`.

A table is a list of cells (counts over a fixed list of values: every category, every department,
every month of the period) and their total. Below the hospital level every count under `k`,
zero included, is shown as `<k`, so a reader learns only that it lies in [0, k-1]; listing every
value of the dimension means an absent row never gives a zero away.

Primary suppression alone is not enough: with the total published, one hidden cell is the total
minus the others, and two hidden cells of 4 with a total of 8 are both 4. Secondary suppression
hides more cells (the smallest published ones first, shown as `—`; a reader knows only that each is
at least k) until every hidden non-zero cell can take at least two values consistent with everything
published. A hidden cell that can be worked out to be 0 is left so: nobody reported there.

When even that cannot help, the total is hidden too, unless it is published anyway (a
hospital-level total, or a department total of k or more, which every table of that department
shows). Such a total can still give a table away only when every cell is hidden and sits at its
bound (e.g. every weekday with exactly k-1 reports), which no choice of cells can prevent.
tests/reports/test_suppression.py checks all this by enumerating the possible values.
"""
from __future__ import annotations

from dataclasses import dataclass

SHOWN = "shown"
PRIMARY = "primary"      # shown as "<k": the count is below k
SECONDARY = "secondary"  # shown as "—": hidden so that a primary cell cannot be worked out


@dataclass(frozen=True)
class Suppressed:
    """The published form of a table: each cell's and the total's status."""

    cells: tuple[str, ...]
    total: str
    k: int

    def display(self, values, index: int | None = None) -> str:
        """What a reader sees for cell `index` (or the total when index is None)."""
        status = self.total if index is None else self.cells[index]
        value = sum(values) if index is None else values[index]
        if status == PRIMARY:
            return f"<{self.k}"
        if status == SECONDARY:
            return "—"
        return str(value)


def bounds(status: str, value: int, k: int, total: int) -> tuple[int, int]:
    """What a reader knows about a value from how it is published."""
    if status == PRIMARY:
        return 0, k - 1
    if status == SECONDARY:
        return k, total
    return value, value


def determined(values, statuses, total_status: str, k: int) -> list[int]:
    """Indexes of hidden cells whose non-zero value follows from what is published.

    One equation (the total) over boxes: each hidden value can be anything in its box for which the
    others' boxes can still make up the rest, and nothing else.
    """
    total = sum(values)
    if total_status != SHOWN:
        return []
    hidden = [i for i, s in enumerate(statuses) if s != SHOWN]
    rest = total - sum(v for v, s in zip(values, statuses) if s == SHOWN)
    box = {i: bounds(statuses[i], values[i], k, total) for i in hidden}
    low_sum = sum(lo for lo, _ in box.values())
    high_sum = sum(hi for _, hi in box.values())
    found = []
    for i in hidden:
        lo, hi = box[i]
        feasible_lo = max(lo, rest - (high_sum - hi))
        feasible_hi = min(hi, rest - (low_sum - lo))
        # A cell that can only be 0 gives nobody away; any other single possible value would.
        if feasible_lo >= feasible_hi and feasible_hi > 0:
            found.append(i)
    return found


def suppress(values, *, k: int, total_is_public: bool = False, below_hospital_level: bool = True) -> Suppressed:
    """Decide which counts of a table to hide (see the module docstring).

    `total_is_public`: the total is published anyway — a hospital-level total, or a department's
    total that every other table of the same department shows — so it is never hidden here.
    """
    values = [int(v) for v in values]
    total = sum(values)
    if not below_hospital_level or k <= 1:
        return Suppressed(tuple(SHOWN for _ in values), SHOWN, k)
    statuses = [PRIMARY if v < k else SHOWN for v in values]
    total_status = SHOWN if total_is_public or total >= k else PRIMARY
    if not any(s == PRIMARY for s in statuses):
        return Suppressed(tuple(statuses), total_status, k)
    while determined(values, statuses, total_status, k):
        candidates = [i for i, s in enumerate(statuses) if s == SHOWN]
        if candidates:
            smallest = min(candidates, key=lambda i: (values[i], i))
            statuses[smallest] = SECONDARY
        elif not total_is_public:
            total_status = SECONDARY
        else:
            break
    return Suppressed(tuple(statuses), total_status, k)
