"""Whole case journeys through the API, and the receipt channel."""
import sqlalchemy as sa

from tests.events.test_intake import csrf


def test_named_journey_triage_investigate_actions_verify_close_feedback(clients, hospital, report_body, act):
    doctor, quality = clients("clinician"), clients("quality")
    q = {"X-CSRFToken": csrf(quality)}
    filed = doctor.post("/api/v1/events", json={**report_body(), "mode": "named"}, headers={"X-CSRFToken": csrf(doctor)})
    event_id = filed.json["id"]
    r = act(quality, event_id, "triage", 2, q, confirmed_grade="III", handling_department_id=hospital["pharmacy"].id,
            external_severity="none")
    assert r.status_code == 200 and r.json["state"] == "triaged" and r.json["investigation_due_at"] is None
    r = act(quality, event_id, "start_investigation", r.json["version"], q)
    assert r.json["state"] == "investigating"
    no_action = act(quality, event_id, "plan_actions", r.json["version"], q, rca_cause_domains=["process"],
                    rca_factors="双人核对未执行")
    assert no_action.status_code == 422 and "整改" in no_action.json["message"]
    actions = []
    for title in ("高警示药品双人核对培训", "修订配药核对流程"):
        a = quality.post(f"/api/v1/events/{event_id}/actions", headers=q, json={
            "title": title, "improvement_type": "training", "owner_department_id": hospital["pharmacy"].id,
            "due_on": "2026-04-30"})
        assert a.status_code == 201
        actions.append(a.json)
    version = quality.get(f"/api/v1/events/{event_id}").json["version"]
    r = act(quality, event_id, "plan_actions", version, q, rca_cause_domains=["process", "practice"],
            rca_factors="双人核对未执行；夜班人手不足")
    assert r.json["state"] == "actions_open"
    early = act(quality, event_id, "verify", r.json["version"], q)
    assert early.status_code == 422
    for a in actions:
        path = f"/api/v1/events/{event_id}/actions/{a['id']}/transitions"
        done = quality.post(path, headers=q, json={"action": "complete", "version": a["version"], "evidence": "签到表"})
        assert done.status_code == 200 and done.json["state"] == "done"
        checked = quality.post(path, headers=q, json={"action": "verify", "version": done.json["version"]})
        assert checked.json["state"] == "verified"
    version = quality.get(f"/api/v1/events/{event_id}").json["version"]
    r = act(quality, event_id, "verify", version, q)
    assert r.json["state"] == "verifying"
    r = act(quality, event_id, "close", r.json["version"], q, improvement_types=["training", "rule_update"],
            feedback="已开展培训并修订流程，感谢您的报告。")
    assert r.status_code == 200 and r.json["state"] == "closed" and r.json["closed_at"]
    mine = doctor.get("/api/v1/events/mine").json["items"]
    assert mine[0]["state"] == "closed" and mine[0]["feedback"] == "已开展培训并修订流程，感谢您的报告。"
    assert "已开展培训并修订流程" in doctor.get("/my/reports").get_data(as_text=True)
    titles = [n["title"] for n in doctor.get("/api/v1/notifications").json["items"]]
    assert f"您的报告 {filed.json['reference']} 有了处理结果" in titles
    from qcflow.core import audit

    assert audit.verify().ok


def test_anonymous_journey_question_reply_by_receipt_triage_close(clients, hospital, report_body, act):
    anonymous, quality = clients("anonymous"), clients("quality")
    q = {"X-CSRFToken": csrf(quality)}
    filed = anonymous.post("/api/v1/events", json=report_body(reporter_grade="IV"))
    event_id, code = filed.json["id"], filed.json["receipt_code"]
    r = act(quality, event_id, "request_info", 2, q, message="请问是哪一个批次的药品？")
    assert r.json["state"] == "info_requested"
    seen = anonymous.post("/api/v1/receipts/lookup", json={"receipt_code": code.lower().replace("-", " ")})
    assert seen.status_code == 200 and seen.json["state"] == "info_requested"
    assert seen.json["messages"][0]["body"] == "请问是哪一个批次的药品？" and seen.json["feedback"] is None
    reply = anonymous.post("/api/v1/receipts/reply", json={"receipt_code": code, "message": "批号 20260301"})
    assert reply.status_code == 200 and reply.json["state"] == "submitted"
    case = quality.get(f"/api/v1/events/{event_id}").json
    r = act(quality, event_id, "triage", case["version"], q, confirmed_grade="IV",
            handling_department_id=hospital["pharmacy"].id, external_severity="none")
    r = act(quality, event_id, "close", r.json["version"], q, analysis="批次标签相近", feedback="已更换标签样式。谢谢！")
    assert r.json["state"] == "closed"
    final = anonymous.post("/api/v1/receipts/lookup", json={"receipt_code": code}).json
    assert final["state"] == "closed" and final["feedback"] == "已更换标签样式。谢谢！"
    assert [m["direction"] for m in final["messages"]] == ["to_reporter", "from_reporter"]
    assert final["messages"][1]["created_at"].endswith(":00:00+00:00")  # reply time coarsened
    page = anonymous.post("/receipt", data={"csrf_token": _token(anonymous, "/receipt"), "receipt_code": code})
    assert "已更换标签样式" in page.get_data(as_text=True) and "Set-Cookie" not in page.headers


