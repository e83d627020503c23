"""Reported values: the transition table, every rule of a value, the approved month's lock, re-opening, 409 on a
stale version, the audit trail, completeness and the hospital's value."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import sh
from tests.indicators.reporting_fixtures import FEBRUARY, MARCH, NOW, default_reported, reported  # noqa: F401


def _submit(actor, code="pain_assessment_rate", month=MARCH, department=None, now=NOW, **values):
    from qcflow.extensions import db
    from qcflow.indicators import reporting

    if not values:
        values = {"numerator": 45, "denominator": 50}
    department = department if department is not None else actor.department_id
    report, status = reporting.submit(code, month, department, actor=actor, now=now, **values)
    db.session.commit()
    return report, status


def _errors(excinfo) -> dict:
    return excinfo.value.errors


@pytest.fixture
def head(actor_of):
    return actor_of("head")


@pytest.fixture
def quality(actor_of):
    return actor_of("quality")


# The transition table --------------------------------------------------------------------------------------

TABLE = {
    ("submit", "new"): "submitted",
    ("revise", "submitted"): "submitted",
    ("revise", "returned"): "submitted",
    ("revise", "reopened"): "submitted",
    ("approve", "submitted"): "approved",
    ("return", "submitted"): "returned",
    ("reopen", "approved"): "reopened",
}
STATES = ("new", "submitted", "returned", "approved", "reopened")
ACTIONS = ("submit", "revise", "approve", "return", "reopen")


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("state", STATES)
def test_the_transition_table_is_exactly_this(action, state):
    from qcflow.indicators.workflow import REPORT_WORKFLOW

    class Report:
        pass

    report = Report()
    report.state = state
    assert REPORT_WORKFLOW.permits(report, action) == ((action, state) in TABLE)
    if (action, state) in TABLE:
        assert REPORT_WORKFLOW._by_action[(action, state)].to_state == TABLE[(action, state)]


def test_only_the_quality_office_decides_and_heads_enter_their_own_department():
    from qcflow.core.actors import Actor
    from qcflow.indicators.workflow import REPORT_WORKFLOW

    class Report:
        state, department_id = "submitted", 1

    head = Actor("user:1", 1, 1, frozenset({"dept_head"}))
    other_head = Actor("user:2", 2, 2, frozenset({"dept_head"}))
    quality = Actor("user:3", 3, 9, frozenset({"quality"}))
    nurse = Actor("user:4", 4, 1, frozenset({"nurse"}))
    names = lambda actor: {t.action for t in REPORT_WORKFLOW.available(Report(), actor)}  # noqa: E731
    assert names(head) == {"revise"}
    assert names(other_head) == names(nurse) == set()
    assert names(quality) == {"revise", "approve", "return"}


# Submitting and the rules of a value -----------------------------------------------------------------------

def test_a_head_submits_a_rate_and_the_value_is_computed_from_its_parts(reported, head):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    report, status = _submit(head, numerator=45, denominator=50, note="按病历抽查")
    assert status == "created"
    assert (report.state, report.value, report.department_id, report.channel) == (
        "submitted", 90.0, reported["surgery"].id, "page")
    assert report.month_on == MARCH and report.submitted_by == head.audit_name and report.version == 1
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "indicator_report.submit")).one()
    assert entry.object_id == str(report.id) and '"numerator":45' in entry.detail


@pytest.mark.parametrize("code, values, stored", [
    ("local_gs_operations", {"value": 12}, 12.0),
    ("local_gs_wait", {"value": 37.5}, 37.5),
    ("local_gs_checklist", {"value": 1}, 1.0),
    ("local_gs_checklist", {"value": 0}, 0.0),
])
def test_value_units_store_the_value(reported, head, code, values, stored):
    report, _ = _submit(head, code=code, **values)
    assert (report.value, report.numerator, report.denominator) == (stored, None, None)


def test_a_per_100_rate_may_exceed_100_but_a_percent_may_not(reported, actor_of):
    from qcflow.core.errors import Unprocessable

    report, _ = _submit(actor_of("card_head"), code="local_card_rate", numerator=130, denominator=100)
    assert report.value == 130.0
    with pytest.raises(Unprocessable) as refused:
        _submit(actor_of("head"), numerator=51, denominator=50)
    assert "numerator" in _errors(refused)


@pytest.mark.parametrize("code, values, field", [
    ("pain_assessment_rate", {"numerator": None, "denominator": 50}, "numerator"),
    ("pain_assessment_rate", {"numerator": 5, "denominator": None}, "denominator"),
    ("pain_assessment_rate", {"numerator": -1, "denominator": 50}, "numerator"),
    ("pain_assessment_rate", {"numerator": 0, "denominator": 0}, "denominator"),
    ("pain_assessment_rate", {"numerator": 50, "denominator": 49}, "numerator"),
    ("pain_assessment_rate", {"numerator": 5, "denominator": 50, "value": 10.0}, "value"),
    ("local_gs_operations", {"value": 2.5}, "value"),
    ("local_gs_operations", {"value": -1}, "value"),
    ("local_gs_operations", {"value": None}, "value"),
    ("local_gs_operations", {"value": 3, "numerator": 3}, "numerator"),
    ("local_gs_wait", {"value": float("inf")}, "value"),
    ("local_gs_wait", {"value": float("nan")}, "value"),
    ("local_gs_checklist", {"value": 2}, "value"),
    ("local_gs_checklist", {"value": 0.5}, "value"),
])
def test_parts_that_do_not_fit_the_unit_are_refused_by_field(reported, head, code, values, field):
    from qcflow.core.errors import Unprocessable
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorReport

    with pytest.raises(Unprocessable) as refused:
        _submit(head, code=code, **values)
    assert field in _errors(refused)
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(IndicatorReport)) == 0


def test_the_edge_values_are_accepted(reported, head):
    assert _submit(head, numerator=0, denominator=1)[0].value == 0.0
    assert _submit(head, month=FEBRUARY, numerator=50, denominator=50)[0].value == 100.0
    assert _submit(head, code="local_gs_operations", value=0)[0].value == 0.0


@pytest.mark.parametrize("code, message", [
    ("ae_per_100_discharges", "computed by qcflow"),
    ("qc_centre_setup_rate", "does not apply"),
    ("no_such_indicator", "No indicator"),
])
def test_only_a_reported_indicator_can_be_reported(reported, quality, app, code, message):
    from flask_babel import force_locale

    from qcflow.core.errors import Unprocessable

    with force_locale("en"), pytest.raises(Unprocessable) as refused:
        _submit(quality, code=code, department=reported["qc"].id)
    assert message in _errors(refused)["code"][0]


def test_the_errors_read_in_chinese(reported, quality, app):
    from flask_babel import force_locale

    from qcflow.core.errors import Unprocessable

    with force_locale("zh"), pytest.raises(Unprocessable) as refused:
        _submit(quality, code="ae_per_100_discharges", department=reported["qc"].id)
    assert "自动计算" in _errors(refused)["code"][0] or "计算" in _errors(refused)["code"][0]


def test_a_head_reports_only_their_own_departments_indicators(reported, head, actor_of):
    from qcflow.core.errors import Unprocessable

    with pytest.raises(Unprocessable) as refused:
        _submit(head, department=reported["cardio"].id)
    assert "department" in _errors(refused)
    with pytest.raises(Unprocessable) as refused:  # cardiology's own indicator, by the surgery head
        _submit(head, code="local_card_ratio", value=1.2)
    assert "department" in _errors(refused)
    with pytest.raises(Unprocessable):  # pain assessment is surgery's, not cardiology's
        _submit(actor_of("card_head"))


def test_the_quality_office_reports_for_any_department(reported, quality):
    report, _ = _submit(quality, code="local_card_ratio", department=reported["cardio"].id, value=1.25)
    assert report.department_id == reported["cardio"].id and report.state == "submitted"


def test_a_nurse_may_not_enter_a_value(reported, actor_of):
    from qcflow.core.errors import Forbidden

    with pytest.raises(Forbidden):
        _submit(actor_of("nurse"))


@pytest.mark.parametrize("month, now, accepted", [
    (MARCH, sh(2026, 3, 31, 0, 0), True),              # from the month's last day on (hospital time)
    (MARCH, sh(2026, 3, 30, 23, 59), False),           # the day before
    (date(2026, 4, 1), NOW, False),                    # the current month
    (date(2026, 5, 1), NOW, False),                    # the future
    (date(2000, 1, 1), NOW, True),
    (date(1999, 12, 1), NOW, False),
])
def test_the_month_has_ended_and_is_not_before_2000(reported, head, month, now, accepted):
    from qcflow.core.errors import Unprocessable

    if accepted:
        assert _submit(head, month=month, now=now)[0].month_on == month
    else:
        with pytest.raises(Unprocessable) as refused:
            _submit(head, month=month, now=now)
        assert list(_errors(refused)) == ["month"]


# Revising, deciding, the lock and re-opening ---------------------------------------------------------------

def test_revise_before_a_decision_needs_the_current_version(reported, head):
    from qcflow.core.errors import Conflict

    report, _ = _submit(head, numerator=45, denominator=50)
    with pytest.raises(Conflict):
        _submit(head, numerator=46, denominator=50)  # no version
    with pytest.raises(Conflict):
        _submit(head, numerator=46, denominator=50, expected_version=report.version + 1)
    revised, status = _submit(head, numerator=46, denominator=50, expected_version=report.version)
    assert status == "updated" and revised.id == report.id and revised.value == 92.0 and revised.version == 2
    same, status = _submit(head, numerator=46, denominator=50, expected_version=revised.version)
    assert status == "unchanged" and same.version == 2


def test_return_revise_approve_lock_reopen_correct(reported, head, quality):
    from qcflow.core.audit import AuditEntry
    from qcflow.core.errors import Conflict, GuardFailed
    from qcflow.extensions import db
    from qcflow.indicators import reporting

    report, _ = _submit(head)
    with pytest.raises(GuardFailed):
        reporting.decide(report, "return", actor=quality, now=NOW, expected_version=report.version, reason="  ")
    db.session.rollback()
    reporting.decide(report, "return", actor=quality, now=NOW, expected_version=report.version,
                     reason="分母与出院人数不符")
    db.session.commit()
    assert (report.state, report.reason, report.decided_by) == ("returned", "分母与出院人数不符", quality.audit_name)
    report, _ = _submit(head, numerator=44, denominator=52, expected_version=report.version)
    assert report.state == "submitted" and report.decided_at is None
    reporting.decide(report, "approve", actor=quality, now=NOW + timedelta(hours=1), expected_version=report.version)
    db.session.commit()
    assert report.state == "approved"

    # The approved month is locked, for the head and for the quality office alike.
    for actor in (head, quality):
        with pytest.raises(Conflict) as locked:
            _submit(actor, numerator=45, denominator=52, expected_version=report.version,
                    department=reported["surgery"].id)
        assert "locked" in str(locked.value.message) or "锁定" in str(locked.value.message)
    db.session.rollback()
    with pytest.raises(GuardFailed):
        reporting.decide(report, "reopen", actor=quality, now=NOW, expected_version=report.version)
    db.session.rollback()
    reporting.decide(report, "reopen", actor=quality, now=NOW, expected_version=report.version,
                     reason="病案室更正了出院人数")
    db.session.commit()
    report, _ = _submit(head, numerator=45, denominator=52, expected_version=report.version)
    assert (report.state, report.numerator) == ("submitted", 45)
    actions = db.session.scalars(sa.select(AuditEntry.action).where(
        AuditEntry.object_type == "indicator_report").order_by(AuditEntry.seq)).all()
    assert actions == ["indicator_report.submit", "indicator_report.return", "indicator_report.revise",
                       "indicator_report.approve", "indicator_report.reopen", "indicator_report.revise"]


def test_a_head_cannot_decide_and_stale_decisions_are_409(reported, head, quality):
    from qcflow.core.errors import Conflict, Forbidden, InvalidTransition
    from qcflow.extensions import db
    from qcflow.indicators import reporting

    report, _ = _submit(head)
    with pytest.raises(Forbidden):
        reporting.decide(report, "approve", actor=head, now=NOW, expected_version=report.version)
    with pytest.raises(Conflict):
        reporting.decide(report, "approve", actor=quality, now=NOW, expected_version=report.version - 1 or 99)
    with pytest.raises(InvalidTransition):
        reporting.decide(report, "reopen", actor=quality, now=NOW, expected_version=report.version, reason="x")
    db.session.rollback()
    assert db.session.get(type(report), report.id).state == "submitted"


def test_approving_many_is_all_or_nothing(reported, head, quality):
    from qcflow.core.errors import Conflict
    from qcflow.extensions import db
    from qcflow.indicators import reporting
    from qcflow.indicators.models import IndicatorReport

    first, _ = _submit(head)
    second, _ = _submit(head, code="local_gs_operations", value=3)
    with pytest.raises(Conflict):
        reporting.decide_many([(first.id, first.version), (second.id, 99)], "approve", actor=quality, now=NOW)
    db.session.rollback()
    assert {r.state for r in db.session.scalars(sa.select(IndicatorReport))} == {"submitted"}
    reporting.decide_many([(first.id, first.version), (second.id, second.version)], "approve", actor=quality, now=NOW)
    db.session.commit()
    assert {r.state for r in db.session.scalars(sa.select(IndicatorReport))} == {"approved"}


# What the dashboards read -----------------------------------------------------------------------------------

def test_only_approved_reports_count_and_departments_add_up(reported, head, quality, app):
    from qcflow.extensions import db
    from qcflow.indicators import queries, reporting
    from qcflow.indicators.models import IndicatorSetup

    # Reported hospital-wide (no reporting department named): any department's value adds up.
    db.session.scalar(sa.select(IndicatorSetup).where(IndicatorSetup.code == "pain_assessment_rate")).department_id = None
    report, _ = _submit(head, numerator=45, denominator=50)
    other, _ = _submit(quality, department=reported["cardio"].id, numerator=10, denominator=50)
    value = {v.code: v for v in queries.reported_values(MARCH, date(2026, 3, 31))}["pain_assessment_rate"]
    assert (value.value, value.pending) == (None, 2)
    reporting.decide(report, "approve", actor=quality, now=NOW, expected_version=report.version)
    reporting.decide(other, "approve", actor=quality, now=NOW, expected_version=other.version)
    db.session.commit()
    value = {v.code: v for v in queries.reported_values(MARCH, date(2026, 3, 31))}["pain_assessment_rate"]
    assert (value.numerator, value.denominator, value.value, value.pending) == (55, 100, 55.0, 0)


# Completeness ---------------------------------------------------------------------------------------------

def test_completeness_lists_each_month_state_by_responsible_department(reported, head, quality, app):
    from qcflow.extensions import db
    from qcflow.indicators import reporting

    months = reporting.months_so_far(2026, NOW)
    assert months == [date(2026, 1, 1), FEBRUARY, MARCH]
    report, _ = _submit(head, month=FEBRUARY)
    reporting.decide(report, "approve", actor=quality, now=NOW, expected_version=report.version)
    returned, _ = _submit(head, code="local_gs_operations", value=4)
    reporting.decide(returned, "return", actor=quality, now=NOW, expected_version=returned.version, reason="少报")
    db.session.commit()
    rows = {r.entry.code: r for r in reporting.completeness(months)}
    set_up = {"pain_assessment_rate", "local_gs_operations", "local_gs_wait", "local_gs_checklist",
              "local_card_ratio", "local_card_rate"}
    assert set_up <= set(rows)
    # Every other indicator the catalogue reports by default: the quality office's, until a department is named.
    assert set(rows) - set_up == set(default_reported(app)) - set_up
    assert all(rows[code].department_id is None and set(rows[code].months.values()) == {"missing"}
               for code in set(rows) - set_up)
    assert {(rows[code].department_id, rows[code].entry.owner_department_id) for code in set_up} == {
        (reported["surgery"].id, None), (reported["surgery"].id, reported["surgery"].id),
        (reported["cardio"].id, reported["cardio"].id)}
    assert rows["pain_assessment_rate"].months == {date(2026, 1, 1): "missing", FEBRUARY: "approved",
                                                   MARCH: "missing"}
    assert rows["local_gs_operations"].months[MARCH] == "returned"
    assert rows["local_gs_operations"].still_owed(MARCH) and not rows["pain_assessment_rate"].still_owed(FEBRUARY)
    own = reporting.completeness(months, department_id=reported["cardio"].id, only_department=True)
    assert {r.entry.code for r in own} == {"local_card_ratio", "local_card_rate"}


def test_a_month_of_a_past_year_is_complete_with_twelve_months():
    from qcflow.indicators import reporting

    assert len(reporting.months_so_far(2025, NOW)) == 12
    assert reporting.months_so_far(2027, NOW) == []


def test_a_reason_is_at_most_500_characters_without_control_characters_and_a_decision_needs_a_version(
        reported, head, quality):
    from qcflow.core.errors import Conflict, Unprocessable
    from qcflow.indicators import reporting

    report, _ = _submit(head)
    for reason in ("很" * 501, "退回\x1b[31m"):
        with pytest.raises(Unprocessable) as refused:
            reporting.decide(report, "return", actor=quality, now=NOW, expected_version=report.version, reason=reason)
        assert "reason" in _errors(refused)
    with pytest.raises(Conflict):
        reporting.decide(report, "approve", actor=quality, now=NOW, expected_version=None)
    done = reporting.decide(report, "return", actor=quality, now=NOW, expected_version=report.version,
                            reason="很" * 500)
    assert done.state == "returned"
