"""Protocols as versioned data: new versions, moving active plans, 422 for bad phases, admin pages."""
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_from, sh

YEARLY_TO_7 = {
    "name": "四级手术随访（7 年）", "name_en": "Four-level surgery, 7 years", "anchor": "operation_at",
    "outcome_items": ["complication", "vital_status"], "core_items": ["vital_status"],
    "phases": [{"unit": "day", "start": 60, "early_hours": 168, "late_hours": 168},
               {"unit": "month", "start": 12, "every": 12, "until": 84, "early_hours": 720, "late_hours": 720}],
    "change_note": "专家共识更新",
}


def create_version(code, data, now):
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.followup import services

    current = services.current_protocol(code)
    data = {"based_on_version_no": current.version_no if current else None, **data}
    protocol = services.create_protocol_version(code, data, actor=Actor.system("test-admin"), now=now)
    db.session.commit()
    return protocol


def test_a_new_version_moves_only_untouched_waiting_calls(ctx, enrol, tasks_of, actor_of):
    from qcflow.extensions import db
    from qcflow.followup import services

    untouched = enrol("four_level_surgery", anchor_at=sh(2026, 2, 1, 9, 0), now=sh(2026, 2, 1, 9, 0))
    worked = enrol("four_level_surgery", anchor_at=sh(2026, 2, 1, 9, 0), now=sh(2026, 2, 1, 9, 0))
    services.claim_task(tasks_of(worked)[0], actor=actor_of("nurse"), now=sh(2026, 2, 25, 9, 0))
    db.session.commit()
    old = untouched.protocol_id
    new = create_version("four_level_surgery", YEARLY_TO_7, sh(2026, 2, 26, 9, 0))
    assert new.version_no == 2 and new.is_current
    db.session.expire_all()
    assert untouched.protocol_id == worked.protocol_id == new.id
    moved, kept = tasks_of(untouched)[0], tasks_of(worked)[0]
    assert (moved.due_on, moved.protocol_id) == (date(2026, 4, 2), new.id)  # +60 days now
    assert (kept.due_on, kept.protocol_id, kept.state) == (date(2026, 3, 3), old, "in_progress")
    assert untouched.next_occurrence == 2 and untouched.next_due_on == date(2027, 2, 1)
    services.generate_due(sh(2033, 3, 1, 0, 0))
    assert [t.occurrence for t in tasks_of(untouched)] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_a_shorter_version_cancels_untouched_calls_past_its_end(ctx, enrol, tasks_of):
    plan = enrol("cancer_breast", anchor_at=sh(2025, 1, 10, 0, 0), now=sh(2026, 3, 1, 0, 0))
    assert len(tasks_of(plan)) == 4
    short = {"name": "乳腺癌随访（1 年）", "anchor": "diagnosis_on", "outcome_items": ["vital_status"],
             "core_items": ["vital_status"],
             "phases": [{"unit": "month", "start": 3, "every": 3, "until": 9, "early_hours": 336, "late_hours": 336}]}
    create_version("cancer_breast", short, sh(2026, 3, 2, 0, 0))
    states = [t.state for t in tasks_of(plan)]
    assert states == ["pending", "pending", "pending", "cancelled"]
    assert plan.next_due_at is None


@pytest.mark.parametrize("phases, message", [
    ([], "at least one phase"),
    ([{"unit": "month", "start": 24, "every": 3, "until": 12}], "empty"),
    ([{"unit": "month", "start": 3, "every": 3, "until": 24, "early_hours": 336, "late_hours": 336},
      {"unit": "month", "start": 24, "every": 6, "until": 60}], "overlap"),
])
def test_empty_or_overlapping_phases_are_422(client, tokens, phases, message):
    body = {**YEARLY_TO_7, "phases": phases}
    response = client.post("/api/v1/followup/protocols/four_level_surgery/versions?lang=en", json=body,
                           headers=tokens("admin"))
    assert response.status_code == 422
    assert message in " ".join(response.json["errors"]["phases"]).lower()


def test_protocol_api_is_for_administrators(client, tokens):
    assert client.post("/api/v1/followup/protocols/four_level_surgery/versions", json=YEARLY_TO_7,
                       headers=tokens("quality")).status_code == 403
    assert client.post("/api/v1/followup/protocols/nothing_here/versions", json=YEARLY_TO_7,
                       headers=tokens("admin")).status_code == 404
    made = client.post("/api/v1/followup/protocols", json={**YEARLY_TO_7, "code": "thyroid_surgery"},
                       headers=tokens("admin"))
    assert made.status_code == 201 and made.json["version_no"] == 1
    listed = client.get("/api/v1/followup/protocols", headers=tokens("nurse")).json
    assert {"thyroid_surgery", "day_surgery", "cancer_lung"} <= {p["code"] for p in listed}


