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


class IndicatorTarget(Versioned, Base):
    """A target for one indicator, hospital level and year; later years inherit the latest row."""

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

    __table_args__ = (
        sa.UniqueConstraint("code", "hospital_level", "year", name="uq_indicator_target_code_level_year"),
        enum_check("hospital_level", HOSPITAL_LEVELS),
        enum_check("comparison", COMPARISONS),
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
    "unit": {"percent": "%", "permille": "‰", "per100": _l("per 100 discharges")},
    "direction": {"higher": _l("Higher is better"), "lower": _l("Lower is better"), "rising": _l("Should rise")},
    "comparison": {"gt": ">", "ge": "≥", "le": "≤", "lt": "<"},
    "level": {"tertiary": _l("Tertiary hospital"), "secondary": _l("Secondary hospital")},
    "part": {"numerator": _l("Numerator"), "denominator": _l("Denominator")},
    "kind": {
        "event": _l("Adverse event"), "encounter": _l("Discharge"), "census": _l("Discharge census"),
        "operation": _l("Operation"), "followup_task": _l("Follow-up call"), "discussion": _l("Discussion"),
    },
}

register_labels(LABELS, prefix="ind_")
