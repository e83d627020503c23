"""A record signed on paper during an outage: the chair enters when it was signed; the signature counts at
that time (the pre-operative indicator), the recording time is kept beside it, and the bounds (future,
before the discussion was held, too far back without the quality office) are 422 on `signed_at`."""
import json
from datetime import date, timedelta, timezone

import pytest
import sqlalchemy as sa
import time_machine

from qcflow.core.errors import Unprocessable
from qcflow.mdt import services
from tests.conftest import sh
from tests.mdt.conftest import complete_record

#: Held on Tuesday 3 March 10:30 (held_preop); signed on paper that afternoon while the system was down.
SIGNED_ON_PAPER = sh(2026, 3, 3, 16, 0)


@pytest.fixture
def english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


@pytest.fixture
def ready(hospital, held_preop, actor_of, mdt_now):
    """The held discussion with its record complete, chaired by the department head."""
    from qcflow.extensions import db

    complete_record(held_preop, actor_of("head"), mdt_now + timedelta(days=1, hours=2), chair=hospital["head"])
    db.session.commit()
    return held_preop


def preop_counted(operation, now) -> bool:
    from qcflow.core import periods
    from qcflow.extensions import db
    from qcflow.indicators.definitions import level4_with_preop_mdt

    rows = level4_with_preop_mdt(periods.month_period(date(2026, 3, 1), now)).subquery()
    return operation.id in set(db.session.scalars(sa.select(rows.c.id)))


def performed(operation, at):
    from qcflow.extensions import db

    operation.performed_at, operation.state = at, "performed"  # as the HIS reports it
    db.session.flush()


@pytest.mark.parametrize("backdated", [True, False])
def test_a_signature_entered_after_the_operation_counts_when_it_was_signed(ready, grade_four, actor_of, backdated):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    performed(grade_four, sh(2026, 3, 9, 9, 30))
    entered = sh(2026, 3, 9, 18, 0)  # typed in after the operation
    data = {"signed_at": SIGNED_ON_PAPER} if backdated else {}
    services.transition_discussion(ready, "sign", data, actor=actor_of("head"), now=entered)
    db.session.commit()
    assert ready.signed_recorded_at == entered
    assert ready.signed_at == (SIGNED_ON_PAPER if backdated else entered)
    assert preop_counted(grade_four, entered) is backdated
    detail = json.loads(db.session.scalar(sa.select(AuditEntry.detail).where(
        AuditEntry.action == "mdt_discussion.sign")))
    if backdated:
        assert detail["happened_at"] == SIGNED_ON_PAPER.astimezone(timezone.utc).isoformat()
        assert detail["recorded_at"] == entered.astimezone(timezone.utc).isoformat()
    else:
        assert "happened_at" not in detail


@pytest.mark.parametrize("given, message", [
    (sh(2026, 3, 5, 12, 0), "This time is in the future."),
    (sh(2026, 3, 3, 10, 0), "A record cannot be signed before the discussion was held."),
])
def test_a_signature_in_the_future_or_before_the_meeting_is_refused(english, ready, actor_of, given, message):
    with pytest.raises(Unprocessable) as refused:
        services.transition_discussion(ready, "sign", {"signed_at": given}, actor=actor_of("head"),
                                       now=sh(2026, 3, 5, 9, 0))
    assert refused.value.errors == {"signed_at": [message]}
    assert ready.state == "held" and ready.signed_at is None


def test_more_than_the_setting_back_is_for_the_quality_office(english, app, ready, actor_of):
    late = SIGNED_ON_PAPER + timedelta(days=8)
    with pytest.raises(Unprocessable) as refused:
        services.transition_discussion(ready, "sign", {"signed_at": SIGNED_ON_PAPER}, actor=actor_of("head"), now=late)
    assert refused.value.errors == {
        "signed_at": ["This time is more than 7 days ago: only the quality office may record it."]}
    services.transition_discussion(ready, "sign", {"signed_at": SIGNED_ON_PAPER}, actor=actor_of("quality"), now=late)
    assert (ready.state, ready.signed_at, ready.signed_recorded_at) == ("signed", SIGNED_ON_PAPER, late)


def test_the_chair_gives_the_signature_time_over_the_api(client, tokens, ready):
    url = f"/api/v1/mdt/discussions/{ready.id}/transitions"
    with time_machine.travel(sh(2026, 3, 4, 8, 0), tick=False):
        head = tokens("head")
        before_held = client.post(url + "?lang=en", headers=head, json={
            "action": "sign", "version": ready.version, "signed_at": "2026-03-03T09:00:00+08:00"})
        assert before_held.status_code == 422
        assert before_held.json["errors"]["signed_at"] == ["A record cannot be signed before the discussion was held."]
        signed = client.post(url, headers=head, json={
            "action": "sign", "version": ready.version, "signed_at": SIGNED_ON_PAPER.isoformat()})
    assert signed.status_code == 200, signed.json
    assert signed.json["signed_at"] == SIGNED_ON_PAPER.astimezone(timezone.utc).isoformat()
    assert signed.json["signed_recorded_at"] == sh(2026, 3, 4, 8, 0).astimezone(timezone.utc).isoformat()


def test_the_sign_form_takes_the_paper_signature_time_and_the_page_shows_both(clients, ready):
    from qcflow.extensions import db
    from tests.conftest import csrf_from

    base = f"/mdt/{ready.id}"
    with time_machine.travel(sh(2026, 3, 4, 8, 0), tick=False):
        head = clients("head")
        page = head.get(base + "?lang=en").get_data(as_text=True)
        assert 'type="datetime-local" name="signed_at"' in page
        signed = head.post(base + "/transitions", data={"csrf_token": csrf_from(head, base), "action": "sign",
                                                         "version": str(ready.version), "signed_at": "2026-03-03T16:00"})
        assert signed.status_code == 302
        db.session.expire_all()
        assert db.session.get(type(ready), ready.id).signed_at == SIGNED_ON_PAPER
        for lang, words in (("en", "recorded 2026-03-04 08:00"), ("zh", "录入于 2026-03-04 08:00")):
            page = head.get(f"{base}?lang={lang}").get_data(as_text=True)
            assert "2026-03-03 16:00" in page and words in page