def test_a_new_version_is_made_from_the_current_one_or_refused(client, tokens, ctx):
    """Two administrators editing a pathway: the second, started from the old version, must not
    silently replace the first one's version (active plans would move to it)."""
    from qcflow.extensions import db
    from qcflow.followup.models import Protocol

    path = "/api/v1/followup/protocols/four_level_surgery/versions"
    current = db.session.scalar(sa.select(Protocol).where(Protocol.code == "four_level_surgery",
                                                          Protocol.is_current.is_(True)))
    missing = client.post(path, json=YEARLY_TO_7, headers=tokens("admin"))
    assert missing.status_code == 422 and "based_on_version_no" in missing.json["errors"]
    first = client.post(path, json={**YEARLY_TO_7, "based_on_version_no": current.version_no}, headers=tokens("admin"))
    assert first.status_code == 201
    second = client.post(path, json={**YEARLY_TO_7, "name": "旧版改", "based_on_version_no": current.version_no},
                         headers=tokens("admin"))
    assert second.status_code == 409 and second.json["current_version_no"] == first.json["version_no"]
    again = client.post("/api/v1/followup/protocols", json={**YEARLY_TO_7, "code": "four_level_surgery"},
                        headers=tokens("admin"))
    assert again.status_code == 422
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Protocol).where(
        Protocol.code == "four_level_surgery")) == current.version_no + 1


def test_core_items_must_be_asked(client, tokens):
    body = {**YEARLY_TO_7, "outcome_items": ["complication"], "core_items": ["vital_status"]}
    response = client.post("/api/v1/followup/protocols/four_level_surgery/versions", json=body,
                           headers=tokens("admin"))
    assert response.status_code == 422 and "core_items" in response.json["errors"]


def test_admin_pages_show_versions_and_create_one(clients, ctx):
    from qcflow.followup.models import Protocol
    from qcflow.extensions import db

    admin = clients("admin")
    page = admin.get("/admin/followup/protocols")
    assert page.status_code == 200 and "four_level_surgery" in page.get_data(as_text=True)
    current = db.session.scalar(sa.select(Protocol).where(Protocol.code == "day_surgery"))
    assert admin.get(f"/admin/followup/protocols/{current.id}").status_code == 200
    form_page = admin.get("/admin/followup/protocols/new?code=day_surgery")
    assert form_page.status_code == 200 and 'value="24"' in form_page.get_data(as_text=True)
    assert f'name="based_on_version_no" value="{current.version_no}"' in form_page.get_data(as_text=True)
    form = {"csrf_token": csrf_from(admin, "/admin/followup/protocols/new"), "code": "day_surgery",
            "based_on_version_no": str(current.version_no),
            "name": "日间手术随访", "anchor": "discharge_at", "outcome_items": ["complication", "satisfaction"],
            "core_items": ["complication"],
            "p1_unit": "hour", "p1_start": "24", "p1_early": "24", "p1_late": "0", "p1_urgent": "1",
            "p2_unit": "day", "p2_start": "7", "p2_early": "1", "p2_late": "1"}
    created = admin.post("/admin/followup/protocols/new", data=form)
    assert created.status_code == 302
    db.session.expire_all()
    new = db.session.scalar(sa.select(Protocol).where(Protocol.code == "day_surgery", Protocol.is_current.is_(True)))
    assert new.version_no == 2 and [p.unit for p in new.phases] == ["hour", "day"]
    assert new.phases[1].early_hours == 24 and new.phases[0].is_urgent
    bad = admin.post("/admin/followup/protocols/new?lang=en", data={**form, "p2_start": "0"})
    assert bad.status_code == 422 and "overlap" in bad.get_data(as_text=True).lower()
    # The same form sent again is now stale: version 2 exists, the form started from 1.
    stale = admin.post("/admin/followup/protocols/new", data=form)
    assert stale.status_code == 409
    assert clients("nurse").get("/admin/followup/protocols").status_code == 403


def test_the_plan_anchor_and_window_for_an_edited_24_hour_call(ctx, enrol, tasks_of):
    plan = enrol("day_surgery", anchor_at=sh(2026, 3, 1, 23, 30))
    assert tasks_of(plan)[0].due_at == sh(2026, 3, 1, 23, 30) + timedelta(hours=24)
