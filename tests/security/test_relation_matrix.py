"""The access matrix by relation (the role × department matrix is test_access_matrix.py).

For the objects whose rights depend on how a user stands to them — a discussion (organiser, chair,
participant from another department, outsider), a report (its reporter, another clinician), a
follow-up call (the nurse holding it, another nurse of the department) — every route of the URL map
that acts on one, over the API and the pages, is tried by each relation; the expected answer comes
from the capability the route needs, written here from docs/decisions.md, not from the code. A
refused request changes nothing (the audit trail does not grow). A new route on these objects fails
the test until it is added to its table.
"""
from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_from, login
from tests.security.test_access_matrix import audit_length

#: MDT routes → the capability they need (DISCUSSION_PERMISSIONS) and what they send (with the
#: discussion's current version where the route takes one: VERSIONED).
MDT_ROUTES = {
    "mdt_api.get_discussion": ("read", None),
    "mdt.detail": ("read", None),
    "mdt.minutes": ("read", None),
    "mdt_api.update_discussion": ("record", {"question": "改问题"}),
    "mdt.record": ("record", {"question": "改问题"}),
    "mdt_api.transition": ("manage", {"action": "cancel", "reason": "不需要了"}),
    "mdt.transition": ("manage", {"action": "cancel", "reason": "不需要了"}),
    # Two different experts: the same typed name twice is one person already on the list (409).
    "mdt_api.add_participant": ("manage", {"name": "王教授（省人民医院）", "specialty": "pathology"}),
    "mdt.add_participant": ("manage", {"name": "李教授（市中心医院）", "specialty": "pathology"}),
    "mdt_api.update_participant": ("manage", {"attended": True}),  # someone else's row
    "mdt_api.remove_participant": ("manage", None),
    "mdt.remove_participant": ("manage", None),
    "mdt_api.record_attendance": ("manage", {"attended": []}),
    "mdt.attendance": ("manage", {"attended": []}),
    "mdt.confirm_attendance": ("confirm_own_attendance", {"attended": "true"}),
    "mdt_api.add_addendum": ("add_addendum", {"text": "补充"}),
    "mdt.add_addendum": ("add_addendum", {"text": "补充"}),
    "files.discussion_file": ("read", None),
    "files.discussion_thumbnail": ("read", None),
    "files.add_discussion_files": ("record", {"files": lambda: (io.BytesIO(b"%PDF-1.4 minutes"), "影像报告.pdf")}),
    # Another's file (the quality office added it): a head of the organising department or the quality office.
    "files.remove_discussion_file": ("remove_others_file", {"confirm": "1"}),
}
VERSIONED = {"mdt_api.update_discussion", "mdt.record", "mdt_api.transition", "mdt.transition",
             "mdt_api.record_attendance", "mdt.attendance", "mdt_api.update_participant", "mdt.confirm_attendance"}
#: Relations to department A's pre-operative discussion (held, not signed) → what they may do. The
#: organiser (department A's surgeon) is also on the participant list.
MDT_RELATIONS = {
    "organiser": {"read", "record", "manage", "conduct", "add_addendum", "confirm_own_attendance"},
    "participant_from_another_department": {"read", "confirm_own_attendance", "add_addendum"},
    "outsider_of_another_department": set(),
}

#: Event routes: every one is closed to a clinician who did not file the report.
EVENT_BODIES = {
    "events_api.update_draft": {"location": "x"},
    "events_api.transition": {"action": "withdraw"},
    "events.transition": {"action": "withdraw"},
    "events_api.add_action": {"title": "t", "improvement_type": "training", "owner_department_id": 1,
                              "due_on": "2030-01-01"},
    "events_api.transition_action": {"action": "complete", "evidence": "x"},
    "events.transition_action": {"action": "complete", "evidence": "x"},
    "events_api.post_message": {"message": "x"},
    "events.post_message": {"message": "x"},
    "events_api.external_report": {"reported_at": "2026-03-01T10:00:00+08:00"},
}

#: Event routes whose body carries no version (creations and messages).
UNVERSIONED_EVENT_ROUTES = {"events_api.get_event", "events.detail", "events_api.add_action", "events.add_action",
                            "events_api.post_message", "events.post_message"}

