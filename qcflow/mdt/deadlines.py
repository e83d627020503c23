"""The deadline of a death discussion: the one place that computes it, for the MDT module (a review's
`due_at`, its overdue escalation) and for the indicators (`periop_death_discussion_7d_rate`,
`periop_death_discussion_5wd_rate`, which count both rules whatever the setting says).

- "7d": seven calendar days after the death, to the instant (the core-system rule, 一周内).
- "5wd": by the end of the fifth working day after the day of death on the Chinese statutory calendar
  (调休 make-up working days count, holidays do not). As for any period counted in days (Civil Code
  art. 201, 203), the day of death itself is not counted and the last day ends at 24:00.

A death known by its day only (a date of death, no in-hospital discharge time) happened at the day's last
instant (`clinical.record_death`), so its seven days end at 24:00 of the seventh day after.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import current_app

from qcflow.core.periods import local_midnight
from qcflow.core.time import hospital_tz, local
from qcflow.core.workdays import covered_years, is_working_day

RULES = ("7d", "5wd")
SEVEN_DAYS = timedelta(days=7)
WORKING_DAYS = 5


def configured_rule() -> str:
    """The deadline the MDT module gives death reviews (DEATH_DISCUSSION_DEADLINE: "7d" or "5wd")."""
    rule = current_app.config["DEATH_DISCUSSION_DEADLINE"]
    if rule not in RULES:
        raise ValueError(f"DEATH_DISCUSSION_DEADLINE must be one of {RULES}, not {rule!r}")
    return rule


def working_days_after(day: date, count: int) -> date:
    """The `count`-th working day after `day` (`day` itself not counted).

    Before the calendar's first year (no hospital records date from then; the indicators' definition digest
    compiles a month of 2000) Monday to Friday count, without the calendar's warning about a missing year.
    """
    first_year = covered_years().start
    while count:
        day += timedelta(days=1)
        count -= is_working_day(day) if day.year >= first_year else day.weekday() < 5
    return day


def last_instant(died_on: date) -> datetime:
    """When a death known by its day only happened: the day's last instant (hospital time zone)."""
    return local_midnight(died_on + timedelta(days=1), hospital_tz()) - timedelta(microseconds=1)


def death_discussion_due(died_at: datetime, rule: str) -> datetime:
    """When the discussion of a death at `died_at` is due under `rule` ("7d" or "5wd")."""
    if rule == "7d":
        return died_at + SEVEN_DAYS
    if rule == "5wd":
        return local_midnight(working_days_after(local(died_at).date(), WORKING_DAYS) + timedelta(days=1),
                              hospital_tz())
    raise ValueError(f"unknown death-discussion deadline {rule!r}")