def test_a_question_the_reporter_never_answers_does_not_hold_up_triage(clients, hospital, report_body, act):
    """The triage deadline runs while the office waits for an answer: the office may triage without it."""
    anonymous, quality = clients("anonymous"), clients("quality")
    q = {"X-CSRFToken": csrf(quality)}
    filed = anonymous.post("/api/v1/events", json=report_body(reporter_grade="IV"))
    event_id, code = filed.json["id"], filed.json["receipt_code"]
    asked = act(quality, event_id, "request_info", 2, q, message="请问是哪一个批次的药品？")
    page = quality.get(f"/events/{event_id}").get_data(as_text=True)
    assert 'value="triage"' in page
    r = act(quality, event_id, "triage", asked.json["version"], q, confirmed_grade="IV",
            handling_department_id=hospital["pharmacy"].id, external_severity="none")
    assert r.status_code == 200 and r.json["state"] == "triaged"
    late = anonymous.post("/api/v1/receipts/reply", json={"receipt_code": code, "message": "批号 20260301"})
    # A late answer still reaches the case, which stays triaged.
    assert late.status_code == 200 and late.json["state"] == "triaged"
    assert quality.get(f"/api/v1/events/{event_id}").json["state"] == "triaged"


def _token(client, path):
    import re

    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def test_unknown_and_malformed_receipts_are_the_same_404(clients):
    anonymous = clients("anonymous")
    answers = []
    for code in ("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GG", "x", "' OR 1=1 --", "🙂" * 40):
        response = anonymous.post("/api/v1/receipts/lookup", json={"receipt_code": code})
        answers.append((response.status_code, response.json["message"]))
    assert len(set(answers)) == 1 and answers[0][0] == 404


def test_unknown_and_malformed_codes_take_the_same_path(app, clients):
    """No oracle: a malformed code costs the same work as a well-formed unknown one (hash + one lookup)."""
    import sqlalchemy as sa

    from qcflow.extensions import db

    anonymous = clients("anonymous")
    with app.app_context():
        engine = db.engine
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        paths = []
        for code in ("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GG", "x", "' OR 1=1 --"):
            statements.clear()
            response = anonymous.post("/api/v1/receipts/lookup", json={"receipt_code": code})
            assert response.status_code == 404
            paths.append([s for s in statements if "adverse_event" in s])
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert len(paths[0]) == 1 and paths[0] == paths[1] == paths[2]


def test_named_reporter_answers_a_question_from_my_reports(clients, hospital, report_body, act):
    doctor, quality = clients("clinician"), clients("quality")
    event_id = doctor.post("/api/v1/events", json={**report_body(), "mode": "named"},
                           headers={"X-CSRFToken": csrf(doctor)}).json["id"]
    act(quality, event_id, "request_info", 2, {"X-CSRFToken": csrf(quality)}, message="当时谁在场？")
    page = doctor.get("/my/reports").get_data(as_text=True)
    assert "当时谁在场？" in page and 'value="provide_info"' in page
    answer = act(doctor, event_id, "provide_info", 3, {"X-CSRFToken": csrf(doctor)}, message="护士小王")
    assert answer.status_code == 200 and answer.json["state"] == "submitted"


def test_withdraw_is_for_the_named_reporter_only(clients, hospital, report_body, act):
    doctor, nurse = clients("clinician"), clients("nurse")
    event_id = doctor.post("/api/v1/events", json={**report_body(), "mode": "named"},
                           headers={"X-CSRFToken": csrf(doctor)}).json["id"]
    assert act(nurse, event_id, "withdraw", 2, {"X-CSRFToken": csrf(nurse)}).status_code == 404
    r = act(doctor, event_id, "withdraw", 2, {"X-CSRFToken": csrf(doctor)})
    assert r.status_code == 200 and r.json["state"] == "withdrawn"


def test_wrong_role_stale_version_wrong_state_and_other_department(clients, hospital, report_body, act):
    quality, head, other_head = clients("quality"), clients("head"), clients("other_head")
    event_id = clients("anonymous").post("/api/v1/events", json=report_body()).json["id"]
    q = {"X-CSRFToken": csrf(quality)}
    forbidden = act(head, event_id, "triage", 2, {"X-CSRFToken": csrf(head)}, confirmed_grade="III",
                    handling_department_id=hospital["pharmacy"].id, external_severity="none")
    assert forbidden.status_code == 403
    assert act(other_head, event_id, "triage", 2, {"X-CSRFToken": csrf(other_head)}).status_code == 404
    assert other_head.get(f"/api/v1/events/{event_id}").status_code == 404
    assert clients("nurse").get(f"/api/v1/events/{event_id}").status_code == 403
    stale = act(quality, event_id, "start_investigation", 2, q)
    assert stale.status_code == 409 and stale.json["allowed_actions"] == [
        "mark_duplicate", "reject", "request_info", "triage", "withdraw"]
    ok = act(quality, event_id, "request_info", 2, q, message="?")
    assert ok.status_code == 200
    again = act(quality, event_id, "reject", 2, q, reason="重复")
    assert again.status_code == 409 and again.json["current_version"] == 3