#: Task routes → whether only the nurse holding the call may use them (claim: nobody, it is held).
TASK_ROUTES = {
    "followup_api.get_task": "read", "followup.task": "read",
    "followup_api.attempts": "holder", "followup_api.complete": "holder", "followup_api.release": "holder",
    "followup_api.unreachable": "holder", "followup_api.reschedule": "holder", "followup_api.cancel": "holder",
    "followup_api.claim": "held", "followup_api.reassign": "supervisor", "followup.task_step": "holder",
    "followup_api.confirm_online": "holder",
}
TASK_BODIES = {
    "followup_api.attempts": {"channel": "phone", "result": "no_answer"},
    "followup_api.complete": {"respondent": "patient"},
    "followup_api.reschedule": {"reason": "x", "due_at": "2030-01-01T10:00:00+08:00"},
    "followup_api.cancel": {"reason": "x"},
    "followup_api.reassign": {"assignee_id": 1},
}
#: The task page's step forms, filled in.
STEP_BODIES = {"attempts": {"channel": "phone", "result": "no_answer"}, "complete": {"respondent": "patient"},
               "reschedule": {"reason": "x", "due_at": "2030-01-01T10:00"}, "cancel": {"reason": "x"},
               "unreachable": {}, "release": {}, "confirm_online": {}}
TASK_STEPS = ("attempts", "complete", "release", "reschedule", "cancel", "unreachable", "confirm_online")


def routes_with(app, argument):
    for rule in app.url_map.iter_rules():
        if argument in rule.arguments:
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                yield rule, method


def send(client, path, method, body, version=None):
    token = csrf_from(client, "/account")
    body = {key: value() if callable(value) else value for key, value in (body or {}).items()}
    if version is not None:
        body["version"] = version
    if method == "GET":
        response = client.get(path)
    elif path.startswith("/api/"):
        response = client.open(path, method=method, json=body, headers={"X-CSRFToken": token})
    else:
        response = client.open(path, method=method, data={**body, "csrf_token": token})
    response.get_data()
    response.close()
    return response.status_code


@pytest.fixture
def logged_in(app, world):
    def make(username):
        client = app.test_client()
        assert login(client, username).status_code == 302
        return client

    return make


def current(model, object_id):
    from qcflow.extensions import db

    db.session.expire_all()
    return db.session.get(model, object_id)


@pytest.mark.parametrize("relation", sorted(MDT_RELATIONS))
def test_discussion_routes_by_relation(app, world, logged_in, create_user, relation):
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.mdt import services
    from qcflow.mdt.models import Discussion

    discussion = world["A"]["discussion"]
    b_doctor = world["b_users"]["doctor"]
    organiser = Actor.for_user(world["users"]["doctor"])
    services.add_participant(discussion, {"user_id": b_doctor.id}, actor=organiser, now=world["now"])
    services.transition_discussion(discussion, "schedule", {"scheduled_at": world["now"]}, actor=organiser,
                                   now=world["now"])
    services.transition_discussion(discussion, "hold", {}, actor=organiser, now=world["now"])
    db.session.commit()
    username = {"organiser": "doctor", "participant_from_another_department": b_doctor.username,
                "outsider_of_another_department": world["b_users"]["dept_head"].username}[relation]
    client = logged_in(username)
    own_row = next(p.id for p in discussion.participants if p.user_id == b_doctor.id)
    someone_else = next(p.id for p in discussion.participants if p.user_id == world["users"]["doctor"].id)
    # The page and the API each remove a different colleague.
    removed_by_api = next(p.id for p in discussion.participants if p.user_id not in (b_doctor.id, world["users"]["doctor"].id))
    may = MDT_RELATIONS[relation]
    wrong, seen = [], set()
    # Least destructive first, so each request meets the discussion as the table expects it.
    order = {"read": 0, "confirm_own_attendance": 1, "add_addendum": 1, "record": 2, "manage": 3,
             "remove_others_file": 3}
    walk = sorted(routes_with(app, "discussion_id"), key=lambda rm: (
        order[MDT_ROUTES.get(rm[0].endpoint, ("read",))[0]], "remove" in rm[0].endpoint, rm[0].endpoint, rm[1]))
    for rule, method in walk:
        assert rule.endpoint in MDT_ROUTES, f"{method} {rule.rule}: add it to MDT_ROUTES"
        seen.add(rule.endpoint)
        capability, body = MDT_ROUTES[rule.endpoint]
        target = removed_by_api if rule.endpoint == "mdt_api.remove_participant" else someone_else
        path = rule.build({"discussion_id": discussion.id, "participant_id": target,
                           "discussion_file_id": world["A"]["discussion_file"].id}, append_unknown=False)[1]
        if relation == "organiser" and capability == "manage" and rule.endpoint.endswith("transition"):
            continue  # cancelling would end the walk; the organisers' steps are tested in tests/mdt
        d = current(Discussion, discussion.id)
        before = audit_length()
        status = send(client, path, method, body, version=d.version if rule.endpoint in VERSIONED else None)
        if relation == "outsider_of_another_department":
            want = {404}
        elif capability not in may:
            want = {403}
        elif capability == "add_addendum":
            want = {409}  # allowed, but only once the record is signed
        else:
            want = {200, 201, 204, 302}
        if status not in want:
            wrong.append(f"{relation} {method} {path} ({capability}) → {status}, want {sorted(want)}")
        if status >= 400 and audit_length() != before:
            wrong.append(f"{relation} {method} {path} → {status} but wrote audit entries")
    if relation == "participant_from_another_department":
        # Their own row, attendance only: allowed, and only that changes.
        token = csrf_from(client, "/account")
        own = client.patch(f"/api/v1/mdt/discussions/{discussion.id}/participants/{own_row}",
                           json={"version": current(Discussion, discussion.id).version, "attended": True},
                           headers={"X-CSRFToken": token})
        if own.status_code != 200:
            wrong.append(f"own attendance → {own.status_code}")
        chair = client.patch(f"/api/v1/mdt/discussions/{discussion.id}/participants/{own_row}",
                             json={"version": current(Discussion, discussion.id).version, "role": "chair"},
                             headers={"X-CSRFToken": token})
        if chair.status_code != 403:
            wrong.append(f"making themselves chair → {chair.status_code}")
    assert not wrong, "\n".join(wrong)
    assert seen == set(MDT_ROUTES), f"routes gone: {set(MDT_ROUTES) - seen}"


