"""After signing only addenda: the service refuses every change (409) and the database refuses edits of addenda."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from qcflow.core.errors import Conflict, Forbidden, Unprocessable
from qcflow.mdt import services
from tests.mdt.conftest import complete_record


@pytest.fixture
def english(app):
    """These tests read the refusal messages in English (the hospital default is Chinese)."""
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


@pytest.fixture
def signed(hospital, held_preop, actor_of, mdt_now):
    from qcflow.extensions import db

    at = mdt_now + timedelta(days=1, hours=2)
    complete_record(held_preop, actor_of("head"), at, chair=hospital["head"])
    services.transition_discussion(held_preop, "sign", {}, actor=actor_of("head"), now=at)
    db.session.commit()
    return held_preop


CHANGES = {
    "update": lambda d, actor, now: services.update_discussion(d, {"conclusion": "改了"}, actor=actor, now=now),
    "add participant": lambda d, actor, now: services.add_participant(d, {"name": "外院专家", "specialty": "icu"},
                                                                      actor=actor, now=now),
    "attendance": lambda d, actor, now: services.record_attendance(d, [], actor=actor, now=now),
    "participant": lambda d, actor, now: services.update_participant(d, d.participants[0], {"attended": False},
                                                                     actor=actor, now=now),
    "remove participant": lambda d, actor, now: services.remove_participant(d, d.participants[0], actor=actor, now=now),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_signed_record_refuses_every_change(english, signed, actor_of, mdt_now, change):
    before = (signed.version, signed.conclusion, [(p.id, p.attended) for p in signed.participants])
    with pytest.raises(Conflict) as caught:
        CHANGES[change](signed, actor_of("quality"), mdt_now + timedelta(days=2))
    assert caught.value.status == 409 and "addendum" in str(caught.value.message)
    from qcflow.extensions import db

    db.session.rollback()
    assert (signed.version, signed.conclusion, [(p.id, p.attended) for p in signed.participants]) == before


def test_a_cancelled_discussion_refuses_changes_too(hospital, held_preop, actor_of, mdt_now):
    services.transition_discussion(held_preop, "cancel", {"reason": "患者放弃手术"}, actor=actor_of("quality"),
                                   now=mdt_now)
    with pytest.raises(Conflict):
        CHANGES["update"](held_preop, actor_of("quality"), mdt_now)


def test_addenda_follow_signing_only(hospital, held_preop, signed, actor_of, mdt_now):
    later = mdt_now + timedelta(days=3)
    addendum = services.add_addendum(signed, "术后补充：患者已转入ICU。", actor=actor_of("clinician"), now=later)
    assert [a.id for a in signed.addenda] == [addendum.id] and addendum.author_user_id == hospital["clinician"].id
    with pytest.raises(Unprocessable):
        services.add_addendum(signed, "   ", actor=actor_of("clinician"), now=later)
    with pytest.raises(Forbidden):
        services.add_addendum(signed, "x", actor=actor_of("nurse"), now=later)


def test_an_addendum_before_signing_is_a_conflict(english, held_preop, actor_of, mdt_now):
    with pytest.raises(Conflict) as caught:
        services.add_addendum(held_preop, "补充", actor=actor_of("clinician"), now=mdt_now)
    assert "signed" in str(caught.value.message)


@pytest.mark.parametrize("sql", ["UPDATE mdt_addendum SET text = 'rewritten'", "DELETE FROM mdt_addendum"])
def test_the_database_refuses_to_edit_or_delete_an_addendum(signed, actor_of, mdt_now, sql):
    from qcflow.extensions import db
    from qcflow.mdt.models import Addendum

    services.add_addendum(signed, "原文", actor=actor_of("clinician"), now=mdt_now + timedelta(days=3))
    db.session.commit()
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        db.session.execute(sa.text(sql))
    db.session.rollback()
    assert db.session.scalars(sa.select(Addendum.text)).all() == ["原文"]


def test_participant_changes_bump_the_version_so_a_concurrent_sign_off_wins(hospital, held_preop, actor_of, mdt_now):
    version = held_preop.version
    services.record_attendance(held_preop, [], actor=actor_of("head"), now=mdt_now + timedelta(minutes=1))
    assert held_preop.version == version + 1
    with pytest.raises(Conflict):
        services.record_attendance(held_preop, [], actor=actor_of("head"), now=mdt_now, expected_version=version)


def test_the_chair_is_kept_in_step_with_the_participant_list(hospital, held_preop, actor_of, mdt_now):
    actor = actor_of("head")
    services.update_discussion(held_preop, {"chair_user_id": hospital["head"].id}, actor=actor, now=mdt_now)
    roles = {p.user_id: p.role for p in held_preop.participants}
    assert roles[hospital["head"].id] == "chair"
    surgeon_row = next(p for p in held_preop.participants if p.user_id == hospital["clinician"].id)
    services.update_participant(held_preop, surgeon_row, {"role": "chair"}, actor=actor, now=mdt_now)
    roles = {p.user_id: p.role for p in held_preop.participants}
    assert held_preop.chair_user_id == hospital["clinician"].id
    assert (roles[hospital["clinician"].id], roles[hospital["head"].id]) == ("chair", "member")
    services.remove_participant(held_preop, surgeon_row, actor=actor, now=mdt_now)
    assert held_preop.chair_user_id is None


def test_outside_experts_need_a_name_and_colleagues_are_invited_once(hospital, held_preop, actor_of, mdt_now):
    actor = actor_of("clinician")
    expert = services.add_participant(held_preop, {"name": "王教授（省人民医院）", "specialty": "pathology",
                                                   "role": "invited", "attended": True}, actor=actor, now=mdt_now)
    assert (expert.user_id, expert.department_id, expert.attended) == (None, None, True)
    with pytest.raises(Unprocessable):
        services.add_participant(held_preop, {"specialty": "pathology"}, actor=actor, now=mdt_now)
    with pytest.raises(Conflict):
        services.add_participant(held_preop, {"user_id": hospital["anaesthetist"].id}, actor=actor, now=mdt_now)
    head = services.add_participant(held_preop, {"user_id": hospital["head"].id}, actor=actor, now=mdt_now)
    assert (head.name, head.department_id, head.specialty) == ("陈主任", hospital["surgery"].id, None)
