"""Indicator targets (by hospital level and year) and frozen monthly snapshots."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column

from qcflow.core.db import Base, Versioned, enum_check
from qcflow.core.i18n import register_labels

HOSPITAL_LEVELS = ("tertiary", "secondary")
#: How a value is compared with its target: > ≥ ≤ <.
COMPARISONS = ("gt", "ge", "le", "lt")
#: How a catalogue indicator gets its value: qcflow's own data, a department's monthly report, or not at all.
METHODS = ("computed", "reported", "not_applicable")
#: Units of the catalogue (docs/indicators.md, The catalogue): rates, counts, times, and "status" items
#: (a qualitative 情况 reported as done, 1, or not done, 0).
UNITS = ("percent", "permille", "per100", "count", "minutes", "hours", "days", "ratio", "status")
DIRECTIONS = ("higher", "lower", "rising", "falling", "none")
#: States of a reported monthly value (indicators.reporting holds the transition table).
REPORT_STATES = ("submitted", "returned", "approved", "reopened")


class IndicatorTarget(Versioned, Base):
    """A target for one indicator, hospital level and year; later years inherit the latest row.

    The hospital's own targets (department_id NULL) and a department's yearly targets for its key indicators
    (department_id set). The plans' target sets are data (indicators/data/targets.csv), not rows.
    """

    __tablename__ = "indicator_target"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(60))
    hospital_level: Mapped[str] = mapped_column(sa.String(10))
    #: First year the target applies to; it holds until a row for a later year exists.
    year: Mapped[int]
    comparison: Mapped[str] = mapped_column(sa.String(2))
    value: Mapped[float] = mapped_column(sa.Float)
    #: Where the target comes from (plan and line), or who set it.
    source: Mapped[str | None] = mapped_column(sa.String(200))
    updated_at: Mapped[datetime]
    #: Audit name of who set it ("system:migration", "system:cli").
    updated_by: Mapped[str] = mapped_column(sa.String(80))
    #: A department's own target for its department's value; NULL: the hospital's.
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))

    __table_args__ = (
        sa.Index("uq_indicator_target_hospital", "code", "hospital_level", "year", unique=True,
                 sqlite_where=sa.text("department_id IS NULL"), postgresql_where=sa.text("department_id IS NULL")),
        sa.UniqueConstraint("code", "hospital_level", "year", "department_id", name="uq_indicator_target_department"),
        enum_check("hospital_level", HOSPITAL_LEVELS),
        enum_check("comparison", COMPARISONS),
    )


class IndicatorSetup(Versioned, Base):
    """This hospital's choice for one indicator of the catalogue: how it gets its value (when not the
    catalogue's default), why it does not apply, and which department reports it."""

    __tablename__ = "indicator_setup"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(60), unique=True)
    method: Mapped[str] = mapped_column(sa.String(20))
    #: Why the indicator does not apply to this hospital (required for not_applicable).
    reason: Mapped[str | None] = mapped_column(sa.String(300))
    #: The department that reports it; NULL: the catalogue's default (the quality office reports).
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(sa.String(80))

    __table_args__ = (enum_check("method", METHODS),)