def test_a_report_is_closed_to_clinicians_who_did_not_file_it(app, world, logged_in, create_user):
    """Another clinician of the same department: nothing of a colleague's report, on any route."""
    from qcflow.events.models import AdverseEvent

    from qcflow.extensions import db

    create_user(username="doctor2", roles=("clinician",), department=world["A"]["department"])
    db.session.commit()
    event = world["A"]["event"]
    other, reporter = logged_in("doctor2"), logged_in("doctor")
    wrong = []
    for rule, method in routes_with(app, "event_id"):
        path = rule.build({"event_id": event.id, "action_id": world["A"]["action"].id,
                           "attachment_id": world["A"]["attachment"].id}, append_unknown=False)[1]
        before, version = audit_length(), current(AdverseEvent, event.id).version
        status = send(other, path, method, EVENT_BODIES.get(rule.endpoint),
                      version=version if rule.endpoint not in UNVERSIONED_EVENT_ROUTES else None)
        if status not in (403, 404):
            wrong.append(f"another clinician {method} {path} → {status}")
        if audit_length() != before:
            wrong.append(f"another clinician {method} {path} wrote audit entries")
    # The reporter finds it among their own reports; the colleague does not.
    assert event.reference in reporter.get("/my/reports").get_data(as_text=True)
    assert event.reference not in other.get("/my/reports").get_data(as_text=True)
    assert not wrong, "\n".join(wrong)


def test_a_call_is_worked_only_by_the_nurse_holding_it(app, world, logged_in, create_user):
    from qcflow.followup.models import Task

    from qcflow.extensions import db

    create_user(username="nurse2", roles=("nurse",), department=world["A"]["department"])
    db.session.commit()
    task = world["A"]["task"]
    holder, other = logged_in("nurse"), logged_in("nurse2")
    wrong = []
    for rule, method in routes_with(app, "task_id"):
        kind = TASK_ROUTES.get(rule.endpoint)
        assert kind is not None, f"{method} {rule.rule}: add it to TASK_ROUTES"
        steps = TASK_STEPS if "step" in rule.arguments else (None,)
        for step in steps:
            path = rule.build({"task_id": task.id, "step": step} if step else {"task_id": task.id},
                              append_unknown=False)[1]
            before, version = audit_length(), current(Task, task.id).version
            takes_version = rule.endpoint != "followup_api.attempts" and step != "attempts"
            body = STEP_BODIES[step] if step else TASK_BODIES.get(rule.endpoint)
            status = send(other, path, method, body, version=version if takes_version else None)
            # Not holding it: 403, or 409 naming the holder ("held by another nurse: ask to reassign").
            want = {"read": {200}, "holder": {403, 409}, "held": {409}, "supervisor": {403}}[kind]
            if status not in want:
                wrong.append(f"another nurse {method} {path} → {status}, want {sorted(want)}")
            if status >= 400 and audit_length() != before:
                wrong.append(f"another nurse {method} {path} wrote audit entries")
    # The full phone number is for the holder only.
    assert other.get(f"/api/v1/followup/tasks/{task.id}").json["patient"]["phone"] != "13812345678"
    assert holder.get(f"/api/v1/followup/tasks/{task.id}").json["patient"]["phone"] == "13812345678"
    assert current(Task, task.id).assignee_id == world["users"]["nurse"].id
    assert not wrong, "\n".join(wrong)
