"""Triggers (rules as data, versioned) and the queue of facts waiting to be evaluated."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column

from qcflow.core.db import Base, Versioned, enum_check
from qcflow.core.i18n import register_labels

#: The kinds of HIS fact a trigger can read (the queue's `kind`).
FACT_KINDS = ("operation", "encounter", "death", "transfer", "administration", "lab")

#: The rules a trigger applies (the evaluators in `rules.py`); its parameters and window tune it.
RULES = ("return_to_theatre", "readmission", "icu_after_operation", "drug_given", "critical_lab",
         "death_after_operation")


class Trigger(Versioned, Base):
    """One trigger: a rule with its parameters, window and reviewers. Every change is a new `version`
    (audited); a firing keeps the version that fired it."""

    __tablename__ = "extraction_trigger"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    name_en: Mapped[str] = mapped_column(sa.String(100))
    rule: Mapped[str] = mapped_column(sa.String(30))
    #: The rule's parameters (drugs, test code and thresholds, …), checked by the rule when saved.
    params: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    #: How long after the first fact the second one counts (pair rules), in hours; None for one-fact rules.
    window_hours: Mapped[int | None]
    #: Who reviews a firing besides the quality office; None: the department of the stay or operation.
    reviewer_department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (enum_check("rule", RULES),
                      sa.CheckConstraint("window_hours IS NULL OR window_hours > 0", name="window_positive"))

    def label(self, language: str) -> str:
        return self.name_en if language == "en" and self.name_en else self.name


class QueuedFact(Base):
    """A fact that arrived (or changed) and waits for the evaluator; removed in the transaction that
    records its firings, so each arrival is evaluated exactly once."""

    __tablename__ = "extraction_queue"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    record_id: Mapped[int]
    patient_id: Mapped[int]
    queued_at: Mapped[datetime]

    __table_args__ = (enum_check("kind", FACT_KINDS),)


LABELS = {
    "rule": {
        "return_to_theatre": _l("Return to theatre"), "readmission": _l("Readmission"),
        "icu_after_operation": _l("Transfer to intensive care after an operation"),
        "drug_given": _l("Listed medicine given"), "critical_lab": _l("Critical laboratory value"),
        "death_after_operation": _l("Death after an operation"),
    },
    "param": {
        "only_flagged_unplanned": _l("Only operations the HIS flags as unplanned reoperations"),
        "same_department": _l("Only back to the same department"),
        "exclude_day_surgery": _l("Leave out day-surgery stays"), "reaction_only": _l("Only when a reaction is flagged"),
        "drugs": _l("Medicines"), "test_code": _l("Test code"), "above": _l("Fires above"),
        "below": _l("Fires below"), "unit": _l("Unit (results in another unit do not fire)"),
    },
    "fact": {
        "operation": _l("Operation"), "encounter": _l("Stay"), "death": _l("Death"), "transfer": _l("Transfer"),
        "administration": _l("Medicine given"), "lab": _l("Critical laboratory result"),
    },
}

register_labels(LABELS, prefix="ext_")