class LocalIndicator(Versioned, Base):
    """A department's own key indicator (科室关键指标, Shaoxing [001:28, 66]; Henan [003:257-261, 310-314]):
    always reported by that department, with yearly targets like any other."""

    __tablename__ = "local_indicator"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: "local_" + a slug; unique across the catalogue.
    code: Mapped[str] = mapped_column(sa.String(60), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    name_en: Mapped[str | None] = mapped_column(sa.String(120))
    unit: Mapped[str] = mapped_column(sa.String(10))
    direction: Mapped[str] = mapped_column(sa.String(10))
    definition: Mapped[str] = mapped_column(sa.Text)
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(sa.String(80))

    __table_args__ = (enum_check("unit", UNITS), enum_check("direction", DIRECTIONS))


class IndicatorReport(Versioned, Base):
    """One department's reported value of one indicator for one month (from the HIS or typed in), with its
    approval: approved months are locked; a correction re-opens them with a reason."""

    __tablename__ = "indicator_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(60))
    #: First day of the month.
    month_on: Mapped[date]
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"))
    #: A rate's parts (counts); NULL for an indicator reported as one value (a count, a time, a status).
    numerator: Mapped[int | None]
    denominator: Mapped[int | None]
    #: The value: the rate computed from its parts in the indicator's unit, or the value as reported.
    value: Mapped[float | None] = mapped_column(sa.Float)
    note: Mapped[str | None] = mapped_column(sa.Text)
    state: Mapped[str] = mapped_column(sa.String(10))
    #: page or his.
    channel: Mapped[str] = mapped_column(sa.String(10))
    submitted_at: Mapped[datetime]
    submitted_by: Mapped[str] = mapped_column(sa.String(80))
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(sa.String(80))
    #: Why the quality office returned the value or re-opened the approved month.
    reason: Mapped[str | None] = mapped_column(sa.String(500))

    __table_args__ = (
        sa.UniqueConstraint("code", "month_on", "department_id", name="uq_indicator_report_code_month_department"),
        sa.Index("ix_indicator_report_month_state", "month_on", "state"),
        enum_check("state", REPORT_STATES),
        enum_check("channel", ("page", "his")),
        sa.CheckConstraint("denominator IS NULL OR denominator > 0", name="denominator_positive"),
    )


class IndicatorSnapshot(Base):
    """One indicator's value for one month, frozen so a printed bulletin can be reproduced."""

    __tablename__ = "indicator_snapshot"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: First day of the month.
    month_on: Mapped[date]
    code: Mapped[str] = mapped_column(sa.String(60))
    #: NULL: the whole hospital.
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))
    numerator: Mapped[int]
    denominator: Mapped[int]
    value: Mapped[float | None] = mapped_column(sa.Float)
    target: Mapped[float | None] = mapped_column(sa.Float)
    comparison: Mapped[str | None] = mapped_column(sa.String(2))
    met: Mapped[bool | None]
    frozen_at: Mapped[datetime]

    __table_args__ = (
        # Department rows: one per month, code and department; hospital rows (NULL) need their own
        # partial index because NULLs never collide in a unique constraint.
        sa.UniqueConstraint("month_on", "code", "department_id", name="uq_indicator_snapshot_month_code_department"),
        sa.Index("uq_indicator_snapshot_hospital", "month_on", "code", unique=True,
                 sqlite_where=sa.text("department_id IS NULL"), postgresql_where=sa.text("department_id IS NULL")),
        sa.CheckConstraint("comparison IS NULL OR comparison IN ('gt', 'ge', 'le', 'lt')", name="comparison_valid"),
    )


class IndicatorRollupMonth(Base):
    """A month whose parts are rolled up in `indicator_rollup` (docs/indicators.md, Rollups)."""

    __tablename__ = "indicator_rollup_month"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: First day of the month.
    month_on: Mapped[date] = mapped_column(unique=True)
    #: Digest of the definitions' SQL and settings the counts were made with; another digest → unused.
    definition: Mapped[str] = mapped_column(sa.String(16))
    #: When these counts were written (a refresh that finds the same counts writes nothing).
    refreshed_at: Mapped[datetime]


class IndicatorRollup(Base):
    """One part's count (numerator or denominator) for a rolled-up month, hospital or department."""

    __tablename__ = "indicator_rollup"

    id: Mapped[int] = mapped_column(primary_key=True)
    month_on: Mapped[date] = mapped_column(sa.ForeignKey("indicator_rollup_month.month_on"))
    code: Mapped[str] = mapped_column(sa.String(60))
    #: numerator or denominator.
    part: Mapped[str] = mapped_column(sa.String(11))
    #: NULL: the whole hospital (every record, with or without a department).
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))
    #: SUM(weight) of the part's sources, as `queries.compute` counts them; zero counts have no row.
    total: Mapped[int]

    __table_args__ = (
        sa.UniqueConstraint("department_id", "month_on", "code", "part", name="uq_indicator_rollup_department_month"),
        sa.Index("uq_indicator_rollup_hospital", "month_on", "code", "part", unique=True,
                 sqlite_where=sa.text("department_id IS NULL"), postgresql_where=sa.text("department_id IS NULL")),
        enum_check("part", ("numerator", "denominator")),
    )