def test_grade_two_cannot_close_without_investigation_or_case_review(clients, hospital, report_body, act):
    quality = clients("quality")
    q = {"X-CSRFToken": csrf(quality)}
    event_id = clients("anonymous").post("/api/v1/events", json=report_body(reporter_grade="II")).json["id"]
    r = act(quality, event_id, "triage", 2, q, confirmed_grade="II", handling_department_id=hospital["pharmacy"].id,
            external_severity="general")
    assert r.json["investigation_due_at"] and r.json["external_report_due_at"]
    closing = act(quality, event_id, "close", r.json["version"], q, analysis="x", feedback="y")
    assert closing.status_code == 422 and "Ⅲ/Ⅳ" in closing.json["message"]


def test_case_page_shows_the_steps_the_engine_allows(clients, hospital, report_body):
    event_id = clients("anonymous").post("/api/v1/events", json=report_body()).json["id"]
    page = clients("quality").get(f"/events/{event_id}").get_data(as_text=True)
    for action in ("triage", "request_info", "reject", "mark_duplicate"):
        assert f'value="{action}"' in page
    assert 'value="start_investigation"' not in page
    head_page = clients("head").get(f"/events/{event_id}").get_data(as_text=True)
    assert 'value="triage"' not in head_page


def test_inbox_counts_filters_and_pages(clients, hospital, report_body):
    for grade in ("I", "III", "III"):
        clients("anonymous").post("/api/v1/events", json=report_body(reporter_grade=grade))
    quality = clients("quality")
    page = quality.get("/events").get_data(as_text=True)
    assert page.count("AE-2026-") >= 3 or page.count("AE-") >= 3
    first = quality.get("/api/v1/events?limit=2").json
    rest = quality.get(f"/api/v1/events?limit=2&cursor={first['next_cursor']}").json
    assert len(first["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert [e["reporter_grade"] for e in quality.get("/api/v1/events?grade=I").json["items"]] == ["I"]
    assert quality.get("/api/v1/events?grade=VI").status_code == 422


def test_quality_office_works_a_case_through_the_page_forms(clients, hospital, report_body):
    from tests.conftest import csrf_from

    quality = clients("quality")
    event_id = clients("anonymous").post("/api/v1/events", json=report_body(reporter_grade="II")).json["id"]
    token = csrf_from(quality, f"/events/{event_id}")

    def post(path, **form):
        return quality.post(path, data={"csrf_token": token, **form})

    base = f"/events/{event_id}"
    assert post(base + "/transitions", action="triage", version="2", confirmed_grade="II",
                handling_department_id=str(hospital["pharmacy"].id), external_severity="none").status_code == 302
    assert post(base + "/transitions", action="start_investigation", version="3").status_code == 302
    assert post(base + "/actions", title="培训", improvement_type="training",
                owner_department_id=str(hospital["pharmacy"].id), due_on="2026-05-01").status_code == 302
    from werkzeug.datastructures import MultiDict

    response = quality.post(base + "/transitions", data=MultiDict([
        ("csrf_token", token), ("action", "plan_actions"), ("version", "4"),
        ("rca_cause_domains", "rules"), ("rca_cause_domains", "practice"), ("rca_factors", "交接班不清")]))
    assert response.status_code == 302
    case = quality.get(f"/api/v1/events/{event_id}").json
    assert case["state"] == "actions_open" and case["rca_cause_domains"] == "rules,practice"
    missing = post(base + "/transitions", action="verify", version=str(case["version"]))
    assert missing.status_code == 422 and "整改措施须先完成" in missing.get_data(as_text=True)
    stale = post(base + "/transitions", action="verify", version="1")
    assert stale.status_code == 409
    no_token = quality.post(base + "/transitions", data={"action": "verify", "version": str(case["version"])})
    assert no_token.status_code == 400


def test_the_reporters_withdraw_button_says_withdraw_the_report_not_withdraw_from_follow_up(clients, report_body):
    """The event's "Withdraw" shared its translation with the follow-up plan's step (撤销随访)."""
    doctor = clients("clinician")
    doctor.post("/api/v1/events", json={**report_body(), "mode": "named"}, headers={"X-CSRFToken": csrf(doctor)})
    page = doctor.get("/my/reports").get_data(as_text=True)
    assert 'value="withdraw"' in page and ">撤回</button>" in page and "撤销随访" not in page
