"""Notifications are stored as a kind and parameters and read in the reader's language."""
import pytest

from qcflow.notify import services
from tests.conftest import login


def test_a_followup_prompt_reads_in_each_readers_language_with_labels_not_codes(app, client, create_user, now):
    from qcflow.extensions import db
    from qcflow.notify.models import Notification

    user = create_user(username="q", roles=("quality",))
    services.notify([user.id], "followup.event_prompt", {"findings": ["complication", "death"]}, now=now,
                    link="/followup/prompts")
    db.session.commit()
    row = db.session.scalars(db.select(Notification)).one()
    assert row.params == {"findings": ["complication", "death"]} and row.title == ""  # no text in one language stored
    login(client, "q")
    chinese = client.get("/notifications?lang=zh").get_data(as_text=True)
    assert "随访发现疑似不良事件：并发症、死亡" in chinese and "complication" not in chinese
    english = client.get("/notifications?lang=en").get_data(as_text=True)
    assert "Follow-up finding may be an adverse event: Complication, Death" in english
    assert "随访发现" not in english
    assert client.get("/api/v1/notifications").json["items"][0]["title"] == \
        "Follow-up finding may be an adverse event: Complication, Death"


def test_times_are_shown_in_hospital_time_and_the_body_in_the_readers_language(app, client, create_user, now):
    from qcflow.extensions import db

    user = create_user(username="h", roles=("dept_head",))
    services.notify([user.id], "mdt.perioperative_death", {"date": "2026-03-02T02:00:00+00:00"}, now=now)
    db.session.commit()
    login(client, "h")
    chinese = client.get("/notifications?lang=zh").get_data(as_text=True)
    assert "已申请围手术期死亡病例讨论" in chinese and "须于 2026-03-02 10:00 前完成" in chinese
    english = client.get("/notifications?lang=en").get_data(as_text=True)
    assert "Perioperative death review requested" in english and "Due by 2026-03-02 10:00" in english


def test_notifications_written_before_keep_their_text(app, client, create_user, now):
    from qcflow.extensions import db
    from qcflow.notify.models import Notification

    user = create_user(username="old")
    db.session.add(Notification(user_id=user.id, kind="event.submitted", title="新的不良事件报告 AE-0", body="",
                                created_at=now))
    db.session.commit()
    login(client, "old")
    assert "新的不良事件报告 AE-0" in client.get("/notifications?lang=en").get_data(as_text=True)


def test_a_kind_without_a_message_or_a_missing_parameter_fails_where_it_is_sent(ctx, create_user, now):
    user = create_user()
    with pytest.raises(ValueError):
        services.notify([user.id], "no.such.kind", now=now)
    with pytest.raises(KeyError):
        services.notify([user.id], "event.submitted", {}, now=now)