LABELS = {
    "unit": {"percent": "%", "permille": "‰", "per100": _l("per 100 discharges"), "count": _l("count"),
             "minutes": _l("minutes"), "hours": _l("hours"), "days": _l("days"), "ratio": _l("ratio"),
             "status": _l("done or not")},
    "direction": {"higher": _l("Higher is better"), "lower": _l("Lower is better"), "rising": _l("Should rise"),
                  "falling": _l("Should fall"), "none": _l("No direction")},
    "method": {"computed": _l("Computed by qcflow"), "reported": _l("Reported monthly"),
               "not_applicable": _l("Not applicable")},
    "report_state": {"submitted": _l("Submitted"), "returned": _l("Returned"), "approved": _l("Approved"),
                     "reopened": _l("Re-opened")},
    "channel": {"page": _l("Typed in"), "his": _l("From the HIS")},
    "comparison": {"gt": ">", "ge": "≥", "le": "≤", "lt": "<"},
    "level": {"tertiary": _l("Tertiary hospital"), "secondary": _l("Secondary hospital")},
    "part": {"numerator": _l("Numerator"), "denominator": _l("Denominator")},
    "kind": {
        "event": _l("Adverse event"), "encounter": _l("Discharge"), "census": _l("Discharge census"),
        "operation": _l("Operation"), "followup_task": _l("Follow-up call"), "discussion": _l("Discussion"),
    },
}

register_labels(LABELS, prefix="ind_")


#: The forms sent to the province: the plan's annual monitoring form and the quarterly report to the quality office.
FORM_KINDS = ("annual", "quarterly")


class IndicatorForm(Base):
    """One generated form, archived frozen: the snapshot it was made from (the JSON twin) and the XLSX bytes
    never change; generating the same period again adds the next revision (docs/indicators.md, Forms sent to
    the province)."""

    __tablename__ = "indicator_form"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan: Mapped[str] = mapped_column(sa.String(20))
    kind: Mapped[str] = mapped_column(sa.String(10))
    #: First and last day of the period: a calendar year, or a quarter.
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    #: 1, 2, … per plan, kind and period: a later revision replaces the earlier ones, which stay.
    revision: Mapped[int]
    generated_at: Mapped[datetime]
    #: Audit name of who generated it (user:4); `generator_name` is the name printed on the form.
    generated_by: Mapped[str] = mapped_column(sa.String(80))
    generator_name: Mapped[str] = mapped_column(sa.String(120))
    #: The JSON twin exactly as served (canonical: sorted keys, UTF-8), schema qcflow.indicator-form/1.
    snapshot: Mapped[str] = mapped_column(sa.Text)
    xlsx: Mapped[bytes] = mapped_column(sa.LargeBinary)
    #: Hex SHA-256 of the XLSX bytes and of the JSON twin's UTF-8 bytes.
    xlsx_sha256: Mapped[str] = mapped_column(sa.String(64))
    json_sha256: Mapped[str] = mapped_column(sa.String(64))

    __table_args__ = (
        sa.UniqueConstraint("plan", "kind", "starts_on", "revision", name="uq_indicator_form_plan_kind_start_revision"),
        enum_check("kind", FORM_KINDS),
        sa.CheckConstraint("revision >= 1", name="revision_positive"),
    )


class IndicatorFormReminder(Base):
    """A January reminder sent (one per plan, year and reminder date), so a second run of the job sends none."""

    __tablename__ = "indicator_form_reminder"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan: Mapped[str] = mapped_column(sa.String(20))
    #: The year whose form is due.
    year: Mapped[int]
    #: The reminder date of INDICATOR_FORM_REMINDER_DATES this reminder stands for.
    reminder_on: Mapped[date]
    sent_at: Mapped[datetime]
    #: Values still missing when it was sent, and the people told.
    missing: Mapped[int]
    recipients: Mapped[int]

    __table_args__ = (sa.UniqueConstraint("plan", "year", "reminder_on", name="uq_indicator_form_reminder_plan_year_on"),)


register_labels({
    "form_kind": {"annual": _l("Annual monitoring form"), "quarterly": _l("Quarterly report")},
    "form_status": {"ok": _l("Complete"), "partial": _l("Partly approved"), "missing": _l("Missing"),
                    "no_cases": _l("No cases in the period"), "not_applicable": _l("Not applicable"),
                    "not_available": _l("Not available in qcflow")},
    "form_generated": {"no": _l("The annual form has not been generated yet."),
                       "yes": _l("The annual form has been generated; generate it again once the missing values "
                                 "are approved.")},
}, prefix="ind_")
