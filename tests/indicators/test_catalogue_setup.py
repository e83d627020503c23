"""This hospital's setup of the catalogue, departments' own indicators and their targets: the services' rules,
refusals, stale versions and audit entries (docs/indicators.md, "This hospital's setup")."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=timezone.utc)
REPORTED, NOT_APPLICABLE, COMPUTED = "pain_assessment_rate", "qc_centre_setup_rate", "followup_rate_level4"


@pytest.fixture
def svc(hospital):
    from qcflow.indicators import services

    return services


def audit_actions(code: str) -> list[tuple[str, dict]]:
    import json

    from qcflow.core import audit
    from qcflow.extensions import db

    audit.flush_pending()
    return [(e.action, json.loads(e.detail)) for e in db.session.scalars(
        sa.select(audit.AuditEntry).where(audit.AuditEntry.object_id == code).order_by(audit.AuditEntry.seq))]


def refused(error, field: str) -> bool:
    return error.value.status == 422 and field in error.value.errors


def setup_rows():
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorSetup

    return list(db.session.scalars(sa.select(IndicatorSetup)))


# -- how a plan indicator gets its value


def test_a_reported_indicator_gets_its_reporting_department(svc, hospital, actor_of):
    from qcflow.indicators import catalogue

    entry = svc.set_up_indicator(REPORTED, "reported", None, hospital["surgery"].id, None,
                                 actor=actor_of("quality"), now=NOW)
    assert (entry.method, entry.department_id, entry.version) == ("reported", hospital["surgery"].id, 1)
    assert catalogue.entry(REPORTED).department_id == hospital["surgery"].id
    [(action, detail)] = audit_actions(REPORTED)
    assert action == "indicator_setup.set"
    assert detail["before"] == {"method": "reported", "reason": None, "department_id": None}
    assert detail["after"]["department_id"] == hospital["surgery"].id


def test_computed_only_where_qcflow_can_compute_it(svc, hospital, actor_of):
    with pytest.raises(Exception) as error:
        svc.set_up_indicator(REPORTED, "computed", None, None, None, actor=actor_of("quality"), now=NOW)
    assert refused(error, "method")
    entry = svc.set_up_indicator(COMPUTED, "reported", None, None, None, actor=actor_of("quality"), now=NOW)
    assert entry.method == "reported"
    back = svc.set_up_indicator(COMPUTED, "computed", None, None, entry.version, actor=actor_of("quality"), now=NOW)
    assert back.method == "computed" and back.computed is not None


def test_an_unknown_method_is_refused(svc, actor_of):
    with pytest.raises(Exception) as error:
        svc.set_up_indicator(REPORTED, "guessed", None, None, None, actor=actor_of("quality"), now=NOW)
    assert refused(error, "method")


@pytest.mark.parametrize("reason", [None, "   ", "x" * 301, "不适用\x1b[31m"])
def test_not_applicable_needs_a_short_plain_reason(svc, actor_of, reason):
    with pytest.raises(Exception) as error:
        svc.set_up_indicator(REPORTED, "not_applicable", reason, None, None, actor=actor_of("quality"), now=NOW)
    assert refused(error, "reason")
    assert setup_rows() == []


def test_not_applicable_keeps_its_reason_and_drops_the_department(svc, hospital, actor_of):
    entry = svc.set_up_indicator(REPORTED, "not_applicable", " 本院无住院病房 ", hospital["surgery"].id, None,
                                 actor=actor_of("quality"), now=NOW)
    assert (entry.method, entry.reason, entry.department_id) == ("not_applicable", "本院无住院病房", None)
    again = svc.set_up_indicator(REPORTED, "reported", "本院无住院病房", None, entry.version,
                                 actor=actor_of("quality"), now=NOW)
    assert again.reason == ""  # a reason only for an indicator that does not apply
    assert setup_rows() == []  # back to the catalogue's default


@pytest.mark.parametrize("which", ["unknown", "inactive"])
def test_the_reporting_department_must_exist_and_be_active(svc, hospital, actor_of, create_department, which):
    department_id = 9999
    if which == "inactive":
        department_id = create_department(code="OLD", name="旧科室", is_active=False).id
    with pytest.raises(Exception) as error:
        svc.set_up_indicator(REPORTED, "reported", None, department_id, None, actor=actor_of("quality"), now=NOW)
    assert refused(error, "department")


def test_unknown_and_local_codes_are_not_plan_indicators(svc, hospital, actor_of):
    local = svc.create_local_indicator(hospital["surgery"].id, {
        "name": "术后镇痛满意度", "unit": "percent", "direction": "higher", "definition": "满意例数/调查例数"},
        actor=actor_of("head"), now=NOW)
    for code in ("no_such_indicator", local.code):
        with pytest.raises(Exception) as error:
            svc.set_up_indicator(code, "reported", None, None, None, actor=actor_of("quality"), now=NOW)
        assert error.value.status == 404


def test_a_stale_or_missing_version_is_409(svc, hospital, actor_of):
    from qcflow.core.errors import Conflict

    quality = actor_of("quality")
    first = svc.set_up_indicator(REPORTED, "reported", None, hospital["surgery"].id, None, actor=quality, now=NOW)
    with pytest.raises(Conflict) as blind:  # somebody else set it up meanwhile
        svc.set_up_indicator(REPORTED, "reported", None, hospital["cardio"].id, None, actor=quality, now=NOW)
    assert blind.value.extra["current_version"] == 1
    second = svc.set_up_indicator(REPORTED, "reported", None, hospital["cardio"].id, first.version, actor=quality,
                                  now=NOW)
    assert second.version == 2
    with pytest.raises(Conflict):
        svc.set_up_indicator(REPORTED, "reported", None, None, first.version, actor=quality, now=NOW)


def test_the_catalogues_default_deletes_the_row_and_is_audited(svc, hospital, actor_of):
    quality = actor_of("quality")
    entry = svc.set_up_indicator(REPORTED, "reported", None, hospital["surgery"].id, None, actor=quality, now=NOW)
    reset = svc.set_up_indicator(REPORTED, "reported", None, None, entry.version, actor=quality, now=NOW)
    assert (reset.department_id, reset.version) == (None, None) and setup_rows() == []
    assert [action for action, _detail in audit_actions(REPORTED)] == ["indicator_setup.set", "indicator_setup.reset"]


def test_choosing_what_is_already_there_changes_nothing(svc, actor_of):
    from qcflow.indicators import catalogue

    default_reason = catalogue.entry(NOT_APPLICABLE).reason
    assert default_reason
    entry = svc.set_up_indicator(NOT_APPLICABLE, "not_applicable", default_reason, None, None,
                                 actor=actor_of("quality"), now=NOW)
    assert entry.version is None and setup_rows() == [] and audit_actions(NOT_APPLICABLE) == []


def test_an_indicator_that_did_not_apply_can_be_reported(svc, hospital, actor_of):
    entry = svc.set_up_indicator(NOT_APPLICABLE, "reported", None, hospital["cardio"].id, None,
                                 actor=actor_of("quality"), now=NOW)
    assert (entry.method, entry.default_method, entry.department_id) == (
        "reported", "not_applicable", hospital["cardio"].id)


# -- departments' own indicators

LOCAL = {"name": "术后镇痛满意度", "name_en": "Satisfaction with post-operative analgesia", "unit": "percent",
         "direction": "higher", "definition": "满意例数/同期调查例数"}


def test_a_head_creates_numbered_indicators_for_their_department(svc, hospital, actor_of):
    head = actor_of("head")
    first = svc.create_local_indicator(hospital["surgery"].id, LOCAL, actor=head, now=NOW)
    second = svc.create_local_indicator(hospital["surgery"].id, {**LOCAL, "name": "切口感染率"}, actor=head, now=NOW)
    assert (first.code, second.code) == ("local_gs_1", "local_gs_2")
    assert first.is_active and first.department_id == hospital["surgery"].id and first.version == 1
    [(action, detail)] = audit_actions("local_gs_1")
    assert action == "local_indicator.create" and detail["after"]["name"] == "术后镇痛满意度"


def test_the_code_follows_the_department_code(svc, actor_of, create_department, hospital):
    odd = create_department(code="0301-B", name="骨科二病区")
    assert svc.create_local_indicator(odd.id, LOCAL, actor=actor_of("quality"), now=NOW).code == "local_0301_b_1"


@pytest.mark.parametrize("who", ["card_head", "nurse", "doctor", "admin"])
def test_only_the_departments_head_or_the_quality_office_keep_its_indicators(svc, hospital, actor_of, who):
    from qcflow.core.errors import Forbidden

    with pytest.raises(Forbidden):
        svc.create_local_indicator(hospital["surgery"].id, LOCAL, actor=actor_of(who), now=NOW)
    made = svc.create_local_indicator(hospital["surgery"].id, LOCAL, actor=actor_of("quality"), now=NOW)
    with pytest.raises(Forbidden):
        svc.update_local_indicator(made.code, {"name": "别的"}, made.version, actor=actor_of(who), now=NOW)


@pytest.mark.parametrize("field,value", [
    ("name", ""), ("name", "x" * 121), ("name", "名\x00称"), ("name_en", "x" * 121), ("unit", "kg"),
    ("direction", "up"), ("definition", None), ("definition", "x" * 2001)])
def test_local_indicator_fields_are_checked(svc, hospital, actor_of, field, value):
    with pytest.raises(Exception) as error:
        svc.create_local_indicator(hospital["surgery"].id, {**LOCAL, field: value}, actor=actor_of("head"), now=NOW)
    assert refused(error, field)


def test_an_inactive_department_gets_no_new_indicator(svc, actor_of, create_department, hospital):
    closed = create_department(code="CLOSED", name="撤销科室", is_active=False)
    with pytest.raises(Exception) as error:
        svc.create_local_indicator(closed.id, LOCAL, actor=actor_of("quality"), now=NOW)
    assert refused(error, "department")


def test_editing_deactivating_and_the_stale_version(svc, hospital, actor_of):
    from qcflow.core.errors import Conflict
    from qcflow.indicators import catalogue

    head = actor_of("head")
    made = svc.create_local_indicator(hospital["surgery"].id, LOCAL, actor=head, now=NOW)
    changed = svc.update_local_indicator(made.code, {"name": "术后镇痛满意率", "name_en": ""}, 1, actor=head, now=NOW)
    assert (changed.name, changed.name_en, changed.version) == ("术后镇痛满意率", None, 2)
    with pytest.raises(Conflict):
        svc.update_local_indicator(made.code, {"name": "又改"}, 1, actor=head, now=NOW)
    assert made.code in {e.code for e in catalogue.entries()}
    off = svc.deactivate_local_indicator(made.code, 2, actor=head, now=NOW)
    assert not off.is_active and made.code not in {e.code for e in catalogue.entries()}
    assert [a for a, _d in audit_actions(made.code)] == [
        "local_indicator.create", "local_indicator.update", "local_indicator.deactivate"]
    on = svc.update_local_indicator(made.code, {"is_active": True}, 3, actor=head, now=NOW)
    assert on.is_active and audit_actions(made.code)[-1][0] == "local_indicator.reactivate"


def test_the_unit_stays_once_values_were_reported(svc, hospital, actor_of):
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorReport

    head = actor_of("head")
    made = svc.create_local_indicator(hospital["surgery"].id, LOCAL, actor=head, now=NOW)
    assert svc.update_local_indicator(made.code, {"unit": "permille"}, 1, actor=head, now=NOW).unit == "permille"
    db.session.add(IndicatorReport(code=made.code, month_on=date(2026, 2, 1), department_id=hospital["surgery"].id,
                                   numerator=1, denominator=2, value=500.0, state="submitted", channel="page",
                                   submitted_at=NOW, submitted_by="user:1"))
    db.session.flush()
    with pytest.raises(Exception) as error:
        svc.update_local_indicator(made.code, {"unit": "percent"}, 2, actor=head, now=NOW)
    assert refused(error, "unit")


# -- departments' targets


def target(svc, actor, code, department_id, *, year=2026, value=90.0, version=None):
    return svc.set_department_target(code, department_id, "tertiary", year, "ge", value, actor=actor, now=NOW,
                                     expected_version=version)


def test_a_head_sets_targets_for_own_indicators_and_what_the_department_reports(svc, hospital, actor_of):
    head, gs = actor_of("head"), hospital["surgery"].id
    own = svc.create_local_indicator(gs, LOCAL, actor=head, now=NOW)
    assert target(svc, head, own.code, gs).department_id == gs
    svc.set_up_indicator(REPORTED, "reported", None, gs, None, actor=actor_of("quality"), now=NOW)
    row = target(svc, head, REPORTED, gs, value=95.0)
    assert (row.code, row.department_id, row.value) == (REPORTED, gs, 95.0)
    assert audit_actions(str(row.id))[-1][1]["after"]["department_id"] == gs


@pytest.mark.parametrize("code", [REPORTED, COMPUTED, NOT_APPLICABLE])
def test_a_head_sets_no_target_for_what_the_department_does_not_report(svc, hospital, actor_of, code):
    from qcflow.core.errors import Forbidden

    with pytest.raises(Forbidden):
        target(svc, actor_of("head"), code, hospital["surgery"].id)


@pytest.mark.parametrize("who", ["head", "quality"])
def test_an_unknown_indicator_gets_no_target(svc, hospital, actor_of, who):
    with pytest.raises(Exception) as error:
        target(svc, actor_of(who), "no_such_indicator", hospital["surgery"].id)
    assert refused(error, "code")


def test_a_head_sets_no_target_for_another_department(svc, hospital, actor_of):
    from qcflow.core.errors import Forbidden

    cardio = svc.create_local_indicator(hospital["cardio"].id, LOCAL, actor=actor_of("card_head"), now=NOW)
    with pytest.raises(Forbidden):
        target(svc, actor_of("head"), cardio.code, hospital["cardio"].id)
    with pytest.raises(Forbidden):
        target(svc, actor_of("nurse"), cardio.code, hospital["cardio"].id)


def test_the_quality_office_sets_any_departments_target_and_a_stale_one_is_409(svc, hospital, actor_of):
    from qcflow.core.errors import Conflict

    quality, gs = actor_of("quality"), hospital["surgery"].id
    first = target(svc, quality, COMPUTED, gs)
    with pytest.raises(Conflict):
        target(svc, quality, COMPUTED, gs, value=80.0)
    assert target(svc, quality, COMPUTED, gs, value=80.0, version=first.version).value == 80.0


def test_a_switched_off_indicator_gets_no_target(svc, hospital, actor_of):
    head, gs = actor_of("head"), hospital["surgery"].id
    made = svc.create_local_indicator(gs, LOCAL, actor=head, now=NOW)
    svc.deactivate_local_indicator(made.code, 1, actor=head, now=NOW)
    with pytest.raises(Exception) as error:
        target(svc, head, made.code, gs)
    assert refused(error, "code")
