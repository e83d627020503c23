"""Z1–Z4: the access-control matrix over every route of the URL map.

For each role (and anonymous) × every (route, method) × own / other department / nonexistent object:
- anonymous: 401 on the API, a redirect to the login page on pages (form posts: 303, nothing done);
- a role the route does not declare: 403, before anything is looked up;
- a role the route admits, on another department's object: 404, exactly the answer for an object
  that does not exist, for every verb — and nothing is written (the audit chain does not grow);
- the quality office sees every department (its GETs of department B's objects are 200);
- an admitted role's GET of its own department's object is 200, so the matrix cannot pass vacuously.

Routes come from `app.url_map`; a new route argument without an object here fails the test.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from qcflow.region.installation import CENTRE_ONLY
from tests.conftest import csrf_from
from tests.security.conftest import ROLE_USERS, ROLES

#: Route argument → world object (department-owned: other department's must be unreachable).
ID_ARGS = {
    "event_id": "event", "action_id": "action", "task_id": "task", "plan_id": "plan",
    "discussion_id": "discussion", "participant_id": "participant", "operation_id": "operation",
    "patient_id": "patient", "notification_id": "notification",
    "attachment_id": "attachment", "discussion_file_id": "discussion_file",
}
#: Arguments of routes that are not department-owned (admin reference data, quality-only prompts).
GLOBAL_ARGS = {"protocol_id": 1, "prompt_id": 999_999, "kind": "procedures", "code": "day_surgery",
               "step": "attempts", "action": "pause", "filename": "css/app.css", "token_id": 999_999,
               "form_id": 999_999, "report_id": 999_999, "clinic_id": 999_999,
               # regional mode: an outbox row, a received submission, a month to queue again
               "row_id": 999_999, "submission_id": 999_999, "month": "2026-01",
               # a patient's follow-up link (its token)
               "token": "x" * 43,
               # a lesson of the case library: hospital-wide, not department-owned (events.lessons)
               "lesson_id": 999_999,
               # a reporter's own file (My reports), a file shown with a receipt code
               "my_file_id": 999_999, "receipt_file_id": 999_999}
MISSING = 999_999

#: Bodies that pass each API schema, so that the request reaches the object lookup.
BODIES = {
    "events_api.update_draft": {"location": "x", "version": 1},
    "events_api.transition": {"action": "triage", "version": 1, "confirmed_grade": "III",
                              "handling_department_id": 1, "external_severity": "none"},
    "events_api.add_action": {"title": "t", "improvement_type": "training", "owner_department_id": 1,
                              "due_on": "2030-01-01"},
    "events_api.transition_action": {"action": "verify", "version": 1},
    "events_api.post_message": {"message": "x"},
    "events_api.external_report": {"reported_at": "2026-03-01T10:00:00+08:00", "version": 1},
    "followup_api.attempts": {"channel": "phone", "result": "no_answer"},
    "followup_api.release": {"version": 1},
    "followup_api.confirm_online": {"version": 1},
    "followup_api.complete": {"respondent": "patient", "version": 1},
    "followup_api.reschedule": {"reason": "x", "due_at": "2030-01-01T10:00:00+08:00", "version": 1},
    "followup_api.cancel": {"reason": "x", "version": 1},
    "followup_api.unreachable": {"version": 1},
    "followup_api.reassign": {"assignee_id": 1, "version": 1},
    "followup_api.plan_transition": {"action": "pause", "reason": "x", "version": 1},
    "followup_api.file_prompt": {"version": 1},
    "followup_api.dismiss_prompt": {"reason": "x", "version": 1},
    "mdt_api.update_discussion": {"version": 1, "question": "x"},
    "mdt_api.transition": {"action": "cancel", "version": 1, "reason": "x"},
    "mdt_api.add_participant": {"name": "外院专家"},
    "mdt_api.update_participant": {"version": 1, "attended": True},
    "mdt_api.record_attendance": {"version": 1, "attended": []},
    "mdt_api.add_addendum": {"text": "x"},
    "clinical_api.operation_transition": {"action": "cancel", "version": 1, "reason": "x"},
}
#: Not walked: library routes, and logout (it would end the session the walk runs in; tests/auth covers it).
SKIP_ENDPOINTS = {"static", "api-docs.openapi_json", "auth.logout"}


def routes(app):
    """(endpoint, rule, method, declared access) for every route of the app."""
    from qcflow.auth.permissions import access_of

    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP_ENDPOINTS:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            with app.test_request_context(rule.rule, method=method):
                found.append((rule.endpoint, rule, method, access_of(rule.endpoint)))
    return found


def object_ids(world):
    """Plain ids per department (requests may delete objects, e.g. a participant)."""
    return {dept: {name: world[dept][name].id for name in set(ID_ARGS.values())} for dept in ("A", "B")}


def url_for_objects(rule, ids):
    """The rule's URL with a department's ids (`object_ids(world)["A"]`), or None for nonexistent ones."""
    values = {}
    for arg in rule.arguments:
        if arg in ID_ARGS:
            values[arg] = MISSING if ids is None else ids[ID_ARGS[arg]]
        elif arg in GLOBAL_ARGS:
            values[arg] = GLOBAL_ARGS[arg]
        else:
            raise AssertionError(f"{rule.rule}: no test object for argument {arg!r}; add it to the matrix")
    return rule.build(values, append_unknown=False)[1]


def send(client, endpoint, path, method, token):
    """One request as a browser or API client would send it (with a valid CSRF token when logged in)."""
    if method == "GET":
        return client.get(path)
    if path.startswith("/api/"):
        headers = {"X-CSRFToken": token} if token else {}
        body = BODIES.get(endpoint)
        return client.open(path, method=method, json=body if body is not None else {}, headers=headers)
    return client.open(path, method=method, data={"csrf_token": token or ""})


def audit_length():
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(app, world, role_client, role):
    client = role_client(role)
    token = csrf_from(client, "/account") if role != "anonymous" else None
    ids = object_ids(world)
    role_name = ROLE_USERS.get(role)
    wrong: list[str] = []
    owned_routes, checked = [], 0

    def expect(condition, what):
        if not condition:
            wrong.append(what)

    for endpoint, rule, method, access in routes(app):
        assert access is not None, f"{method} {rule.rule} has no access declaration"
        owned = any(arg in ID_ARGS for arg in rule.arguments)
        is_api = rule.rule.startswith("/api/")
        admitted = access.public or (role != "anonymous" and (not access.roles or role_name in access.roles))
        targets = {"missing": None, "other": ids["B"]} if owned else {"-": ids["A"]}
        results, before = {}, audit_length()
        for label, objects in targets.items():
            path = url_for_objects(rule, objects)
            response = send(client, endpoint, path, method, token)
            status = response.status_code
            results[label] = status
            where = f"{role} {method} {path} [{label}] → {status}"
            checked += 1
            expect(status < 500, where + " (server error)")
            if endpoint.split(".")[0] in CENTRE_ONLY:  # a centre's route on this hospital: absent for everyone
                expect(status == 404, where + " (want 404: the centre's route on a hospital)")
                continue
            if access.public:
                continue
            if role == "anonymous":
                if is_api:
                    expect(status == 401, where + " (want 401)")
                else:  # pages, also form posts (303, nothing acted on): to the login page
                    expect(status in (302, 303) and response.headers["Location"].startswith("/login"),
                           where + " (want login redirect)")
            elif not admitted:
                expect(status == 403, where + " (want 403: role not declared)")
        if owned and admitted and role != "anonymous" and endpoint.split(".")[0] not in CENTRE_ONLY:
            owned_routes.append((endpoint, rule, method))
            if role == "quality" and "notification_id" not in rule.arguments:
                continue  # sees every department; checked below
            where = f"{role} {method} {rule.rule}: other department → {results['other']}, nonexistent → {results['missing']}"
            expect(results["other"] == results["missing"] == 404, where + " (want 404 for both; a new API route "
                                                                             "may need a valid body in BODIES)")
            expect(audit_length() == before, where + " wrote audit entries")

    # Admitted GETs of objects the role may see: 200 (own department; quality: department B too).
    # The administrator's department (QC) owns none of these objects.
    for endpoint, rule, method in owned_routes if role != "admin" else ():
        if method != "GET" or "notification_id" in rule.arguments:
            continue
        path = url_for_objects(rule, ids["B"] if role == "quality" else ids["A"])
        status = client.get(path).status_code
        expect(status == 200, f"{role} GET {path} (visible object) → {status}, want 200")
    assert checked > 100
    assert not wrong, "\n".join(wrong)


def test_another_users_notification_is_404(world, role_client):
    """Notifications belong to one user: department A's doctor cannot read department B's doctor's."""
    doctor = role_client("doctor")
    token = csrf_from(doctor, "/account")
    own, other = world["A"]["notification"].id, world["B"]["notification"].id
    assert doctor.post(f"/api/v1/notifications/{other}/read", headers={"X-CSRFToken": token}).status_code == 404
    assert doctor.post(f"/api/v1/notifications/{own}/read", headers={"X-CSRFToken": token}).status_code == 200


def test_nurse_cannot_take_quality_office_steps(world, role_client):
    """Z2 (BFLA): a nurse is refused triage, close, reopen, reassign, user admin and exports."""
    nurse = role_client("nurse")
    token = {"X-CSRFToken": csrf_from(nurse, "/account")}
    event, task = world["A"]["event"], world["A"]["task"]
    for action in ("triage", "close", "reopen", "plan_actions"):
        response = nurse.post(f"/api/v1/events/{event.id}/transitions", headers=token,
                              json={"action": action, "version": event.version})
        assert response.status_code in (403, 404), (action, response.status_code)
    assert nurse.post(f"/api/v1/followup/tasks/{task.id}/reassign", headers=token,
                      json={"assignee_id": world["users"]["nurse"].id, "version": task.version}).status_code == 403
    assert nurse.get("/admin/followup/protocols").status_code == 403
    assert nurse.post("/api/v1/intake/patients", headers=token, json={"items": []}).status_code == 403
