"""When follow-up calls fall due: a protocol's phases expanded into occurrences (pure functions).

A protocol version is a list of phases. Each phase is either one occurrence ("at +24 h") or a
repeating one ("every 3 months from month 3 to month 24"), in one unit: `hour` (exact instants:
the day-surgery 24 h call), `day` or `month` (calendar days in the hospital's time zone).

Every occurrence is counted from the anchor, never from the previous occurrence. Adding months
keeps the anchor's day of the month and clamps it to the month's length: 31 January + 1 month is
28 (or 29) February, + 2 months is 31 March; a yearly call anchored on 29 February falls on
28 February in common years and on 29 February again in leap years.

Windows: an hourly occurrence's window is [due − early, due + late) in exact hours. A calendar
occurrence is due on a day; its window runs from local midnight `early` days before that day to
local midnight after the day `late` days after it, so "due on 3 March, ±14 days" is open from
17 February 00:00 to 18 March 00:00 (hospital time).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from qcflow.core.periods import add_months, local_midnight

UNITS = ("hour", "day", "month")
#: Mean month length in days and how far a real month span can stray from it (overlap check only).
MEAN_MONTH_DAYS = 30.436875
MONTH_SLACK_DAYS = 3
#: A protocol version may not describe more occurrences than this.
MAX_OCCURRENCES = 200
#: No occurrence, nor the end of its window, may lie further from the anchor than this (100 years).
MAX_REACH_HOURS = 100 * 366 * 24
#: Hours a unit spans at most, for the reach check.
UNIT_HOURS = {"hour": 1, "day": 24, "month": 31 * 24}


@dataclass(frozen=True)
class Phase:
    unit: str
    #: Offset of the first occurrence from the anchor, in `unit`.
    start: int
    #: Repeat interval in `unit`; None for a single occurrence.
    every: int | None = None
    #: Last offset (inclusive) of a repeating phase, in `unit`.
    until: int | None = None
    #: Window tolerance before and after the due time, in hours (whole days for calendar units).
    early_hours: int = 0
    late_hours: int = 0
    #: A hard deadline call (the day-surgery 24 h call): first in the queue.
    is_urgent: bool = False
    #: The patient may answer this phase's calls themselves, by an invitation (followup/invitations).
    self_report: bool = False

    def offsets(self) -> list[int]:
        if self.every is None:
            return [self.start]
        if self.every <= 0 or self.until is None or self.until < self.start:
            return []
        # Slicing the range first: a huge `until` with a small `every` never builds the whole list.
        return list(range(self.start, self.until + 1, self.every)[: MAX_OCCURRENCES + 1])


@dataclass(frozen=True)
class Slot:
    """One occurrence of a protocol, relative to the anchor."""

    number: int
    unit: str
    offset: int
    early_hours: int
    late_hours: int
    is_urgent: bool
    self_report: bool = False


@dataclass(frozen=True)
class Occurrence:
    number: int
    due_at: datetime
    #: The due day in the hospital's time zone.
    due_on: date
    opens_at: datetime
    closes_at: datetime
    is_urgent: bool
    #: An hourly occurrence has an exact due time; a calendar one is due on a day.
    is_timed: bool


def expand(phases) -> list[Slot]:
    """The protocol's occurrences, numbered from 1 in phase order."""
    slots = []
    for phase in phases:
        for offset in phase.offsets():
            slots.append(Slot(len(slots) + 1, phase.unit, offset, phase.early_hours, phase.late_hours, phase.is_urgent,
                              phase.self_report))
    return slots


def occurrence(slots: list[Slot], anchor_at: datetime, number: int, tz: ZoneInfo) -> Occurrence | None:
    """Occurrence `number` (1-based) of a plan anchored at `anchor_at`; None past the protocol's end."""
    if number < 1 or number > len(slots):
        return None
    slot = slots[number - 1]
    if slot.unit == "hour":
        due = anchor_at.astimezone(timezone.utc) + timedelta(hours=slot.offset)
        return Occurrence(number, due, due.astimezone(tz).date(), due - timedelta(hours=slot.early_hours),
                          due + timedelta(hours=slot.late_hours), slot.is_urgent, True)
    anchor_day = anchor_at.astimezone(tz).date()
    due_on = anchor_day + timedelta(days=slot.offset) if slot.unit == "day" else add_months(anchor_day, slot.offset)
    early, late = slot.early_hours // 24, slot.late_hours // 24
    return Occurrence(number, local_midnight(due_on, tz), due_on, local_midnight(due_on - timedelta(days=early), tz),
                      local_midnight(due_on + timedelta(days=late + 1), tz), slot.is_urgent, False)


def occurrences(slots: list[Slot], anchor_at: datetime, tz: ZoneInfo):
    """Every occurrence of a plan, in order."""
    for number in range(1, len(slots) + 1):
        yield occurrence(slots, anchor_at, number, tz)


def reach(slot: Slot) -> tuple[float, float]:
    """Conservative bounds, in hours from the start of the anchor's local day, of the slot's window."""
    early, late = slot.early_hours, slot.late_hours
    if slot.unit == "hour":
        return slot.offset - early, slot.offset + late + 24
    if slot.unit == "day":
        return (slot.offset * 24) - early, (slot.offset + 1) * 24 + late
    middle = slot.offset * MEAN_MONTH_DAYS
    return (middle - MONTH_SLACK_DAYS) * 24 - early, (middle + MONTH_SLACK_DAYS + 1) * 24 + late


def phase_errors(phases, max_early_hours: int) -> list[tuple[str, dict]]:
    """Why these phases cannot form a protocol, as (code, parameters); empty when they can.

    Phases must be in time order and no occurrence's window may overlap the next one's, whatever
    the month lengths (checked with conservative bounds).
    """
    if not phases:
        return [("no_phases", {})]
    problems: list[tuple[str, dict]] = []
    for index, phase in enumerate(phases, start=1):
        if phase.unit not in UNITS:
            problems.append(("bad_unit", {"phase": index}))
        elif phase.start < 0 or phase.early_hours < 0 or phase.late_hours < 0:
            problems.append(("negative", {"phase": index}))
        elif phase.every is not None and (phase.every <= 0 or phase.until is None):
            problems.append(("bad_repeat", {"phase": index}))
        elif (max(phase.start, phase.until or 0) * UNIT_HOURS[phase.unit] + phase.late_hours > MAX_REACH_HOURS
              or phase.every is not None and phase.every * UNIT_HOURS[phase.unit] > MAX_REACH_HOURS):
            problems.append(("too_far", {"phase": index, "years": MAX_REACH_HOURS // (366 * 24)}))
        elif not phase.offsets():
            problems.append(("empty_phase", {"phase": index}))
        elif phase.unit != "hour" and (phase.early_hours % 24 or phase.late_hours % 24):
            problems.append(("whole_days", {"phase": index}))
        elif phase.early_hours > max_early_hours:
            problems.append(("early_too_long", {"phase": index, "hours": max_early_hours}))
    if problems:
        return problems
    slots = expand(phases)
    if len(slots) > MAX_OCCURRENCES:
        return [("too_many", {"n": MAX_OCCURRENCES})]
    phase_of = [index for index, phase in enumerate(phases, start=1) for _ in phase.offsets()]
    for before, after in zip(slots, slots[1:]):
        if reach(before)[1] > reach(after)[0]:
            return [("overlap", {"phase": phase_of[before.number - 1], "next": phase_of[after.number - 1]})]
    return []
